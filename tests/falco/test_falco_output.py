"""Output formats and alert rendering: the table in cases/loader_output.yaml, plus times."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.engines.falco.condition.ast import FieldRef, Operand, Transformer
from lab.engines.falco.errors import ConditionError
from lab.engines.falco.output import (
    OutputError,
    compile_output,
    format_evt_time,
    format_iso8601,
    operand_key,
    parse_time,
)

CASES = yaml.safe_load((Path(__file__).parent / "cases" / "loader_output.yaml").read_text())
KNOWN = {"proc.name", "proc.pid", "proc.aname", "evt.arg.path", "fd.name"}
TRANSFORMERS = {"toupper": str.upper, "tolower": str.lower}


def stand_in_operand(op: Operand) -> tuple[Any, Any]:
    if isinstance(op, Transformer):
        read, _ = stand_in_operand(op.arg)
        fn = TRANSFORMERS[op.name]
        return (lambda ev: None if read(ev) is None else fn(str(read(ev)))), str
    if op.name not in KNOWN:
        raise ConditionError(f"filter_check called with nonexistent field {op.name}")
    key = operand_key(op)
    return (lambda ev: ev.get(key)), str


@pytest.mark.parametrize("case", CASES, ids=[c["format"] or "empty" for c in CASES])
def test_output_case(case: dict[str, Any]) -> None:
    if "error" in case:
        with pytest.raises(OutputError) as err:
            compile_output(case["format"], stand_in_operand)
        assert err.value.message == case["error"]
        return
    fmt = compile_output(case["format"], stand_in_operand)
    assert fmt.render(case["event"]) == case["text"]
    if "fields" in case:
        assert fmt.values(case["event"]) == case["fields"]


def test_operand_keys_are_libsinsp_token_names() -> None:
    assert operand_key(FieldRef("proc.aname", "2")) == "proc.aname[2]"
    assert operand_key(Transformer("tolower", Transformer("basename", FieldRef("fd.name")))) == (
        "tolower(basename(fd.name))")


def test_times() -> None:
    ts = parse_time("2026-11-27T10:00:01.000000042Z")
    assert ts == 1795773601_000000042
    assert format_evt_time(ts) == "10:00:01.000000042"
    assert format_iso8601(ts) == "2026-11-27T10:00:01.000000042Z"
    assert parse_time("2026-11-27T11:00:01+01:00") == 1795773601_000000000
    assert parse_time(5) == 5 and parse_time(None) is None and parse_time("soon") is None


def test_time_fields_come_from_the_event_timestamp() -> None:
    def operand(op: Operand) -> tuple[Any, Any]:
        return (lambda ev: ev.get("evt.time")), str

    fmt = compile_output(
        "%evt.time|%evt.time.s|%evt.datetime|%evt.datetime.s|%evt.time.iso8601|%evt.rawtime"
        "|%evt.rawtime.s|%evt.rawtime.ns|%8evt.time", operand)
    ts = 1795773601_000000042
    assert fmt.render({"evt.time": "ignored"}, ts).split("|") == [
        "10:00:01.000000042", "10:00:01", "2026-11-27 10:00:01.000000042",
        "2026-11-27 10:00:01", "2026-11-27T10:00:01.000000042+0000", str(ts),
        "1795773601", "42", "10:00:01"]
    values = fmt.values({}, ts)
    assert values["evt.time"] == values["evt.datetime"] == values["evt.time.iso8601"] == ts
    assert (values["evt.rawtime.s"], values["evt.rawtime.ns"]) == (1795773601, 42)
