"""Typed records (lab.schema): loading plain data with field paths, and JSON Schema.

Most behaviour is one table of (record, input, expected): the expected value is
either the record `load` returns or the exact list of (location, message)
errors of the SchemaError it raises.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import field
from typing import Annotated, Any, Literal

import pytest

from lab.schema import Loc, Meta, SchemaError, format_loc, json_schema, load, record, record_keys

# --------------------------------------------------------------------------- records under test


@record
class Scalars:
    name: str
    count: int = 0
    enabled: bool = False


@record
class Choices:
    mode: Literal["on", "off"]
    number: Literal[1, 2] = 1


INT_OR_STR = "must be an integer or a string, not"


@record
class Unions:
    note: str | None = None
    size: int | str = 0
    choice: Literal["a", "b"] | None = None


@record
class Collections:
    tags: list[str] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)


@record
class Item:
    name: str
    weight: int = 1


@record
class Box:
    label: str
    items: list[Item] = field(default_factory=list)
    main: Item | None = None
    by_name: dict[str, Item] = field(default_factory=dict)


@record(extra="rest")
class Open:
    name: str
    rest: dict[str, Any] = field(default_factory=dict)


@record
class Constrained:
    api_version: Annotated[str, Meta(alias="apiVersion")]
    port: Annotated[int, Meta(ge=1, le=65535)] = 80
    slug: Annotated[str, Meta(pattern="[a-z]+")] = "x"
    names: Annotated[list[str], Meta(min_items=1)] = field(default_factory=lambda: ["n"])
    pair: Annotated[list[int], Meta(min_items=2)] = field(default_factory=lambda: [1, 2])
    either: Annotated[str, Meta(pattern="ab|abc")] = "ab"
    maybe: Annotated[int | None, Meta(ge=0)] = None


@record
class Range:
    low: int
    high: int

    def _problems(self) -> Iterator[tuple[Loc, str]]:
        if self.low > self.high:
            yield ("high",), f"must not be below low ({self.low})"
            yield (), "is an empty range"


@record
class Ranges:
    name: str
    ranges: list[Range] = field(default_factory=list)

    def _problems(self) -> Iterator[tuple[Loc, str]]:
        if len({(r.low, r.high) for r in self.ranges}) < len(self.ranges):
            yield ("ranges",), "has duplicates"


# --------------------------------------------------------------------------- load: the table


class Errors(list[tuple[Loc, str]]):
    """The expected errors of a case (a bare record instance means: loads to it)."""


def E(*errors: tuple[Loc, str]) -> Errors:
    return Errors(errors)


CASES = [
    # str / int / bool strictness
    pytest.param(Scalars, {"name": "a"}, Scalars(name="a"), id="defaults"),
    pytest.param(
        Scalars, {"name": "a", "count": 3, "enabled": True},
        Scalars(name="a", count=3, enabled=True), id="scalars",
    ),
    pytest.param(Scalars, {"name": 1}, E((("name",), "must be a string, not an integer")),
                 id="int-is-not-str"),
    pytest.param(Scalars, {"name": True}, E((("name",), "must be a string, not a boolean")),
                 id="bool-is-not-str"),
    pytest.param(Scalars, {"name": "a", "count": True},
                 E((("count",), "must be an integer, not a boolean")), id="bool-is-not-int"),
    pytest.param(Scalars, {"name": "a", "count": "3"},
                 E((("count",), "must be an integer, not a string")), id="str-is-not-int"),
    pytest.param(Scalars, {"name": "a", "count": 1.0},
                 E((("count",), "must be an integer, not a number")), id="float-is-not-int"),
    pytest.param(Scalars, {"name": "a", "enabled": 1},
                 E((("enabled",), "must be true or false, not an integer")), id="int-is-not-bool"),
    pytest.param(Scalars, {"name": "a", "enabled": "yes"},
                 E((("enabled",), "must be true or false, not a string")), id="str-is-not-bool"),
    pytest.param(Scalars, {"name": "a", "count": None},
                 E((("count",), "must be an integer, not empty")), id="null-is-not-a-default"),
    # required vs default
    pytest.param(Scalars, {}, E((("name",), "required field is missing")), id="required"),
    pytest.param(Scalars, [], E(((), "must be a mapping, not a list")), id="root-not-mapping"),
    pytest.param(Scalars, None, E(((), "must be a mapping, not empty")), id="root-empty"),
    # Literal
    pytest.param(Choices, {"mode": "on", "number": 2}, Choices(mode="on", number=2),
                 id="literal"),
    pytest.param(Choices, {"mode": "auto"}, E((("mode",), "must be one of 'on', 'off'")),
                 id="literal-unknown-choice"),
    pytest.param(Choices, {"mode": True}, E((("mode",), "must be one of 'on', 'off'")),
                 id="literal-yaml-yes-is-not-on"),
    pytest.param(Choices, {"mode": "on", "number": True},
                 E((("number",), "must be one of 1, 2")), id="literal-bool-is-not-1"),
    pytest.param(Choices, {"mode": "on", "number": "1"},
                 E((("number",), "must be one of 1, 2")), id="literal-str-is-not-1"),
    # X | None, unions of two types
    pytest.param(Unions, {"note": None, "choice": None}, Unions(), id="optional-null"),
    pytest.param(Unions, {"note": "n", "choice": "b"}, Unions(note="n", choice="b"),
                 id="optional-value"),
    pytest.param(Unions, {"note": 5}, E((("note",), "must be a string, not an integer")),
                 id="optional-wrong-type-says-which"),
    pytest.param(Unions, {"choice": "c"}, E((("choice",), "must be one of 'a', 'b'")),
                 id="optional-literal"),
    pytest.param(Unions, {"size": 4}, Unions(size=4), id="union-first"),
    pytest.param(Unions, {"size": "4Gi"}, Unions(size="4Gi"), id="union-second"),
    pytest.param(Unions, {"size": True}, E((("size",), f"{INT_OR_STR} a boolean")),
                 id="union-bool"),
    pytest.param(Unions, {"size": None}, E((("size",), f"{INT_OR_STR} empty")),
                 id="union-without-none"),
    pytest.param(Unions, {"size": [1]}, E((("size",), f"{INT_OR_STR} a list")),
                 id="union-list"),
    # list / dict conversion with locations
    pytest.param(Collections, {"tags": ["a", "b"], "labels": {"x": 1, 2: 3}},
                 Collections(tags=["a", "b"], labels={"x": 1, "2": 3}), id="collections"),
    pytest.param(Collections, {"tags": "a"}, E((("tags",), "must be a list, not a string")),
                 id="list-not-list"),
    pytest.param(Collections, {"tags": ["a", 1, None]},
                 E((("tags", 1), "must be a string, not an integer"),
                   (("tags", 2), "must be a string, not empty")), id="list-items"),
    pytest.param(Collections, {"labels": ["x"]},
                 E((("labels",), "must be a mapping, not a list")), id="dict-not-mapping"),
    pytest.param(Collections, {"labels": {"x": "1", 7: False}},
                 E((("labels", "x"), "must be an integer, not a string"),
                   (("labels", "7"), "must be an integer, not a boolean")), id="dict-values"),
    # nested records
    pytest.param(
        Box, {"label": "b", "items": [{"name": "i"}, {"name": "j", "weight": 2}],
              "main": {"name": "m"}, "by_name": {"k": {"name": "k"}}},
        Box(label="b", items=[Item(name="i"), Item(name="j", weight=2)],
            main=Item(name="m"), by_name={"k": Item(name="k")}),
        id="nested",
    ),
    pytest.param(
        Box, {"label": "b", "items": [{"name": "i"}, {"weight": "2", "colour": "red"}, 3]},
        E((("items", 1, "name"), "required field is missing"),
          (("items", 1, "weight"), "must be an integer, not a string"),
          (("items", 1, "colour"), "unknown field"),
          (("items", 2), "must be a mapping, not an integer")),
        id="nested-list-locations",
    ),
    pytest.param(Box, {"label": "b", "main": {"name": 1}},
                 E((("main", "name"), "must be a string, not an integer")),
                 id="nested-optional-location"),
    pytest.param(Box, {"label": "b", "by_name": {"k": {"name": "k", "weight": None}}},
                 E((("by_name", "k", "weight"), "must be an integer, not empty")),
                 id="nested-dict-location"),
    # unknown keys: refused, or collected by an extra= record
    pytest.param(Scalars, {"name": "a", "nmae": "b", 3: 4},
                 E((("nmae",), "unknown field"), (("3",), "unknown field")), id="unknown"),
    pytest.param(Open, {"name": "a", "x": 1, "y": {"z": [2]}},
                 Open(name="a", rest={"x": 1, "y": {"z": [2]}}), id="extra-collects"),
    pytest.param(Open, {"name": "a"}, Open(name="a", rest={}), id="extra-empty"),
    pytest.param(Open, {"name": 1, "x": 1}, E((("name",), "must be a string, not an integer")),
                 id="extra-still-checks-fields"),
    # Meta constraints and alias
    pytest.param(Constrained, {"apiVersion": "v1"}, Constrained(api_version="v1"), id="meta-ok"),
    pytest.param(
        Constrained,
        {"apiVersion": "v1", "port": 65535, "slug": "abc", "names": ["a"], "pair": [3, 4],
         "either": "abc", "maybe": 0},
        Constrained(api_version="v1", port=65535, slug="abc", names=["a"], pair=[3, 4],
                    either="abc", maybe=0),
        id="meta-bounds-inclusive",
    ),
    pytest.param(Constrained, {"apiVersion": "v1", "port": 0},
                 E((("port",), "must be at least 1")), id="ge"),
    pytest.param(Constrained, {"apiVersion": "v1", "port": 65536},
                 E((("port",), "must be at most 65535")), id="le"),
    pytest.param(Constrained, {"apiVersion": "v1", "port": "0"},
                 E((("port",), "must be an integer, not a string")),
                 id="constraint-not-checked-on-wrong-type"),
    pytest.param(Constrained, {"apiVersion": "v1", "slug": "abc1"},
                 E((("slug",), "'abc1' does not match [a-z]+")), id="pattern-trailing"),
    pytest.param(Constrained, {"apiVersion": "v1", "slug": "1abc"},
                 E((("slug",), "'1abc' does not match [a-z]+")), id="pattern-leading"),
    pytest.param(Constrained, {"apiVersion": "v1", "slug": "abc\n"},
                 E((("slug",), "'abc\\n' does not match [a-z]+")), id="pattern-newline"),
    pytest.param(Constrained, {"apiVersion": "v1", "either": "abcd"},
                 E((("either",), "'abcd' does not match ab|abc")), id="pattern-alternation"),
    pytest.param(Constrained, {"apiVersion": "v1", "names": []},
                 E((("names",), "needs at least 1 item")), id="min-items-1"),
    pytest.param(Constrained, {"apiVersion": "v1", "pair": [1]},
                 E((("pair",), "needs at least 2 items")), id="min-items-2"),
    pytest.param(Constrained, {"apiVersion": "v1", "maybe": -1},
                 E((("maybe",), "must be at least 0")), id="optional-constrained"),
    pytest.param(Constrained, {"api_version": "v1"},
                 E((("apiVersion",), "required field is missing"),
                   (("api_version",), "unknown field")), id="alias-not-the-name"),
    # _problems: cross-field rules, locations relative to the record
    pytest.param(Range, {"low": 1, "high": 1}, Range(low=1, high=1), id="problems-none"),
    pytest.param(Range, {"low": 2, "high": 1},
                 E((("high",), "must not be below low (2)"), ((), "is an empty range")),
                 id="problems"),
    pytest.param(Range, {"low": "2", "high": 1},
                 E((("low",), "must be an integer, not a string")),
                 id="problems-not-run-on-bad-fields"),
    pytest.param(
        Ranges, {"name": "r", "ranges": [{"low": 0, "high": 1}, {"low": 5, "high": 2}]},
        E((("ranges", 1, "high"), "must not be below low (5)"),
          (("ranges", 1), "is an empty range")),
        id="problems-nested-relative",
    ),
    pytest.param(Ranges, {"name": "r", "ranges": [{"low": 0, "high": 1}, {"low": 0, "high": 1}]},
                 E((("ranges",), "has duplicates")), id="problems-outer"),
    # all errors together, in field order, then unknown keys
    pytest.param(
        Scalars, {"count": "x", "enabled": 1, "bogus": 1},
        E((("name",), "required field is missing"),
          (("count",), "must be an integer, not a string"),
          (("enabled",), "must be true or false, not an integer"),
          (("bogus",), "unknown field")),
        id="all-errors",
    ),
    pytest.param(
        Ranges, {"name": 3, "ranges": [{"low": 5, "high": 2}, {"low": 1}]},
        E((("name",), "must be a string, not an integer"),
          (("ranges", 0, "high"), "must not be below low (5)"),
          (("ranges", 0), "is an empty range"),
          (("ranges", 1, "high"), "required field is missing")),
        id="all-errors-nested",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("cls", "data", "expected"), CASES)
def test_load(cls: type, data: Any, expected: Any) -> None:
    if isinstance(expected, Errors):
        with pytest.raises(SchemaError) as info:
            load(cls, data)
        assert info.value.errors == list(expected)
    else:
        assert load(cls, data) == expected


def test_load_returns_the_record_type() -> None:
    box = load(Box, {"label": "b", "items": [{"name": "i"}], "main": {"name": "m"}})
    assert type(box) is Box
    assert type(box.items[0]) is Item and type(box.main) is Item


def test_load_does_not_change_its_input() -> None:
    data = {"name": "a", "x": {"y": 1}}
    snapshot = {"name": "a", "x": {"y": 1}}
    load(Open, data)
    assert data == snapshot


def test_schema_error_message_lists_every_problem() -> None:
    with pytest.raises(SchemaError) as info:
        load(Box, {"label": 1, "items": [{"name": "i", "weight": "w"}]})
    assert str(info.value) == (
        "label: must be a string, not an integer; items[0].weight: must be an integer, not a string"
    )


def test_unsupported_type_is_a_record_bug() -> None:
    @record
    class Bad:
        ratio: float

    with pytest.raises(TypeError, match="unsupported type"):
        load(Bad, {"ratio": 1.5})


# --------------------------------------------------------------------------- record itself


def test_record_is_frozen_and_keyword_only() -> None:
    with pytest.raises(TypeError):
        Scalars("a")  # type: ignore[misc]
    s = Scalars(name="a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.name = "b"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("cls", "keys"),
    [
        (Scalars, ["name", "count", "enabled"]),
        (Constrained, ["apiVersion", "port", "slug", "names", "pair", "either", "maybe"]),
        (Open, ["name"]),
    ],
)
def test_record_keys(cls: type, keys: list[str]) -> None:
    assert record_keys(cls) == keys


@pytest.mark.parametrize(
    ("loc", "text"),
    [
        ((), ""),
        (("name",), "name"),
        (("a", "b"), "a.b"),
        (("items", 0, "name"), "items[0].name"),
        (("m", 0, 1), "m[0][1]"),
        ((0, "x"), "[0].x"),
    ],
)
def test_format_loc(loc: Loc, text: str) -> None:
    assert format_loc(loc) == text


# --------------------------------------------------------------------------- JSON Schema


@record
class Limits:
    """Limits of a thing."""

    name: Annotated[str, Meta(doc="the name", pattern="[a-z]+")]
    mode: Literal["on", "off"] = "on"
    size: Annotated[int, Meta(ge=0, le=10, doc="how big")] = 3
    enabled: bool = False
    note: str | None = None
    tags: Annotated[list[str], Meta(min_items=1)] = field(default_factory=lambda: ["t"])
    item: Item | None = None
    items: list[Item] = field(default_factory=list)
    api_version: Annotated[str, Meta(alias="apiVersion")] = "v1"
    labels: dict[str, int] = field(default_factory=dict)


def test_json_schema_shape() -> None:
    assert json_schema(Limits) == {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Limits",
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "the name", "pattern": "[a-z]+"},
            "mode": {"enum": ["on", "off"], "default": "on"},
            "size": {"type": "integer", "description": "how big", "minimum": 0, "maximum": 10,
                     "default": 3},
            "enabled": {"type": "boolean", "default": False},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "item": {"anyOf": [{"$ref": "#/$defs/Item"}, {"type": "null"}]},
            "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}},
            "apiVersion": {"type": "string", "default": "v1"},
            "labels": {"type": "object", "additionalProperties": {"type": "integer"}},
        },
        "required": ["name"],
        "additionalProperties": False,
        "description": "Limits of a thing.",
        "$defs": {
            "Item": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "weight": {"type": "integer", "default": 1},
                },
                "required": ["name"],
                "additionalProperties": False,
            },
        },
    }  # fmt: skip


def test_json_schema_extra_record_and_title() -> None:
    schema = json_schema(Open, title="Open thing")
    assert schema["title"] == "Open thing"
    assert schema["properties"] == {"name": {"type": "string"}}  # the extra field is not a key
    assert schema["required"] == ["name"]
    assert schema["additionalProperties"] is True
    assert schema["$defs"] == {}
    assert "description" not in schema  # dataclass's generated __doc__ is not a description


def test_json_schema_agrees_with_load() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json_schema(Limits)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    good = {"name": "a", "mode": "off", "size": 10, "note": None, "tags": ["x"],
            "item": {"name": "i"}, "items": [{"name": "j", "weight": 2}], "apiVersion": "v2",
            "labels": {"k": 1}}  # fmt: skip
    load(Limits, good)
    assert list(validator.iter_errors(good)) == []
    for bad in ({"name": "a", "mode": "auto"}, {"name": "A"}, {"name": "a", "size": 11},
                {"name": "a", "tags": []}, {"name": "a", "item": {"weight": 1}},
                {"name": "a", "unknown": 1}, {"mode": "on"}):  # fmt: skip
        with pytest.raises(SchemaError):
            load(Limits, bad)
        assert list(validator.iter_errors(bad)), bad


# --------------------------------------------------------------------------- known bugs


@record
class Mixed:
    # A Literal may mix types; YAML's `false` must still be accepted here.
    mode: Literal["auto", False] = "auto"


def test_literal_with_mixed_choice_types() -> None:
    assert load(Mixed, {"mode": False}) == Mixed(mode=False)


@record
class Tree:
    name: str
    children: list[Tree] = field(default_factory=list)


def test_recursive_record_loads() -> None:
    tree = load(Tree, {"name": "a", "children": [{"name": "b", "children": [{"name": "c"}]}]})
    assert tree.children[0].children[0] == Tree(name="c")
    with pytest.raises(SchemaError) as info:
        load(Tree, {"name": "a", "children": [{"name": "b", "children": [{"name": 1}]}]})
    assert info.value.errors == [
        (("children", 0, "children", 0, "name"), "must be a string, not an integer")
    ]


def test_json_schema_of_recursive_record_has_no_dangling_ref() -> None:
    schema = json_schema(Tree)
    ref = schema["properties"]["children"]["items"]["$ref"]
    assert ref == "#" or ref.removeprefix("#/$defs/") in schema["$defs"]
