"""`cks-lab scenario new`: an author's scenario skeleton (registered on the `scenario` group)."""

from __future__ import annotations

from pathlib import Path

import click

from lab.clierrors import lab_errors
from lab.scenarios.scaffold import SKILLS


@click.command("new")
@click.argument("scenario_id", metavar="ID")
@click.option(
    "--skill",
    required=True,
    type=click.Choice(SKILLS),
    help="What the scenario trains: the skeleton's attack, task and checks.",
)
@click.option(
    "--dir",
    "parent",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=Path("."),
    show_default=True,
    help="The folder to create the scenario folder ID in.",
)
@lab_errors
def new_scenario(scenario_id: str, skill: str, parent: Path) -> None:
    """Create a scenario skeleton ID/ to fill in (every TODO).

    It passes `cks-lab scenario validate` as it is; `cks-lab scenario test`
    fails until the reference solution is written and no TODO is left.
    """
    from lab.scenarios.scaffold import new_scenario as scaffold

    folder = scaffold(parent, scenario_id, skill)
    # as a path with a "/": `start` and `scenario test` take a bare name as a catalog id
    shown = str(folder)
    if not folder.is_absolute() and not shown.startswith(("./", "../")):
        shown = f"./{shown}"
    click.echo(f"Created {shown}/ ({skill}). Next:")
    click.echo(f"  $EDITOR {shown}/scenario.yaml        # replace every TODO")
    click.echo(f"  cks-lab scenario validate {shown}")
    click.echo(f"  cks-lab scenario test {shown}        # fails until solved, with no TODO left")
    click.echo(f"  cks-lab start {shown}                # try it as a learner")
