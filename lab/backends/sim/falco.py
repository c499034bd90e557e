"""Falco on the sim's nodes: started from each node's falco.yaml and rules files, fed the
attack's events, writing its alerts where falco.yaml says.

Falco runs on every node (a DaemonSet); a pod's events reach the Falco of the node
the pod runs on. What it prints (`kubectl logs` of its pod) goes to the workspace's
`.lab/logs/falco-<node>.log`; file_output lands in the node tree, appended to as
Falco does. A node without /etc/falco/falco.yaml has no Falco.

A package_upgrade step puts the files it lists back to their setup content, for
the node's Falco only and from that step on (the workspace keeps the learner's
files), and restarts that Falco: the later steps are seen by the restarted one.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lab.backends.sim.falco_config import CONFIG_PATH, FalcoConfig, FalcoConfigError, parse_config
from lab.backends.sim.falco_events import StepEvents, attack_events
from lab.backends.sim.falco_files import FalcoFiles
from lab.backends.sim.falco_output import (
    alert_line,
    alert_record,
    log_time,
    running_lines,
    startup_lines,
)
from lab.backends.sim.falco_rules import RULES_LIMIT, RulesetFacts, load_node_rules
from lab.errors import LabError
from lab.evidence import FalcoEvidence, FalcoNode, FalcoSuppressed, FalcoUpgrade
from lab.fsutil import atomic_write_bytes
from lab.nodefs import NodePathError, NotRegularFile, read_regular, resolve_in_node
from lab.scenarios.loader import LoadedScenario
from lab.scenarios.model import AttackStep
from lab.scenarios.traces import parse_trace
from lab.workspace import Workspace


@dataclass
class NodeFalco:
    """One node's Falco after start-up."""

    status: FalcoNode
    config: FalcoConfig | None = None
    facts: RulesetFacts | None = None
    log: list[str] = field(default_factory=list)  # what it printed at start-up


def start_falco(node: str, files: FalcoFiles, now: datetime) -> NodeFalco:
    """Start Falco on a node's files: read falco.yaml, then load the rules files it lists."""
    status = FalcoNode(node=node, running=False, config_file=CONFIG_PATH)
    try:
        raw = files.read(CONFIG_PATH, RULES_LIMIT)
    except FileNotFoundError:
        status.error = f"Falco is not installed on node {node}: there is no {CONFIG_PATH}"
        status.installed = False
        return NodeFalco(status)
    except (OSError, NodePathError, NotRegularFile) as e:
        status.error = f"Cannot read config file ({CONFIG_PATH}): {_reason(e)}"
        return NodeFalco(status, log=[f"Error: {status.error}"])
    try:
        cfg = parse_config(raw, CONFIG_PATH)
    except FalcoConfigError as e:
        status.error = str(e)
        return NodeFalco(status, log=[f"Error: {e.message}"])
    status.json_output = cfg.json_output
    status.min_priority = cfg.priority
    status.rule_matching = cfg.rule_matching
    status.outputs = cfg.outputs
    status.notes = list(cfg.warnings)
    facts = load_node_rules(files, cfg)
    status.rules_files = facts.files
    status.notes += facts.notes
    status.rules = facts.rules
    log = startup_lines(now, CONFIG_PATH, [f.path for f in facts.files])
    if facts.error is not None:
        status.error = facts.error
        first, *rest = facts.error_lines
        return NodeFalco(status, cfg, facts, [*log, f"Error: {first}", *rest])
    status.running = True
    return NodeFalco(status, cfg, facts, log + running_lines(now))


def _reason(e: Exception) -> str:
    if isinstance(e, LabError):
        return e.message
    if isinstance(e, OSError):
        return e.strerror or str(e)
    return str(e)


def _alerts(
    falco: NodeFalco, events: Sequence[Mapping[str, Any]], node: str
) -> tuple[list[dict[str, Any]], list[FalcoSuppressed]]:
    """The alerts Falco raises for these events, and those its filters dropped."""
    cfg, facts = falco.config, falco.facts
    assert facts is not None and cfg is not None
    ruleset = facts.ruleset
    assert ruleset is not None
    raised: list[dict[str, Any]] = []
    dropped: list[FalcoSuppressed] = []
    for event in events:
        got = [
            alert_record(a.to_json(), cfg)
            for a in ruleset.process(event, hostname=node, default_time=_rfc3339(event))
        ]
        raised += got
        if facts.unfiltered is None:
            continue
        fired = {a["rule"] for a in got}
        for a in facts.unfiltered.process(event, hostname=node, default_time=_rfc3339(event)):
            if a.rule in fired:
                continue
            record = alert_record(a.to_json(), cfg)
            if facts.below_minimum(a.priority):
                dropped.append(FalcoSuppressed(record, "priority"))
            elif got:
                dropped.append(FalcoSuppressed(record, "first-match", got[0]["rule"]))
    return raised, dropped


def _rfc3339(event: Mapping[str, Any]) -> str | None:
    ns = event.get("evt.rawtime")
    if not isinstance(ns, int):
        return None
    t = datetime.fromtimestamp(ns // 10**9, UTC)
    return f"{t:%Y-%m-%dT%H:%M:%S}.{ns % 10**9:09d}Z"


def _append_node_file(root: Path, node_path: str, text: str) -> str | None:
    """Append to a file in the node tree as Falco's file output does; why not, or None."""
    path = node_path if node_path.startswith("/") else "/" + node_path
    try:
        target = resolve_in_node(root, posixpath.normpath(path))
    except NodePathError as e:
        return e.message
    if not target.parent.is_dir():
        return f"failed to open output file {node_path} (its folder does not exist)"
    if target.exists() and not target.is_file():
        # A FIFO would block Falco's writes (or swallow them), a folder cannot be opened.
        return f"failed to open output file {node_path}: it is not a regular file"
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(target, flags | getattr(os, "O_NONBLOCK", 0), 0o644)
    except OSError as e:
        return f"failed to open output file {node_path}: {e.strerror}"
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return f"failed to open output file {node_path}: it is not a regular file"
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    return None


@dataclass
class _Segment:
    """One run of Falco on a node (start-up to restart) and the alerts it raised."""

    falco: NodeFalco
    records: list[dict[str, Any]] = field(default_factory=list)


def _write_outputs(ws: Workspace, node: str, segments: list[_Segment], now: datetime) -> None:
    lines: list[str] = []
    for seg in segments:
        falco, cfg = seg.falco, seg.falco.config
        lines += falco.log
        if cfg is None or not falco.status.running:
            continue
        alert_lines = [alert_line(r, cfg) + "\n" for r in seg.records]
        if cfg.stdout_output:
            lines += [line.rstrip("\n") for line in alert_lines]
        if cfg.file_output and alert_lines:
            problem = _append_node_file(
                ws.node_root(node), cfg.file_output.filename, "".join(alert_lines)
            )
            if problem:
                falco.status.notes.append(f"Falco could not write its file output: {problem}")
                lines.append(f"{log_time(now)}: Error: {problem}")
    log = ws.lab_dir / "logs" / f"falco-{node}.log"
    atomic_write_bytes(log, "".join(line + "\n" for line in lines).encode(), within=ws.root)


def _traces(sc: LoadedScenario) -> dict[str, list[dict[str, Any]]]:
    return {
        s.id: parse_trace(sc.read(s.trace), str(sc.file(s.trace)))
        for s in sc.model.attack
        if s.trace
    }


def _changed(root: Path, path: str, shipped: bytes) -> bool:
    """Whether the node's file differs from what the package ships (missing: it does)."""
    try:
        return read_regular(resolve_in_node(root, path), len(shipped) + 1) != shipped
    except (OSError, LabError):
        return True


def _upgrade(
    sc: LoadedScenario, step: AttackStep, files: FalcoFiles, at: datetime
) -> tuple[FalcoUpgrade, FalcoFiles, NodeFalco]:
    """The package upgrade of a step: the files put back, and Falco restarted on them."""
    up = step.package_upgrade
    assert up is not None
    shipped = {f.path: f for f in sc.model.setup.files if f.node == up.node}
    restored = dict(files.restored)
    changed = []
    for path in up.restore:
        content = sc.node_file_bytes(shipped[path])  # the validator checked it is there
        restored[posixpath.normpath(path)] = content
        if _changed(files.root, path, content):
            changed.append(path)
    files = FalcoFiles(files.root, restored)
    falco = start_falco(up.node, files, at)
    upgrade = FalcoUpgrade(step.id, up.node, up.package, list(up.restore), changed, falco.status)
    return upgrade, files, falco


def _run_node(
    ws: Workspace,
    sc: LoadedScenario,
    node: str,
    steps: dict[str, StepEvents],
    now: datetime,
    ev: FalcoEvidence,
) -> None:
    """Falco on one node through the attack, in step order; its outputs written."""
    files = FalcoFiles(ws.node_root(node))
    segments = [_Segment(start_falco(node, files, now))]
    last_upgrade: str | None = None
    for i, step in enumerate(sc.model.attack):
        up = step.package_upgrade
        if up is not None and up.node == node:
            upgrade, files, falco = _upgrade(sc, step, files, now + timedelta(seconds=2 * i))
            ev.upgrades[step.id] = upgrade
            last_upgrade = step.id
            segments.append(_Segment(falco))
            continue
        seen = steps.get(step.id)
        if seen is None or seen.node != node:
            continue
        ev.step_nodes[step.id] = node
        ev.events[step.id] = seen.events
        if last_upgrade is not None:
            ev.after_upgrade[step.id] = last_upgrade
        seg = segments[-1]
        if not seg.falco.status.running:
            continue
        raised, dropped = _alerts(seg.falco, seen.events, node)
        ev.alerts[step.id] = raised
        if dropped:
            ev.suppressed[step.id] = dropped
        seg.records += raised
    installed = any(s.falco.status.installed for s in segments)
    if installed or node in ev.step_nodes.values():
        ev.nodes[node] = segments[0].falco.status
    if installed:
        _write_outputs(ws, node, segments, now)


def run_falco(
    ws: Workspace, sc: LoadedScenario, run_id: str, now: datetime | None = None
) -> FalcoEvidence:
    """Start Falco on the nodes, replay the attack's node events through it, collect evidence."""
    now = now or datetime.now(UTC)
    steps = {s.step: s for s in attack_events(sc.model, run_id, now, _traces(sc))}
    ev = FalcoEvidence()
    for node in (n.name for n in sc.model.cluster.nodes):
        _run_node(ws, sc, node, steps, now, ev)
    return ev
