"""docs/scenario.schema.json and docs/scenario-format.md keep up with the code.

The schema file is generated (`cks-lab scenario schema > docs/scenario.schema.json`);
the format reference must describe every check type in the registry, every
parameter of each, and every top-level field of scenario.yaml.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from lab.cli import main
from lab.grading.checks import REGISTRY
from lab.scenarios.model import Scenario
from lab.schema import record_keys

DOCS = Path(__file__).resolve().parents[1] / "docs"
SCHEMA = DOCS / "scenario.schema.json"
FORMAT = DOCS / "scenario-format.md"
REGENERATE = "regenerate it: cks-lab scenario schema > docs/scenario.schema.json"


def generated_schema() -> str:
    result = CliRunner().invoke(main, ["scenario", "schema"])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_committed_schema_is_current() -> None:
    assert SCHEMA.is_file(), f"docs/scenario.schema.json is missing; {REGENERATE}"
    assert SCHEMA.read_text(encoding="utf-8") == generated_schema(), (
        f"docs/scenario.schema.json is stale; {REGENERATE}"
    )


def _doc() -> str:
    return FORMAT.read_text(encoding="utf-8")


def _check_section(doc: str, name: str) -> str:
    """The text of the `### \\`name\\`` section, up to the next heading of level 2 or 3."""
    m = re.search(rf"^### `{re.escape(name)}`[^\n]*\n(.*?)(?=^##)", doc + "\n##", re.M | re.S)
    assert m, f"docs/scenario-format.md has no section '### `{name}`' for check type {name!r}"
    return m.group(1)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_check_type_is_documented(name: str) -> None:
    section = _check_section(_doc(), name)
    for param in record_keys(REGISTRY[name].params):
        assert f"`{param}`" in section, (
            f"the section for check {name!r} does not describe its parameter `{param}`"
        )


@pytest.mark.parametrize("field", record_keys(Scenario))
def test_every_top_level_field_is_documented(field: str) -> None:
    # A row of the top-level field table: | `field` | ...
    assert re.search(rf"^\| `{re.escape(field)}` \|", _doc(), re.M), (
        f"docs/scenario-format.md has no table row for the top-level field `{field}`"
    )
