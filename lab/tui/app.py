"""LabApp: screens, the `:` command line, help and the command palette."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from rich.text import Text
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from lab import progress, service
from lab.errors import LabError
from lab.scenarios.catalog import Catalog
from lab.tui.commands import Command, CommandError, parse, suggestions
from lab.tui.screens.catalog import CatalogScreen
from lab.tui.screens.dialogs import CommandLineScreen, TextScreen, help_markdown

# commands the scenario screen carries out itself
SCENARIO_ACTIONS = ("start", "check", "hint", "shell", "solution", "diff", "reset")


class LabApp(App[None]):
    TITLE = "cks-lab"
    CSS_PATH = "lab.tcss"
    BINDINGS = [
        Binding("question_mark", "help", "Help"),
        Binding("colon", "command_line", "Command"),
        Binding("ctrl+q", "quit", "Quit", show=False),
    ]

    def __init__(
        self,
        catalog: Catalog,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__()
        self.catalog = catalog
        self.clock = clock  # tests freeze it, so the timer draws the same every run
        self.wall = wall or (lambda: datetime.now(UTC))  # the exam's deadline is wall time
        self.backend = "sim"

    def on_mount(self) -> None:
        # The progress store never stops grading; its warnings become notices.
        logging.getLogger(progress.WARNINGS).addHandler(_Notices(self))
        self.push_screen(CatalogScreen())

    def on_unmount(self) -> None:
        log = logging.getLogger(progress.WARNINGS)
        for h in [h for h in log.handlers if isinstance(h, _Notices) and h.app is self]:
            log.removeHandler(h)

    def backend_line(self) -> Text:
        line = Text("backend: ")
        for b in service.backend_status():
            line.append("● " if b.available else "○ ", "green" if b.available else "dim")
            line.append(b.name)
            if b.name == self.backend:
                line.append(" (in use)", "bold")
            if not b.available:
                line.append(f" — {b.detail}", "dim")
            line.append("   ")
        return line

    # --- navigation ---------------------------------------------------------

    def open_scenario(self, scenario_id: str) -> None:
        from lab.tui.screens.scenario import ScenarioScreen  # loaded when first needed

        try:
            sc, op = service.scenario_and_workspace(self.catalog, scenario_id)
        except LabError as e:
            self.notify(str(e), title="cannot open", severity="error", timeout=10)
            return
        self.to_catalog()  # one scenario screen at a time
        self.push_screen(ScenarioScreen(sc, op))

    def open_results(self) -> None:
        from lab.tui.screens.results import ResultsScreen

        self.to_catalog()
        self.push_screen(ResultsScreen())

    def open_exam(self) -> None:
        """The running exam; else a choice: a full or a short one, or the last review."""
        from lab import exam as exams
        from lab.tui.screens.dialogs import ChoiceScreen
        from lab.tui.screens.exam import ExamReviewScreen, ExamScreen

        self.to_catalog()
        try:
            ex = exams.current_exam()
            if ex is not None and ex.running:
                if exams.submit_if_time_up(self.catalog, ex, now=self.wall()) is None:
                    self.push_screen(ExamScreen(ex))
                    return
                self.notify("the exam's time ran out while you were away; it was graded")
                ex = exams.load_exam(ex.id)
        except LabError as e:
            self.notify(str(e), title="exam", severity="error", timeout=10)
            return
        options = [
            ("full", "A full mock exam: about 17 tasks, 2 hours"),
            ("short", "A short practice exam: about 5 tasks, 30 minutes"),
        ]
        if ex is not None and ex.submitted:
            options.append(("review", f"The review of the last exam ({ex.id})"))

        def chosen(what: str | None) -> None:
            if what == "review" and ex is not None:
                try:
                    self.push_screen(ExamReviewScreen(exams.review(self.catalog, ex)))
                except LabError as e:
                    self.notify(str(e), severity="error")
            elif what in ("full", "short"):
                self._start_exam(what == "short")

        self.push_screen(ChoiceScreen("Mock exam", options, "full"), chosen)

    def _start_exam(self, short: bool) -> None:
        from lab import exam as exams
        from lab.tui.screens.exam import ExamScreen

        try:
            ex = exams.start_exam(self.catalog, short=short, now=self.wall())
        except LabError as e:
            self.notify(str(e), title="exam", severity="error", timeout=10)
            return
        self.notify(
            "the clock runs from now, also while you are away; no checks, hints or "
            "solutions until you submit",
            title="exam started",
            timeout=8,
        )
        self.push_screen(ExamScreen(ex))

    def to_catalog(self) -> None:
        while len(self.screen_stack) > 2:
            self.pop_screen()

    # --- help, command line, palette ------------------------------------------

    def action_help(self) -> None:
        keys = [(k, what) for k, what, _ in getattr(self.screen, "KEYS_HELP", [])]
        self.push_screen(TextScreen("Help", help_markdown(keys)))

    def action_command_line(self) -> None:
        ids = [sc.id for sc in service.scenario_summaries(self.catalog)[0]]
        self.push_screen(CommandLineScreen(suggestions(ids)), self.run_command)

    def run_command(self, text: str | None) -> None:
        if not text or not text.strip(":").strip():
            return
        try:
            cmd = parse(text)
        except CommandError as e:
            self.notify(str(e), severity="error")
            return
        self.execute(cmd)

    def execute(self, cmd: Command) -> None:
        name, args = cmd.name, cmd.args
        if name == "quit":
            self.exit()
        elif name == "help":
            self.action_help()
        elif name == "catalog":
            self.to_catalog()
        elif name == "results":
            self.open_results()
        elif name == "exam":
            self.open_exam()
        elif name == "scenario":
            self.open_scenario(args[0])
        elif name == "backend":
            self.use_backend(args[0])
        elif name in SCENARIO_ACTIONS:
            action = getattr(self.screen, f"action_{name}", None)
            if action is None:
                self.notify(
                    f":{name} works on a scenario: open one first (:scenario ID)",
                    severity="warning",
                )
            else:
                action(*args)  # :shell NODE

    def use_backend(self, name: str) -> None:
        for b in service.backend_status():
            if b.name == name:
                if not b.available:
                    self.notify(
                        f"the {name} backend is not available: {b.detail}",
                        severity="error",
                        timeout=8,
                    )
                    return
                self.backend = name
                self.notify(f"using the {name} backend for scenarios you start from now on")
                if isinstance(self.screen, CatalogScreen):
                    self.screen.refresh_entries()
                return
        names = ", ".join(b.name for b in service.backend_status())
        self.notify(f"no backend {name!r} (backends: {names})", severity="error")

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Help", "Keys and commands", self.action_help)
        yield SystemCommand("Command line", "Type a : command", self.action_command_line)
        yield SystemCommand("Catalog", "Every scenario and your status", self.to_catalog)
        yield SystemCommand("Progress", "Attempts, scores and time per skill", self.open_results)
        yield SystemCommand("Mock exam", "Start one, go back to it, or its review", self.open_exam)
        for key, what, action_name in getattr(screen, "KEYS_HELP", []):
            action = getattr(screen, f"action_{action_name}", None) if action_name else None
            if action is not None:
                yield SystemCommand(what[:1].upper() + what[1:], f"key: {key}", action)
        for sc in service.scenario_summaries(self.catalog)[0]:
            yield SystemCommand(
                f"Open {sc.id}",
                sc.title,
                lambda sid=sc.id: self.open_scenario(sid),
                discover=False,
            )


class _Notices(logging.Handler):
    def __init__(self, app: LabApp) -> None:
        super().__init__(logging.WARNING)
        self.app = app

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if threading.get_ident() == self.app._thread_id:
            self.app.notify(msg, title="progress not saved", severity="warning", timeout=10)
        else:
            self.app.call_from_thread(
                self.app.notify, msg, title="progress not saved", severity="warning", timeout=10
            )
