"""Progress: per skill, then every recorded check (newest first)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label

from lab import service
from lab.timefmt import duration

if TYPE_CHECKING:
    from lab.tui.app import LabApp


class ResultsScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("enter", "open", "Open scenario"),
    ]
    KEYS_HELP = [
        ("enter", "open the scenario of the highlighted check", "open"),
        ("tab", "move between the two tables", None),
        ("esc", "back", None),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.title = "cks-lab"  # before mounting, as the other screens do
        self.sub_title = "your progress"

    @property
    def lab(self) -> LabApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Label("Per skill", classes="section")
            yield DataTable(id="skills", cursor_type="row")
            yield Label("Checks, newest first", classes="section")
            yield DataTable(id="attempts", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        report = service.progress_report(self.lab.catalog)
        skills = self.query_one("#skills", DataTable)
        skills.add_columns("skill", "passed", "tried", "checks", "mean best", "time")
        for s in report.skills:
            skills.add_row(
                s.skill,
                f"{s.passed}/{s.scenarios}",
                str(s.attempted),
                str(s.attempts),
                f"{round(100 * s.mean_best)}%" if s.attempted else "–",
                duration(s.seconds),
            )
        rows = self.query_one("#attempts", DataTable)
        rows.add_columns("when", "scenario", "score", "result")
        for i, a in enumerate(report.attempts):
            ok = Text("pass", style="green") if a.passed else Text("fail", style="red")
            rows.add_row(
                a.at.replace("T", " ")[:16],
                a.scenario,
                f"{a.points}/{a.max_points}",
                ok,
                key=f"{i}:{a.scenario}",
            )
        if not report.attempts:
            rows.add_row("–", "no checks yet: open a scenario, start it, press c", "", "")
        rows.focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "attempts":  # enter on a row: DataTable takes the key
            self.action_open()

    def action_open(self) -> None:
        rows = self.query_one("#attempts", DataTable)
        if not rows.row_count:
            return
        key = rows.coordinate_to_cell_key(rows.cursor_coordinate).row_key.value
        if key and ":" in key:
            self.lab.open_scenario(key.split(":", 1)[1])
