"""Copy a folder someone else made (a submission, a learner's node tree) safely.

`shutil.copytree` trusts its source: it reads a character device forever
(`/dev/zero`), blocks on a FIFO, follows a symlinked top folder out of the tree
and stops with a `shutil.Error` traceback on anything odd. `copy_tree` copies
only what a node tree may hold:

* folders, walked without following symlinks;
* regular files, each at most `max_file` bytes, `max_total` in all, and at most
  `max_entries` entries (files, folders and symlinks);
* symlinks, as symlinks: the engine resolves them chroot-style inside the node.

Anything else (a device, a FIFO, a socket) is refused with a located LabError,
or skipped when `special="skip"`. The copy is laid over `dest` (a submission
may commit only the files it changed); `dest` must be a folder the lab made,
and nothing is ever written through a symlink in it.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lab.errors import LabError

MiB = 1024 * 1024

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_CHUNK = 256 * 1024

_KINDS = (
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
)


def kind_of(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "a special file"


@dataclass(frozen=True)
class Limits:
    max_file: int | None = 1 * MiB
    max_total: int | None = 64 * MiB
    max_entries: int | None = 20_000


UNLIMITED = Limits(None, None, None)
SUBMISSION = Limits()


@dataclass
class _Tally:
    bytes: int = 0
    entries: int = 0


def _size(n: int) -> str:
    return f"{n // MiB} MiB" if n % MiB == 0 else f"{n} bytes"


def refuse_symlink(path: Path, what: str) -> None:
    """A LabError when `path` is a symlink (lstat: the link itself is looked at)."""
    if path.is_symlink():
        raise LabError(
            f"{what} is a symlink; it must be a real folder (cks-lab does not follow it)",
            file=str(path),
        )


def copy_tree(
    src: Path,
    dest: Path,
    *,
    limits: Limits = SUBMISSION,
    special: Literal["refuse", "skip"] = "refuse",
    what: str = "a submission",
) -> None:
    """Lay the tree `src` over the folder `dest` (created if absent); see the module doc."""
    refuse_symlink(src, "the folder")
    try:
        st = os.lstat(src)
    except OSError as e:
        raise LabError(f"cannot read: {e.strerror}", file=str(src)) from None
    if not stat.S_ISDIR(st.st_mode):
        raise LabError("is not a folder", file=str(src))
    tally = _Tally()
    _make_dir(dest)
    stack = [(src, dest)]
    while stack:
        s_dir, d_dir = stack.pop()
        try:
            with os.scandir(s_dir) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            raise LabError(f"cannot read the folder: {e.strerror}", file=str(s_dir)) from None
        for entry in entries:
            s, d = Path(entry.path), d_dir / entry.name
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError as e:
                raise LabError(f"cannot read: {e.strerror}", file=str(s)) from None
            if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
                if special == "skip":
                    continue
                raise LabError(
                    f"is {kind_of(mode)}; {what} holds only files, folders and symlinks",
                    file=str(s),
                )
            tally.entries += 1
            if limits.max_entries is not None and tally.entries > limits.max_entries:
                raise LabError(
                    f"{what} holds more than {limits.max_entries} files and folders",
                    file=str(src),
                )
            try:
                if stat.S_ISDIR(mode):
                    _make_dir(d)
                    stack.append((s, d))
                elif stat.S_ISLNK(mode):
                    target = os.readlink(s)
                    _clear(d)
                    os.symlink(target, d)
                else:
                    _copy_file(s, d, limits, tally, what, src, special)
            except LabError:
                raise
            except OSError as e:
                raise LabError(f"cannot copy: {e.strerror or e}", file=str(s)) from None


def _clear(d: Path) -> None:
    """Remove whatever is at `d` (never following a symlink there)."""
    try:
        st = os.lstat(d)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(d)
    else:
        os.unlink(d)


def _make_dir(d: Path) -> None:
    try:
        st = os.lstat(d)
    except FileNotFoundError:
        os.mkdir(d, 0o755)
        return
    if not stat.S_ISDIR(st.st_mode):  # a file or symlink where the copy has a folder
        os.unlink(d)
        os.mkdir(d, 0o755)


def _copy_file(
    s: Path,
    d: Path,
    limits: Limits,
    tally: _Tally,
    what: str,
    top: Path,
    special: str,
) -> None:
    # O_NONBLOCK: should the file be swapped for a FIFO since the lstat, open
    # does not hang; the fstat below then sees what was really opened.
    fd = os.open(s, os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _CLOEXEC)
    with os.fdopen(fd, "rb") as src:
        st = os.fstat(src.fileno())
        if not stat.S_ISREG(st.st_mode):
            if special == "skip":
                return
            raise LabError(
                f"is {kind_of(st.st_mode)}; {what} holds only files, folders and symlinks",
                file=str(s),
            )
        _clear(d)
        out = os.open(d, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600)
        with os.fdopen(out, "wb") as dst:
            size = 0
            while chunk := src.read(_CHUNK):
                size += len(chunk)
                tally.bytes += len(chunk)
                if limits.max_file is not None and size > limits.max_file:
                    raise LabError(
                        f"is larger than {_size(limits.max_file)}, the most a file in {what} "
                        "may hold",
                        file=str(s),
                    )
                if limits.max_total is not None and tally.bytes > limits.max_total:
                    raise LabError(
                        f"{what} holds more than {_size(limits.max_total)}", file=str(top)
                    )
                dst.write(chunk)
            os.fchmod(dst.fileno(), stat.S_IMODE(st.st_mode) & 0o777)
    os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
