"""Time spent on the open scenario against its suggested time."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.widgets import Static

from lab.tui.views import clock_text


class ScenarioTimer(Static):
    """Shows earlier sessions' time plus this one's; `take()` hands the unsaved
    seconds to the caller to store (so a crash loses at most one save interval)."""

    def __init__(self, suggested_minutes: int, earlier: float, clock: Callable[[], float]) -> None:
        super().__init__(id="timer")
        self._suggested = suggested_minutes * 60
        self._earlier = earlier
        self._clock = clock
        self._since = clock()
        self._paused = False

    def on_mount(self) -> None:
        self.tick()
        self.set_interval(1, self.tick)

    @property
    def elapsed(self) -> float:
        return self._earlier + (0.0 if self._paused else self._clock() - self._since)

    def take(self) -> float:
        """Seconds not yet saved; they now count as earlier time."""
        if self._paused:
            return 0.0
        now = self._clock()
        fresh = now - self._since
        self._earlier += fresh
        self._since = now
        return fresh

    def pause(self) -> None:
        """Stop counting (call take() first to keep what was counted)."""
        self.take()
        self._paused = True

    def resume(self) -> None:
        if self._paused:
            self._paused = False
            self._since = self._clock()

    def tick(self) -> None:
        spent = self.elapsed
        over = spent > self._suggested
        self.update(
            Text.assemble(
                ("⏱ ", ""),
                (clock_text(spent), "bold red" if over else "bold"),
                f" / {clock_text(self._suggested)}",
                (" over the suggested time" if over else "", "red"),
            )
        )
