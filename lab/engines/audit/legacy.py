"""The ``legacy`` audit log line format (``--audit-log-format=legacy``), both ways.

:func:`event_string` renders an event as pkg/audit/format.go's EventString;
:func:`parse_legacy_line` reads such a line back into its fields.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lab.engines.audit.gotext import go_quote, parse_micro_time, rfc3339_nano

# The key="value" pairs of EventString, in the order it prints them.
LEGACY_KEYS = (
    "id",
    "stage",
    "ip",
    "method",
    "user",
    "groups",
    "as",
    "asgroups",
    "user-agent",
    "namespace",
    "uri",
    "response",
)
_LEGACY_RE = re.compile(r"^(?P<ts>\S+) AUDIT: (?P<rest>.*)$")
_SIMPLE_UNESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_HEX_WIDTH = {"x": 2, "u": 4, "U": 8}


def event_string(ev: Mapping[str, Any]) -> str:
    """The legacy one-line rendering of an event (pkg/audit/format.go EventString)."""
    user = ev.get("user") or {}
    username = "<none>"
    groups = "<none>"
    if user.get("username"):
        username = user["username"]
        if user.get("groups"):
            groups = ",".join(go_quote(g) for g in user["groups"])
    asuser = "<self>"
    asgroups = "<lookup>"
    imp = ev.get("impersonatedUser")
    if imp is not None:
        asuser = imp.get("username", "")
        if imp.get("groups") is not None:
            asgroups = ",".join(go_quote(g) for g in imp["groups"])
    namespace = "<none>"
    ref = ev.get("objectRef")
    if ref and ref.get("namespace"):
        namespace = ref["namespace"]
    response = "<deferred>"
    if ev.get("responseStatus") is not None:
        response = str(int(ev["responseStatus"].get("code", 0)))
    ips = ev.get("sourceIPs") or []
    ip = ips[0] if ips else "<unknown>"
    received = parse_micro_time(ev.get("requestReceivedTimestamp", ""))
    stamp = rfc3339_nano(received) if received else "0001-01-01T00:00:00Z"
    q = go_quote
    return (
        f"{stamp} AUDIT: id={q(ev.get('auditID', ''))} stage={q(ev.get('stage', ''))} "
        f"ip={q(ip)} method={q(ev.get('verb', ''))} user={q(username)} groups={q(groups)} "
        f"as={q(asuser)} asgroups={q(asgroups)} user-agent={q(ev.get('userAgent', ''))} "
        f'namespace={q(namespace)} uri={q(ev.get("requestURI", ""))} response="{response}"'
    )


def _go_unquote(text: str, pos: int) -> tuple[str, int]:
    """Parse a Go double-quoted string starting at ``text[pos]``; return (value, end)."""
    if pos >= len(text) or text[pos] != '"':
        raise ValueError("expected a quoted value")
    out: list[str] = []
    i = pos + 1
    while i < len(text):
        ch = text[i]
        if ch == '"':
            return "".join(out), i + 1
        if ch == "\\":
            i += 1
            if i >= len(text):
                break
            esc = text[i]
            if esc in _SIMPLE_UNESCAPES:
                out.append(_SIMPLE_UNESCAPES[esc])
                i += 1
            elif esc in "\\\"'":
                out.append(esc)
                i += 1
            elif esc in _HEX_WIDTH:
                width = _HEX_WIDTH[esc]
                digits = text[i + 1 : i + 1 + width]
                if len(digits) != width:
                    raise ValueError(f"short \\{esc} escape")
                out.append(chr(int(digits, 16)))
                i += 1 + width
            else:
                raise ValueError(f"unknown escape \\{esc}")
            continue
        out.append(ch)
        i += 1
    raise ValueError("unterminated quoted value")


def parse_legacy_line(line: str) -> dict[str, str]:
    """Fields of a legacy-format line: timestamp plus the key="value" pairs.

    Raises ValueError for anything EventString would not have written.
    """
    m = _LEGACY_RE.match(line.rstrip("\n"))
    if not m:
        raise ValueError("not a legacy audit line (expected '<time> AUDIT: ...')")
    fields = {"timestamp": m.group("ts")}
    rest = m.group("rest")
    pos = 0
    for key in LEGACY_KEYS:
        prefix = f"{key}="
        if not rest.startswith(prefix, pos):
            raise ValueError(f"expected {prefix!r} at column {m.start('rest') + pos + 1}")
        value, pos = _go_unquote(rest, pos + len(prefix))
        fields[key] = value
        if pos < len(rest) and rest[pos] == " ":
            pos += 1
    return fields
