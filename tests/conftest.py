from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def lab_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own lab home: the user's data dir is never touched."""
    home = tmp_path_factory.mktemp("lab-home")
    monkeypatch.setenv("CKS_LAB_HOME", str(home))
    monkeypatch.delenv("CKS_LAB_SCENARIOS", raising=False)
    return home
