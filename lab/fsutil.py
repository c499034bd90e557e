"""Small file-system helpers: atomic writes, so state is never half-written; writes and
reads that never follow a symlink inside a folder the lab owns; UTF-8 lines with places.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from itertools import chain
from pathlib import Path
from typing import IO, Any

from lab.errors import LabError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def atomic_write_bytes(
    path: Path, data: bytes, mode: int = 0o644, *, within: Path | None = None
) -> None:
    """Write `path` whole or not at all (a temp file, then a rename).

    A symlink at `path` itself is replaced, never followed. With `within`, no
    folder between `within` and `path` may be a symlink either (missing ones
    are created): what the lab writes in a workspace stays in it.
    """
    if within is not None:
        _atomic_write_within(Path(within), Path(path), data, mode)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_all_or_none(files: dict[Path, str]) -> None:
    """Write several text files so that either all of them appear or none does.

    Every file is first written beside its target; only when all are written
    are they renamed into place (a CI job must not find half a report set).
    """
    temps: list[tuple[str, Path]] = []
    try:
        for path, text in files.items():
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            temps.append((tmp, path))
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.chmod(tmp, 0o644)
    except OSError as e:
        for tmp, _ in temps:
            Path(tmp).unlink(missing_ok=True)
        raise LabError(f"cannot write the report: {e.strerror or e}", file=str(path)) from None
    for tmp, path in temps:
        os.replace(tmp, path)


def atomic_write_json(path: Path, obj: Any, *, within: Path | None = None) -> None:
    data = (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()
    atomic_write_bytes(path, data, within=within)


def _relative_parts(within: Path, path: Path) -> list[str]:
    try:
        rel = path.relative_to(within)
    except ValueError:
        raise LabError(f"refusing to write outside {within}", file=str(path)) from None
    parts = list(rel.parts)
    if not parts or any(p in ("", ".", "..") for p in parts):
        raise LabError(f"refusing to write outside {within}", file=str(path))
    return parts


def open_dir_nofollow(within: Path, parts: list[str], *, create: bool) -> int:
    """A descriptor of the folder `within`/`parts`, refusing a symlink on the way.

    `within` itself may be a symlink (the user chose it); nothing below it may.
    """
    fd = os.open(within, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    here = within
    try:
        for part in parts:
            here = here / part
            if create:
                try:
                    os.mkdir(part, 0o755, dir_fd=fd)
                except FileExistsError:
                    pass
            try:
                st = os.stat(part, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                raise LabError("folder does not exist", file=str(here)) from None
            if stat.S_ISLNK(st.st_mode):
                raise LabError(
                    "is a symlink; cks-lab does not write through symlinks here", file=str(here)
                )
            if not stat.S_ISDIR(st.st_mode):
                raise LabError("is not a folder", file=str(here))
            nxt = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def _atomic_write_within(within: Path, path: Path, data: bytes, mode: int) -> None:
    *folders, name = _relative_parts(within, path)
    dfd = open_dir_nofollow(within, folders, create=True)
    try:
        tmp = f".{name}.{os.urandom(6).hex()}.tmp"
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600, dir_fd=dfd
        )
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fchmod(fh.fileno(), mode)
                os.fsync(fh.fileno())
            # rename replaces a symlink at `name`; it never writes through one
            os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=dfd)
            except OSError:
                pass
            raise
    finally:
        os.close(dfd)


def read_bytes_nofollow(path: Path, limit: int) -> bytes:
    """A regular file's bytes (at most `limit`), refusing a symlink or a special file."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise LabError(
                "is a symlink; cks-lab does not read through it", file=str(path)
            ) from None
        raise
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise LabError("is not a regular file", file=str(path))
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise LabError(f"is larger than {limit} bytes", file=str(path))
    return data


def utf8_lines(stream: IO[bytes], source: str, block: int = 1 << 16) -> Iterator[str]:
    """The lines of a binary stream as text, without their "\\n".

    Input that is not UTF-8 raises ``LabError("not UTF-8 text")`` located at its
    line. Big blocks are decoded at once (a line never splits a character:
    0x0A is never part of a multi-byte UTF-8 sequence) and the lines are handed
    out by `chain`, in C: this costs next to nothing per line.
    """
    return chain.from_iterable(_line_blocks(stream, source, block))


def _line_blocks(stream: IO[bytes], source: str, block: int) -> Iterator[list[str]]:
    carry = bytearray()
    number = 0  # lines handed out so far

    def decode(data: bytes | bytearray) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = number + data.count(b"\n", 0, e.start) + 1
            raise LabError("not UTF-8 text", file=source, line=line) from None

    while chunk := stream.read(block):
        end = chunk.rfind(b"\n")
        if end < 0:
            carry += chunk
            continue
        if carry:
            carry += chunk[: end + 1]
            text = decode(carry)
            carry = bytearray()
        else:
            text = decode(chunk[: end + 1] if end + 1 < len(chunk) else chunk)
        carry += chunk[end + 1 :]
        lines = text.split("\n")
        lines.pop()  # the empty string after the last "\n"
        number += len(lines)
        yield lines
    if carry:
        yield [decode(carry)]
