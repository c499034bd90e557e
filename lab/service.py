"""What the lab does, as functions: the CLI and the TUI both call these.

No printing here; results and errors (LabError) go back to the caller.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lab.backends.base import Backend, Progress, no_progress
from lab.backends.sim import SimBackend
from lab.errors import LabError
from lab.fsutil import atomic_write_json
from lab.grading.grader import grade
from lab.grading.results import ScenarioResult
from lab.grading.validate import validate_checks
from lab.paths import data_dir
from lab.scenarios.catalog import Catalog
from lab.scenarios.loader import LoadedScenario, ScenarioError, load_scenario
from lab.scenarios.model import Hint, Task
from lab.workspace import (
    Workspace,
    create_workspace,
    is_workspace,
    now_iso,
    open_workspace,
    seed,
)

BACKENDS = ("sim",)


def backend_for(name: str = "sim") -> Backend:
    if name != "sim":
        raise LabError(f"unknown backend {name!r} (available: {', '.join(BACKENDS)})")
    return SimBackend()


# --- where workspaces live -----------------------------------------------------


def default_workspace(scenario_id: str) -> Path:
    return data_dir() / "workspaces" / scenario_id


def _current_file() -> Path:
    return data_dir() / "current.json"


def set_current(ws: Workspace) -> None:
    atomic_write_json(_current_file(), {"workspace": str(ws.root.resolve())})


def current_workspace() -> Path:
    try:
        return Path(json.loads(_current_file().read_text())["workspace"])
    except (OSError, ValueError, KeyError, TypeError):
        raise LabError(
            "no scenario started yet; run `cks-lab list` then `cks-lab start ID`"
        ) from None


# --- scenario lifecycle ---------------------------------------------------------


def validated(sc: LoadedScenario) -> LoadedScenario:
    """The scenario, once its checks and references are known to be sound."""
    errors = validate_checks(sc)
    if errors:
        raise ScenarioError(errors)
    return sc


def find_scenario(catalog: Catalog, ref: str) -> LoadedScenario:
    """A scenario by id, or by the path of its folder (an author's own)."""
    folder = Path(ref)
    if (folder / "scenario.yaml").is_file():
        return validated(load_scenario(folder))
    return validated(catalog.get(ref))


@dataclass
class Opened:
    ws: Workspace
    sc: LoadedScenario


def start(
    catalog: Catalog,
    scenario_id: str,
    workspace: Path | None = None,
    *,
    fresh: bool = False,
    backend: str = "sim",
    progress: Progress = no_progress,
) -> tuple[Opened, bool]:
    """Start (or resume) a scenario; returns the workspace and whether it was created."""
    sc = find_scenario(catalog, scenario_id)
    root = workspace or default_workspace(sc.id)
    if is_workspace(root):
        ws = open_workspace(root)
        if ws.scenario_id != sc.id:
            raise LabError(
                f"this workspace belongs to scenario {ws.scenario_id!r}, not {sc.id!r}",
                file=str(root),
            )
        if fresh:
            reset(Opened(ws, sc), progress)
        set_current(ws)
        return Opened(ws, sc), False
    ws = create_workspace(root, sc, backend)
    backend_for(backend).prepare(sc, ws, progress)
    set_current(ws)
    return Opened(ws, sc), True


def open_scenario(catalog: Catalog, workspace: Path | None = None) -> Opened:
    """The workspace given (or the current one) and its scenario."""
    ws = open_workspace(workspace or current_workspace())
    state = ws.state()
    folder = Path(str(state.get("scenario_dir", "")))
    try:
        sc = load_scenario(folder) if folder.is_dir() else catalog.get(ws.scenario_id)
    except ScenarioError:
        sc = catalog.get(ws.scenario_id)
    if sc.id != ws.scenario_id:
        sc = catalog.get(ws.scenario_id)
    return Opened(ws, validated(sc))


def hint_penalties(op: Opened) -> dict[str, int]:
    taken = op.ws.state().get("hints", {})
    out: dict[str, int] = {}
    for task in op.sc.model.tasks:
        n = int(taken.get(task.id, 0))
        out[task.id] = sum(h.penalty for h in task.hints[:n])
    return out


def check(op: Opened, progress: Progress = no_progress) -> ScenarioResult:
    """Run the attack again against the learner's work, grade it, record the attempt."""
    backend = backend_for(str(op.ws.state().get("backend", "sim")))
    evidence = backend.run_attack(op.sc, op.ws, progress)
    result = grade(op.sc.model, evidence, hint_penalties(op))
    state = op.ws.state()
    attempts = list(state.get("attempts", []))
    attempts.append(
        {
            "at": now_iso(),
            "points": result.points,
            "max_points": result.max_points,
            "passed": result.passed,
            "tasks": {t.id: t.passed for t in result.tasks},
        }
    )
    op.ws.update_state(attempts=attempts[-100:])
    return result


def _task(op: Opened, task_id: str | None) -> Task:
    tasks = op.sc.model.tasks
    if task_id is None:
        last = (op.ws.state().get("attempts") or [{}])[-1].get("tasks", {})
        return next((t for t in tasks if not last.get(t.id, False)), tasks[0])
    for t in tasks:
        if t.id == task_id:
            return t
    raise LabError(f"no task {task_id!r} (tasks: {', '.join(t.id for t in tasks)})")


@dataclass
class HintTaken:
    task: Task
    number: int  # 1-based
    hint: Hint
    remaining: int
    new: bool  # False when every hint was already shown (the last is repeated)


def peek_hint(op: Opened, task_id: str | None = None) -> HintTaken:
    """The hint `take_hint` would show, without taking it (to say what it costs)."""
    task = _task(op, task_id)
    if not task.hints:
        raise LabError(f"task {task.id!r} has no hints")
    n = int(op.ws.state().get("hints", {}).get(task.id, 0))
    new = n < len(task.hints)
    number = n + 1 if new else n
    return HintTaken(task, number, task.hints[number - 1], len(task.hints) - number, new)


def take_hint(op: Opened, task_id: str | None = None) -> HintTaken:
    h = peek_hint(op, task_id)
    if h.new:
        hints = dict(op.ws.state().get("hints", {}))
        hints[h.task.id] = h.number
        op.ws.update_state(hints=hints)
    return h


@dataclass
class Status:
    scenario: LoadedScenario
    workspace: Path
    attempts: list[dict[str, object]]
    hints: dict[str, int]  # hints taken per task
    penalties: dict[str, int]
    solutions_viewed: list[str]


def status(op: Opened) -> Status:
    state = op.ws.state()
    return Status(
        op.sc,
        op.ws.root,
        list(state.get("attempts", [])),
        {k: int(v) for k, v in state.get("hints", {}).items()},
        hint_penalties(op),
        list(state.get("solutions_viewed", [])),
    )


def show_solution(op: Opened, task_id: str | None = None, *, apply: bool = False) -> list[Task]:
    """The tasks whose solutions are shown; with apply, their files are written (after a backup)."""
    tasks = [_task(op, task_id)] if task_id else list(op.sc.model.tasks)
    viewed = set(op.ws.state().get("solutions_viewed", []))
    viewed.update(t.id for t in tasks)
    op.ws.update_state(solutions_viewed=sorted(viewed))
    if apply:
        op.ws.backup("before-solution")
        for t in tasks:
            for f in t.solution.files:
                op.ws.write_node_file(op.sc, f)
    return tasks


def reset(op: Opened, progress: Progress = no_progress) -> Path | None:
    """Back up the learner's node trees, then restore the scenario's starting state."""
    backup = op.ws.backup("before-reset")
    backend_for(str(op.ws.state().get("backend", "sim"))).prepare(op.sc, op.ws, progress)
    return backup


# --- headless grading, validation, self-test ------------------------------------


@contextmanager
def _scratch_copy(src: Path | None, sc: LoadedScenario) -> Iterator[Workspace]:
    """A throwaway workspace: the scenario's seed with src's nodes laid over it."""
    with tempfile.TemporaryDirectory(prefix="cks-lab-grade-") as tmp:
        ws = create_workspace(Path(tmp) / "ws", sc, "sim")
        if src is not None:
            nodes = src / "nodes"
            if not nodes.is_dir():
                raise LabError(
                    "not a workspace: no nodes/ folder (expected nodes/<node>/... as "
                    "`cks-lab start` creates)",
                    file=str(src),
                )
            # The submission is laid over the scenario's seed: a course repo may
            # commit only the files the learner changed.
            shutil.copytree(nodes, ws.root / "nodes", symlinks=True, dirs_exist_ok=True)
        yield ws


def grade_workspace(catalog: Catalog, scenario_id: str, workspace: Path | None) -> ScenarioResult:
    """Grade a workspace (or a submission folder with nodes/) without changing it.

    With no workspace the scenario is graded in its untouched state.
    """
    sc = find_scenario(catalog, scenario_id)
    penalties: dict[str, int] = {}
    if workspace is not None and is_workspace(workspace):
        op = Opened(open_workspace(workspace), sc)
        if op.ws.scenario_id != sc.id:
            raise LabError(
                f"workspace belongs to scenario {op.ws.scenario_id!r}, not {sc.id!r}",
                file=str(workspace),
            )
        penalties = hint_penalties(op)  # hints taken in that workspace still cost
    with _scratch_copy(workspace, sc) as ws:
        evidence = SimBackend().run_attack(sc, ws)
        return grade(sc.model, evidence, penalties)


def validate_folder(folder: Path) -> tuple[LoadedScenario | None, list[LabError]]:
    try:
        sc = load_scenario(folder)
    except ScenarioError as e:
        return None, e.errors
    return sc, validate_checks(sc)


@dataclass
class SelfTest:
    scenario: str
    untouched: ScenarioResult
    solved: ScenarioResult

    @property
    def problems(self) -> list[str]:
        out = []
        for t in self.untouched.tasks:
            if t.passed:
                out.append(f"task {t.id!r} passes in the untouched state (every check passed)")
        for t in self.solved.tasks:
            for c in t.checks:
                if not c.passed:
                    out.append(
                        f"task {t.id!r}: the reference solution fails {c.title!r}: {c.explanation}"
                    )
        return out

    @property
    def ok(self) -> bool:
        return not self.problems


def self_test(sc: LoadedScenario) -> SelfTest:
    """The untouched state must fail every task; the reference solution must pass all."""
    validated(sc)
    backend = SimBackend()
    with tempfile.TemporaryDirectory(prefix="cks-lab-selftest-") as tmp:
        ws = create_workspace(Path(tmp) / "untouched", sc, "sim")
        untouched = grade(sc.model, backend.run_attack(sc, ws))
        ws2 = create_workspace(Path(tmp) / "solved", sc, "sim")
        seed(ws2, sc)
        for task in sc.model.tasks:
            for f in task.solution.files:
                ws2.write_node_file(sc, f)
        solved = grade(sc.model, backend.run_attack(sc, ws2))
    return SelfTest(sc.id, untouched, solved)
