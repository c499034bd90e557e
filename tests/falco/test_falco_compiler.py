"""Lists, macros, exceptions and whole-file compiles: the table in cases/loader_compiler.yaml.

The filter compiler is a stand-in here (evt.type sets, unknown "bad.*" fields) so that
these tests pin the loader's own stages; the real filter is exercised by test_falco_engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_falco_reader import collect, issue_text, same_issues

from lab.engines.falco import compiler
from lab.engines.falco.collector import Context, Entry, ExceptionInfo, Issues, RuleLoadError
from lab.engines.falco.condition.ast import (
    And,
    BinaryCheck,
    Expr,
    FieldRef,
    Identifier,
    ListValue,
    Not,
    Operand,
    Or,
    Transformer,
    UnaryCheck,
    Value,
)
from lab.engines.falco.condition.parser import parse
from lab.engines.falco.condition.printer import to_text
from lab.engines.falco.errors import ConditionError
from lab.engines.falco.output import compile_output

CASES = yaml.safe_load((Path(__file__).parent / "cases" / "loader_compiler.yaml").read_text())


class StandInFilter:
    """Enough of a filter for the loader: which evt.types a condition can match."""

    def __init__(self, expr: Expr) -> None:
        self.evttypes = self.types(expr)

    def match(self, event: Mapping[str, Any]) -> bool:
        return True

    @classmethod
    def types(cls, e: Expr) -> frozenset[str] | None:
        if isinstance(e, BinaryCheck) and e.left == FieldRef("evt.type"):
            if e.op == "=" and isinstance(e.right, Value):
                return frozenset({e.right.text})
            if e.op == "in" and isinstance(e.right, ListValue):
                return frozenset(v.text for v in e.right.items)
        if isinstance(e, And):
            known = [t for t in (cls.types(c) for c in e.children) if t is not None]
            return frozenset.intersection(*known) if known else None
        if isinstance(e, Or):
            parts = [cls.types(c) for c in e.children]
            if any(p is None for p in parts):
                return None
            return frozenset().union(*(p for p in parts if p is not None))
        return None


def _check_fields(e: Expr) -> None:
    if isinstance(e, (And, Or)):
        for c in e.children:
            _check_fields(c)
    elif isinstance(e, Not):
        _check_fields(e.child)
    elif isinstance(e, (UnaryCheck, BinaryCheck)):
        op: Operand = e.left
        while isinstance(op, Transformer):
            op = op.arg
        if op.name.startswith("bad."):
            raise ConditionError(f"filter_check called with nonexistent field {op.name}", op.pos)


def stand_in_filter(e: Expr) -> StandInFilter:
    _check_fields(e)
    return StandInFilter(e)


KNOWN_OUTPUT_FIELDS = {"fd.name", "proc.name", "evt.type", "evt.latency.ns", "container.info"}


def stand_in_operand(op: Operand) -> tuple[Any, Any]:
    inner = op
    while isinstance(inner, Transformer):
        inner = inner.arg
    if inner.name not in KNOWN_OUTPUT_FIELDS:
        raise ConditionError(f"filter_check called with nonexistent field {inner.name}")
    key = inner.name
    return (lambda ev: ev.get(key)), str


BACKEND = compiler.Backend(
    parse=parse,
    compile_filter=stand_in_filter,
    compile_output=lambda text: compile_output(text, stand_in_operand),
)


def compile_text(text: str) -> tuple[compiler.CompileOutput | None, list[str]]:
    col, [(ok, issues)] = collect([("rules.yaml", text)])
    assert ok, [issue_text(i) for i in issues]
    out = compiler.compile_all(col, issues, BACKEND)
    return out, [issue_text(i) for i in issues]


@pytest.mark.parametrize("case", CASES["list_substitution"],
                         ids=[c["cond"] for c in CASES["list_substitution"]])
def test_list_substitution(case: dict[str, Any]) -> None:
    got, used = compiler.resolve_list(case["cond"], case["list"], case["items"])
    assert (got, used) == (case["want"], case.get("used", True))


def _entry(v: Any) -> Entry:
    if isinstance(v, list):
        return Entry(is_list=True, items=[_entry(x) for x in v])
    return Entry(item=str(v))


@pytest.mark.parametrize("case", CASES["exceptions"], ids=[c["name"] for c in CASES["exceptions"]])
def test_exception_building(case: dict[str, Any]) -> None:
    exs = [
        ExceptionInfo(e["name"], Context("r.yaml", 1), _entry(e["fields"]), _entry(e["comps"]),
                      [_entry(v) for v in e["values"]])
        for e in case["exceptions"]
    ]
    if "error" in case:
        with pytest.raises(RuleLoadError) as err:
            compiler.build_exceptions(case["cond"], exs)
        assert err.value.message == case["error"]
        return
    text, fields = compiler.build_exceptions(case["cond"], exs)
    assert text == case["want"]
    if "fields" in case:
        assert sorted(fields) == case["fields"]
    parse(text)  # what Falco writes out must parse


@pytest.mark.parametrize("case", CASES["compile"], ids=[c["name"] for c in CASES["compile"]])
def test_compile_case(case: dict[str, Any]) -> None:
    out, issues = compile_text(case["text"])
    assert same_issues(issues, case["issues"])
    if "conditions" in case:
        assert out is not None
        assert {r.name: to_text(r.ast) for r in out.rules} == case["conditions"]
    if "outputs" in case:
        assert out is not None
        assert {r.name: r.output for r in out.rules} == case["outputs"]


def test_macro_resolution_substitutes_only_names_under_and_or_not() -> None:
    check = BinaryCheck(FieldRef("evt.type"), "=", Value("open"))
    expr = And((Identifier("m"), Not(Identifier("m")), check))
    new, res = compiler.resolve_macros(expr, {"m": check})
    assert new == And((check, Not(check), check))
    assert res.resolved == ["m", "m"] and not res.unknown and not res.errors


def test_macro_resolution_expands_macros_inside_macros() -> None:
    leaf = UnaryCheck(FieldRef("fd.name"), "exists")
    table: dict[str, Expr] = {"outer": Or((Identifier("inner"), leaf)), "inner": leaf}
    new, res = compiler.resolve_macros(Identifier("outer", 7), table)
    assert new == Or((leaf, leaf)) and res.resolved == ["inner", "outer"]


def test_macro_resolution_reports_loops_and_unknown_names_with_positions() -> None:
    table: dict[str, Expr] = {"a": Identifier("b", 3), "b": Identifier("a", 5)}
    _, res = compiler.resolve_macros(And((Identifier("a", 0), Identifier("zz", 9))), table)
    assert res.errors == [("reference loop in macro 'a'", 5)]
    assert ("zz", 9) in res.unknown


def test_compile_results_are_shared_across_compiles() -> None:
    text = ("- macro: m\n  condition: evt.type = open\n"
            "- rule: R\n  desc: d\n  condition: m\n  output: o\n  priority: debug\n")
    col, _ = collect([("r.yaml", text)])
    cache = compiler.CompileCache()
    first = compiler.compile_all(col, Issues(), BACKEND, cache)
    second = compiler.compile_all(col, Issues(), BACKEND, cache)
    assert first is not None and second is not None
    assert first.rules[0].filter is second.rules[0].filter
    assert "evt.type = open" in cache.parses
