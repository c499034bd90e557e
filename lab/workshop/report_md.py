"""The class report as Markdown (GitHub-flavoured tables).

Every value from a result file is escaped: it cannot close a table cell, start
a link or emphasis, or become raw HTML (Markdown renderers pass HTML through).
"""

from __future__ import annotations

import re

from lab.workshop.report import (
    ClassReport,
    Learner,
    TaskColumn,
    duration,
    number,
    percent,
    tasks_note,
)

# In a table cell only these mean something: code, emphasis, links, the cell's end,
# strike-through; `<` and `&` (HTML, entities) become entities.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def md(text: str) -> str:
    """Text safe inside a Markdown table cell: one line, no markup, no HTML."""
    text = " ".join(text.split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _cell(lr: Learner, col: TaskColumn) -> str:
    row = lr.tasks.get(col.key)
    if row is None:
        return "\u2013"
    return f"{row.points}/{row.max_points} {'pass' if row.passed else '**fail**'}"


def render_markdown(report: ClassReport, title: str = "Workshop report") -> str:
    n_sc = len(report.scenarios)
    time_head = ["Time"] if report.timed else []  # no result records time: no column
    lines = [
        f"# {md(title)}",
        "",
        f"{len(report.learners)} learner(s), {n_sc} scenario(s), {len(report.tasks)} task(s), "
        f"from {report.files} result file(s); class mean score {percent(report.mean_score)}."
        + (f" Made by {md(report.tool)}." if report.tool else ""),
        "",
        "## Scores",
        "",
        "A cell is the task's points/max and whether it passed; \u2013 means no result "
        "(0 points: a total is over every task of the class).",
        "",
        _row(["Learner", *(md(c.ref) for c in report.tasks), "Total", *time_head]),
        _row(["---", *("---:" for _ in report.tasks), "---:", *("---:" for _ in time_head)]),
    ]
    for lr in report.learners:
        total = f"{lr.points}/{lr.max_points} ({percent(lr.score)})" + tasks_note(lr)
        times = [duration(lr.seconds)] if report.timed else []
        lines.append(_row([md(lr.name), *(_cell(lr, c) for c in report.tasks), total, *times]))
    lines += [
        "",
        "## Tasks",
        "",
        _row(["Task", "Title", "Passed", "Mean points", "Mean score"]),
        _row(["---", "---", "---:", "---:", "---:"]),
    ]
    for s in report.stats:
        lines.append(
            _row(
                [
                    md(s.task.ref),
                    md(s.task.title),
                    f"{s.passed}/{s.graded} ({percent(s.pass_rate)})",
                    f"{number(s.mean_points)}/{s.max_points}",
                    percent(s.mean_score),
                ]
            )
        )
    lines += ["", "## Checks most often failed", ""]
    if not report.failed_checks:
        lines.append("Every check passed for every learner.")
    else:
        lines += [
            _row(["Failed by", "Check", "Task", "Example explanation"]),
            _row(["---:", "---", "---", "---"]),
        ]
        for f in report.failed_checks:
            lines.append(
                _row(
                    [
                        f"{f.failed} of {f.graded}",
                        md(f.title),
                        md(f.task.ref),
                        f"{md(f.example_learner)}: {md(f.example)}",
                    ]
                )
            )
    return "\n".join(lines) + "\n"
