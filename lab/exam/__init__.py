"""Exam mode: a timed mock exam drawn from the catalog, graded at the end.

The CLI (lab/cli_exam.py) and the TUI call these; nothing here prints or
imports Textual. Errors are LabError. Every `now` parameter is an aware
datetime (default: the clock), so tests never sleep.

Starting and working:
    start_exam(catalog, *, tasks=None, duration=None, seed=None, short=False,
               now=None, progress=no_progress) -> Exam
    current_exam() -> Exam | None           the latest exam (running or submitted)
    load_exam(exam_id) -> Exam
    item_index(exam, "3" | "falco-shell-alert") -> int   (0-based index)
    item_scenario(catalog, exam, index) -> service.Opened (briefing, shell)
    goto(exam, index) -> Exam               also makes it the current workspace
    flag(exam, index, on=True) -> Exam
    replay(catalog, exam, index=None, *, progress) -> Replayed   logs, no grade
    abandon(exam, *, now=None) -> Exam
    parse_duration("1h30m") -> timedelta;  format_duration(timedelta) -> "1h 30m"

Exam (a frozen snapshot of exam.json; the functions above return a new one):
    .id .seed .started_at .duration .deadline .items (ExamItem: index, number,
    scenario, title, domain, weight, tasks, max_points, workspace) .current
    (index) .current_item .flagged (frozenset of indexes) .running .submitted
    .timed_out .submitted_at .task_count .remaining(now) .time_up(now)

Ending:
    submit_if_time_up(catalog, exam, *, now=None, progress) -> ExamResult | None
        (call it before anything else: past the deadline it submits, timed out)
    submit(catalog, exam, *, timed_out=False, now=None, progress) -> ExamResult
    exam_result(exam) -> ExamResult         a submitted exam's scores
    review(catalog, exam) -> ExamReview     scores, explanations, solutions
ExamResult: .items (ItemScore: item, result (ScenarioResult | None), tasks
(TaskScore), error, fraction, percent) .score (Fraction 0..1) .percent .passed
(>= PASS_LINE, 67 %) .timed_out .submitted_at. ExamReview: .result, .items
(ReviewItem: score, scenario, solution text).

Plain-text and JSON views: lab.exam.present. The service's check, hint,
solution and diff refuse during an exam: lab.exam.guard.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# The API is loaded on first use: `check`, `hint` and the others import
# lab.exam.guard on every call, and must not pay for grading and views then.
_WHERE = {
    "lab.exam.grade": (
        "PASS_LINE", "ExamResult", "ExamReview", "ItemScore", "ReviewItem", "TaskScore",
        "exam_result", "review", "submit", "submit_if_time_up",
    ),
    "lab.exam.lifecycle": (
        "Replayed", "abandon", "flag", "goto", "item_index", "item_scenario", "replay",
        "start_exam",
    ),
    "lab.exam.state": (
        "Exam", "ExamItem", "current_exam", "format_duration", "load_exam", "parse_duration",
    ),
}  # fmt: skip
_MODULE = {name: module for module, names in _WHERE.items() for name in names}

if TYPE_CHECKING:
    from lab.exam.grade import (
        PASS_LINE,
        ExamResult,
        ExamReview,
        ItemScore,
        ReviewItem,
        TaskScore,
        exam_result,
        review,
        submit,
        submit_if_time_up,
    )
    from lab.exam.lifecycle import (
        Replayed,
        abandon,
        flag,
        goto,
        item_index,
        item_scenario,
        replay,
        start_exam,
    )
    from lab.exam.state import (
        Exam,
        ExamItem,
        current_exam,
        format_duration,
        load_exam,
        parse_duration,
    )


def __getattr__(name: str) -> Any:
    module = _MODULE.get(name)
    if module is None:
        raise AttributeError(f"module 'lab.exam' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "PASS_LINE",
    "Exam",
    "ExamItem",
    "ExamResult",
    "ExamReview",
    "ItemScore",
    "Replayed",
    "ReviewItem",
    "TaskScore",
    "abandon",
    "current_exam",
    "exam_result",
    "flag",
    "format_duration",
    "goto",
    "item_index",
    "item_scenario",
    "load_exam",
    "parse_duration",
    "replay",
    "review",
    "start_exam",
    "submit",
    "submit_if_time_up",
]
