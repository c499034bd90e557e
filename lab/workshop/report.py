"""A class report: learners' JSON results (`cks-lab grade --json`) read, checked and summed up.

Every result file is read with limits and checked field by field before
anything is computed: a file that is not a grading report (not JSON, another
JSON, a binary, a huge file, a report schema this version does not know) is a
LabError naming the file and the field. The renderers (report_md, report_html)
only format a ClassReport; they never see the raw JSON.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.errors import LabError

# Report schemas this version reads: 1 (cks-lab 0.1) and 2, which adds the learner,
# the grading time and more per check; fields added later in a version are ignored.
SCHEMAS = (1, 2)
MAX_RESULT_BYTES = 8 * 1024 * 1024  # a report of every bundled scenario is ~200 KB
MAX_RESULT_FILES = 5000
# The learner's time, in seconds, for the whole report or per scenario. `cks-lab grade`
# does not record it (yet); a course's own tooling may add it (docs/workshops.md).
TIME_KEYS = ("time_spent_seconds",)
# C0/C1 controls (but tab and newline), lone surrogates and bidi overrides: text from a
# learner's file must not garble a terminal, an XML parser or the reading order.
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")


def clean(text: str) -> str:
    return _UNSAFE.sub("\ufffd", text)


# --- what a report holds --------------------------------------------------------------


@dataclass(frozen=True)
class CheckRow:
    type: str
    title: str
    passed: bool
    points: int
    max_points: int
    explanation: str  # with its cause, as `explanation: cause`


@dataclass(frozen=True)
class TaskRow:
    scenario: str
    scenario_title: str
    id: str
    title: str
    passed: bool
    points: int
    max_points: int
    checks: tuple[CheckRow, ...]


@dataclass
class Learner:
    name: str
    files: list[str] = field(default_factory=list)
    tasks: dict[tuple[str, str], TaskRow] = field(default_factory=dict)
    seconds: float | None = None  # time spent, when the reports say
    # scenario: (graded_at, the file it came from), to settle a scenario graded twice
    graded_at: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    # The class's task set (every task any learner was graded on): a learner's total
    # is over all of it, a missing task counting 0, so one easy scenario does not rank
    # best. Set by class_report; None: over the learner's own tasks.
    class_max: int | None = None
    class_tasks: int | None = None

    @property
    def points(self) -> int:
        return sum(t.points for t in self.tasks.values())

    @property
    def max_points(self) -> int:
        if self.class_max is not None:
            return self.class_max
        return sum(t.max_points for t in self.tasks.values())

    @property
    def task_count(self) -> int:
        """The tasks the total is over (the class's, when set)."""
        return len(self.tasks) if self.class_tasks is None else self.class_tasks

    @property
    def missing(self) -> int:
        """Tasks of the class's set this learner has no result for."""
        return self.task_count - len(self.tasks)

    @property
    def score(self) -> float:
        return self.points / self.max_points if self.max_points else 0.0

    @property
    def passed_tasks(self) -> int:
        return sum(t.passed for t in self.tasks.values())


@dataclass(frozen=True)
class TaskColumn:
    scenario: str
    scenario_title: str
    id: str
    title: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.scenario, self.id)

    @property
    def ref(self) -> str:
        return f"{self.scenario} / {self.id}"


@dataclass(frozen=True)
class TaskStats:
    task: TaskColumn
    graded: int  # learners with a result for it
    passed: int
    mean_points: float
    max_points: int  # of the first result (a scenario's versions could differ)
    mean_score: float  # mean of points / max_points, 0..1

    @property
    def pass_rate(self) -> float:
        return self.passed / self.graded if self.graded else 0.0


@dataclass(frozen=True)
class FailedCheck:
    task: TaskColumn
    title: str
    type: str
    failed: int  # learners whose check failed
    graded: int  # learners graded on the task
    example_learner: str
    example: str  # one learner's explanation


@dataclass(frozen=True)
class ClassReport:
    learners: list[Learner]
    tasks: list[TaskColumn]
    stats: list[TaskStats]
    failed_checks: list[FailedCheck]
    files: int
    tool: str  # the cks-lab that made the report

    @property
    def scenarios(self) -> list[str]:
        return sorted({t.scenario for t in self.tasks})

    @property
    def mean_score(self) -> float:
        scored = [lr.score for lr in self.learners if lr.max_points]
        return sum(scored) / len(scored) if scored else 0.0

    @property
    def timed(self) -> bool:
        """Some result records the learner's time (else the reports leave Time out)."""
        return any(lr.seconds is not None for lr in self.learners)


# --- reading result files ------------------------------------------------------------


def result_files(paths: Iterable[Path]) -> list[Path]:
    """The result files: each file given, and the *.json files directly in each folder."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            inner = sorted(x for x in p.iterdir() if x.suffix == ".json" and not x.is_dir())
            if not inner:
                raise LabError("no *.json result files in this folder", file=str(p))
            found.extend(inner)
        elif p.exists():
            found.append(p)
        else:
            raise LabError("no such file or folder", file=str(p))
    if not found:
        raise LabError("no result files given (cks-lab grade --json FILE writes one)")
    if len(found) > MAX_RESULT_FILES:
        raise LabError(f"{len(found)} result files; at most {MAX_RESULT_FILES} at once")
    unique = list(dict.fromkeys(found))  # a file named twice (a folder and a file in it)
    return unique


def _read_bytes(path: Path) -> bytes:
    try:
        # non-blocking: a FIFO named as a result must not hang the report
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise LabError("is not a regular file", file=str(path))
            if st.st_size > MAX_RESULT_BYTES:
                raise LabError(
                    f"is {st.st_size} bytes; a result file is at most {MAX_RESULT_BYTES}",
                    file=str(path),
                )
            data = fh.read(MAX_RESULT_BYTES + 1)
    except OSError as e:
        raise LabError(f"cannot read it: {e.strerror or e}", file=str(path)) from None
    if len(data) > MAX_RESULT_BYTES:
        raise LabError(f"is larger than {MAX_RESULT_BYTES} bytes", file=str(path))
    return data


def load_result(path: Path) -> dict[str, Any]:
    """The JSON object of a result file, checked as a grading report (schema 1 or 2)."""
    data = _read_bytes(path)
    if b"\x00" in data[:8192]:
        raise LabError(
            "is a binary file, not a JSON result of `cks-lab grade --json`", file=str(path)
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise LabError("not UTF-8 text (a binary file?)", file=str(path), line=line) from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise LabError(
            f"not JSON: {e.msg} (column {e.colno})", file=str(path), line=e.lineno
        ) from None
    except (ValueError, RecursionError) as e:  # a 5000-digit number, nesting 100000 deep
        raise LabError(f"not a JSON result this tool reads: {e}", file=str(path)) from None
    _check_report(obj, str(path))
    if obj["schema"] == 1:  # one shape downstream: schema 2's
        obj["scenarios"] = [{**sc, "id": sc["scenario"]} for sc in obj["scenarios"]]
    return obj  # type: ignore[no-any-return]


class _Checker:
    """Field-by-field checks of a report, each error naming its field path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, item: str, message: str) -> LabError:
        return LabError(message, file=self.source, item=item or None)

    def obj(self, value: Any, item: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(item, f"must be an object, not {_kind(value)}")
        return value

    def get(
        self, o: dict[str, Any], key: str, item: str, kind: str, *, optional: bool = False
    ) -> Any:
        where = f"{item}.{key}" if item else key
        if key not in o:
            if optional:
                return None
            raise self.fail(where, "is missing")
        v = o[key]
        if optional and v is None:
            return None
        ok = {
            "str": isinstance(v, str),
            "bool": isinstance(v, bool),
            "int": isinstance(v, int) and not isinstance(v, bool),
            "number": isinstance(v, int | float) and not isinstance(v, bool) and v == v,
            "list": isinstance(v, list),
        }[kind]
        if not ok:
            raise self.fail(where, f"must be {_KIND_NAMES[kind]}, not {_kind(v)}")
        if kind in ("int", "number") and (v < 0 or v in (float("inf"),)):
            raise self.fail(where, f"must be 0 or more, not {v}")
        return v


_KIND_NAMES = {
    "str": "a string",
    "bool": "true or false",
    "int": "a whole number",
    "number": "a number",
    "list": "a list",
}


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    return {
        bool: "true/false",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(v), type(v).__name__)


def _check_report(obj: Any, source: str) -> None:
    c = _Checker(source)
    if not isinstance(obj, dict) or "schema" not in obj:
        raise LabError(
            'not a result of `cks-lab grade --json` (no "schema" field in a JSON object)',
            file=source,
        )
    schema = obj["schema"]
    if not isinstance(schema, int) or isinstance(schema, bool) or schema not in SCHEMAS:
        known = ", ".join(map(str, SCHEMAS))
        raise c.fail(
            "schema",
            f"report schema {schema!r} is not one this cks-lab reads ({known}); "
            "grade with the same cks-lab version, or upgrade this one",
        )
    c.get(obj, "learner", "", "str", optional=True)
    c.get(obj, "graded_at", "", "str", optional=True)
    for key in TIME_KEYS:
        c.get(obj, key, "", "number", optional=True)
    # schema 1 names a scenario `scenario`, schema 2 `id`
    id_key = "scenario" if schema == 1 else "id"
    for s_i, sc in enumerate(c.get(obj, "scenarios", "", "list")):
        s_item = f"scenarios[{s_i}]"
        c.obj(sc, s_item)
        for key in (id_key, "title"):
            c.get(sc, key, s_item, "str")
        c.get(sc, "graded_at", s_item, "str", optional=True)
        for key in TIME_KEYS:
            c.get(sc, key, s_item, "number", optional=True)
        for t_i, task in enumerate(c.get(sc, "tasks", s_item, "list")):
            t_item = f"{s_item}.tasks[{t_i}]"
            c.obj(task, t_item)
            for key in ("id", "title"):
                c.get(task, key, t_item, "str")
            c.get(task, "passed", t_item, "bool")
            points = c.get(task, "points", t_item, "int")
            most = c.get(task, "max_points", t_item, "int")
            if points > most:
                raise c.fail(f"{t_item}.points", f"{points} is more than max_points {most}")
            for k_i, check in enumerate(c.get(task, "checks", t_item, "list")):
                k_item = f"{t_item}.checks[{k_i}]"
                c.obj(check, k_item)
                for key in ("type", "title", "explanation"):
                    c.get(check, key, k_item, "str")
                c.get(check, "passed", k_item, "bool")
                c.get(check, "points", k_item, "int")
                c.get(check, "max_points", k_item, "int")
                c.get(check, "cause", k_item, "str", optional=True)


def learner_name(obj: dict[str, Any], path: Path) -> str:
    """The report's learner, else the file's name without .json."""
    learner = obj.get("learner")
    name = clean(learner).strip() if isinstance(learner, str) else ""
    return name or clean(path.stem)


def _time_of(obj: dict[str, Any]) -> float | None:
    return next((float(obj[k]) for k in TIME_KEYS if obj.get(k) is not None), None)


def _task_rows(sc: dict[str, Any]) -> list[TaskRow]:
    rows = []
    for t in sc["tasks"]:
        checks = tuple(
            CheckRow(
                type=clean(k["type"]),
                title=clean(k["title"]),
                passed=k["passed"],
                points=k["points"],
                max_points=k["max_points"],
                explanation=clean(
                    f"{k['explanation']}: {k['cause']}" if k.get("cause") else k["explanation"]
                ),
            )
            for k in t["checks"]
        )
        rows.append(
            TaskRow(
                scenario=clean(sc["id"]),
                scenario_title=clean(sc["title"]),
                id=clean(t["id"]),
                title=clean(t["title"]),
                passed=t["passed"],
                points=t["points"],
                max_points=t["max_points"],
                checks=checks,
            )
        )
    return rows


def _add(learner: Learner, obj: dict[str, Any], path: Path) -> None:
    """One report's scenarios into the learner's results; a scenario graded twice
    keeps the later result when both say when they were graded, else it is an error."""
    learner.files.append(str(path))
    report_time = _time_of(obj)
    seconds = 0.0 if report_time is None else report_time
    timed = report_time is not None
    for sc in obj["scenarios"]:
        sid = clean(sc["id"])
        when = sc.get("graded_at") or obj.get("graded_at")
        if sid in learner.graded_at:
            before, other = learner.graded_at[sid]
            if before is None or when is None or before == when:
                raise LabError(
                    f"scenario {sid!r} of learner {learner.name!r} is also in {other}; "
                    "give one result per learner and scenario (or results with graded_at)",
                    file=str(path),
                )
            if when < before:
                continue
            for key in [k for k in learner.tasks if k[0] == sid]:
                del learner.tasks[key]
        learner.graded_at[sid] = (when, str(path))
        for row in _task_rows(sc):
            learner.tasks[(row.scenario, row.id)] = row
        if report_time is None and (t := _time_of(sc)) is not None:
            seconds += t
            timed = True
    if timed:
        learner.seconds = (learner.seconds or 0.0) + seconds


def class_report(paths: Iterable[Path], tool: str = "") -> ClassReport:
    """Read every result (files, or folders of *.json) and sum them up per learner and task."""
    files = result_files(paths)
    loaded = [(path, load_result(path)) for path in files]
    names = _names(loaded)
    learners: dict[str, Learner] = {}
    for path, obj in loaded:
        name = names[path]
        _add(learners.setdefault(name, Learner(name)), obj, path)
    ordered = sorted(learners.values(), key=lambda lr: (lr.name.casefold(), lr.name))
    columns = _columns(ordered)
    stats = [_stats(col, ordered) for col in columns]
    for lr in ordered:
        lr.class_max = sum(st.max_points for st in stats)
        lr.class_tasks = len(columns)
    return ClassReport(
        learners=ordered,
        tasks=columns,
        stats=stats,
        failed_checks=_failed_checks(columns, ordered),
        files=len(files),
        tool=tool,
    )


def _names(loaded: list[tuple[Path, dict[str, Any]]]) -> dict[Path, str]:
    """Each file's learner. A result without `learner` is named after its file; when
    files in different folders share that name (ada/report.json, bob/report.json),
    after its folder instead, so two learners are never merged; when that is still
    ambiguous, it is an error."""
    names = {path: learner_name(obj, path) for path, obj in loaded}
    unnamed = [path for path, obj in loaded if not _has_learner(obj)]
    by_stem: dict[str, list[Path]] = {}
    for path in unnamed:
        by_stem.setdefault(names[path], []).append(path)
    for stem, paths in by_stem.items():
        if len({p.parent.resolve() for p in paths}) < 2:
            continue
        seen: dict[str, Path] = {}
        for path in paths:
            folder = clean(path.resolve().parent.name)
            if folder in seen:
                raise LabError(
                    f"no learner in this result, and {seen[folder]} has no learner either: "
                    f"both are named {stem!r} in a folder {folder!r}, so whose is which? "
                    "grade with `cks-lab grade --learner NAME` (or `learner:` in the manifest)",
                    file=str(path),
                )
            seen[folder] = path
            names[path] = folder
    return names


def _has_learner(obj: dict[str, Any]) -> bool:
    learner = obj.get("learner")
    return isinstance(learner, str) and bool(clean(learner).strip())


def _columns(learners: list[Learner]) -> list[TaskColumn]:
    """Every task graded, by scenario id, then in the order the scenario lists them."""
    seen: dict[tuple[str, str], TaskColumn] = {}
    for lr in learners:
        for key, row in lr.tasks.items():
            seen.setdefault(key, TaskColumn(row.scenario, row.scenario_title, row.id, row.title))
    order = {key: i for i, key in enumerate(seen)}
    return sorted(seen.values(), key=lambda c: (c.scenario, order[c.key]))


def _stats(col: TaskColumn, learners: list[Learner]) -> TaskStats:
    rows = [lr.tasks[col.key] for lr in learners if col.key in lr.tasks]
    n = len(rows)
    return TaskStats(
        task=col,
        graded=n,
        passed=sum(r.passed for r in rows),
        mean_points=sum(r.points for r in rows) / n if n else 0.0,
        max_points=rows[0].max_points if rows else 0,
        mean_score=sum(r.points / r.max_points if r.max_points else 0.0 for r in rows) / n
        if n
        else 0.0,
    )


def _failed_checks(
    columns: list[TaskColumn], learners: list[Learner], limit: int = 10
) -> list[FailedCheck]:
    """The checks failed by the most learners (one example explanation each)."""
    out: list[FailedCheck] = []
    for col in columns:
        graded = [lr for lr in learners if col.key in lr.tasks]
        tally: dict[tuple[str, str], list[tuple[Learner, CheckRow]]] = {}
        for lr in graded:
            for check in lr.tasks[col.key].checks:
                if not check.passed:
                    tally.setdefault((check.type, check.title), []).append((lr, check))
        for (ctype, title), fails in tally.items():
            first_lr, first = fails[0]
            out.append(
                FailedCheck(
                    col, title, ctype, len(fails), len(graded), first_lr.name, first.explanation
                )
            )
    out.sort(key=lambda f: (-f.failed, -f.failed / f.graded, f.task.scenario, f.task.id))
    return out[:limit]


# --- shared by the renderers ------------------------------------------------------------


def duration(seconds: float | None) -> str:
    """`1 h 05 min`, `12 min`, `40 s`; an en dash when unknown."""
    if seconds is None:
        return "\u2013"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    h, m = divmod(round(s / 60), 60)
    return f"{h} h {m:02d} min" if h else f"{m} min"


def tasks_note(lr: Learner) -> str:
    """`, 3 of 5 tasks` when the learner has no result for some of the class's tasks."""
    return f", {len(lr.tasks)} of {lr.task_count} tasks" if lr.missing else ""


def percent(fraction: float) -> str:
    return f"{round(fraction * 100)}%"


def number(x: float) -> str:
    """1 decimal at most: 7.3, 10."""
    return f"{x:.1f}".removesuffix(".0")
