"""Every bundled scenario on a real kind cluster: untouched it fails, solved it passes.

That is the contract each scenario keeps on the sim backend too (`cks-lab scenario
test`); here the evidence comes from the real apiserver, Falco and AppArmor.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from e2e_helpers import CLUSTER, cks_lab

from lab.paths import bundled_scenarios_dir

SCENARIOS = sorted(p.parent.name for p in bundled_scenarios_dir().glob("*/scenario.yaml"))


def test_status_reports_the_running_cluster(lab_home: Path) -> None:
    st = cks_lab(lab_home, "status", "--cluster", "--json")
    assert st.returncode == 0, st.stderr
    info = {c["name"]: c for c in json.loads(st.stdout)["clusters"]}[CLUSTER]
    assert info["ready"] is True
    assert {n["role"] for n in info["nodes"]} == {"control-plane", "worker"}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_untouched_fails_and_the_solution_passes(lab_home: Path, scenario: str) -> None:
    up = cks_lab(lab_home, "up", "--name", CLUSTER, "--scenario", scenario)
    assert up.returncode == 0, f"{up.stdout}\n{up.stderr}"

    untouched = cks_lab(lab_home, "check")
    assert untouched.returncode == 1, f"untouched {scenario} did not fail:\n{untouched.stdout}"
    assert "FAIL" in untouched.stdout

    applied = cks_lab(lab_home, "solution", "--apply", "--yes")
    assert applied.returncode == 0, applied.stderr

    solved = cks_lab(lab_home, "check")
    assert solved.returncode == 0, f"the solution of {scenario} did not pass:\n{solved.stdout}"
