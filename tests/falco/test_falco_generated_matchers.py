"""The generated per-event-type matchers decide exactly as the rules' closures.

Ruleset.process runs closures for an event type's first COMPILE_AFTER events, then
a generated function; a lab check sees too few events to reach it, so these
tests build one ruleset that only uses closures and one that is switched to the
generated functions for every event type, and replay the default ruleset's cases
through both.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
from test_falco_default_rules import CASES, asset, case_id, enable_all, make_event

from lab.engines.falco import engine
from lab.engines.falco.engine import Ruleset, load_rules

EVENT_TYPES = sorted(
    {make_event(s)["evt.type"] for c in CASES for s in [*c.get("fires", []), *c.get("quiet", [])]}
)


@cache
def ruleset(local: str | None, matching: str, generated: bool) -> Ruleset:
    sources = [("falco_rules.yaml", asset("falco_rules.yaml")), ("all.yaml", enable_all())]
    if local is not None:
        sources.append(("falco_rules.local.yaml", local))
    result = load_rules(sources, rule_matching=matching)  # type: ignore[arg-type]
    assert result.ruleset is not None
    saved = engine.COMPILE_AFTER
    engine.COMPILE_AFTER = 1 if generated else 10**9
    try:
        for etype in EVENT_TYPES:  # a type's matcher is made, and counts, from its first event
            for _ in range(2):
                result.ruleset.process({"evt.type": etype})
    finally:
        engine.COMPILE_AFTER = saved
    return result.ruleset


def alerts(rs: Ruleset, event: dict[str, Any]) -> list[dict[str, Any]]:
    return [a.to_json() for a in rs.process(event, default_time="2026-11-27T10:00:00Z")]


@pytest.mark.parametrize("matching", ["first", "all"])
@pytest.mark.parametrize("case", CASES, ids=[case_id(i, c) for i, c in enumerate(CASES)])
def test_generated_matcher_agrees_with_closures(case: dict[str, Any], matching: str) -> None:
    closures = ruleset(case.get("local"), matching, False)
    generated = ruleset(case.get("local"), matching, True)
    for spec in [*case.get("fires", []), *case.get("quiet", [])]:
        event = make_event(spec)
        assert alerts(generated, event) == alerts(closures, event), spec
    for spec in case.get("fires", []):
        names = [a["rule"] for a in alerts(generated, make_event(spec))]
        if matching == "all":
            assert case["rule"] in names, spec
        else:
            assert names == [spec.get("first", case["rule"])], spec
