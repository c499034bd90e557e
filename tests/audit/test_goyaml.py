"""The go-yaml emulation (sigs.k8s.io/yaml on goyaml.v2) that policies and manifests share."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.engines.audit import goyamlsyntax
from lab.engines.audit.goyaml import (
    MAX_DEPTH,
    GoYAMLError,
    Located,
    go_int,
    load_document,
    yaml_to_json,
)
from lab.engines.audit.policy import PolicyError, load_policy

TABLE = yaml.safe_load((Path(__file__).parent / "cases" / "goyaml.yaml").read_text())
LIBYAML = hasattr(yaml, "CSafeLoader")


@pytest.fixture(params=["libyaml", "pure-python"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "libyaml" and not LIBYAML:
        pytest.skip("needs libyaml")
    monkeypatch.setattr(goyamlsyntax, "_LIBYAML", request.param == "libyaml")
    return str(request.param)


def _data(case: dict[str, Any]) -> bytes:
    text: str = case["data"]
    return text.encode("latin-1") if case.get("latin1") else text.encode()


def _plain(v: Located | None) -> Any:
    if v is None:
        return None
    if isinstance(v.value, dict):
        return {k: _plain(item) for k, item in v.value.items()}
    if isinstance(v.value, list):
        return [_plain(item) for item in v.value]
    return v.value


@pytest.mark.parametrize("case", TABLE["values"], ids=lambda c: repr(c["data"])[:60])
def test_upstream_values(case: dict[str, Any], reader: str) -> None:
    top, duplicates = yaml_to_json(_data(case))
    assert _plain(top) == case["value"] and duplicates == []
    if isinstance(case["value"], float | int) and not isinstance(case["value"], bool):
        assert type(_plain(top)) is type(case["value"])


@pytest.mark.parametrize("case", TABLE["errors"], ids=lambda c: repr(c["data"])[:60])
def test_upstream_errors(case: dict[str, Any], reader: str) -> None:
    if case.get("libyaml") and reader != "libyaml":
        pytest.skip("PyYAML's own parser words this one differently")
    start = time.perf_counter()
    with pytest.raises(GoYAMLError) as info:
        yaml_to_json(_data(case))
    assert info.value.message == case["error"]
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("case", TABLE["strict"], ids=lambda c: repr(c["data"])[:60])
def test_upstream_strict_duplicates(case: dict[str, Any]) -> None:
    top, duplicates = yaml_to_json(_data(case))
    assert _plain(top) == case["value"]
    assert duplicates == case["duplicates"]


def test_upstream_merge_keys(reader: str) -> None:
    top, _ = yaml_to_json(TABLE["merge"].encode())
    maps = _plain(top)
    want = {"x": 1, "y": 2, "r": 10, "label": "center/big"}
    assert {name: m for name, m in maps.items() if name != "anchors" and m != want} == {}
    assert len(maps) == 9


def test_nan_is_decoded_then_refused_by_json() -> None:
    # goyaml decodes .NaN (TestUnmarshalNaN); json.Marshal then refuses it.
    with pytest.raises(GoYAMLError) as info:
        yaml_to_json(b"a: 1\nnotanum: .NaN")
    assert (info.value.message, info.value.line) == ("json: unsupported value: NaN", 2)


@pytest.mark.parametrize(
    ("plain", "value"),
    [("0x1F", 31), ("0o17", 15), ("017", 15), ("-0b101", -5), ("18446744073709551615", 2**64 - 1),
     ("9223372036854775807", 2**63 - 1), ("+12", 12), ("-9223372036854775808", -(2**63)),
     ("-9223372036854775809", None), ("+18446744073709551615", None), ("08", None), ("0x", None),
     ("1e3", None)],
)
def test_yaml_ints_use_go_parse_int_then_parse_uint(plain: str, value: int | None) -> None:
    assert go_int(plain) == value


def test_out_of_range_float_stays_a_string() -> None:
    # ParseFloat fails with ErrRange, so goyaml resolves the scalar as a string.
    top, _ = yaml_to_json(b"big: 1e400\nsmall: 1e-400\n")
    assert _plain(top) == {"big": "1e400", "small": 0.0}


def test_merge_keys_follow_go_yaml_v2() -> None:
    doc, lines = load_document(
        "base: &base {a: 1, b: 2}\n"
        "x: {a: 0, <<: *base, b: 3}\n"  # merged where "<<" stands: overrides a, then b wins
        "z: {<<: [{a: 1}, {a: 2, c: 3}]}\n"  # the first map of a list wins
    )
    assert doc["x"] == {"a": 1, "b": 3}
    assert doc["z"] == {"a": 1, "c": 3}
    assert lines.of("x") == 2
    with pytest.raises(GoYAMLError, match="map merge requires map or sequence of maps"):
        load_document("x: {<<: [1, 2]}\n")


def test_yaml_1_1_keys_become_json_strings() -> None:
    # goyaml reads the key "y" as true; sigs.k8s.io/yaml then writes it as "true".
    doc, lines = load_document("y: 1\non: 2\n9: 3\n")
    assert doc == {"true": 2, "9": 3}
    assert lines.of("true") == 2  # the later duplicate wins, with its line


def test_lines_give_keys_their_line_and_items_theirs() -> None:
    doc, lines = load_document("a: 1\nb:\n  c:\n  - x\n  -\n    z\n")
    assert doc == {"a": 1, "b": {"c": ["x", "z"]}}
    assert (lines.of(), lines.of("a"), lines.of("b"), lines.of("b", "c")) == (1, 1, 2, 3)
    assert (lines.of("b", "c", 0), lines.of("b", "c", 1), lines.of("b", "nope")) == (4, 6, 2)


def test_anchor_redefinition_is_allowed() -> None:
    doc, _ = load_document("a: &x 1\nb: &x 2\nc: *x\n")
    assert doc == {"a": 1, "b": 2, "c": 2}


def test_reader_error_names_the_character_for_kubelet() -> None:
    with pytest.raises(GoYAMLError) as info:
        load_document("a: b\n\x01\n")
    assert info.value.message == (
        "yaml: control characters are not allowed (unacceptable character #x0001)")
    assert info.value.line == 2


def _alias_chain(anchors: int, depth: int) -> str:
    # Each anchor nests the previous one `depth` levels down: the expansion is deep, not big.
    rows = ["a0: &a0 x"]
    for i in range(1, anchors):
        rows.append(f"a{i}: &a{i} " + "[" * depth + f"*a{i - 1}" + "]" * depth)
    return "\n".join(rows) + "\n"


@pytest.mark.parametrize(("anchors", "depth"), [(150, 90), (60, 95), (12, 10)])
def test_deep_alias_expansion_is_refused_not_a_crash(anchors: int, depth: int) -> None:
    text = _alias_chain(anchors, depth)
    message = f"yaml: nesting deeper than {MAX_DEPTH} levels (refused by the lab)"
    with pytest.raises(GoYAMLError) as info:
        load_document(text)
    assert info.value.message == message
    with pytest.raises(PolicyError) as perr:
        load_policy(text)
    assert perr.value.errors == [f"failed decoding: {message}"]


def test_alias_expansion_within_the_depth_limit_decodes() -> None:
    doc, _ = load_document(_alias_chain(5, 10))
    value = doc["a4"]
    for _ in range(4 * 10):
        value = value[0]
    assert value == "x"
