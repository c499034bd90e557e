"""The sim backend's Falco: falco.yaml read as Falco 0.44 reads it, rules files loaded
in its order, the attack's events run through the engine, alerts written where
falco.yaml says, and the evidence the checks grade.

Tables: tests/backends/cases/falco_config.yaml (falco.yaml alone) and
tests/backends/cases/sim_falco.yaml (end to end on tests/scenarios/fixtures/falco-lab).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.backends.sim import SimBackend
from lab.backends.sim.falco_config import FalcoConfigError, parse_config
from lab.backends.sim.falco_files import FalcoFiles
from lab.evidence import Evidence
from lab.grading.grader import grade
from lab.nodefs import resolve_in_node
from lab.scenarios.loader import LoadedScenario, load_scenario
from lab.scenarios.model import Check
from lab.service import self_test
from lab.workspace import Workspace, create_workspace

HERE = Path(__file__).parent
CONFIG_CASES = yaml.safe_load((HERE / "cases" / "falco_config.yaml").read_text())
SIM_CASES = yaml.safe_load((HERE / "cases" / "sim_falco.yaml").read_text())
FIXTURE = HERE.parent / "scenarios" / "fixtures" / "falco-lab"
NOW = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize("case", CONFIG_CASES, ids=[c["name"] for c in CONFIG_CASES])
def test_falco_yaml(case: dict[str, Any]) -> None:
    raw = case["yaml"].encode()
    if "error" in case:
        with pytest.raises(FalcoConfigError) as e:
            parse_config(raw)
        assert case["error"] in str(e.value)
        if "line" in case:
            assert e.value.line == case["line"], str(e.value)
        return
    cfg = parse_config(raw)
    for key, value in case.get("expect", {}).items():
        got = getattr(cfg, key)
        assert got == value, f"{key}: {got!r}"
    for text in case.get("warnings", []):
        assert any(text in w for w in cfg.warnings), cfg.warnings


# --- end to end -----------------------------------------------------------------------


def workspace(tmp: Path, sc: LoadedScenario, solved: bool) -> Workspace:
    ws = create_workspace(tmp / "ws", sc, "sim")
    SimBackend().prepare(sc, ws)
    if solved:
        for task in sc.model.tasks:
            for f in task.solution.files:
                ws.write_node_file(sc, f)
    return ws


def node_file(ws: Workspace, node: str, path: str) -> Path:
    return resolve_in_node(ws.node_root(node), path)


def apply_edits(ws: Workspace, case: dict[str, Any]) -> None:
    for node, files in case.get("write", {}).items():
        for path, text in files.items():
            target = node_file(ws, node, path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    for node, files in case.get("replace", {}).items():
        for path, pairs in files.items():
            target = node_file(ws, node, path)
            text = target.read_text()
            for old, new in pairs:
                assert old in text, f"case is stale: {old!r} not in {path}"
                text = text.replace(old, new, 1)
            target.write_text(text)
    for node, paths in case.get("delete", {}).items():
        for path in paths:
            node_file(ws, node, path).unlink()


def find_check(sc: LoadedScenario, result: Any, spec: dict[str, Any]) -> Any:
    for t_model, t_res in zip(sc.model.tasks, result.tasks, strict=True):
        for c_model, c_res in zip(t_model.checks, t_res.checks, strict=True):
            params = {"type": c_model.type, **c_model.params}
            if all(params.get(k) == v for k, v in spec.items()):
                return c_res
    return None


def run_check(sc: LoadedScenario, ev: Evidence, spec: dict[str, Any]) -> Any:
    """The scenario's check matching spec, or else spec graded as a check of its own."""
    found = find_check(sc, grade(sc.model, ev), spec)
    if found is not None:
        return found
    check = Check(type=spec["type"], params={k: v for k, v in spec.items() if k != "type"})
    model = replace(sc.model, tasks=[replace(sc.model.tasks[0], checks=[check])])
    return grade(model, ev).tasks[0].checks[0]


@pytest.mark.parametrize("case", SIM_CASES, ids=[c["name"] for c in SIM_CASES])
def test_sim_falco(case: dict[str, Any], tmp_path: Path) -> None:
    sc = load_scenario(FIXTURE)
    ws = workspace(tmp_path, sc, case["from"] == "solution")
    apply_edits(ws, case)
    ev = SimBackend(now=NOW).run_attack(sc, ws)
    falco = ev.falco
    assert falco is not None
    exp = case["expect"]
    for node, running in exp.get("running", {}).items():
        assert falco.nodes[node].running is running, falco.nodes[node].error
    for node in exp.get("no_falco", []):
        assert node not in falco.nodes
    for node, text in exp.get("error", {}).items():
        assert text in (falco.nodes[node].error or ""), falco.nodes[node].error
    for node in exp.get("no_notes", []):
        assert falco.nodes[node].notes == [], falco.nodes[node].notes
    for node, notes in exp.get("notes", {}).items():
        for text in notes:
            assert any(text in n for n in falco.nodes[node].notes), falco.nodes[node].notes
    for step, rules in exp.get("alerts", {}).items():
        assert [a["rule"] for a in falco.alerts.get(step, [])] == rules, step
    for node, texts in exp.get("log", {}).items():
        log = (ws.lab_dir / "logs" / f"falco-{node}.log").read_text()
        for text in texts:
            assert text in log, log
    for node, texts in exp.get("not_in_log", {}).items():
        log = (ws.lab_dir / "logs" / f"falco-{node}.log").read_text()
        for text in texts:
            assert text not in log, log
    for node, files in exp.get("node_file", {}).items():
        for path, texts in files.items():
            content = node_file(ws, node, path).read_text()
            for text in texts:
                assert text in content, content
    for node, paths in exp.get("missing_file", {}).items():
        for path in paths:
            assert not node_file(ws, node, path).exists(), path
    for node, counts in exp.get("log_count", {}).items():
        log = (ws.lab_dir / "logs" / f"falco-{node}.log").read_text()
        for text, count in counts.items():
            assert log.count(text) == count, f"{text!r} {log.count(text)} times in:\n{log}"
    for step, up in exp.get("upgrades", {}).items():
        got = falco.upgrades[step]
        assert got.changed == up["changed"]
        assert got.falco.running is up["running"], got.falco.error
    notes = grade(sc.model, ev).notes
    for text in exp.get("report_notes", []):  # once, though both Falco runs note it
        assert len([n for n in notes if text in n]) == 1, notes
    if exp.get("all_pass"):
        result = grade(sc.model, ev)
        failed = [f"{c.title}: {c.full_explanation}" for t in result.tasks for c in t.checks
                  if not c.passed]  # fmt: skip
        assert not failed, failed
    for spec in exp.get("checks", []):
        check = run_check(sc, ev, spec["check"])
        assert check.passed is spec["passed"], f"{check.title}: {check.full_explanation}"
        for words in spec.get("says", []):
            assert words in check.explanation, check.explanation
        if "cause" in spec:
            assert check.cause and spec["cause"] in check.cause, check.cause


def test_json_lines_are_falcos_and_match_the_evidence(tmp_path: Path) -> None:
    sc = load_scenario(FIXTURE)
    ws = workspace(tmp_path, sc, True)
    ev = SimBackend(now=NOW).run_attack(sc, ws)
    assert ev.falco is not None
    lines = node_file(ws, "worker", "/var/log/falco/events.log").read_text().splitlines()
    alerts = [json.loads(line) for line in lines]
    assert [a["rule"] for a in alerts] == [
        a["rule"] for step in ev.falco.alerts.values() for a in step
    ]
    first = lines[0]
    assert first.startswith('{"hostname":"worker","output":"10:00:00.')
    assert list(alerts[0]) == sorted(alerts[0]) == [
        "hostname", "output", "output_fields", "priority", "rule", "source", "tags", "time",
    ]  # fmt: skip
    assert alerts[0]["time"].startswith("2026-11-27T10:00:00.") and alerts[0]["time"][-1] == "Z"
    assert alerts[0]["source"] == "syscall"


def test_file_output_is_appended_to_at_every_check(tmp_path: Path) -> None:
    sc = load_scenario(FIXTURE)
    ws = workspace(tmp_path, sc, False)
    SimBackend(now=NOW).run_attack(sc, ws)
    log = node_file(ws, "worker", "/var/log/falco/events.log")
    once = log.read_text().count("\n")
    stdout = (ws.lab_dir / "logs" / "falco-worker.log").read_text().count("\n")
    SimBackend(now=NOW).run_attack(sc, ws)
    # shell, app-writes-config, attacker-writes-etc; shell-after-upgrade (Falco restarted)
    assert once == 4 and log.read_text().count("\n") == 2 * once
    # stdout is a new Falco pod's log at every check: written anew
    assert (ws.lab_dir / "logs" / "falco-worker.log").read_text().count("\n") == stdout


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_file_output_to_a_fifo_is_refused_not_blocking(tmp_path: Path) -> None:
    sc = load_scenario(FIXTURE)
    ws = workspace(tmp_path, sc, False)
    os.mkfifo(node_file(ws, "worker", "/var/log/falco/events.log"))
    ev = SimBackend(now=NOW).run_attack(sc, ws)
    assert ev.falco is not None
    assert any("not a regular file" in n for n in ev.falco.nodes["worker"].notes)


def test_the_fixture_self_tests() -> None:
    result = self_test(load_scenario(FIXTURE))
    assert result.ok, result.problems


def test_the_lab_default_ruleset_sees_kubectl_exec_it_as_a_terminal_shell(tmp_path: Path) -> None:
    """Events must satisfy the upstream rule conditions, as the lab's own assets write them."""
    folder = tmp_path / "falco-lab"
    shutil.copytree(FIXTURE, folder)
    spec = folder / "scenario.yaml"
    text = spec.read_text()
    for name in ("falco.yaml", "falco_rules.yaml"):
        text = text.replace(f"source: files/{name}\n", f"asset: falco/{name}\n", 1)
    spec.write_text(text)
    sc = load_scenario(folder)
    ws = workspace(tmp_path, sc, False)
    ev = SimBackend(now=NOW).run_attack(sc, ws)
    assert ev.falco is not None
    assert ev.falco.nodes["worker"].running, ev.falco.nodes["worker"].error
    (alert,) = ev.falco.alerts["shell"]
    assert alert["rule"] == "Terminal shell in container"
    assert alert["priority"] == "Notice"
    assert alert["output_fields"]["proc.tty"] == 34816


def test_restored_files_are_what_falco_reads_and_lists(tmp_path: Path) -> None:
    """After an upgrade Falco reads the shipped content, also in a folder the learner
    emptied; other files are the node's."""
    root = tmp_path / "node"
    (root / "etc/falco/rules.d").mkdir(parents=True)
    (root / "etc/falco/rules.d/20-mine.yaml").write_text("mine\n")
    (root / "etc/falco/falco.yaml").write_text("learner's\n")
    files = FalcoFiles(root, {"/etc/falco/rules.d/10-shipped.yaml": b"shipped\n",
                              "/etc/falco/falco.yaml": b"shipped config\n"})  # fmt: skip
    assert files.entries("/etc/falco/rules.d/") == [
        "/etc/falco/rules.d/10-shipped.yaml", "/etc/falco/rules.d/20-mine.yaml",
    ]  # fmt: skip
    assert files.read("/etc/falco/falco.yaml", 100) == b"shipped config\n"
    assert files.read("/etc/falco/rules.d/20-mine.yaml", 100) == b"mine\n"
    assert files.kind("/etc/falco/rules.d/10-shipped.yaml") == "file"
    assert files.kind("/etc/falco/rules.d") == "dir"
    assert files.kind("/etc/falco/none.yaml") is None
    assert (root / "etc/falco/falco.yaml").read_text() == "learner's\n"
