"""Access requests: what a task does, as the engine reads it ("r /etc/shadow",
"owner w /tmp/x", "x /bin/sh", "capability sys_admin", "network inet raw")."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lab.engines.apparmor import tables
from lab.engines.apparmor.errors import AccessError


@dataclass(frozen=True, slots=True)
class Access:
    """One access the task makes: a file access, a capability, or a socket."""

    kind: str  # "file" | "capability" | "network"
    text: str
    perms: frozenset[str] = frozenset()
    path: str = ""
    owner: bool = False
    capability: str = ""
    family: str = ""
    sock_type: str = ""


_FILE_ACCESS = re.compile(r"(?:(owner)\s+)?([rwalkmx]+)\s+(/\S*)")


def parse_access(text: str, *, owner: bool | None = None) -> Access:
    """Read an access request.

    `r /etc/shadow`, `rw /tmp/x`, `a /var/log/x`, `x /bin/sh`, `owner w /tmp/x`
    (the task owns the file), `capability sys_admin`, `network inet raw`,
    `network inet tcp` (a protocol names its socket type). Directories end in `/`.
    """
    words = text.split()
    if not words:
        raise AccessError("empty access request")
    head = words[0]
    if head == "capability":
        if len(words) != 2:
            raise AccessError(f"'{text}': say one capability, e.g. 'capability sys_admin'")
        cap = words[1].lower().removeprefix("cap_")
        if cap not in tables.CAPABILITIES:
            raise AccessError(f"'{text}': unknown capability '{words[1]}'")
        return Access("capability", text, capability=cap)
    if head == "network":
        return _network_access(text, words[1:])
    m = _FILE_ACCESS.fullmatch(text.strip())
    if m is None:
        raise AccessError(
            f"'{text}': expected 'PERMS /path' (perms of r w a l k m x), "
            "'capability NAME' or 'network FAMILY TYPE'")
    is_owner = bool(m.group(1)) if owner is None else owner or bool(m.group(1))
    return Access("file", text, perms=frozenset(m.group(2)), path=m.group(3), owner=is_owner)


def _network_access(text: str, args: list[str]) -> Access:
    if not args or args[0] not in tables.FAMILIES:
        raise AccessError(f"'{text}': expected 'network FAMILY TYPE', e.g. 'network inet raw'")
    family = args[0]
    sock_type = ""
    for word in args[1:]:
        if word in tables.SOCK_TYPES:
            sock_type = word
        elif word in tables.PROTOCOLS:
            pairs = [t for f, t in tables.PROTOCOLS[word] if f == family]
            if not pairs:
                raise AccessError(f"'{text}': {word} is not a protocol of {family}")
            sock_type = sock_type or pairs[0]
        else:
            raise AccessError(f"'{text}': unknown socket type or protocol '{word}'")
    if not sock_type:
        raise AccessError(f"'{text}': say the socket type (stream, dgram, raw ...)")
    return Access("network", text, family=family, sock_type=sock_type)
