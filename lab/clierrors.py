"""How the CLI ends on an error: one stderr line and exit 2, whatever went wrong.

Exit 1 means "some checks fail" to CI, so an error must never end with 1: a
LabError is the learner's to fix, an OSError naming a file (an unwritable report
path) too; anything else is a bug and says so. Ctrl-C exits 130. `--debug`
re-raises, for the traceback.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from lab.errors import LabError

F = TypeVar("F", bound=Callable[..., Any])


class Fail(click.ClickException):
    """An error already worded for the learner; exit status 2."""

    exit_code = 2
    prefix = "error"

    def show(self, file: Any = None) -> None:
        from lab.grading.report_text import escape_controls

        # paths and values in the message may come from a learner: no raw escapes
        click.echo(f"cks-lab: {self.prefix}: {escape_controls(self.message)}", err=True)


class InternalError(Fail):
    """Not the learner's fault: a bug. Still exit 2 (1 means "some checks fail")."""

    prefix = "internal error"


class Interrupted(click.ClickException):
    exit_code = 130

    def show(self, file: Any = None) -> None:
        click.echo("cks-lab: interrupted", err=True)


def lab_errors(fn: F) -> F:
    """One stderr line for every error, exit 2 (130 on Ctrl-C); see the module doc."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # click's own: usage errors, --help, a declined confirmation
        except LabError as e:
            if _debug():
                raise
            raise Fail(str(e)) from None
        except KeyboardInterrupt:
            raise Interrupted("interrupted") from None  # even with --debug: not a bug
        except OSError as e:
            if _debug() or e.errno == errno.EPIPE:
                raise  # click ends quietly on a closed pipe (`... | head`)
            if e.filename is not None:
                raise Fail(f"{e.filename}: {e.strerror or e}") from None
            raise _internal(e) from None
        except Exception as e:
            if _debug():
                raise
            raise _internal(e) from None

    return wrapper  # type: ignore[return-value]


def _internal(e: BaseException) -> InternalError:
    return InternalError(
        f"{type(e).__name__}: {e} (this is a bug; rerun with --debug for the traceback)"
    )


def _debug() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.find_root().params.get("debug"))
