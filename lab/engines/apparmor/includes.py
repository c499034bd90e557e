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

from collections.abc import Sequence
from pathlib import Path

from lab.engines.apparmor.errors import ProfileError

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
        size = path.stat().st_size
    except OSError as err:
        raise ProfileError(f"Could not open '{shown}': {err.strerror}", file=shown) from None
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
    """Answers the lexer's include requests from a search path."""

    def __init__(self, search_path: Sequence[Path] = (), *, base_dir: Path | None = None,
                 root: Path | None = None) -> None:
        self.search_path = [Path(p) for p in search_path]
        self.base_dir = base_dir
        # quoted absolute paths (`include "/etc/apparmor.d/x"`) are looked up under
        # this root when given (a node tree), else on the host
        self.root = root
        self.count = 0

    def find(self, name: str, search: bool) -> Path | None:
        if search:
            for d in self.search_path:
                cand = d / name
                if cand.exists():
                    return cand
            return None
        if ".." in Path(name).parts and self.root is not None:
            return None
        p = Path(name)
        if p.is_absolute():
            if self.root is not None:
                p = self.root / name.lstrip("/")
        elif self.base_dir is not None:
            p = self.base_dir / p
        return p if p.exists() else None

    def __call__(self, name: str, search: bool, if_exists: bool, file: str,
                 line: int) -> list[tuple[str, str]]:
        path = self.find(name, search)
        if path is None:
            if if_exists:
                return []
            raise ProfileError(f"Could not open '{name}'", file=file, line=line)
        files = [path]
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and not skipped(p.name))
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
