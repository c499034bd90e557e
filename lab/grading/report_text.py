"""Plain-text report for the terminal."""

from __future__ import annotations

import textwrap

from lab.grading.results import ScenarioResult


def render_text(result: ScenarioResult, *, color: bool = False, width: int = 100) -> str:
    def mark(ok: bool) -> str:
        text = "PASS" if ok else "FAIL"
        if not color:
            return text
        return f"\x1b[32m{text}\x1b[0m" if ok else f"\x1b[31m{text}\x1b[0m"

    def wrap(text: str, indent: str, first: str | None = None) -> list[str]:
        return textwrap.wrap(
            text,
            width=max(40, width - 1),
            initial_indent=indent if first is None else first,
            subsequent_indent=indent,
            break_on_hyphens=False,
            break_long_words=False,
        )

    lines = [f"{result.title} ({result.scenario}) — {result.backend} backend"]
    # Root causes and notes first: they explain many of the failures below.
    for cause in result.causes:
        lines += ["", *wrap(cause, "    ", "why: ")]
    for note in result.notes:
        lines += ["", *wrap(note, "      ", "note: ")]
    for task in result.tasks:
        penalty = f", hints -{task.hint_penalty}" if task.hint_penalty else ""
        lines.append("")
        head = f"task {task.id}: {task.title}  [{task.points}/{task.max_points}{penalty}]"
        lines.extend(wrap(head, "     ", f"{mark(task.passed)} "))
        for c in task.checks:
            lines.extend(wrap(c.title, "       ", f"  {mark(c.passed)} "))
            if not c.passed:
                tail = " (why: above)" if c.cause else ""
                lines.extend(wrap(c.explanation + tail, "       "))
    lines.append("")
    verdict = "all checks pass" if result.passed else "some checks fail"
    lines.append(f"Score: {result.points}/{result.max_points} ({result.score:.0%}) — {verdict}")
    return "\n".join(lines)
