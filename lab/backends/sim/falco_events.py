"""An attack step's effects as the syscall events Falco would see on the pod's node.

Each event is a mapping of Falco field names to values, as a recorded trace holds
them (`sysdig -j -p '*%evt.num %evt.type ...'`); only exit events (evt.dir "<") are
made, since Falco 0.42 and later skip enter events.

Processes of a step, in order (the convention scenario authors rely on):
- an exec step's first process is the one `kubectl exec` starts; its parent is
  `containerd-shim`, whose parent is `systemd` (runc has exited by then, so the
  shim, a child subreaper, is the parent Falco reports; both are in upstream's
  `container_entrypoint` macro). Without `effects.processes` it is `exec.command`;
- a workload step acts as the container's main process (vpid 1, `command` of the
  container), whose parent is `containerd-shim`; the step's processes are its
  children;
- a later process is a child of the latest earlier process that is a shell
  (`sh -c ...` runs its command), or else of the process just before it;
- files and connections are opened, and capabilities used, by the step's last
  process (the main process when a workload step starts none).

Values are realistic and deterministic: container ids, pod IPs and uids follow
from the pod, pids, ports and event numbers from the run id.
"""

from __future__ import annotations

import random
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from lab.backends.sim.falco_pods import digest, pod_fields, user_fields
from lab.backends.sim.falco_procs import SHELLS, SHIM_EXE, TTY_PTS0, Clock, Event, Proc
from lab.backends.sim.falco_syscalls import capability, connect, execve, open_file
from lab.scenarios.effects import command_words
from lab.scenarios.model import AttackStep, Container, Pod, Scenario


@dataclass(frozen=True)
class StepEvents:
    """The events of one attack step and the node whose Falco sees them."""

    step: str
    node: str
    events: list[Event]


def _spawn(
    first_parent: Proc, commands: list[str], pids: Iterator[int], vpids: Iterator[int], tty: int
) -> list[Proc]:
    procs: list[Proc] = []
    for cmd in commands:
        shells = [p for p in procs if p.name in SHELLS]
        parent = shells[-1] if shells else (procs[-1] if procs else first_parent)
        argv = command_words(cmd) or [cmd]
        procs.append(Proc(next(pids), next(vpids), argv, parent, tty))
    return procs


def _counter(start: int) -> Iterator[int]:
    n = start
    while True:
        yield n
        n += 1


def _step_events(
    sc: Scenario, step: AttackStep, pod: Pod, c: Container, clock: Clock
) -> list[Event]:
    rng = clock.rng
    ctx = {**pod_fields(sc, pod, c), **user_fields(c)}
    seed = int(digest(pod.namespace, pod.name, c.name), 16)
    # The node's and the container's long-lived processes; a step's own are new.
    systemd = Proc(1, 1, ["/lib/systemd/systemd"], None, duration=86_400 * 10**9)
    shim_argv = [SHIM_EXE, "-namespace", "k8s.io", "-id", ctx["container.full_id"]]
    shim_argv += ["-address", "/run/containerd/containerd.sock"]
    shim = Proc(1000 + seed % 9000, 1000 + seed % 9000, shim_argv, systemd)
    shim.duration = main_age = 3_600 * 10**9 + seed % 10**9
    main = Proc(10000 + seed % 10000, 1, list(c.command), shim, duration=main_age)
    pids = _counter(rng.randint(20000, 60000))
    start = len(clock.events)
    if step.exec is not None:
        tty = TTY_PTS0 if step.exec.tty else 0
        commands = step.effects.processes or [shlex.join(step.exec.command)]
        procs = _spawn(shim, commands, pids, _counter(rng.randint(7, 40)), tty)
    else:
        vpids = _counter(rng.randint(7, 40))
        procs = _spawn(main, step.effects.processes, pids, vpids, 0)
    for p in procs:
        execve(clock, ctx, p)
    actor = procs[-1] if procs else main
    for path in step.effects.reads:
        open_file(clock, ctx, actor, path, write=False)
    for path in step.effects.writes:
        open_file(clock, ctx, actor, path, write=True)
    for target in step.effects.connects:
        connect(clock, ctx, actor, target, ctx["k8s.pod.ip"])
    for cap in step.effects.capabilities:
        capability(clock, ctx, actor, cap)
    return clock.events[start:]


def attack_events(
    sc: Scenario,
    run_id: str,
    start: datetime,
    traces: Mapping[str, list[Event]] | None = None,
) -> list[StepEvents]:
    """The events of every step that happens in a pod, in attack order.

    `traces` maps step ids to recorded events, replayed as they are after the
    events the step's effects make.
    """
    traces = traces or {}
    rng = random.Random(f"falco-events/{run_id}")
    clock = Clock(rng, start, num=rng.randint(100_000, 900_000))
    out: list[StepEvents] = []
    for i, step in enumerate(sc.attack):
        where = step.in_pod
        if where is None:
            continue
        pod = sc.setup.pod(where[0], where[1])
        container = pod.container(where[2]) if pod else None
        if pod is None or container is None:
            continue  # the scenario validator reports these
        clock.time = start + timedelta(seconds=2 * i)
        events = _step_events(sc, step, pod, container, clock)
        events += [dict(e) for e in traces.get(step.id, [])]
        out.append(StepEvents(step.id, pod.node, events))
    return out
