"""`cks-lab apparmor ...`: check a profile as apparmor_parser does, and ask what it allows."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lab.clierrors import lab_errors

INCLUDE = click.option(
    "--include", "-I", "include_dirs", multiple=True, metavar="DIR",
    type=click.Path(path_type=Path),
    help="Look for <...> includes in DIR first (repeatable), as apparmor_parser -I.")


def _echo(lines: list[str] | tuple[str, ...], *, escape: bool = True) -> None:
    from lab.grading.report_text import escape_controls

    # rule texts and messages come from the learner's file: no raw escapes
    if lines:
        click.echo("\n".join(escape_controls(line) if escape else line for line in lines))


@click.group()
def apparmor() -> None:
    """AppArmor profile tools: compile a profile, ask what it allows.

    Includes (<tunables/global>, <abstractions/base>) are looked up in the -I
    folders, then in the node tree's /etc/apparmor.d when the profile is in one
    (nodes/NODE/etc/apparmor.d/ in a workspace), then in the lab's own minimal
    copies. Every command exits 2 on an error (a file it cannot read, a bad
    --access), with one located message on stderr and nothing else printed.
    """


@apparmor.command("validate")
@click.argument("profile", type=click.Path(path_type=Path))
@click.option("--builtin", is_flag=True,
              help="Check with the lab's own parser, even if apparmor_parser is installed.")
@INCLUDE
@lab_errors
def apparmor_validate(profile: Path, builtin: bool, include_dirs: tuple[Path, ...]) -> None:
    """Check that PROFILE compiles, and say which compiler checked it.

    With Debian's apparmor_parser installed, runs `apparmor_parser -Q -K`
    (compile only: no kernel, no cache); otherwise, or with --builtin, the
    lab's own parser checks it. Prints "PROFILE: valid" or "PROFILE: invalid"
    with the compiler used, then each error as FILE:LINE: message, then the
    profiles the file defines (the names a pod's localhostProfile uses). When
    both compilers ran and disagree, a note says so; apparmor_parser decides.

    Exit status: 0 valid, 1 invalid, 2 the file cannot be read (missing, a
    folder, binary, over 1 MB), an -I folder does not exist, or apparmor_parser
    cannot run.
    """
    from lab.engines.apparmor.tools import validate

    report = validate(profile, include_dirs, builtin=builtin)
    _echo(report.lines)
    sys.exit(0 if report.ok else 1)


@apparmor.command("eval")
@click.argument("profile", type=click.Path(path_type=Path))
@click.option("--access", "-a", "accesses", multiple=True, required=True, metavar="ACCESS",
              help='An access to decide (repeatable): "r /etc/shadow", "w /tmp/x", '
                   '"a /var/log/x", "x /bin/sh", "owner w /tmp/x", "capability sys_admin", '
                   '"network inet raw".')
@click.option("--profile-name", "-n", metavar="NAME",
              help="The profile to ask (needed when the file defines several; "
                   "parent//child for a child profile or hat).")
@INCLUDE
@click.option("--json", "as_json", is_flag=True,
              help='One object per access and line: {"access", "decision", "rules", ...}.')
@lab_errors
def apparmor_eval(profile: Path, accesses: tuple[str, ...], profile_name: str | None,
                  include_dirs: tuple[Path, ...], as_json: bool) -> None:
    """Decide each --access against a profile, as the kernel would, in order.

    Prints ALLOW, DENY or COMPLAIN (not allowed, but the profile is in
    complain mode: it happens and is logged) for each access, with the rules
    that decided it and their lines. A file access is PERMS PATH with PERMS
    from r w a l k m x; "owner ..." is an access to a file the task owns.
    The lab's own parser reads the profile (`validate` compiles it with
    apparmor_parser too).

    Exit status: 0 every access was decided, whatever the verdicts; 2 the
    profile does not compile or cannot be read, an --access cannot be read,
    --profile-name is missing or unknown (the names are listed), or an -I
    folder does not exist.
    """
    from lab.engines.apparmor.tools import (
        evaluate,
        json_lines,
        load_profiles,
        parse_accesses,
        select_profile,
        text_lines,
    )

    wanted = parse_accesses(accesses)
    prof = select_profile(load_profiles(profile, include_dirs), profile_name)
    decisions = evaluate(prof, wanted)
    if as_json:
        _echo(json_lines(decisions), escape=False)  # ASCII JSON: escaped already
    else:
        _echo(text_lines(decisions, prof.src.file))
