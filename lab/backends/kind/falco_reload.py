"""Falco on the learner's current rules before an attack runs.

Falco reloads its files itself (watch_config_files), but not always in time and not
always at all: the hot restart waits for the writes to settle, dry-runs the new
files, then restarts its whole engine (driver, plugins, rules, a scan of /proc),
which takes seconds; and it watches each file by inode, so after a failed dry run a
file replaced by a new one (an editor's save, the lab's own `solution --apply`) is
no longer watched, and the fix is never seen. So before the attack, for each node
whose Falco a check grades, the newest change under /etc/falco (change time, which
no tool can set) is compared with the time Falco last loaded its rules
(its pod log, with the kubelet's time stamps, on the node's clock too). When the
files are newer, Falco gets a little time to reload; when it does not (or cannot,
its watch being gone), its pod is deleted, and the DaemonSet's new one starts on
the current files. What happened is told to the learner in the Falco evidence.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from lab.backends.kind.steps import find_pod
from lab.errors import LabError
from lab.scenarios.model import Scenario
from lab.work import Progress, ProgressEvent, no_progress

if TYPE_CHECKING:
    from lab.kind.falco_log import EngineTimes
    from lab.kind.kube import ContainerInfo, Kube
    from lab.kind.nodes import LabNodes

FALCO_DIR = "/etc/falco"
RELOAD_WAIT = 20.0  # seconds Falco gets, after a change, to reload by itself
RESTART_TIMEOUT = 120.0  # for a new Falco pod to start
START_SETTLE = 3.0  # the source opens a moment after Falco says it opens it
POLL = 1.0
LOOKBACK = timedelta(minutes=15)  # of the log before the change: an earlier failed reload
# Waiting reasons of a Falco container that will not run again soon by itself.
CRASHED = frozenset({"CrashLoopBackOff", "Error", "RunContainerError", "CreateContainerError"})

_PENDING = (
    "Falco had not reloaded your rules {wait:g}s after your last change under /etc/falco "
    "(its hot reload did not pick the change up)"
)
_STUCK = (
    "an earlier hot reload of your rules failed, and after such a failure Falco no longer "
    "watches a rules file that was replaced by a new one, so it did not see your later change"
)
_RESTARTED = (
    ": the lab restarted Falco's pod before the attack, so the check ran with your current "
    "rules (on a real node, restart the Falco service when it does not reload by itself)"
)


@dataclass
class RulesSync:
    """What bringing one node's Falco onto the current files came to."""

    node: str
    # "current" | "reloaded" (after a wait) | "rejected" (Falco refused the current
    # files) | "restarted" | "crashed" (restarted, did not start) | "timeout" |
    # "absent" (no Falco pod) | "unknown" (no times to compare)
    state: str
    notes: list[str] = field(default_factory=list)
    error: str | None = None  # Falco could not be brought onto the current rules


def _editor_file(path: str) -> bool:
    """Editor leftovers (vim's swap and test files, backups), which Falco never reads."""
    name = posixpath.basename(path)
    return (
        name.startswith(".")
        or name.endswith("~")
        or name.endswith((".swp", ".swo", ".swx"))
        or name == "4913"
    )


def newest_change(nodes: LabNodes, node: str) -> datetime | None:
    """The newest change of a file under the node's /etc/falco; None when there is none
    or it cannot be read. The change time (ctime), not the modification time: every
    write sets it, from the kernel's clock, and no tool can set it (docker's copy gives
    a file the whole-second mtime of its archive, `touch -d` any time at all)."""
    r = nodes.exec(
        node, ["find", "-L", FALCO_DIR, "-type", "f", "-printf", "%C@ %p\\n"], timeout=30
    )
    newest: float | None = None
    for line in r.stdout.splitlines():  # find says what it could, even when it fails on one
        stamp, _, path = line.partition(" ")
        if not path or _editor_file(path):
            continue
        try:
            t = float(stamp)
        except ValueError:
            continue
        newest = t if newest is None else max(newest, t)
    return datetime.fromtimestamp(newest, UTC) if newest is not None else None


def falco_graded_nodes(
    sc: Scenario, kube: Kube, node_of: Callable[[str | None], str | None]
) -> list[str]:
    """The scenario nodes whose Falco a check grades: those of the steps a Falco check
    names, and those falco_rules_load names (every node when it names none)."""
    steps: set[str] = set()
    named: set[str] = set()
    for task in sc.tasks:
        for c in task.checks:
            if not c.type.startswith("falco_"):
                continue
            if c.params.get("step") is not None:
                steps.add(str(c.params["step"]))
            elif c.type == "falco_rules_load":
                node = c.params.get("node")
                if node is None:
                    return [n.name for n in sc.cluster.nodes]
                named.add(str(node))
    for step in sc.attack:
        where = step.in_pod
        if step.id not in steps or where is None:
            continue
        ns, name, _ = where
        spec = sc.setup.pod(ns, name)
        info = find_pod(kube, ns, name, spec)
        node = node_of(info.node) if info is not None else None
        node = node or (spec.node if spec is not None else None)
        if node:
            named.add(node)
    return [n.name for n in sc.cluster.nodes if n.name in named]


def _falco_state(kube: Kube, pod: str) -> ContainerInfo | None:
    from lab.backends.kind.falco import FALCO_CONTAINER
    from lab.kind.falco_deploy import FALCO_NAMESPACE

    info = kube.pod(FALCO_NAMESPACE, pod)
    return next((c for c in (info.containers if info else []) if c.name == FALCO_CONTAINER), None)


def _crashed(c: ContainerInfo | None) -> bool:
    return c is not None and (c.state == "terminated" or c.reason in CRASHED)


def _log(kube: Kube, pod: str, since: datetime | None = None) -> str:
    from lab.backends.kind.falco import FALCO_CONTAINER
    from lab.kind.falco_deploy import FALCO_NAMESPACE

    return kube.logs(FALCO_NAMESPACE, pod, container=FALCO_CONTAINER, since=since, timestamps=True)


@dataclass
class _Run:
    """One node's sync: its handles and limits."""

    nodes: LabNodes
    kube: Kube
    node: str
    container: str  # its kind node (container) name
    clock: Callable[[], datetime]
    sleep: Callable[[float], None]
    progress: Progress
    wait: float
    timeout: float
    settle: float
    poll: float

    def tell(self, message: str) -> None:
        self.progress(ProgressEvent(message, phase="falco"))

    def times(self, pod: str, changed: datetime) -> EngineTimes:
        from lab.kind.falco_log import engine_times

        return engine_times(_log(self.kube, pod, changed - LOOKBACK))

    def await_start(self, old: str | None) -> str:
        """Wait for a Falco pod on the node (not ``old``) to open its event source:
        "started", "crashed" (it exited) or "timeout"."""
        from lab.kind.falco_deploy import falco_pod
        from lab.kind.falco_log import engine_times, parse_falco_log

        deadline = self.clock() + timedelta(seconds=self.timeout)
        while True:
            pod = falco_pod(self.kube, self.container)
            if pod is not None and pod != old:
                c = _falco_state(self.kube, pod)
                if c is not None and c.state == "running":
                    text = _log(self.kube, pod)
                    if engine_times(text).starts:
                        if self.settle:
                            self.sleep(self.settle)
                        return "started"
                    if parse_falco_log(text).errors:
                        return "crashed"
                elif _crashed(c):
                    return "crashed"
            now = self.clock()
            if now >= deadline:
                return "timeout"
            self.sleep(min(self.poll, (deadline - now).total_seconds()))

    def restart(self, pod: str, why: str) -> RulesSync:
        from lab.kind.falco_deploy import FALCO_NAMESPACE

        self.tell(f"restarting Falco on node {self.node} so it loads your rules")
        try:
            self.kube.delete("Pod", FALCO_NAMESPACE, pod, wait=self.timeout)
        except LabError as e:
            return RulesSync(
                self.node,
                "timeout",
                error=f"Falco could not be brought onto your current rules: the lab could "
                f"not restart its pod ({e.message}); run the check again",
            )
        outcome = self.await_start(pod)
        if outcome == "started":
            return RulesSync(self.node, "restarted", [why + _RESTARTED])
        if outcome == "crashed":
            return RulesSync(
                self.node,
                "crashed",
                [
                    f"{why}: the lab restarted Falco's pod before the attack, and Falco did not "
                    "start with your current files"
                ],
            )
        return RulesSync(
            self.node,
            "timeout",
            error=f"Falco could not be brought onto your current rules: the lab restarted its "
            f"pod, and Falco had not started {self.timeout:g}s later, so it saw nothing of the "
            "attack; run the check again",
        )

    def sync(self) -> RulesSync:
        from lab.kind.falco_deploy import falco_pod
        from lab.kind.falco_log import rules_state

        pod = falco_pod(self.kube, self.container)
        if pod is None:
            return RulesSync(self.node, "absent")  # the evidence says there is no Falco
        state = _falco_state(self.kube, pod)
        if _crashed(state):
            assert state is not None
            # It exited (its files did not load when it started) and waits out the
            # kubelet's back-off, up to minutes: start it now on the current files.
            why = f"Falco was not running ({state.reason or state.state})"
            return self.restart(pod, why)
        if state is None or state.state != "running":
            self.tell(f"waiting for Falco to start on node {self.node}")
            if self.await_start(None) != "started":
                return RulesSync(self.node, "unknown")  # the evidence says why it is not running
            pod = falco_pod(self.kube, self.container) or pod
        changed = newest_change(self.nodes, self.node)
        if changed is None:
            return RulesSync(self.node, "unknown")
        times = self.times(pod, changed)
        if not times.stamped:
            return RulesSync(self.node, "unknown")
        verdict = rules_state(times, changed)
        if verdict == "pending":
            self.tell(f"waiting for Falco to load your rules on node {self.node}")
            now = self.clock()
            # The reload starts at the change: a change long ago had its chance.
            left = min(self.wait, max(0.0, (changed - now).total_seconds() + self.wait))
            deadline = now + timedelta(seconds=left)
            while verdict == "pending" and now < deadline:
                self.sleep(min(self.poll, (deadline - now).total_seconds()))
                verdict = rules_state(self.times(pod, changed), changed)
                now = self.clock()
            if verdict == "current":
                if self.settle:
                    self.sleep(self.settle)
                return RulesSync(self.node, "reloaded")
        if verdict in ("current", "rejected"):
            return RulesSync(self.node, verdict)
        return self.restart(pod, _STUCK if verdict == "stuck" else _PENDING.format(wait=self.wait))


def sync_falco_rules(
    nodes: LabNodes,
    kube: Kube,
    sc: Scenario,
    names: Mapping[str, str],
    node_of: Callable[[str | None], str | None],
    *,
    clock: Callable[[], datetime],
    sleep: Callable[[float], None],
    progress: Progress = no_progress,
    wait: float = RELOAD_WAIT,
    timeout: float = RESTART_TIMEOUT,
    settle: float = START_SETTLE,
    poll: float = POLL,
) -> dict[str, RulesSync]:
    """Bring the Falco of every node a check grades onto the node's current files
    (see the module's docstring); what it came to, by scenario node."""
    out: dict[str, RulesSync] = {}
    for node in falco_graded_nodes(sc, kube, node_of):
        run = _Run(nodes, kube, node, names[node], clock, sleep, progress, wait, timeout,
                   settle, poll)  # fmt: skip
        try:
            out[node] = run.sync()
        except LabError as e:
            out[node] = RulesSync(
                node,
                "unknown",
                [f"the lab could not tell whether Falco runs your current rules: {e.message}"],
            )
    return out
