"""The rules reader against the conformance table in cases/loader_reader.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.engines.falco import reader
from lab.engines.falco.collector import Collector, Entry, Issue, Issues, RuleInfo
from lab.engines.falco.priorities import PRIORITIES

CASES = yaml.safe_load((Path(__file__).parent / "cases" / "loader_reader.yaml").read_text())


def issue_text(i: Issue) -> str:
    return f"{i.code} {i.ctx.line} [{i.ctx.item or ''}]: {i.message}"


def same_issues(got: list[str], want: list[str]) -> bool:
    """Equal, except that a wanted text ending in "..." only has to start the got one."""
    assert len(got) == len(want), got
    for g, w in zip(got, want, strict=True):
        assert g.startswith(w[:-3]) if w.endswith("...") else g == w, (g, w)
    return True


def entry(e: Entry) -> Any:
    return [entry(x) for x in e.items] if e.is_list else e.item


def rule_state(r: RuleInfo) -> dict[str, Any]:
    return {
        "cond": r.cond, "output": r.output, "desc": r.desc,
        "priority": PRIORITIES[r.priority], "enabled": r.enabled, "source": r.source,
        "tags": sorted(r.tags), "warn_evttypes": r.warn_evttypes,
        "skip_if_unknown_filter": r.skip_if_unknown_filter,
        "exceptions": [
            {"name": e.name, "fields": entry(e.fields), "comps": entry(e.comps),
             "values": [entry(v) for v in e.values]}
            for e in r.exceptions
        ],
    }


def collect(files: list[tuple[str, str]]) -> tuple[Collector, list[tuple[bool, Issues]]]:
    col = Collector(engine_version=(0, 57, 0),
                    is_field_defined=lambda name: not name.startswith("bad."))
    results = []
    for name, text in files:
        issues = Issues()
        results.append((reader.read(name, text, col, issues), issues))
    return col, results


def check_state(col: Collector, case: dict[str, Any]) -> None:
    for name, items in (case.get("lists") or {}).items():
        assert col.lists[name].items == items, name
    for name, cond in (case.get("macros") or {}).items():
        assert col.macros[name].cond == cond, name
    for name, want in (case.get("rules") or {}).items():
        state = rule_state(col.rules[name])
        assert {k: state[k] for k in want} == want, name
    if "rule_order" in case:
        assert list(col.rules) == case["rule_order"]
    for name in case.get("absent", []):
        assert name not in col.lists and name not in col.macros and name not in col.rules
    if "plugins" in case:
        got = [[f"{r.name} {r.version}" for r in alts] for alts in col.required_plugin_versions]
        assert got == case["plugins"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_reader_case(case: dict[str, Any]) -> None:
    col, [(ok, issues)] = collect([("rules.yaml", case["text"])])
    if "issues" in case:
        assert same_issues([issue_text(i) for i in issues], case["issues"])
    assert ok == case["ok"], [issue_text(i) for i in issues]
    check_state(col, case)


def test_every_issue_names_the_file() -> None:
    _, [(_, issues)] = collect([("local.yaml", "- rule: r\n  desc: d\n")])
    assert issues and all(i.ctx.file == "local.yaml" for i in issues)


def test_size_cap_and_binary_are_parse_errors() -> None:
    big = "- list: a\n  items: [" + "x, " * 400_000 + "]\n"
    _, [(ok, issues)] = collect([("big.yaml", big)])
    assert not ok and issues[0].code == "LOAD_ERR_YAML_PARSE"
    assert "too large" in issues[0].message
    _, [(ok, issues)] = collect([("bin.yaml", "- list: a\x00\n")])
    assert not ok and "binary" in issues[0].message


def test_literal_condition_lines_point_inside_the_block() -> None:
    col, _ = collect([("r.yaml", "- macro: m\n  condition: |\n    a and\n    b\n")])
    where = col.macros["m"].cond_ctx
    assert where.ctx.line == 3
    assert where.at_offset("a and\nb\n", 6).line == 4
