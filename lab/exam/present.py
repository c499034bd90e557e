"""Plain-text (and JSON) views of an exam for the terminal; the CLI prints these."""

from __future__ import annotations

import math
import textwrap
from datetime import datetime
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from lab.exam.grade import PASS_LINE, ExamResult, ExamReview, ItemScore, exam_result
from lab.exam.lifecycle import Replayed
from lab.exam.state import Exam, ExamItem, format_duration, iso
from lab.grading.report_text import escape_controls
from lab.present import node_lines, task_lines

if TYPE_CHECKING:
    from lab.service import Opened

PASS_PERCENT = int(PASS_LINE * 100)


def percent(f: Fraction, decimals: int = 1) -> str:
    """Rounded down, so a score just under the pass line never reads as the line."""
    scale = 10**decimals
    value = math.floor(f * 100 * scale) / scale
    return f"{value:.{decimals}f} %"


def share(exam: Exam, item: ExamItem) -> Fraction:
    """The item's part of the exam's score: its weight over all the items' weights."""
    total = sum(it.weight for it in exam.items)
    return Fraction(item.weight, total) if total else Fraction(0)


def share_text(exam: Exam, item: ExamItem) -> str:
    """`23 %`: the share, rounded (the scenarios' raw weights need not sum to 100)."""
    return f"{round(share(exam, item) * 100)} %"


def late_text(exam: Exam) -> str:
    """How long after the deadline the exam was submitted ("" when not after it)."""
    if exam.submitted_at is None or exam.submitted_at <= exam.deadline:
        return ""
    return f"submitted {format_duration(exam.submitted_at - exam.deadline)} after the time was up"


def local(t: datetime) -> str:
    return t.astimezone().strftime("%Y-%m-%d %H:%M")


def _tasks(n: int) -> str:
    return f"{n} task{'' if n == 1 else 's'}"


def clock_text(exam: Exam, now: datetime | None = None) -> str:
    """Where the exam's clock stands, in one line."""
    if exam.abandoned_at is not None:
        return f"abandoned at {local(exam.abandoned_at)}"
    if exam.submitted_at is not None:
        how = " when the time ran out" if exam.timed_out else ""
        return f"submitted{how} at {local(exam.submitted_at)}"
    if exam.time_up(now):
        return f"time is up (it ended at {local(exam.deadline)})"
    return f"{format_duration(exam.remaining(now))} left (ends at {local(exam.deadline)})"


def _item_line(exam: Exam, item: ExamItem, width: int) -> str:
    mark = ">" if item.index == exam.current and exam.running else " "
    flag = "F" if item.index in exam.flagged else " "
    scen = max(len(it.scenario) for it in exam.items)
    head = (
        f"  {mark}{flag} {item.number:>2}  {item.scenario:<{scen}}  {_tasks(len(item.tasks)):<8}"
        f"  {share_text(exam, item):>5}  "
    )
    room = max(10, width - len(head))
    title = item.title if len(item.title) <= room else item.title[: room - 1] + "…"
    return head + title


def status_text(exam: Exam, now: datetime | None = None, op: Opened | None = None,
                width: int = 100) -> str:  # fmt: skip
    """`cks-lab exam status`: the clock, the items (> current, F flagged), what to run.
    With `op` (the current item opened), its nodes are named."""
    lines = [
        f"Exam {exam.id}: {clock_text(exam, now)}",
        f"{len(exam.items)} items, {_tasks(exam.task_count)}, seed {exam.seed}; "
        f"{PASS_PERCENT} % of the weighted score passes.",
        "",
        *(_item_line(exam, it, width) for it in exam.items),
        "",
    ]
    if exam.submitted:
        r = exam_result(exam)
        verdict = "PASS" if r.passed else "FAIL"
        lines.append(f"Score: {percent(r.score)} — {verdict}. `cks-lab exam review` shows why.")
        return "\n".join(lines)
    if not exam.running:
        lines.append("Start another with `cks-lab exam start`.")
        return "\n".join(lines)
    item = exam.current_item
    nodes = f" (nodes: {', '.join(n.name for n in op.sc.model.cluster.nodes)})" if op else ""
    lines += [
        f"Working on item {item.number}: {item.scenario}, in {item.workspace}",
        "  cks-lab exam show             its tasks again",
        f"  cks-lab shell [NODE]          a shell on a node{nodes}",
        "  cks-lab node exec NODE -- CMD node commands (apparmor_parser, aa-status)",
        "  cks-lab exam replay           run the cluster again: logs are written, nothing graded",
        "  cks-lab exam goto N           another item (its number or scenario id)",
        "  cks-lab exam flag [N]         flag an item for later (`exam unflag` clears it)",
        "  cks-lab exam submit           end the exam and grade it",
    ]
    return "\n".join(lines)


def item_text(exam: Exam, op: Opened) -> str:
    """An item's briefing and tasks, and where to work on it (no grader, hints or
    solutions: the exam has none)."""
    m = op.sc.model
    item = next(it for it in exam.items if it.scenario == m.id)
    flagged = "  [flagged]" if item.index in exam.flagged else ""
    lines = [
        f"# Item {item.number} of {len(exam.items)}: {m.title}  ({m.id}; "
        f"{_tasks(len(m.tasks))}, {share_text(exam, item)} of the exam){flagged}",
        "",
        m.briefing.strip(),
        "",
    ]
    lines += task_lines(op.sc)
    lines += ["## Where to work", "", f"Workspace: {op.ws.root}"]
    lines += node_lines(op, "item")
    lines += [
        "",
        "`cks-lab shell [NODE]` opens a shell on a node, `cks-lab node exec NODE -- CMD` runs",
        "node commands. During the exam there is no check, hint or solution: `cks-lab exam",
        "replay` runs the cluster again (the logs are written; nothing is graded).",
        f"Time: {clock_text(exam)}. `cks-lab exam status` lists the items.",
    ]
    return "\n".join(lines)


def replay_text(r: Replayed) -> str:
    lines = [f"Replayed item {r.item.number} ({r.item.scenario}); nothing was graded."]
    if r.logs:
        lines.append("Logs written:")
        lines += [f"  {p}" for p in r.logs]
    lines.append("Files the nodes write (an audit log, Falco's file output) are on the nodes.")
    return "\n".join(lines)


# --- results ------------------------------------------------------------------------


def _points(s: ItemScore) -> str:
    if s.result is None:
        return "-"
    base = sum(t.baseline for t in s.tasks)
    untouched = f" (untouched {base})" if base else ""
    return f"{s.result.points}/{s.result.max_points}{untouched}"


def result_text(result: ExamResult) -> str:
    """The score and the verdict, one line per item (`exam submit`, the review's head)."""
    exam = result.exam
    verdict = "PASS" if result.passed else "FAIL"
    assert exam.submitted_at is not None
    used = min(exam.submitted_at, exam.deadline) - exam.started_at
    late = late_text(exam)
    lines = [
        f"Exam {exam.id}: {percent(result.score)} — {verdict} ({PASS_PERCENT} % passes)",
        f"{clock_text(exam).capitalize()}; {format_duration(used)} used of "
        f"{format_duration(exam.duration)}{f' ({late})' if late else ''}; seed {exam.seed}.",
        "",
    ]
    rows = [("#", "SCENARIO", "WEIGHT", "SCORE", "POINTS")]
    for s in result.items:
        rows.append(
            (str(s.item.number), s.item.scenario, share_text(exam, s.item), percent(s.fraction, 0),
             _points(s) if not s.error else f"not graded: {escape_controls(s.error)}")
        )  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        cells = [r[0].rjust(widths[0]), r[1].ljust(widths[1]), r[2].rjust(widths[2]),
                 r[3].rjust(widths[3]), r[4]]  # fmt: skip
        lines.append("  " + "  ".join(cells).rstrip())
    lines += [
        "",
        "A task's score counts only the work done: the points above what its untouched",
        "state earns. WEIGHT is each item's share of the exam's score.",
    ]
    return "\n".join(lines)


def _item_detail(exam: Exam, s: ItemScore, width: int) -> list[str]:
    it = s.item
    out = [
        f"## {it.number}. {it.title} ({it.scenario}): {percent(s.fraction, 0)}, "
        f"{share_text(exam, it)} of the exam"
    ]
    if s.error:
        return [*out, f"  not graded: {escape_controls(s.error)}"]
    assert s.result is not None
    by_id = {t.id: t for t in s.result.tasks}
    for t in s.tasks:
        base = f", untouched {t.baseline}" if t.baseline else ""
        out.append(
            f"Task {t.id}: {t.title} — {t.points}/{t.max_points} points{base}"
            f" → {percent(t.credit, 0)}"
        )
        for c in by_id[t.id].checks:
            mark = "PASS" if c.passed else "FAIL"
            line = f"  {mark}  {escape_controls(c.title)}: {escape_controls(c.full_explanation)}"
            out += textwrap.wrap(line, max(40, width), subsequent_indent=" " * 8,
                                 break_on_hyphens=False, break_long_words=False)  # fmt: skip
    return out


def review_text(rv: ExamReview, width: int = 100) -> str:
    """`cks-lab exam review`: the score, each check with its explanation, the solutions."""
    out = [result_text(rv.result), "", "# Your work, check by check", ""]
    for item in rv.items:
        out += [*_item_detail(rv.result.exam, item.score, width), ""]
    out += ["# Reference solutions", ""]
    for item in rv.items:
        it = item.score.item
        out += [f"# {it.number}. {it.title} ({it.scenario})", "", item.solution, ""]
    out.append(
        "Each item's workspace is yours to go on with: `cks-lab check -w WORKSPACE`, hints "
        "and solutions work there now."
    )
    return "\n".join(out)


def review_json(rv: ExamReview) -> dict[str, Any]:
    """`cks-lab exam review --json` (format 1)."""
    r, exam = rv.result, rv.result.exam
    return {
        "format": 1,
        "exam": exam.id,
        "seed": exam.seed,
        "started_at": iso(exam.started_at),
        "deadline": iso(exam.deadline),
        "submitted_at": iso(r.submitted_at),
        "timed_out": exam.timed_out,
        "late_seconds": max(0, int((r.submitted_at - exam.deadline).total_seconds())),
        "duration_seconds": int(exam.duration.total_seconds()),
        "score": round(float(r.score), 4),
        "pass_line": float(PASS_LINE),
        "passed": r.passed,
        "items": [
            {
                "number": i.score.item.number,
                "scenario": i.score.item.scenario,
                "title": i.score.item.title,
                "domain": i.score.item.domain,
                "weight": i.score.item.weight,
                "share": round(float(share(exam, i.score.item)), 4),
                "workspace": str(i.score.item.workspace),
                "score": round(float(i.score.fraction), 4),
                "error": i.score.error or None,
                "tasks": [
                    {"id": t.id, "title": t.title, "points": t.points,
                     "max_points": t.max_points, "untouched_points": t.baseline,
                     "passed": t.passed, "score": round(float(t.credit), 4)}
                    for t in i.score.tasks
                ],  # fmt: skip
                "result": i.score.result.to_dict() if i.score.result else None,
                "solution": i.solution,
            }
            for i in rv.items
        ],
    }
