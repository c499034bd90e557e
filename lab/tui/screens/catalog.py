"""The catalog: every scenario, the learner's status on it, filter and sort."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from lab import service
from lab.timefmt import duration
from lab.tui.views import LEVEL_ORDER, SKILL_ORDER

if TYPE_CHECKING:
    from lab.service import CatalogEntry
    from lab.tui.app import LabApp

SORTS = ("skill", "id", "level", "time", "status")
STATUS_ORDER = {"in progress": 0, "failed": 1, "new": 2, "passed": 3}
STATUS_STYLE = {"new": "dim", "in progress": "yellow", "failed": "red", "passed": "green"}


def status_text(e: CatalogEntry) -> Text:
    p = e.progress
    label = e.status
    if e.status == "passed":
        label = f"passed {p.best_points}/{p.max_points}"
    elif e.status == "failed":
        label = f"failed {p.best_points}/{p.max_points}"
    return Text(label, style=STATUS_STYLE.get(e.status, ""))


def sort_key(column: str, e: CatalogEntry) -> tuple[object, ...]:
    m = e.scenario
    first = {
        "skill": SKILL_ORDER.get(m.skills[0], 9),
        "id": 0,
        "level": LEVEL_ORDER.get(m.difficulty, 9),
        "time": m.minutes,
        "status": STATUS_ORDER.get(e.status, 9),
    }[column]
    return (first, m.id)


def matches(e: CatalogEntry, words: list[str]) -> bool:
    m = e.scenario
    hay = " ".join([m.id, m.title, *m.skills, m.difficulty, e.status]).lower()
    return all(w in hay for w in words)


class CatalogScreen(Screen[None]):
    BINDINGS = [
        Binding("enter", "open", "Open", show=True),
        Binding("slash", "filter", "Filter"),
        Binding("o", "sort", "Sort"),
        Binding("p", "results", "Progress"),
        Binding("e", "exam", "Exam"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("q", "app.quit", "Quit"),
    ]
    # (key, what it does, the action the palette runs) for help and the palette
    KEYS_HELP = [
        ("enter", "open the scenario under the cursor", "open"),
        ("/", "filter by words in id, title, skill, level, status (enter keeps it)", "filter"),
        ("esc", "clear the filter", "clear_filter"),
        ("o", "sort by the next column (skill, id, level, time, status)", "sort"),
        ("p", "your progress: attempts, scores, time per skill", "results"),
        ("e", "the mock exam: start one, or back to the running one", "exam"),
        ("↑ ↓ pgup pgdn", "move", None),
        ("q", "quit", None),
    ]

    def __init__(self) -> None:
        super().__init__(id="catalog")
        # titles set before mounting: the Header's watchers may not have their widgets yet
        self.title = "cks-lab"
        self.sub_title = "scenarios"
        self._entries: list[CatalogEntry] = []
        self._sort = "skill"
        self._filter = ""

    @property
    def lab(self) -> LabApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="backend-line")
        yield Input(placeholder="filter: words in id, title, skill, level, status", id="filter")
        yield DataTable(id="table", cursor_type="row", zebra_stripes=True)
        yield Static(id="preview")
        yield Static(id="catalog-foot")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("status", "id", "skill", "level", "time", "points", "title")
        self.query_one("#filter").display = False
        table.focus()

    def on_screen_resume(self) -> None:
        # first shown, or back from a scenario whose check changed the status
        self.refresh_entries()

    def refresh_entries(self) -> None:
        entries, broken = service.catalog_entries(self.lab.catalog)
        self._entries = entries
        self.query_one("#backend-line", Static).update(self.lab.backend_line())
        foot = f"{len(entries)} scenarios"
        if broken:
            foot += f" · {len(broken)} broken and skipped: " + "; ".join(str(b) for b in broken)
        self.query_one("#catalog-foot", Static).update(foot)
        self._fill()

    def shown_entries(self) -> list[CatalogEntry]:
        words = self._filter.lower().split()
        shown = [e for e in self._entries if matches(e, words)]
        return sorted(shown, key=lambda e: sort_key(self._sort, e))

    def _fill(self) -> None:
        table = self.query_one(DataTable)
        keep = None
        if table.row_count and table.cursor_row < table.row_count:
            keep = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        table.clear()
        for e in self.shown_entries():
            m = e.scenario
            table.add_row(
                status_text(e),
                m.id,
                ",".join(m.skills),
                m.difficulty,
                f"{m.minutes}m"
                + (f" ({duration(e.progress.seconds)})" if e.progress.seconds >= 60 else ""),
                str(m.points),
                m.title,
                key=m.id,
            )
        if keep is not None and keep in [e.scenario.id for e in self.shown_entries()]:
            table.move_cursor(row=table.get_row_index(keep))
        sid = self.selected_id()
        self.query_one("#preview", Static).update(
            self._preview(sid) if sid else "no scenario matches"
        )
        self.sub_title = f"scenarios · sorted by {self._sort}" + (
            f" · filter: {self._filter}" if self._filter else ""
        )

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.query_one("#preview", Static).update(self._preview(str(event.row_key.value)))

    def _preview(self, sid: str) -> Text:
        e = next((e for e in self._entries if e.scenario.id == sid), None)
        if e is None:
            return Text("")
        m, p = e.scenario, e.progress
        out = Text.assemble((m.title, "bold"), "\n")
        tasks = m.tasks
        out.append(f"{', '.join(m.skills)} · {m.difficulty} · about {m.minutes} min · ")
        out.append(f"{tasks} task{'s' if tasks != 1 else ''} · {m.points} points\n")
        if p.attempts:
            out.append(f"{p.attempts} check{'s' if p.attempts != 1 else ''}, best {p.best_points}/")
            out.append(f"{p.max_points}, last {p.last_points}/{p.max_points}")
        else:
            out.append("not checked yet" if e.workspace else "not started yet")
        if p.seconds >= 60:
            out.append(f" · {duration(p.seconds)} spent")
        out.append(" · enter opens it", "dim")
        return out

    # --- actions --------------------------------------------------------------

    def selected_id(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def action_open(self) -> None:
        sid = self.selected_id()
        if sid:
            self.lab.open_scenario(sid)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            self.lab.open_scenario(str(event.row_key.value))

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self._filter = event.value
        self._fill()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one(DataTable).focus()
        if not event.value:
            event.input.display = False

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.display = False
        self._filter = ""
        self._fill()
        self.query_one(DataTable).focus()

    def action_sort(self) -> None:
        self._sort = SORTS[(SORTS.index(self._sort) + 1) % len(SORTS)]
        self._fill()
        self.notify(f"sorted by {self._sort}", timeout=2)

    def action_results(self) -> None:
        self.lab.open_results()

    def action_exam(self) -> None:
        self.lab.open_exam()
