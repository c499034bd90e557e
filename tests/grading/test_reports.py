"""Reports: a shared root cause is shown once in text, in full in JSON and JUnit."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from lab.backends.sim import SimBackend
from lab.grading.grader import grade
from lab.grading.report_json import render_json
from lab.grading.report_junit import render_junit
from lab.grading.report_text import render_text
from lab.paths import bundled_scenarios_dir
from lab.scenarios.loader import load_scenario
from lab.workspace import create_workspace


def _apiserver_down(tmp_path: Path):  # type: ignore[no-untyped-def]
    sc = load_scenario(bundled_scenarios_dir() / "audit-enable-logging")
    ws = create_workspace(tmp_path / "ws", sc, "sim")
    SimBackend().prepare(sc, ws)
    manifest = ws.node_root("controlplane") / "etc/kubernetes/manifests/kube-apiserver.yaml"
    manifest.write_text(
        manifest.read_text().replace(
            "--allow-privileged=true",
            "--allow-privileged=true\n    - --audit-policy-file=/etc/kubernetes/audit/policy.yaml",
        )
    )
    return grade(sc.model, SimBackend().run_attack(sc, ws))


def test_text_report_shows_the_root_cause_once(tmp_path: Path) -> None:
    result = _apiserver_down(tmp_path)
    assert len(result.causes) == 1 and "loading audit policy file" in result.causes[0]
    text = render_text(result, width=80)
    assert " ".join(text.split()).count("loading audit policy file") == 1
    assert text.index("why: ") < text.index("task enable-audit")
    assert "(why: above)" in text
    assert all(len(line) <= 80 or " " not in line.strip() for line in text.splitlines())


def test_json_and_junit_carry_the_cause_with_each_check(tmp_path: Path) -> None:
    result = _apiserver_down(tmp_path)
    report = json.loads(render_json([result]))
    down = [c for t in report["scenarios"][0]["tasks"] for c in t["checks"] if c["cause"]]
    assert down and all("loading audit policy file" in c["cause"] for c in down)
    failures = ET.fromstring(render_junit([result])).findall(".//failure")
    with_cause = [f for f in failures if "loading audit policy file" in f.get("message", "")]
    assert len(with_cause) == len(down)


def _hostile_result():  # type: ignore[no-untyped-def]
    from lab.grading.results import CheckResult, ScenarioResult, TaskResult

    value = "/var/log/\x01\x1b[2J\x1b]0;owned\x07\x7f\x9b\u202e\udcff.log"
    checks = [
        CheckResult(
            "apiserver_flag",
            f"kube-apiserver runs with --audit-log-path={value}",
            False,
            0,
            2,
            f"--audit-log-path is {value}\x00, not /var/log/audit.log",
            cause=f"kube-apiserver is not running: open {value}: no such file",
        ),
        CheckResult("apiserver_flag", "tab\there\nand newline", True, 1, 1, "ok\x0c"),
    ]
    task = TaskResult("t\x1b", "Task \x1b[31mred", checks, hint_penalty=0)
    return ScenarioResult("sc\x02", "Title\x1b", "sim", "run", [task], notes=[f"note {value}"])


def test_text_report_escapes_control_characters() -> None:
    text = render_text(_hostile_result(), width=80)
    raw = [ch for ch in text if ch != "\n" and (ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0)]
    assert raw == []
    assert "\u202e" not in text and "\udcff" not in text
    assert "\\x1b[2J" in text and "\\x01" in text and "\\u202e" in text and "\\udcff" in text
    text.encode("utf-8")  # printable on any UTF-8 terminal: no lone surrogates
    # colour codes are the report's own, and only those
    colored = render_text(_hostile_result(), color=True, width=80)
    assert colored.count("\x1b") == 2 * colored.count("\x1b[0m")


def test_junit_of_hostile_text_is_valid_xml() -> None:
    xml = render_junit([_hostile_result()])
    root = ET.fromstring(xml.encode("utf-8"))
    failure = root.find(".//failure")
    assert failure is not None
    message = failure.get("message", "")
    assert "\\x1b[2J" in message and "\\x00" in message and "\\udcff" in message
    assert failure.text == message
    names = [c.get("name", "") for c in root.iter("testcase")]
    assert names[1] == "tab\there\nand newline"  # whitespace XML can hold is kept
    assert root.find("testsuite").get("name") == "sc\\x02"  # type: ignore[union-attr]


def test_a_task_failing_wholly_for_one_cause_is_one_line(tmp_path: Path) -> None:
    sc = load_scenario(bundled_scenarios_dir() / "audit-policy-secrets")
    ws = create_workspace(tmp_path / "ws", sc, "sim")
    SimBackend().prepare(sc, ws)
    policy = ws.node_root("controlplane") / "etc/kubernetes/audit/policy.yaml"
    policy.write_text(policy.read_text().replace("level: Metadata", "level: metadata"))
    result = grade(sc.model, SimBackend().run_attack(sc, ws))
    text = render_text(result, width=100)
    n = len(sc.model.tasks[0].checks)
    assert f"all {n} checks fail for the reason above" in " ".join(text.split())
    assert "(why: above)" not in text
    assert 'Unsupported value: "metadata"' in " ".join(text.split())
