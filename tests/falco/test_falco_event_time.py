"""An event's time: what Falco could hold is used, anything else falls back."""

from __future__ import annotations

from typing import Any

import pytest

from lab.engines.falco.engine import load_rules

RULES = (
    "- rule: x\n  desc: d\n  condition: evt.type=execve\n  output: t=%evt.time\n"
    "  priority: info\n"
)


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        (5, "1970-01-01T00:00:00.000000005Z"),
        ("2026-11-27T10:00:00.5Z", "2026-11-27T10:00:00.500000000Z"),
        (2**64 - 1, "2554-07-21T23:34:33.709551615Z"),
        # Not a time Falco could hold (unsigned 64-bit ns): the default time is used.
        (-(10**21), "2026-01-01T00:00:00.000000000Z"),
        (2**64, "2026-01-01T00:00:00.000000000Z"),
        (float("nan"), "2026-01-01T00:00:00.000000000Z"),
        (float("inf"), "2026-01-01T00:00:00.000000000Z"),
        ("2026-13-45T00:00:00Z", "2026-01-01T00:00:00.000000000Z"),
    ],
)
def test_event_time_or_the_default(value: Any, iso: str) -> None:
    ruleset = load_rules([("r.yaml", RULES)]).ruleset
    assert ruleset is not None
    [alert] = ruleset.process({"evt.type": "execve", "evt.time": value},
                              default_time="2026-01-01T00:00:00Z")
    assert alert.time == iso
