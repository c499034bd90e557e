"""`cks-lab progress`: what you have done, per skill and per check, across runs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from lab.clierrors import lab_errors
from lab.timefmt import duration

if TYPE_CHECKING:
    from lab.service import ProgressReport


@click.command("progress")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--scenario", "scenario_id", metavar="ID", help="Only this scenario's checks.")
@click.option("--limit", default=20, show_default=True, help="How many recent checks to show.")
@lab_errors
def progress(as_json: bool, scenario_id: str | None, limit: int) -> None:
    """Your progress: per skill, and your latest checks (kept across runs).

    Problems with the progress store (in the lab's data dir) are warnings on
    stderr; they never stop a check from being graded.
    """
    from lab import service
    from lab.scenarios.catalog import Catalog

    root = click.get_current_context().find_root()
    catalog = Catalog.default(root.params.get("scenarios") or ())
    report = service.progress_report(catalog, scenario_id, limit=max(0, limit))
    click.echo(json.dumps(progress_json(report), indent=2) if as_json else progress_text(report))
    for err in report.errors:
        click.echo(f"cks-lab: warning: skipped a broken scenario: {err}", err=True)


def progress_json(report: ProgressReport) -> dict[str, Any]:
    return {
        "skills": [asdict(s) for s in report.skills],
        "scenarios": [
            {
                "id": e.scenario.id,
                "title": e.scenario.title,
                "status": e.status,
                "workspace": str(e.workspace) if e.workspace else None,
                **{k: v for k, v in asdict(e.progress).items() if k != "scenario"},
            }
            for e in report.entries
        ],
        "attempts": [asdict(a) for a in report.attempts],
    }


def progress_text(report: ProgressReport) -> str:
    out = ["Skills"]
    out += _table(
        [("SKILL", "PASSED", "TRIED", "CHECKS", "MEAN BEST", "TIME")]
        + [
            (
                s.skill,
                f"{s.passed}/{s.scenarios}",
                str(s.attempted),
                str(s.attempts),
                f"{s.mean_best:.0%}",
                _spent(s.seconds),
            )
            for s in report.skills
        ]
    )
    started = [e for e in report.entries if e.status != "new"]
    if len(report.entries) == 1 or started:
        out += ["", "Scenarios"]
        out += _table(
            [("ID", "STATUS", "CHECKS", "BEST", "LAST", "TIME")]
            + [
                (
                    e.scenario.id,
                    e.status,
                    str(e.progress.attempts),
                    _points(e.progress.best_points, e.progress.max_points, e.progress.attempts),
                    _points(e.progress.last_points, e.progress.max_points, e.progress.attempts),
                    _spent(e.progress.seconds),
                )
                for e in (report.entries if len(report.entries) == 1 else started)
            ]
        )
    out += ["", "Checks, newest first"]
    if report.attempts:
        out += _table(
            [("WHEN", "SCENARIO", "SCORE", "RESULT")]
            + [
                (_when(a.at), a.scenario, f"{a.points}/{a.max_points}",
                 "pass" if a.passed else "fail")
                for a in report.attempts
            ]
        )
    else:
        out.append("  none yet: `cks-lab start ID`, then `cks-lab check`")
    return "\n".join(out)


def _spent(seconds: float) -> str:
    """Time spent; "-" when none was recorded."""
    return duration(seconds) if seconds > 0 else "-"


def _points(points: int, max_points: int, attempts: int) -> str:
    return f"{points}/{max_points}" if attempts else "-"


def _when(at: str) -> str:
    """A recorded time (UTC) in the learner's local time."""
    try:
        return datetime.fromisoformat(at).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return at


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in rows]
