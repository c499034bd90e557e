"""Path resolution inside a simulated node tree.

A sim node is a directory (``<workspace>/nodes/<name>/``) standing in for the
node's ``/``. Paths in manifests and flags are node paths ("/etc/kubernetes/...");
this module maps them into the tree with chroot semantics: an absolute symlink
target means "from the node's root", never from the real host's root. Anything
that would leave the tree (``..`` above the root, symlink tricks) is refused.

Files are read with :func:`read_regular`: stat first, refuse anything but a
regular file (a FIFO would block the reader forever, a device never ends),
and read at most one byte past the caller's limit.
"""

from __future__ import annotations

import os
import posixpath
import stat
from pathlib import Path
from typing import BinaryIO

from lab.errors import LabError

# Linux gives up after 40 symlink hops (ELOOP); use the same limit.
_MAX_SYMLINKS = 40


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class NodePathError(LabError):
    """A node path that cannot be mapped into the node tree."""


class NotRegularFile(LabError):
    """A path that exists but is a directory, FIFO, socket, device or symlink."""

    def __init__(self, path: str, st_mode: int) -> None:
        self.st_mode = st_mode
        self.kind = file_kind(st_mode)
        super().__init__(f"is a {self.kind}, not a regular file", file=path)


_KINDS = (
    (stat.S_ISDIR, "directory"),
    (stat.S_ISFIFO, "named pipe (FIFO)"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISLNK, "symbolic link"),
    (stat.S_ISREG, "regular file"),
)


def file_kind(st_mode: int) -> str:
    """What a stat mode is, in words ("named pipe (FIFO)", "directory", ...)."""
    return next((name for test, name in _KINDS if test(st_mode)), "file of unknown type")


def open_regular(path: Path, *, follow_symlinks: bool = True) -> BinaryIO:
    """Open ``path`` for binary reading only if it is a regular file.

    Stats first and never opens anything else (opening a FIFO blocks, some
    devices act on open); the descriptor is checked again, so a swap between
    the stat and the open cannot slip a FIFO in. With ``follow_symlinks``
    false a symlink in the last component is refused: use it for paths
    :func:`resolve_in_node` already resolved. OSError (missing file, no
    permission, ...) propagates; a non-regular file raises :class:`NotRegularFile`.
    """
    st = os.stat(path, follow_symlinks=follow_symlinks)
    if not stat.S_ISREG(st.st_mode):
        raise NotRegularFile(str(path), st.st_mode)
    flags = os.O_RDONLY | _NONBLOCK | _CLOEXEC | (0 if follow_symlinks else _NOFOLLOW)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(str(path), st.st_mode)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: Path, limit: int, *, follow_symlinks: bool = True) -> bytes:
    """A regular file's first ``limit + 1`` bytes at most (more than ``limit``: too big)."""
    with open_regular(path, follow_symlinks=follow_symlinks) as fh:
        return fh.read(limit + 1)


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


def normalize_node_path(path: str) -> str:
    """Lexically normalise an absolute node path ("/a//b/./c/" -> "/a/b/c")."""
    if not path.startswith("/"):
        path = "/" + path
    norm = posixpath.normpath(path)
    # POSIX keeps a leading "//"; the kernel treats it as "/".
    return "/" + norm.lstrip("/")
