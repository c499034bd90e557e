"""libsinsp's value types (ppm_param_type), as the filter compiler and formatter see them.

Each type name is spelled as libs' `param_type_to_string` prints it ("CHARBUF",
"UINT32", "IPADDR" ...). A type belongs to a *kind* that decides how values are
held here: "str", "bytes", "int", "float", "bool", "ip", "net" or "opaque"
(sockaddrs, fd lists ...: only `exists` works on those).

Events carry values as `sysdig -j` prints them (str, JSON numbers, bools, lists);
`event_normalizer(kind)` turns one such raw value into the held form, or None
when it is not available or unusable.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import lru_cache
from typing import Any

# libs' ppm_param_type enum values: upstream prints them in "wrong parameter type N".
TYPE_CODES: dict[str, int] = {
    "NONE": 0, "INT8": 1, "INT16": 2, "INT32": 3, "INT64": 4, "UINT8": 5, "UINT16": 6,
    "UINT32": 7, "UINT64": 8, "CHARBUF": 9, "BYTEBUF": 10, "ERRNO": 11, "SOCKADDR": 12,
    "SOCKTUPLE": 13, "FD": 14, "PID": 15, "FDLIST": 16, "FSPATH": 17, "SYSCALLID": 18,
    "SIGTYPE": 19, "RELTIME": 20, "ABSTIME": 21, "PORT": 22, "L4PROTO": 23,
    "SOCKFAMILY": 24, "BOOL": 25, "IPV4ADDR": 26, "DYNAMIC": 27, "FLAGS8": 28,
    "FLAGS16": 29, "FLAGS32": 30, "UID": 31, "GID": 32, "DOUBLE": 33, "SIGSET": 34,
    "CHARBUFARRAY": 35, "CHARBUF_PAIR_ARRAY": 36, "IPV4NET": 37, "IPV6ADDR": 38,
    "IPV6NET": 39, "IPADDR": 40, "IPNET": 41, "MODE": 42, "FSRELPATH": 43,
    "ENUMFLAGS8": 44, "ENUMFLAGS16": 45, "ENUMFLAGS32": 46,
}

# (bits, signed) of the integer types, as libs stores them.
INT_WIDTHS: dict[str, tuple[int, bool]] = {
    "INT8": (8, True), "INT16": (16, True), "INT32": (32, True), "INT64": (64, True),
    "FD": (64, True), "PID": (64, True), "ERRNO": (64, True),
    "UINT8": (8, False), "UINT16": (16, False), "UINT32": (32, False), "UINT64": (64, False),
    "FLAGS8": (8, False), "FLAGS16": (16, False), "FLAGS32": (32, False),
    "ENUMFLAGS8": (8, False), "ENUMFLAGS16": (16, False), "ENUMFLAGS32": (32, False),
    "MODE": (32, False), "UID": (32, False), "GID": (32, False), "SIGTYPE": (8, False),
    "SYSCALLID": (16, False), "PORT": (16, False), "L4PROTO": (8, False),
    "RELTIME": (64, False), "ABSTIME": (64, False), "SIGSET": (32, False),
}

STRING_TYPES = frozenset({"CHARBUF", "FSPATH", "FSRELPATH"})
IP_TYPES = frozenset({"IPADDR", "IPV4ADDR", "IPV6ADDR"})
NET_TYPES = frozenset({"IPNET", "IPV4NET", "IPV6NET"})


def kind_of(ftype: str) -> str:
    if ftype in STRING_TYPES:
        return "str"
    if ftype == "BYTEBUF":
        return "bytes"
    if ftype in INT_WIDTHS:
        return "int"
    if ftype == "DOUBLE":
        return "float"
    if ftype == "BOOL":
        return "bool"
    if ftype in IP_TYPES:
        return "ip"
    if ftype in NET_TYPES:
        return "net"
    return "opaque"


def wrap_int(value: int, ftype: str) -> int:
    """Narrow an integer to the type's width, two's complement, as a C cast does."""
    bits, signed = INT_WIDTHS[ftype]
    mask = (1 << bits) - 1
    value &= mask
    if signed and value >> (bits - 1):
        value -= 1 << bits
    return value


@lru_cache(maxsize=8192)
def parse_ip(text: str) -> tuple[int, int] | None:
    """(4 or 6, integer address) for an IP literal, None when it is not one."""
    try:
        addr = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    return addr.version, int(addr)


def format_ip(ip: tuple[int, int]) -> str:
    version, value = ip
    return str(ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value))


def _norm_str(raw: Any) -> str | None:
    if raw.__class__ is str:
        return raw
    if raw is None or isinstance(raw, (list, tuple, dict)):
        return None
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "surrogateescape")
    return str(raw)


def _norm_bytes(raw: Any) -> bytes | None:
    if isinstance(raw, bytes):
        return raw
    if raw.__class__ is str:
        return raw.encode("utf-8", "surrogateescape")
    return None


def _int_normalizer(ftype: str) -> Callable[[Any], int | None]:
    bits, signed = INT_WIDTHS[ftype]
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)

    def norm(raw: Any) -> int | None:
        if raw.__class__ is not int:
            if raw is None or isinstance(raw, (list, tuple, dict)):
                return None
            if isinstance(raw, bool):
                raw = int(raw)
            elif isinstance(raw, float):
                raw = int(raw)
            else:
                try:
                    raw = int(str(raw).strip())
                except ValueError:
                    return None
        if lo <= raw <= hi:
            return raw
        return wrap_int(raw, ftype)

    return norm


def _norm_float(raw: Any) -> float | None:
    if raw is None or isinstance(raw, (list, tuple, dict, bool)):
        return None
    try:
        return float(raw)
    except (TypeError, ValueError):
        return None


def _norm_bool(raw: Any) -> bool | None:
    if raw is True or raw is False:
        return raw
    if isinstance(raw, (int, float)):
        return raw != 0
    if raw.__class__ is str:
        if raw == "true":
            return True
        if raw == "false":
            return False
    return None


def _norm_ip(raw: Any) -> tuple[int, int] | None:
    if raw.__class__ is str:
        return parse_ip(raw)
    return None


def event_normalizer(ftype: str) -> Callable[[Any], Any]:
    """A function from one raw event value (never None) to its held form, or None."""
    kind = kind_of(ftype)
    if kind == "str":
        return _norm_str
    if kind == "bytes":
        return _norm_bytes
    if kind == "int":
        return _int_normalizer(ftype)
    if kind == "float":
        return _norm_float
    if kind == "bool":
        return _norm_bool
    if kind in ("ip", "net"):
        return _norm_ip
    return lambda raw: raw


def split_list(raw: Any) -> list[Any] | None:
    """A list field's raw value as items: a JSON list, or libs' printed "(a,b)" form."""
    if isinstance(raw, (list, tuple)):
        return list(raw)
    if raw.__class__ is str:
        text = raw.strip()
        if text.startswith("(") and text.endswith(")"):
            text = text[1:-1]
        return [item for item in text.split(",") if item != ""] if text else []
    return None


def printable_buffer(data: bytes) -> str:
    """libs' default rendering of a byte buffer: printable ASCII kept, the rest as '.'."""
    return "".join(chr(b) if 32 <= b < 127 or b in (9, 10) else "." for b in data)


def render(value: Any, ftype: str) -> str:
    """How Falco prints a value in an output line; `<NA>` when it is not available."""
    if value is None:
        return "<NA>"
    if isinstance(value, (list, tuple)):
        return "(" + ",".join(render(v, ftype) for v in value) + ")"
    if value is True or value is False:
        return "true" if value else "false"
    kind = kind_of(ftype)
    if kind == "float" and isinstance(value, (int, float)):
        return f"{float(value):.1f}"
    if kind == "net":
        return "<IPNET>"
    if kind in ("ip",) and isinstance(value, tuple):
        return format_ip(value)
    if isinstance(value, bytes):
        return printable_buffer(value)
    return str(value)


def to_output(value: Any, ftype: str) -> Any:
    """A held value as Falco puts it into json `output_fields` (JSON-ready)."""
    if value is None:
        return None
    if isinstance(value, list):
        return [to_output(v, ftype) for v in value]
    kind = kind_of(ftype)
    if kind in ("ip", "net") and isinstance(value, tuple):
        return format_ip(value)
    if isinstance(value, bytes):
        return printable_buffer(value)
    return value
