"""Submitting an exam: every item graded with the scenario's own checks, then scored.

Scoring, as on the real exam, counts work done: an untouched workspace scores 0.
The checks themselves give some points to an untouched workspace (a check that
the API server still starts passes before anything is changed), so each task is
graded twice at submit, as the learner left it and untouched, and earns
    credit = (points - untouched points) / (max points - untouched points)
clamped to 0..1 (a passed task: 1). An item's score is its tasks' credit
weighted by their points; the exam's score is the items' scores weighted by the
scenarios' `weight`; 67 % or more passes.

An item is graded only against the scenario the exam drew (its folder's digest,
task ids and points are recorded at start): another folder of the same id, or
an edited one, scores 0 and says so. Submitted after the deadline, an item with
any file under nodes/ changed after it scores 0, as the real exam's terminal
closes at the end.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.errors import LabError
from lab.exam.state import (
    Exam,
    ExamItem,
    StoredResult,
    current_exam,
    format_duration,
    iso,
    load_exam,
    update_exam,
    utc_now,
)
from lab.grading.results import CheckResult, ScenarioResult, TaskResult
from lab.scenarios.digest import folder_digest
from lab.work import Progress, no_progress
from lab.workspace import is_workspace

if TYPE_CHECKING:
    from lab.scenarios.catalog import Catalog
    from lab.scenarios.loader import LoadedScenario

PASS_LINE = Fraction(67, 100)


@dataclass(frozen=True)
class TaskScore:
    id: str
    title: str
    points: int
    max_points: int
    baseline: int  # what the untouched state earns
    passed: bool
    credit: Fraction  # 0..1


@dataclass(frozen=True)
class ItemScore:
    item: ExamItem
    result: ScenarioResult | None  # None: it could not be graded (see error)
    tasks: tuple[TaskScore, ...]
    error: str
    fraction: Fraction  # 0..1: the credit for the item

    @property
    def percent(self) -> float:
        return float(self.fraction * 100)


@dataclass(frozen=True)
class ExamResult:
    exam: Exam
    items: tuple[ItemScore, ...]
    score: Fraction  # 0..1, the items' fractions weighted by their scenarios' weight

    @property
    def percent(self) -> float:
        return float(self.score * 100)

    @property
    def passed(self) -> bool:
        return self.score >= PASS_LINE

    @property
    def timed_out(self) -> bool:
        return self.exam.timed_out

    @property
    def submitted_at(self) -> datetime:
        assert self.exam.submitted_at is not None
        return self.exam.submitted_at


def task_credit(points: int, max_points: int, baseline: int, passed: bool) -> Fraction:
    """The share of a task's work done: 0 untouched (or worse), 1 passed."""
    if passed:
        return Fraction(1)
    room = max_points - baseline
    if room <= 0:
        return Fraction(0)
    return min(Fraction(1), max(Fraction(0), Fraction(points - baseline, room)))


def item_fraction(tasks: tuple[TaskScore, ...]) -> Fraction:
    total = sum(t.max_points for t in tasks)
    if not tasks:
        return Fraction(0)
    if total == 0:
        return sum((t.credit for t in tasks), Fraction(0)) / len(tasks)
    return sum((t.credit * t.max_points for t in tasks), Fraction(0)) / total


def weighted_score(parts: list[tuple[Fraction, int]]) -> Fraction:
    """(fraction, weight) per item -> the exam's score, 0..1."""
    total = sum(w for _, w in parts)
    if total == 0:
        return Fraction(0)
    return sum((f * w for f, w in parts), Fraction(0)) / total


def _result_from(stored: StoredResult) -> ScenarioResult:
    return ScenarioResult(
        scenario=stored.scenario,
        title=stored.title,
        backend=stored.backend,
        run_id=stored.run_id,
        tasks=[
            TaskResult(
                t.id,
                t.title,
                [
                    CheckResult(c.type, c.title, c.passed, c.points, c.max_points,
                                c.explanation, c.cause)
                    for c in t.checks
                ],  # fmt: skip
                t.hint_penalty,
            )
            for t in stored.tasks
        ],
        notes=list(stored.notes),
    )


def _item_score(item: ExamItem, result: ScenarioResult | None, baseline: dict[str, int],
                error: str) -> ItemScore:  # fmt: skip
    if result is None:
        return ItemScore(item, None, (), error, Fraction(0))
    tasks = tuple(
        TaskScore(
            t.id, t.title, t.points, t.max_points, baseline.get(t.id, 0), t.passed,
            task_credit(t.points, t.max_points, baseline.get(t.id, 0), t.passed),
        )
        for t in result.tasks
    )  # fmt: skip
    return ItemScore(item, result, tasks, error, item_fraction(tasks))


def exam_result(exam: Exam) -> ExamResult:
    """The scores of a submitted exam, from what exam.json recorded at submit."""
    outcomes = exam.state.results
    if outcomes is None:
        raise LabError(_not_submitted(exam), item=f"exam {exam.id}")
    items = tuple(
        _item_score(item, _result_from(o.result) if o.result else None, dict(o.baseline),
                    o.error)
        for item, o in zip(exam.items, outcomes, strict=True)
    )  # fmt: skip
    score = weighted_score([(s.fraction, s.item.weight) for s in items])
    return ExamResult(exam, items, score)


def _not_submitted(exam: Exam) -> str:
    if exam.abandoned_at is not None:
        return "this exam was abandoned: it has no results"
    return (
        f"the exam is still running ({format_duration(exam.remaining())} left): "
        "`cks-lab exam submit` ends it"
    )


MAX_LATE_SHOWN = 5


def scenario_change(sc: LoadedScenario, item: ExamItem) -> str:
    """How `sc` differs from the scenario the item was drawn as ("" when it does not)."""
    why = []
    tasks = tuple(t.id for t in sc.model.tasks)
    if tasks != item.tasks:
        why.append(f"its tasks are {', '.join(tasks)} now, not {', '.join(item.tasks)}")
    points = sum(ch.points for t in sc.model.tasks for ch in t.checks)
    if points != item.max_points:
        why.append(f"it is worth {points} points now, not {item.max_points}")
    if item.digest and folder_digest(sc) != item.digest:
        moved = item.folder and item.folder != str(sc.root.resolve())
        drawn = f" (drawn from {item.folder})" if moved else ""
        why.append(f"the files of {sc.root} are not those the exam drew{drawn}")
    return "; ".join(why)


def changed_after(workspace: Path, deadline: datetime) -> list[str]:
    """Everything under the workspace's nodes/ (files, folders, symlinks themselves)
    last changed after the deadline, as paths relative to the workspace."""
    limit = deadline.timestamp()
    late = []
    for folder, dirs, names in os.walk(workspace / "nodes"):  # symlinks are not followed
        for name in [*dirs, *names]:
            path = Path(folder) / name
            try:
                if path.lstat().st_mtime > limit:
                    late.append(path.relative_to(workspace).as_posix())
            except OSError:
                continue  # removed while walking: its folder's time tells
    return sorted(late)


def _late_reason(late: list[str]) -> str:
    shown = ", ".join(late[:MAX_LATE_SHOWN])
    more = f" and {len(late) - MAX_LATE_SHOWN} more" if len(late) > MAX_LATE_SHOWN else ""
    return f"changed after the time was up: {shown}{more}"


def _grade_item(catalog: Catalog, item: ExamItem, deadline: datetime | None) -> dict[str, Any]:
    """`deadline`: when submitted after it, the time the item's files must not be newer than."""
    from lab import service

    try:
        if not is_workspace(item.workspace):
            raise LabError("the item's workspace is gone", file=str(item.workspace))
        sc = service.find_scenario(catalog, item.scenario)
        changed = scenario_change(sc, item)
        if changed:
            raise LabError(f"the scenario changed since the exam started ({changed})")
        late = changed_after(item.workspace, deadline) if deadline is not None else []
        if late:
            raise LabError(_late_reason(late))
        # the very folder checked above, not the catalog's lookup again
        result = service.grade_workspace(catalog, None, item.workspace, scenario_dir=sc.root)
        untouched = service.grade_workspace(catalog, None, None, scenario_dir=sc.root)
    except LabError as e:
        return {"scenario": item.scenario, "result": None, "baseline": {}, "error": str(e)}
    return {
        "scenario": item.scenario,
        "result": result.to_dict(),
        "baseline": {t.id: t.points for t in untouched.tasks},
        "error": "",
    }


def submit(
    catalog: Catalog,
    exam: Exam,
    *,
    timed_out: bool = False,
    now: datetime | None = None,
    progress: Progress = no_progress,
) -> ExamResult:
    """End the exam and grade every item's workspace as it is now.

    An item that cannot be graded (its workspace was removed, its scenario is
    gone) scores 0 and the reason is kept. exam.json is written once, after
    everything is graded: a crash while grading leaves the exam running.
    """
    exam = load_exam(exam.id)  # the file, not a snapshot another process may have outdated
    if not exam.running:
        if exam.submitted_at is not None:
            raise LabError(
                f"exam {exam.id} was already submitted at {iso(exam.submitted_at)}: "
                "`cks-lab exam review` shows the results"
            )
        raise LabError(f"exam {exam.id} was abandoned; start another with `cks-lab exam start`")
    now = utc_now(now)
    late = now > exam.deadline
    timed_out = timed_out or late
    outcomes = []
    for item in exam.items:
        progress(f"grading item {item.number}/{len(exam.items)}: {item.scenario}")
        outcomes.append(_grade_item(catalog, item, exam.deadline if late else None))
    if not load_exam(exam.id).running:  # submitted or abandoned elsewhere while grading
        raise LabError(f"exam {exam.id} ended while it was being graded; nothing was changed")
    done = update_exam(exam, submitted_at=iso(now), timed_out=timed_out, results=outcomes)
    return exam_result(done)


def submit_if_time_up(
    catalog: Catalog,
    exam: Exam,
    *,
    now: datetime | None = None,
    progress: Progress = no_progress,
) -> ExamResult | None:
    """Submit a running exam whose time is up (recorded as a time-out); None otherwise.

    Every exam command calls this first: the workspaces are graded as they are
    when it runs, which is the first moment the lab sees the time is up."""
    if not exam.time_up(now):
        return None
    return submit(catalog, exam, timed_out=True, now=now, progress=progress)


# --- the review: results with explanations, then the reference solutions ----------


@dataclass(frozen=True)
class ReviewItem:
    score: ItemScore
    scenario: LoadedScenario | None  # None when it can no longer be loaded
    solution: str  # the reference solution as text (lab.present.solution_text)


@dataclass(frozen=True)
class ExamReview:
    result: ExamResult
    items: tuple[ReviewItem, ...]


def review(catalog: Catalog, exam: Exam) -> ExamReview:
    """A submitted exam's results, per item, with the scenarios' reference solutions."""
    from lab import service
    from lab.present import solution_text
    from lab.workspace import Workspace

    result = exam_result(exam)
    try:
        running = current_exam()
    except LabError:
        running = None
    # an earlier exam's review must not show the solutions of the one being taken
    hidden = (
        set(running.scenarios)
        if running is not None and running.running and running.id != exam.id
        else set()
    )
    items = []
    for s in result.items:
        if s.item.scenario in hidden:
            assert running is not None
            items.append(ReviewItem(s, None, (
                f"(not shown: scenario {s.item.scenario} is an item of exam {running.id}, which "
                "is running; its solution is shown once that exam is submitted)"
            )))  # fmt: skip
            continue
        try:
            sc = service.find_scenario(catalog, s.item.scenario)
            changed = scenario_change(sc, s.item)
        except LabError as e:
            items.append(ReviewItem(s, None, f"(the scenario cannot be loaded: {e})"))
            continue
        if changed:
            items.append(ReviewItem(s, None, (
                f"(not shown: the scenario changed since the exam started ({changed}); "
                "this is not the solution of the scenario the exam drew)"
            )))  # fmt: skip
            continue
        op = service.Opened(Workspace(s.item.workspace), sc)
        items.append(ReviewItem(s, sc, solution_text(op, list(sc.model.tasks), False)))
    return ExamReview(result, tuple(items))
