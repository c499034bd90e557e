"""What the lab does, as functions: the CLI and the TUI both call these.

No printing here; results and errors (LabError) go back to the caller.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lab import progress as progress_store
from lab import service_kind
from lab.errors import LabError
from lab.fsutil import atomic_write_json
from lab.grading.results import ScenarioResult
from lab.paths import data_dir
from lab.progress import AttemptRow, ScenarioProgress, SkillSummary
from lab.safecopy import SUBMISSION, copy_tree
from lab.scenarios import SCENARIO_FILE
from lab.scenarios.catalog import Catalog
from lab.scenarios.summary import ScenarioSummary
from lab.work import Progress, no_progress
from lab.workspace import (
    Workspace,
    check_node_roots,
    create_workspace,
    is_workspace,
    now_iso,
    open_workspace,
)

if TYPE_CHECKING:
    from lab.backends.base import Backend
    from lab.backends.sim.apparmor_cmds import ExecResult
    from lab.changes import Change
    from lab.learner_diff import FileDiff
    from lab.scenarios.loader import LoadedScenario, ScenarioError
    from lab.scenarios.model import Hint, Task
    from lab.shell import ShellCommand

# kind's side of the service (lab/service_kind.py), called from here by the CLI and TUI
backup_dir = service_kind.backup_dir
kind_backend = service_kind.kind_backend
kind_nodes = service_kind.kind_nodes
on_cluster = service_kind.on_cluster
require_on_cluster = service_kind.require_on_cluster
scenario_backend = service_kind.scenario_backend

BACKENDS = ("sim", "kind")
DEFAULT_CLUSTER = "cks-lab"


def backend_for(name: str = "sim", cluster: str | None = None) -> Backend:
    """A backend by name; the kind backend talks to the lab cluster `cluster`."""
    if name == "kind":
        from lab.backends.kind import KindBackend  # docker and kubernetes load only here
        from lab.kind.cluster import cluster_handle

        return KindBackend(cluster_handle(cluster or DEFAULT_CLUSTER))
    if name != "sim":
        raise LabError(f"unknown backend {name!r} (available: {', '.join(BACKENDS)})")
    from lab.backends.sim import SimBackend  # the engines load when a backend is used

    return SimBackend()


def workspace_backend(ws: Workspace) -> Backend:
    """The backend a workspace was started on (and, for kind, its cluster)."""
    state = ws.state()
    cluster = state.get("cluster")
    return backend_for(str(state.get("backend", "sim")), str(cluster) if cluster else None)


# --- where workspaces live -----------------------------------------------------


def default_workspace(scenario_id: str, backend: str = "sim", cluster: str | None = None) -> Path:
    if backend == "kind":  # one per cluster: its nodes hold the learner's files, not the folder
        return data_dir() / "workspaces-kind" / (cluster or DEFAULT_CLUSTER) / scenario_id
    return data_dir() / "workspaces" / scenario_id


def _current_file() -> Path:
    return data_dir() / "current.json"


def set_current(ws: Workspace) -> None:
    atomic_write_json(_current_file(), {"workspace": str(ws.root.resolve())})


def current_workspace() -> Path:
    """CKS_LAB_WORKSPACE (the lab's node shell sets it), else the last started one."""
    env = os.environ.get("CKS_LAB_WORKSPACE")
    if env:
        return Path(env)
    try:
        return Path(json.loads(_current_file().read_text())["workspace"])
    except (OSError, ValueError, KeyError, TypeError):
        raise LabError(
            "no scenario started yet; run `cks-lab list` then `cks-lab start ID`"
        ) from None


# --- scenario lifecycle ---------------------------------------------------------


def validated(sc: LoadedScenario) -> LoadedScenario:
    """The scenario, once its checks and references are known to be sound."""
    from lab.grading.validate import validate_checks
    from lab.scenarios.loader import ScenarioError

    errors = validate_checks(sc)
    if errors:
        raise ScenarioError(errors)
    return sc


def find_scenario(catalog: Catalog, scenario_id: str) -> LoadedScenario:
    """A scenario by id, from the catalog only (never from a folder of that name
    in the current directory: a learner's repo could hold one with easy checks)."""
    if looks_like_path(scenario_id):
        raise LabError(
            f"{scenario_id!r} is a path, not a scenario id; give an author's scenario "
            "folder as --scenario-dir"
        )
    return validated(catalog.get(scenario_id))


def looks_like_path(ref: str) -> bool:
    """A scenario reference is a folder path when it has a "/" (`./my-scenario`)."""
    return "/" in ref or (os.altsep is not None and os.altsep in ref)


def scenario_folder(folder: Path) -> LoadedScenario:
    """An author's scenario folder, given explicitly."""
    from lab.scenarios.loader import load_scenario

    if not (folder / SCENARIO_FILE).is_file():
        raise LabError(f"not a scenario folder: no {SCENARIO_FILE} in it", file=str(folder))
    return validated(load_scenario(folder))


def scenario_by_ref(catalog: Catalog, ref: str) -> LoadedScenario:
    """For start and scenario test: a catalog id, or a folder path when `ref` has a
    "/" (`./my-scenario`, `/abs/path`). A bare name is always a catalog id, even
    when a folder of that name is in the current directory."""
    if looks_like_path(ref):
        return scenario_folder(Path(ref))
    return find_scenario(catalog, ref)


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
    cluster: str | None = None,
    progress: Progress = no_progress,
) -> tuple[Opened, bool]:
    """Start (or resume) a scenario; returns the workspace and whether it was created.

    `scenario_id` is a catalog id, or an author's folder when it has a "/".
    On the kind backend the cluster holds one scenario at a time: resuming a
    scenario that another one has replaced on the cluster prepares it again.
    """
    sc = scenario_by_ref(catalog, scenario_id)
    root = workspace or default_workspace(sc.id, backend, cluster)
    if is_workspace(root):
        ws = open_workspace(root)
        if ws.scenario_id != sc.id:
            raise LabError(
                f"this workspace belongs to scenario {ws.scenario_id!r}, not {sc.id!r}",
                file=str(root),
            )
        used = str(ws.state().get("backend", "sim"))
        if used != backend:
            raise LabError(
                f"this workspace runs on the {used} backend, not {backend}; "
                "give another --workspace to start it there",
                file=str(root),
            )
        if fresh or not ws.state().get("prepared", True) or not on_cluster(ws):
            # also finishes an interrupted start or reset; kind: the learner's files come back
            reset(Opened(ws, sc), progress, restore=not fresh)
        set_current(ws)
        return Opened(ws, sc), False
    ws = create_workspace(root, sc, backend)
    if backend == "kind":
        ws.update_state(cluster=cluster or DEFAULT_CLUSTER)
    workspace_backend(ws).prepare(sc, ws, progress)
    ws.update_state(prepared=True)
    set_current(ws)
    return Opened(ws, sc), True


def open_scenario(catalog: Catalog, workspace: Path | None = None) -> Opened:
    """The workspace given (or the current one) and its scenario."""
    from lab.scenarios.loader import load_scenario

    ws = open_workspace(workspace or current_workspace())
    state = ws.state()
    recorded = str(state.get("scenario_dir") or "")
    if recorded and Path(recorded).is_dir():
        # The folder the workspace was started from: its own errors are the
        # author's to see, never hidden behind a catalog scenario of the same id.
        sc = load_scenario(Path(recorded))
        if sc.id != ws.scenario_id:
            raise LabError(
                f"the scenario folder now holds {sc.id!r}, not {ws.scenario_id!r}", file=recorded
            )
    else:
        sc = catalog.get(ws.scenario_id)  # moved or reinstalled: find it by id
    return Opened(ws, validated(sc))


def scenario_and_workspace(
    catalog: Catalog, scenario_id: str
) -> tuple[LoadedScenario, Opened | None]:
    """A catalog scenario and its workspace once started (the TUI's view): the default
    one, or the current one when it was started elsewhere (`start -w`), as the catalog says."""
    sc = find_scenario(catalog, scenario_id)
    root = default_workspace(sc.id)
    if not is_workspace(root):
        found = _current_by_scenario().get(sc.id)
        if found is None:
            return sc, None
        root = found
    return sc, open_scenario(catalog, root)


@dataclass(frozen=True)
class BackendInfo:
    name: str
    available: bool
    detail: str  # why not, when it is not available


def backend_status() -> list[BackendInfo]:
    """Which backends this lab can use here. For kind that is what `cks-lab up` last
    recorded of the lab cluster (cheap: no docker or kind call at start-up);
    `cks-lab status --cluster` asks the cluster itself."""
    from lab.kind.cluster_state import cluster_handle, read_state  # no PyYAML at start-up

    state = read_state(cluster_handle(DEFAULT_CLUSTER))
    phase = state.get("phase")
    if phase == "ready":
        kind = BackendInfo("kind", True, f"cluster {DEFAULT_CLUSTER} (made by `cks-lab up`)")
    elif phase == "creating":
        kind = BackendInfo("kind", False, "`cks-lab up` is making the cluster, or was stopped")
    elif phase == "created":
        kind = BackendInfo("kind", False, "the cluster's nodes were not Ready: `cks-lab up` "
                           "checks again")  # fmt: skip
    else:
        kind = BackendInfo("kind", False, "no lab cluster: run `cks-lab doctor`, then `cks-lab up`")
    return [BackendInfo("sim", True, "embedded: nodes are folders, attacks are replayed"), kind]


def _refuse_during_exam(op: Opened, what: str) -> None:
    """No grader, hints or solutions while an exam runs (lab/exam/guard.py)."""
    from lab.exam.guard import refuse_during_exam

    refuse_during_exam(op, what)


def hint_penalties(op: Opened) -> dict[str, int]:
    taken = op.ws.state().get("hints", {})
    out: dict[str, int] = {}
    for task in op.sc.model.tasks:
        n = int(taken.get(task.id, 0))
        out[task.id] = sum(h.penalty for h in task.hints[:n])
    return out


def check(op: Opened, progress: Progress = no_progress) -> ScenarioResult:
    """Run the attack again against the learner's work, grade it, record the attempt."""
    _refuse_during_exam(op, "check")
    op.ws.guard()  # nothing is written through a symlinked node root or .lab folder
    if not op.ws.state().get("prepared", True):
        raise LabError(
            "this workspace was never fully prepared (a start or reset was interrupted), so "
            "grading it would blame you for missing files; run `cks-lab reset` to finish it "
            "(your files are backed up first)",
            file=str(op.ws.root),
        )
    require_on_cluster(op, "check it")
    backend = workspace_backend(op.ws)
    evidence = backend.run_attack(op.sc, op.ws, progress)
    from lab.grading.grader import grade

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
            "checks": {t.id: {c.title: c.passed for c in t.checks} for t in result.tasks},
        }
    )
    op.ws.update_state(attempts=attempts[-100:])
    _record_progress(op, result, str(state.get("backend", "sim")))
    return result


def _record_progress(op: Opened, result: ScenarioResult, backend: str) -> None:
    """Progress is a record of the work, never a condition of grading: record_check
    turns a store problem into a warning (lab.progress), and so is anything else."""
    try:
        progress_store.record_check(
            op.sc.id, list(op.sc.model.skills), result, workspace=op.ws.root, backend=backend
        )
    except Exception as e:
        progress_store.warn(
            f"the check was not recorded in your progress ({type(e).__name__}: {e}; this is a bug)"
        )


def unfinished_task(op: Opened) -> Task | None:
    """The first task the last check did not pass (the first task before any
    check); None when the last check passed every task."""
    attempts = op.ws.state().get("attempts") or []
    last = attempts[-1].get("tasks", {}) if attempts else {}
    return next((t for t in op.sc.model.tasks if not last.get(t.id, False)), None)


def _task(op: Opened, task_id: str | None) -> Task:
    tasks = op.sc.model.tasks
    if task_id is None:
        return unfinished_task(op) or tasks[0]
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
    _refuse_during_exam(op, "hint")  # take_hint too: it peeks first
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
    _refuse_during_exam(op, "solution")
    tasks = [_task(op, task_id)] if task_id else list(op.sc.model.tasks)
    viewed = set(op.ws.state().get("solutions_viewed", []))
    viewed.update(t.id for t in tasks)
    op.ws.update_state(solutions_viewed=sorted(viewed))
    if apply:
        kind = kind_backend(op.ws)
        if kind is None:
            op.ws.backup("before-solution")
        else:  # the learner's files are on the nodes: save them from there
            require_on_cluster(op, "apply the solution")
            kind.save_files(op.sc, "before-solution")
        _write_solutions(op.ws, op.sc, tasks)
    return tasks


def _write_solutions(ws: Workspace, sc: LoadedScenario, tasks: list[Task]) -> None:
    from lab.scenarios.effects import command_words

    kind = kind_backend(ws)
    for t in tasks:
        for f in t.solution.files:
            if kind is not None:
                kind.write_node_file(sc, f)  # onto the node, where the learner works on kind
            else:
                ws.write_node_file(sc, f)
    for t in tasks:
        for c in t.solution.node_exec:
            res = node_exec(Opened(ws, sc), c.node, command_words(c.command))
            if res.code:
                raise LabError(
                    f"the solution's command `{c.command}` on node {c.node} failed "
                    f"(exit {res.code}): {res.stderr.strip()}",
                    item=f"tasks.{t.id}.solution.node_exec",
                )


def node_exec(op: Opened, node: str, argv: list[str]) -> ExecResult:
    """`cks-lab node exec NODE -- COMMAND` (apparmor_parser, aa-status) on a sim node."""
    op.ws.guard()
    kind = kind_backend(op.ws)
    if kind is not None:
        from lab.exam.guard import refuse_after_deadline

        refuse_after_deadline(op.ws, "node exec")
        require_on_cluster(op, "run a command on its nodes")
        return kind.node_exec(op.sc, node, argv)  # type: ignore[return-value]
    from lab.nodeexec import node_exec as run  # the AppArmor engine, only when needed

    return run(op.ws, op.sc, node, argv)


# --- a shell on a node, your files against the solution, what changed -----------


def shell_command(
    op: Opened, node: str | None = None, *, base_env: Mapping[str, str] | None = None
) -> ShellCommand:
    """`cks-lab shell [NODE]`: the shell to run in the node's folder (sim backend).
    Run it with lab.shell.run, or show its `display` line."""
    from lab.shell import shell_command as build

    return build(op, node, base_env=base_env)


def last_check_passed(op: Opened, task_id: str | None = None) -> bool:
    """Whether the last check passed the task (every task when None); False before any."""
    attempts = op.ws.state().get("attempts") or []
    if not attempts:
        return False
    if task_id is None:
        return bool(attempts[-1].get("passed"))
    return bool(attempts[-1].get("tasks", {}).get(_task(op, task_id).id))


def learner_diff(op: Opened, task_id: str | None = None) -> list[FileDiff]:
    """The learner's files against those the reference solution writes (the
    task's, or every task's). Counts as viewing the solution of those tasks."""
    from lab.learner_diff import learner_diff as compare

    _refuse_during_exam(op, "diff")
    if kind_backend(op.ws) is not None:
        raise LabError(
            "cks-lab diff compares the sim backend's node folders; on kind your files are on "
            "the nodes: `cks-lab solution` shows the reference to compare with"
        )
    tasks = [_task(op, task_id)] if task_id else list(op.sc.model.tasks)
    op.ws.guard()
    roots = {n.name: op.ws.node_root(n.name) for n in op.sc.model.cluster.nodes}
    diffs = compare(roots, op.sc, tasks)
    viewed = set(op.ws.state().get("solutions_viewed", []))
    viewed.update(t for d in diffs for t in d.tasks)  # a task with no files showed nothing
    op.ws.update_state(solutions_viewed=sorted(viewed))
    return diffs


def check_changes(op: Opened) -> tuple[list[Change], int | None]:
    """What the last check changed since the one before: the checks whose verdict
    flipped (in task order) and the points gained (negative: lost); ([], None)
    when there are not two checks yet."""
    from lab.changes import changes, points_delta

    attempts = op.ws.state().get("attempts") or []
    if len(attempts) < 2:
        return [], None
    previous, last = attempts[-2], attempts[-1]
    order = {t.id: i for i, t in enumerate(op.sc.model.tasks)}
    found = sorted(changes(previous, last), key=lambda c: order.get(c.task, len(order)))
    return found, points_delta(previous, last)


def reset(op: Opened, progress: Progress = no_progress, *, restore: bool = False) -> Path | None:
    """Back up the learner's node trees, then restore the scenario's starting state.
    On kind the backup is the snapshot of the nodes' files prepare() made; `restore`
    (start() going back to a scenario another one replaced) puts it back."""
    kind = kind_backend(op.ws)
    # on kind the files are on the nodes: prepare() saves them (backup_dir) itself
    backup = op.ws.backup("before-reset") if kind is None else None
    op.ws.update_state(prepared=False)
    workspace_backend(op.ws).prepare(op.sc, op.ws, progress)
    op.ws.update_state(prepared=True, last_reset=now_iso())
    if kind is not None:
        return kind.after_reset(op.sc, op.ws, restore=restore, progress=progress)
    return backup


# --- progress: where the learner stands (the catalog's status, the results) ------


@dataclass
class CatalogEntry:
    scenario: ScenarioSummary  # what a catalog line shows (opening it loads the scenario)
    status: str  # "new" | "in progress" | "passed" | "failed"
    progress: ScenarioProgress
    workspace: Path | None  # its workspace, once started (the default one, or the current)


def scenario_summaries(catalog: Catalog) -> tuple[list[ScenarioSummary], list[ScenarioError]]:
    """The catalog's scenarios as summaries, through the cache in the data dir."""
    from lab import __version__

    return catalog.summaries(data_dir() / "cache" / "catalog.json", __version__)


def catalog_entries(catalog: Catalog) -> tuple[list[CatalogEntry], list[LabError]]:
    """Every scenario and where the learner stands on it, and the broken scenarios' errors.

    passed: some recorded check passed; failed: checked but never passed; in
    progress: started (a workspace exists) or time spent, but not checked; new.
    """
    good, bad = scenario_summaries(catalog)
    records = progress_store.scenario_progress(sc.id for sc in good)
    current = _current_by_scenario()
    entries = []
    for sc in good:
        p = records[sc.id]
        root = default_workspace(sc.id)
        ws = root if is_workspace(root) else current.get(sc.id)
        if p.passed:
            status = "passed"
        elif p.attempts:
            status = "failed"
        elif ws is not None or p.seconds > 0:
            status = "in progress"
        else:
            status = "new"
        entries.append(CatalogEntry(sc, status, p, ws))
    return entries, list(bad)


def _current_by_scenario() -> dict[str, Path]:
    """{scenario id: the current workspace} when one was started with --workspace elsewhere."""
    try:
        root = current_workspace()
        return {Workspace(root).scenario_id: root} if is_workspace(root) else {}
    except LabError:
        return {}  # none yet, or unreadable: the catalog is shown all the same


def workspace_to_grade(scenario_id: str) -> Path | None:
    """The workspace `cks-lab grade ID` grades: the current one when it is this
    scenario's (what `cks-lab check` grades), else its default one once started;
    None when there is neither (the untouched scenario is graded)."""
    current = _current_by_scenario().get(scenario_id)
    if current is not None:
        return current
    root = default_workspace(scenario_id)
    return root if is_workspace(root) else None


@dataclass
class ProgressReport:
    skills: list[SkillSummary]  # over the whole catalog, by skill name
    entries: list[CatalogEntry]  # per scenario (only the one asked for, if one was)
    attempts: list[AttemptRow]  # the latest checks, most recent first
    errors: list[LabError]  # scenarios that could not be loaded


def progress_report(
    catalog: Catalog, scenario_id: str | None = None, *, limit: int = 20
) -> ProgressReport:
    """`cks-lab progress` and the TUI's results: per skill, per scenario, recent checks."""
    every, errors = catalog_entries(catalog)
    skills = progress_store.skill_summary(
        [e.scenario for e in every], {e.scenario.id: e.progress for e in every}
    )
    recent = progress_store.attempt_history(scenario_id, limit)
    entries = every
    if scenario_id is not None:
        entries = [e for e in every if e.scenario.id == scenario_id]
        if not entries and not recent:
            known = ", ".join(sorted(e.scenario.id for e in every))
            raise LabError(
                f"no scenario {scenario_id!r} and no checks recorded for it (known: {known})"
            )
    return ProgressReport(skills, entries, recent, errors)


# --- headless grading, validation, self-test ------------------------------------


@contextmanager
def _scratch_copy(src: Path | None, sc: LoadedScenario) -> Iterator[Workspace]:
    """A throwaway workspace: the scenario's seed with src's nodes laid over it.

    The submission is copied with limits (see lab.safecopy): only files, folders
    and symlinks; a symlinked nodes/ or node root is refused. On any error the
    temporary folder is removed with everything in it.
    """
    with tempfile.TemporaryDirectory(prefix="cks-lab-grade-") as tmp:
        ws = create_workspace(Path(tmp) / "ws", sc, "sim")
        backend_for("sim").prepare(sc, ws)
        if src is not None:
            nodes = src / "nodes"
            check_node_roots(nodes)
            if not nodes.is_dir():
                raise LabError(
                    "not a workspace: no nodes/ folder (expected nodes/<node>/... as "
                    "`cks-lab start` creates)",
                    file=str(src),
                )
            known = [n.name for n in sc.model.cluster.nodes]
            for child in sorted(nodes.iterdir()):
                if child.name not in known:
                    raise LabError(
                        f"nodes/{child.name} is not a node of scenario {sc.id!r} "
                        f"(its nodes: {', '.join(known)})",
                        file=str(src),
                    )
            # The submission is laid over the scenario's seed: a course repo may
            # commit only the files the learner changed.
            copy_tree(nodes, ws.root / "nodes", limits=SUBMISSION, what="a submission")
            if is_workspace(src):
                _copy_loaded_profiles(open_workspace(src), ws)
        yield ws


def _copy_loaded_profiles(src: Workspace, dest: Workspace) -> None:
    """What the learner loaded in the nodes' kernels is part of the work, like the files."""
    from lab.backends.sim.apparmor_kernel import STATE_KEY

    loaded = src.state().get(STATE_KEY)
    if loaded is not None:
        dest.update_state(**{STATE_KEY: loaded})


def grade_workspace(
    catalog: Catalog,
    scenario_id: str | None,
    workspace: Path | None,
    *,
    scenario_dir: Path | None = None,
) -> ScenarioResult:
    """Grade a workspace (or a submission folder with nodes/) without changing it.

    The scenario comes from the catalog by id, never from a folder the
    submission could hold; an author names their own folder as `scenario_dir`
    (then `scenario_id`, if given, must be its id). With no workspace the
    scenario is graded in its untouched state.
    """
    if scenario_dir is not None:
        sc = scenario_folder(scenario_dir)
        if scenario_id is not None and scenario_id != sc.id:
            raise LabError(
                f"the scenario in this folder is {sc.id!r}, not {scenario_id!r}",
                file=str(scenario_dir / SCENARIO_FILE),
            )
    elif scenario_id is None:
        raise LabError("which scenario? give its id (or --scenario-dir DIR)")
    else:
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
        from lab.grading.grader import grade

        evidence = backend_for("sim").run_attack(sc, ws)
        return grade(sc.model, evidence, penalties)


def validate_folder(folder: Path) -> tuple[LoadedScenario | None, list[LabError]]:
    from lab.scenarios.loader import ScenarioError, load_scenario

    try:
        sc = load_scenario(folder)
    except ScenarioError as e:
        return None, e.errors
    from lab.grading.validate import validate_checks

    return sc, validate_checks(sc)


def todo_warnings(folder: Path) -> list[str]:
    """A warning line per TODO left in a scenario folder's text files (validate
    prints them; they are no error: a fresh skeleton validates on purpose)."""
    from lab.scenarios.scaffold import todo_markers

    return [f"{folder / f}:{n}: warning: TODO left" for f, n in todo_markers(folder)]


@dataclass
class SelfTest:
    scenario: str
    untouched: ScenarioResult
    solved: ScenarioResult
    todos: tuple[tuple[str, int], ...] = ()  # (file, line) of TODO markers left

    @property
    def problems(self) -> list[str]:
        out = []
        if self.todos:
            from lab.scenarios.scaffold import todo_summary

            # a skeleton whose solution passes is still not done while TODOs remain
            out.append(todo_summary(list(self.todos)))
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
    from lab.grading.grader import grade

    backend = backend_for("sim")
    with tempfile.TemporaryDirectory(prefix="cks-lab-selftest-") as tmp:
        ws = create_workspace(Path(tmp) / "untouched", sc, "sim")
        backend.prepare(sc, ws)
        untouched = grade(sc.model, backend.run_attack(sc, ws))
        ws2 = create_workspace(Path(tmp) / "solved", sc, "sim")
        backend.prepare(sc, ws2)
        _write_solutions(ws2, sc, list(sc.model.tasks))
        solved = grade(sc.model, backend.run_attack(sc, ws2))
    from lab.scenarios.scaffold import todo_markers

    return SelfTest(sc.id, untouched, solved, tuple(todo_markers(sc.root)))
