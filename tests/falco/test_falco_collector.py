"""Definitions across files: the table in cases/loader_collector.yaml, plus ordering rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from test_falco_reader import check_state, collect, issue_text

from lab.engines.falco.collector import Collector, Context, ListInfo, RuleLoadError

CASES = yaml.safe_load((Path(__file__).parent / "cases" / "loader_collector.yaml").read_text())


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_collector_case(case: dict[str, Any]) -> None:
    files = [(f"f{i}.yaml", text) for i, text in enumerate(case["files"])]
    col, results = collect(files)
    got = [[ok, [issue_text(i) for i in issues]] for ok, issues in results]
    assert got == case["results"]
    check_state(col, case)


def test_redefinition_keeps_the_index_and_moves_the_visibility() -> None:
    col = Collector(engine_version=(0, 57, 0))
    ctx = Context("f.yaml")
    col.define_list(ListInfo("a", ["x"], ctx))
    col.define_list(ListInfo("b", ["y"], ctx))
    col.define_list(ListInfo("a", ["z"], ctx))
    assert list(col.lists) == ["a", "b"]
    assert (col.lists["a"].index, col.lists["a"].visibility) == (0, 2)
    col.append_list(ListInfo("b", ["w"], ctx))
    assert (col.lists["b"].index, col.lists["b"].visibility) == (1, 3)


def test_errors_carry_the_item_context() -> None:
    col = Collector(engine_version=(0, 57, 0))
    with pytest.raises(RuleLoadError) as err:
        col.append_list(ListInfo("x", [], Context("f.yaml", 3, "list 'x'")))
    assert (err.value.code, err.value.ctx.line, err.value.ctx.item) == (
        "LOAD_ERR_VALIDATE", 3, "list 'x'")
