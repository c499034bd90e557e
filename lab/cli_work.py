"""`cks-lab shell [NODE]` and `cks-lab diff`: working on the nodes, comparing with the solution."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from lab.clierrors import lab_errors

WS = click.option(
    "--workspace",
    "-w",
    type=click.Path(path_type=Path, file_okay=False),
    help="Workspace folder (default: the current scenario's).",
)


def _opened(workspace: Path | None) -> Any:
    from lab import service
    from lab.scenarios.catalog import Catalog

    catalog = Catalog.default(click.get_current_context().find_root().params.get("scenarios") or ())
    return service.open_scenario(catalog, workspace)


def _interactive() -> bool:
    return sys.stdin.isatty()


@click.command()
@click.argument("node_name", metavar="[NODE]", required=False)
@WS
@click.option(
    "--print", "print_only", is_flag=True, help="Only print the command for your own terminal."
)
@lab_errors
def shell(node_name: str | None, workspace: Path | None, print_only: bool) -> None:
    """A shell in NODE's folder, which is the node's `/` (default: the node the
    scenario's files are on); `exit` returns. Exits with the shell's status.

    The prompt shows where you are on the node (root@controlplane:/etc/kubernetes#)
    and `cd /etc` goes to the node's /etc.
    """
    from lab import service
    from lab.shell import run

    sc = service.shell_command(_opened(workspace), node_name)
    if print_only:
        click.echo(sc.display)
        return
    sys.exit(run(sc))


@click.command()
@click.option(
    "--task", "task", metavar="TASK", help="Only this task's files (default: every task's)."
)
@WS
@click.option("--yes", "-y", is_flag=True, help="Don't ask for confirmation.")
@lab_errors
def diff(task: str | None, workspace: Path | None, yes: bool) -> None:
    """Your files against the reference solution's (counts as viewing the solution).

    Asks first, unless your last check passed (that task, with --task).
    """
    from lab import service
    from lab.present import diff_text

    op = _opened(workspace)
    if not yes and _interactive() and not service.last_check_passed(op, task):
        if not click.confirm("This shows the reference solution. Show it?"):
            click.echo("Nothing shown.")
            return
    click.echo(diff_text(service.learner_diff(op, task)))
