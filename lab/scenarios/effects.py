"""What the strings of a step's effects mean: command lines, host:port, capabilities."""

from __future__ import annotations

import shlex

CAPABILITIES = frozenset(
    "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP "
    "LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER "
    "SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE "
    "SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP "
    "MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF "
    "CHECKPOINT_RESTORE".split()
)


def capability_name(cap: str) -> str | None:
    """`SYS_ADMIN` for "CAP_SYS_ADMIN", "sys_admin" or "SYS_ADMIN"; None if unknown."""
    name = cap.upper().removeprefix("CAP_")
    return name if name in CAPABILITIES else None


def command_words(cmd: str) -> list[str]:
    """A command line split as a POSIX shell would ([] when it cannot be split)."""
    try:
        return shlex.split(cmd)
    except ValueError:
        return []


def split_host_port(target: str) -> tuple[str, int] | None:
    host, sep, port = target.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host, int(port)
