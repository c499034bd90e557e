"""Names the profile language knows: capabilities, socket families and types, signals,
rlimits, mount options. Values follow the Linux headers apparmor_parser is built from.
"""

from __future__ import annotations

CAPABILITIES: tuple[str, ...] = (
    "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid",
    "setuid", "setpcap", "linux_immutable", "net_bind_service", "net_broadcast",
    "net_admin", "net_raw", "ipc_lock", "ipc_owner", "sys_module", "sys_rawio",
    "sys_chroot", "sys_ptrace", "sys_pacct", "sys_admin", "sys_boot", "sys_nice",
    "sys_resource", "sys_time", "sys_tty_config", "mknod", "lease", "audit_write",
    "audit_control", "setfcap", "mac_override", "mac_admin", "syslog", "wake_alarm",
    "block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
)

# Address families by name, in kernel order (AF_LOCAL is spelled `unix` only).
FAMILIES: tuple[str, ...] = (
    "unspec", "unix", "inet", "ax25", "ipx", "appletalk", "netrom", "bridge", "atmpvc",
    "x25", "inet6", "rose", "decnet", "netbeui", "security", "key", "netlink", "packet",
    "ash", "econet", "atmsvc", "rds", "sna", "irda", "pppox", "wanpipe", "llc", "ib",
    "mpls", "can", "tipc", "bluetooth", "iucv", "rxrpc", "isdn", "phonet", "ieee802154",
    "caif", "alg", "nfc", "vsock", "kcm", "qipcrtr", "smc", "xdp", "mctp",
)

SOCK_TYPES: tuple[str, ...] = ("stream", "dgram", "raw", "rdm", "seqpacket", "dccp", "packet")

# `network [family] tcp|udp|icmp`: a protocol name stands for (family, type) pairs.
PROTOCOLS: dict[str, tuple[tuple[str, str], ...]] = {
    "tcp": (("inet", "stream"), ("inet6", "stream")),
    "udp": (("inet", "dgram"), ("inet6", "dgram")),
    "icmp": (("inet", "raw"),),
}

SIGNALS: tuple[str, ...] = (
    "hup", "int", "quit", "ill", "trap", "abrt", "bus", "fpe", "kill", "usr1", "segv",
    "usr2", "pipe", "alrm", "term", "stkflt", "chld", "cont", "stop", "stp", "ttin",
    "ttou", "urg", "xcpu", "xfsz", "vtalrm", "prof", "winch", "io", "pwr", "sys", "emt",
    "exists",
)
MAX_RT_SIGNAL = 32

RLIMITS: tuple[str, ...] = (
    "cpu", "fsize", "data", "stack", "core", "rss", "nofile", "ofile", "as", "nproc",
    "memlock", "locks", "sigpending", "msgqueue", "nice", "rtprio", "rttime",
)

# mount(8) option -> (flags it sets, flags it clears)
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_SYNCHRONOUS, MS_REMOUNT, MS_MANDLOCK, MS_DIRSYNC = 16, 32, 64, 128
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_MOVE, MS_REC = 1024, 2048, 4096, 8192, 16384
MS_SILENT, MS_POSIXACL, MS_UNBINDABLE, MS_PRIVATE = 32768, 1 << 16, 1 << 17, 1 << 18
MS_SLAVE, MS_SHARED, MS_RELATIME, MS_IVERSION = 1 << 19, 1 << 20, 1 << 21, 1 << 23
MS_STRICTATIME, MS_LAZYTIME, MS_NOUSER = 1 << 24, 1 << 25, 1 << 31

MOUNT_OPTIONS: dict[str, tuple[int, int]] = {
    "ro": (MS_RDONLY, 0), "r": (MS_RDONLY, 0), "read-only": (MS_RDONLY, 0),
    "rw": (0, MS_RDONLY), "w": (0, MS_RDONLY),
    "suid": (0, MS_NOSUID), "nosuid": (MS_NOSUID, 0),
    "dev": (0, MS_NODEV), "nodev": (MS_NODEV, 0),
    "exec": (0, MS_NOEXEC), "noexec": (MS_NOEXEC, 0),
    "sync": (MS_SYNCHRONOUS, 0), "async": (0, MS_SYNCHRONOUS),
    "remount": (MS_REMOUNT, 0),
    "mand": (MS_MANDLOCK, 0), "nomand": (0, MS_MANDLOCK),
    "dirsync": (MS_DIRSYNC, 0),
    "atime": (0, MS_NOATIME), "noatime": (MS_NOATIME, 0),
    "diratime": (0, MS_NODIRATIME), "nodiratime": (MS_NODIRATIME, 0),
    "bind": (MS_BIND, 0), "B": (MS_BIND, 0),
    "move": (MS_MOVE, 0), "M": (MS_MOVE, 0),
    "rbind": (MS_BIND | MS_REC, 0), "R": (MS_BIND | MS_REC, 0),
    "verbose": (MS_SILENT, 0), "silent": (MS_SILENT, 0), "loud": (0, MS_SILENT),
    "acl": (MS_POSIXACL, 0), "noacl": (0, MS_POSIXACL),
    "unbindable": (MS_UNBINDABLE, 0), "make-unbindable": (MS_UNBINDABLE, 0),
    "runbindable": (MS_UNBINDABLE | MS_REC, 0),
    "make-runbindable": (MS_UNBINDABLE | MS_REC, 0),
    "private": (MS_PRIVATE, 0), "make-private": (MS_PRIVATE, 0),
    "rprivate": (MS_PRIVATE | MS_REC, 0), "make-rprivate": (MS_PRIVATE | MS_REC, 0),
    "slave": (MS_SLAVE, 0), "make-slave": (MS_SLAVE, 0),
    "rslave": (MS_SLAVE | MS_REC, 0), "make-rslave": (MS_SLAVE | MS_REC, 0),
    "shared": (MS_SHARED, 0), "make-shared": (MS_SHARED, 0),
    "rshared": (MS_SHARED | MS_REC, 0), "make-rshared": (MS_SHARED | MS_REC, 0),
    "relatime": (MS_RELATIME, 0), "norelatime": (0, MS_RELATIME),
    "iversion": (MS_IVERSION, 0), "noiversion": (0, MS_IVERSION),
    "strictatime": (MS_STRICTATIME, 0), "nostrictatime": (0, MS_STRICTATIME),
    "lazytime": (MS_LAZYTIME, 0), "nolazytime": (0, MS_LAZYTIME),
    "user": (0, MS_NOUSER), "nouser": (MS_NOUSER, 0),
}
MS_MAKE_CMDS = MS_UNBINDABLE | MS_PRIVATE | MS_SLAVE | MS_SHARED
MS_CMDS = MS_MOVE | MS_REMOUNT | MS_BIND | MS_MAKE_CMDS | MS_REC
MS_ALL_FLAGS = 0
for _set, _clear in MOUNT_OPTIONS.values():
    MS_ALL_FLAGS |= _set | _clear

# permission words of the non-file rules
SIGNAL_PERMS = frozenset({"send", "receive"})
PTRACE_PERMS = frozenset({"read", "trace", "readby", "tracedby"})
DBUS_PERMS = frozenset({"send", "receive", "bind", "eavesdrop"})
UNIX_PERMS = frozenset({
    "create", "bind", "listen", "accept", "connect", "shutdown", "getattr", "setattr",
    "getopt", "setopt", "send", "receive",
})
UNIX_PEER_PERMS = frozenset({"connect", "accept", "send", "receive"})

PROFILE_MODES = ("enforce", "complain", "kill", "unconfined")
PROFILE_FLAGS = (
    "audit", "chroot_relative", "namespace_relative", "mediate_deleted", "delegate_deleted",
    "attach_disconnected", "no_attach_disconnected", "chroot_attach", "chroot_no_attach",
)
CONFLICTING_FLAGS = (
    ("chroot_relative", "namespace_relative"),
    ("mediate_deleted", "delegate_deleted"),
    ("attach_disconnected", "no_attach_disconnected"),
    ("chroot_attach", "chroot_no_attach"),
)
