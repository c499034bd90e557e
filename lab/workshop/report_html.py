"""The class report as one self-contained HTML page.

Inline CSS (light and dark through prefers-color-scheme) and an inline SVG bar
chart; no script, no external resource, so it opens offline, in a mail, or from
a CI artifact. Every value from a result file goes through `esc`.
"""

from __future__ import annotations

from html import escape

from lab.workshop.report import (
    ClassReport,
    Learner,
    TaskColumn,
    TaskStats,
    duration,
    number,
    percent,
    tasks_note,
)

CSS = """\
:root {
  color-scheme: light dark;
  --bg: #ffffff; --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --head: #f6f8fa;
  --pass: #1a7f37; --pass-bg: #dafbe1; --fail: #cf222e; --fail-bg: #ffebe9;
  --bar: #0969da; --track: #e6eaef; --none: #8c959f;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d1117; --fg: #e6edf3; --muted: #9198a1; --line: #3d444d; --head: #151b23;
    --pass: #3fb950; --pass-bg: #12261e; --fail: #ff7b72; --fail-bg: #2d1619;
    --bar: #4493f8; --track: #262c36; --none: #6e7681;
  }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 28px 24px 48px; }
h1 { font-size: 1.7em; margin: 0 0 4px; }
h2 { font-size: 1.2em; margin: 36px 0 10px; padding-bottom: 4px;
  border-bottom: 1px solid var(--line); }
p.lead { color: var(--muted); margin: 0 0 18px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 16px; min-width: 140px; }
.card b { display: block; font-size: 1.5em; }
.card span { color: var(--muted); font-size: .9em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: .95em; }
th, td { border-bottom: 1px solid var(--line); padding: 6px 10px; text-align: left;
  vertical-align: top; }
th { background: var(--head); font-weight: 600; }
th.scenario { text-align: center; border-left: 2px solid var(--bg); font-weight: normal;
  color: var(--muted); font-size: .9em; }
th small, td small { display: block; color: var(--muted); font-weight: normal; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.pass { color: var(--pass); background: var(--pass-bg); }
td.fail { color: var(--fail); background: var(--fail-bg); }
td.none { color: var(--none); text-align: center; }
figure { margin: 0; overflow-x: auto; }
figcaption { color: var(--muted); font-size: .9em; margin-top: 4px; }
svg.chart { width: 100%; height: auto; max-width: 960px; min-width: 640px; display: block; }
svg.chart text { fill: var(--fg); font: 13px system-ui, -apple-system, "Segoe UI", sans-serif; }
svg.chart .track { fill: var(--track); }
svg.chart .bar { fill: var(--bar); }
svg.chart .grid { stroke: var(--line); }
svg.chart text.muted { fill: var(--muted); }
details { border-bottom: 1px solid var(--line); padding: 6px 0; }
summary { cursor: pointer; }
ul.fails { margin: 6px 0 4px; }
ul.fails li { margin: 3px 0; }
.footer { color: var(--muted); font-size: .85em; margin-top: 36px; }
"""

# Chart geometry (SVG user units; the SVG scales to the page width).
LABEL_W, BAR_W, VALUE_W, ROW_H, BAR_H, TOP = 300, 420, 230, 30, 18, 24
MAX_LABEL = 40


def esc(text: str) -> str:
    return escape(text, quote=True)


def _short(text: str, n: int = MAX_LABEL) -> str:
    return text if len(text) <= n else text[: n - 1] + "\u2026"


def chart_svg(stats: list[TaskStats]) -> str:
    """Horizontal bars: the share of learners who passed each task."""
    width = LABEL_W + BAR_W + VALUE_W
    height = TOP + ROW_H * max(len(stats), 1) + 8
    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" '
        'aria-label="Share of learners who passed each task">',
        "<title>Share of learners who passed each task</title>",
    ]
    for pct in (0, 25, 50, 75, 100):
        x = LABEL_W + BAR_W * pct / 100
        out.append(
            f'<line class="grid" x1="{x:g}" y1="{TOP - 6}" x2="{x:g}" y2="{height - 6}" '
            'stroke="#d1d9e0" stroke-width="1"/>'
        )
        out.append(
            f'<text class="muted" x="{x:g}" y="{TOP - 10}" text-anchor="middle" '
            f'fill="#59636e">{pct}%</text>'
        )
    for i, s in enumerate(stats):
        y = TOP + i * ROW_H + (ROW_H - BAR_H) / 2
        mid = y + BAR_H / 2 + 4.5
        tip = (
            f"{s.task.ref}: {s.task.title} \u2014 {s.passed} of {s.graded} passed, "
            f"mean {number(s.mean_points)}/{s.max_points}"
        )
        out.append(f'<g class="task" data-task="{esc(s.task.ref)}">')
        out.append(f"<title>{esc(tip)}</title>")
        out.append(
            f'<text x="{LABEL_W - 10}" y="{mid:g}" text-anchor="end" fill="#1f2328">'
            f"{esc(_short(s.task.ref))}</text>"
        )
        out.append(
            f'<rect class="track" x="{LABEL_W}" y="{y:g}" width="{BAR_W}" height="{BAR_H}" '
            'rx="3" fill="#e6eaef"/>'
        )
        out.append(
            f'<rect class="bar" x="{LABEL_W}" y="{y:g}" width="{BAR_W * s.pass_rate:g}" '
            f'height="{BAR_H}" rx="3" fill="#0969da" data-rate="{s.pass_rate:.4f}"/>'
        )
        out.append(
            f'<text x="{LABEL_W + BAR_W + 10}" y="{mid:g}" fill="#1f2328">'
            f"{percent(s.pass_rate)} passed ({s.passed}/{s.graded}), "
            f"mean {percent(s.mean_score)}</text>"
        )
        out.append("</g>")
    if not stats:
        out.append(f'<text x="{LABEL_W}" y="{TOP + 18}" fill="#59636e">no tasks graded</text>')
    out.append("</svg>")
    return "\n".join(out)


def _score_cell(lr: Learner, col: TaskColumn) -> str:
    row = lr.tasks.get(col.key)
    if row is None:
        return '<td class="none" title="no result">\u2013</td>'
    mark, cls = ("\u2713 pass", "pass") if row.passed else ("\u2717 fail", "fail")
    return f'<td class="num {cls}">{row.points}/{row.max_points} <small>{mark}</small></td>'


def _scores(report: ClassReport) -> list[str]:
    # two header rows: each scenario over its tasks, then the tasks' ids
    out = ['<div class="scroll"><table id="scores">', '<thead><tr><th rowspan="2">Learner</th>']
    groups: dict[str, list[TaskColumn]] = {}
    for col in report.tasks:
        groups.setdefault(col.scenario, []).append(col)
    for sid, cols in groups.items():
        out.append(
            f'<th class="scenario" colspan="{len(cols)}" title="{esc(cols[0].scenario_title)}">'
            f"{esc(sid)}</th>"
        )
    time_th = '<th class="num" rowspan="2">Time</th>' if report.timed else ""
    out.append(f'<th class="num" rowspan="2">Total</th>{time_th}</tr><tr>')
    out.extend(
        f'<th class="num task" title="{esc(col.title)}">{esc(col.id)}</th>' for col in report.tasks
    )
    out.append("</tr></thead><tbody>")
    for lr in report.learners:
        out.append(f'<tr><th scope="row">{esc(lr.name)}</th>')
        out.extend(_score_cell(lr, col) for col in report.tasks)
        time_td = f'<td class="num">{esc(duration(lr.seconds))}</td>' if report.timed else ""
        out.append(
            f'<td class="num">{lr.points}/{lr.max_points} <small>{percent(lr.score)}'
            f"{esc(tasks_note(lr))}</small></td>{time_td}</tr>"
        )
    out.append("</tbody></table></div>")
    return out


def _tasks(report: ClassReport) -> list[str]:
    out = [
        '<div class="scroll"><table id="tasks"><thead><tr><th>Task</th>'
        '<th class="num">Passed</th><th class="num">Mean points</th>'
        '<th class="num">Mean score</th></tr></thead><tbody>'
    ]
    for s in report.stats:
        out.append(
            f"<tr><td>{esc(s.task.title)}<small>{esc(s.task.ref)}</small></td>"
            f'<td class="num">{s.passed}/{s.graded} <small>{percent(s.pass_rate)}</small></td>'
            f'<td class="num">{number(s.mean_points)}/{s.max_points}</td>'
            f'<td class="num">{percent(s.mean_score)}</td></tr>'
        )
    out.append("</tbody></table></div>")
    return out


def _failed(report: ClassReport) -> list[str]:
    if not report.failed_checks:
        return ["<p>Every check passed for every learner.</p>"]
    out = [
        '<div class="scroll"><table id="failed"><thead><tr><th class="num">Failed by</th>'
        "<th>Check</th><th>Example</th></tr></thead><tbody>"
    ]
    for f in report.failed_checks:
        out.append(
            f'<tr><td class="num">{f.failed} of {f.graded}</td>'
            f"<td>{esc(f.title)}<small>{esc(f.task.ref)} \u00b7 {esc(f.type)}</small></td>"
            f"<td><small>{esc(f.example_learner)}:</small>{esc(f.example)}</td></tr>"
        )
    out.append("</tbody></table></div>")
    return out


def _learners(report: ClassReport) -> list[str]:
    """Per learner, the checks they failed, folded (<details> needs no script)."""
    out = []
    for lr in report.learners:
        fails = [(row, c) for row in lr.tasks.values() for c in row.checks if not c.passed]
        out.append(
            f"<details><summary>{esc(lr.name)} \u2014 {lr.points}/{lr.max_points}, "
            f"{lr.passed_tasks} of {lr.task_count} task(s) passed, "
            f"{len(fails)} failed check(s)</summary>"
        )
        if fails:
            out.append('<ul class="fails">')
            out.extend(
                f"<li>{esc(c.title)} <small>{esc(row.scenario)} / {esc(row.id)}: "
                f"{esc(c.explanation)}</small></li>"
                for row, c in fails
            )
            out.append("</ul>")
        files = ", ".join(lr.files)
        out.append(f"<small>from {esc(files)}</small></details>")
    return out


def render_html(report: ClassReport, title: str = "Workshop report") -> str:
    passed_all = sum(1 for lr in report.learners if lr.tasks and lr.passed_tasks == lr.task_count)
    cards = [
        (str(len(report.learners)), "learners"),
        (str(len(report.tasks)), f"tasks in {len(report.scenarios)} scenario(s)"),
        (percent(report.mean_score), "class mean score"),
        (f"{passed_all}", "passed every task"),
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="color-scheme" content="light dark">',
        f'<meta name="generator" content="{esc(report.tool or "cks-lab")}">',
        f"<title>{esc(title)}</title>",
        f"<style>\n{CSS}</style>",
        "</head>",
        "<body><main>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="lead">From {report.files} result file(s) of '
        "<code>cks-lab grade --json</code>.</p>",
        '<div class="cards">',
        *(f'<div class="card"><b>{esc(v)}</b><span>{esc(k)}</span></div>' for v, k in cards),
        "</div>",
        "<h2>Pass rate per task</h2>",
        "<figure>",
        chart_svg(report.stats),
        "<figcaption>Share of the learners with a result for the task who passed it "
        "(every check), and their mean score.</figcaption>",
        "</figure>",
        "<h2>Scores</h2>",
        *_scores(report),
        "<h2>Tasks</h2>",
        *_tasks(report),
        "<h2>Checks most often failed</h2>",
        *_failed(report),
        "<h2>Learners</h2>",
        *_learners(report),
        f'<p class="footer">Made by {esc(report.tool or "cks-lab")}. A total is over every '
        "task of the class; a task without a result (\u2013) counts 0."
        + (
            " Time is the learner's time on the scenarios when the results record it, "
            "else \u2013."
            if report.timed
            else ""
        )
        + "</p>",
        "</main></body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"
