"""Progress callbacks for long work (start, check, reset): a message per step.

Kept apart from lab.backends.base so a caller that only passes one along (the
TUI, at start-up) does not load the backend contract and the evidence model.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str], None]


def no_progress(message: str) -> None:
    pass
