"""Path globs: matching, syntax errors, exactness and overlap, from cases/globs.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.engines.apparmor.globs import GlobError, filter_slashes, glob_matches, is_exact
from lab.engines.apparmor.nfa import GlobAutomaton, globs_intersect, matcher_for

CASES = yaml.safe_load((Path(__file__).parent / "cases" / "globs.yaml").read_text())


def ids(key: str, fields: tuple[str, ...]) -> list[Any]:
    return [pytest.param(c, id=" ".join(str(c[f]) for f in fields)) for c in CASES[key]]


@pytest.mark.parametrize("case", ids("match", ("glob", "path")))
def test_match(case: dict[str, Any]) -> None:
    assert glob_matches(case["glob"], case["path"]) is case["match"]
    # the automaton used for star-heavy globs agrees with the regex
    assert bool(GlobAutomaton(case["glob"]).fullmatch(case["path"])) is case["match"]


def test_star_heavy_globs_match_in_linear_time() -> None:
    glob = "/" + "**a" * 30 + "b"
    match = matcher_for(glob)
    assert isinstance(getattr(match, "__self__", None), GlobAutomaton)
    assert match("/" + "a" * 5000) is None  # a backtracking regex would never return
    assert match("/" + "a" * 40 + "b")


@pytest.mark.parametrize("case", ids("errors", ("glob",)))
def test_syntax_errors(case: dict[str, Any]) -> None:
    with pytest.raises(GlobError, match=None) as exc:
        glob_matches(case["glob"], "/x")
    assert case["error"] in exc.value.message


@pytest.mark.parametrize("case", ids("exact", ("glob",)))
def test_exact(case: dict[str, Any]) -> None:
    assert is_exact(case["glob"]) is case["exact"]


@pytest.mark.parametrize("case", ids("intersect", ("a", "b")))
def test_intersect(case: dict[str, Any]) -> None:
    assert globs_intersect(case["a"], case["b"]) is case["overlap"]
    assert globs_intersect(case["b"], case["a"]) is case["overlap"]


@pytest.mark.parametrize(("raw", "clean"), [
    ("///usr//bin///ls", "/usr/bin/ls"),
    ("//net/share", "//net/share"),
    ("/tmp/", "/tmp/"),
    ("/", "/"),
])
def test_filter_slashes(raw: str, clean: str) -> None:
    assert filter_slashes(raw) == clean
