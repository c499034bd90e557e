"""Errors of the Falco engine: values with a place."""

from __future__ import annotations

from lab.errors import LabError


class ConditionError(LabError):
    """A condition that does not parse or compile; `pos` is the 0-based offset in its text.

    `message` is upstream's wording (libsinsp's parser / filter compiler), so the
    rules loader can wrap it the way Falco does.
    """

    def __init__(self, message: str, pos: int | None = None) -> None:
        super().__init__(message)
        self.pos = pos
