"""cks-lab command line: parse, call lab.service, print. No logic of its own."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import click

from lab import __version__
from lab.cli_apparmor import apparmor
from lab.cli_audit import audit
from lab.cli_author import new_scenario
from lab.cli_cluster import (
    check_cluster_options,
    cluster_lines,
    cluster_options,
    cluster_status,
    down,
    up,
)
from lab.cli_doctor import doctor
from lab.cli_exam import exam
from lab.cli_falco import falco
from lab.cli_grade import grade
from lab.cli_node import node
from lab.cli_progress import progress
from lab.cli_tui import tui
from lab.cli_work import diff, shell
from lab.cli_workshop import workshop
from lab.clierrors import lab_errors
from lab.errors import LabError
from lab.fsutil import write_all_or_none

WS = click.option(
    "--workspace",
    "-w",
    type=click.Path(path_type=Path, file_okay=False),
    help="Workspace folder (default: the current scenario's).",
)


def _catalog() -> Any:
    from lab.scenarios.catalog import Catalog

    ctx = click.get_current_context()
    return Catalog.default(ctx.find_root().params.get("scenarios") or ())


def _width() -> int:
    return shutil.get_terminal_size((100, 24)).columns


def _progress(message: str) -> None:
    click.echo(f"… {message}", err=True)


def _interactive() -> bool:
    """A learner at a terminal (not a pipe, a script or CI)."""
    return sys.stdin.isatty() and sys.stdout.isatty()


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--scenarios",
    multiple=True,
    type=click.Path(path_type=Path, exists=True),
    help="Extra folder of scenarios (repeatable).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(__version__, prog_name="cks-lab")
@click.pass_context
def main(ctx: click.Context, scenarios: tuple[Path, ...], debug: bool) -> None:
    """A lab for the CKS exam's runtime security: audit logging, Falco, AppArmor.

    With no command in a terminal it opens the lab's TUI; piped, it lists the scenarios.
    """
    if ctx.invoked_subcommand is None:
        if _interactive():
            ctx.invoke(tui)
            return
        ctx.invoke(list_cmd)
        click.echo("\nStart one with: cks-lab start ID   (cks-lab --help for everything)")


@main.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@lab_errors
def list_cmd(as_json: bool) -> None:
    """List the scenarios."""
    from lab.present import scenario_summaries, scenario_table

    good, bad = _catalog().scan()
    if as_json:
        click.echo(json.dumps(scenario_summaries(good), indent=2))
    else:
        click.echo(scenario_table(good, _width()))
    for err in bad:
        click.echo(f"cks-lab: warning: skipped a broken scenario: {err}", err=True)


@main.command()
@click.argument("scenario_id", metavar="ID|DIR")
@WS
@click.option(
    "--fresh", is_flag=True, help="Reset an existing workspace (your files are backed up)."
)
@lab_errors
def start(scenario_id: str, workspace: Path | None, fresh: bool) -> None:
    """Start (or resume) a scenario and print its briefing.

    ID is a scenario from `cks-lab list`. An author's scenario folder is taken
    only as a path with a "/" in it (./my-scenario, /abs/path): a bare name is
    always a catalog id, even if a folder of that name is here.
    """
    from lab import service
    from lab.present import briefing

    op, created = service.start(_catalog(), scenario_id, workspace, fresh=fresh, progress=_progress)
    click.echo(briefing(op, created))


@main.command()
@WS
@click.option(
    "--json",
    "json_out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the JSON report here.",
)
@lab_errors
def check(workspace: Path | None, json_out: Path | None) -> None:
    """Run the attack again, grade your work, explain each failed check."""
    from lab import service
    from lab.grading.report_json import Graded, render_json
    from lab.grading.report_text import render_text
    from lab.present import changes_text

    op = service.open_scenario(_catalog(), workspace)
    result = service.check(op, progress=_progress)
    click.echo(render_text(result, color=sys.stdout.isatty(), width=_width()))
    if since := changes_text(*service.check_changes(op)):
        click.echo(f"\n{since}")
    if json_out:
        write_all_or_none({json_out: render_json([Graded.of(result, op.sc.model, op.ws.root)])})
    sys.exit(0 if result.passed else 1)


@main.command()
@click.argument("task", required=False)
@WS
@click.option("--yes", "-y", is_flag=True, help="Don't ask before taking a hint that costs points.")
@lab_errors
def hint(task: str | None, workspace: Path | None, yes: bool) -> None:
    """Show the next hint (each costs points)."""
    from lab import service
    from lab.present import hint_text

    op = service.open_scenario(_catalog(), workspace)
    if task is None and service.unfinished_task(op) is None:
        click.echo("Your last check passed every task: no hint needed (name a task to see one).")
        return
    nxt = service.peek_hint(op, task)
    if nxt.new and nxt.hint.penalty and not yes and sys.stdin.isatty():
        question = f"Hint {nxt.number} for task {nxt.task.id!r} costs {nxt.hint.penalty} point(s)."
        if not click.confirm(question + " Show it?"):
            click.echo("No hint taken.")
            return
    click.echo(hint_text(service.take_hint(op, task)))


@main.command()
@WS
@cluster_options
@lab_errors
def status(workspace: Path | None, cluster_only: bool, as_json: bool) -> None:
    """Where you are: scenario, workspace, attempts, hints taken; the lab's kind cluster."""
    from lab import service
    from lab.present import status_text

    check_cluster_options(cluster_only, as_json)
    if cluster_only:
        return cluster_status(as_json)
    try:
        op = service.open_scenario(_catalog(), workspace)
    except LabError:  # no scenario yet: the cluster `up` made is still worth showing
        cluster_lines(first=True)
        raise
    click.echo(status_text(service.status(op)))
    cluster_lines()


@main.command()
@click.argument("task", required=False)
@WS
@click.option("--apply", is_flag=True, help="Write the solution files into the workspace.")
@click.option("--yes", "-y", is_flag=True, help="Don't ask for confirmation.")
@lab_errors
def solution(task: str | None, workspace: Path | None, apply: bool, yes: bool) -> None:
    """Show the reference solution (and optionally apply it)."""
    from lab import service
    from lab.present import solution_text

    op = service.open_scenario(_catalog(), workspace)
    if not yes and sys.stdin.isatty():
        if not click.confirm("Show the reference solution?"):
            return
    click.echo(solution_text(op, service.show_solution(op, task, apply=apply), apply))


@main.command()
@WS
@click.option("--yes", "-y", is_flag=True, help="Don't ask for confirmation.")
@lab_errors
def reset(workspace: Path | None, yes: bool) -> None:
    """Restore the scenario's starting state (your files are backed up first)."""
    from lab import service

    op = service.open_scenario(_catalog(), workspace)
    if not yes and sys.stdin.isatty():
        if not click.confirm(f"Reset {op.sc.id}? Your node files are backed up first."):
            click.echo("Nothing was reset.")
            return
    backup = service.reset(op, progress=_progress)
    click.echo(f"Reset {op.sc.id}." + (f" Your previous files are in {backup}" if backup else ""))


@main.group()
def scenario() -> None:
    """Author tools: validate, self-test, schema."""


@scenario.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path, exists=True))
@lab_errors
def scenario_validate(paths: tuple[Path, ...]) -> None:
    """Validate scenario folders (default: every known scenario)."""
    from lab import service
    from lab.scenarios.catalog import scenario_folders

    folders = scenario_folders(paths) if paths else _catalog().folders()
    if not folders:
        raise LabError("no scenario folders found (a scenario folder holds scenario.yaml)")
    bad = 0
    for folder in folders:
        _, errors = service.validate_folder(folder)
        for e in errors:
            click.echo(str(e), err=True)
        for w in service.todo_warnings(folder):  # unfinished, not invalid
            click.echo(w, err=True)
        bad += bool(errors)
        click.echo(f"{'ok     ' if not errors else 'INVALID'} {folder}")
    sys.exit(1 if bad else 0)


@scenario.command("test")
@click.argument("ids", nargs=-1, metavar="[ID|DIR]...")
@lab_errors
def scenario_test(ids: tuple[str, ...]) -> None:
    """Self-test: the solution passes every check; the untouched state fails every task.

    A DIR is taken only as a path with a "/" in it (./my-scenario); a bare
    name is a catalog id. Without arguments every known scenario is tested.
    """
    from lab import service

    cat = _catalog()
    failed = 0
    if ids:
        scs = [service.scenario_by_ref(cat, i) for i in ids]
    else:
        scs, broken = cat.scan()
        for err in broken:
            click.echo(f"FAIL {err}")
        failed += len(broken)
    for sc in scs:
        t = service.self_test(sc)
        click.echo(
            f"{'ok  ' if t.ok else 'FAIL'} {sc.id}: untouched {t.untouched.points}/"
            f"{t.untouched.max_points}, solved {t.solved.points}/{t.solved.max_points}"
        )
        for p in t.problems:
            click.echo(f"     {p}")
        failed += not t.ok
    sys.exit(1 if failed else 0)


@scenario.command("schema")
@lab_errors
def scenario_schema() -> None:
    """Print the JSON Schema of scenario.yaml (for editor completion)."""
    from lab.scenarios.model import Scenario
    from lab.schema import json_schema

    click.echo(json.dumps(json_schema(Scenario, "cks-lab scenario (v1)"), indent=2))


main.add_command(audit)
main.add_command(falco)
main.add_command(apparmor)
main.add_command(node)
main.add_command(progress)
main.add_command(tui)
main.add_command(shell)
main.add_command(diff)
main.add_command(grade)
scenario.add_command(new_scenario)
main.add_command(workshop)
main.add_command(exam)
main.add_command(doctor)
main.add_command(up)
main.add_command(down)
