"""The learner's progress across runs: every check, time spent, per scenario and skill.

One SQLite file, `data_dir() / "progress.sqlite3"`, shared by the CLI and the TUI
(stdlib sqlite3 only, imported when first needed: the TUI must start fast).

Robustness, because progress is a record of the work and never a condition of it:
- The schema is versioned (PRAGMA user_version) and created on first write; a
  file written by a newer cks-lab is left alone.
- Every write is one transaction: a crash never leaves half a row. A busy
  timeout lets the CLI and the TUI write at the same time.
- A file that is not an SQLite database, or a corrupt one, is moved aside to
  `progress.sqlite3.corrupt-<time>` (never deleted) and a fresh store started.
- No function here raises for a problem with the store (unwritable data dir,
  a folder in the file's place, a corrupt file): writes are skipped, reads
  answer "nothing recorded". Each problem is logged once per process as a
  warning on the `lab.progress` logger (WARNINGS). With no logging configured
  (the CLI) Python prints it on stderr; the TUI adds a handler to show it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from lab.errors import LabError
from lab.paths import data_dir

if TYPE_CHECKING:
    import sqlite3

    from lab.grading.results import ScenarioResult
    from lab.scenarios.summary import ScenarioSummary

STORE_FILE = "progress.sqlite3"
SCHEMA_VERSION = 1
WARNINGS = "lab.progress"  # the logger the store's problems are reported on
BUSY_SECONDS = 10.0  # how long a writer waits for another one (CLI and TUI at once)
MAX_ADD_SECONDS = 3600.0  # one add_time at most: a clock jump or a sleeping laptop

T = TypeVar("T")

# Each entry upgrades the schema from its index to the next version.
_MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE IF NOT EXISTS attempts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            scenario TEXT NOT NULL,
            at TEXT NOT NULL,              -- ISO 8601, UTC
            points INTEGER NOT NULL,
            max_points INTEGER NOT NULL,
            passed INTEGER NOT NULL,       -- 0/1: every task passed
            hint_penalty INTEGER NOT NULL, -- points the hints taken cost
            tasks TEXT NOT NULL,           -- JSON {task id: passed}
            skills TEXT NOT NULL,          -- JSON [skill], the scenario's when checked
            workspace TEXT NOT NULL,
            backend TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS attempts_by_scenario ON attempts (scenario, id)",
        """CREATE TABLE IF NOT EXISTS time_spent (
            scenario TEXT PRIMARY KEY,
            seconds REAL NOT NULL,
            updated TEXT NOT NULL
        )""",
    ),
]
assert len(_MIGRATIONS) == SCHEMA_VERSION


class ProgressError(LabError):
    """A problem with the progress store (reported as a warning, never raised out)."""


# --- what the store answers ------------------------------------------------------


@dataclass(frozen=True)
class ScenarioProgress:
    """One scenario's record. Points are 0 when `attempts` is 0."""

    scenario: str
    attempts: int = 0  # checks run
    best_points: int = 0
    max_points: int = 0  # of the last check (a scenario's points may change between versions)
    last_points: int = 0
    passed: bool = False  # some check passed every task
    last_at: str | None = None  # ISO time of the last check
    seconds: float = 0.0  # time spent on it (as the TUI measures it)
    best_score: float = 0.0  # the best check's fraction of its points, 0..1


@dataclass(frozen=True)
class AttemptRow:
    """One recorded check."""

    id: int  # increases with every check recorded
    scenario: str
    at: str  # ISO 8601, UTC
    points: int
    max_points: int
    passed: bool
    hint_penalty: int
    tasks: dict[str, bool] = field(default_factory=dict)  # task id -> passed
    skills: tuple[str, ...] = ()
    workspace: str = ""
    backend: str = ""


@dataclass(frozen=True)
class SkillSummary:
    """One skill (audit-logging, falco, apparmor…) over the catalog's scenarios."""

    skill: str
    scenarios: int  # in the catalog with this skill
    attempted: int  # checked at least once
    passed: int  # passed at least once
    attempts: int  # checks run
    seconds: float  # time spent
    # mean of the best score (0..1) over the skill's scenarios; one not checked counts 0
    mean_best: float


# --- the public functions: none raises for a problem with the store --------------


def store_path() -> Path:
    return data_dir() / STORE_FILE


def record_check(
    scenario_id: str,
    skills: list[str],
    result: ScenarioResult,
    *,
    workspace: Path,
    backend: str,
    at: str | None = None,
) -> None:
    """Record one `check` (a warning, not an error, when it cannot be recorded)."""
    row = (
        scenario_id,
        _utc_iso(at),
        result.points,
        result.max_points,
        int(result.passed),
        sum(t.hint_penalty for t in result.tasks),
        json.dumps({t.id: t.passed for t in result.tasks}, sort_keys=True),
        json.dumps(list(skills)),
        os.path.abspath(workspace),
        backend,
    )

    def write(conn: sqlite3.Connection) -> None:
        with _transaction(conn):
            conn.execute(
                "INSERT INTO attempts (scenario, at, points, max_points, passed, hint_penalty,"
                " tasks, skills, workspace, backend) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )

    _with_store(write, None, "the check was not recorded in your progress", create=True)


def add_time(scenario_id: str, seconds: float) -> None:
    """Add time spent on a scenario. Nothing for <= 0 (or not a number); one call
    adds at most MAX_ADD_SECONDS, so a clock jump cannot inflate the total."""
    if not math.isfinite(seconds) or seconds <= 0:
        return
    add = min(float(seconds), MAX_ADD_SECONDS)

    def write(conn: sqlite3.Connection) -> None:
        with _transaction(conn):
            conn.execute(
                "INSERT INTO time_spent (scenario, seconds, updated) VALUES (?, ?, ?)"
                " ON CONFLICT (scenario) DO UPDATE"
                " SET seconds = seconds + excluded.seconds, updated = excluded.updated",
                (scenario_id, add, _utc_iso(None)),
            )

    _with_store(write, None, "time spent was not recorded in your progress", create=True)


def time_spent(scenario_id: str) -> float:
    def read(conn: sqlite3.Connection) -> float:
        row = conn.execute(
            "SELECT seconds FROM time_spent WHERE scenario = ?", (scenario_id,)
        ).fetchone()
        return float(row[0]) if row else 0.0

    return _with_store(read, 0.0, "time spent could not be read")


def scenario_progress(ids: Iterable[str]) -> dict[str, ScenarioProgress]:
    """The record of each scenario in `ids` (an empty one for a scenario never seen)."""
    wanted = list(dict.fromkeys(ids))

    def read(conn: sqlite3.Connection) -> dict[str, ScenarioProgress]:
        # Over the whole table, filtered here: no limit on how many ids a query binds.
        seconds = dict(conn.execute("SELECT scenario, seconds FROM time_spent").fetchall())
        out: dict[str, ScenarioProgress] = {}
        for sid, n, best, passed, best_score, last_points, last_max, last_at in conn.execute(
            """SELECT a.scenario, a.n, a.best, a.passed, a.best_score,
                      l.points, l.max_points, l.at
               FROM (SELECT scenario, COUNT(*) AS n, MAX(points) AS best,
                            MAX(passed) AS passed, MAX(id) AS last_id,
                            MAX(CASE WHEN max_points > 0
                                     THEN CAST(points AS REAL) / max_points ELSE 0 END)
                                AS best_score
                     FROM attempts GROUP BY scenario) AS a
               JOIN attempts AS l ON l.id = a.last_id"""
        ):
            out[sid] = ScenarioProgress(
                sid, n, best, last_max, last_points, bool(passed), last_at,
                float(seconds.get(sid, 0.0)), float(best_score),
            )
        return {
            sid: out.get(sid) or ScenarioProgress(sid, seconds=float(seconds.get(sid, 0.0)))
            for sid in wanted
        }

    empty = {sid: ScenarioProgress(sid) for sid in wanted}
    return _with_store(read, empty, "your progress could not be read")


def attempt_history(scenario_id: str | None = None, limit: int = 200) -> list[AttemptRow]:
    """The recorded checks, most recent first (in the order they were recorded)."""

    def read(conn: sqlite3.Connection) -> list[AttemptRow]:
        where, args = ("WHERE scenario = ?", (scenario_id,)) if scenario_id else ("", ())
        rows = conn.execute(
            "SELECT id, scenario, at, points, max_points, passed, hint_penalty, tasks, skills,"
            f" workspace, backend FROM attempts {where} ORDER BY id DESC LIMIT ?",
            (*args, max(0, limit)),
        ).fetchall()
        return [
            AttemptRow(
                r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6],
                {str(k): bool(v) for k, v in _json(r[7], dict).items()},
                tuple(str(s) for s in _json(r[8], list)),
                r[9], r[10],
            )
            for r in rows
        ]

    return _with_store(read, [], "your progress could not be read")


def skill_summary(
    scenarios: list[ScenarioSummary], progress: Mapping[str, ScenarioProgress] | None = None
) -> list[SkillSummary]:
    """Per skill, sorted by name, over `scenarios` (a scenario counts in each of its
    skills). `progress` is scenario_progress() of them, if the caller has it."""
    if progress is None:
        progress = scenario_progress(sc.id for sc in scenarios)
    by_skill: dict[str, list[ScenarioProgress]] = {}
    for sc in scenarios:
        p = progress.get(sc.id) or ScenarioProgress(sc.id)
        for skill in dict.fromkeys(sc.skills):
            by_skill.setdefault(str(skill), []).append(p)
    return [
        SkillSummary(
            skill,
            scenarios=len(ps),
            attempted=sum(p.attempts > 0 for p in ps),
            passed=sum(p.passed for p in ps),
            attempts=sum(p.attempts for p in ps),
            seconds=sum(p.seconds for p in ps),
            mean_best=sum(p.best_score for p in ps) / len(ps),
        )
        for skill, ps in sorted(by_skill.items())
    ]


# --- the store ---------------------------------------------------------------------


_warned: set[str] = set()


def warn(message: str) -> None:
    """Each message once per process (the TUI adds time every few seconds)."""
    if message in _warned:
        return
    _warned.add(message)
    import logging  # only when there is something to say: the CLI does not pay for it

    logging.getLogger(WARNINGS).warning("%s", message)


def _with_store(fn: Callable[[sqlite3.Connection], T], failed: T, what: str, *,
                create: bool = False) -> T:
    """fn(connection), or `failed` and a warning when the store cannot be used.

    A corrupt store is moved aside and fn tried once more on a fresh one. Without
    `create` a missing store is not made: reading it answers `failed` quietly.
    """
    import sqlite3

    path = store_path()
    for first_try in (True, False):
        if not create and not os.path.lexists(path):
            return failed
        try:
            with _connect(path) as conn:
                return fn(conn)
        except sqlite3.DatabaseError as e:
            if first_try and _is_corrupt(e):
                try:
                    moved = _move_aside(path)
                except OSError as err:
                    warn(f"{what}: {path} is not a usable database ({e}) and cannot be moved "
                          f"aside ({err.strerror or err}); move it away yourself")
                    return failed
                warn(f"{path} was not a usable database ({e}); it was moved aside to "
                      f"{moved.name} and your progress starts afresh")
                continue
            warn(f"{what}: {path}: {e}{_advice(e)}")
            return failed
        except (OSError, LabError) as e:
            warn(f"{what}: {e}")
            return failed
    return failed


def _advice(e: Exception) -> str:
    name = str(getattr(e, "sqlite_errorname", ""))
    if name.startswith(("SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_PERM")):
        return " (can cks-lab write to its data dir? CKS_LAB_HOME moves it)"
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return f" (another cks-lab held it for more than {BUSY_SECONDS:.0f} s)"
    return ""


def _is_corrupt(e: Exception) -> bool:
    name = str(getattr(e, "sqlite_errorname", ""))
    return name == "SQLITE_NOTADB" or name.startswith("SQLITE_CORRUPT")


@contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    import sqlite3

    path.parent.mkdir(parents=True, exist_ok=True)
    # Autocommit mode: every write opens its own transaction (_transaction), so
    # no statement ever runs in a transaction left open by another.
    conn = sqlite3.connect(path, timeout=BUSY_SECONDS, isolation_level=None)
    try:
        _ensure_schema(conn, path)
        yield conn
    finally:
        conn.close()


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """All of it or nothing. IMMEDIATE takes the write lock first (waiting out the
    busy timeout for another writer), so it never fails halfway on an upgrade."""
    with conn:  # commits, or rolls back on any exception
        conn.execute("BEGIN IMMEDIATE")
        yield


def _ensure_schema(conn: sqlite3.Connection, path: Path) -> None:
    version = _version(conn)  # reads the header: a file that is not a database fails here
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise ProgressError(
            f"was written by a newer cks-lab (schema {version}; this one knows "
            f"{SCHEMA_VERSION}); it is left as it is",
            file=str(path),
        )
    with _transaction(conn):
        version = _version(conn)  # another process may have upgraded it meanwhile
        for steps in _MIGRATIONS[version:]:
            for sql in steps:
                conn.execute(sql)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _move_aside(path: Path) -> Path:
    """Rename the store (and any journal of it, which must not meet a new store)
    to `<name>.corrupt-<time>`; nothing is deleted."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    dest = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while os.path.lexists(dest):
        n += 1
        dest = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    os.replace(path, dest)
    for suffix in ("-journal", "-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if os.path.lexists(side):
            os.replace(side, dest.with_name(dest.name + suffix))
    return dest


# --- small helpers -------------------------------------------------------------------


def _utc_iso(at: str | None) -> str:
    """`at` (ISO 8601; no offset means UTC) as UTC, so times compare as text."""
    if at is None:
        return datetime.now(UTC).isoformat(timespec="seconds")
    t = datetime.fromisoformat(at)
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).isoformat(timespec="seconds")


def _json(text: Any, kind: type[T]) -> T:
    """A JSON column's value, or an empty one if it was not what it should be."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return kind()
    return value if isinstance(value, kind) else kind()
