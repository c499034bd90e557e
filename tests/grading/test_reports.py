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
