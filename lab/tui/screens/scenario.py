"""One scenario: briefing and tasks, then start, work, check, hints, solution.

Everything that waits (start, check, reset) runs in a worker thread and
reports progress back; the screen only calls lab.service and lab.present.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import (
    Footer,
    Header,
    Label,
    Markdown,
    OptionList,
    ProgressBar,
    Static,
    TabbedContent,
    TabPane,
)
from textual.widgets.option_list import Option

from lab import present, progress, service
from lab.errors import LabError
from lab.grading.results import ScenarioResult
from lab.shell import run as run_shell
from lab.tui.screens.dialogs import ChoiceScreen, ConfirmScreen, TextScreen
from lab.tui.views import scenario_points
from lab.tui.widgets.check_report import CheckReport
from lab.tui.widgets.timer import ScenarioTimer

if TYPE_CHECKING:
    from lab.scenarios.loader import LoadedScenario
    from lab.service import Opened
    from lab.tui.app import LabApp

SAVE_EVERY = 30.0  # seconds between saves of the time spent


class Cancelled(Exception):
    """The learner cancelled long work (raised from the progress callback)."""


def shows_errors_in(screen: ScenarioScreen) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """The same for a dialog's callback (a closure, not a method)."""

    def wrap(fn: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(fn)
        def wrapper(*args: object) -> None:
            try:
                fn(*args)
            except LabError as e:
                screen.show_error(e)

        return wrapper

    return wrap


def shows_errors(fn: Callable[..., None]) -> Callable[..., None]:
    """A LabError from the service (a corrupt state file, say) is shown, not a crash."""

    @functools.wraps(fn)
    def wrapper(self: ScenarioScreen, *args: object) -> None:
        try:
            fn(self, *args)
        except LabError as e:
            self.show_error(e)

    return wrapper


def briefing_markdown(sc: LoadedScenario) -> str:
    m = sc.model
    out = [
        f"# {m.title}",
        "",
        f"*{', '.join(m.skills)} · {m.difficulty} · about {m.minutes} minutes · "
        f"{scenario_points(m)} points · `{m.id}`*",
        "",
        m.briefing.strip(),
    ]
    for i, t in enumerate(m.tasks, 1):
        pts = sum(c.points for c in t.checks)
        out += ["", f"## Task {i}: {t.title} ({pts} points)", "", t.statement.strip()]
    return "\n".join(out)


def where_markdown(op: Opened | None, sc: LoadedScenario) -> str:
    m = sc.model
    if op is None:
        return (
            "Not started yet. Press **x** to start: the lab creates a workspace, one folder "
            "per node, holding each node's `/`.\n\nOr in a terminal: `cks-lab start " + m.id + "`"
        )
    containers = service.kind_nodes(op)
    if containers is not None:
        return _kind_where(op, sc, containers)
    out = ["## Where to work", "", f"Workspace: `{op.ws.root}`", ""]
    out += [
        f"- node **{n.name}** ({n.role}): `{op.ws.node_root(n.name)}/`" for n in m.cluster.nodes
    ]
    out += ["", "The files this scenario is about:", ""]
    out += [f"- `{op.ws.node_root(f.node)}{f.path}`" for f in m.setup.files]
    out += [
        "",
        "**s** opens a shell in a node's files (`exit` comes back here). In your own terminal:",
        "",
        "```sh",
        f"cd {op.ws.node_root(m.cluster.nodes[0].name)}",
        f"cks-lab check -w {op.ws.root}",
        "```",
        "",
        "**y** copies the `cd` line.",
    ]
    return "\n".join(out)


def _kind_where(op: Opened, sc: LoadedScenario, containers: dict[str, str]) -> str:
    """On kind the nodes are containers: you work in them, as over ssh on the exam."""
    m = sc.model
    out = ["## Where to work", "", "The nodes are the kind cluster's containers:", ""]
    out += [f"- node **{n.name}** ({n.role}): `docker exec -it {containers[n.name]} bash`"
            for n in m.cluster.nodes]  # fmt: skip
    out += ["", "The files this scenario is about, on the nodes:", ""]
    out += [f"- {f.node}: `{f.path}`" for f in m.setup.files]
    out += [
        "",
        "**s** opens a shell on a node (`exit` comes back here). Check from the host:",
        "",
        "```sh",
        f"cks-lab check -w {op.ws.root}",
        "```",
    ]
    return "\n".join(out)


class ScenarioScreen(Screen[None]):
    BINDINGS = [
        Binding("x", "start", "Start"),
        Binding("c", "check", "Check"),
        Binding("h", "hint", "Hint"),
        Binding("s", "shell", "Shell"),
        Binding("r", "reset", "Reset"),
        Binding("v", "solution", "Solution", show=False),
        Binding("d", "diff", "Diff", show=False),
        Binding("y", "copy", "Copy cd", show=False),
        Binding("escape", "back", "Back"),
    ]
    # (key, what it does, the action the palette runs) for help and the palette
    KEYS_HELP = [
        ("x", "start the scenario (creates its workspace)", "start"),
        ("c", "check: run the attack again and grade your work", "check"),
        ("h", "the next hint for the highlighted task (says what it costs first)", "hint"),
        ("s", "a shell in a node's files; `exit` comes back", "shell"),
        ("r", "reset to the starting state (asks first; your files are backed up)", "reset"),
        ("v", "the reference solution (asks first)", "solution"),
        ("d", "your files against the solution (asks first unless you passed)", "diff"),
        ("y", "copy the `cd` command for your own terminal", "copy"),
        ("1 2 3", "briefing, check results, where to work", None),
        ("↑ ↓", "highlight a task (hints are for the highlighted one)", None),
        ("esc", "cancel running work; else back to the catalog", "back"),
    ]

    def __init__(self, sc: LoadedScenario, op: Opened | None) -> None:
        super().__init__(classes="scenario")
        self.sc = sc
        self.title = sc.model.title  # before mounting, as the other screens do
        self.sub_title = sc.id
        self.op = op
        self._last: ScenarioResult | None = None
        self._last_count = 0  # how many attempts there were when _last was graded
        self._busy_with: str | None = None  # the long work under way, until its thread ends
        self._cancel = threading.Event()
        self._timer = ScenarioTimer(sc.model.minutes, progress.time_spent(sc.id), self.lab.clock)

    @property
    def lab(self) -> LabApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="scenario-bar"):
            yield Label(id="state")
            yield self._timer
        with Horizontal(id="body"):
            with TabbedContent(id="tabs", initial="brief"):
                with TabPane("Briefing [1]", id="brief"):
                    with VerticalScroll():
                        yield Markdown(briefing_markdown(self.sc), id="briefing")
                with TabPane("Check [2]", id="result"):
                    with VerticalScroll():
                        yield CheckReport("No check yet in this session: press c.", id="report")
                with TabPane("Work here [3]", id="where"):
                    with VerticalScroll():
                        yield Markdown(id="where-md")
            with Vertical(id="side"):
                yield Label("Tasks", id="tasks-title")
                yield OptionList(id="tasks")
                yield Static(id="side-info")
        with Horizontal(id="busy"):
            yield ProgressBar(total=None, show_eta=False, show_percentage=False)
            yield Label(id="busy-label")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#busy").display = False
        self.set_interval(SAVE_EVERY, self.save_time)
        self.refresh_state()

    def on_key(self, event: object) -> None:
        tabs = {"1": "brief", "2": "result", "3": "where"}
        key = getattr(event, "key", "")
        if key in tabs:
            self.show_tab(tabs[key])

    def show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        # the page's scroll takes the keys (arrows, pgdn) rather than nothing
        self.query_one(f"#{tab} VerticalScroll").focus()

    # --- state --------------------------------------------------------------

    @shows_errors
    def refresh_state(self) -> None:
        """Redraw what depends on the workspace: state line, task marks, paths."""
        self.query_one("#where-md", Markdown).update(where_markdown(self.op, self.sc))
        tasks = self.query_one("#tasks", OptionList)
        highlighted = tasks.highlighted
        tasks.clear_options()
        last: dict[str, bool] = {}
        hints: dict[str, int] = {}
        penalties: dict[str, int] = {}
        attempts: list[dict[str, object]] = []
        state: dict[str, object] = {}
        if self.op is not None:
            state = self.op.ws.state()
            st = service.status(self.op)
            attempts, hints, penalties = st.attempts, st.hints, st.penalties
        if self._last is not None and len(attempts) != self._last_count:
            self._last = None  # a check ran elsewhere (the shell): its verdict is newer
        reset_since = bool(
            attempts and str(state.get("last_reset", "")) > str(attempts[-1].get("at", ""))
        )
        if attempts and not reset_since:
            last = dict(attempts[-1].get("tasks") or {})  # type: ignore[call-overload]
        points = {t.id: t.points for t in self._last.tasks} if self._last else {}
        for i, t in enumerate(self.sc.model.tasks, 1):
            mark = "·" if t.id not in last else ("✔" if last[t.id] else "✘")
            style = "" if t.id not in last else ("green" if last[t.id] else "red")
            pts = sum(c.points for c in t.checks)
            got = f"{points[t.id]}/{pts}" if t.id in points else f"{pts} pts"
            hint = f" · {hints[t.id]} hint(s) -{penalties.get(t.id, 0)}" if hints.get(t.id) else ""
            # Text, not markup: a title may hold brackets
            text = Text.assemble((mark, style), f" {i}. {t.title}\n   ", (f"{got}{hint}", "dim"))
            tasks.add_option(Option(text, id=t.id))
        if tasks.option_count:
            first_open = next(
                (i for i, t in enumerate(self.sc.model.tasks) if not last.get(t.id)), 0
            )
            tasks.highlighted = highlighted if highlighted is not None else first_open
        if self._last is None and attempts and not reset_since:
            a = attempts[-1]
            self.query_one("#report", CheckReport).show_text(
                f"The last check ({str(a.get('at', '')).replace('T', ' ')[:16]} UTC) scored "
                f"{a.get('points')}/{a.get('max_points')}. Press c to check again and see "
                "every check explained."
            )
        line = self.query_one("#state", Label)
        if self.op is None:
            line.update(Text.assemble(("not started", "yellow"), " — press x to start"))
        elif not state.get("prepared", True):
            line.update(
                Text.assemble(
                    ("not fully prepared", "red"),
                    " — a start or reset was interrupted: press r to finish it",
                )
            )
        elif reset_since:
            line.update(Text.assemble(("reset to the start", "yellow"), " — press c to check"))
        elif not attempts:
            line.update(Text.assemble(("started", "yellow"), " — work on the nodes, then press c"))
        else:
            a = attempts[-1]
            word = ("passed", "green") if a.get("passed") else ("not yet passing", "red")
            n = len(attempts)
            line.update(
                Text.assemble(
                    word,
                    f" · last check {a.get('points')}/{a.get('max_points')}",
                    f" · {n} check{'s' if n != 1 else ''}",
                )
            )
        info = "x start · c check · h hint · s shell · r reset · v solution · d diff · ? help"
        self.query_one("#side-info", Static).update(Text(info, style="dim"))

    def highlighted_task(self) -> str | None:
        tasks = self.query_one("#tasks", OptionList)
        if tasks.highlighted is None:
            return None
        return tasks.get_option_at_index(tasks.highlighted).id

    # --- time spent ---------------------------------------------------------

    def save_time(self) -> None:
        progress.add_time(self.sc.id, self._timer.take())

    def on_screen_suspend(self) -> None:
        self.save_time()
        if not isinstance(self.app.screen, ModalScreen):
            self._timer.pause()  # the catalog or progress screen: not time on this scenario

    def on_screen_resume(self) -> None:
        self._timer.resume()

    def on_unmount(self) -> None:
        self.save_time()  # esc, :q, ctrl+q: the timer is ours, not looked up in a dead tree

    # --- long work in workers -----------------------------------------------

    def busy(self, what: str = "") -> bool:
        """True (and the learner told so) while start, check or reset runs."""
        if self._busy_with is None:
            return False
        if what:
            msg = f"wait for the {self._busy_with} to finish before {what}"
            self.notify(msg, severity="warning")
        return True

    def _begin(self, what: str) -> bool:
        if self.busy(what):
            return False
        self._busy_with = what
        self._cancel.clear()
        self.query_one("#busy").display = True
        self.query_one("#busy ProgressBar", ProgressBar).update(total=None, progress=0)
        self.query_one("#busy-label", Label).update(f"{what}… (esc cancels)")
        return True

    def _progress(self, message: str) -> None:
        """Called from the worker thread by the service's long work, between steps."""
        if self._cancel.is_set():
            raise Cancelled
        self.app.call_from_thread(self._show_progress, message)

    def _show_progress(self, message: str) -> None:
        if self._busy_with is None:
            return
        # A ProgressEvent knowing done/total (the kind backend's long steps) fills
        # the bar; plain messages keep it indeterminate.
        done, total = getattr(message, "done", None), getattr(message, "total", None)
        bar = self.query_one("#busy ProgressBar", ProgressBar)
        if done is not None and total:
            bar.update(total=total, progress=min(done, total))
            message = f"[{done}/{total}] {message}"
        self.query_one("#busy-label", Label).update(f"{message}… (esc cancels)")

    def _finished(self) -> None:
        """The worker's thread has really ended (a thread cannot be stopped, only asked)."""
        self._busy_with = None
        self.query_one("#busy").display = False

    def _report(self, err: BaseException) -> None:
        """From the worker thread: an error or a cancellation, shown by the UI thread."""
        try:
            self.app.call_from_thread(self.show_error, err)
        except RuntimeError:
            pass  # the app is closing

    def _end_work(self) -> None:
        try:
            self.app.call_from_thread(self._finished)
        except RuntimeError:
            pass  # the app is closing

    def show_error(self, err: BaseException | None) -> None:
        if isinstance(err, Cancelled):
            self.notify(f"{err.args[0] if err.args else 'work'} cancelled", severity="warning")
            self.refresh_state()
            return
        text = str(err) if isinstance(err, LabError) else f"internal error: {err!r} (report it)"
        self.query_one("#report", CheckReport).show_text(f"Error: {text}", style="bold red")
        self.show_tab("result")
        self.notify(text, title="error", severity="error", timeout=10)

    def action_start(self) -> None:
        if self.op is not None and self.op.ws.state().get("prepared", True):
            self.notify("already started; r resets it to the starting state")
            return
        if self._begin("start"):
            self._start()

    @work(thread=True, group="lab", name="start", exit_on_error=False)
    def _start(self) -> None:
        try:
            backend = self.lab.backend
            if backend == "kind":  # as `cks-lab up --scenario`: what this host can serve
                backend, why = service.scenario_backend(self.sc)
                if why:
                    self.app.call_from_thread(self.notify, why, timeout=10)
            op, created = service.start(
                self.lab.catalog, self.sc.id, backend=backend, progress=self._progress
            )
            self.app.call_from_thread(self._started, op, created)
        except Cancelled:
            self._report(Cancelled("start (x finishes it)"))
        except Exception as e:  # noqa: BLE001 - shown on the screen, never a dead app
            self._report(e)
        finally:
            self._end_work()

    def _started(self, op: Opened, created: bool) -> None:
        self.op = op
        self.refresh_state()
        self.show_tab("where")
        self.notify("workspace created" if created else "resumed the workspace", timeout=3)

    def _need_started(self) -> bool:
        if self.op is None:
            self.notify("start the scenario first: press x", severity="warning")
            return False
        return True

    def action_check(self) -> None:
        if self._need_started() and self._begin("check"):
            self._check()

    @work(thread=True, group="lab", name="check", exit_on_error=False)
    def _check(self) -> None:
        assert self.op is not None
        try:
            result = service.check(self.op, progress=self._progress)
            changes, delta = service.check_changes(self.op)
            late = self._cancel.is_set()
            text = present.changes_text(changes, delta)
            self.app.call_from_thread(self._checked, result, text, late)
        except Cancelled:
            self._report(Cancelled("check (nothing was recorded)"))
        except Exception as e:  # noqa: BLE001
            self._report(e)
        finally:
            self._end_work()

    def _checked(self, result: ScenarioResult, changes: str, late: bool) -> None:
        self._last = result
        self._last_count = len(service.status(self.op).attempts) if self.op else 0
        self.query_one("#report", CheckReport).show(result, changes)
        self.show_tab("result")
        self.refresh_state()
        if late:
            self.notify("the check finished before it could be cancelled", severity="warning")
        if result.passed:
            self.notify(
                f"every task passes: {result.points}/{result.max_points}. "
                "d compares your files with the reference solution.",
                title="passed",
                timeout=8,
            )
        else:
            self.notify(
                f"{result.points}/{result.max_points}: some checks fail (see Check)", timeout=4
            )

    @shows_errors
    def action_reset(self) -> None:
        if not self._need_started() or self.busy("resetting"):
            return

        @shows_errors_in(self)
        def answered(yes: bool | None) -> None:
            if yes and self._begin("reset"):
                self._reset()

        assert self.op is not None
        where = service.backup_dir(self.op.ws).relative_to(self.op.ws.root)
        self.app.push_screen(
            ConfirmScreen(
                "Reset the scenario?",
                "The nodes' files go back to the starting state. Your current files are "
                f"backed up first (under the workspace's {where}). Hints taken stay taken.",
                "Reset",
            ),
            answered,
        )

    @work(thread=True, group="lab", name="reset", exit_on_error=False)
    def _reset(self) -> None:
        assert self.op is not None
        try:
            backup = service.reset(self.op, progress=self._progress)
            self.app.call_from_thread(self._was_reset, backup)
        except Cancelled:
            where = service.backup_dir(self.op.ws)
            self._report(Cancelled(f"reset (your files are backed up in {where}; r finishes it)"))
        except Exception as e:  # noqa: BLE001
            self._report(e)
        finally:
            self._end_work()

    def _was_reset(self, backup: object) -> None:
        self._last = None
        self.query_one("#report", CheckReport).show_text(
            "Reset to the starting state. Press c to check."
        )
        self.refresh_state()
        msg = f"reset; your files were backed up in {backup}" if backup else "reset"
        self.notify(msg, timeout=6)

    def action_back(self) -> None:
        if self._busy_with is not None:
            self._cancel.set()  # the worker stops at its next step
            self.query_one("#busy-label", Label).update(f"cancelling the {self._busy_with}…")
            return
        self.app.pop_screen()

    # --- quick actions (no waiting) ------------------------------------------

    @shows_errors
    def action_hint(self) -> None:
        if not self._need_started() or self.busy("taking a hint"):
            return
        assert self.op is not None
        op, task = self.op, self.highlighted_task()
        try:
            h = service.peek_hint(op, task)
        except LabError as e:
            self.notify(str(e), severity="warning")
            return

        @shows_errors_in(self)
        def show(yes: bool | None = True) -> None:
            if not yes:
                return
            taken = service.take_hint(op, h.task.id)
            self.app.push_screen(
                TextScreen(f"Hint for {h.task.title}", present.hint_text(taken), tall=False)
            )
            self.refresh_state()

        if not h.new:
            show()
            return
        cost = h.hint.penalty
        self.app.push_screen(
            ConfirmScreen(
                f"Hint {h.number} of {h.number + h.remaining}",
                f"This hint for task {h.task.title!r} costs {cost} point{'s' if cost != 1 else ''} "
                "of that task's score. Show it?",
                "Show hint",
            ),
            show,
        )

    @shows_errors
    def action_solution(self) -> None:
        if not self._need_started() or self.busy("showing the solution"):
            return
        assert self.op is not None
        op = self.op

        @shows_errors_in(self)
        def show(yes: bool | None) -> None:
            if yes:
                tasks = service.show_solution(op)
                text = present.solution_text(op, tasks, applied=False)
                self.app.push_screen(TextScreen("Reference solution", text, plain=True))

        self.app.push_screen(
            ConfirmScreen(
                "Show the reference solution?",
                "You will see every task's answer. Your score does not change, but the "
                "lab notes that you looked (cks-lab status shows it).",
                "Show solution",
            ),
            show,
        )

    @shows_errors
    def action_diff(self) -> None:
        if not self._need_started() or self.busy("comparing with the solution"):
            return
        assert self.op is not None
        op = self.op

        @shows_errors_in(self)
        def show(yes: bool | None = True) -> None:
            if not yes:
                return
            text = present.diff_text(service.learner_diff(op))
            self.app.push_screen(TextScreen("Your files → the solution", text, plain=True))

        if service.last_check_passed(op):
            show()
            return
        self.app.push_screen(
            ConfirmScreen(
                "Compare your files with the solution?",
                "The diff shows the reference solution's lines, so it counts as viewing the "
                "solution. After a pass it is free.",
                "Show diff",
            ),
            show,
        )

    @shows_errors
    def action_copy(self) -> None:
        if not self._need_started():
            return
        assert self.op is not None
        cmd = service.shell_command(self.op)
        self.app.copy_to_clipboard(cmd.display)
        self.notify(f"copied: {cmd.display}", timeout=4)

    @shows_errors
    def action_shell(self, node: str | None = None) -> None:
        """`s`: a shell on a node (asks which when there are several); `:shell NODE`."""
        if not self._need_started() or self.busy("opening a shell"):
            return
        assert self.op is not None
        nodes = self.sc.model.cluster.nodes
        if node is None and len(nodes) > 1:
            default = service.shell_command(self.op).cwd.name
            self.app.push_screen(
                ChoiceScreen(
                    "A shell on which node?",
                    [(n.name, f"{n.name} ({n.role})") for n in nodes],
                    default,
                ),
                self._shell_on,
            )
            return
        self._shell(node)

    def _shell_on(self, picked: str | None) -> None:
        if picked:
            try:
                self._shell(picked)
            except LabError as e:
                self.show_error(e)

    def _shell(self, node: str | None) -> None:
        assert self.op is not None
        cmd = service.shell_command(self.op, node)  # an unknown node: a LabError naming them
        self.save_time()
        try:
            with self.app.suspend():
                run_shell(cmd)  # what `cks-lab shell` runs
        except SuspendNotSupported:
            self.app.copy_to_clipboard(cmd.display)
            self.notify(
                f"this terminal cannot hand over to a shell; in your own terminal: {cmd.display}"
                " (copied)",
                severity="warning",
                timeout=10,
            )
        self.refresh_state()
