"""Falco evidence from a kind cluster: the alerts of the lab's Falco DaemonSet, read
from its pod on each node and matched to the attack's steps by time and pod.

Falco runs with the node's /etc/falco (a hostPath), where the learner edits the
rules; it reloads them when they change. A reload that fails leaves the old rules
running, and Falco says so with a "Falco internal: hot restart failure" alert: that
is reported as what it is, the learner's rules did not load. Which files load and
why not comes from `falco -V` in the Falco pod. The names, priorities and states
of the rules (for explanations of near misses) are the lab's Falco engine's reading
of the same files.

What the kind backend cannot know: the events behind an alert, the alerts a
filter dropped (FalcoEvidence.events / suppressed stay empty), and package
upgrades, which it does not perform (FalcoEvidence.upgrades stays empty, with a note).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.backends.kind.steps import ExecRun, find_pod, list_files, path_kind, read_text
from lab.errors import LabError
from lab.evidence import FalcoEvidence, FalcoNode, FalcoRulesFile
from lab.scenarios.model import Scenario

if TYPE_CHECKING:
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


def _same_pod(alert: Mapping[str, Any], ns: str, pod: str, container_ids: Sequence[str]) -> bool:
    """Whether an alert may be of this pod: its k8s fields, else its container id, say
    so; an alert naming neither cannot be told apart and may be."""
    f = alert.get("output_fields")
    f = f if isinstance(f, Mapping) else {}
    a_ns, a_pod, cid = f.get("k8s.ns.name"), f.get("k8s.pod.name"), f.get("container.id")
    if a_pod:
        return a_pod == pod and (not a_ns or a_ns == ns)
    if cid and cid != "host" and container_ids:
        return str(cid)[:12] in container_ids
    return True


def _short_ids(info: PodInfo | None) -> list[str]:
    if info is None:
        return []
    return [c.container_id.split("://")[-1][:12] for c in info.containers if c.container_id]


def assign(
    alerts: Sequence[dict[str, Any]],
    execs: Sequence[ExecRun],
    workloads: Mapping[str, tuple[str, str, list[str]]],
) -> dict[str, list[dict[str, Any]]]:
    """Alerts by step: an exec step gets those of its pod in its window; a workload
    step (the pod's own processes, which the lab cannot replay) those of its pod
    outside every exec window. `workloads`: step -> (namespace, pod, container ids)."""
    from lab.kind.falco_log import assign_alerts

    windows = [(r.step, r.start, r.end) for r in execs]
    pods = {r.step: (r.namespace, r.pod) for r in execs}
    out = assign_alerts(alerts, windows, pods, grace=WINDOW_SLACK)
    for a in out.pop("", []):
        for step, (ns, pod, ids) in workloads.items():
            if _same_pod(a, ns, pod, ids):
                out.setdefault(step, []).append(a)
    return out


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
) -> FalcoEvidence:
    """Each scenario node's Falco, and the alerts of the steps it saw."""
    ev = FalcoEvidence()
    workloads: dict[str, dict[str, tuple[str, str, list[str]]]] = {}  # node -> step -> pod
    for step in sc.attack:
        if step.exec is not None and step.id in execs and execs[step.id].node:
            ev.step_nodes[step.id] = str(execs[step.id].node)
        elif step.workload is not None:
            w = step.workload
            pod = sc.setup.pod(w.namespace, w.pod)
            info = find_pod(kube, w.namespace, w.pod, pod)
            node = node_of(info.node) if info else (pod.node if pod else None)
            if node is not None:
                ev.step_nodes[step.id] = node
                name = info.name if info else w.pod
                workloads.setdefault(node, {})[step.id] = (w.namespace, name, _short_ids(info))
    for node in (n.name for n in sc.cluster.nodes):
        status, alerts = falco_node(nodes, kube, node, names[node], since)
        if status.installed or node in ev.step_nodes.values():
            ev.nodes[node] = status
        on_node = [r for r in execs.values() if r.node == node]
        for step_id, got in assign(alerts, on_node, workloads.get(node, {})).items():
            ev.alerts[step_id] = got
    for step in sc.attack:
        up = step.package_upgrade
        if up is not None and up.node in ev.nodes:
            ev.nodes[up.node].notes.append(
                f"attack step {step.id!r} upgrades the {up.package} package: the kind backend "
                "does not run package upgrades, so the files it would put back "
                f"({', '.join(up.restore)}) keep your changes here"
            )
    for step_id in ev.step_nodes:
        ev.alerts.setdefault(step_id, [])
    return ev
