"""`cks-lab falco ...`: the Falco rule tools, as `falco -V`, Falco on a capture, `falco --list`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lab.clierrors import lab_errors

# Not imported from the engine: `--help` must not pay for loading it.
PRIORITIES = ("emergency", "alert", "critical", "error", "warning", "notice", "informational",
              "info", "debug")


def _escaped(line: str) -> str:
    from lab.grading.report_text import escape_controls

    # rule names and messages come from the learner's files: no raw escapes
    return escape_controls(line)


@click.group()
def falco() -> None:
    """Falco rule tools: validate rules, replay a trace through them, list the fields.

    Every command exits 2 on an error (a file it cannot read, a bad trace line),
    with one located message on stderr.
    """


@falco.command("validate")
@click.argument("rules", nargs=-1, required=True, type=click.Path(path_type=Path))
@lab_errors
def falco_validate(rules: tuple[Path, ...]) -> None:
    """Validate rules files, loaded in order as `falco -V` does.

    `cks-lab falco validate a.yaml b.yaml` is `falco -V a.yaml -V b.yaml`: a
    later file sees the lists, macros and rules of the earlier ones. Prints
    "FILE: Ok", "FILE: Ok, with warnings" or "FILE: Invalid" for each file,
    then each of its errors and warnings as FILE:LINE: ITEM: CODE: message.

    Exit status: 0 every file loads, 1 some file is Invalid (Falco would not
    start), 2 a file cannot be read (missing, binary, too big).
    """
    from lab.engines.falco.tools import validate_files

    lines, ok = validate_files(rules)
    for line in lines:
        click.echo(_escaped(line))
    sys.exit(0 if ok else 1)


@falco.command("replay")
@click.option("--rules", "-r", "rules", multiple=True, required=True,
              type=click.Path(path_type=Path), help="A rules file (repeatable, loaded in order).")
@click.argument("trace", type=click.Path(path_type=Path, allow_dash=True))
@click.option("--json", "as_json", is_flag=True,
              help="One alert per line in Falco's json_output shape.")
@click.option("--all-matches", is_flag=True,
              help="Every matching rule alerts (rule_matching: all), not only the first.")
@click.option("--min-priority", type=click.Choice(PRIORITIES, case_sensitive=False),
              default="debug", show_default=True, help="Skip rules less severe than this.")
@click.option("--hostname", help="The hostname alerts carry.  [default: localhost]")
@click.option("--quiet", "-q", is_flag=True, help="No summary line on stderr.")
@lab_errors
def falco_replay(rules: tuple[Path, ...], trace: Path, as_json: bool, all_matches: bool,
                 min_priority: str, hostname: str | None, quiet: bool) -> None:
    """Replay a trace through the rules; print the alerts as Falco does.

    TRACE is JSON lines, one event per line, keyed by Falco field names
    ("proc.name", "proc.aname[2]", "evt.arg.flags"); null or absent means not
    available. `-` reads stdin. `sysdig -r X.scap -j -p '*%evt.num %evt.type ...'`
    prints this format; `cks-lab falco import` makes one from a capture. Enter
    events (evt.dir ">") are skipped, as Falco does.

    Alerts go to stdout as Falco prints them (text, or --json); a summary
    line (events, alerts by rule) goes to stderr.

    Exit status: 0 the trace was replayed (with or without alerts); 2 the
    rules do not load (their errors are printed, nothing is replayed) or a
    line of the trace is not an event (FILE:LINE: why; the alerts of the
    lines before it are already out).
    """
    from lab.engines.falco.tools import RulesLoadError, load_ruleset, replay

    try:
        ruleset, warnings = load_ruleset(
            rules, min_priority=min_priority.lower(),
            rule_matching="all" if all_matches else "first",
        )
    except RulesLoadError as e:
        for line in e.lines:
            click.echo(_escaped(line), err=True)
        raise
    if warnings and not quiet:
        click.echo(f"cks-lab: warning: the rules load with {len(warnings)} warning(s); "
                   "`cks-lab falco validate` shows them", err=True)
    out = sys.stdout.buffer

    def write(data: bytes) -> None:
        out.write(data)
        out.flush()  # alerts show as they come, even from a pipe that is still open

    source = "<stdin>" if str(trace) == "-" else str(trace)
    if str(trace) == "-":
        stats = replay(ruleset, sys.stdin.buffer, source, write,
                       as_json=as_json, hostname=hostname)
    else:
        with open(trace, "rb") as stream:
            stats = replay(ruleset, stream, source, write, as_json=as_json, hostname=hostname)
    if not quiet:
        click.echo(_escaped(stats.summary(source)), err=True)


@falco.command("fields")
@click.option("--names", "names_only", is_flag=True, help="Only the field names, one a line.")
@lab_errors
def falco_fields(names_only: bool) -> None:
    """List the fields rules can use, like `falco --list`.

    Each with its type and tags: [ARG_REQUIRED] / [ARG_ALLOWED] fields take an
    argument (proc.aname[2], evt.arg.flags), [FILTER_ONLY] ones are not
    printable in outputs.
    """
    from lab.engines.falco.tools import render_fields

    click.echo(render_fields(names_only=names_only), nl=False)


@falco.command("import")
@click.argument("capture", type=click.Path(path_type=Path))
@click.option("--output", "-o", required=True,
              type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
              help="The trace to write (`-`: stdout). Written whole or not at all.")
@click.option("--field", "fields", multiple=True, metavar="FIELD",
              help="Another field to put in every event (repeatable), e.g. proc.aname[8].")
@click.option("--filter", "condition", metavar="CONDITION",
              help="Keep only the events sysdig's filter CONDITION selects.")
@lab_errors
def falco_import(capture: Path, output: Path, fields: tuple[str, ...],
                 condition: str | None) -> None:
    """Convert a capture (.scap) to a trace for `replay`, with sysdig.

    Runs `sysdig -r CAPTURE -j -p '*%evt.num %evt.type ...'` (Debian's sysdig
    package; no shell) with the fields Falco rules use, keeps the exit events
    and writes them as JSON lines.

    Exit status: 0 written; 2 sysdig is missing or cannot read the capture
    (nothing is written).
    """
    from lab.engines.falco.capture import import_capture

    to_stdout = str(output) == "-"
    out = sys.stdout.buffer
    result = import_capture(capture, None if to_stdout else output, extra_fields=fields,
                            condition=condition, write_stdout=out.write if to_stdout else None)
    if result.dropped:
        click.echo(f"cks-lab: warning: this sysdig does not know {len(result.dropped)} of the "
                   f"trace's fields; they are left out (not available to rules): "
                   f"{', '.join(result.dropped)}", err=True)
    if result.replaced:
        click.echo(f"cks-lab: warning: {result.replaced} event(s) held bytes that are not "
                   "UTF-8; they are replaced by U+FFFD", err=True)
    where = "stdout" if to_stdout else str(output)
    click.echo(f"{where}: {result.events} events, {len(result.fields)} fields each", err=True)
