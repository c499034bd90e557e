"""docs/templates/course-grading.yml: a GitHub Actions workflow whose grading lines
really work on a course repository (built here: one scenario solved, one untouched)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from lab.cli import main
from lab.paths import bundled_scenarios_dir
from lab.scenarios.loader import load_scenario

TEMPLATE = Path(__file__).resolve().parents[2] / "docs/templates/course-grading.yml"
SOLVED, UNTOUCHED = "audit-enable-logging", "falco-shell-alert"


def workflow() -> dict[Any, Any]:
    return yaml.safe_load(TEMPLATE.read_text())


def steps() -> list[dict[str, Any]]:
    jobs = workflow()["jobs"]
    assert list(jobs) == ["grade"]
    return list(jobs["grade"]["steps"])


def step_using(action: str) -> dict[str, Any]:
    found = [s for s in steps() if str(s.get("uses", "")).split("@")[0] == action]
    assert len(found) == 1, f"one step uses {action}"
    return found[0]


def grading_step() -> dict[str, Any]:
    found = [s for s in steps() if "cks-lab grade" in s.get("run", "")]
    assert len(found) == 1
    return found[0]


def cks_lab_lines() -> list[list[str]]:
    """Every `cks-lab ...` command line of the workflow's run: scripts, as argv."""
    return [
        shlex.split(line)
        for s in steps()
        for line in s.get("run", "").splitlines()
        if line.strip().startswith("cks-lab ")
    ]


def test_the_workflow_has_the_expected_steps() -> None:
    wf = workflow()
    triggers = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` key as true
    assert {"push", "pull_request"} <= set(triggers)
    assert wf["permissions"] == {"contents": "read"}  # nothing to write: no token power
    job = wf["jobs"]["grade"]
    assert job["runs-on"] == "ubuntu-latest" and job["timeout-minutes"] <= 15
    names = [s.get("uses", "").split("@")[0] or s["name"] for s in steps()]
    assert names.index("actions/checkout") < names.index("actions/setup-python")
    assert step_using("actions/setup-python")["with"]["python-version"] == "3.11"
    installs = [s["run"] for s in steps() if "pip install" in s.get("run", "")]
    assert len(installs) == 1 and "cks-lab" in installs[0]
    assert names.index("actions/setup-python") < steps().index(grading_step())
    upload = step_using("actions/upload-artifact")
    assert steps().index(grading_step()) < steps().index(upload)
    assert upload["if"] == "${{ !cancelled() }}"  # the reports of a failing job are kept
    assert set(upload["with"]["path"].split()) == {"report.json", "report.xml", "summary.md"}
    for s in steps():
        if "uses" in s:
            assert "@v" in s["uses"], f"{s['uses']}: pin a major version"
    # the documented pinned-commit alternative is in the template, as a comment
    assert "git+https://" in TEMPLATE.read_text()


def test_the_grading_command_is_the_documented_one() -> None:
    (argv,) = cks_lab_lines()
    assert argv[:2] == ["cks-lab", "grade"]
    opts = dict(zip(argv[2::2], argv[3::2], strict=False))
    assert opts == {
        "--manifest": "grading.yaml",
        "--json": "report.json",
        "--junit": "report.xml",
        "--summary-md": "summary.md",
    }
    doc = (TEMPLATE.parents[1] / "ci-grading.md").read_text()
    assert " ".join(argv) in doc


def course_repo(root: Path) -> Path:
    """What a learner commits: one scenario solved (the reference solution's files),
    one not done (its folder as the course ships it: an empty node folder)."""
    sc = load_scenario(bundled_scenarios_dir() / SOLVED)
    for task in sc.model.tasks:
        for f in task.solution.files:
            target = root / "submissions" / SOLVED / "nodes" / f.node / f.path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(sc.node_file_bytes(f))
    keep = root / "submissions" / UNTOUCHED / "nodes" / "worker" / ".gitkeep"
    keep.parent.mkdir(parents=True)
    keep.write_text("")
    (root / "grading.yaml").write_text(
        "learner: ada\n"
        "scenarios:\n"
        f"  - scenario: {SOLVED}\n    workspace: submissions/{SOLVED}\n"
        f"  - scenario: {UNTOUCHED}\n    workspace: submissions/{UNTOUCHED}\n"
    )
    return root


def check_reports(repo: Path) -> None:
    report = json.loads((repo / "report.json").read_text())
    assert report["learner"] == "ada" and report["passed"] is False
    solved, untouched = report["scenarios"]
    assert (solved["id"], solved["passed"], solved["points"]) == (SOLVED, True, 14)
    assert (untouched["id"], untouched["passed"]) == (UNTOUCHED, False)
    assert untouched["workspace"] == f"submissions/{UNTOUCHED}"
    root = ET.parse(repo / "report.xml").getroot()
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == [SOLVED, UNTOUCHED]
    assert suites[SOLVED].find(".//failure") is None
    failures = suites[UNTOUCHED].findall(".//failure")
    assert failures and len(failures) == int(suites[UNTOUCHED].get("failures", "0"))
    explained = {c["explanation"] for t in untouched["tasks"] for c in t["checks"]}
    assert all(f.get("message", "").split(": ")[0] in " ".join(explained) for f in failures)
    summary = (repo / "summary.md").read_text()
    assert "1 of 2 scenarios pass" in summary and f"`submissions/{SOLVED}`" in summary


def test_the_workflows_grading_lines_grade_a_course_repo(tmp_path: Path) -> None:
    repo = course_repo(tmp_path / "course")
    old = Path.cwd()
    os.chdir(repo)
    try:
        codes = [CliRunner().invoke(main, argv[1:]).exit_code for argv in cks_lab_lines()]
    finally:
        os.chdir(old)
    assert codes == [1]  # one scenario fails: the job fails
    check_reports(repo)


@pytest.mark.skipif(not shutil.which("bash"), reason="no bash")
def test_the_grading_step_runs_as_github_runs_it(tmp_path: Path) -> None:
    """The whole `run:` script, under bash -eo pipefail as GitHub runs it, with
    `cks-lab` on PATH (this checkout) and a step-summary file."""
    repo = course_repo(tmp_path / "course")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "cks-lab"
    shim.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" -c "from lab.cli import main; main()" "$@"\n'
    )
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step\n")
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_STEP_SUMMARY": str(summary),
        **{k: str(v) for k, v in workflow().get("env", {}).items()},
    }
    script = tmp_path / "step.sh"
    script.write_text(grading_step()["run"])
    run = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stderr
    assert f"PASS {SOLVED}" in run.stdout and f"FAIL {UNTOUCHED}" in run.stdout
    check_reports(repo)
    text = summary.read_text()
    assert text.startswith("earlier step\n### cks-lab: 1 of 2 scenarios pass")  # appended

    # a broken manifest: exit 2, one located line, no reports, nothing appended
    for f in ("report.json", "report.xml", "summary.md"):
        (repo / f).unlink()
    (repo / "grading.yaml").write_text(f"- scenario: {SOLVED}\n  workspace: ../up\n")
    run = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2 and run.stderr.startswith("cks-lab: error: grading.yaml:2: ")
    assert not (repo / "report.json").exists() and summary.read_text() == text
