"""The learner's node work on a warm kind cluster: saved before a reset, put back later.

The cluster holds one scenario at a time, and a scenario switch or a reset undoes
what the earlier scenario left on the nodes (reset.py). Before that, every file the
learner may have changed is copied into the workspace that held the cluster:
``<ws>/.lab/kind-saved/<UTC time>/<scenario node>/<node path>``, with MANIFEST.json
listing what was saved, what was not and why. With no such workspace (a setup that
never finished, a workspace deleted since), the copy goes to ``<cluster dir>/saved/``.
The last KEEP snapshots of a folder are kept.

Saved: the files the lab put on the nodes, the kube-apiserver manifest, the
AppArmor profile files the node did not have when AppArmor was installed (with
whether they were loaded), and the files in the control plane's folders the kind
config maps to the cluster folder (the audit policy). Not saved: audit logs
(evidence of an old run, possibly huge) and files over 1 MiB; both are listed.

Going back to a scenario puts its newest snapshot back when a switch made it;
after a reset, the snapshot is the learner's backup and is never put back.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import posixpath
import re
import shutil
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.backends.kind.audit import MANIFEST
from lab.backends.kind.reset import PRISTINE_MANIFEST, PROFILE_DIR, LabState
from lab.backends.kind.steps import list_files, node_stat, read_text
from lab.errors import LabError
from lab.fsutil import atomic_write_bytes, open_dir_nofollow, read_bytes_nofollow
from lab.work import Progress, ProgressEvent, no_progress

if TYPE_CHECKING:
    from lab.kind.nodes import LabNodes
    from lab.workspace import Workspace

SAVED_DIR = "kind-saved"  # in the workspace's .lab folder
CLUSTER_SAVED_DIR = "saved"  # in the cluster folder
INDEX = "MANIFEST.json"
KEEP = 5
MAX_FILE = 1 << 20  # policies, rules, profiles and manifests are far smaller
MAX_TOTAL = 64 << 20
MAX_FOLDER_FILES = 500
LOG_PREFIX = "/var/log/"
DONE_KEY = "kind_snapshot_done"  # workspace state: the newest snapshot already dealt with
_STAMP_RE = re.compile(r"^\d{8}T\d{6}\d{6}Z(-\d+)?$")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class LabFolder:
    """A control-plane folder the kind config maps to a host folder in the cluster dir."""

    path: str  # in the node
    log: bool  # holds logs: cleared, never saved


@dataclass
class Restored:
    files: list[str] = field(default_factory=list)  # "node:path" put back
    notes: list[str] = field(default_factory=list)  # what was not, and why


# --- paths ---------------------------------------------------------------------------------


def _bad_path(path: object) -> str | None:
    """Why a node path is refused, or None: absolute, normal, no '..'."""
    if not isinstance(path, str) or not path.startswith("/") or "\0" in path or "\n" in path:
        return "is not an absolute node path"
    parts = path.split("/")[1:]
    if ".." in parts:
        return "contains '..'"
    if any(p in ("", ".") for p in parts) or posixpath.normpath(path) != path:
        return "is not a normalised node path"
    return None


def _bad_node(node: object) -> bool:
    return not isinstance(node, str) or node in ("", ".", "..") or "/" in node or "\0" in node


def lab_folders(cluster_dir: Path) -> list[LabFolder]:
    """The control plane's folders the cluster's rendered kind config maps into the
    cluster folder (kind-configs/audit.yaml: the audit policy and log folders)."""
    from lab.kind.cluster import CONFIG_FILE
    from lab.yamlsafe import parse_one

    path = cluster_dir / CONFIG_FILE
    try:
        cfg = parse_one(read_bytes_nofollow(path, MAX_FILE), str(path)).data
    except (OSError, LabError):
        return []  # no config the lab rendered: no folder of the lab's
    inside = str(cluster_dir.resolve()).rstrip("/") + "/"
    out: list[LabFolder] = []
    nodes = cfg.get("nodes") if isinstance(cfg, dict) else None
    for node in nodes if isinstance(nodes, list) else []:
        if not isinstance(node, dict) or node.get("role") != "control-plane":
            continue
        mounts = node.get("extraMounts")
        for m in mounts if isinstance(mounts, list) else []:
            host = m.get("hostPath") if isinstance(m, dict) else None
            where = m.get("containerPath") if isinstance(m, dict) else None
            if not isinstance(host, str) or not isinstance(where, str) or _bad_path(where):
                continue
            if str(Path(host).resolve()).startswith(inside):
                out.append(LabFolder(where, where.startswith(LOG_PREFIX)))
    return out


def _folder_files(nodes: LabNodes, node: str, folder: str) -> list[str]:
    """The regular files under a node folder, at any depth (symlinks are not followed)."""
    return [p for p in list_files(nodes, node, folder, depth=None) if not _bad_path(p)]


# --- saving ----------------------------------------------------------------------------------


def _read(nodes: LabNodes, node: str, path: str) -> tuple[bytes | None, str | None]:
    """(content, None), (None, why it is not saved), or (None, None) when it is absent."""
    from lab.kind.nodes import NodeFileError

    try:
        return nodes.read_node_bytes(node, path, MAX_FILE), None
    except NodeFileError as err:
        if err.reason == "missing":
            return None, None
        if err.reason == "too-large":
            return None, "larger than 1 MiB: not saved"
        return None, f"not saved: {err.message}"


def _mode(nodes: LabNodes, node: str, path: str, default: int) -> int:
    """The file's permissions; not setuid, setgid or sticky, which a restore never sets
    (a snapshot's index is the learner's to edit)."""
    st = node_stat(nodes, node, path)
    return st.mode & 0o777 if st is not None else default


def _loaded(nodes: LabNodes, node: str, path: str, kernel: set[str]) -> bool:
    """Whether a profile file's profiles are in the kernel (apparmor_parser -N names them)."""
    r = nodes.exec(node, ["apparmor_parser", "-N", path])
    return r.code == 0 and any(n.strip() in kernel for n in r.stdout.splitlines() if n.strip())


def _kernel_profiles(nodes: LabNodes, node: str) -> set[str]:
    from lab.kind.apparmor_node import PROFILES_PATH, parse_profiles

    return {name for name, _ in parse_profiles(read_text(nodes, node, PROFILES_PATH) or "")}


def _sha256(text: str | None) -> str | None:
    return hashlib.sha256(text.encode()).hexdigest() if text is not None else None


def save_learner_files(
    nodes: LabNodes,
    state: LabState,
    names: Mapping[str, str],
    cp: str,
    dest: Path,
    *,
    folders: Sequence[LabFolder] = (),
    reason: str = "switch",
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """Copy into the (empty, lab-made) folder `dest` every file of the scenario's nodes
    the learner may have changed; returns the index written to dest/MANIFEST.json."""
    by_container = {c: n for n, c in names.items()}
    todo: list[tuple[str, str]] = []  # (node, path), in order, once each
    skipped: list[dict[str, Any]] = []

    def want(node: str, path: str) -> None:
        if (node, path) not in todo:
            todo.append((node, path))

    for container, path in state.files:
        node = by_container.get(container)
        if node is None:
            away = "not a node of this scenario: the file stays on it"
            skipped.append({"container": container, "path": path, "why": away})
        else:
            want(node, path)
    want(cp, MANIFEST)
    profiles: set[tuple[str, str]] = set()
    for container, baseline in state.apparmor.items():
        node = by_container.get(container)
        if node is None:
            continue  # the reset leaves its profiles alone too
        keep = set(baseline)
        for path in list_files(nodes, node, PROFILE_DIR):
            if path not in keep:
                want(node, path)
    for node, path in todo:
        if posixpath.dirname(path) == PROFILE_DIR:
            profiles.add((node, path))
    for folder in folders:
        found = _folder_files(nodes, cp, folder.path)
        if folder.log:
            skipped += [
                {
                    "node": cp,
                    "container": names[cp],
                    "path": p,
                    "why": "an audit log (evidence of an earlier run): not saved",
                }
                for p in found
            ]
            continue
        for p in found[:MAX_FOLDER_FILES]:
            want(cp, p)
        skipped += [
            {
                "node": cp,
                "container": names[cp],
                "path": p,
                "why": f"more than {MAX_FOLDER_FILES} files in {folder.path}: not saved",
            }
            for p in found[MAX_FOLDER_FILES:]
        ]

    kernels: dict[str, set[str]] = {}
    files: list[dict[str, Any]] = []
    total = 0
    for i, (node, path) in enumerate(todo):
        progress(ProgressEvent(f"saving {node}:{path}", phase="reset", done=i, total=len(todo)))
        entry: dict[str, Any] = {"node": node, "container": names[node], "path": path}
        if _bad_node(node) or _bad_path(path):
            skipped.append({**entry, "why": "not a plain node path: not saved"})
            continue
        data, refused = _read(nodes, node, path)
        if refused is not None:
            skipped.append({**entry, "why": refused})
            continue
        if data is None:
            continue  # absent: nothing to lose
        if total + len(data) > MAX_TOTAL:
            skipped.append({**entry, "why": "the snapshot is full (64 MiB): not saved"})
            continue
        total += len(data)
        rel = f"{node}/{path.lstrip('/')}"
        atomic_write_bytes(dest / rel, data, 0o600, within=dest)
        mode = _mode(nodes, node, path, 0o600 if path == MANIFEST else 0o644)
        entry.update(file=rel, size=len(data), mode=mode)
        if (node, path) in profiles:
            if node not in kernels:
                kernels[node] = _kernel_profiles(nodes, node)
            entry["loaded"] = _loaded(nodes, node, path, kernels[node])
        files.append(entry)

    index = {
        "format": 1,
        "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "reason": reason,
        "scenario": state.scenario,
        "workspace": state.workspace,
        "pristine_manifest_sha256": _sha256(read_text(nodes, cp, PRISTINE_MANIFEST)),
        "files": files,
        "skipped": skipped,
    }
    atomic_write_bytes(
        dest / INDEX, (json.dumps(index, indent=2) + "\n").encode(), 0o600, within=dest
    )
    return index


# --- where snapshots go ---------------------------------------------------------------------


def _snapshot_base(state: LabState, cluster_dir: Path) -> tuple[Path, list[str], bool]:
    """(a folder the lab owns, the folders below it, whether it is a workspace's)."""
    from lab.workspace import STATE_DIR, is_workspace

    if state.workspace and is_workspace(Path(state.workspace)):
        return Path(state.workspace), [STATE_DIR, SAVED_DIR], True
    return cluster_dir, [CLUSTER_SAVED_DIR], False


def _new_dir(root: Path, parts: list[str]) -> Path:
    """A new timestamped folder at root/parts (no symlink on the way is followed)."""
    fd = open_dir_nofollow(root, parts, create=True)
    try:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        for n in range(100):
            name = stamp if n == 0 else f"{stamp}-{n}"
            try:
                os.mkdir(name, 0o700, dir_fd=fd)
            except FileExistsError:
                continue
            return root.joinpath(*parts, name)
    finally:
        os.close(fd)
    raise LabError("cannot make a new snapshot folder", file=str(root.joinpath(*parts)))


def snapshots(folder: Path) -> list[Path]:
    """The snapshot folders in `folder`, oldest first (symlinks are not snapshots)."""
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(
        (
            Path(e.path)
            for e in entries
            if _STAMP_RE.match(e.name) and e.is_dir(follow_symlinks=False)
        ),
        key=lambda p: p.name,
    )


def prune(folder: Path, keep: int = KEEP) -> None:
    """Remove all but the newest `keep` snapshots."""
    for old in snapshots(folder)[:-keep] if keep else snapshots(folder):
        shutil.rmtree(old, ignore_errors=True)


def workspace_snapshots(ws_root: Path) -> list[Path]:
    from lab.workspace import STATE_DIR

    return snapshots(ws_root / STATE_DIR / SAVED_DIR)


def save_before_reset(
    nodes: LabNodes,
    state: LabState,
    names: Mapping[str, str],
    cp: str,
    cluster_dir: Path,
    folders: Sequence[LabFolder],
    *,
    reason: str,
    progress: Progress = no_progress,
) -> Path | None:
    """Save the learner's files before the reset; the snapshot folder, or None when no
    scenario was ever set up on the cluster. A failure stops the reset."""
    if state.scenario is None:
        return None
    root, parts, is_ws = _snapshot_base(state, cluster_dir)
    try:
        dest = _new_dir(root, parts)
    except LabError as e:  # a workspace with a symlinked .lab: keep the files all the same
        if not is_ws:
            raise
        progress(ProgressEvent(f"warning: cannot save into the workspace: {e}", phase="reset"))
        root, parts, is_ws = cluster_dir, [CLUSTER_SAVED_DIR], False
        dest = _new_dir(root, parts)
    try:
        save_learner_files(
            nodes,
            state,
            names,
            cp,
            dest,
            folders=folders,
            reason=reason if is_ws else "unfinished",
            progress=progress,
        )
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    prune(root.joinpath(*parts))
    progress(ProgressEvent(f"your node files are saved in {dest}", phase="reset"))
    return dest


def clear_lab_folders(
    nodes: LabNodes, cp: str, folders: Sequence[LabFolder], progress: Progress = no_progress
) -> None:
    """Leave no earlier scenario's policy or log in the lab's folders (they are saved, or
    are old evidence). Logs are emptied, not removed: a running apiserver keeps writing
    to the file it opened. A file the pristine manifest names stays: kubelet needs it."""
    pristine = read_text(nodes, cp, PRISTINE_MANIFEST) or ""
    for folder in folders:
        found = _folder_files(nodes, cp, folder.path)
        if folder.log:
            if found:
                nodes.exec(cp, ["truncate", "-s", "0", "--", *found])
            continue
        for path in found:
            if path not in pristine:
                nodes.remove(cp, path)
    if folders:
        progress(ProgressEvent("cleared the audit folders of the earlier scenario", "reset"))


# --- restoring -----------------------------------------------------------------------------


def _check_tree(src: Path) -> None:
    """Refuse a snapshot holding a symlink, a special file or too much."""
    from lab.safecopy import kind_of, refuse_symlink

    refuse_symlink(src, "the snapshot")
    count = size = 0
    for top, dirs, names in os.walk(src, followlinks=False):
        for name in dirs + names:
            p = Path(top) / name
            st = os.lstat(p)
            count += 1
            if stat.S_ISLNK(st.st_mode):
                raise LabError("a snapshot holds no symlinks; not restoring it", file=str(p))
            if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
                raise LabError(f"is {kind_of(st.st_mode)}; not restoring the snapshot", file=str(p))
            size += st.st_size if stat.S_ISREG(st.st_mode) else 0
    if count > 20 * MAX_FOLDER_FILES or size > MAX_TOTAL + MAX_FILE:
        raise LabError("the snapshot is larger than the lab makes them", file=str(src))


def _read_saved(src: Path, node: str, path: str) -> bytes | None:
    """A saved file's bytes, never through a symlink; None when it is not there."""
    *folders, name = [node, *path.lstrip("/").split("/")]
    try:
        dfd = open_dir_nofollow(src, folders, create=False)
    except LabError as e:
        if "does not exist" in e.message:
            return None
        raise
    try:
        fd = os.open(name, os.O_RDONLY | _NOFOLLOW | _CLOEXEC, dir_fd=dfd)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise LabError(
                "is a symlink; not restoring the snapshot", file=str(src / node)
            ) from None
        raise LabError(
            f"cannot read: {e.strerror}", file=str(src / node / path.lstrip("/"))
        ) from None
    finally:
        os.close(dfd)
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise LabError("is not a regular file", file=str(src / node / path.lstrip("/")))
        data = fh.read(MAX_FILE + 1)
    if len(data) > MAX_FILE:
        raise LabError("is larger than 1 MiB", file=str(src / node / path.lstrip("/")))
    return data


def _index(src: Path) -> dict[str, Any]:
    where = str(src / INDEX)
    try:
        raw = json.loads(read_bytes_nofollow(src / INDEX, 4 * MAX_FILE))
    except FileNotFoundError:
        raise LabError("the snapshot has no MANIFEST.json", file=str(src)) from None
    except (OSError, ValueError) as e:
        raise LabError(f"cannot read the snapshot's index: {e}", file=where) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("files"), list):
        raise LabError("the snapshot's index is not what the lab writes", file=where)
    return raw


def restore_learner_files(
    nodes: LabNodes, names: Mapping[str, str], src: Path, progress: Progress = no_progress
) -> Restored:
    """Put a snapshot's files back on the scenario's nodes. Everything is checked before
    anything is written: a snapshot with a symlink, or a node path that is not absolute or
    holds '..', is refused whole. Files of nodes the scenario lacks are left out."""
    _check_tree(src)
    index = _index(src)
    by_container = {c: n for n, c in names.items()}
    out = Restored()
    plan: list[tuple[str, str, bytes, int, bool]] = []
    for e in index["files"]:
        if not isinstance(e, dict):
            raise LabError("the snapshot's index is not what the lab writes", file=str(src))
        node, path, container = e.get("node"), e.get("path"), e.get("container")
        bad = _bad_path(path)
        if bad is not None or _bad_node(node):
            raise LabError(
                f"the snapshot names {node!r}:{path!r}, which {bad or 'is no node'}; "
                "not restoring it",
                file=str(src / INDEX),
            )
        assert isinstance(node, str) and isinstance(path, str)
        target = by_container.get(container) if isinstance(container, str) else None
        if target is None:
            out.notes.append(f"{node}:{path}: not a node of this scenario; left in {src}")
            continue
        data = _read_saved(src, node, path)
        if data is None:
            out.notes.append(f"{node}:{path}: missing from the snapshot")
            continue
        mode = e.get("mode")
        mode = mode & 0o777 if isinstance(mode, int) and not isinstance(mode, bool) else 0o644
        plan.append((target, path, data, mode, e.get("loaded") is True))

    pristine = index.get("pristine_manifest_sha256")
    for i, (node, path, data, mode, load) in enumerate(plan):
        progress(ProgressEvent(f"{node}:{path}", phase="restore", done=i, total=len(plan)))
        if (
            path == MANIFEST
            and pristine
            and _sha256(read_text(nodes, node, PRISTINE_MANIFEST)) != pristine
        ):
            out.notes.append(
                f"{node}:{path}: the cluster was made again since; your manifest "
                f"is kept in {src / node / path.lstrip('/')}"
            )
            continue
        current, _ = _read(nodes, node, path)
        if current != data:
            try:
                nodes.put_file(node, path, data, mode)
            except LabError as e:  # the others still go back; this one stays in the snapshot
                out.notes.append(f"{node}:{path}: not put back ({e.message}); it is in {src}")
                continue
            out.files.append(f"{node}:{path}")
        if load:
            r = nodes.exec(node, ["apparmor_parser", "-r", path])
            if r.code != 0:
                why = r.stderr.strip() or f"exit code {r.code}"
                out.notes.append(f"{node}:{path}: apparmor_parser -r failed: {why}")
    if plan:
        progress(
            ProgressEvent(
                f"put back {len(out.files)} of your files",
                phase="restore",
                done=len(plan),
                total=len(plan),
            )
        )
    return out


# --- the service's side: after a workspace's scenario was set up again ----------------------


def after_prepare(
    ws: Workspace,
    restore_into: Callable[[Path], Restored],
    *,
    restore: bool,
    progress: Progress = no_progress,
) -> Path | None:
    """The newest snapshot of a kind workspace (the learner's backup), put back first
    when `restore` and a scenario switch made it. `restore_into(src)` restores on the
    scenario's nodes. A snapshot is dealt with once: a reset, or its being put back,
    marks it in the workspace's state."""
    found = workspace_snapshots(ws.root)
    if not found:
        return None
    newest = found[-1]
    if restore and ws.state().get(DONE_KEY) != newest.name and _reason(newest) == "switch":
        try:
            result = restore_into(newest)
        except LabError as e:
            progress(
                ProgressEvent(
                    f"warning: your saved files were not put back: {e}; they are in {newest}",
                    phase="restore",
                )
            )
        else:
            for note in result.notes:
                progress(ProgressEvent(f"note: {note}", phase="restore"))
    ws.update_state(**{DONE_KEY: newest.name})
    return newest


def _reason(src: Path) -> str | None:
    try:
        return str(_index(src).get("reason"))
    except LabError:
        return None
