"""The mock exam: items, a countdown, flags, submit; then the review.

Like the CLI's `cks-lab exam`, it calls lab.exam only: no check, hint or
solution while the exam runs (lab.exam.guard refuses them anyway); the time
runs on the wall clock, so quitting and coming back resumes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Label, Markdown, OptionList, Static
from textual.widgets.option_list import Option

from lab import exam as exams
from lab.errors import LabError
from lab.exam.present import percent, share_text
from lab.shell import run as run_shell
from lab.tui.screens.dialogs import ChoiceScreen, ConfirmScreen, TextScreen
from lab.tui.screens.scenario import briefing_markdown
from lab.tui.views import clock_text
from lab.tui.widgets.check_report import render_result

if TYPE_CHECKING:
    from lab.exam import Exam, ExamResult, ExamReview
    from lab.tui.app import LabApp

LAST_MINUTES = 10 * 60  # the countdown turns red


class ExamScreen(Screen[None]):
    BINDINGS = [
        Binding("enter", "goto", "Work on it"),
        Binding("f", "flag", "Flag"),
        Binding("s", "shell", "Shell"),
        Binding("l", "replay", "Replay"),
        Binding("y", "copy", "Copy cd", show=False),
        Binding("S", "submit", "Submit"),
        Binding("escape", "back", "Back"),
    ]
    KEYS_HELP = [
        ("↑ ↓", "highlight an item", None),
        ("enter", "work on the highlighted item (its workspace becomes the current one)", "goto"),
        ("f", "flag the highlighted item for later, or unflag it", "flag"),
        ("s", "a shell on a node of the current item; `exit` comes back", "shell"),
        ("l", "replay the current item's cluster: its logs are written, nothing graded", "replay"),
        ("y", "copy the `cd` line of the current item for your own terminal", "copy"),
        ("S", "submit: end the exam and grade every item (asks first)", "submit"),
        ("esc", "back to the catalog; the exam's clock keeps running", "back"),
    ]

    def __init__(self, exam: Exam) -> None:
        super().__init__(classes="exam")
        self.exam = exam
        self.title = "Mock exam"  # before mounting, as the other screens do
        self.sub_title = f"{len(exam.items)} items · {exam.task_count} tasks"
        self._submitting = False

    @property
    def lab(self) -> LabApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="exam-bar"):
            yield Label(id="exam-state")
            yield Static(id="countdown")
        with Horizontal(id="exam-body"):
            yield OptionList(id="items")
            with VerticalScroll(id="item-page"):
                yield Markdown(id="item-md")
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(1, self.tick)
        self.redraw()
        self.tick()
        self.query_one("#items").focus()

    def redraw(self) -> None:
        ex = self.exam
        items = self.query_one("#items", OptionList)
        keep = items.highlighted
        items.clear_options()
        for it in ex.items:
            here = it.index == ex.current
            flag = "⚑" if it.index in ex.flagged else " "
            n = len(it.tasks)
            items.add_option(
                Option(
                    Text.assemble(
                        ("▶" if here else " ", "bold"),
                        (flag, "yellow"),
                        f" {it.number}. {it.title}\n     ",
                        (f"{n} task{'s' if n != 1 else ''} · {share_text(ex, it)} of the exam",
                         "dim"),
                    ),
                    id=str(it.index),
                )
            )
        items.highlighted = keep if keep is not None else ex.current
        self.show_item(ex.current)
        flagged = len(ex.flagged)
        self.query_one("#exam-state", Label).update(
            Text.assemble(
                f"item {ex.current_item.number} of {len(ex.items)}",
                (f" · {flagged} flagged" if flagged else "", "yellow"),
                ("  no checks, hints or solutions until you submit (S)", "dim"),
            )
        )

    def show_item(self, index: int) -> None:
        from lab.scenarios.catalog import Catalog  # noqa: F401 - the type, for the reader

        try:
            op = exams.item_scenario(self.lab.catalog, self.exam, index)
        except LabError as e:
            self.query_one("#item-md", Markdown).update(f"**This item cannot be shown:** {e}")
            return
        item = self.exam.items[index]
        where = "\n".join(
            f"- node **{n.name}**: `{op.ws.node_root(n.name)}/`" for n in op.sc.model.cluster.nodes
        )
        current = (
            "You are working on this item: **s** opens a shell on one of its nodes."
            if index == self.exam.current
            else "**enter** makes this the item you work on."
        )
        self.query_one("#item-md", Markdown).update(
            f"{briefing_markdown(op.sc)}\n\n## Where to work\n\n{current}\n\n{where}\n\n"
            f"*Item {item.number}, {share_text(self.exam, item)} of the exam's score.*"
        )

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id is not None:
            self.show_item(int(event.option.id))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.action_goto()

    def tick(self) -> None:
        ex = self.exam
        now = self.lab.wall()
        left = ex.remaining(now).total_seconds()
        style = "bold red" if left < LAST_MINUTES else "bold"
        self.query_one("#countdown", Static).update(
            Text.assemble(("⏳ ", ""), (clock_text(left), style), " left")
        )
        if ex.running and ex.time_up(now) and not self._submitting:
            self.notify("time is up: the exam is graded as your files are now", timeout=8)
            self._submit(timed_out=True)

    def _highlighted(self) -> int:
        items = self.query_one("#items", OptionList)
        return items.highlighted if items.highlighted is not None else self.exam.current

    def _act(self, fn: object) -> bool:
        """Run an exam step; a LabError (the time ran out elsewhere, say) is shown."""
        try:
            self.exam = fn()  # type: ignore[operator]
        except LabError as e:
            self.notify(str(e), severity="error", timeout=8)
            return False
        self.redraw()
        return True

    def action_goto(self) -> None:
        index = self._highlighted()
        if self._act(lambda: exams.goto(self.exam, index)):
            self.notify(f"working on item {index + 1}", timeout=2)

    def action_flag(self) -> None:
        index = self._highlighted()
        on = index not in self.exam.flagged
        self._act(lambda: exams.flag(self.exam, index, on))

    def action_copy(self) -> None:
        try:
            op = exams.item_scenario(self.lab.catalog, self.exam, self.exam.current)
            from lab import service

            cmd = service.shell_command(op)
        except LabError as e:
            self.notify(str(e), severity="error")
            return
        self.app.copy_to_clipboard(cmd.display)
        self.notify(f"copied: {cmd.display}", timeout=4)

    def action_shell(self) -> None:
        from lab import service

        try:
            op = exams.item_scenario(self.lab.catalog, self.exam, self.exam.current)
        except LabError as e:
            self.notify(str(e), severity="error")
            return
        nodes = op.sc.model.cluster.nodes

        def open_on(node: str | None) -> None:
            if not node:
                return
            try:
                cmd = service.shell_command(op, node)
                with self.app.suspend():
                    run_shell(cmd)
            except SuspendNotSupported:
                self.app.copy_to_clipboard(cmd.display)
                self.notify(f"in your own terminal: {cmd.display} (copied)", timeout=10)
            except LabError as e:
                self.notify(str(e), severity="error")

        if len(nodes) == 1:
            open_on(nodes[0].name)
            return
        default = service.shell_command(op).cwd.name
        options = [(n.name, f"{n.name} ({n.role})") for n in nodes]
        self.app.push_screen(ChoiceScreen("A shell on which node?", options, default), open_on)

    def action_replay(self) -> None:
        """What `cks-lab exam replay` does: the attack runs, logs land, nothing is graded."""
        if self._submitting:
            return
        self.notify("replaying the cluster…", timeout=2)
        self._replay()

    @work(thread=True, group="exam", exit_on_error=False)
    def _replay(self) -> None:
        from lab.exam.present import replay_text

        try:
            r = exams.replay(self.lab.catalog, self.exam, self.exam.current)
            text = replay_text(r)
            self.app.call_from_thread(
                self.app.push_screen, TextScreen("Replayed", text, tall=False, plain=True)
            )
        except LabError as e:
            self.app.call_from_thread(self.notify, str(e), severity="error", timeout=8)

    def action_submit(self) -> None:
        if self._submitting:
            return
        left = self.exam.remaining(self.lab.wall()).total_seconds()
        flagged = len(self.exam.flagged)
        more = f" {flagged} item(s) are flagged." if flagged else ""

        def answered(yes: bool | None) -> None:
            if yes:
                self._submit(timed_out=False)

        self.app.push_screen(
            ConfirmScreen(
                "Submit the exam?",
                f"{clock_text(left)} are left.{more} Every item is graded as its files are "
                "now; after that nothing can change.",
                "Submit",
            ),
            answered,
        )

    def _submit(self, *, timed_out: bool) -> None:
        self._submitting = True
        self.query_one("#exam-state", Label).update(Text("grading every item…", style="bold"))
        self._grade(timed_out)

    @work(thread=True, group="exam", exit_on_error=False)
    def _grade(self, timed_out: bool) -> None:
        def step(message: str) -> None:
            self.app.call_from_thread(
                self.query_one("#exam-state", Label).update, Text(message, style="bold")
            )

        try:
            exams.submit(
                self.lab.catalog, self.exam, timed_out=timed_out, now=self.lab.wall(), progress=step
            )
            done = exams.load_exam(self.exam.id)
            rv = exams.review(self.lab.catalog, done)
            self.app.call_from_thread(self._graded, rv)
        except LabError as e:
            self.app.call_from_thread(self._failed, e)

    def _graded(self, rv: ExamReview) -> None:
        self.app.switch_screen(ExamReviewScreen(rv))

    def _failed(self, err: LabError) -> None:
        self._submitting = False
        self.notify(str(err), title="not submitted", severity="error", timeout=10)
        self.redraw()

    def action_back(self) -> None:
        self.app.pop_screen()


class ExamReviewScreen(Screen[None]):
    BINDINGS = [
        Binding("v", "solution", "Solution"),
        Binding("escape", "back", "Back"),
    ]
    KEYS_HELP = [
        ("↑ ↓", "an item: its checks and explanations on the right", None),
        ("v", "the highlighted item's reference solution", "solution"),
        ("esc", "back to the catalog", "back"),
    ]

    def __init__(self, rv: ExamReview) -> None:
        super().__init__(classes="exam-review")
        self.rv = rv
        self.title = "Mock exam review"

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(id="exam-score")
        with Horizontal(id="exam-body"):
            yield OptionList(id="items")
            with VerticalScroll(id="item-page"):
                yield Static(id="item-result")
        yield Footer()

    def on_mount(self) -> None:
        r: ExamResult = self.rv.result
        verdict = ("PASS", "bold green") if r.passed else ("FAIL", "bold red")
        how = " (the time ran out)" if r.timed_out else ""
        self.query_one("#exam-score", Label).update(
            Text.assemble(
                ("Score ", "bold"), (percent(r.score), "bold"), " — ", verdict,
                f" (the pass line is {round(100 * exams.PASS_LINE)} %){how}",
            )
        )
        items = self.query_one("#items", OptionList)
        for i, ri in enumerate(self.rv.items):
            s = ri.score
            ok = s.fraction == 1
            items.add_option(
                Option(
                    Text.assemble(
                        ("✔" if ok else "✘", "green" if ok else "red"),
                        f" {s.item.number}. {s.item.title}\n     ",
                        (f"{round(s.percent)} % · {share_text(self.rv.result.exam, s.item)} "
                         "of the exam", "dim"),
                    ),
                    id=str(i),
                )
            )
        items.highlighted = 0
        items.focus()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id is None:
            return
        s = self.rv.items[int(event.option.id)].score
        out = self.query_one("#item-result", Static)
        if s.result is None:
            out.update(Text(f"Not graded: {s.error}", style="red"))
        else:
            out.update(render_result(s.result))

    def action_solution(self) -> None:
        items = self.query_one("#items", OptionList)
        if items.highlighted is None:
            return
        ri = self.rv.items[items.highlighted]
        self.app.push_screen(
            TextScreen(f"Solution: {ri.score.item.title}", ri.solution, plain=True)
        )

    def action_back(self) -> None:
        self.app.pop_screen()
