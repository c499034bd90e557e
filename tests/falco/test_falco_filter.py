"""The filter compiler and evaluator: operator semantics (cases/operators.yaml),
compile errors and warnings (cases/filter_errors.yaml), and the output helpers."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from lab.engines.falco.condition.ast import (
    And,
    BinaryCheck,
    FieldRef,
    Identifier,
    ListValue,
    Not,
    Or,
    Transformer,
    UnaryCheck,
    Value,
)
from lab.engines.falco.condition.filter import (
    compile_filter,
    compile_operand,
    operand_type,
    output_key,
    render,
)
from lab.engines.falco.condition.parser import parse
from lab.engines.falco.condition.pathprefix import PathPrefixSearch
from lab.engines.falco.condition.patterns import compile_glob
from lab.engines.falco.errors import ConditionError

CASES = Path(__file__).parent / "cases"
OPERATORS = yaml.safe_load((CASES / "operators.yaml").read_text())
ERRORS = yaml.safe_load((CASES / "filter_errors.yaml").read_text())


@pytest.mark.parametrize("case", OPERATORS, ids=lambda c: c["cond"])
def test_operator_semantics(case: dict[str, Any]) -> None:
    flt = compile_filter(parse(case["cond"]))
    for event in case.get("match", []):
        assert flt.match(event) is True, event
    for event in case.get("no_match", []):
        assert flt.match(event) is False, event


@pytest.mark.parametrize("case", ERRORS["errors"], ids=lambda c: c["cond"])
def test_compile_errors(case: dict[str, Any]) -> None:
    with pytest.raises(ConditionError) as err:
        compile_filter(parse(case["cond"]))
    assert err.value.message == case["error"]
    assert err.value.pos == case["cond"].index(case["at"])


@pytest.mark.parametrize("case", ERRORS["warnings"], ids=lambda c: c["cond"])
def test_compile_warnings(case: dict[str, Any]) -> None:
    flt = compile_filter(parse(case["cond"]))
    want = [(w["message"], case["cond"].index(w["at"])) for w in case["warnings"]]
    assert [(w.message, w.pos) for w in flt.warnings] == want


def test_hand_built_ast_without_the_parser() -> None:
    # (evt.type = open or evt.type = openat) and not proc.name in (cat) and fd.name exists
    expr = And((
        Or((BinaryCheck(FieldRef("evt.type"), "=", Value("open")),
            BinaryCheck(FieldRef("evt.type"), "=", Value("openat")))),
        Not(BinaryCheck(FieldRef("proc.name"), "in", ListValue((Value("cat"),)))),
        UnaryCheck(FieldRef("fd.name"), "exists"),
    ))
    flt = compile_filter(expr)
    assert flt.evttypes == frozenset({"open", "openat"})
    assert flt.match({"evt.type": "openat", "proc.name": "vi", "fd.name": "/x"})
    assert not flt.match({"evt.type": "openat", "proc.name": "cat", "fd.name": "/x"})
    assert not flt.match({"evt.type": "openat", "proc.name": "vi"})
    assert flt.warnings == ()


def test_unresolved_macro_is_an_error_at_its_place() -> None:
    with pytest.raises(ConditionError) as err:
        compile_filter(And((BinaryCheck(FieldRef("proc.name"), "=", Value("x")),
                            Identifier("spawned_process", pos=14))))
    assert err.value.message == "Undefined macro 'spawned_process' used in filter."
    assert err.value.pos == 14


def test_events_may_be_any_mapping_and_odd_values_never_raise() -> None:
    class Ev(dict[str, Any]):
        pass

    flt = compile_filter(parse("proc.name in (a, b) and evt.num > 1 and fd.sip = 1.2.3.4"))
    assert flt.match(Ev({"proc.name": "a", "evt.num": 2, "fd.sip": "1.2.3.4"}))
    odd = {"proc.name": ["a"], "evt.num": {"x": 1}, "fd.sip": 1234}
    assert flt.match(odd) is False
    flt = compile_filter(parse("proc.name = a or evt.is_open_read = true or fd.types in (x)"))
    assert flt.match({"proc.name": 7, "evt.is_open_read": "maybe", "fd.types": 3}) is False


def test_compile_operand_gives_output_values() -> None:
    ev = {"proc.name": "cat", "proc.pname": "bash", "proc.aname[2]": "sshd",
          "fd.sip": "0:0:0:0:0:0:0:1", "evt.is_open_read": True, "fd.types": "(file,ipv4)",
          "proc.pid": 42, "k8s.pod.label[app]": "web"}
    assert compile_operand(FieldRef("proc.aname", "1"))(ev) == "bash"
    assert compile_operand(FieldRef("proc.aname", "2"))(ev) == "sshd"
    assert compile_operand(FieldRef("proc.aname", "3"))(ev) is None
    assert compile_operand(FieldRef("fd.sip"))(ev) == "::1"
    assert compile_operand(FieldRef("evt.is_open_read"))(ev) is True
    assert compile_operand(FieldRef("fd.types"))(ev) == ["file", "ipv4"]
    assert compile_operand(FieldRef("proc.pid"))(ev) == 42
    assert compile_operand(FieldRef("k8s.pod.label.app"))(ev) == "web"
    assert compile_operand(Transformer("toupper", FieldRef("proc.name")))(ev) == "CAT"
    assert compile_operand(Transformer("len", FieldRef("proc.name")))(ev) == 3
    assert compile_operand(FieldRef("proc.aname"))(ev) is None  # "any ancestor" is a filter
    with pytest.raises(ConditionError, match="filter only"):
        compile_operand(FieldRef("fd.net"))
    with pytest.raises(ConditionError, match="nonexistent field proc.nobody"):
        compile_operand(FieldRef("proc.nobody"))


def test_output_key_and_types() -> None:
    assert output_key(FieldRef("proc.aname", "2")) == "proc.aname[2]"
    assert output_key(FieldRef("evt.arg.flags")) == "evt.arg.flags"
    assert output_key(Transformer("tolower", FieldRef("fd.name"))) == "tolower(fd.name)"
    assert operand_type(Transformer("len", FieldRef("proc.name"))) == ("UINT64", False)
    assert operand_type(FieldRef("fd.types")) == ("CHARBUF", True)


@pytest.mark.parametrize("value, ftype, text", [
    (None, "CHARBUF", "<NA>"),
    ("bash", "CHARBUF", "bash"),
    (0, "UINT32", "0"),
    (-2, "INT64", "-2"),
    (True, "BOOL", "true"),
    (False, "BOOL", "false"),
    (["file", "ipv4"], "CHARBUF", "(file,ipv4)"),
    ("10.0.0.1", "IPADDR", "10.0.0.1"),
    (0.25, "DOUBLE", "0.2"),
    (b"ab\x00\x7f", "BYTEBUF", "ab.."),
])
def test_render(value: Any, ftype: str, text: str) -> None:
    assert render(value, ftype) == text


# pmatch against its definition: some search path's components prefix the value's.
_components = st.lists(st.sampled_from(["a", "b", "ab"]), max_size=4)


def _path(comps: list[str], lead: bool) -> str:
    return ("/" if lead else "") + "/".join(comps)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_components, st.booleans()), max_size=4), _components)
def test_pmatch_is_a_component_prefix_search(searches: list[tuple[list[str], bool]],
                                             value: list[str]) -> None:
    search = PathPrefixSearch([_path(c, lead) for c, lead in searches])
    want = any(value[:len(c)] == c for c, _ in searches)
    assert search.match(_path(value, True)) == want


# glob agrees with POSIX fnmatch on patterns without escapes or [^...].
@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab/*?.[]!", max_size=8), st.text(alphabet="ab/.", max_size=8))
def test_glob_agrees_with_fnmatch(pattern: str, text: str) -> None:
    assert compile_glob(pattern)(text) == fnmatch.fnmatchcase(text, pattern)
