"""Broken scenario folders get one precise, located error each, and nothing is written."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from lab.paths import bundled_scenarios_dir
from lab.service import validate_folder

CASES = yaml.safe_load((Path(__file__).parent / "cases" / "broken.yaml").read_text())
BASE = bundled_scenarios_dir() / "audit-enable-logging"


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_broken_scenario(case: dict, tmp_path: Path) -> None:
    folder = tmp_path / "audit-enable-logging"
    shutil.copytree(BASE, folder)
    spec = folder / "scenario.yaml"
    if "replace" in case:
        old, new = case["replace"]
        text = spec.read_text()
        assert old in text, f"case is stale: {old!r} not in scenario.yaml"
        spec.write_text(text.replace(old, new, 1))
    for rel, content in case.get("write", {}).items():
        (folder / rel).write_text(content)
    for rel, target in case.get("symlink", {}).items():
        os.symlink(target, folder / rel)
    before = _tree(folder)

    sc, errors = validate_folder(folder)

    assert errors, "expected a validation error"
    want = case["expect"]
    match = [e for e in errors if want["message"] in e.message]
    assert match, f"no error mentions {want['message']!r}: {[str(e) for e in errors]}"
    err = match[0]
    assert err.file and err.file.startswith(str(folder))
    if "item" in want:
        assert err.item == want["item"], str(err)
    if "line" in want:
        assert err.line == want["line"], str(err)
    assert _tree(folder) == before  # validation never writes


def test_bundled_scenarios_are_valid() -> None:
    folders = sorted(p for p in bundled_scenarios_dir().iterdir() if (p / "scenario.yaml").exists())
    assert len(folders) >= 2
    for folder in folders:
        sc, errors = validate_folder(folder)
        assert not errors, [str(e) for e in errors]
        assert sc is not None and sc.id == folder.name
