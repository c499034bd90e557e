"""`cks-lab exam ...`: a timed mock exam (lab.exam does the work; docs/exam.md)."""

from __future__ import annotations

import json
import shutil
import sys
from typing import TYPE_CHECKING, Any

import click

from lab.clierrors import lab_errors
from lab.errors import LabError

if TYPE_CHECKING:
    from lab.exam import Exam


def _catalog() -> Any:
    from lab.scenarios.catalog import Catalog

    return Catalog.default(click.get_current_context().find_root().params.get("scenarios") or ())


def _progress(message: str) -> None:
    click.echo(f"… {message}", err=True)


def _width() -> int:
    return shutil.get_terminal_size((100, 24)).columns


def _interactive() -> bool:
    return sys.stdin.isatty()


def _due(catalog: Any, exam: Exam) -> Exam:
    """Every exam command first submits a running exam whose time is up."""
    from lab import exam as ex

    done = ex.submit_if_time_up(catalog, exam, progress=_progress)
    if done is None:
        return exam
    click.echo(
        f"cks-lab: the time of exam {exam.id} is up: it was submitted and graded as your "
        "workspaces are now (`cks-lab exam review` shows the results)",
        err=True,
    )
    return done.exam


def _current(catalog: Any) -> Exam:
    from lab import exam as ex

    exam = ex.current_exam()
    if exam is None:
        raise LabError(
            "no exam running: `cks-lab exam start` (2 hours), or `cks-lab exam start --short`"
        )
    return _due(catalog, exam)


def _item(exam: Exam, ref: str | None) -> int:
    from lab import exam as ex

    return exam.current if ref is None else ex.item_index(exam, ref)


@click.group("exam")
def exam() -> None:
    """A timed mock exam drawn from the scenarios; graded when you submit.

    \b
      cks-lab exam start [--short]   draw the items, start the clock
      cks-lab exam status            time left, the items, what to run
      cks-lab exam goto N            work on item N (number or scenario id)
      cks-lab exam submit            grade everything; `exam review` explains

    While it runs, `check`, `hint`, `solution` and `diff` are refused in its
    workspaces, as on the real exam. Quitting is fine: the clock is wall-clock
    time, and any exam command after the deadline submits the exam.
    """


@exam.command("start")
@click.option(
    "--tasks", type=click.IntRange(1, 100), help="At least this many tasks (17; --short: 5)."
)
@click.option("--duration", metavar="TIME", help="120m, 2h, 1h30m or minutes (2h; --short: 30m).")
@click.option("--seed", type=click.IntRange(min=0), help="Draw this exam again (default: random).")
@click.option("--short", is_flag=True, help="A practice round: about 5 tasks in 30 minutes.")
@lab_errors
def exam_start(tasks: int | None, duration: str | None, seed: int | None, short: bool) -> None:
    """Draw a mock exam (weighted like the CKS domains) and start its clock."""
    from lab import exam as ex
    from lab.exam.present import item_text, status_text

    length = ex.parse_duration(duration) if duration is not None else None
    catalog = _catalog()
    old = ex.current_exam()
    if old is not None:
        _due(catalog, old)
    started = ex.start_exam(
        catalog, tasks=tasks, duration=length, seed=seed, short=short, progress=_progress
    )
    op = ex.item_scenario(catalog, started, started.current)
    click.echo(status_text(started, op=op, width=_width()))
    click.echo("\n" + item_text(started, op))


@exam.command("status")
@lab_errors
def exam_status() -> None:
    """Time left, the items (> current, F flagged) and the commands to work on them."""
    from lab import exam as ex
    from lab.exam.present import status_text

    catalog = _catalog()
    e = _current(catalog)
    try:
        op = ex.item_scenario(catalog, e, e.current) if e.running else None
    except LabError as err:  # the status is still worth showing; say what is wrong
        click.echo(f"cks-lab: warning: {err}", err=True)
        op = None
    click.echo(status_text(e, op=op, width=_width()))


@exam.command("show")
@click.argument("item", required=False)
@lab_errors
def exam_show(item: str | None) -> None:
    """Show an item's tasks (default: the current item) without switching to it."""
    from lab import exam as ex
    from lab.exam.present import item_text

    catalog = _catalog()
    e = _current(catalog)
    click.echo(item_text(e, ex.item_scenario(catalog, e, _item(e, item))))


@exam.command("goto")
@click.argument("item")
@lab_errors
def exam_goto(item: str) -> None:
    """Work on ITEM (its number or scenario id): shell, node exec etc. then use its workspace."""
    from lab import exam as ex
    from lab.exam.present import item_text

    catalog = _catalog()
    e = _current(catalog)
    e = ex.goto(e, _item(e, item))
    click.echo(item_text(e, ex.item_scenario(catalog, e, e.current)))


def _flag(item: str | None, on: bool) -> None:
    from lab import exam as ex

    e = _current(_catalog())
    e = ex.flag(e, _item(e, item), on)
    i = _item(e, item)
    flagged = ", ".join(str(it.number) for it in e.items if it.index in e.flagged) or "none"
    what = "Flagged" if on else "Unflagged"
    click.echo(f"{what} item {i + 1} ({e.items[i].scenario}). Flagged items: {flagged}.")


@exam.command("flag")
@click.argument("item", required=False)
@lab_errors
def exam_flag(item: str | None) -> None:
    """Flag an item for later (default: the current item)."""
    _flag(item, True)


@exam.command("unflag")
@click.argument("item", required=False)
@lab_errors
def exam_unflag(item: str | None) -> None:
    """Clear an item's flag (default: the current item)."""
    _flag(item, False)


@exam.command("replay")
@click.argument("item", required=False)
@lab_errors
def exam_replay(item: str | None) -> None:
    """Run an item's cluster again so its logs are written (nothing is graded)."""
    from lab import exam as ex
    from lab.exam.present import replay_text

    catalog = _catalog()
    e = _current(catalog)
    click.echo(replay_text(ex.replay(catalog, e, _item(e, item), progress=_progress)))


@exam.command("submit")
@click.option("--yes", "-y", is_flag=True, help="Don't ask, even with time left.")
@lab_errors
def exam_submit(yes: bool) -> None:
    """End the exam: grade every item as it is now."""
    from lab import exam as ex
    from lab.exam.present import result_text

    catalog = _catalog()
    e = _current(catalog)
    if not e.running:
        # _due may just have submitted it; otherwise submit() says why not
        if e.submitted:
            click.echo(result_text(ex.exam_result(e)))
            return
    left = ex.format_duration(e.remaining())
    if e.running and not yes:
        flagged = f", {len(e.flagged)} item(s) flagged" if e.flagged else ""
        question = f"{left} left{flagged}. Submit the exam now?"
        if not _interactive():
            raise LabError(f"{question[:-1]}: confirm with `cks-lab exam submit --yes`")
        if not click.confirm(question):
            click.echo("Not submitted; the clock is still running.")
            return
    result = ex.submit(catalog, e, progress=_progress)
    click.echo(result_text(result))
    click.echo("\n`cks-lab exam review` shows every check's explanation and the solutions.")


@exam.command("review")
@click.argument("exam_id", metavar="[EXAM]", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@lab_errors
def exam_review(exam_id: str | None, as_json: bool) -> None:
    """After the exam: each check with its explanation, the score, the solutions.

    EXAM is an earlier exam's id (default: the latest).
    """
    from lab import exam as ex
    from lab.exam.present import review_json, review_text

    catalog = _catalog()
    e = _due(catalog, ex.load_exam(exam_id)) if exam_id else _current(catalog)
    rv = ex.review(catalog, e)
    click.echo(json.dumps(review_json(rv), indent=2) if as_json else review_text(rv, _width()))


@exam.command("abandon")
@click.option("--yes", "-y", is_flag=True, help="Don't ask.")
@lab_errors
def exam_abandon(yes: bool) -> None:
    """Stop the exam without grading it (its workspaces are kept)."""
    from lab import exam as ex

    e = _current(_catalog())
    if e.running and not yes:
        if not _interactive():
            raise LabError("abandon the exam unscored? confirm with `cks-lab exam abandon --yes`")
        if not click.confirm(f"Abandon exam {e.id} without a score?"):
            click.echo("The exam goes on.")
            return
    e = ex.abandon(e)
    click.echo(f"Abandoned exam {e.id}; its workspaces stay in {e.root}.")
