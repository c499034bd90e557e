"""Plain-text views of scenarios for the terminal (the CLI prints these)."""

from __future__ import annotations

import difflib

from lab.changes import Change
from lab.grading.report_text import escape_controls
from lab.learner_diff import FileDiff
from lab.scenarios.loader import LoadedScenario
from lab.scenarios.model import Task
from lab.service import HintTaken, Opened, Status


def scenario_summaries(scenarios: list[LoadedScenario]) -> list[dict[str, object]]:
    return [
        {
            "id": m.id,
            "title": m.title,
            "skills": list(m.skills),
            "difficulty": m.difficulty,
            "minutes": m.minutes,
            "weight": m.weight,
        }
        for m in (sc.model for sc in scenarios)
    ]


def scenario_table(scenarios: list[LoadedScenario], width: int = 80) -> str:
    """One line per scenario; the title goes last and is cut to fit `width`."""
    rows = [("ID", "SKILL", "LEVEL", "TIME", "WEIGHT", "TITLE")]
    for sc in scenarios:
        m = sc.model
        rows.append(
            (m.id, ",".join(m.skills), m.difficulty, f"{m.minutes}m", f"{m.weight}%", m.title)
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for r in rows:
        head = "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  "
        room = max(10, width - len(head))
        title = r[-1] if len(r[-1]) <= room else r[-1][: room - 1] + "…"
        lines.append(head + title)
    return "\n".join(lines)


def briefing(op: Opened, created: bool) -> str:
    m = op.sc.model
    ws = op.ws.root
    lines = [
        f"# {m.title}  ({m.id}; {m.difficulty}, about {m.minutes} minutes, weight {m.weight}%)",
        "",
        m.briefing.strip(),
        "",
    ]
    lines += task_lines(op.sc)
    lines.append("## Where to work")
    lines.append("")
    lines.append(("Workspace created" if created else "Resuming the workspace") + f" at {ws}")
    lines += node_lines(op, "scenario")
    lines += [
        "",
        "Then: `cks-lab check` to run the attack again and grade;"
        " `cks-lab hint`, `cks-lab solution`, `cks-lab reset`.",
    ]
    return "\n".join(lines)


def task_lines(sc: LoadedScenario) -> list[str]:
    """Each task's title and statement, as the briefing and the exam's items show them."""
    lines: list[str] = []
    for i, task in enumerate(sc.model.tasks, 1):
        lines += [f"## Task {i}: {task.title}", "", task.statement.strip(), ""]
    return lines


def node_lines(op: Opened, what: str) -> list[str]:
    """Where each node's `/` is in the workspace, and the files the scenario is about."""
    m = op.sc.model
    lines = [f"  node {n.name} ({n.role}): {op.ws.node_root(n.name)}/" for n in m.cluster.nodes]
    lines += ["", f"Each node folder is that node's `/`. The files this {what} is about:"]
    lines += [f"  {op.ws.node_root(f.node)}{f.path}" for f in m.setup.files]
    return lines


def hint_text(h: HintTaken) -> str:
    cost = f"-{h.hint.penalty} point{'s' if h.hint.penalty != 1 else ''}"
    head = f"Hint {h.number} for task {h.task.id!r} ({cost})"
    if not h.new:
        head += " — shown before, no new penalty"
    more = f"{h.remaining} more hint(s) for this task." if h.remaining else "No more hints."
    return f"{head}:\n{h.hint.text.strip()}\n\n{more}"


def _text(data: bytes) -> list[str]:
    return data.decode("utf-8", errors="replace").splitlines()


def solution_text(op: Opened, tasks: list[Task], applied: bool) -> str:
    """Each solution file as a diff against the scenario's starting file (the
    whole file when there is none), and a file shared by tasks only once."""
    seeds = {(f.node, f.path): op.sc.node_file_bytes(f) for f in op.sc.model.setup.files}
    shown: dict[tuple[str, str], str] = {}
    out: list[str] = []
    for t in tasks:
        out.append(f"## Solution for task {t.id!r}: {t.title}")
        if t.solution.notes:
            out += ["", t.solution.notes.strip()]
        for f in t.solution.files:
            key = (f.node, f.path)
            if key in shown:
                out += ["", f"node {f.node}: {f.path} — the same file as task {shown[key]!r}"]
                continue
            shown[key] = t.id
            new = op.sc.node_file_bytes(f)
            if key in seeds:
                diff = difflib.unified_diff(
                    _text(seeds[key]), _text(new), f"{f.path} (start)", f.path, lineterm=""
                )
                out += ["", f"node {f.node}: changes to {f.path}", "```diff", *diff, "```"]
            else:
                out += ["", f"node {f.node}: {f.path}", "```", *_text(new), "```"]
        if t.solution.commands:
            out += ["", "Commands:"] + [f"  {c}" for c in t.solution.commands]
        if t.solution.node_exec:
            out += ["", "On the nodes, in this lab (the exam's form in brackets):"]
            for c in t.solution.node_exec:
                out += [f"  cks-lab node exec {c.node} -- {c.command}",
                        f"      (on the exam: ssh {c.node}, then {c.command})"]
        out.append("")
    if applied:
        ran = any(t.solution.node_exec for t in tasks)
        out.append(
            "The solution files were written into the workspace (your files were backed up "
            f"under {op.ws.lab_dir / 'backups'})"
            + (", and the node commands were run." if ran else ".")
        )
    return "\n".join(out).rstrip()


def status_text(st: Status) -> str:
    m = st.scenario.model
    lines = [f"{m.title} ({m.id}) — workspace {st.workspace}"]
    if st.attempts:
        last = st.attempts[-1]
        best = max(int(str(a.get("points", 0))) for a in st.attempts)
        lines.append(
            f"checks run: {len(st.attempts)}; last {last.get('points')}/{last.get('max_points')}"
            f" at {last.get('at')}; best {best}/{last.get('max_points')}"
        )
    else:
        lines.append("not checked yet: run `cks-lab check`")
    for task in m.tasks:
        taken = st.hints.get(task.id, 0)
        n = st.penalties.get(task.id, 0)
        cost = f" (costing {n} point{'' if n == 1 else 's'})" if taken else ""
        seen = ", solution viewed" if task.id in st.solutions_viewed else ""
        lines.append(f"  task {task.id}: hints {taken}/{len(task.hints)}{cost}{seen}")
    return "\n".join(lines)


def _shown(line: str) -> str:
    # A learner's file may hold ESC sequences; a tab is shown, as YAML refuses one.
    return escape_controls(line.replace("\t", "\\t"))


def diff_text(diffs: list[FileDiff]) -> str:
    """`cks-lab diff`: each file the solution writes, as a diff from yours to it."""
    if not diffs:
        return "The reference solution writes no files (`cks-lab solution` shows what it does)."
    out = ["Your files against the reference solution (- yours, + the solution's):"]
    for d in diffs:
        tasks = ", ".join(d.tasks)
        head = f"node {d.node}: {_shown(d.path)} (task{'s' if len(d.tasks) > 1 else ''} {tasks})"
        if d.same:
            out += ["", f"{head} — the same as the solution's"]
        elif d.note:
            missing = "you have no such file; " if d.missing else ""
            out += ["", f"{head} — {missing}{_shown(d.note)}"]
        else:
            what = "you have no such file; the solution's" if d.missing else "yours -> solution's"
            out += ["", f"{head} — {what}:", "```diff", *map(_shown, d.lines), "```"]
    return "\n".join(out)


def _points(n: int) -> str:
    return f"{n:+d} point{'' if abs(n) == 1 else 's'}"


def changes_text(changes: list[Change], delta: int | None) -> str:
    """What changed since the previous check; "" when there was none (delta None)."""
    if delta is None:
        return ""
    head = f"Since the previous check: {_points(delta)}"
    if not changes:
        why = " (the difference is hint penalties)" if delta else ""
        return head + f"; no check changed{why}."
    lines = [head]
    for c in changes:
        what = f"{_shown(c.check)} (task {c.task})" if c.check else f"task {c.task}"
        lines.append(f"  {'now passing' if c.now_passed else 'now failing'}: {what}")
    return "\n".join(lines)
