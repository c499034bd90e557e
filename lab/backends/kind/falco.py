"""Falco evidence from a kind cluster: the alerts of the lab's Falco DaemonSet, read
from its pod on each node and matched to the attack's steps by time and pod.

Falco runs with the node's /etc/falco (a hostPath), where the learner edits the
rules; it reloads them when they change. A reload that fails leaves the old rules
running, and Falco says so with a "Falco internal: hot restart failure" alert: that
is reported as what it is, the learner's rules did not load. Which files load and
why not comes from `falco -V` in the Falco pod. The names, priorities and states
of the rules (for explanations of near misses) are the lab's Falco engine's reading
of the same files.

An exec step gets the alerts of its pod and container raised during its exec. A
workload step (a pod's own processes, which keep running) gets the alerts outside
every exec window that fit it: its pod and container (k8s.pod.name, container.name,
container.id) and its effects (fd.name among its reads and writes; proc.name among
the programs its processes run; its container's main program counts for it, but
another one does not rule it out, since a main process may run others). Several steps
of one pod are told apart that way; an alert that fits none of them is kept under
the key "" (Falco alerted, but on none of the steps). The lab's DaemonSet adds
those fields to every alert's output_fields under its own keys (LAB_FIELDS, Falco's
append_output extra_fields, which leave the alert's text alone), so matching does
not depend on the learner's output format; they are removed before the checks see
the alert. Before the log is read, the workloads the Falco checks grade get a short
observation period (`workload_window` seconds of run time since the run started).

A package upgrade (falco_upgrade.py) restarts a node's Falco half-way: the Falco it
stopped was read then; its alerts and the restarted one's are matched to the steps
together (by time, as above), and the later steps of that node are the upgrade's
(FalcoEvidence.upgrades / after_upgrade, as on the sim).

What the kind backend cannot know: the events behind an alert and the alerts a
filter dropped (FalcoEvidence.events / suppressed stay empty).
"""

from __future__ import annotations

import posixpath
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.backends.kind.steps import (
    ExecRun,
    find_pod,
    inspect_container,
    list_files,
    path_kind,
    read_text,
)
from lab.errors import LabError
from lab.evidence import FalcoEvidence, FalcoNode, FalcoRulesFile, FalcoUpgrade
from lab.scenarios.effects import command_words
from lab.scenarios.model import AttackStep, Scenario
from lab.work import Progress, ProgressEvent, no_progress

if TYPE_CHECKING:
    from lab.backends.kind.falco_reload import RulesSync
    from lab.backends.kind.falco_upgrade import NodeUpgrade
    from lab.kind.kube import Kube, PodInfo
    from lab.kind.nodes import LabNodes

CONFIG_PATH = "/etc/falco/falco.yaml"
FALCO_CONTAINER = "falco"
RELOAD_FAILURE = "Falco internal: hot restart failure"
# Falco reads a syscall a moment after it happened and stamps it with the event's
# time; an exec's own process starts a little before the API call returns.
WINDOW_SLACK = timedelta(seconds=1)
LOOKBACK = timedelta(minutes=15)  # how far back a failed reload of the rules is looked for
COPY_LIMIT = 1 << 20
# The output_fields keys lab/kind/manifests/falco.yaml adds (append_output
# extra_fields) for matching: Falco field -> the lab's key.
LAB_PREFIX = "cks_lab."
LAB_FIELDS = ("container.id", "container.name", "k8s.ns.name", "k8s.pod.name",
              "proc.name", "proc.cmdline", "fd.name")  # fmt: skip
COMM_LEN = 15  # proc.name is the kernel's task name: at most 15 characters


@dataclass(frozen=True)
class WorkloadTarget:
    """What a workload step's alerts must fit."""

    namespace: str
    pod: str  # the cluster's pod name
    container: str | None  # the step's container (Kubernetes name), None: any of the pod
    container_ids: tuple[str, ...]  # short ids: the step's container's, else the pod's
    files: frozenset[str]  # the paths it reads and writes
    programs: frozenset[str]  # the programs its processes run
    main: str | None = None  # its container's main program


def fact(alert: Mapping[str, Any], name: str) -> str | None:
    """A field of an alert: the rule's own output field, else the lab's copy; None when
    Falco had no value (<NA>) or neither is there."""
    f = alert.get("output_fields")
    f = f if isinstance(f, Mapping) else {}
    for key in (name, LAB_PREFIX + name):
        value = f.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            text = str(value)
            if text and text != "<NA>":
                return text
    return None


def public(alert: Mapping[str, Any]) -> dict[str, Any]:
    """The alert as the learner's rule made it: without the lab's matching fields."""
    out = dict(alert)
    f = alert.get("output_fields")
    if isinstance(f, Mapping):
        out["output_fields"] = {k: v for k, v in f.items() if not str(k).startswith(LAB_PREFIX)}
    return out


def _program(alert: Mapping[str, Any]) -> str | None:
    name = fact(alert, "proc.name")
    if name is None:
        words = command_words(fact(alert, "proc.cmdline") or "")
        name = posixpath.basename(words[0]) if words else None
    return name


def fit(alert: Mapping[str, Any], t: WorkloadTarget) -> int | None:
    """How well an alert fits a workload step (the number of facts that agree), None
    when a fact contradicts it. Facts the alert lacks decide nothing."""
    score = 0
    cid = fact(alert, "container.id")
    if cid == "host":
        return None  # the node's own processes: no pod's
    pod, ns = fact(alert, "k8s.pod.name"), fact(alert, "k8s.ns.name")
    if pod is not None:
        if pod != t.pod or (ns is not None and ns != t.namespace):
            return None
        score += 1
    if cid is not None and t.container_ids:
        if cid[:12] not in t.container_ids:
            return None
        score += 1
    name = fact(alert, "container.name")
    if name is not None and t.container is not None:
        if name != t.container:
            return None
        score += 1
    fd = fact(alert, "fd.name")
    if fd is not None and t.files:
        if posixpath.normpath(fd) not in t.files:
            return None
        score += 2  # the file is the step's own effect: the strongest sign
    program = _program(alert)
    if program is not None and t.programs:
        if not any(program[:COMM_LEN] == p[:COMM_LEN] for p in t.programs):
            return None
        score += 1
    elif program is not None and t.main is not None and program[:COMM_LEN] == t.main[:COMM_LEN]:
        # A step without processes is its container's main process at work; but that
        # process may run others (a script's commands): a match counts, a miss does not.
        score += 1
    return score


def _container_of(alert: Mapping[str, Any], run: ExecRun) -> bool:
    """Whether an alert in an exec step's window may be of that step's container."""
    name = fact(alert, "container.name")
    return name is None or run.container is None or name == run.container


def assign(
    alerts: Sequence[dict[str, Any]],
    execs: Sequence[ExecRun],
    workloads: Mapping[str, WorkloadTarget],
) -> dict[str, list[dict[str, Any]]]:
    """Alerts by step: an exec step gets those of its pod and container in its window;
    every other alert goes to the workload steps it fits best (see fit), or, fitting
    none, to the key "". Alerts come without the lab's matching fields."""
    from lab.kind.falco_log import assign_alerts

    windows = [(r.step, r.start, r.end) for r in execs]
    pods = {r.step: (r.namespace, r.pod) for r in execs}
    runs = {r.step: r for r in execs}
    by_window = assign_alerts(alerts, windows, pods, grace=WINDOW_SLACK)
    out: dict[str, list[dict[str, Any]]] = {}
    rest: list[dict[str, Any]] = list(by_window.pop("", []))
    for step, got in by_window.items():
        mine = [a for a in got if _container_of(a, runs[step])]
        rest += [a for a in got if not _container_of(a, runs[step])]
        out[step] = [public(a) for a in mine]
    for a in rest:
        scores = {step: fit(a, t) for step, t in workloads.items()}
        fits = {step: n for step, n in scores.items() if n is not None}
        best = max(fits.values(), default=None)
        chosen = [step for step, n in fits.items() if n == best] or [""]
        for step in chosen:
            out.setdefault(step, []).append(public(a))
    return out


def workload_target(sc: Scenario, step: AttackStep, info: PodInfo | None) -> WorkloadTarget | None:
    w = step.workload
    if w is None:
        return None
    pod = sc.setup.pod(w.namespace, w.pod)
    spec = pod.container(w.container) if pod is not None else None
    name = spec.name if spec is not None else w.container
    infos = info.containers if info is not None else []
    short = [c.container_id.split("://")[-1][:12] for c in infos if c.container_id]
    own = [c.container_id.split("://")[-1][:12] for c in infos
           if c.container_id and c.name == name]  # fmt: skip
    eff = step.effects
    programs = {posixpath.basename(ws[0]) for ws in map(command_words, eff.processes) if ws}
    main = posixpath.basename(spec.command[0]) if spec is not None and spec.command else None
    files = frozenset(posixpath.normpath(p) for p in (*eff.reads, *eff.writes))
    return WorkloadTarget(w.namespace, info.name if info is not None else w.pod, name,
                          tuple(own or short), files, frozenset(programs), main)  # fmt: skip


def falco_graded_steps(sc: Scenario) -> set[str]:
    """The ids of the steps a Falco check grades."""
    return {str(c.params.get("step")) for t in sc.tasks for c in t.checks
            if c.type.startswith("falco_") and c.params.get("step") is not None}  # fmt: skip


def falco_workload_steps(sc: Scenario) -> list[AttackStep]:
    """The workload steps a Falco check grades."""
    graded = falco_graded_steps(sc)
    return [s for s in sc.attack if s.workload is not None and s.id in graded]


def exec_failure(step: AttackStep, run: ExecRun) -> str | None:
    """What a Falco-graded exec step's failure says, so a missing alert is explained:
    Falco alerts on what the command did, not on what it was meant to do. A secret
    step's error output is left out (it could name what the learner is to find)."""
    if run.error:
        return f"attack step {step.id!r} did not run: {run.error}"
    r = run.result
    if r is None or r.code == 0:
        return None
    text = f"attack step {step.id!r}: the command failed (exit {r.code})"
    lines = [ln.strip() for ln in r.stderr.splitlines() if ln.strip()]
    if lines and not step.secret:
        said = " | ".join(lines[-2:])
        text += ": " + (said if len(said) <= 300 else said[:297] + "...")
    return text + ", so Falco saw only what it did before it failed"


def observe_workloads(
    nodes: LabNodes,
    kube: Kube,
    sc: Scenario,
    node_of: Callable[[str | None], str | None],
    since: datetime,
    window: float,
    clock: Callable[[], datetime],
    sleep: Callable[[float], None],
    progress: Progress = no_progress,
) -> None:
    """Wait until every pod of a Falco-graded workload step has run `window` seconds
    since the run started (or since its container started, if later): a workload acts
    every few seconds, and Falco sees only what happens while it watches."""
    if window <= 0:
        return
    starts: list[datetime] = []
    for step in falco_workload_steps(sc):
        w = step.workload
        assert w is not None
        info = find_pod(kube, w.namespace, w.pod, sc.setup.pod(w.namespace, w.pod))
        if info is None or not info.running:
            continue  # nothing to watch: the checks say why
        started = since
        for c in info.containers:
            _, at = inspect_container(nodes, node_of(info.node), c.container_id)
            if at is not None and at > started:
                started = at
        starts.append(started)
    if not starts:
        return
    deadline = max(starts) + timedelta(seconds=window)
    now = clock()
    if now < deadline:
        wait = (deadline - now).total_seconds()
        progress(ProgressEvent(f"watching the workloads for {wait:.0f}s", phase="evidence"))
    while now < deadline:
        sleep(min(1.0, (deadline - now).total_seconds()))
        now = clock()


# --- Falco on a node --------------------------------------------------------------------


def _copy_rules(nodes: LabNodes, node: str, root: Path, entries: list[str]) -> None:
    """The node's rules files (and folders of them) into a temporary node root."""
    for entry in entries:
        path = entry if entry.startswith("/") else "/" + entry
        kind = path_kind(nodes, node, path)
        files = [path] if kind == "file" else list_files(nodes, node, path) if kind == "dir" else []
        if kind == "dir":
            (root / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
        for p in files:
            text = read_text(nodes, node, p, COPY_LIMIT)
            if text is not None:
                target = root / p.lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")


def _configure(nodes: LabNodes, node: str, status: FalcoNode) -> list[str]:
    """Fill what falco.yaml says; return the rules files Falco loads (node paths)."""
    from lab.backends.sim.falco_config import FalcoConfigError, parse_config
    from lab.backends.sim.falco_files import FalcoFiles
    from lab.backends.sim.falco_rules import load_node_rules, rules_file_paths

    raw = read_text(nodes, node, CONFIG_PATH, COPY_LIMIT)
    if raw is None:
        status.error = f"there is no {CONFIG_PATH} on node {node}: Falco cannot start"
        return []
    try:
        cfg = parse_config(raw.encode(), CONFIG_PATH)
    except FalcoConfigError as e:
        status.error = str(e)
        return []
    status.min_priority = cfg.priority
    status.rule_matching = cfg.rule_matching
    status.json_output = True  # the lab's DaemonSet runs Falco with -o json_output=true
    status.outputs = (["stdout"] if cfg.stdout_output else []) + (
        [f"file {cfg.file_output.filename}"] if cfg.file_output else []
    )
    status.notes += [w for w in cfg.warnings if "lab's Falco ignores" not in w]
    with tempfile.TemporaryDirectory(prefix="cks-lab-falco-") as tmp:
        root = Path(tmp)
        _copy_rules(nodes, node, root, cfg.rules_files)
        files = FalcoFiles(root)
        paths, notes = rules_file_paths(files, cfg.rules_files)
        status.notes += notes
        try:
            facts = load_node_rules(files, cfg)
        except LabError:
            facts = None
        if facts is not None:
            status.rules = facts.rules
            status.rules_files = facts.files  # replaced by falco -V's verdict when it runs
    return paths


def _validate(kube: Kube, pod: str, files: list[str], status: FalcoNode) -> bool:
    """`falco -V` in the Falco pod: which of the node's rules files load; False when it
    gave no verdict."""
    from lab.kind.falco_deploy import FALCO_NAMESPACE, validate_argv
    from lab.kind.falco_log import parse_validate_json

    if not files:
        return False
    try:
        r = kube.exec(FALCO_NAMESPACE, pod, FALCO_CONTAINER, validate_argv(files), timeout=120)
    except LabError as e:
        status.notes.append(f"could not validate the rules files in the Falco pod: {e.message}")
        return False
    try:
        result = parse_validate_json(r.stdout, files, stop_at_invalid=True)
    except (LabError, ValueError):
        result = []
    if any(f.status != "Not loaded" for f in result):
        status.rules_files = result
        return True
    status.notes.append(
        "falco -V printed no result the lab can read: "
        + (r.stderr.strip().splitlines() or ["(nothing)"])[-1]
    )
    return False


def _invalid(files: list[FalcoRulesFile]) -> FalcoRulesFile | None:
    return next((f for f in files if f.status == "Invalid"), None)


def falco_node(
    nodes: LabNodes, kube: Kube, node: str, container: str, since: datetime
) -> tuple[FalcoNode, list[dict[str, Any]]]:
    """Falco on one node, and the alerts it printed since the run started."""
    from lab.kind.falco_deploy import FALCO_NAMESPACE, falco_pod
    from lab.kind.falco_log import alert_time, parse_falco_log, reload_failure_reason

    if path_kind(nodes, node, CONFIG_PATH) is None:
        # As on the sim: a node without falco.yaml has no Falco (the DaemonSet's pod
        # there cannot start, and that is not the learner's doing).
        status = FalcoNode(node=node, running=False, installed=False)
        status.error = f"Falco is not installed on node {node}: there is no {CONFIG_PATH}"
        return status, []
    pod = falco_pod(kube, container)
    if pod is None:
        status = FalcoNode(node=node, running=False, installed=False)
        status.error = (
            f"Falco is not installed on node {node}: the lab's Falco DaemonSet has no pod there"
        )
        return status, []
    info = kube.pod(FALCO_NAMESPACE, pod)
    state = next((c for c in (info.containers if info else []) if c.name == FALCO_CONTAINER), None)
    status = FalcoNode(node=node, running=state is not None and state.state == "running")
    files = _configure(nodes, node, status)
    # A reload fails when the learner saves the rules, usually a little before the check.
    text = kube.logs(FALCO_NAMESPACE, pod, container=FALCO_CONTAINER, since=since - LOOKBACK)
    log = parse_falco_log(text)
    if not status.running:
        why = (state.reason + (f": {state.message}" if state.message else "")) if state else ""
        tail = "; ".join(log.errors[-3:])
        status.error = status.error or tail or why or f"its pod {pod} is not running"
        return status, []
    judged = _validate(kube, pod, files, status)
    bad = _invalid(status.rules_files) if judged else None
    failed = log.reload_failures[-1] if log.reload_failures else None
    if failed is not None and (bad is not None or not judged):
        said = reload_failure_reason(failed) or RELOAD_FAILURE
        status.notes.append(
            f"Falco's hot reload of the rules failed ({said.strip().splitlines()[0]}): it kept "
            "the rules it had loaded before, not yours"
        )
    if bad is not None:
        # It runs the old rules: the learner's are not loaded, as the sim reports it.
        errors = [str(m) for m in bad.messages if m.severity == "error"]
        status.running = False
        status.error = f"your rules did not load: {bad.path} is invalid" + (
            f" ({errors[0]})" if errors else ""
        )
    elif failed is not None and not judged:
        status.running = False
        status.error = (
            "your rules did not load: Falco's hot reload failed: "
            + (reload_failure_reason(failed).strip().splitlines() or ["(no reason given)"])[0]
        )
    start = since - WINDOW_SLACK
    alerts = [a for a in log.alerts if (alert_time(a) or start) >= start]
    return status, alerts


def falco_evidence(
    nodes: LabNodes,
    kube: Kube,
    sc: Scenario,
    names: Mapping[str, str],
    execs: Mapping[str, ExecRun],
    since: datetime,
    node_of: Any,
    sync: Mapping[str, RulesSync] | None = None,
    upgrades: Sequence[NodeUpgrade] = (),
) -> FalcoEvidence:
    """Each scenario node's Falco, and the alerts of the steps it saw. ``sync``: what
    bringing each node's Falco onto the current files before the attack came to;
    ``upgrades``: the package upgrades that restarted a node's Falco, in step order."""
    ev = FalcoEvidence()
    workloads: dict[str, dict[str, WorkloadTarget]] = {}  # node -> step -> what fits it
    for step in sc.attack:
        if step.exec is not None and step.id in execs and execs[step.id].node:
            ev.step_nodes[step.id] = str(execs[step.id].node)
        elif step.workload is not None:
            w = step.workload
            pod = sc.setup.pod(w.namespace, w.pod)
            info = find_pod(kube, w.namespace, w.pod, pod)
            node = node_of(info.node) if info else (pod.node if pod else None)
            target = workload_target(sc, step, info)
            if node is not None and target is not None:
                ev.step_nodes[step.id] = node
                workloads.setdefault(node, {})[step.id] = target
    for node in (n.name for n in sc.cluster.nodes):
        now, alerts = falco_node(nodes, kube, node, names[node], since)
        # Each upgrade stopped one Falco and started the next: the last one runs now.
        mine = [u for u in upgrades if u.node == node]
        falcos = [u.before for u in mine] + [now]
        for u, after in zip(mine, falcos[1:], strict=True):
            after.notes += u.notes
            ev.upgrades[u.step] = FalcoUpgrade(u.step, u.node, u.package, list(u.restored),
                                               list(u.changed), after)  # fmt: skip
        alerts = [a for u in mine for a in u.before_alerts] + alerts
        status = falcos[0]
        synced = (sync or {}).get(node)
        if synced is not None:
            status.notes += synced.notes
            if synced.error:
                # Its alerts are of other rules, or of none: not the learner's to answer for.
                why = status.error if not status.running and status.error else None
                status.running = False
                status.error = synced.error + (f" ({why})" if why else "")
        if any(f.installed for f in falcos) or node in ev.step_nodes.values():
            ev.nodes[node] = status
        on_node = [r for r in execs.values() if r.node == node]
        for step_id, got in assign(alerts, on_node, workloads.get(node, {})).items():
            ev.alerts.setdefault(step_id, []).extend(got)
    last: dict[str, str] = {}  # node -> its latest upgrade so far
    for step in sc.attack:
        up = step.package_upgrade
        if up is not None:
            if step.id in ev.upgrades:
                last[up.node] = step.id
            continue
        seen_on = ev.step_nodes.get(step.id)
        if seen_on in last:
            ev.after_upgrade[step.id] = last[seen_on]
    graded = falco_graded_steps(sc)
    for step in sc.attack:
        run = execs.get(step.id)
        note = exec_failure(step, run) if run is not None and step.id in graded else None
        if note and run is not None and run.node in ev.nodes:
            ev.nodes[str(run.node)].notes.append(note)
    for step_id in ev.step_nodes:
        ev.alerts.setdefault(step_id, [])
    return ev
