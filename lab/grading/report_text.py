"""Plain-text report for the terminal."""

from __future__ import annotations

from lab.grading.results import ScenarioResult


def render_text(result: ScenarioResult, *, color: bool = False) -> str:
    def mark(ok: bool) -> str:
        text = "PASS" if ok else "FAIL"
        if not color:
            return text
        return f"\x1b[32m{text}\x1b[0m" if ok else f"\x1b[31m{text}\x1b[0m"

    lines = [f"{result.title} ({result.scenario}) — {result.backend} backend"]
    for task in result.tasks:
        penalty = f", hints -{task.hint_penalty}" if task.hint_penalty else ""
        lines.append("")
        lines.append(
            f"{mark(task.passed)} task {task.id}: {task.title}  "
            f"[{task.points}/{task.max_points}{penalty}]"
        )
        for c in task.checks:
            lines.append(f"  {mark(c.passed)} {c.title}")
            if not c.passed:
                lines.append(f"       {c.explanation}")
    for note in result.notes:
        lines.append(f"note: {note}")
    lines.append("")
    verdict = "all checks pass" if result.passed else "some checks fail"
    lines.append(f"Score: {result.points}/{result.max_points} ({result.score:.0%}) — {verdict}")
    return "\n".join(lines)
