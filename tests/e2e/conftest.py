"""End-to-end runs on a real kind cluster: skipped, saying why, where none can run.

They need a reachable Docker engine and kind v0.32+ (`cks-lab doctor` says what is
missing). They create the cluster `cks-lab-e2e`, run every bundled scenario on it
through the `cks-lab` command as a learner would, and delete the cluster at the end.
Set CKS_LAB_E2E_KEEP=1 to keep the cluster for a look afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_helpers import CLUSTER, cks_lab, why_not

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = why_not()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"kind e2e: {reason}")
    for item in items:
        if HERE in item.path.parents:  # the hook sees the whole session's items
            item.add_marker(skip)


@pytest.fixture(scope="session")
def lab_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("cks-lab-home")
    up = cks_lab(home, "up", "--name", CLUSTER, timeout=1200)
    assert up.returncode == 0, f"cks-lab up failed:\n{up.stdout}\n{up.stderr}"
    yield home
    if os.environ.get("CKS_LAB_E2E_KEEP") != "1":
        cks_lab(home, "down", "--name", CLUSTER, "--yes", timeout=600)
