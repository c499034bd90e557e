"""A process's syscalls as exit events: exec, open, connect, and the syscall a
capability stands for."""

from __future__ import annotations

import ipaddress
import posixpath
from typing import Any

from lab.backends.sim.falco_pods import digest
from lab.backends.sim.falco_procs import Clock, Event, Proc, proc_fields
from lab.scenarios.effects import capability_name, split_host_port

AT_FDCWD = -100

# Service names a pod resolves; anything else gets an address in TEST-NET-2.
KNOWN_HOSTS = {
    "kubernetes": "10.96.0.1",
    "kubernetes.default": "10.96.0.1",
    "kubernetes.default.svc": "10.96.0.1",
    "kubernetes.default.svc.cluster.local": "10.96.0.1",
}

# A capability as the syscall that needs it (evt.type and its arguments).
CAPABILITY_SYSCALLS: dict[str, tuple[str, dict[str, Any]]] = {
    "SYS_ADMIN": ("mount", {"evt.arg.dev": "none", "evt.arg.dir": "/mnt", "evt.arg.type": "tmpfs"}),
    "SYS_MODULE": ("init_module", {}),
    "SYS_PTRACE": ("ptrace", {"evt.arg.request": "PTRACE_ATTACH"}),
    "NET_RAW": ("socket", {"evt.arg.domain": "AF_PACKET", "evt.arg.type": "SOCK_RAW"}),
    "SYS_TIME": ("clock_settime", {}),
    "SYS_CHROOT": ("chroot", {"evt.arg.path": "/host"}),
    "SETUID": ("setuid", {"evt.arg.uid": 0}),
    "SETGID": ("setgid", {"evt.arg.gid": 0}),
    "SYS_BOOT": ("reboot", {}),
    "MKNOD": ("mknodat", {"evt.arg.path": "/dev/sda"}),
    "BPF": ("bpf", {"evt.arg.cmd": "BPF_PROG_LOAD"}),
    "DAC_READ_SEARCH": ("open_by_handle_at", {}),
    "SYS_RAWIO": ("iopl", {}),
    "CHOWN": ("fchownat", {"evt.arg.uid": 0, "evt.arg.gid": 0}),
    "KILL": ("kill", {"evt.arg.sig": "SIGKILL"}),
}


def execve(clock: Clock, ctx: Event, p: Proc) -> None:
    writable = ctx["proc.is_exe_writable"]
    flags = "EXE_WRITABLE|EXE_LOWER_LAYER" if writable else "EXE_LOWER_LAYER"
    clock.emit(
        {**ctx, **proc_fields(p)},
        "execve",
        {
            "evt.category": "process",
            "evt.arg.res": 0,
            "evt.arg.exe": p.exe,
            "evt.arg.args": p.args,
            "evt.arg.flags": flags,
        },
    )


def open_file(clock: Clock, ctx: Event, p: Proc, path: str, write: bool) -> None:
    fd = p.fd()
    path = posixpath.normpath(path)
    clock.emit(
        {**ctx, **proc_fields(p)},
        "openat",
        {
            "evt.category": "file",
            "evt.rawres": fd,
            "evt.arg.fd": fd,
            "evt.arg.dirfd": AT_FDCWD,
            "evt.arg.name": path,
            # Flags in the order libsinsp prints them.
            "evt.arg.flags": "O_TRUNC|O_CREAT|O_WRONLY" if write else "O_RDONLY",
            "evt.arg.mode": "0666" if write else "0",
            "evt.is_open_read": not write,
            "evt.is_open_write": write,
            "evt.is_open_exec": False,
            "fd.num": fd,
            "fd.name": path,
            "fd.directory": posixpath.dirname(path),
            "fd.filename": posixpath.basename(path),
            "fd.typechar": "f",
            "fd.type": "file",
        },
    )


def _server_ip(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        known = KNOWN_HOSTS.get(host.lower().rstrip("."))
        return known or f"198.51.100.{1 + int(digest(host), 16) % 254}"


def connect(clock: Clock, ctx: Event, p: Proc, target: str, client_ip: str) -> None:
    host, port = split_host_port(target) or ("0.0.0.0", 0)
    sip = _server_ip(host)
    v6 = ":" in sip
    cip = "::ffff:" + client_ip if v6 else client_ip
    cport = clock.rng.randint(32768, 60999)
    fd = p.fd()
    tuple_text = f"[{cip}]:{cport}->[{sip}]:{port}" if v6 else f"{cip}:{cport}->{sip}:{port}"
    name_given = host != sip
    clock.emit(
        {**ctx, **proc_fields(p)},
        "connect",
        {
            "evt.category": "net",
            "evt.arg.fd": fd,
            "evt.arg.tuple": tuple_text,
            "fd.num": fd,
            "fd.name": tuple_text,
            "fd.typechar": "6" if v6 else "4",
            "fd.type": "ipv6" if v6 else "ipv4",
            "fd.sockfamily": "ip",
            "fd.l4proto": "tcp",
            "fd.is_server": False,
            "fd.connected": True,
            "fd.cip": cip,
            "fd.cport": cport,
            "fd.sip": sip,
            "fd.sport": port,
            "fd.sip.name": host if name_given else None,
            "fd.lip": cip,
            "fd.lport": cport,
            "fd.rip": sip,
            "fd.rport": port,
        },
    )


def capability(clock: Clock, ctx: Event, p: Proc, cap: str) -> None:
    name = capability_name(cap)
    if name is None or name not in CAPABILITY_SYSCALLS:
        return  # no syscall stands for it alone (NET_ADMIN, ...): nothing Falco could see
    evt_type, args = CAPABILITY_SYSCALLS[name]
    extra = dict(args)
    if evt_type == "socket":
        fd = p.fd()
        extra.update({"evt.rawres": fd, "fd.num": fd, "fd.typechar": "p", "fd.type": "packet"})
    clock.emit({**ctx, **proc_fields(p)}, evt_type, extra)


