"""Progress callbacks for long work (start, check, reset, cluster up): a message per step.

Kept apart from lab.backends.base so a caller that only passes one along (the
TUI, at start-up) does not load the backend contract and the evidence model.

A message may be a ProgressEvent: still a str (every consumer can print it),
plus the phase it belongs to and how far along it is, for a progress bar.
"""

from __future__ import annotations

from collections.abc import Callable


class ProgressEvent(str):
    """A progress message that also says its phase and, when known, done/total."""

    phase: str
    done: int | None
    total: int | None

    def __new__(
        cls, message: str, phase: str = "", done: int | None = None, total: int | None = None
    ) -> ProgressEvent:
        self = super().__new__(cls, message)
        self.phase = phase
        self.done = done
        self.total = total
        return self

    @property
    def fraction(self) -> float | None:
        """0.0–1.0 when done/total are known, for a bar; None otherwise."""
        if self.done is None or not self.total:
            return None
        return max(0.0, min(1.0, self.done / self.total))


Progress = Callable[[str], None]


def no_progress(message: str) -> None:
    pass
