"""JSON report (schema version 2), for CI and workshop reports.

The shape is documented field by field in docs/ci-grading.md and as a JSON
Schema in docs/report.schema.json (tests check real reports against it). A new
`schema` number means an incompatible change; fields may be added within one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab import __version__
from lab.grading.results import ScenarioResult

if TYPE_CHECKING:
    from lab.scenarios.model import Scenario

SCHEMA_VERSION = 2


@dataclass(frozen=True)
class Graded:
    """A scenario's result with what a report says around it: the scenario's
    skills, domain and weight, and the workspace graded (None: untouched).

    `digest` (the scenario folder's sha256, as packs give it), `solutions_viewed`
    and `hints_taken` (from the graded workspace's state) let an instructor see
    what was graded against and what the learner's state records; None: unknown.
    """

    result: ScenarioResult
    skills: tuple[str, ...] = ()
    domain: str | None = None
    weight: int | None = None
    workspace: str | None = None
    digest: str | None = None
    solutions_viewed: tuple[str, ...] | None = None
    hints_taken: Mapping[str, int] | None = None

    @classmethod
    def of(
        cls,
        result: ScenarioResult,
        scenario: Scenario,
        workspace: str | Path | None,
        *,
        digest: str | None = None,
        solutions_viewed: Sequence[str] | None = None,
        hints_taken: Mapping[str, int] | None = None,
    ) -> Graded:
        return cls(
            result,
            tuple(str(s) for s in scenario.skills),
            str(scenario.domain),
            scenario.weight,
            None if workspace is None else str(workspace),
            digest,
            None if solutions_viewed is None else tuple(solutions_viewed),
            hints_taken,
        )


Item = Graded | ScenarioResult


def _graded(item: Item) -> Graded:
    # A bare result (no scenario at hand) reports no skills, domain or weight.
    return item if isinstance(item, Graded) else Graded(item)


def utc_now() -> str:
    """The time as reports give it: UTC, whole seconds, `2026-11-28T09:30:00Z`."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _score(points: int, max_points: int) -> float:
    return round(points / max_points, 4) if max_points else 0.0


def scenario_dict(g: Graded) -> dict[str, Any]:
    r = g.result
    return {
        "id": r.scenario,
        "title": r.title,
        "skills": list(g.skills),
        "domain": g.domain,
        "weight": g.weight,
        "workspace": g.workspace,
        "digest": g.digest,
        "backend": r.backend,
        "run_id": r.run_id,
        "passed": r.passed,
        "points": r.points,
        "max_points": r.max_points,
        "score": _score(r.points, r.max_points),
        "hint_penalty": sum(t.hint_penalty for t in r.tasks),
        "solutions_viewed": None if g.solutions_viewed is None else list(g.solutions_viewed),
        "notes": list(r.notes),
        "causes": r.causes,
        "tasks": [
            {
                "id": t.id,
                "title": t.title,
                "passed": t.passed,
                "points": t.points,
                "max_points": t.max_points,
                "hint_penalty": t.hint_penalty,
                "hints_taken": None if g.hints_taken is None else g.hints_taken.get(t.id, 0),
                "checks": [
                    {
                        "type": c.type,
                        "title": c.title,
                        "passed": c.passed,
                        "points": c.points,
                        "max_points": c.max_points,
                        "explanation": c.explanation,
                        "cause": c.cause,
                    }
                    for c in t.checks
                ],
            }
            for t in r.tasks
        ],
    }


def totals(results: Sequence[ScenarioResult]) -> dict[str, Any]:
    tasks = [t for r in results for t in r.tasks]
    checks = [c for t in tasks for c in t.checks]
    points = sum(r.points for r in results)
    max_points = sum(r.max_points for r in results)
    return {
        "scenarios": len(results),
        "scenarios_passed": sum(r.passed for r in results),
        "tasks": len(tasks),
        "tasks_passed": sum(t.passed for t in tasks),
        "checks": len(checks),
        "checks_passed": sum(c.passed for c in checks),
        "points": points,
        "max_points": max_points,
        "score": _score(points, max_points),
        "hint_penalty": sum(t.hint_penalty for t in tasks),
    }


def report_dict(
    items: Sequence[Item], *, learner: str | None = None, graded_at: str | None = None
) -> dict[str, Any]:
    graded = [_graded(i) for i in items]
    results = [g.result for g in graded]
    return {
        "schema": SCHEMA_VERSION,
        "tool": {"name": "cks-lab", "version": __version__},
        "learner": learner,
        "graded_at": graded_at or utc_now(),
        "passed": all(r.passed for r in results),
        "totals": totals(results),
        "scenarios": [scenario_dict(g) for g in graded],
    }


def render_json(
    items: Sequence[Item], *, learner: str | None = None, graded_at: str | None = None
) -> str:
    return json.dumps(report_dict(items, learner=learner, graded_at=graded_at), indent=2) + "\n"
