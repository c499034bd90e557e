"""Path resolution inside a simulated node tree.

A sim node is a directory (``<workspace>/nodes/<name>/``) standing in for the
node's ``/``. Paths in manifests and flags are node paths ("/etc/kubernetes/...");
this module maps them into the tree with chroot semantics: an absolute symlink
target means "from the node's root", never from the real host's root. Anything
that would leave the tree (``..`` above the root, symlink tricks) is refused.
"""

from __future__ import annotations

import os
import posixpath
import stat
from pathlib import Path

from lab.errors import LabError

# Linux gives up after 40 symlink hops (ELOOP); use the same limit.
_MAX_SYMLINKS = 40


class NodePathError(LabError):
    """A node path that cannot be mapped into the node tree."""


def resolve_in_node(node_root: Path, abs_path: str, *, follow_final: bool = True) -> Path:
    """Map the absolute node path ``abs_path`` to a real path under ``node_root``.

    Symlinks inside the tree are followed (absolute targets are taken relative
    to the node root, as the node itself would see them). The result never lies
    outside ``node_root``: a ``..`` that climbs above the root or a symlink that
    leads out raises :class:`NodePathError`. Components that do not exist are
    kept as written, so the result may name something still to be created.
    """
    if not isinstance(abs_path, str) or not abs_path.startswith("/"):
        raise NodePathError(f"node path must be absolute, got {abs_path!r}")
    if "\x00" in abs_path:
        raise NodePathError(f"node path contains a NUL byte: {abs_path!r}")
    root = Path(os.path.realpath(node_root))
    parts: list[str] = []  # resolved components below root, symlink-free
    pending = [p for p in abs_path.split("/") if p not in ("", ".")]
    pending.reverse()  # a stack: next component at the end
    hops = 0
    while pending:
        comp = pending.pop()
        if comp == "..":
            if not parts:
                raise NodePathError(f"node path {abs_path!r} climbs above the node root")
            parts.pop()
            continue
        candidate = root.joinpath(*parts, comp)
        is_last = not pending
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            parts.append(comp)
            continue
        except NotADirectoryError:
            parts.append(comp)
            continue
        if stat.S_ISLNK(st.st_mode) and (follow_final or not is_last):
            hops += 1
            if hops > _MAX_SYMLINKS:
                raise NodePathError(f"too many levels of symbolic links resolving {abs_path!r}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                parts = []  # chroot semantics: absolute target starts at node root
            elif _escapes(parts, target):
                raise NodePathError(
                    f"symlink {'/' + '/'.join(parts + [comp])} -> {target} leads outside the node"
                )
            for t in reversed([p for p in target.split("/") if p not in ("", ".")]):
                pending.append(t)
            continue
        parts.append(comp)
    result = root.joinpath(*parts)
    # Belt and braces: the walk above never leaves root, but check the invariant.
    if os.path.commonpath([str(root), str(result)]) != str(root):
        raise NodePathError(f"node path {abs_path!r} resolves outside the node")
    return result


def _escapes(parts: list[str], target: str) -> bool:
    """True when a relative symlink target climbs above the node root."""
    depth = len(parts)
    for comp in target.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            depth -= 1
            if depth < 0:
                return True
        else:
            depth += 1
    return False


def node_path(node_root: Path, real: Path) -> str:
    """The node path ("/etc/...") of a real path under ``node_root``."""
    root = Path(os.path.realpath(node_root))
    rel = Path(os.path.abspath(real)).relative_to(root)
    return "/" + rel.as_posix() if rel.parts else "/"


def normalize_node_path(path: str) -> str:
    """Lexically normalise an absolute node path ("/a//b/./c/" -> "/a/b/c")."""
    if not path.startswith("/"):
        path = "/" + path
    norm = posixpath.normpath(path)
    # POSIX keeps a leading "//"; the kernel treats it as "/".
    return "/" + norm.lstrip("/")
