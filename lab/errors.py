"""The one error shape every layer raises: a message with a place.

Engines, the scenario loader and backends raise subclasses of ``LabError``; the
CLI and TUI print ``str(err)`` as one line a learner can act on.
"""

from __future__ import annotations


class LabError(Exception):
    """An error with a location: file, line, item (a field path or rule name)."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        item: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.item = item

    def location(self) -> str:
        where = self.file or ""
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        return where

    def __str__(self) -> str:
        parts = [p for p in (self.location(), self.item) if p]
        prefix = ": ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message
