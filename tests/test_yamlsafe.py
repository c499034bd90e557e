"""lab.yamlsafe composes with libyaml's parser when it is there; the documents,
their line maps and its refusals must be the same as the pure-Python parser's."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lab import yamlsafe
from lab.errors import LabError
from lab.paths import bundled_scenarios_dir

needs_libyaml = pytest.mark.skipif(
    yamlsafe._FastLoader is yamlsafe._Loader, reason="PyYAML without libyaml"
)

FILES = sorted(p for p in bundled_scenarios_dir().rglob("*.yaml") if p.is_file())


def _parse_with(loader: type, text: str) -> list[yamlsafe.Document]:
    old = yamlsafe._FastLoader
    yamlsafe._FastLoader = loader
    try:
        return yamlsafe.parse_all(text, "f.yaml")
    finally:
        yamlsafe._FastLoader = old


@needs_libyaml
@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(bundled_scenarios_dir())))
def test_fast_and_pure_parsers_agree_on_every_bundled_file(path: Path) -> None:
    text = path.read_text()
    fast = _parse_with(yamlsafe._FastLoader, text)
    pure = _parse_with(yamlsafe._Loader, text)
    assert [(d.data, d.lines) for d in fast] == [(d.data, d.lines) for d in pure]


@needs_libyaml
def test_fast_parser_still_refuses_deep_nesting() -> None:
    text = "a: " + "[" * 150 + "]" * 150
    with pytest.raises(LabError, match="nesting deeper than 100 levels"):
        yamlsafe._compose_with(yamlsafe._FastLoader, text, "deep.yaml")


@pytest.mark.parametrize(
    "text",
    ["a: b: c\n", "key: 'unterminated\n", "a:\n\t- b\n", "- a\n b: c\n", "{a: 1, b\n"],
)
def test_errors_are_worded_by_the_pure_python_parser(text: str) -> None:
    with pytest.raises(LabError) as fast:
        yamlsafe.parse_all(text, "f.yaml")
    try:
        yaml.load(text, Loader=yaml.SafeLoader)  # noqa: S506 - SafeLoader
    except yaml.MarkedYAMLError as exc:
        assert exc.problem and exc.problem in str(fast.value)
        mark = exc.problem_mark or exc.context_mark
        assert mark is not None and fast.value.line == mark.line + 1
    else:
        pytest.fail("PyYAML accepted it")
