from __future__ import annotations

import pytest

from lab.timefmt import duration


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-5, "0s"), (0, "0s"), (40.9, "40s"), (60, "1m"), (754, "12m"), (3599, "59m"),
     (3600, "1h 00m"), (3600 + 5 * 60 + 59, "1h 05m"), (26 * 3600, "26h 00m")],
)  # fmt: skip
def test_one_way_to_say_how_long(seconds: float, text: str) -> None:
    assert duration(seconds) == text
