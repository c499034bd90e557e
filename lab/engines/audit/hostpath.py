"""hostPath volumes: what kubelet sets up on the node, and what the container sees.

:class:`NodeView` is the node tree plus the paths this start-up would create
(nothing is written); :func:`setup_pod_volumes` is kubelet's hostPath SetUp
with its type checks; :class:`ContainerFS` maps container paths through the
volume mounts onto the node.
"""

from __future__ import annotations

import os
import posixpath
import stat
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lab.engines.audit.gotext import ENOENT, ENOTDIR, EROFS, path_error
from lab.nodefs import (
    NodePathError,
    normalize_node_path,
    read_regular,
    resolve_in_node,
)

HOST_PATH_TYPES = (
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
)


@dataclass(frozen=True)
class Mount:
    """A volumeMount of the kube-apiserver container and the volume behind it."""

    name: str
    mount_path: str
    read_only: bool
    host_path: str | None  # node path of a hostPath volume, else None
    host_type: str | None  # hostPath.type ("" when unset); None for other volumes
    sub_path: str | None = None
    volume_kind: str | None = "hostPath"  # hostPath, emptyDir, ... or None if missing
    line: int | None = None  # manifest line of the volumeMount


@dataclass(frozen=True)
class HostChange:
    """A path kubelet, containerd or the apiserver creates on the node."""

    path: str  # node path
    kind: Literal["dir", "file"]
    by: str  # who creates it and why


class _PathTree(ABC):
    """Kind queries and MkdirAll over a tree that answers for one path at a time."""

    @abstractmethod
    def _kind_one(self, path: str) -> str: ...

    @abstractmethod
    def create(self, path: str, kind: Literal["dir", "file"], by: str) -> None: ...

    def read_only(self, path: str) -> bool:
        return False

    def kind(self, path: str) -> str:
        """'dir', 'file', 'other', 'missing', or 'notdir' (an ancestor is not a directory)."""
        path = normalize_node_path(path)
        if path == "/":
            return "dir"
        comps = path.strip("/").split("/")
        cur = ""
        for i, comp in enumerate(comps):
            cur = f"{cur}/{comp}"
            k = self._kind_one(cur)
            if i == len(comps) - 1:
                return k
            if k == "missing":
                return "missing"
            if k != "dir":
                return "notdir"
        return "dir"

    def mkdir_all(self, path: str, by: str) -> str | None:
        """os.MkdirAll; returns Go's error text or None."""
        cur = ""
        for comp in [c for c in normalize_node_path(path).split("/") if c]:
            cur = f"{cur}/{comp}"
            k = self._kind_one(cur)
            if k == "dir":
                continue
            if k == "missing":
                if self.read_only(cur):
                    return path_error("mkdir", cur, EROFS)
                self.create(cur, "dir", by)
                continue
            return path_error("mkdir", cur, ENOTDIR)
        return None


class NodeView(_PathTree):
    """The node tree plus the paths this start-up would create (nothing is written)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.created: dict[str, Literal["dir", "file"]] = {}
        self.changes: list[HostChange] = []

    def real(self, node_path: str) -> Path:
        return resolve_in_node(self.root, node_path)

    def _kind_one(self, path: str) -> str:
        if path in self.created:
            return self.created[path]
        try:
            st = os.stat(self.real(path))
        except (NodePathError, FileNotFoundError, NotADirectoryError):
            return "missing"
        if stat.S_ISDIR(st.st_mode):
            return "dir"
        if stat.S_ISREG(st.st_mode):
            return "file"
        return "other"

    def create(self, path: str, kind: Literal["dir", "file"], by: str) -> None:
        path = normalize_node_path(path)
        if self._kind_one(path) != "missing":
            return
        self.created[path] = kind
        self.changes.append(HostChange(path=path, kind=kind, by=by))

    def list_dir(self, path: str) -> list[str] | None:
        """The names in the directory at node path ``path`` (None: not a readable directory).

        Paths this start-up would create are not listed: only what is on the node.
        """
        try:
            return os.listdir(self.real(path))
        except (NodePathError, OSError):
            return None

    def read_bytes(self, path: str, limit: int) -> bytes:
        """At most ``limit + 1`` bytes of the regular file at node path ``path``.

        Symlinks are followed inside the node only (:func:`resolve_in_node`);
        raises NodePathError, NotRegularFile (a FIFO, device, directory...) or
        OSError. A file this start-up creates reads as empty.
        """
        if normalize_node_path(path) in self.created:
            return b""
        return read_regular(self.real(path), limit, follow_symlinks=False)


def locate(
    mounts: list[Mount], path: str, *, deepest_first: bool = False
) -> tuple[Mount | None, str | None]:
    """The mount covering container path ``path`` (the deepest shadows the others) and
    the node path behind it; (mount, None) for a volume that is not a hostPath."""
    path = normalize_node_path(path)
    if not deepest_first:
        mounts = sorted(mounts, key=lambda m: len(normalize_node_path(m.mount_path)), reverse=True)
    for m in mounts:
        mp = normalize_node_path(m.mount_path)
        if path == mp or path.startswith(mp.rstrip("/") + "/"):
            if m.host_path is None:
                return m, None
            rel = path[len(mp) :].lstrip("/")
            base = m.host_path
            if m.sub_path:
                base = posixpath.join(base, m.sub_path)
            return m, normalize_node_path(posixpath.join(base, rel) if rel else base)
    return None, None


class ContainerFS(_PathTree):
    """The apiserver container's view: image rootfs plus the volume mounts."""

    def __init__(self, mounts: list[Mount], node: NodeView) -> None:
        self.node = node
        # Deeper mount paths shadow shallower ones.
        self.mounts = sorted(
            mounts, key=lambda m: len(normalize_node_path(m.mount_path)), reverse=True
        )
        self.in_container: dict[str, str] = {}  # paths created on the container's own rootfs

    def locate(self, path: str) -> tuple[Mount | None, str | None]:
        """The mount covering ``path`` and the node path behind it (None: not on a hostPath)."""
        return locate(self.mounts, path, deepest_first=True)

    def _kind_one(self, path: str) -> str:
        mount, host = self.locate(path)
        if mount is not None:
            if host is None:  # emptyDir and friends: an empty directory
                return (
                    "dir"
                    if path == normalize_node_path(mount.mount_path)
                    else self.in_container.get(path, "missing")
                )
            return self.node.kind(host)
        if path in self.in_container:
            return self.in_container[path]
        # Parents of mount points exist (the runtime creates them).
        for m in self.mounts:
            if normalize_node_path(m.mount_path).startswith(path.rstrip("/") + "/"):
                return "dir"
        return "missing"

    def read_only(self, path: str) -> bool:
        mount, _ = self.locate(path)
        return bool(mount and mount.read_only)

    def create(self, path: str, kind: Literal["dir", "file"], by: str) -> None:
        _, host = self.locate(path)
        if host is not None:
            self.node.create(host, kind, by)
        else:
            self.in_container[normalize_node_path(path)] = kind


def setup_pod_volumes(
    node: NodeView, volumes: list[dict[str, Any]], mounts: list[Mount]
) -> tuple[int, str] | None:
    """Set up every hostPath volume; the first failure as (volume index, message).

    One failing volume does not stop the others (each is reconciled on its own),
    but the container never starts, so subPaths are made only when all succeed.
    """
    failure: tuple[int, str] | None = None
    for vi, vol in enumerate(volumes):
        hp = vol.get("hostPath")
        if not isinstance(hp, dict):
            continue
        name = vol["name"]
        err = _setup_host_path(node, normalize_node_path(hp["path"]), hp.get("type") or "", name)
        if err is not None and failure is None:
            failure = vi, f'MountVolume.SetUp failed for volume "{name}" : {err}'
    if failure is not None:
        return failure
    for m in mounts:
        if m.host_path and m.sub_path:
            sub = posixpath.join(m.host_path, m.sub_path)
            if node.kind(sub) == "missing":
                node.create(sub, "dir", f"kubelet creates subPath {m.sub_path} of volume {m.name}")
    return None


_TYPE_DESCRIPTIONS = {
    "Directory": "directory",
    "File": "file",
    "Socket": "socket file",
    "CharDevice": "character device",
    "BlockDevice": "block device",
}


def _setup_host_path(node: NodeView, path: str, htype: str, volume: str) -> str | None:
    """kubelet's hostPath SetUp (and containerd's bind-mount source creation)."""
    by = f'kubelet (hostPath type {htype}) for volume "{volume}"'
    kind = node.kind(path)
    if htype == "":
        if kind == "missing":
            # No type check; containerd creates a missing bind-mount source as a directory.
            node.mkdir_all(path, f'containerd creates the missing hostPath of volume "{volume}"')
        return None
    if htype == "DirectoryOrCreate":
        if kind in ("missing", "notdir"):
            return node.mkdir_all(path, by)
        return _type_matched(path, kind, "Directory")
    if htype == "FileOrCreate":
        if kind == "missing":
            parent = node.kind(posixpath.dirname(path))
            if parent == "missing":
                return path_error("open", path, ENOENT)
            if parent != "dir":
                return path_error("open", path, ENOTDIR)
            node.create(path, "file", by)
            return None
        if kind == "notdir":
            return path_error("open", path, ENOTDIR)
        return _type_matched(path, kind, "File")
    return _type_matched(path, kind, htype)


def _type_matched(path: str, kind: str, expected: str) -> str | None:
    if kind in ("missing", "notdir"):
        return f"hostPath {path} doesn't exist"
    actual = {"dir": "Directory", "file": "File"}.get(kind, "")
    if actual == expected:
        return None
    description = _TYPE_DESCRIPTIONS.get(expected, expected)
    return (
        f"hostPath type check failed: {path} is not a {description}, "
        f"it's a {actual or 'unknown type'}"
    )
