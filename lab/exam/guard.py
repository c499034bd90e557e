"""No grader, hints or solutions while an exam runs (the real exam has none).

lab.service calls `refuse_during_exam` from check, hint, solution and diff. It
refuses them in an exam's workspace until the exam is submitted or abandoned,
and for the running exam's scenarios in any other workspace too (the same
scenario's solution in a practice workspace is the exam's solution).
`cks-lab grade` calls `refuse_grading_during_exam` for each scenario it grades.

`refuse_after_deadline` (from `cks-lab shell` and `node exec`) ends an exam
item's work once the time is up, as the real exam closes its terminal: the
exam is submitted (timed out) and the command refused.
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
    iso,
    load_exam,
)

if TYPE_CHECKING:
    from datetime import datetime

    from lab.scenarios.catalog import Catalog
    from lab.service import Opened
    from lab.workspace import Workspace

_WHY = {
    "check": "the real exam has no grader: your work is graded when you submit",
    "hint": "the real exam has no hints",
    "solution": "the solutions are shown in the review, after you submit",
    "diff": "it compares your files with the solution's, which the review shows after you submit",
    "grade": "the real exam has no grader: your work is graded when you submit",
}


def workspace_exam(ws: Workspace) -> Exam | None:
    """The exam a workspace is an item of (None: an ordinary workspace)."""
    exam_id = ws.state().get(WS_KEY)
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
    exam = workspace_exam(op.ws)
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
    raise _refusal(exam, what, where)


def _refusal(exam: Exam, what: str, where: str) -> LabError:
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
    return LabError(
        f"`cks-lab {what}` is not available during the exam ({_WHY.get(what, 'exam rules')}): "
        f"{where} {exam.id} ({time}). `cks-lab exam submit` ends it; then "
        f"`cks-lab exam review` shows every check's explanation and the solutions{more}"
    )


def refuse_grading_during_exam(scenario_id: str) -> None:
    """A LabError when `cks-lab grade` would grade one of the running exam's scenarios
    (any workspace or folder of it: the grader's report tells what the exam's would)."""
    try:
        exam = current_exam()
    except LabError:
        return  # a broken exam file never blocks grading outside the exam
    if exam is None or not exam.running or scenario_id not in exam.scenarios:
        return
    raise _refusal(exam, "grade", f"scenario {scenario_id} is an item of the running exam")


def exam_catalog(exam: Exam) -> Catalog:
    """The scenario folders the exam drew first, then the default catalog (for a
    command that has no catalog of its own; submit still checks each digest)."""
    from pathlib import Path

    from lab.scenarios.catalog import Catalog

    drawn = [Path(it.folder) for it in exam.items if it.folder]
    return Catalog([*drawn, *Catalog.default().roots])


def refuse_after_deadline(
    ws: Workspace, what: str, catalog: Catalog | None = None, now: datetime | None = None
) -> None:
    """In an item's workspace of an exam whose time is up: submit the exam (timed
    out: the work is graded as it is now, what changed after the deadline scores
    0) and raise a LabError saying so. Nothing otherwise."""
    exam = workspace_exam(ws)
    if exam is None or not exam.time_up(now):
        return
    from lab.exam.grade import submit

    how = "it was submitted now"
    try:
        submit(catalog or exam_catalog(exam), exam, timed_out=True, now=now)
    except LabError as e:  # submitted elsewhere meanwhile, say; the time is up all the same
        how = f"it could not be submitted here ({e})"
    raise LabError(
        f"`cks-lab {what}` is refused: the time of exam {exam.id} is up (it ended at "
        f"{iso(exam.deadline)}), as the real exam closes its terminal; {how}. "
        "`cks-lab exam review` shows the results",
        file=str(ws.root),
    )
