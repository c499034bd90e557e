"""The audit log file: written as kube-apiserver's lumberjack writer does, read back by line.

For a file path kube-apiserver always writes through ``lumberjack.Logger``
with ``MaxSize``/``MaxBackups``/``MaxAge`` taken from ``--audit-log-maxsize``/
``-maxbackup``/``-maxage`` (apiserver pkg/server/options/audit.go), so an unset
or 0 ``--audit-log-maxsize`` still rotates, at lumberjack's default of 100 MB.
Reading streams the file one line at a time: a log of hundreds of megabytes is
never held in memory whole, and a FIFO or device is refused, never opened.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from lab.engines.audit.gotext import ENOENT, os_error_text, path_error, utc
from lab.engines.audit.legacy import parse_legacy_line
from lab.errors import LabError
from lab.nodefs import NotRegularFile, open_regular

# --audit-log-format values (plugin/pkg/audit/log AllowedFormats), in upstream's order.
LOG_FORMATS = ("legacy", "json")

# lumberjack.v2: MaxSize 0 means this many megabytes; backups are named
# "<name>-<UTC 2006-01-02T15-04-05.000><ext>".
LUMBERJACK_DEFAULT_MAX_SIZE_MB = 100
_MEGABYTE = 1024 * 1024

# A longer line is refused instead of being read into memory: an event that big
# is not something the lab writes, so the file is not an audit log.
MAX_LINE_BYTES = 64 * _MEGABYTE


class AuditLogError(LabError):
    """An audit log file that cannot be written or read as events."""


def check_log_format(fmt: str) -> None:
    """Raise ValueError with the log backend's wording for an unknown format."""
    if fmt not in LOG_FORMATS:
        raise ValueError(
            f"log format {fmt!r} is not in list of known formats ({','.join(LOG_FORMATS)})"
        )


# --------------------------------------------------------------------------- writing


def append_events(
    path: Path,
    lines: Iterable[str],
    *,
    create_parents: bool = False,
    lumberjack_max_size_mb: int | None = None,
    max_backups: int = 0,
    now: datetime | None = None,
) -> list[Path]:
    """Append log ``lines`` to ``path`` (a real path, already resolved in the node).

    This is one lumberjack.Logger session. ``lumberjack_max_size_mb`` is the
    ``--audit-log-maxsize`` value as lumberjack reads it: None (flag unset) or
    0 rotate at 100 MB. The first write rotates an existing file if it would
    reach the limit; later writes rotate when they would pass it. A rotated
    file becomes ``<name>-<UTC 2006-01-02T15-04-05.000><ext>`` and only the
    newest ``max_backups`` backups are kept (0 keeps all). Parent directories
    are created only when ``create_parents`` is set: the caller knows whether
    the apiserver's MkdirAll would have made them. Returns the backups made.
    """
    if create_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.parent.is_dir():
        raise AuditLogError(path_error("open", str(path), ENOENT), file=str(path))
    limit = (lumberjack_max_size_mb or LUMBERJACK_DEFAULT_MAX_SIZE_MB) * _MEGABYTE
    stamp_time = now or datetime.now(UTC)
    rotated: list[Path] = []
    try:
        size = path.stat().st_size if path.exists() else None
        fh = open(path, "a", encoding="utf-8", newline="")  # noqa: SIM115 - reopened on rotation
    except OSError as exc:
        raise AuditLogError(path_error("open", str(path), os_error_text(exc)),
                            file=str(path)) from None
    first = True
    try:
        for line in lines:
            data = line if line.endswith("\n") else line + "\n"
            nbytes = len(data.encode("utf-8"))
            if nbytes > limit:
                raise AuditLogError(
                    f"write length {nbytes} exceeds maximum file size {limit}", file=str(path)
                )
            if first:
                _cleanup_backups(path, max_backups)  # lumberjack mills old files on open
            # openExistingOrNew rotates at ">= max"; Write afterwards at "> max".
            current = size or 0
            full = current + nbytes >= limit if first else current + nbytes > limit
            if full and (size is not None or not first):
                fh.close()
                backup = _backup_name(path, stamp_time)
                os.replace(path, backup)
                rotated.append(backup)
                fh = open(path, "a", encoding="utf-8", newline="")  # noqa: SIM115
                size = 0
                _cleanup_backups(path, max_backups)
            first = False
            fh.write(data)
            size = (size or 0) + nbytes
    finally:
        fh.close()
    return rotated


def _split_ext(name: str) -> tuple[str, str]:
    # Go's filepath.Ext: from the last "." of the name (".log" is all extension).
    dot = name.rfind(".")
    return (name[:dot], name[dot:]) if dot >= 0 else (name, "")


def _backup_name(path: Path, now: datetime) -> Path:
    stem, ext = _split_ext(path.name)
    u = utc(now)
    stamp = u.strftime("%Y-%m-%dT%H-%M-%S.") + f"{u.microsecond // 1000:03d}"
    candidate = path.with_name(f"{stem}-{stamp}{ext}")
    n = 1
    # Same millisecond: lumberjack's rename would overwrite the older backup; keep both.
    while candidate.exists():
        candidate = path.with_name(f"{stem}-{stamp}.{n}{ext}")
        n += 1
    return candidate


def _cleanup_backups(path: Path, max_backups: int) -> None:
    if max_backups <= 0 or not path.parent.is_dir():
        return
    stem, ext = _split_ext(path.name)
    pattern = re.compile(
        re.escape(stem) + r"-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}(\.\d+)?" + re.escape(ext)
    )
    backups = sorted(
        (p for p in path.parent.iterdir() if pattern.fullmatch(p.name) and p.is_file()),
        key=lambda p: p.name,
    )
    for old in backups[: max(0, len(backups) - max_backups)]:
        old.unlink(missing_ok=True)


# --------------------------------------------------------------------------- reading


def iter_events(path: Path, fmt: str = "json") -> Iterator[dict[str, Any]]:
    """Events in the log at ``path``, in order, read one line at a time.

    The file is opened (and refused: missing, a directory, a FIFO or device)
    when this is called, not on the first ``next()``. A last line without its
    newline that does not parse is a write still in progress and is skipped;
    any other unreadable line raises :class:`AuditLogError` naming file and line.
    """
    check_log_format(fmt)
    return _events(_open_log(path), path, fmt)


def read_events(path: Path, fmt: str = "json") -> list[dict[str, Any]]:
    """All events of the log at ``path`` (see :func:`iter_events`)."""
    return list(iter_events(path, fmt))


def _open_log(path: Path) -> BinaryIO:
    try:
        return open_regular(path)
    except FileNotFoundError:
        raise AuditLogError("audit log does not exist", file=str(path)) from None
    except NotRegularFile as exc:
        if exc.kind == "directory":
            message = "audit log path is a directory, not a file"
        else:
            message = f"audit log path is a {exc.kind}, not a regular file; refusing to read it"
        raise AuditLogError(message, file=str(path)) from None
    except OSError as exc:
        raise AuditLogError(f"cannot read the audit log: {os_error_text(exc)}",
                            file=str(path)) from None


def _events(fh: BinaryIO, path: Path, fmt: str) -> Iterator[dict[str, Any]]:
    with fh:
        number = 0
        while True:
            raw = fh.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            number += 1
            complete = raw.endswith(b"\n")
            if not complete and len(raw) > MAX_LINE_BYTES:
                raise AuditLogError(
                    f"line is longer than {MAX_LINE_BYTES} bytes; not an audit log",
                    file=str(path),
                    line=number,
                )
            text = raw.decode("utf-8", errors="replace")
            if complete:
                text = text[:-1]
            if not text.strip():
                continue
            try:
                event = _parse(text, fmt)
            except ValueError as exc:  # json.JSONDecodeError is a ValueError
                if not complete:  # only the last line can lack its "\n"
                    return
                raise AuditLogError(
                    f"not an audit event: {exc}", file=str(path), line=number
                ) from None
            yield event


def _parse(line: str, fmt: str) -> dict[str, Any]:
    if fmt == "legacy":
        return dict(parse_legacy_line(line))
    ev = json.loads(line)
    if not isinstance(ev, dict):
        raise ValueError("expected a JSON object")
    if ev.get("kind") != "Event":
        raise ValueError(f"kind is {ev.get('kind')!r}, expected 'Event'")
    return ev
