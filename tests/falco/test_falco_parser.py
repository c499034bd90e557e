"""The condition parser against libsinsp's parser tests (as data) and the lab's own cases.

cases/parser_accept.yaml: conditions that parse; optional expected AST (`ast`, in the
compact form `dump` writes), node offsets (`positions`, in the shape of upstream's
pos_visitor) and canonical text (`text`). cases/parser_reject.yaml: conditions that
do not, with libsinsp's message (`error`, a substring) and offset (`pos`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from lab.engines.falco.condition.ast import (
    And,
    BinaryCheck,
    Expr,
    FieldRef,
    FieldValue,
    Identifier,
    ListValue,
    Not,
    Operand,
    Or,
    Rhs,
    Transformer,
    UnaryCheck,
    Value,
)
from lab.engines.falco.condition.lexer import (
    TRANSFORMERS,
    supported_operators,
    supported_transformers,
)
from lab.engines.falco.condition.parser import parse
from lab.engines.falco.condition.printer import to_text
from lab.engines.falco.errors import ConditionError

CASES = Path(__file__).parent / "cases"


def dump(node: Expr | Operand | Rhs) -> str:
    """Compact AST text: `(and a (= proc.name "cat"))`, fields `f["arg"]`, `@f` = val(f)."""
    if isinstance(node, And | Or):
        kind = "and" if isinstance(node, And) else "or"
        return f"({kind} " + " ".join(dump(c) for c in node.children) + ")"
    if isinstance(node, Not):
        return f"(not {dump(node.child)})"
    if isinstance(node, Identifier):
        return node.name
    if isinstance(node, UnaryCheck):
        return f"({node.op} {dump(node.left)})"
    if isinstance(node, BinaryCheck):
        return f"({node.op} {dump(node.left)} {dump(node.right)})"
    if isinstance(node, FieldRef):
        return node.name if node.arg is None else f"{node.name}[{_js(node.arg)}]"
    if isinstance(node, Transformer):
        return f"{node.name}({dump(node.arg)})"
    if isinstance(node, FieldValue):
        return "@" + dump(node.operand)
    if isinstance(node, ListValue):
        return "[" + ", ".join(_js(v.text) for v in node.items) + "]"
    return _js(node.text)


def _js(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def positions(node: Expr | Operand | Rhs) -> str:
    """Offsets in the order and words of upstream's pos_visitor (offset only, no line/col)."""
    if isinstance(node, And | Or):
        kind = "and" if isinstance(node, And) else "or"
        return f"{kind}{node.pos} " + " ".join(positions(c) for c in node.children)
    if isinstance(node, Not):
        return f"not{node.pos} {positions(node.child)}"
    if isinstance(node, Identifier):
        return f"identifier{node.pos}"
    if isinstance(node, UnaryCheck):
        return f"unary{node.pos} {positions(node.left)}"
    if isinstance(node, BinaryCheck):
        return f"binary{node.pos} {positions(node.left)} {positions(node.right)}"
    if isinstance(node, FieldRef):
        return f"field{node.pos}"
    if isinstance(node, Transformer):
        return f"transformer{node.pos} {positions(node.arg)}"
    if isinstance(node, FieldValue):
        # upstream: val(f) is a "val" transformer node; a right-hand transformer is itself
        if isinstance(node.operand, FieldRef):
            return f"transformer{node.pos} {positions(node.operand)}"
        return positions(node.operand)
    if isinstance(node, ListValue):
        return f"list{node.pos}"
    return f"value{node.pos}"


def _load(name: str) -> dict[str, list[Any]]:
    table: dict[str, list[Any]] = yaml.safe_load((CASES / name).read_text(encoding="utf-8"))
    return table


def _params(table: dict[str, list[Any]]) -> list[Any]:
    params = []
    for section, entries in table.items():
        for i, entry in enumerate(entries):
            case = entry if isinstance(entry, dict) else {"cond": entry}
            params.append(pytest.param(case, id=f"{section}-{i}"))
    return params


ACCEPT = _params(_load("parser_accept.yaml"))
REJECT = _params(_load("parser_reject.yaml"))


def _variants(cond: str) -> list[str]:
    """upstream's test_accept also reparses with blanks around and spaces turned into
    line breaks, then tabs."""
    spaced = f" {cond} "
    return [spaced, spaced.replace(" ", "\n"), spaced.replace(" ", "\t")]


@pytest.mark.parametrize("case", ACCEPT)
def test_accept(case: dict[str, Any]) -> None:
    expr = parse(case["cond"])
    if "ast" in case:
        assert dump(expr) == case["ast"]
    if "positions" in case:
        assert positions(expr) == case["positions"]
    text = to_text(expr)
    if "text" in case:
        assert text == case["text"]
    assert parse(text) == expr, text
    if case.get("variants", True):
        for variant in _variants(case["cond"]):
            parse(variant)


@pytest.mark.parametrize("case", REJECT)
def test_reject(case: dict[str, Any]) -> None:
    with pytest.raises(ConditionError) as raised:
        parse(case["cond"])
    if "error" in case:
        assert case["error"] in str(raised.value)
    if "pos" in case:
        assert raised.value.pos == case["pos"]


def test_supported_operators_and_transformers_match_libs() -> None:
    # upstream's supported_operators / supported_field_transformers tests, plus libs 0.25's
    # concat (merged after the stored copy of that test)
    assert sorted(supported_operators()) == sorted(
        ["=", "==", "!=", "<=", ">=", "<", ">", "exists", "contains", "icontains", "bcontains",
         "glob", "iglob", "bstartswith", "startswith", "endswith", "in", "intersects", "pmatch",
         "regex"])
    assert sorted(supported_operators(list_only=True)) == ["in", "intersects", "pmatch"]
    assert supported_transformers() == (
        "tolower", "toupper", "b64", "basename", "len", "join", "concat")
    assert supported_transformers(include_val=True)[0] == "val"


def test_case_tables_are_not_empty() -> None:
    assert len(ACCEPT) > 150 and len(REJECT) > 100


def test_nesting_within_reach_parses() -> None:
    depth = 60
    assert parse("(" * depth + "proc.name = a" + ")" * depth) == parse("proc.name = a")


def test_nesting_beyond_reach_is_an_error_not_a_crash() -> None:
    with pytest.raises(ConditionError, match="nests too deeply"):
        parse("(" * 5000 + "a" + ")" * 5000)


def test_long_and_chain_is_one_node() -> None:
    expr = parse(" and ".join(f"m{i}" for i in range(2000)))
    assert isinstance(expr, And) and len(expr.children) == 2000


# -- printer: to_text(e) parses back to e, for any AST the parser can produce ---------

# Small pools of tricky spellings find more than random text, and draw fast.
_FIELD_NAMES = st.sampled_from(["proc.name", "fd.name", "evt.arg.flags", "k8s.pod.label", "a.b_1"])
_IDENTIFIERS = st.sampled_from(
    ["a", "macro", "not", "and", "or", "notz", "in", "val", "tolower", "anyof", "exists", "x_1"])
_NUMBERS = st.sampled_from(["1", "-1", "+2.5", "0x1F", "1.e+5", "0XaB", "-0.1222e+10"])
_TEXT = st.sampled_from(
    ["", " ", "\\", '"', "'", "a\\", '\\"', "\\'", "anyof", "(", ",", "=", "a b", "\n", "val(x.y)",
     "not", "and", "]", "[x]", "\\ ", "é"]) | st.text(max_size=6)
_FIELDS = st.builds(FieldRef, _FIELD_NAMES, st.none() | _TEXT.filter(bool))
_OPERANDS: st.SearchStrategy[Operand] = st.recursive(
    _FIELDS, lambda inner: st.builds(Transformer, st.sampled_from(TRANSFORMERS), inner),
    max_leaves=3)
_FIELD_VALUES = st.builds(FieldValue, _OPERANDS)
_LISTS = st.builds(ListValue, st.lists(st.builds(Value, _TEXT), max_size=4).map(tuple))
_STR_OPS = ["=", "==", "!=", "glob", "iglob", "contains", "icontains", "bcontains",
            "startswith", "bstartswith", "endswith", "regex"]


@st.composite
def _checks(draw: st.DrawFn) -> Expr:
    left = draw(_OPERANDS)
    kind = draw(st.sampled_from(["exists", "num", "str", "list", "modifier"]))
    if kind == "exists":
        return UnaryCheck(left, "exists")
    if kind == "num":
        right: Rhs = draw(st.builds(Value, _NUMBERS) | _FIELD_VALUES)
        return BinaryCheck(left, draw(st.sampled_from(["<", "<=", ">", ">="])), right)
    if kind == "str":
        right = draw(st.builds(Value, _TEXT) | _FIELD_VALUES)
        return BinaryCheck(left, draw(st.sampled_from(_STR_OPS)), right)
    if kind == "list":
        right = draw(_LISTS | st.builds(Value, _IDENTIFIERS) | _FIELD_VALUES)
        return BinaryCheck(left, draw(st.sampled_from(["in", "intersects", "pmatch"])), right)
    op = f"{draw(st.sampled_from(_STR_OPS))} {draw(st.sampled_from(['oneof', 'anyof', 'allof']))}"
    return BinaryCheck(left, op, draw(_LISTS))


_EXPRS: st.SearchStrategy[Expr] = st.recursive(
    _checks() | st.builds(Identifier, _IDENTIFIERS),
    lambda inner: st.builds(Not, inner)
    | st.builds(And, st.lists(inner, min_size=2, max_size=3).map(tuple))
    | st.builds(Or, st.lists(inner, min_size=2, max_size=3).map(tuple)),
    max_leaves=6)


@settings(max_examples=100, deadline=None)
@given(_EXPRS)
def test_to_text_parses_back(expr: Expr) -> None:
    assert parse(to_text(expr)) == expr


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_any_text_parses_or_is_a_located_error(text: str) -> None:
    try:
        parse(text)
    except ConditionError as e:
        assert e.pos is not None and 0 <= e.pos <= len(text)


def test_to_text_quotes_only_what_needs_it() -> None:
    expr = BinaryCheck(FieldRef("fd.name"), "in", ListValue((
        Value("/tmp"), Value("a b"), Value('say "hi"'), Value("C:\\"), Value(""), Value("anyof"))))
    assert to_text(expr) == 'fd.name in (/tmp, "a b", "say \\"hi\\"", C:\\, "", "anyof")'
    assert to_text(parse("proc.aname[2]=bash")) == "proc.aname[2] = bash"
