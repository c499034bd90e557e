"""Shared by the scenario answer tables: a row writes and edits a learner's files,
the scenario is graded, and exactly the listed checks fail with the listed words."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from lab.grading.results import CheckResult, ScenarioResult
from lab.nodefs import resolve_in_node
from lab.scenarios.loader import LoadedScenario
from lab.workspace import Workspace


def write_files(ws: Workspace, files: dict[str, dict[str, str]],
                text_of: Callable[[str], str] = lambda t: t) -> None:
    for node, by_path in files.items():
        for path, text in by_path.items():
            target = resolve_in_node(ws.node_root(node), path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text_of(text))


def edit_files(ws: Workspace, files: dict[str, dict[str, list[list[str]]]],
               text_of: Callable[[str], str] = lambda t: t) -> None:
    """Each edit replaces the first match of a regex; a row whose regex is gone is stale."""
    for node, by_path in files.items():
        for path, edits in by_path.items():
            target = resolve_in_node(ws.node_root(node), path)
            text = target.read_text()
            for old, new in edits:
                literal = text_of(new).replace("\\", "\\\\")  # the new text is not a template
                text, n = re.subn(old, literal, text, count=1, flags=re.S)
                if n != 1:
                    raise LookupError(f"case is stale: /{old}/ not in {path}")
            target.write_text(text)


def case_param(case: dict[str, Any]) -> Any:
    xfail = pytest.mark.xfail(strict=True, raises=AssertionError, reason=str(case.get("xfail")))
    marks = [xfail] if "xfail" in case else []
    return pytest.param(case, id=case["name"], marks=marks)


def check_results(sc: LoadedScenario,
                  result: ScenarioResult) -> list[tuple[dict[str, Any], CheckResult]]:
    """Each check's parameters (with its type) beside its result."""
    out = []
    for t_model, t_res in zip(sc.model.tasks, result.tasks, strict=True):
        for c_model, c_res in zip(t_model.checks, t_res.checks, strict=True):
            out.append(({"type": c_model.type, **c_model.params}, c_res))
    return out


def assert_fails_as_listed(sc: LoadedScenario, result: ScenarioResult,
                           fails: list[dict[str, Any]]) -> None:
    """The listed checks fail, saying the listed words; every other check passes."""
    checks = check_results(sc, result)
    expected_failures: list[CheckResult] = []
    for exp in fails:
        spec = exp["check"]
        found = [res for params, res in checks if all(params.get(k) == v for k, v in spec.items())]
        if len(found) != 1:  # not an AssertionError: an xfail row must not hide it
            raise LookupError(f"case is stale: {len(found)} checks match {spec}")
        check = found[0]
        assert not check.passed, f"{check.title} passed: {check.explanation}"
        for words in exp.get("says", []):
            assert words in check.full_explanation, f"{words!r} not in: {check.full_explanation}"
        expected_failures.append(check)
    unexpected = [
        f"{res.title}: {res.full_explanation}"
        for _, res in checks
        if not res.passed and not any(res is f for f in expected_failures)
    ]
    assert not unexpected, unexpected
