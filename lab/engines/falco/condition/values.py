"""Right-hand values parsed per field type, as libs' `string_to_rawval` does.

Numbers go through C `sscanf("%d"/"%u")` in libs: decimal only (no hex), leading
blanks and a sign allowed, nothing after the digits. Unsigned types take "-1" as
the maximum value, as `strtoul` does; values are then narrowed to the type width.
Each parser raises `ValueError` carrying upstream's message.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Any

from lab.engines.falco.condition.types import INT_WIDTHS, TYPE_CODES, kind_of, wrap_int

_SCANF_INT = re.compile(r"[ \t\n\r\f\v]*([+-]?)([0-9]+)\Z")

# Well-known service names, for PORT values given by name (libs asks getservbyname);
# kept here so results do not depend on the machine's /etc/services.
_SERVICES = {
    "ftp-data": 20, "ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53,
    "dns": 53, "bootps": 67, "bootpc": 68, "tftp": 69, "http": 80, "www": 80, "kerberos": 88,
    "pop3": 110, "sunrpc": 111, "ntp": 123, "imap": 143, "snmp": 161, "ldap": 389,
    "https": 443, "microsoft-ds": 445, "syslog": 514, "ldaps": 636, "imaps": 993,
    "pop3s": 995, "mysql": 3306, "postgresql": 5432, "redis": 6379,
}


def _scan_int(text: str) -> int:
    m = _SCANF_INT.match(text)
    if m is None:
        raise ValueError(f"{text} is not a valid number")
    value = int(m.group(2))
    return -value if m.group(1) == "-" else value


def parse_int(text: str, ftype: str) -> int:
    """An integer literal for a field of integer type `ftype`."""
    bits, signed = INT_WIDTHS[ftype]
    value = _scan_int(text)
    if bits == 64:
        if signed:
            return max(-(1 << 63), min(value, (1 << 63) - 1))
        # strtoull: negative values wrap, out-of-range magnitudes saturate
        if abs(value) >= 1 << 64:
            return (1 << 64) - 1
        return value % (1 << 64)
    # 8/16/32-bit: sscanf reads a 32-bit int/unsigned, then libs casts down
    if signed:
        value = max(-(1 << 63), min(value, (1 << 63) - 1))
        return wrap_int(wrap_int(value, "INT32"), ftype)
    value = (1 << 64) - 1 if abs(value) >= 1 << 64 else value % (1 << 64)
    return wrap_int(value & 0xFFFFFFFF, ftype)


def parse_port(text: str) -> int:
    if text == "":
        return 0
    if text.isdigit() and text.isascii():
        value = int(text)
        if value > 0x7FFFFFFF:
            raise ValueError("stoi")
        return value & 0xFFFF
    if text in _SERVICES:
        return _SERVICES[text]
    try:
        return socket.getservbyname(text)
    except (OSError, UnicodeError):
        raise ValueError(f"unrecognized protocol {text}") from None


def parse_bool(text: str) -> bool:
    if text == "true":
        return True
    if text == "false":
        return False
    raise ValueError(f"filter error: unrecognized boolean value {text}")


def parse_ipaddr(text: str) -> tuple[int, int]:
    if "." in text:
        try:
            return 4, int(ipaddress.IPv4Address(text))
        except ValueError:
            raise ValueError(f"unrecognized IPv4 address {text}") from None
    try:
        return 6, int(ipaddress.IPv6Address(text))
    except ValueError:
        raise ValueError(f"unrecognized IPv6 address {text}") from None


def parse_ipnet(text: str) -> tuple[int, int, int]:
    """(version, network address, prefix length) of a CIDR literal."""
    if "." in text:
        if "/" not in text:
            raise ValueError(f"unrecognized IP network {text}")
        ip, _, mask = text.partition("/")
        try:
            addr = int(ipaddress.IPv4Address(ip))
        except ValueError:
            raise ValueError(f"unrecognized IP address {text}") from None
        bits = parse_int(mask, "UINT8")
        if bits > 32:
            raise ValueError(f"invalid netmask {mask}")
        return 4, addr, bits
    try:
        net = ipaddress.IPv6Network(text, strict=False)
    except ValueError:
        raise ValueError(f"unrecognized IPv6 network {text}") from None
    return 6, int(net.network_address), net.prefixlen


def unhex(text: str) -> bytes:
    """The bytes of a hex string (bcontains/bstartswith), as libs' `unhex`."""
    if len(text) % 2 or not all(c in "0123456789abcdefABCDEF" for c in text):
        raise ValueError(
            "filter error: bcontains and bstartswith operator support hex strings only")
    return bytes.fromhex(text)


def parse_value(text: str, ftype: str) -> Any:
    """A right-hand literal parsed for a field of type `ftype`, held as the type's kind."""
    kind = kind_of(ftype)
    if kind == "str":
        return text.split("\0", 1)[0]
    if kind == "bytes":
        return text.encode("utf-8", "surrogateescape")
    if ftype == "PORT":
        return parse_port(text)
    if ftype == "DOUBLE":
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{text} is not a valid number") from None
    if kind == "int":
        return parse_int(text, ftype)
    if kind == "bool":
        return parse_bool(text)
    if kind == "ip":
        return parse_ipaddr(text)
    if kind == "net":
        return parse_ipnet(text)
    raise ValueError(f"wrong parameter type {TYPE_CODES.get(ftype, 0)}")
