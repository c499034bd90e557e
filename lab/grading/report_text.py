"""Plain-text report for the terminal."""

from __future__ import annotations

import textwrap

from lab.grading.results import ScenarioResult


def _escape(cp: int) -> str:
    return f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}"


# Titles, explanations and causes quote what a learner wrote (flag values, paths):
# control characters there must not reach the terminal as such (ESC sequences
# can rewrite the screen). C0, DEL and C1 controls, the bidirectional overrides
# ("Trojan Source") and lone surrogates (undecodable file names) are shown
# escaped, as `\x1b`; tab, newline and CR are plain whitespace.
_ESCAPES = {
    cp: _escape(cp)
    for cp in [
        *range(0x00, 0x20),
        *range(0x7F, 0xA0),
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
        *range(0xD800, 0xE000),
    ]
}
_ESCAPES.update({ord("\t"): " ", ord("\n"): " ", ord("\r"): " "})
_KEEP_LINES = {**_ESCAPES, ord("\n"): "\n"}


def escape_controls(text: str, *, keep_newlines: bool = False) -> str:
    r"""`text` with its control characters written as escapes (`\x1b`)."""
    return text.translate(_KEEP_LINES if keep_newlines else _ESCAPES)


def render_text(result: ScenarioResult, *, color: bool = False, width: int = 100) -> str:
    def mark(ok: bool) -> str:
        text = "PASS" if ok else "FAIL"
        if not color:
            return text
        return f"\x1b[32m{text}\x1b[0m" if ok else f"\x1b[31m{text}\x1b[0m"

    def wrap(text: str, indent: str, first: str | None = None) -> list[str]:
        return textwrap.wrap(
            esc(text),
            width=max(40, width - 1),
            initial_indent=indent if first is None else first,
            subsequent_indent=indent,
            break_on_hyphens=False,
            break_long_words=False,
        )

    esc = escape_controls
    lines = [esc(f"{result.title} ({result.scenario}) — {result.backend} backend")]
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
        causes = {c.cause for c in task.checks if not c.passed}
        wholly = len(task.checks) > 1 and not any(c.passed for c in task.checks)
        if wholly and len(causes) == 1 and None not in causes:
            # One root cause fails everything: say it once, not per check.
            summary = f"all {len(task.checks)} checks fail for the reason above (why:)"
            lines.extend(wrap(summary, "       ", f"  {mark(False)} "))
            continue
        for c in task.checks:
            lines.extend(wrap(c.title, "       ", f"  {mark(c.passed)} "))
            if not c.passed:
                tail = " (why: above)" if c.cause else ""
                lines.extend(wrap(c.explanation + tail, "       "))
    lines.append("")
    verdict = "all checks pass" if result.passed else "some checks fail"
    lines.append(f"Score: {result.points}/{result.max_points} ({result.score:.0%}) — {verdict}")
    return "\n".join(lines)
