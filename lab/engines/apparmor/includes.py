"""`#include <x>`, `include "x"`, `include if exists <x>`: finding the files.

`<x>` is searched in a list of directories (apparmor_parser's `-I` list, then its
base /etc/apparmor.d); `"x"` is a path: absolute, or relative to a base directory
(apparmor_parser uses its working directory). An include naming a directory reads
every file in it, in name order, skipping editor and package-manager leftovers.

The lab's search path is the node tree's /etc/apparmor.d first, then the lab's own
minimal copies (`default_search_path()`), so `<tunables/global>` works on a node that
has no AppArmor installed, the way the learner expects it to on the exam node.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Sequence
from pathlib import Path

from lab.engines.apparmor.errors import ProfileError
from lab.nodefs import NodePathError, resolve_in_node

MAX_INCLUDE_BYTES = 1_000_000
MAX_INCLUDED_FILES = 500

BUNDLED_DIR = Path(__file__).with_name("abstractions")

# libapparmor skips these names when an include names a directory
_SKIP_SUFFIXES = (
    "~", ".dpkg-new", ".dpkg-old", ".dpkg-dist", ".dpkg-bak", ".dpkg-remove", ".pacsave",
    ".pacnew", ".rpmnew", ".rpmsave", ".orig", ".rej", ".swp",
)
_SKIP_NAMES = {"README"}


def default_search_path(node_root: Path | None = None) -> list[Path]:
    """A node tree's /etc/apparmor.d (when given), then the lab's own copies."""
    dirs: list[Path] = []
    if node_root is not None:
        dirs.append(node_root / "etc" / "apparmor.d")
    dirs.append(BUNDLED_DIR)
    return dirs


def skipped(name: str) -> bool:
    return name.startswith(".") or name in _SKIP_NAMES or name.endswith(_SKIP_SUFFIXES)


def read_profile_file(path: Path, shown: str | None = None) -> str:
    """A profile file's text; refuses huge and binary files with a clear message."""
    shown = shown or str(path)
    try:
        st = path.stat()
    except OSError as err:
        raise ProfileError(f"Could not open '{shown}': {err.strerror}", file=shown) from None
    if not stat.S_ISREG(st.st_mode):
        # a FIFO or a device would block the read or never end
        raise ProfileError(f"Could not open '{shown}': not a regular file", file=shown)
    size = st.st_size
    if size > MAX_INCLUDE_BYTES:
        raise ProfileError(
            f"file is too large for a profile ({size} bytes, limit {MAX_INCLUDE_BYTES})",
            file=shown)
    data = path.read_bytes()
    if b"\0" in data:
        raise ProfileError("binary file, not an AppArmor profile", file=shown)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


class IncludeResolver:
    """Answers the lexer's include requests from a search path.

    Given a node tree (`root`), every include that lands in the tree is read as the
    node would read it -- symlinks followed inside the tree, absolute targets from the
    node's `/`, never out of it -- and a quoted absolute include is a node path. The
    other folders of the search path (the lab's copies, `-I` folders on the host) are
    read as they are, without `..` in the name.
    """

    def __init__(self, search_path: Sequence[Path] = (), *, base_dir: Path | None = None,
                 root: Path | None = None) -> None:
        self.search_path = [Path(p) for p in search_path]
        self.base_dir = base_dir
        # quoted absolute paths (`include "/etc/apparmor.d/x"`) are looked up under
        # this root when given (a node tree), else on the host
        self.root = Path(os.path.realpath(root)) if root is not None else None
        self.count = 0

    def _node_path(self, host: Path) -> str | None:
        """`host` as a path on the node, when it lies in the node tree."""
        if self.root is None:
            return None
        real = Path(os.path.realpath(host))
        if real != self.root and self.root not in real.parents:
            return None
        rel = real.relative_to(self.root).as_posix()
        return "/" if rel == "." else "/" + rel

    def _in_node(self, node_path: str) -> Path | None:
        assert self.root is not None
        try:
            found = resolve_in_node(self.root, node_path)
        except NodePathError:
            return None
        return found if found.exists() else None

    def _under(self, folder: Path, name: str) -> Path | None:
        """`name` in `folder`: through the node when the folder is in the tree."""
        node_dir = self._node_path(folder)
        if node_dir is not None:
            return self._in_node(posixpath.join(node_dir, name))
        if self.root is not None and ".." in Path(name).parts:
            return None
        cand = folder / name
        return cand if cand.exists() else None

    def find(self, name: str, search: bool) -> Path | None:
        if search:
            for d in self.search_path:
                found = self._under(d, name)
                if found is not None:
                    return found
            return None
        p = Path(name)
        if p.is_absolute():
            if self.root is not None:
                return self._in_node(name)
            return p if p.exists() else None
        if self.base_dir is None:  # the working folder, as apparmor_parser; not for a node
            return p if self.root is None and p.exists() else None
        return self._under(self.base_dir, name)

    def _entries(self, folder: Path) -> list[Path]:
        """The files an include of a folder reads, in name order."""
        names = sorted(e.name for e in folder.iterdir() if not skipped(e.name))
        node_dir = self._node_path(folder)
        out = []
        for n in names:
            entry = self._in_node(f"{node_dir}/{n}") if node_dir is not None else folder / n
            if entry is not None and entry.is_file():
                out.append(entry)
        return out

    def __call__(self, name: str, search: bool, if_exists: bool, file: str,
                 line: int) -> list[tuple[str, str]]:
        path = self.find(name, search)
        if path is None:
            if if_exists:
                return []
            raise ProfileError(f"Could not open '{name}'", file=file, line=line)
        files = self._entries(path) if path.is_dir() else [path]
        out = []
        for p in files:
            self.count += 1
            if self.count > MAX_INCLUDED_FILES:
                raise ProfileError("too many included files", file=file, line=line)
            shown = self.shown(p, name, path, search)
            out.append((shown, read_profile_file(p, shown)))
        return out

    def shown(self, p: Path, name: str, found: Path, search: bool) -> str:
        """How an included file is named in messages: `abstractions/base` for `<...>`."""
        if not search:
            return str(p)
        rel = name.rstrip("/")
        return rel if p == found else f"{rel}/{p.name}"
