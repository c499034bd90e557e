"""No grader, hints or solutions while an exam runs (the real exam has none).

lab.service calls `refuse_during_exam` from check, hint, solution and diff. It
refuses them in an exam's workspace until the exam is submitted or abandoned,
and for the running exam's scenarios in any other workspace too (the same
scenario's solution in a practice workspace is the exam's solution).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lab.errors import LabError
from lab.exam.state import (
    STATE_FILE,
    WS_KEY,
    Exam,
    current_exam,
    exam_root,
    format_duration,
    load_exam,
)

if TYPE_CHECKING:
    from lab.service import Opened

_WHY = {
    "check": "the real exam has no grader: your work is graded when you submit",
    "hint": "the real exam has no hints",
    "solution": "the solutions are shown in the review, after you submit",
    "diff": "it compares your files with the solution's, which the review shows after you submit",
}


def _workspace_exam(op: Opened) -> Exam | None:
    exam_id = op.ws.state().get(WS_KEY)
    if not isinstance(exam_id, str):
        return None
    try:
        root = exam_root(exam_id)
    except LabError:
        return None  # not an id this lab writes: not an exam workspace
    if not (root / STATE_FILE).exists():
        return None  # the exam was deleted: its workspace is an ordinary one now
    return load_exam(exam_id)  # corrupt: the located error, rather than guessing


def refuse_during_exam(op: Opened, what: str) -> None:
    """A LabError when `cks-lab <what>` must wait for the end of the running exam."""
    exam = _workspace_exam(op)
    mine = exam is not None
    if exam is None:
        try:
            exam = current_exam()
        except LabError:
            return  # a broken exam file never blocks practice outside the exam
        if exam is None or op.sc.id not in exam.scenarios:
            return
    if not exam.running:
        return
    where = (
        "this workspace is an item of exam"
        if mine
        else f"scenario {op.sc.id} is an item of the running exam"
    )
    time = (
        "its time is up: any `cks-lab exam` command grades it now"
        if exam.time_up()
        else f"{format_duration(exam.remaining())} left"
    )
    more = (
        "; `cks-lab exam replay` runs the cluster again so the logs are written"
        if what == "check"
        else ""
    )
    raise LabError(
        f"`cks-lab {what}` is not available during the exam ({_WHY.get(what, 'exam rules')}): "
        f"{where} {exam.id} ({time}). `cks-lab exam submit` ends it; then "
        f"`cks-lab exam review` shows every check's explanation and the solutions{more}"
    )
