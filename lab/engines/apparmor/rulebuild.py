"""Checks and builds the non-file rules from their parsed parts, as apparmor_parser's
rule constructors do (conditionals allowed per rule kind, permission words, names)."""

from __future__ import annotations

from dataclasses import dataclass

from lab.engines.apparmor import tables
from lab.engines.apparmor.errors import ProfileError
from lab.engines.apparmor.model import (
    CapabilityRule,
    DbusRule,
    MountRule,
    NetworkRule,
    PtraceRule,
    SignalRule,
    Source,
    UnixRule,
)


@dataclass(slots=True)
class Cond:
    """`name=value`, `name=(a b)` or `name in (a b)`."""

    name: str
    eq: bool
    values: list[str]


def _once(rule: str, current: str | None, cond: Cond) -> str:
    if current is not None:
        raise ProfileError(f'{rule} conditional "{cond.name}" can only be specified once')
    return cond.values[0] if cond.values else ""


# -- capability / network ------------------------------------------------------------


def capability(src: Source, names: list[str]) -> CapabilityRule:
    for n in names:
        if n not in tables.CAPABILITIES:
            raise ProfileError(f"Invalid capability {n}.")
    return CapabilityRule(src, caps=frozenset(names))


def network(src: Source, ids: list[str]) -> NetworkRule:
    """`network`, `network FAMILY`, `network TYPE|PROTO`, `network FAMILY TYPE|PROTO`."""
    if not ids:
        return NetworkRule(src)
    if len(ids) == 1:
        word = ids[0]
        if word in tables.FAMILIES:
            return NetworkRule(src, family=word)
        if word in tables.SOCK_TYPES:
            return NetworkRule(src, sock_type=word)
        if word in tables.PROTOCOLS:
            return NetworkRule(src, protocol=word)
        raise ProfileError("Invalid network entry.")
    family, second = ids
    if family not in tables.FAMILIES:
        raise ProfileError("Invalid network entry.")
    if second in tables.SOCK_TYPES:
        return NetworkRule(src, family=family, sock_type=second)
    if second in tables.PROTOCOLS and any(f == family for f, _ in tables.PROTOCOLS[second]):
        return NetworkRule(src, family=family, protocol=second)
    raise ProfileError("Invalid network entry.")


# -- mount ----------------------------------------------------------------------------


def _mount_flags(values: list[str]) -> tuple[int, int]:
    flags = inv = 0
    for v in values:
        entry = tables.MOUNT_OPTIONS.get(v)
        if entry is None:
            raise ProfileError(f"unsupported mount options: '{v}'")
        flags |= entry[0]
        inv |= entry[1]
    return flags, inv


def mount(src: Source, op: str, conds: list[Cond], source: str | None,
          dst_conds: list[Cond] | None, mountpoint: str | None,
          target: str | None = None) -> MountRule:
    if op == "pivot_root":
        old = None
        for c in conds:
            if c.name != "oldroot":
                raise ProfileError(f"invalid pivotroot conditional '{c.name}'")
            old = c.values[0] if c.values else None
        return MountRule(src, op=op, source=old, mountpoint=mountpoint, target=target)
    for c in conds:
        if c.name in ("options", "option"):
            continue
        if c.name not in ("fstype", "vfstype"):
            raise ProfileError(f"invalid mount conditional {c.name}; bad mount rule")
    if dst_conds:
        raise ProfileError("mount point conditions not currently supported")
    fstypes = [v for c in conds if c.name in ("fstype", "vfstype") for v in c.values]
    flagsv: list[int] = []
    optv: list[int] = []
    opts_eq: list[str] = []
    opts_in: list[str] = []
    for c in conds:
        if c.name not in ("options", "option"):
            continue
        flags, inv = _mount_flags(c.values)
        if c.eq:
            flagsv.append(flags | (tables.MS_REMOUNT if op == "remount" else 0))
            opts_eq.extend(c.values)
        else:
            optv.append(flags | inv)
            opts_in.extend(c.values)
    if not flagsv and not optv:
        if op == "remount":
            flagsv, optv = [tables.MS_REMOUNT], [tables.MS_ALL_FLAGS & ~tables.MS_REMOUNT]
        else:
            flagsv, optv = [tables.MS_ALL_FLAGS], [tables.MS_ALL_FLAGS]
    elif not flagsv:
        flagsv = [tables.MS_REMOUNT if op == "remount" else 0]
    elif not optv:
        optv = [0]
    if op == "remount":
        # remount's path is the mount point
        source, mountpoint = None, source
    if op == "umount":
        source, mountpoint = None, source
    rule = MountRule(src, op=op, fstypes=tuple(fstypes), options=tuple(opts_eq),
                     options_in=tuple(opts_in), source=source, mountpoint=mountpoint)
    if op in ("mount", "remount") and not any(
            _encodes(f, o, source, mountpoint, bool(fstypes)) for f in flagsv for o in optv):
        raise ProfileError("Encoding of mount rule failed")
    return rule


def _encodes(flags: int, opt: int, device: str | None, mnt: str | None,
             has_type: bool) -> bool:
    """Whether apparmor_parser's mount encoder produces any rule for this combination."""
    if not flags or flags == tables.MS_ALL_FLAGS:
        return True
    if flags & tables.MS_REMOUNT and not device and not has_type:
        return True
    if flags & tables.MS_BIND and not has_type:
        return True
    if flags & tables.MS_MAKE_CMDS and (not device or not mnt) and not has_type:
        return True
    if flags & tables.MS_MOVE and not has_type:
        return True
    return bool((flags | opt) & ~tables.MS_CMDS)


# -- signal / ptrace -----------------------------------------------------------------


def _signal_number(name: str) -> bool:
    if name.startswith("rtmin+"):
        num = name[6:]
        return num.isdigit() and int(num) <= tables.MAX_RT_SIGNAL
    return name in tables.SIGNALS


def signal(src: Source, perms: frozenset[str], conds: list[Cond]) -> SignalRule:
    sigs: set[str] = set()
    peer: str | None = None
    for c in conds:
        if not c.eq:
            raise ProfileError('keyword "in" is not allowed in signal rules')
        if c.name == "set":
            for v in c.values:
                if not _signal_number(v):
                    raise ProfileError(f'unknown signal "{v}"')
                sigs.add(v)
        elif c.name == "peer":
            peer = _once("signal", peer, c)
        else:
            raise ProfileError(f'invalid signal rule conditional "{c.name}"')
    bad = perms - tables.SIGNAL_PERMS
    if bad:
        raise ProfileError("perms contains invalid permission for signals")
    return SignalRule(src, perms=perms or tables.SIGNAL_PERMS, signals=frozenset(sigs),
                      peer=peer)


def ptrace(src: Source, perms: frozenset[str], conds: list[Cond]) -> PtraceRule:
    peer: str | None = None
    for c in conds:
        if not c.eq:
            raise ProfileError('keyword "in" is not allowed in ptrace rules')
        if c.name == "peer":
            peer = _once("ptrace", peer, c)
        else:
            raise ProfileError(f'invalid ptrace rule conditional "{c.name}"')
    if perms - tables.PTRACE_PERMS:
        raise ProfileError("perms contains invalid permission for ptrace")
    return PtraceRule(src, perms=perms or tables.PTRACE_PERMS, peer=peer)


# -- unix -----------------------------------------------------------------------------

# name -> (supported, `in` allowed, several values allowed, side: local/peer/either)
_UNIX_CONDS = {"addr": (True, False, False, "either")}
_BASE_CONDS = {
    "type": (True, False, False, "local"),
    "protocol": (False, False, False, "local"),
    "label": (True, False, False, "peer"),
}


def _cond_check(table: dict[str, tuple[bool, bool, bool, str]], c: Cond, peer: bool,
                rname: str) -> bool:
    spec = table.get(c.name)
    if spec is None:
        return False
    supported, in_ok, multi, side = spec
    if not supported:
        raise ProfileError(f"{rname} rule: '{c.name}' conditional is not currently supported")
    if not peer and side == "peer":
        raise ProfileError(
            f"{rname} rule: '{c.name}' conditional is only valid in the peer expression")
    if peer and side == "local":
        raise ProfileError(
            f"{rname} rule: '{c.name}' conditional is not allowed in the peer expression")
    if not c.eq and not in_ok:
        raise ProfileError(
            f"{rname} rule: keyword 'in' is not allowed in '{c.name}' socket conditional")
    if len(c.values) > 1 and not multi:
        raise ProfileError(f"{rname} rule: conditional '{c.name}' only supports a single value")
    return True


def unix(src: Source, perms: frozenset[str], conds: list[Cond],
         peer_conds: list[Cond]) -> UnixRule:
    rule = UnixRule(src)
    for peer, group in ((False, conds), (True, peer_conds)):
        for c in group:
            if _cond_check(_UNIX_CONDS, c, peer, "unix"):
                value = c.values[0] if c.values else ""
                if peer:
                    rule.peer_addr = _once("unix", rule.peer_addr, c)
                else:
                    rule.addr = _once("unix socket", rule.addr, c)
                if not (value.startswith("@") or value in ("none", "auto")):
                    raise ProfileError(f"unix rule: invalid value for addr='{value}'")
            elif _cond_check(_BASE_CONDS, c, peer, "unknown"):
                if c.name == "type":
                    rule.sock_type = _once("socket rule", rule.sock_type, c)
                    if rule.sock_type not in tables.SOCK_TYPES:
                        raise ProfileError(
                            f"socket rule: invalid socket type '{rule.sock_type}'")
                elif peer:
                    rule.peer_label = _once("unix", rule.peer_label, c)
                else:
                    rule.label = _once("unix", rule.label, c)
            else:
                where = "peer conditional" if peer else "conditional"
                raise ProfileError(f"unix rule: invalid {where} '{c.name}'")
    if perms:
        if perms - tables.UNIX_PERMS:
            raise ProfileError("perms contains invalid permissions for unix socket rules")
        if (perms - tables.UNIX_PEER_PERMS) and (rule.peer_addr or rule.peer_label):
            raise ProfileError(
                "unix socket 'create', 'shutdown', 'setattr', 'getattr', 'bind', 'listen', "
                "'setopt', and/or 'getopt' accesses cannot be used with peer socket "
                "conditionals")
    rule.perms = perms or tables.UNIX_PERMS
    return rule


# -- dbus -----------------------------------------------------------------------------

_DBUS_CONDS = ("bus", "name", "label", "path", "interface", "member")


def dbus(src: Source, perms: frozenset[str], conds: list[Cond],
         peer_conds: list[Cond]) -> DbusRule:
    local: dict[str, str] = {}
    peer: dict[str, str] = {}
    for target, group in ((local, conds), (peer, peer_conds)):
        for c in group:
            if not c.eq:
                raise ProfileError('keyword "in" is not allowed in dbus rules')
            if len(c.values) > 1:
                raise ProfileError(f'dbus conditional "{c.name}" only supports a single value')
            if c.name not in _DBUS_CONDS:
                raise ProfileError(f'invalid dbus conditional "{c.name}"')
            seen = c.name in local or c.name in peer
            if seen:
                raise ProfileError(f'dbus conditional "{c.name}" can only be specified once')
            target[c.name] = c.values[0] if c.values else ""
        if target is local and "label" in local:
            raise ProfileError('dbus "label" conditional can only be used inside of the '
                               '"peer=()" grouping')
    message = any(k in local for k in ("path", "interface", "member")) or bool(peer)
    service = "name" in local
    if message and service:
        raise ProfileError("dbus rule contains message conditionals and service conditionals")
    if perms:
        if message and "bind" in perms:
            raise ProfileError(
                'dbus "bind" access cannot be used with message rule conditionals')
        if service and perms & {"send", "receive"}:
            raise ProfileError('dbus "send" and/or "receive" accesses cannot be used with '
                               "service rule conditionals")
        if "eavesdrop" in perms and (set(local) - {"bus"} or peer):
            raise ProfileError('dbus "eavesdrop" access can only contain a bus conditional')
    elif message:
        perms = frozenset({"send", "receive"})
    elif service:
        perms = frozenset({"bind"})
    else:
        perms = tables.DBUS_PERMS
    return DbusRule(src, perms=perms, conds=local, peer=peer)
