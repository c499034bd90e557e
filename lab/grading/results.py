"""Grading results: per check, per task, per scenario."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class CheckResult:
    type: str
    title: str  # what was checked, in a learner's words
    passed: bool
    points: int  # points earned (0 when failed)
    max_points: int
    explanation: str  # why it passed or failed, something a learner can act on
    cause: str | None = None  # a root cause shared with other checks (shown once)

    @property
    def full_explanation(self) -> str:
        return f"{self.explanation}: {self.cause}" if self.cause else self.explanation


@dataclass(frozen=True)
class TaskResult:
    id: str
    title: str
    checks: list[CheckResult]
    hint_penalty: int = 0

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def max_points(self) -> int:
        return sum(c.max_points for c in self.checks)

    @property
    def points(self) -> int:
        return max(0, sum(c.points for c in self.checks) - self.hint_penalty)


@dataclass(frozen=True)
class ScenarioResult:
    scenario: str
    title: str
    backend: str
    run_id: str
    tasks: list[TaskResult]
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(t.passed for t in self.tasks)

    @property
    def causes(self) -> list[str]:
        """The distinct root causes of failed checks, in order."""
        seen: dict[str, None] = {}
        for t in self.tasks:
            for c in t.checks:
                if c.cause and not c.passed:
                    seen.setdefault(c.cause)
        return list(seen)

    @property
    def points(self) -> int:
        return sum(t.points for t in self.tasks)

    @property
    def max_points(self) -> int:
        return sum(t.max_points for t in self.tasks)

    @property
    def score(self) -> float:
        """Fraction of the points earned, 0..1."""
        return self.points / self.max_points if self.max_points else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "title": self.title,
            "backend": self.backend,
            "run_id": self.run_id,
            "passed": self.passed,
            "points": self.points,
            "max_points": self.max_points,
            "score": round(self.score, 4),
            "notes": list(self.notes),
            "tasks": [
                {
                    "id": t.id,
                    "title": t.title,
                    "passed": t.passed,
                    "points": t.points,
                    "max_points": t.max_points,
                    "hint_penalty": t.hint_penalty,
                    "checks": [asdict(c) for c in t.checks],
                }
                for t in self.tasks
            ],
        }
