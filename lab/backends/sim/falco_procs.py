"""Processes as Falco sees them, and the clock that numbers and times their events.

Every event is an exit event (evt.dir "<"): Falco 0.42 and later skip enter events.
"""

from __future__ import annotations

import posixpath
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

Event = dict[str, Any]

# Upstream's shell_binaries list: a process of these runs the next command line.
SHELLS = frozenset({"ash", "bash", "csh", "ksh", "sh", "tcsh", "zsh", "dash"})
TTY_PTS0 = 136 << 8  # /dev/pts/0 (major 136): proc.tty of an interactive `kubectl exec -it`
COMM_LEN = 15  # the kernel's TASK_COMM_LEN - 1: proc.name is truncated to it
SHIM_EXE = "/usr/local/bin/containerd-shim-runc-v2"


@dataclass
class Proc:
    pid: int
    vpid: int
    argv: list[str]
    parent: Proc | None = None
    tty: int = 0
    cwd: str = "/"
    next_fd: int = 3
    duration: int = 2_000_000  # ns since it started, as proc.duration shows it

    @property
    def exe(self) -> str:
        return self.argv[0]

    @property
    def name(self) -> str:
        return posixpath.basename(self.exe)[:COMM_LEN]

    @property
    def exepath(self) -> str:
        if "/" in self.exe:
            return posixpath.normpath(posixpath.join(self.cwd, self.exe))
        return f"/usr/bin/{self.exe}"

    @property
    def args(self) -> str:
        return " ".join(self.argv[1:])

    @property
    def cmdline(self) -> str:
        return " ".join([self.name, *self.argv[1:]])

    def ancestry(self) -> list[Proc]:
        """This process, its parent, grandparent, ... (proc.aname[0], [1], [2], ...)."""
        out: list[Proc] = []
        p: Proc | None = self
        while p is not None:
            out.append(p)
            p = p.parent
        return out

    def fd(self) -> int:
        self.next_fd += 1
        return self.next_fd - 1


def proc_fields(p: Proc) -> Event:
    parent = p.parent
    fields: Event = {
        "proc.pid": p.pid,
        "proc.vpid": p.vpid,
        "thread.tid": p.pid,
        "thread.vtid": p.vpid,
        "proc.name": p.name,
        "proc.exe": p.exe,
        "proc.exepath": p.exepath,
        "proc.args": p.args,
        "proc.cmdline": p.cmdline,
        "proc.cwd": p.cwd if p.cwd.endswith("/") else p.cwd + "/",
        "proc.tty": p.tty,
        "proc.duration": p.duration,
        "proc.ppid": parent.pid if parent else 0,
        "proc.pname": parent.name if parent else None,
        "proc.pexe": parent.exe if parent else None,
        "proc.pexepath": parent.exepath if parent else None,
        "proc.pcmdline": parent.cmdline if parent else None,
        "proc.is_exe_upper_layer": False,
        "proc.is_exe_from_memfd": False,
        "proc.is_container_healthcheck": False,
        "proc.is_container_liveness_probe": False,
        "proc.is_container_readiness_probe": False,
    }
    for i, a in enumerate(p.ancestry()):
        fields[f"proc.aname[{i}]"] = a.name
        fields[f"proc.apid[{i}]"] = a.pid
    return fields


@dataclass
class Clock:
    """Event numbers and times: increasing, with seeded gaps (other syscalls between)."""

    rng: random.Random
    time: datetime
    num: int = 0
    events: list[Event] = field(default_factory=list)

    def emit(self, base: Event, evt_type: str, extra: Event) -> None:
        self.num += 2 * self.rng.randint(1, 40)  # enter + exit per syscall
        self.time += timedelta(microseconds=self.rng.randint(20, 900))
        ns = int(self.time.timestamp()) * 10**9 + self.time.microsecond * 1000
        ns += self.rng.randint(0, 999)
        event = {
            "evt.num": self.num,
            "evt.rawtime": ns,
            "evt.time": clock_text(ns),
            "evt.dir": "<",
            "evt.type": evt_type,
            "syscall.type": evt_type,
            "evt.res": "SUCCESS",
            "evt.rawres": 0,
            "evt.failed": False,
            **base,
            **extra,
        }
        self.events.append(event)


def clock_text(ns: int) -> str:
    """%evt.time: the time of day with nanoseconds, "10:00:00.123456789"."""
    t = datetime.fromtimestamp(ns // 10**9, UTC)
    return f"{t:%H:%M:%S}.{ns % 10**9:09d}"


