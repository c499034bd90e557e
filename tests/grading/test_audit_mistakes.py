"""Grading on learners' real mistakes: the right checks fail, with the right words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.backends.sim import SimBackend
from lab.grading.grader import grade
from lab.nodefs import resolve_in_node
from lab.paths import bundled_scenarios_dir
from lab.scenarios.loader import load_scenario
from lab.workspace import create_workspace

CASES = yaml.safe_load((Path(__file__).parent / "cases" / "audit_mistakes.yaml").read_text())


def _find(sc: Any, result: Any, spec: dict[str, Any]) -> Any:
    found = []
    for t_model, t_res in zip(sc.model.tasks, result.tasks, strict=True):
        for c_model, c_res in zip(t_model.checks, t_res.checks, strict=True):
            params = {"type": c_model.type, **c_model.params}
            if all(params.get(k) == v for k, v in spec.items()):
                found.append(c_res)
    assert found, f"case is stale: no check matches {spec}"
    return found[0]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_mistake(case: dict[str, Any], tmp_path: Path) -> None:
    sc = load_scenario(bundled_scenarios_dir() / case["scenario"])
    ws = create_workspace(tmp_path / "ws", sc, "sim")
    SimBackend().prepare(sc, ws)
    if case["from"] == "solution":
        for task in sc.model.tasks:
            for f in task.solution.files:
                ws.write_node_file(sc, f)
    node = ws.node_root(sc.model.control_plane)
    for path in case.get("pre_dirs", []):
        resolve_in_node(node, path).mkdir(parents=True, exist_ok=True)
    for path, text in case.get("replace_file", {}).items():
        resolve_in_node(node, path).write_text(text)
    if "log_before" in case or "log_fill" in case:
        log = resolve_in_node(node, "/var/log/kubernetes/audit/audit.log")
        log.parent.mkdir(parents=True, exist_ok=True)
        filler = ("x" * 99 + "\n") * (case.get("log_fill", 0) // 100)
        log.write_text(case.get("log_before", "") + filler)
    for src, dst in case.get("copy_before_edit", {}).items():
        resolve_in_node(node, dst).write_bytes(resolve_in_node(node, src).read_bytes())
    for path, edits in case.get("edit", {}).items():
        target = resolve_in_node(node, path)
        text = target.read_text()
        for old, new in edits:
            assert old in text, f"case is stale: {old!r} not in {path}"
            text = text.replace(old, new, 1)
        target.write_text(text)

    result = grade(sc.model, SimBackend().run_attack(sc, ws))

    for exp in case["expect"]:
        check = _find(sc, result, exp["check"])
        assert check.passed is exp["passed"], f"{check.title}: {check.explanation}"
        for words in exp.get("says", []):
            assert words in check.full_explanation, check.full_explanation
    for note in case.get("notes", []):
        assert any(note in n for n in result.notes), result.notes
