"""Starting an exam and moving through it: items, flags, replays, abandoning."""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from lab.errors import LabError
from lab.exam.draw import Candidate, draw
from lab.exam.state import (
    FORMAT,
    WS_KEY,
    Exam,
    ExamItem,
    current_exam,
    exams_dir,
    iso,
    new_exam_id,
    save_state,
    set_current_exam,
    update_exam,
    utc_now,
)
from lab.scenarios.digest import folder_digest
from lab.work import Progress, no_progress
from lab.workspace import Workspace, is_workspace

if TYPE_CHECKING:
    from lab.scenarios.catalog import Catalog
    from lab.service import Opened

FULL_TASKS = 17  # the real exam has 15 to 20
SHORT_TASKS = 5
FULL_DURATION = timedelta(hours=2)
SHORT_DURATION = timedelta(minutes=30)
MAX_TASKS = 100


def _pool(catalog: Catalog, progress: Progress) -> list[Candidate]:
    """Every catalog scenario an exam can hold; a broken one is skipped (and said)."""
    from lab import service

    good, bad = catalog.scan()
    for err in bad:
        progress(f"warning: skipped a broken scenario: {err}")
    pool = []
    for sc in good:
        try:
            service.find_scenario(catalog, sc.id)  # as `start` will find it, checks validated
            folder_digest(sc)  # recorded at start: a folder it cannot be taken of is no item
        except LabError as e:
            progress(f"warning: skipped scenario {sc.id}: {e}")
            continue
        m = sc.model
        pool.append(Candidate(m.id, str(m.domain), m.weight, len(m.tasks)))
    return pool


def start_exam(
    catalog: Catalog,
    *,
    tasks: int | None = None,
    duration: timedelta | None = None,
    seed: int | None = None,
    short: bool = False,
    now: datetime | None = None,
    progress: Progress = no_progress,
) -> Exam:
    """Draw an exam, create a workspace per item, start the clock.

    Defaults: 17 tasks and 2 hours; `short`: 5 tasks and 30 minutes. A random
    seed is chosen when none is given (it is recorded: the review names it).
    Refused while another exam runs (submit or abandon it first).
    """
    from lab import service

    now = utc_now(now).replace(microsecond=0)
    running = current_exam()
    if running is not None and running.running:
        raise LabError(
            f"exam {running.id} is still running: `cks-lab exam submit` or "
            "`cks-lab exam abandon` first"
        )
    wanted = tasks if tasks is not None else (SHORT_TASKS if short else FULL_TASKS)
    if not 1 <= wanted <= MAX_TASKS:
        raise LabError(f"an exam has 1 to {MAX_TASKS} tasks, not {wanted}")
    length = duration if duration is not None else (SHORT_DURATION if short else FULL_DURATION)
    if length < timedelta(minutes=1):
        raise LabError("an exam lasts at least a minute")
    if seed is None:
        seed = random.SystemRandom().randrange(1_000_000)
    pool = _pool(catalog, progress)
    if not pool:
        raise LabError("no scenario to draw an exam from (`cks-lab list` shows the catalog)")
    drawn = draw(pool, wanted, seed)

    exam_id = new_exam_id(now)
    root = exams_dir() / exam_id
    root.mkdir(parents=True)
    try:
        previous = service.current_workspace()
    except LabError:
        previous = None
    items = []
    try:
        for i, c in enumerate(drawn, 1):
            progress(f"preparing item {i}/{len(drawn)}: {c.id}")
            op, _ = service.start(catalog, c.id, root / c.id, progress=progress)
            op.ws.update_state(**{WS_KEY: exam_id})
            m = op.sc.model
            items.append(
                {
                    "scenario": m.id,
                    "title": m.title,
                    "domain": str(m.domain),
                    "weight": m.weight,
                    "tasks": [t.id for t in m.tasks],
                    "max_points": sum(ch.points for t in m.tasks for ch in t.checks),
                    "workspace": str(op.ws.root.resolve()),
                    "folder": str(op.sc.root.resolve()),
                    "digest": folder_digest(op.sc),
                }
            )
        exam = save_state(
            root,
            {
                "format": FORMAT,
                "id": exam_id,
                "seed": seed,
                "short": short,
                "requested_tasks": wanted,
                "started_at": iso(now),
                "duration_seconds": int(length.total_seconds()),
                "deadline": iso(now + length),
                "items": items,
                "current": items[0]["scenario"],
                "flagged": [],
                "submitted_at": None,
                "timed_out": False,
                "abandoned_at": None,
                "results": None,
            },
        )
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        if previous is not None and is_workspace(previous):
            service.set_current(Workspace(previous))  # not a folder just removed
        raise
    set_current_exam(exam_id)
    service.set_current(Workspace(exam.items[0].workspace))
    return exam


def _running(exam: Exam) -> None:
    if exam.submitted_at is not None:
        how = " when the time ran out" if exam.timed_out else ""
        raise LabError(
            f"exam {exam.id} is over (submitted{how}): `cks-lab exam review` shows the results"
        )
    if exam.abandoned_at is not None:
        raise LabError(f"exam {exam.id} was abandoned; start another with `cks-lab exam start`")


def _index(exam: Exam, index: int) -> int:
    if not 0 <= index < len(exam.items):
        raise LabError(f"no item {index + 1}: the exam has items 1 to {len(exam.items)}")
    return index


def item_index(exam: Exam, ref: str) -> int:
    """An item by its number (1-based, as shown) or its scenario id -> its index."""
    ref = ref.strip()
    if ref.isascii() and ref.isdigit():
        return _index(exam, int(ref) - 1)
    for item in exam.items:
        if item.scenario == ref:
            return item.index
    known = ", ".join(f"{it.number} {it.scenario}" for it in exam.items)
    raise LabError(f"no item {ref!r} in this exam (items: {known})")


def goto(exam: Exam, index: int) -> Exam:
    """Make an item the current one; `cks-lab shell`, `node exec` and the other
    workspace commands then work on its workspace."""
    from lab import service

    _running(exam)
    item = exam.items[_index(exam, index)]
    if not is_workspace(item.workspace):
        raise LabError(
            f"item {item.number}'s workspace is gone; `cks-lab exam abandon` and start "
            "another exam",
            file=str(item.workspace),
        )
    done = update_exam(exam, current=item.scenario)
    service.set_current(Workspace(item.workspace))
    return done


def flag(exam: Exam, index: int, on: bool = True) -> Exam:
    """Flag an item for later (or clear the flag)."""
    _running(exam)
    item = exam.items[_index(exam, index)]
    flagged = [it.scenario for it in exam.items if it.index in exam.flagged]
    if on and item.scenario not in flagged:
        flagged.append(item.scenario)
    elif not on and item.scenario in flagged:
        flagged.remove(item.scenario)
    order = {it.scenario: it.index for it in exam.items}
    return update_exam(exam, flagged=sorted(flagged, key=order.__getitem__))


def abandon(exam: Exam, *, now: datetime | None = None) -> Exam:
    """Stop a running exam without grading it; its workspaces stay where they are."""
    from lab.exam.state import current_exam_id

    _running(exam)
    done = update_exam(exam, abandoned_at=iso(utc_now(now)))
    if current_exam_id() == exam.id:
        set_current_exam(None)
    return done


def item_scenario(catalog: Catalog, exam: Exam, index: int) -> Opened:
    """An item's workspace and scenario (for its briefing, a shell on its nodes)."""
    from lab import service

    return service.open_scenario(catalog, exam.items[_index(exam, index)].workspace)


@dataclass(frozen=True)
class Replayed:
    item: ExamItem
    logs: list[Path]  # the log files the control plane and Falco wrote


def replay(
    catalog: Catalog, exam: Exam, index: int | None = None, *, progress: Progress = no_progress
) -> Replayed:
    """Run an item's cluster again, as `cks-lab check` does, but grade nothing.

    On the real exam the cluster runs all along: the API server writes its
    audit log, Falco its alerts. In the lab they are written when the attack is
    replayed; `check` is refused during the exam (it grades), so this writes the
    logs without telling how the work scores.
    """
    from lab import service

    _running(exam)
    i = exam.current if index is None else _index(exam, index)
    op = item_scenario(catalog, exam, i)
    op.ws.guard()  # nothing is written through a symlinked node root or .lab folder
    service.workspace_backend(op.ws).run_attack(
        op.sc, op.ws, progress
    )
    logs = op.ws.lab_dir / "logs"
    found = sorted(p for p in logs.iterdir() if p.is_file()) if logs.is_dir() else []
    return Replayed(exam.items[i], found)
