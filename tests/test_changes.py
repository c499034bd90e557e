"""What changed since the previous check: the verdicts that flipped, and the points."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lab.changes import Change, changes, points_delta
from lab.cli import main
from lab.grading.results import CheckResult, ScenarioResult, TaskResult
from lab.paths import bundled_scenarios_dir
from lab.present import changes_text

SOLUTION = bundled_scenarios_dir() / "audit-enable-logging" / "solution" / "kube-apiserver.yaml"


def result(**tasks: dict[str, bool]) -> ScenarioResult:
    """A graded scenario: task id -> {check title: passed}."""
    return ScenarioResult(
        "s",
        "S",
        "sim",
        "run",
        [
            TaskResult(
                tid,
                tid,
                [CheckResult("t", title, ok, int(ok), 1, "") for title, ok in checks.items()],
            )
            for tid, checks in tasks.items()
        ],
    )


NOW = result(a={"one": True, "two": False, "three": True}, b={"four": False})

CASES: list[tuple[str, dict[str, Any] | None, list[Change]]] = [
    ("no previous check", None, []),
    (
        "nothing changed",
        {"checks": {"a": {"one": True, "two": False, "three": True}, "b": {"four": False}}},
        [],
    ),
    (
        "one now passes, one now fails, in the report's order",
        {"checks": {"a": {"one": False, "two": False, "three": True}, "b": {"four": True}}},
        [Change("a", "one", True), Change("b", "four", False)],
    ),
    (
        "a check without a previous verdict is not a change",
        {"checks": {"a": {"one": True, "two": False}}},
        [],
    ),
    (
        "a check the scenario no longer has is not a change",
        {"checks": {"a": {"one": True, "gone": True}, "b": {"four": False}}},
        [],
    ),
    (
        "an older lab's attempt: task verdicts are compared",
        {"tasks": {"a": True, "b": True}},
        [Change("a", "", False), Change("b", "", False)],
    ),
    ("an older lab's attempt without that task", {"tasks": {"c": False}}, []),
    ("an attempt with nothing recorded", {}, []),
]


@pytest.mark.parametrize(
    ("previous", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_changes(previous: dict[str, Any] | None, expected: list[Change]) -> None:
    assert changes(previous, NOW) == expected


def test_changes_between_two_recorded_attempts() -> None:
    then = {"points": 3, "tasks": {"a": False}, "checks": {"a": {"x": False, "y": True}}}
    now = {"points": 5, "tasks": {"a": True}, "checks": {"a": {"x": True, "y": True}}}
    assert changes(then, now) == [Change("a", "x", True)]
    assert points_delta(then, now) == 2
    assert points_delta(now, then) == -2
    assert points_delta({}, now) is None


def test_changes_text() -> None:
    assert changes_text([], None) == ""  # no previous check: nothing said
    assert changes_text([], 0) == "Since the previous check: +0 points; no check changed."
    text = changes_text([Change("a", "one", True), Change("b", "four\x1b[2J", False)], 1)
    assert text.splitlines() == [
        "Since the previous check: +1 point",
        "  now passing: one (task a)",
        "  now failing: four\\x1b[2J (task b)",
    ]
    assert changes_text([Change("a", "", False)], -3).splitlines() == [
        "Since the previous check: -3 points",
        "  now failing: task a",
    ]


def run(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args))
    return r.exit_code, r.stdout


def test_check_says_what_a_fix_changed(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert run("start", "audit-enable-logging", "-w", str(ws))[0] == 0
    code, out = run("check", "--json", str(tmp_path / "r.json"))
    assert code == 1 and "Since the previous check" not in out  # the first check
    manifest = ws / "nodes/controlplane/etc/kubernetes/manifests/kube-apiserver.yaml"
    # fix only the retention flags: those checks now pass, the rest do not change
    flags = [line for line in SOLUTION.read_text().splitlines() if "--audit-log-max" in line]
    text = manifest.read_text()
    anchor = "    - --secure-port=6443\n"
    assert anchor in text
    manifest.write_text(text.replace(anchor, anchor + "".join(f"{f}\n" for f in flags)))
    code, out = run("check")
    assert code == 1
    since = out[out.index("Since the previous check") :].splitlines()
    assert since == [
        "Since the previous check: +3 points",
        "  now passing: kube-apiserver runs with --audit-log-maxage=10 (task retention)",
        "  now passing: kube-apiserver runs with --audit-log-maxbackup=2 (task retention)",
        "  now passing: kube-apiserver runs with --audit-log-maxsize=100 (task retention)",
    ]
    # the JSON report file is unchanged by it
    assert "Since" not in (tmp_path / "r.json").read_text()

    # breaking it again: now failing
    shutil.copy(SOLUTION, manifest)
    assert run("check")[0] == 0
    manifest.write_text(
        SOLUTION.read_text().replace("--audit-log-maxage=10", "--audit-log-maxage=9")
    )
    code, out = run("check")
    assert "  now failing: kube-apiserver runs with --audit-log-maxage=10 (task retention)" in out
    attempts = json.loads((ws / ".lab/state.json").read_text())["attempts"]
    assert (
        attempts[-1]["checks"]["retention"]["kube-apiserver runs with --audit-log-maxage=10"]
        is False
    )
