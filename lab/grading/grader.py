"""Grade a scenario: run each task's checks against the evidence."""

from __future__ import annotations

from collections.abc import Mapping

from lab.evidence import Evidence, FalcoEvidence
from lab.grading.checks import Context, parse_params
from lab.grading.results import CheckResult, ScenarioResult, TaskResult
from lab.scenarios.model import Scenario


def grade(
    scenario: Scenario, evidence: Evidence, hint_penalties: Mapping[str, int] | None = None
) -> ScenarioResult:
    ctx = Context(scenario, evidence)
    penalties = hint_penalties or {}
    tasks = []
    for task in scenario.tasks:
        results = []
        for check in task.checks:
            ctype, params = parse_params(check)
            outcome = ctype.run(params, ctx)
            results.append(
                CheckResult(
                    type=check.type,
                    title=ctype.title(params),
                    passed=outcome.passed,
                    points=check.points if outcome.passed else 0,
                    max_points=check.points,
                    explanation=outcome.explanation,
                    cause=outcome.cause,
                )
            )
        tasks.append(TaskResult(task.id, task.title, results, penalties.get(task.id, 0)))
    notes = list(evidence.audit.apiserver.notes) if evidence.audit else []
    notes += falco_notes(evidence.falco)
    return ScenarioResult(
        scenario.id,
        scenario.title,
        evidence.backend,
        evidence.run_id,
        tasks,
        list(dict.fromkeys(notes)),
    )


def falco_notes(ev: FalcoEvidence | None) -> list[str]:
    """What Falco on each node noted at start-up (and after a package upgrade restarted
    it): text instead of JSON alerts, rules files skipped, falco.yaml keys ignored, a
    file output it could not write."""
    if ev is None:
        return []
    falcos = [*ev.nodes.values(), *(u.falco for u in ev.upgrades.values())]
    return [f"Falco on node {f.node}: {note}" for f in falcos for note in f.notes]
