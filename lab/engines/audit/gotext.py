"""Go's text conventions, so simulated errors read as the real binaries print them.

strconv and time value parsing (with Go's error reasons), ``*os.PathError``
messages, ``%q`` for a rune, klog's text line format, utilerrors' aggregate,
``os.FileMode`` strings and the time formats audit events use.
"""

from __future__ import annotations

import re
import stat
from datetime import UTC, datetime
from typing import Any

ENOENT = "no such file or directory"
ENOTDIR = "not a directory"
EISDIR = "is a directory"
EROFS = "read-only file system"
ENXIO = "no such device or address"


def path_error(op: str, path: str, errno_text: str) -> str:
    """An *os.PathError message: ``open /x: no such file or directory``."""
    return f"{op} {path}: {errno_text}"


def os_error_text(exc: OSError) -> str:
    """The errno text Go prints for the error Python raised (``permission denied``)."""
    return (exc.strerror or str(exc)).lower()


def go_rune(c: str) -> str:
    """Go's %q for a rune: single-quoted."""
    inner = go_quote(c)[1:-1].replace('\\"', '"')
    return "'" + (inner if c != "'" else "\\'") + "'"


def klog_line(
    message: str,
    kv: list[tuple[str, str]],
    *,
    where: str,
    pid: int = 1,
    now: datetime | None = None,
) -> str:
    """An error line in klog's text format: ``E0102 15:04:05.000000 pid file:line] "msg" k="v"``"""
    ts = (now or datetime.now(UTC)).astimezone(UTC)
    head = f"E{ts:%m%d} {ts:%H:%M:%S}.{ts.microsecond:06d} {pid:>7} {where}] {go_quote(message)}"
    return head + "".join(f" {k}={go_quote(v)}" for k, v in kv)


def _parse_base0(s: str, signed: bool) -> tuple[bool, int]:
    """strconv's base-0 syntax: (negative, magnitude); raises ValueError("invalid syntax")."""
    sign = s[:1] if s[:1] in ("+", "-") else ""
    if sign and not signed:
        raise ValueError("invalid syntax")  # ParseUint takes no sign
    body = s[len(sign):]
    low = body.lower()
    prefixed = True
    if low.startswith(("0x", "0b", "0o")):
        base, digits = {"x": 16, "b": 2, "o": 8}[low[1]], body[2:]
    elif len(body) > 1 and body[0] == "0":
        base, digits = 8, body[1:]
    else:
        base, digits, prefixed = 10, body, False
    # Base 0 takes Go literal syntax: "_" only between digits or right after a prefix.
    if digits.endswith("_") or "__" in digits or (digits.startswith("_") and not prefixed):
        raise ValueError("invalid syntax")
    clean = digits.replace("_", "")
    if not clean or any(c not in "0123456789abcdef"[:base] for c in clean.lower()):
        raise ValueError("invalid syntax")
    return sign == "-", int(clean, base)


def go_parse_int(s: str) -> int:
    """strconv.ParseInt(s, 0, 64); raises ValueError("invalid syntax" | "value out of range")."""
    negative, magnitude = _parse_base0(s, signed=True)
    value = -magnitude if negative else magnitude
    if not -(2**63) <= value <= 2**63 - 1:
        raise ValueError("value out of range")
    return value


def go_parse_uint(s: str) -> int:
    """strconv.ParseUint(s, 0, 64); raises ValueError("invalid syntax" | "value out of range")."""
    _, value = _parse_base0(s, signed=False)
    if value > 2**64 - 1:
        raise ValueError("value out of range")
    return value


def go_aggregate(messages: list[str]) -> str:
    """utilerrors.NewAggregate(errs).Error(): one error bare, several "[a, b]", repeats dropped."""
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


# os.FileMode.String(): one letter per type bit, in this order, then the rwx bits.
_MODE_TYPE_LETTERS = (
    (stat.S_ISDIR, "d"),
    (stat.S_ISLNK, "L"),
    (lambda m: stat.S_ISBLK(m) or stat.S_ISCHR(m), "D"),  # ModeDevice
    (stat.S_ISFIFO, "p"),
    (stat.S_ISSOCK, "S"),
)


def go_file_mode(st_mode: int) -> str:
    """Go's os.FileMode String() for a stat mode, e.g. "prw-r--r--" for a named pipe."""
    letters = "".join(ch for test, ch in _MODE_TYPE_LETTERS if test(st_mode))
    if st_mode & stat.S_ISUID:
        letters += "u"
    if st_mode & stat.S_ISGID:
        letters += "g"
    if stat.S_ISCHR(st_mode):
        letters += "c"
    if st_mode & stat.S_ISVTX:
        letters += "t"
    bits = (0o400, 0o200, 0o100, 0o40, 0o20, 0o10, 0o4, 0o2, 0o1)
    perm = "".join(ch if st_mode & bit else "-" for ch, bit in zip("rwxrwxrwx", bits, strict=True))
    return (letters or "-") + perm


def micro_time(ts: datetime) -> str:
    """metav1.MicroTime JSON: UTC, always six fractional digits, 'Z'."""
    return utc(ts).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rfc3339_nano(ts: datetime) -> str:
    """Go's time.RFC3339Nano for a UTC time: trailing zeros of the fraction trimmed."""
    u = utc(ts)
    base = u.strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{u.microsecond:06d}".rstrip("0")
    return f"{base}.{frac}Z" if frac else f"{base}Z"


def parse_micro_time(value: str) -> datetime | None:
    """A MicroTime/RFC 3339 string back to a datetime (None when it is not one)."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def utc(ts: datetime) -> datetime:
    """``ts`` in UTC; a naive datetime is taken to be UTC already."""
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)


GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")
GO_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def go_parse_bool(s: str) -> bool:
    """strconv.ParseBool; raises ValueError("invalid syntax")."""
    if s in GO_TRUE:
        return True
    if s in GO_FALSE:
        return False
    raise ValueError("invalid syntax")


_FLOAT_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|infinity|nan)$", re.I)


def go_parse_float(s: str) -> float:
    """strconv.ParseFloat; raises ValueError("invalid syntax")."""
    if not _FLOAT_RE.match(s):
        raise ValueError("invalid syntax")
    return float(s)


_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}


_DURATION_NUMBER = re.compile(r"(\d*)(\.\d*)?")
_DURATION_UNIT = re.compile(r"[^\d.]+")


def go_parse_duration(s: str) -> int:
    """time.ParseDuration in nanoseconds; raises ValueError with Go's message."""
    quoted = go_quote(s)
    if s[:1] in "+-":
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f"time: invalid duration {quoted}")
    total = 0.0
    while s:
        m = _DURATION_NUMBER.match(s)
        if not m or (not m.group(1) and (not m.group(2) or m.group(2) == ".")):
            raise ValueError(f"time: invalid duration {quoted}")
        number = float((m.group(1) or "0") + (m.group(2) or ""))
        s = s[m.end() :]
        u = _DURATION_UNIT.match(s)
        if not u:
            raise ValueError(f"time: missing unit in duration {quoted}")
        unit = u.group(0)
        if unit not in _DURATION_UNITS:
            raise ValueError(f"time: unknown unit {go_quote(unit)} in duration {quoted}")
        total += number * _DURATION_UNITS[unit]
        s = s[u.end() :]
    return int(total)


_SIMPLE_ESCAPES = {
    "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
    "\v": "\\v", "\\": "\\\\", '"': '\\"',
}  # fmt: skip


def go_quote(s: str) -> str:
    """Go's strconv.Quote / %q: printable runes kept, the rest escaped."""
    out = ['"']
    for ch in s:
        if ch in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def json_type(value: Any) -> str:
    """The JSON type name Go's encoding/json uses in its errors."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"
