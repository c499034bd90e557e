"""`cks-lab audit ...`: the audit policy tools, as kube-apiserver reads policies."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from lab.clierrors import lab_errors


@click.group()
def audit() -> None:
    """Audit policy tools: validate and evaluate like kube-apiserver."""


@audit.command("validate")
@click.argument("policy", type=click.Path(path_type=Path))
@lab_errors
def audit_validate(policy: Path) -> None:
    """Validate an audit policy file as kube-apiserver loads it."""
    from lab.engines.audit.tools import validate_file

    errors, warnings = validate_file(policy)
    for line in errors:
        click.echo(line, err=True)
    for line in warnings:
        click.echo(f"warning: {line}", err=True)
    if errors:
        sys.exit(1)
    click.echo("valid")


@audit.command("eval")
@click.option("--policy", "-p", required=True, type=click.Path(path_type=Path))
@click.argument("requests", required=False, default="-", type=click.File("rb"))
@lab_errors
def audit_eval(policy: Path, requests: Any) -> None:
    """Evaluate requests (JSON lines shaped like audit Events) against a policy.

    Prints one JSON object per input line; input must be UTF-8.
    """
    # Not through lab.service: its imports would cost this command a tenth of
    # its run time on a large log.
    from lab.engines.audit.checker import compile_policy
    from lab.engines.audit.policy import load_policy_file
    from lab.engines.audit.tools import eval_jsonl
    from lab.fsutil import utf8_lines

    source = str(getattr(requests, "name", "<stdin>"))
    compiled = compile_policy(load_policy_file(policy))
    sys.stdout.writelines(eval_jsonl(compiled, utf8_lines(requests, source), source))
