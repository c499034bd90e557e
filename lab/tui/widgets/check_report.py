"""A check's result as the learner reads it: score, root causes, each check."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from lab.grading.results import ScenarioResult


def render_result(result: ScenarioResult, changes: str = "") -> RenderableType:
    pct = round(100 * result.score)
    verdict = "every task passes" if result.passed else "some checks fail"
    head = Text.assemble(
        ("Score ", "bold"),
        (
            f"{result.points}/{result.max_points} ({pct}%)",
            "bold green" if result.passed else "bold red",
        ),
        f" — {verdict}",
    )
    parts: list[RenderableType] = [head]
    if changes:
        parts.append(Text(changes, style="italic"))
    causes = result.causes
    for cause in causes:
        parts += [Text(""), Text.assemble(("why: ", "bold yellow"), cause)]
    for task in result.tasks:
        parts.append(Text(""))
        mark, style = ("✔ PASS", "green") if task.passed else ("✘ FAIL", "red")
        pen = f", hints -{task.hint_penalty}" if task.hint_penalty else ""
        title = Table.grid(padding=(0, 1))  # a grid keeps wrapped lines indented
        title.add_column(no_wrap=True)
        title.add_column(ratio=1)
        title.add_row(
            Text(mark, style=f"bold {style}"),
            Text.assemble(task.title, " ", (f"[{task.points}/{task.max_points}{pen}]", "dim")),
        )
        parts.append(title)
        checks = Table.grid(padding=(0, 1))
        checks.add_column(width=3, justify="right", no_wrap=True)
        checks.add_column(ratio=1)
        for c in task.checks:
            cm, cs = ("✔", "green") if c.passed else ("✘", "red")
            body = Text(c.title)
            if not c.passed:
                body.append("\n" + c.explanation + (" (why: above)" if c.cause else ""), "italic")
            checks.add_row(Text(cm, style=cs), body)
        parts.append(checks)
    for note in result.notes:
        parts += [Text(""), Text.assemble(("note: ", "bold"), note)]
    return Group(*parts)


class CheckReport(Static):
    """Empty until the first check of this session; then the last result."""

    DEFAULT_CSS = "CheckReport { height: auto; }"

    def show(self, result: ScenarioResult, changes: str = "") -> None:
        self.update(render_result(result, changes))

    def show_text(self, text: str, style: str = "") -> None:
        self.update(Text(text, style=style))
