"""What `cks-lab grade` does against a learner's repository that tries too much: a
course folder shadowing a bundled scenario, reports that would overwrite each other,
and what the JSON report records for an instructor (digest, hints, solutions)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from lab.cli import main
from lab.paths import bundled_scenarios_dir
from lab.scenarios.digest import folder_digest
from lab.scenarios.loader import load_scenario

ENABLE = "audit-enable-logging"


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    if r.exception and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.stdout, r.stderr


def test_a_course_folder_with_a_bundled_id_is_refused_unless_allowed(tmp_path: Path) -> None:
    course = tmp_path / "course"
    shutil.copytree(bundled_scenarios_dir() / ENABLE, course / ENABLE)
    out = tmp_path / "r.json"
    code, _, err = run("--scenarios", str(course), "grade", ENABLE, "--json", str(out))
    assert code == 2
    assert f"scenario {ENABLE!r} from {course / ENABLE}" in err and "--allow-shadow" in err
    assert not out.exists()
    code, _, err = run(
        "--scenarios", str(course), "grade", ENABLE, "--allow-shadow", "--json", str(out)
    )
    assert code == 1, err  # graded (untouched: it fails), from the course's copy
    assert json.loads(out.read_text())["scenarios"][0]["id"] == ENABLE


def test_the_shadow_check_is_located_at_the_manifest_entry(tmp_path: Path) -> None:
    course = tmp_path / "course"
    shutil.copytree(bundled_scenarios_dir() / ENABLE, course / ENABLE)
    (tmp_path / "grading.yaml").write_text(f"- scenario: {ENABLE}\n")
    code, _, err = run("--scenarios", str(course), "grade", "-m", str(tmp_path / "grading.yaml"))
    assert code == 2 and "grading.yaml:1" in err and "bundled scenario" in err


def test_a_course_scenario_of_its_own_id_is_graded(tmp_path: Path) -> None:
    course = tmp_path / "course"
    shutil.copytree(bundled_scenarios_dir() / ENABLE, course / "course-logging")
    y = course / "course-logging" / "scenario.yaml"
    y.write_text(y.read_text().replace(f"id: {ENABLE}", "id: course-logging"))
    code, _, err = run("--scenarios", str(course), "grade", "course-logging", "-q")
    assert code == 1, err  # untouched: fails, but no shadow error


def test_one_file_for_two_reports_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "r.out"
    code, _, err = run("grade", ENABLE, "--json", str(out), "--junit", str(out))
    assert code == 2 and "given for two reports" in err
    assert not out.exists()
    # the same file spelt two ways is the same file
    code, _, err = run(
        "grade", ENABLE, "--json", str(out), "--summary-md", str(tmp_path / "." / "r.out")
    )
    assert code == 2 and "given for two reports" in err


def test_a_missing_report_folder_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "reports"
    code, _, err = run("grade", ENABLE, "--json", str(missing / "r.json"))
    assert code == 2
    assert f"cannot write the report: its folder {str(missing)!r} does not exist" in err


def test_report_records_digest_hints_and_solutions_of_the_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert run("start", ENABLE, "-w", str(ws))[0] == 0
    sc = load_scenario(bundled_scenarios_dir() / ENABLE)
    first = sc.model.tasks[0].id
    assert run("hint", first, "-w", str(ws), "--yes")[0] == 0
    assert run("solution", first, "--apply", "--yes", "-w", str(ws))[0] == 0
    out = tmp_path / "r.json"
    run("grade", ENABLE, "-w", str(ws), "--json", str(out), "-q")
    s = json.loads(out.read_text())["scenarios"][0]
    assert s["digest"] == folder_digest(sc)
    assert s["solutions_viewed"] == [first]
    hints = {t["id"]: t["hints_taken"] for t in s["tasks"]}
    assert hints[first] == 1 and all(v == 0 for k, v in hints.items() if k != first)

    # a submission of nodes/ only has no state: unknown, not zero
    sub = tmp_path / "sub"
    shutil.copytree(ws / "nodes", sub / "nodes")
    run("grade", ENABLE, "-w", str(sub), "--json", str(out), "-q")
    s = json.loads(out.read_text())["scenarios"][0]
    assert s["digest"] == folder_digest(sc)
    assert s["solutions_viewed"] is None
    assert {t["hints_taken"] for t in s["tasks"]} == {None}
