"""What changed since the previous check: the checks whose verdict flipped.

An attempt is what `service.check` records in .lab/state.json:
`{"points": .., "tasks": {task: passed}, "checks": {task: {check title: passed}}, ...}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lab.grading.results import ScenarioResult


@dataclass(frozen=True)
class Change:
    task: str
    check: str  # the check's title; "" when only the task's verdict is known (an older lab)
    now_passed: bool


def verdicts(result: ScenarioResult) -> dict[str, dict[str, bool]]:
    """task id -> {check title: passed}, as an attempt records them."""
    return {t.id: {c.title: c.passed for c in t.checks} for t in result.tasks}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def changes(
    previous: Mapping[str, Any] | None, current: ScenarioResult | Mapping[str, Any]
) -> list[Change]:
    """The checks whose verdict differs between the previous attempt and now, in
    the order of `current`. A check with no previous verdict (new in the
    scenario, or renamed) is not a change. When the previous attempt has no
    check verdicts (recorded by an older cks-lab) the tasks' verdicts are
    compared instead, as Changes with check "".
    """
    if previous is None:
        return []
    if isinstance(current, ScenarioResult):
        now_checks = verdicts(current)
        now_tasks = {t.id: t.passed for t in current.tasks}
    else:
        now_checks = {k: _dict(v) for k, v in _dict(current.get("checks")).items()}
        now_tasks = _dict(current.get("tasks"))
    if "checks" not in previous:
        before = _dict(previous.get("tasks"))
        return [
            Change(task, "", bool(passed))
            for task, passed in now_tasks.items()
            if task in before and bool(before[task]) != bool(passed)
        ]
    was = _dict(previous.get("checks"))
    out = []
    for task, checks in now_checks.items():
        earlier = _dict(was.get(task))
        for title, passed in checks.items():
            if title in earlier and bool(earlier[title]) != bool(passed):
                out.append(Change(task, title, bool(passed)))
    return out


def points_delta(previous: Mapping[str, Any], current: Mapping[str, Any]) -> int | None:
    """Points now minus points then; None when either attempt lacks them."""
    then, now = previous.get("points"), current.get("points")
    if isinstance(then, int) and isinstance(now, int):
        return now - then
    return None
