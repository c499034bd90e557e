"""ProgressEvent: a progress message that is still a str, plus where long work stands."""

from __future__ import annotations

import pytest

from lab.work import ProgressEvent


def test_event_is_the_message_for_every_str_consumer() -> None:
    e = ProgressEvent("pulling the node image", phase="create", done=1, total=7)
    assert e == "pulling the node image"
    assert f"{e}!" == "pulling the node image!"
    assert (e.phase, e.done, e.total) == ("create", 1, 7)


@pytest.mark.parametrize(
    ("done", "total", "fraction"),
    [
        (0, 4, 0.0),
        (2, 4, 0.5),
        (4, 4, 1.0),
        (5, 4, 1.0),
        (None, 4, None),
        (1, None, None),
        (1, 0, None),
    ],
)
def test_fraction_for_a_bar(done: int | None, total: int | None, fraction: float | None) -> None:
    assert ProgressEvent("x", done=done, total=total).fraction == fraction


def test_plain_message_has_no_phase() -> None:
    e = ProgressEvent("hello")
    assert (e.phase, e.done, e.total, e.fraction) == ("", None, None, None)
