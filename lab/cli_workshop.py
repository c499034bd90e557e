"""`cks-lab workshop`: a class report from learners' results; scenario packs for a room."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from lab import __version__
from lab.clierrors import lab_errors
from lab.errors import LabError

FORMATS = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md"}


@click.group()
def workshop() -> None:
    """Instructor tools: class report, scenario packs (docs/workshops.md)."""


def report_format(out: Path, forced: str | None) -> str:
    """--format, else the output's suffix (.html, .md); stdout (-) is Markdown."""
    if forced:
        return forced
    if str(out) == "-":
        return "md"
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise LabError(
            "cannot tell the format from the suffix: name it .html or .md, or give "
            "--format html|md",
            file=str(out),
        )
    return fmt


@workshop.command("report")
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@click.option(
    "--output",
    "-o",
    "out",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
    help="The report file (.html or .md); - prints Markdown.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["html", "md"]), help="Force a format (else from -o)."
)
@click.option("--title", default="Workshop report", show_default=True, help="The report's title.")
@lab_errors
def report(results: tuple[Path, ...], out: Path, fmt: str | None, title: str) -> None:
    """A class report from learners' JSON results (`cks-lab grade --json`).

    RESULTS are result files, or folders whose *.json files are results. The
    learner is the report's `learner`, else the file name without .json. Every
    file is checked first; on any error nothing is written.
    """
    from lab.fsutil import write_all_or_none
    from lab.workshop.report import class_report
    from lab.workshop.report_html import render_html
    from lab.workshop.report_md import render_markdown

    kind = report_format(out, fmt)
    rep = class_report(results, tool=f"cks-lab {__version__}")
    text = render_html(rep, title) if kind == "html" else render_markdown(rep, title)
    if str(out) == "-":
        sys.stdout.write(text)
        return
    write_all_or_none({out: text})
    click.echo(
        f"Wrote {out} ({kind}): {len(rep.learners)} learner(s), {len(rep.tasks)} task(s), "
        f"{rep.files} result file(s)."
    )


def _catalog() -> Any:
    from lab.scenarios.catalog import Catalog

    ctx = click.get_current_context()
    return Catalog.default(ctx.find_root().params.get("scenarios") or ())


@workshop.command("pack")
@click.argument("refs", nargs=-1, metavar="[ID|DIR]...")
@click.option(
    "--scenarios",
    "-s",
    "more",
    multiple=True,
    metavar="ID|DIR",
    help="A scenario to pack (repeatable; further IDs may follow as arguments).",
)
@click.option(
    "--output",
    "-o",
    "out",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The pack file to write (.zip).",
)
@click.option("--name", help="The pack's name (default: the output's name without .zip).")
@lab_errors
def pack(refs: tuple[str, ...], more: tuple[str, ...], out: Path, name: str | None) -> None:
    """Pack scenarios into one zip for a room: `--scenarios ID|DIR ... -o pack.zip`.

    ID is a catalog scenario (`cks-lab list`); an author's scenario folder is
    given as a path with a "/" (./my-scenario). Every scenario is validated
    first; the zip holds their folders and a manifest with every file's sha256.
    """
    from lab.workshop.pack import build_pack, check_name, resolve_refs

    wanted = [*more, *refs]
    if not wanted:
        raise LabError("which scenarios? give --scenarios ID|DIR ...")
    pack_name = check_name(name or out.stem.lower())
    info = build_pack(resolve_refs(wanted, _catalog()), out, pack_name)
    click.echo(
        f"Wrote {out}: pack {info.name!r}, {len(info.scenarios)} scenario(s) "
        f"({', '.join(info.scenarios)}), {info.files} file(s)"
        + (f"; bundled ones named, not copied: {', '.join(info.bundled)}" if info.bundled else "")
        + ".\n"
        f"In the room: cks-lab workshop unpack {out.name}"
    )


@workshop.command("unpack")
@click.argument("pack_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "--into",
    type=click.Path(path_type=Path, file_okay=False),
    help="The folder to unpack into (default: the lab's packs/<name>/, seen by `cks-lab list`).",
)
@click.option("--replace", is_flag=True, help="Replace a pack unpacked there before.")
@lab_errors
def unpack(pack_file: Path, into: Path | None, replace: bool) -> None:
    """Check a scenario pack and unpack it; nothing lands unless all of it is sound.

    Checked first: entry names and types, sizes, every checksum, the format
    version, and every scenario as `cks-lab scenario validate` checks it.
    """
    from lab.workshop.pack import InvalidPack
    from lab.workshop.pack import unpack as do_unpack

    try:
        info = do_unpack(pack_file, _catalog(), into, replace=replace)
    except InvalidPack as e:
        for err in e.errors:
            click.echo(str(err), err=True)
        raise LabError(
            f"{len(e.errors)} problem(s) in the pack's scenarios (above); nothing was unpacked",
            file=str(pack_file),
        ) from None
    own = [i for i in info.scenarios if i not in info.bundled]
    also = f" (and the bundled {', '.join(info.bundled)})" if info.bundled else ""
    click.echo(
        f"Unpacked pack {info.name!r} into {info.path}: {', '.join(own) or 'no own scenarios'}"
        f"{also}."
    )
    for w in info.warnings:
        click.echo(f"cks-lab: warning: {w}", err=True)
    if into is None:
        click.echo("`cks-lab list` shows them; start one with `cks-lab start ID`.")
    else:
        click.echo(f"Use them with: cks-lab --scenarios {info.path} list")
