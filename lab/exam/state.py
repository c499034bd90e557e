"""An exam on disk: exam.json (checked when read, written atomically) and which exam runs.

Layout, under the lab's data dir:
    exams/current.json                 {"exam": ID}: the latest exam started (not abandoned)
    exams/<ID>/exam.json               the drawn items, the clock, flags, the results
    exams/<ID>/<scenario-id>/          each item's workspace (lab/workspace.py)
The deadline is wall-clock time, so a crash or a quit resumes with the time that
is left, as on the real exam where the clock keeps running.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from lab.errors import LabError
from lab.fsutil import atomic_write_json, read_bytes_nofollow
from lab.paths import data_dir
from lab.schema import Loc, Meta, SchemaError, load, record
from lab.timefmt import duration

FORMAT = 1
STATE_FILE = "exam.json"
MAX_STATE_BYTES = 4 * 1024 * 1024
EXAM_ID_RE = r"[0-9]{8}-[0-9]{6}(-[0-9]+)?"
WS_KEY = "exam"  # in an item workspace's .lab/state.json: the exam it belongs to


# --- exam.json's shape (the on-disk format, checked when it is read) ------------


@record(extra="other")
class ItemState:
    """One drawn scenario: what it was worth when it was drawn, and where it is worked on."""

    scenario: str
    title: str
    domain: str
    weight: Annotated[int, Meta(ge=1)]
    tasks: Annotated[list[str], Meta(min_items=1)]  # its task ids
    max_points: Annotated[int, Meta(ge=0)]
    workspace: str
    # the scenario folder drawn and lab.scenarios.digest.folder_digest of it: at submit
    # an item is graded only against that same scenario ("": an exam from before these)
    folder: str = ""
    digest: str = ""
    other: dict[str, Any]


@record(extra="other")
class StoredCheck:
    type: str
    title: str
    passed: bool
    points: int
    max_points: int
    explanation: str
    cause: str | None = None
    other: dict[str, Any]


@record(extra="other")
class StoredTask:
    id: str
    title: str
    checks: list[StoredCheck]
    hint_penalty: int = 0
    other: dict[str, Any]  # passed, points, max_points: derived, recomputed when read


@record(extra="other")
class StoredResult:
    """A ScenarioResult as ScenarioResult.to_dict() writes it."""

    scenario: str
    title: str
    backend: str
    run_id: str
    tasks: list[StoredTask]
    notes: list[str] = field(default_factory=list)
    other: dict[str, Any]


@record(extra="other")
class ItemOutcome:
    """How one item was graded at submit."""

    scenario: str
    result: StoredResult | None = None  # None when it could not be graded
    # task id -> the points the scenario's untouched state earns: only work done counts
    baseline: dict[str, Annotated[int, Meta(ge=0)]] = field(default_factory=dict)
    error: str = ""  # why it could not be graded
    other: dict[str, Any]


@record(extra="other")
class ExamState:
    """exams/<ID>/exam.json. Unknown keys are kept (a newer cks-lab may add some)."""

    format: int
    id: Annotated[str, Meta(pattern=EXAM_ID_RE)]
    seed: int
    short: bool = False
    requested_tasks: Annotated[int, Meta(ge=1)]
    started_at: str
    duration_seconds: Annotated[int, Meta(ge=60)]
    deadline: str
    items: Annotated[list[ItemState], Meta(min_items=1)]
    current: str  # the scenario id of the item being worked on
    flagged: list[str] = field(default_factory=list)  # scenario ids
    submitted_at: str | None = None
    timed_out: bool = False
    abandoned_at: str | None = None
    results: list[ItemOutcome] | None = None
    other: dict[str, Any]

    def _problems(self) -> list[tuple[Loc, str]]:
        out: list[tuple[Loc, str]] = []
        ids = [it.scenario for it in self.items]
        for i, sid in enumerate(ids):
            if sid in ids[:i]:
                out.append((("items", i, "scenario"), f"scenario {sid!r} is drawn twice"))
        if self.current not in ids:
            out.append((("current",), f"{self.current!r} is not one of the exam's scenarios"))
        for i, sid in enumerate(self.flagged):
            if sid not in ids:
                out.append((("flagged", i), f"{sid!r} is not one of the exam's scenarios"))
        for key in ("started_at", "deadline", "submitted_at", "abandoned_at"):
            value = getattr(self, key)
            if value is not None and parse_time(value) is None:
                out.append(((key,), f"{value!r} is not a time with a zone (ISO 8601)"))
        if self.results is not None:
            if self.submitted_at is None:
                out.append((("results",), "results without submitted_at"))
            if [r.scenario for r in self.results] != ids:
                out.append((("results",), "must hold one result per item, in the items' order"))
        elif self.submitted_at is not None:
            out.append((("submitted_at",), "submitted, but no results"))
        return out


def parse_time(text: str) -> datetime | None:
    """An ISO 8601 time with a zone, in UTC; None when it is not one."""
    try:
        t = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return t.astimezone(UTC) if t.tzinfo is not None else None


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="seconds")


def utc_now(now: datetime | None = None) -> datetime:
    """`now` (tests pass a fixed one; a naive time is taken as UTC) or the clock."""
    if now is None:
        return datetime.now(UTC)
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


# --- durations ---------------------------------------------------------------------

MIN_DURATION = timedelta(minutes=1)
MAX_DURATION = timedelta(hours=24)
_DURATION = re.compile(r"(?:([0-9]+)h)?(?:([0-9]+)m)?")


def parse_duration(text: str) -> timedelta:
    """`120m`, `2h`, `1h30m`, or a bare number of minutes (`90`)."""
    s = text.strip().lower().replace(" ", "")
    m = _DURATION.fullmatch(s) if len(s) <= 16 else None
    if s.isascii() and s.isdigit() and len(s) <= 16:
        minutes = int(s)
    elif m is None or not (m.group(1) or m.group(2)):
        raise LabError(
            f"bad duration {text!r}: give minutes (90, 120m) or hours and minutes (2h, 1h30m)"
        )
    else:
        if m.group(1) and m.group(2) and int(m.group(2)) >= 60:
            raise LabError(
                f"bad duration {text!r}: with hours, the minutes go from 0 to 59 "
                f"(like 2h30m); or give minutes alone ({int(m.group(1)) * 60 + int(m.group(2))}m)"
            )
        minutes = int(m.group(1) or 0) * 60 + int(m.group(2) or 0)
    if not MIN_DURATION.total_seconds() <= minutes * 60 <= MAX_DURATION.total_seconds():
        raise LabError(f"bad duration {text!r}: an exam lasts from 1 minute to 24 hours")
    return timedelta(minutes=minutes)


def format_duration(d: timedelta) -> str:
    """2h 05m, 12m, 40s (lab.timefmt); 0s when none is left."""
    return duration(d.total_seconds())


# --- the exam, as callers see it ---------------------------------------------------


@dataclass(frozen=True)
class ExamItem:
    index: int  # 0-based; `number` is what people see
    scenario: str
    title: str
    domain: str
    weight: int
    tasks: tuple[str, ...]
    max_points: int
    workspace: Path
    folder: str = ""  # see ItemState
    digest: str = ""

    @property
    def number(self) -> int:
        return self.index + 1


@dataclass(frozen=True)
class Exam:
    """A snapshot of exam.json; the functions that change an exam return a new one."""

    id: str
    root: Path  # exams/<ID>
    seed: int
    short: bool
    requested_tasks: int
    started_at: datetime
    duration: timedelta
    deadline: datetime
    items: tuple[ExamItem, ...]
    current: int  # index of the item being worked on
    flagged: frozenset[int]  # indexes
    submitted_at: datetime | None
    timed_out: bool
    abandoned_at: datetime | None
    state: ExamState  # the record it was read from (results live there)

    @property
    def running(self) -> bool:
        """Neither submitted nor abandoned (its time may be up: see time_up)."""
        return self.submitted_at is None and self.abandoned_at is None

    @property
    def submitted(self) -> bool:
        return self.submitted_at is not None

    @property
    def task_count(self) -> int:
        return sum(len(it.tasks) for it in self.items)

    @property
    def current_item(self) -> ExamItem:
        return self.items[self.current]

    @property
    def scenarios(self) -> tuple[str, ...]:
        return tuple(it.scenario for it in self.items)

    def remaining(self, now: datetime | None = None) -> timedelta:
        """Time left until the deadline (never negative; zero once submitted)."""
        if not self.running:
            return timedelta(0)
        return max(timedelta(0), self.deadline - utc_now(now))

    def time_up(self, now: datetime | None = None) -> bool:
        """Running, and past the deadline: the next exam command submits it."""
        return self.running and utc_now(now) >= self.deadline


def exams_dir() -> Path:
    return data_dir() / "exams"


def _pointer() -> Path:
    return exams_dir() / "current.json"


def exam_root(exam_id: str) -> Path:
    if not re.fullmatch(EXAM_ID_RE, exam_id):
        raise LabError(f"{exam_id!r} is not an exam id (like 20261128-101500)")
    return exams_dir() / exam_id


def _as_exam(st: ExamState, root: Path) -> Exam:
    ids = [it.scenario for it in st.items]
    items = tuple(
        ExamItem(i, it.scenario, it.title, it.domain, it.weight, tuple(it.tasks),
                 it.max_points, Path(it.workspace), it.folder, it.digest)
        for i, it in enumerate(st.items)
    )  # fmt: skip
    started, deadline = parse_time(st.started_at), parse_time(st.deadline)
    assert started is not None and deadline is not None  # checked by ExamState._problems
    return Exam(
        id=st.id,
        root=root,
        seed=st.seed,
        short=st.short,
        requested_tasks=st.requested_tasks,
        started_at=started,
        duration=timedelta(seconds=st.duration_seconds),
        deadline=deadline,
        items=items,
        current=ids.index(st.current),
        flagged=frozenset(ids.index(s) for s in st.flagged),
        submitted_at=parse_time(st.submitted_at) if st.submitted_at else None,
        timed_out=st.timed_out,
        abandoned_at=parse_time(st.abandoned_at) if st.abandoned_at else None,
        state=st,
    )


def check_exam_state(data: Any, source: str) -> ExamState:
    """The data as an ExamState, or a LabError naming the first bad field."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise LabError("exam state has an unknown format", file=source)
    try:
        return load(ExamState, data)
    except SchemaError as e:
        raise LabError(f"exam state is corrupt: {e.first()}", file=source) from None


def read_state(root: Path) -> dict[str, Any]:
    path = root / STATE_FILE
    try:
        data = json.loads(read_bytes_nofollow(path, MAX_STATE_BYTES))
    except FileNotFoundError:
        raise LabError("no such exam (its exam.json is missing)", file=str(path)) from None
    except (OSError, ValueError) as e:
        raise LabError(f"exam state is unreadable: {e}", file=str(path)) from None
    check_exam_state(data, str(path))
    return data


def load_exam(exam_id: str) -> Exam:
    root = exam_root(exam_id)
    data = read_state(root)
    return _as_exam(check_exam_state(data, str(root / STATE_FILE)), root)


def save_state(root: Path, data: dict[str, Any]) -> Exam:
    """Write exam.json whole (never a state that could not be read back)."""
    st = check_exam_state(data, str(root / STATE_FILE))
    atomic_write_json(root / STATE_FILE, data)
    return _as_exam(st, root)


def update_exam(exam: Exam, **changes: Any) -> Exam:
    """Re-read exam.json (another process, the TUI or the CLI, may have changed
    it), apply the changes, write it back."""
    data = read_state(exam.root)
    data.update(changes)
    return save_state(exam.root, data)


def current_exam_id() -> str | None:
    """The exam current.json names; None when there is none (or it names no exam)."""
    try:
        data = json.loads(_pointer().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise LabError(f"unreadable: {e}", file=str(_pointer())) from None
    exam_id = data.get("exam") if isinstance(data, dict) else None
    if not isinstance(exam_id, str) or not re.fullmatch(EXAM_ID_RE, exam_id):
        raise LabError('must be {"exam": ID}; delete it to forget the exam', file=str(_pointer()))
    return exam_id


def current_exam() -> Exam | None:
    """The latest exam started and not abandoned (running or submitted), or None.

    A corrupt exam.json is a LabError naming the file and the field."""
    exam_id = current_exam_id()
    if exam_id is None or not (exams_dir() / exam_id / STATE_FILE).exists():
        return None
    return load_exam(exam_id)


def set_current_exam(exam_id: str | None) -> None:
    if exam_id is None:
        _pointer().unlink(missing_ok=True)
    else:
        atomic_write_json(_pointer(), {"exam": exam_id})


def new_exam_id(now: datetime) -> str:
    base = utc_now(now).strftime("%Y%m%d-%H%M%S")
    n, exam_id = 1, base
    while (exams_dir() / exam_id).exists():
        n += 1
        exam_id = f"{base}-{n}"
    return exam_id
