"""`cks-lab node exec NODE -- COMMAND`: run a node command, as over `ssh NODE` on the exam."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lab.clierrors import lab_errors


@click.group()
def node() -> None:
    """Commands on the scenario's nodes (sim backend: apparmor_parser, aa-status)."""


@node.command("exec", context_settings={"ignore_unknown_options": True})
@click.option(
    "--workspace",
    "-w",
    type=click.Path(path_type=Path, file_okay=False),
    help="Workspace folder (default: the current scenario's).",
)
@click.argument("node_name", metavar="NODE")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, metavar="-- COMMAND [ARG]...")
@lab_errors
def node_exec(workspace: Path | None, node_name: str, command: tuple[str, ...]) -> None:
    """Run COMMAND on NODE and exit with its status.

    \b
      cks-lab node exec worker -- apparmor_parser -r /etc/apparmor.d/k8s-deny-write
      cks-lab node exec worker -- aa-status

    In the sim backend a node's files are the workspace's nodes/NODE/ folder, edited
    with your own editor; apparmor_parser loads profiles into the node's kernel (a
    profile that is only written is not loaded) and aa-status shows them.
    """
    from lab import service
    from lab.grading.report_text import escape_controls
    from lab.scenarios.catalog import Catalog

    catalog = Catalog.default(click.get_current_context().find_root().params.get("scenarios") or ())
    op = service.open_scenario(catalog, workspace)
    res = service.node_exec(op, node_name, list(command))
    if res.stdout:
        click.echo(escape_controls(res.stdout, keep_newlines=True), nl=False)
    if res.stderr:
        click.echo(escape_controls(res.stderr, keep_newlines=True), nl=False, err=True)
    sys.exit(res.code)
