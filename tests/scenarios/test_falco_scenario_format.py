"""The format's Falco parts (pods, workload steps, effects, traces, assets, Falco
checks): each mistake gets one located error (cases/falco_broken.yaml)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.service import validate_folder

HERE = Path(__file__).parent
CASES = yaml.safe_load((HERE / "cases" / "falco_broken.yaml").read_text())
FIXTURE = HERE / "fixtures" / "falco-lab"


def test_the_fixture_is_valid() -> None:
    sc, errors = validate_folder(FIXTURE)
    assert not errors, [str(e) for e in errors]
    assert sc is not None and sc.model.needs_falco


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_broken(case: dict[str, Any], tmp_path: Path) -> None:
    folder = tmp_path / "falco-lab"
    shutil.copytree(FIXTURE, folder)
    spec = folder / "scenario.yaml"
    if "replace" in case:
        old, new = case["replace"]
        text = spec.read_text()
        assert old in text, f"case is stale: {old!r} not in scenario.yaml"
        spec.write_text(text.replace(old, new, 1))
    for rel, content in case.get("write", {}).items():
        (folder / rel).write_text(content)

    _, errors = validate_folder(folder)

    want = case["expect"]
    match = [e for e in errors if want["message"] in e.message]
    assert match, f"no error mentions {want['message']!r}: {[str(e) for e in errors]}"
    err = match[0]
    assert err.file and err.file.endswith(want.get("file_ends", ""))
    if "item" in want:
        assert err.item == want["item"], str(err)
    if "line" in want:
        assert err.line == want["line"], str(err)


def test_an_audit_scenario_needs_no_pods_for_its_exec_steps() -> None:
    from lab.paths import bundled_scenarios_dir

    sc, errors = validate_folder(bundled_scenarios_dir() / "audit-enable-logging")
    assert not errors and sc is not None and not sc.model.needs_falco
