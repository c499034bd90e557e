"""The syscall field catalog and field resolution (cases in cases/fields.yaml)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.engines.falco.condition.ast import FieldRef
from lab.engines.falco.condition.types import TYPE_CODES
from lab.engines.falco.errors import ConditionError
from lab.engines.falco.fields import catalog, field_classes, is_field, lookup, resolve

CASES = yaml.safe_load((Path(__file__).parent / "cases" / "fields.yaml").read_text())


def ref(text: str) -> FieldRef:
    """A FieldRef as the parser makes it: `name[arg]` split, dotted names kept whole."""
    m = re.fullmatch(r"([^\[]+)(?:\[(.*)\])?", text)
    assert m is not None
    return FieldRef(m.group(1), m.group(2))


@pytest.mark.parametrize("field, ftype", sorted(CASES["official"].items()))
def test_every_field_of_the_official_rules_resolves_with_its_type(field: str,
                                                                  ftype: str) -> None:
    assert resolve(ref(field)).type == ftype


@pytest.mark.parametrize("case", CASES["resolve"], ids=lambda c: c["field"])
def test_resolution(case: dict[str, Any]) -> None:
    got = resolve(ref(case["field"]))
    if "name" in case:
        assert got.name == case["name"]
    if "arg" in case:
        assert got.arg == case["arg"]
    if "type" in case:
        assert got.type == case["type"]
    assert got.is_list == case.get("list", False)
    assert list(got.keys[0]) == case["keys"]
    assert got.mode == case.get("mode", "first")
    assert got.text == case["field"]


def test_any_ancestor_reads_the_parent_then_numbered_ancestors() -> None:
    got = resolve(FieldRef("proc.aname"))
    assert [g[0] for g in got.keys[:3]] == ["proc.pname", "proc.aname[2]", "proc.aname[3]"]
    either = resolve(FieldRef("fd.ip"))
    assert either.keys == (("fd.cip",), ("fd.sip",))


def test_unknown_field_error_names_it_and_points_at_it() -> None:
    with pytest.raises(ConditionError) as err:
        resolve(FieldRef("proc.nobody", pos=17))
    assert err.value.message == "filter_check called with nonexistent field proc.nobody"
    assert err.value.pos == 17


def test_display_refuses_filter_only_fields() -> None:
    assert resolve(FieldRef("fd.snet")).type == "IPNET"
    with pytest.raises(ConditionError) as err:
        resolve(FieldRef("fd.snet", pos=3), display=True)
    assert err.value.message == "fd.snet is filter only and cannot be used as a display field"
    assert resolve(FieldRef("fd.sip"), display=True).key == "fd.sip"


def test_catalog_is_well_formed() -> None:
    fields = list(catalog())
    names = [f.name for f in fields]
    assert len(names) == len(set(names)) > 200
    for f in fields:
        assert f.type in TYPE_CODES, f.name
        assert f.desc and not f.desc.endswith(" "), f.name
        assert lookup(f.name) is f
    # the container plugin's fields are there, as Falco 0.44 bundles the plugin
    assert {f.name for f in fields if f.plugin} >= {"container.id", "k8s.pod.name",
                                                   "k8s.ns.name", "container.label"}
    classes = [c[0] for c in field_classes()]
    assert classes[:4] == ["evt", "evt", "process", "user"]


def test_field_info_describes_arguments() -> None:
    aname = lookup("proc.aname")
    assert aname is not None and aname.arg_kind == "index" and not aname.arg_required
    label = lookup("k8s.pod.label")
    assert label is not None and label.arg_kind == "key" and label.arg_required
    mount = lookup("container.mount")
    assert mount is not None and mount.arg_kind == "index or key"
    types = lookup("fd.types")
    assert types is not None and types.is_list and "EPF_IS_LIST" in types.tags
    arg = lookup("evt.arg")
    assert arg is not None and arg.arg_kind == "name" and "ARG_REQUIRED" in arg.tags
    name = lookup("proc.name")
    assert name is not None and name.arg_kind == "none"
    assert lookup("evt.arg.flags") is None  # lookup takes catalog names only


@pytest.mark.parametrize("text, exists", [
    ("proc.aname[2]", True), ("evt.arg.flags", True), ("k8s.pod.label.app", True),
    ("fd.types[1]", True), ("proc.nobody", False), ("proc.name[1]", False),
    ("evt.arg.nosuchparam", False), ("k8s.pod.label", False), ("registry.k8s.io/pause", False),
])
def test_is_field(text: str, exists: bool) -> None:
    assert is_field(text) is exists
