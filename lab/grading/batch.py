"""Grading several scenarios in one run (`cks-lab grade A B ...`, `--manifest FILE`).

The manifest names what to grade; it comes from a course repository, that is
from learners, so every entry is checked before anything is graded: a known
scenario id, listed once, and a workspace folder inside the manifest's folder
(no `..`, no absolute path, no symlink out). Errors carry the manifest's file
and line. The summaries (a line per scenario for a CI log, Markdown for a job
page) are made from the JSON report, so they say exactly what it says.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.grading.report_text import escape_controls
from lab.yamlsafe import Document, Path_, load_file

MANIFEST_KEYS = ("learner", "scenarios")
ENTRY_KEYS = ("scenario", "workspace")
MAX_LEARNER = 200


@dataclass(frozen=True)
class Target:
    """One scenario to grade, and the work to grade it on."""

    scenario: str
    workspace: Path | None  # the folder graded; None: the untouched scenario
    shown: str | None = None  # how reports name that folder (as the manifest wrote it)
    file: str | None = None  # the manifest that listed it, and where, for errors
    line: int | None = None

    def located(self, err: LabError) -> LabError:
        """`err` placed at this target's manifest entry (unchanged without a manifest)."""
        if self.file is None:
            return err
        return LabError(str(err), file=self.file, line=self.line)


@dataclass(frozen=True)
class Manifest:
    path: Path
    learner: str | None
    targets: list[Target]


def _item(path: Path_) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


class _Reader:
    def __init__(self, path: Path, doc: Document) -> None:
        self.path, self.doc = path, doc

    def error(self, at: Path_, message: str) -> LabError:
        return LabError(
            message, file=str(self.path), line=self.doc.line_of(at), item=_item(at) or None
        )

    def text(self, at: Path_, value: Any, what: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.error(at, f"{what} must be a non-empty string, not {value!r}")
        return value


def load_manifest(path: Path, known: Collection[str]) -> Manifest:
    """Read and check a manifest: a list of `{scenario: ID, workspace: PATH}`, or a
    mapping with that list as `scenarios:` and an optional `learner: NAME`.

    `known` are the catalog's scenario ids. A relative workspace is taken from the
    manifest's folder and must stay inside it; without one, the untouched scenario
    is graded.
    """
    doc = load_file(path)  # located YAML (and JSON) errors, size limit, no binary
    r = _Reader(path, doc)
    data, learner = doc.data, None
    base: Path_ = ()
    if isinstance(data, dict):
        for key in data:
            if key not in MANIFEST_KEYS:
                raise r.error((key,), f"unknown key {key!r} (a manifest has: learner, scenarios)")
        if "scenarios" not in data:
            raise r.error((), "no `scenarios:` list (entries of {scenario: ID, workspace: PATH})")
        if data.get("learner") is not None:
            learner = r.text(("learner",), data["learner"], "learner").strip()
            if len(learner) > MAX_LEARNER:
                raise r.error(("learner",), f"learner is longer than {MAX_LEARNER} characters")
        data, base = data["scenarios"], ("scenarios",)
    if not isinstance(data, list):
        raise r.error(
            base,
            "expected a list of {scenario: ID, workspace: PATH} (or a mapping with "
            "`learner:` and that list as `scenarios:`)",
        )
    if not data:
        raise r.error(base, "the manifest lists no scenarios")
    folder = path.parent
    first: dict[str, int | None] = {}
    targets = []
    for i, entry in enumerate(data):
        at: Path_ = (*base, i)
        if not isinstance(entry, dict):
            raise r.error(at, f"expected {{scenario: ID, workspace: PATH}}, not {entry!r}")
        for key in entry:
            if key not in ENTRY_KEYS:
                raise r.error(
                    (*at, key), f"unknown key {key!r} (an entry has: scenario, workspace)"
                )
        if "scenario" not in entry:
            raise r.error(at, "no `scenario:` id in this entry")
        sid = r.text((*at, "scenario"), entry["scenario"], "scenario")
        _check_id(r, (*at, "scenario"), sid, known)
        line = doc.line_of(at)
        if sid in first:
            where = f" (first at line {first[sid]})" if first[sid] else ""
            raise r.error((*at, "scenario"), f"scenario {sid!r} is listed twice{where}")
        first[sid] = line
        ws, shown = None, None
        if entry.get("workspace") is not None:
            value = r.text((*at, "workspace"), entry["workspace"], "workspace")
            ws, shown = _workspace(r, (*at, "workspace"), value, folder)
        targets.append(Target(sid, ws, shown, str(path), line))
    return Manifest(path, learner, targets)


def _check_id(r: _Reader, at: Path_, sid: str, known: Collection[str]) -> None:
    if "/" in sid or "\\" in sid:
        raise r.error(at, f"{sid!r} is a path, not a scenario id (see `cks-lab list`)")
    if sid not in known:
        raise r.error(at, f"no scenario {sid!r} (known: {', '.join(sorted(known)) or 'none'})")


def _workspace(r: _Reader, at: Path_, value: str, folder: Path) -> tuple[Path, str]:
    """The folder to grade (as a path from the manifest's folder, so errors name it
    as the manifest does), checked to stay inside that folder, and how reports
    name it (the manifest's spelling, normalised)."""
    if Path(value).is_absolute():
        raise r.error(at, f"{value!r} is absolute; give the folder relative to the manifest's")
    shown = Path(os.path.normpath(value)).as_posix()
    if shown == ".." or shown.startswith("../"):
        raise r.error(at, f"{value!r} leads out of the manifest's folder")
    full = folder / shown
    resolved = full.resolve()
    if not resolved.is_relative_to(folder.resolve()):
        raise r.error(
            at,
            f"{value!r} goes through a symlink that leads out of the manifest's folder "
            f"(to {resolved})",
        )
    if not full.exists():
        raise r.error(at, f"no folder {value!r} in the manifest's folder")
    if not full.is_dir():
        raise r.error(at, f"{value!r} is not a folder")
    return full, shown


# --- summaries, from the JSON report ----------------------------------------------


def _pct(score: float) -> str:
    return f"{score:.0%}"


def summary_lines(report: dict[str, Any]) -> list[str]:
    """A line per scenario, then the total: what a CI log shows of several scenarios."""
    rows = report["scenarios"]
    width = max((len(s["id"]) for s in rows), default=0)
    lines = []
    if report.get("learner"):
        lines.append(f"learner: {report['learner']}")
    for s in rows:
        checks = [c for t in s["tasks"] for c in t["checks"]]
        failed = sum(not c["passed"] for c in checks)
        pts = f"{s['points']}/{s['max_points']}"
        mark = "PASS" if s["passed"] else "FAIL"
        line = f"{mark} {s['id']:<{width}}  {pts:>7} {_pct(s['score']):>5}"
        line += f"  {failed} of {len(checks)} checks fail" if failed else ""
        line += f"  [{s['workspace'] or 'untouched'}]"
        lines.append(line.rstrip())
    t = report["totals"]
    lines.append(
        f"Total: {t['scenarios_passed']} of {t['scenarios']} scenarios pass, "
        f"{t['points']}/{t['max_points']} points ({_pct(t['score'])})"
    )
    return [escape_controls(line) for line in lines]


_CODE = re.compile(r"(`+)(.+?)\1", re.S)
_MD_SPECIAL = re.compile(r"([\\*_\[\]<>&|])")
_ENTITY = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}


def md_text(text: str, *, table: bool = False) -> str:
    """Learner text as inert Markdown: its `code spans` kept, everything else
    escaped (no emphasis, links or HTML); `|` escaped in a table cell."""
    text = escape_controls(text)
    out, pos = [], 0

    def plain(s: str) -> str:
        return _MD_SPECIAL.sub(lambda m: _ENTITY.get(m[1], "\\" + m[1]), s)

    for m in _CODE.finditer(text):
        out.append(plain(text[pos : m.start()]))
        code = m[0].replace("|", "\\|") if table else m[0]
        out.append(code)
        pos = m.end()
    out.append(plain(text[pos:]))
    return "".join(out)


def md_code(text: str, *, table: bool = False) -> str:
    """Learner text as a `code span` (plain escaped text if it holds a backtick)."""
    text = escape_controls(text)
    if "`" in text:
        return md_text(text, table=table)
    return "`" + (text.replace("|", "\\|") if table else text) + "`"


def summary_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown for a CI job page ($GITHUB_STEP_SUMMARY): a table of
    the scenarios, then each failed scenario's failed checks with their explanations."""
    t = report["totals"]
    head = (
        f"### cks-lab: {t['scenarios_passed']} of {t['scenarios']} scenarios pass, "
        f"{t['points']}/{t['max_points']} points ({_pct(t['score'])})"
    )
    about = [f"graded {report['graded_at']}", f"cks-lab {report['tool']['version']}"]
    if report.get("learner"):
        about.insert(0, f"learner **{md_text(report['learner'])}**")
    lines = [
        head,
        "",
        " · ".join(about),
        "",
        "| | Scenario | Points | Failed checks | Graded |",
        "|---|---|--:|--:|---|",
    ]
    for s in report["scenarios"]:
        checks = [c for task in s["tasks"] for c in task["checks"]]
        failed = sum(not c["passed"] for c in checks)
        where = md_code(s["workspace"], table=True) if s["workspace"] else "untouched"
        lines.append(
            f"| {'✅' if s['passed'] else '❌'} | {md_code(s['id'], table=True)} "
            f"{md_text(s['title'], table=True)} "
            f"| {s['points']}/{s['max_points']} | {failed} of {len(checks)} | {where} |"
        )
    for s in report["scenarios"]:
        failing = [(task, c) for task in s["tasks"] for c in task["checks"] if not c["passed"]]
        if not failing:
            continue
        sid = html.escape(escape_controls(s["id"]))
        lines += ["", f"<details><summary>❌ {sid}: {len(failing)} failed checks</summary>", ""]
        for task, c in failing:
            why = c["explanation"] + (f": {c['cause']}" if c["cause"] else "")
            lines.append(f"- task {md_code(task['id'])}: **{md_text(c['title'])}**: {md_text(why)}")
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"
