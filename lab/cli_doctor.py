"""`cks-lab doctor`: what the kind backend needs from this host, each with its fix."""

from __future__ import annotations

import json
import sys

import click

from lab.clierrors import lab_errors


@click.command()
@click.option("--json", "as_json", is_flag=True, help="The checks as JSON on stdout.")
@lab_errors
def doctor(as_json: bool) -> None:
    """Check docker, kind, kubectl, AppArmor, BTF, cgroups, memory and disk.

    Each row is OK, WARN, FAIL or SKIP with what was found, and the fix. A WARN
    (e.g. no AppArmor: those scenarios run on the sim backend) still lets the
    kind backend run; a FAIL does not. The sim backend needs none of this.

    Exit status: 0 nothing fails, 1 some check fails.
    """
    from lab.kind.doctor import HostProbe, failed, render_text, run_checks, to_json
    from lab.paths import data_dir

    checks = run_checks(HostProbe(), data_dir())
    if as_json:
        click.echo(json.dumps(to_json(checks), indent=2))
    else:
        click.echo(render_text(checks))
    sys.exit(1 if failed(checks) else 0)
