"""`cks-lab tui`: the full-screen app (also what `cks-lab` alone opens in a terminal)."""

from __future__ import annotations

import click


@click.command()
def tui() -> None:
    """Open the lab as a full-screen app (what `cks-lab` alone does in a terminal)."""
    from lab.tui import run

    run(click.get_current_context().find_root().params.get("scenarios") or ())
