"""The engine end to end: loading several files, reports, and alerts for events
(the table in cases/loader_engine.yaml), plus the alert's JSON shape and the index."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from test_falco_reader import same_issues

from lab.engines.falco.engine import Alert, Problem, load_rules
from lab.errors import LabError

CASES = yaml.safe_load((Path(__file__).parent / "cases" / "loader_engine.yaml").read_text())


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_engine_case(case: dict[str, Any]) -> None:
    result = load_rules(list(case["files"].items()), **case.get("options", {}))
    assert len(result.reports) == len(case["files"])
    for report, (status, problems) in zip(result.reports, case["reports"], strict=True):
        assert same_issues([str(p) for p in report.problems], problems)
        assert report.status == status, [str(p) for p in report.problems]
    assert (result.ruleset is not None) == case.get("ruleset", True)
    for step in case.get("events", []):
        assert result.ruleset is not None
        alerts = result.ruleset.process(step["event"], hostname="node-1")
        want = step["alerts"]
        if want and isinstance(want[0], str):
            assert [a.rule for a in alerts] == want
            continue
        assert len(alerts) == len(want)
        for alert, expected in zip(alerts, want, strict=True):
            got = alert.to_json()
            assert {k: got[k] for k in expected} == expected


RULES = """\
- rule: Read shadow
  desc: d
  condition: evt.type in (open, openat) and fd.name = /etc/shadow
  output: shadow read by %proc.name (%proc.aname[2]) tag %proc.tty
  priority: critical
  tags: [filesystem, T1003]
"""


def test_alert_json_is_falco_json_output() -> None:
    result = load_rules([("r.yaml", RULES)])
    assert result.ruleset is not None
    [alert] = result.ruleset.process(
        {"evt.type": "openat", "fd.name": "/etc/shadow", "proc.name": "cat", "evt.rawtime": 5},
        hostname="node-1",
    )
    assert list(alert.to_json()) == [
        "hostname", "output", "output_fields", "priority", "rule", "source", "tags", "time"]
    assert alert.to_json() == {
        "hostname": "node-1",
        "output": "00:00:00.000000005: Critical shadow read by cat (<NA>) tag <NA>",
        "output_fields": {"evt.time": 5, "proc.aname[2]": None, "proc.name": "cat",
                          "proc.tty": None},
        "priority": "Critical",
        "rule": "Read shadow",
        "source": "syscall",
        "tags": ["T1003", "filesystem"],
        "time": "1970-01-01T00:00:00.000000005Z",
    }
    assert alert.to_text() == alert.output
    assert alert.message == "shadow read by cat (<NA>) tag <NA>"
    json.dumps(alert.to_json())


def test_default_time_is_used_when_the_event_has_none() -> None:
    result = load_rules([("r.yaml", RULES)])
    assert result.ruleset is not None
    [alert] = result.ruleset.process({"evt.type": "open", "fd.name": "/etc/shadow"},
                                     default_time="2026-11-27T10:00:00Z")
    assert alert.time == "2026-11-27T10:00:00.000000000Z"
    assert isinstance(alert, Alert) and alert.output.startswith("10:00:00.000000000: Critical ")


def test_rules_are_indexed_by_event_type() -> None:
    result = load_rules([("r.yaml", RULES + """\
- rule: Any bash
  desc: d
  condition: proc.name = bash
  output: o
  priority: debug
  warn_evttypes: false
""")])
    assert result.ruleset is not None
    assert result.ruleset.rules_for("openat") == ["Read shadow", "Any bash"]
    assert result.ruleset.rules_for("connect") == ["Any bash"]
    assert result.ruleset.rule_names == ["Read shadow", "Any bash"]


def test_problem_lines_are_one_line_each() -> None:
    p = Problem("error", "LOAD_ERR_COMPILE_CONDITION", "unexpected token", "local.yaml", 12,
                "rule 'Shell in pod'")
    assert str(p) == ("local.yaml:12: rule 'Shell in pod': LOAD_ERR_COMPILE_CONDITION "
                      "(Error compiling condition): unexpected token")
    assert str(Problem("warning", "LOAD_UNKNOWN_ITEM", "Unknown top level item", "r.yaml")) == (
        "r.yaml: LOAD_UNKNOWN_ITEM (Unknown rules file item): Unknown top level item")


def test_bad_options_are_lab_errors() -> None:
    with pytest.raises(LabError):
        load_rules([], min_priority="loud")
    with pytest.raises(LabError):
        load_rules([], rule_matching="some")  # type: ignore[arg-type]


def test_no_files_is_an_empty_ruleset() -> None:
    result = load_rules([])
    assert result.ruleset is not None and result.ruleset.process({"evt.type": "open"}) == []


# --- bad input never crashes the loader -------------------------------------------------

_KEYS = ["rule", "macro", "list", "desc", "condition", "output", "priority", "items", "tags",
         "enabled", "exceptions", "name", "fields", "comps", "values", "override", "append",
         "source", "required_engine_version", "required_plugin_versions", "version"]
_SCALARS = st.sampled_from(["", "x", "evt.type = open", "%proc.name", "%", "true", "append",
                            "replace", "in", "=", "0.1.0", "debug", "proc.name", "(", "a b"])
_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 3), _SCALARS),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(_KEYS), inner, max_size=4)),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=6), max_size=4))
def test_any_rules_shaped_yaml_gives_reports_not_tracebacks(items: list[Any]) -> None:
    text = yaml.safe_dump(items)
    result = load_rules([("fuzz.yaml", text), ("more.yaml", text)])
    assert len(result.reports) == 2
    for report in result.reports:
        assert report.status in ("Ok", "Ok, with warnings", "Invalid")
        for p in report.problems:
            assert "\n" not in str(p)
