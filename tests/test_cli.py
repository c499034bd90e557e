"""The CLI as a learner and a CI job use it: real commands, real files, exit codes."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from lab.cli import main
from lab.paths import bundled_scenarios_dir

SOLUTION = bundled_scenarios_dir() / "audit-enable-logging" / "solution" / "kube-apiserver.yaml"


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    return r.exit_code, r.stdout, r.stderr


def test_no_arguments_lists_scenarios_and_says_how_to_start() -> None:
    code, out, _ = run()
    assert code == 0
    assert "audit-enable-logging" in out and "audit-policy-secrets" in out
    assert "cks-lab start ID" in out


def test_list_json() -> None:
    code, out, _ = run("list", "--json")
    rows = {r["id"]: r for r in json.loads(out)}
    assert code == 0
    assert rows["audit-enable-logging"]["skills"] == ["audit-logging"]
    assert rows["audit-policy-secrets"]["difficulty"] == "medium"


def test_learner_flow(tmp_path: Path, lab_home: Path) -> None:
    ws = tmp_path / "ws"
    code, out, _ = run("start", "audit-enable-logging", "--workspace", str(ws))
    assert code == 0, out
    assert "Enable API audit logging" in out
    manifest = ws / "nodes/controlplane/etc/kubernetes/manifests/kube-apiserver.yaml"
    assert str(manifest) in out and manifest.is_file()

    # untouched: fails, exit 1, explains
    code, out, _ = run("check")
    assert code == 1
    assert "FAIL" in out and "audit logging is off" in out

    # a hint costs a point, shown in the next check
    code, out, _ = run("hint", "enable-audit")
    assert code == 0 and "Hint 1 for task 'enable-audit' (-1 point)" in out

    shutil.copy(SOLUTION, manifest)
    code, out, _ = run("check", "--json", str(tmp_path / "r.json"))
    assert code == 0, out
    assert "Score: 13/14" in out and "hints -1" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["passed"] is True and report["totals"]["points"] == 13
    assert report["scenarios"][0]["workspace"] == str(ws)  # check names what it graded
    assert report["scenarios"][0]["skills"] == ["audit-logging"]

    # the log is on the node, where `jq` would read it
    log = ws / "nodes/controlplane/var/log/kubernetes/audit/audit.log"
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert {e["objectRef"]["resource"] for e in events} == {"secrets", "pods"}

    # reset backs the learner's work up first, then restores the seed
    code, out, _ = run("reset", "--yes")
    assert code == 0 and "previous files are in" in out
    backups = list(
        (ws / ".lab/backups").glob(
            "*before-reset/nodes/controlplane/etc/kubernetes/manifests/kube-apiserver.yaml"
        )
    )
    assert backups and backups[0].read_text() == SOLUTION.read_text()
    assert "--audit-log-path" not in manifest.read_text()


def test_solution_apply_passes(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert run("start", "audit-policy-secrets", "-w", str(ws))[0] == 0
    code, out, _ = run("solution", "--apply", "--yes", "-w", str(ws))
    assert code == 0 and "omitStages" in out
    code, out, _ = run("check", "-w", str(ws))
    assert code == 0, out


def test_grade_headless_reports_and_exit_codes(tmp_path: Path) -> None:
    sub = tmp_path / "submission"
    target = sub / "nodes/controlplane/etc/kubernetes/manifests"
    target.mkdir(parents=True)
    shutil.copy(SOLUTION, target / "kube-apiserver.yaml")
    # only the changed manifest is committed: the seed (the policy) is laid under it
    before = sorted(p.relative_to(sub) for p in sub.rglob("*"))

    j, x = tmp_path / "out.json", tmp_path / "out.xml"
    code, out, _ = run(
        "grade",
        "audit-enable-logging",
        "--workspace",
        str(sub),
        "--json",
        str(j),
        "--junit",
        str(x),
    )
    assert code == 0, out
    assert json.loads(j.read_text())["scenarios"][0]["passed"] is True
    suite = ET.parse(x).getroot()
    assert suite.get("tests") == "12" and suite.get("failures") == "0"
    assert sorted(p.relative_to(sub) for p in sub.rglob("*")) == before  # untouched

    # no workspace: graded untouched, so it fails with explanations in JUnit
    code, _, _ = run("grade", "audit-enable-logging", "--junit", str(x), "-q")
    assert code == 1
    failures = ET.parse(x).getroot().findall(".//failure")
    assert failures and all(f.get("message") for f in failures)


def test_errors_are_one_line_exit_2(tmp_path: Path) -> None:
    code, _, err = run("start", "no-such-scenario")
    assert code == 2 and err.startswith("cks-lab: error: ") and "known:" in err
    assert err.count("\n") == 1

    code, _, err = run("check", "-w", str(tmp_path))
    assert code == 2 and "not a cks-lab workspace" in err

    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.txt").write_text("mine")
    code, _, err = run("start", "audit-enable-logging", "-w", str(tmp_path / "junk"))
    assert code == 2 and "not empty" in err
    assert (tmp_path / "junk" / "a.txt").read_text() == "mine"

    code, _, err = run("grade", "audit-enable-logging", "-w", str(tmp_path / "junk"))
    assert code == 2 and "no nodes/ folder" in err

    code, _, err = run("check")
    assert code == 2 and "no scenario started yet" in err


def test_start_twice_resumes_and_keeps_edits(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    run("start", "audit-enable-logging", "-w", str(ws))
    manifest = ws / "nodes/controlplane/etc/kubernetes/manifests/kube-apiserver.yaml"
    manifest.write_text(manifest.read_text() + "# my edit\n")
    code, out, _ = run("start", "audit-enable-logging", "-w", str(ws))
    assert code == 0 and "Resuming" in out
    assert manifest.read_text().endswith("# my edit\n")
    code, _, err = run("start", "audit-policy-secrets", "-w", str(ws))
    assert code == 2 and "belongs to scenario 'audit-enable-logging'" in err


def test_scenario_validate_and_test() -> None:
    code, out, _ = run("scenario", "validate")
    assert code == 0 and out.count("ok ") >= 2
    code, out, _ = run("scenario", "test")
    assert code == 0 and "ok   audit-enable-logging" in out and "ok   audit-policy-secrets" in out


def test_scenario_validate_reports_broken_folder(tmp_path: Path) -> None:
    bad = tmp_path / "broken-one"
    bad.mkdir()
    (bad / "scenario.yaml").write_text("apiVersion: cks-lab/v1\nid: broken-one\n")
    code, out, err = run("scenario", "validate", str(bad))
    assert code == 1 and "INVALID" in out
    assert f"{bad}/scenario.yaml:1: title: required field is missing" in err


def test_scenario_schema_is_json_schema() -> None:
    code, out, _ = run("scenario", "schema")
    schema = json.loads(out)
    assert code == 0 and "apiVersion" in schema["properties"] and "tasks" in schema["required"]


def test_audit_validate_and_eval(tmp_path: Path) -> None:
    good = bundled_scenarios_dir() / "audit-enable-logging/files/policy.yaml"
    code, out, _ = run("audit", "validate", str(good))
    assert code == 0 and out.strip() == "valid"

    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Loud\n")
    code, _, err = run("audit", "validate", str(bad))
    assert code == 1 and 'Unsupported value: "Loud"' in err

    reqs = tmp_path / "reqs.jsonl"
    reqs.write_text(
        json.dumps(
            {
                "user": {"username": "system:kube-proxy"},
                "verb": "watch",
                "objectRef": {"resource": "endpoints"},
            }
        )
        + "\n"
        + json.dumps(
            {
                "user": {"username": "bob"},
                "verb": "get",
                "objectRef": {"resource": "secrets", "namespace": "a"},
            }
        )
        + "\n"
        + json.dumps({"verb": "get", "requestURI": "/healthz?verbose"})
        + "\n"
    )
    code, out, _ = run("audit", "eval", "--policy", str(good), str(reqs))
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows[0] == {
        "level": "None",
        "omitStages": ["RequestReceived"],
        "omitManagedFields": False,
        "rule": 0,
    }
    assert rows[1]["level"] == "Metadata" and rows[1]["rule"] == 1
    assert rows[2]["level"] == "Metadata" and rows[2]["rule"] == 3


def test_audit_eval_bad_line_is_located(tmp_path: Path) -> None:
    good = bundled_scenarios_dir() / "audit-enable-logging/files/policy.yaml"
    reqs = tmp_path / "reqs.jsonl"
    reqs.write_text('{"verb": "get", "requestURI": "/x"}\nnot json\n')
    code, _, err = run("audit", "eval", "-p", str(good), str(reqs))
    assert code == 2 and f"{reqs}:2" in err


def _own_scenario(tmp_path: Path) -> Path:
    """An author's copy of a bundled scenario, outside the lab, with its own kind config."""
    own = tmp_path / "authoring" / "audit-enable-logging"
    shutil.copytree(bundled_scenarios_dir() / "audit-enable-logging", own)
    (own / "kind.yaml").write_text("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n")
    spec = own / "scenario.yaml"
    spec.write_text(spec.read_text().replace("kind_config: audit.yaml", "kind_config: kind.yaml"))
    return own


def test_author_tests_a_scenario_folder_by_path(tmp_path: Path) -> None:
    own = _own_scenario(tmp_path)
    code, out, _ = run("scenario", "test", str(own))
    assert code == 0 and "ok   audit-enable-logging" in out
    code, out, _ = run("scenario", "validate", str(own))
    assert code == 0


def test_a_broken_check_stops_start_with_its_place(tmp_path: Path) -> None:
    own = _own_scenario(tmp_path)
    spec = own / "scenario.yaml"
    spec.write_text(spec.read_text().replace("writable: true", "writeable: true"))
    code, _, err = run("start", str(own), "-w", str(tmp_path / "ws"))
    assert code == 2
    assert f"{spec}:126: tasks[0].checks[3].writeable: unknown parameter" in err
    assert not (tmp_path / "ws").exists()


def test_grade_counts_hints_taken_in_the_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    run("start", "audit-enable-logging", "-w", str(ws))
    run("hint", "retention", "-w", str(ws))
    run("solution", "--apply", "-y", "-w", str(ws))
    code, out, _ = run(
        "grade", "audit-enable-logging", "-w", str(ws), "--json", str(tmp_path / "r.json")
    )
    report = json.loads((tmp_path / "r.json").read_text())
    assert code == 0 and report["totals"]["points"] == 13 and report["totals"]["max_points"] == 14
    assert report["totals"]["hint_penalty"] == 1 and report["scenarios"][0]["hint_penalty"] == 1


def test_status_after_a_check_and_a_hint(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    run("start", "audit-policy-secrets", "-w", str(ws))
    code, out, _ = run("status", "-w", str(ws))
    assert code == 0 and "not checked yet" in out
    run("hint", "less-noise", "-w", str(ws))
    run("check", "-w", str(ws))
    code, out, _ = run("status", "-w", str(ws))
    assert "checks run: 1; last 10/21" in out
    assert "task less-noise: hints 1/2 (costing 1 point)" in out
    assert "task sensitive-data: hints 0/2" in out


def test_audit_eval_non_utf8_input_is_a_located_error(tmp_path: Path) -> None:
    good = bundled_scenarios_dir() / "audit-enable-logging/files/policy.yaml"
    reqs = tmp_path / "reqs.jsonl"
    get = b'{"verb": "get", "requestURI": "/%s"}'
    reqs.write_bytes(get % b"x" + b"\n\n" + get % b"\xff" + b"\n")
    code, _, err = run("audit", "eval", "-p", str(good), str(reqs))
    assert code == 2 and err == f"cks-lab: error: {reqs}:3: not UTF-8 text\n"
    r = CliRunner().invoke(main, ["audit", "eval", "-p", str(good)], input=reqs.read_bytes())
    assert r.exit_code == 2 and r.stderr == "cks-lab: error: <stdin>:3: not UTF-8 text\n"
    # CRLF line ends, blank lines and a last line without "\n" are fine, as before
    reqs.write_bytes(get % "é".encode() + b"\r\n\n" + get % b"x")
    code, out, _ = run("audit", "eval", "-p", str(good), str(reqs))
    assert code == 0 and len(out.splitlines()) == 2


def test_utf8_lines_across_blocks() -> None:
    import io

    from lab.errors import LabError
    from lab.fsutil import utf8_lines

    text = "a\n\nbé€\nlong line here\n\n€€€\nlast"
    for block in (1, 2, 3, 5, 64):
        got = list(utf8_lines(io.BytesIO(text.encode()), "f", block))
        assert got == text.split("\n"), block
        assert list(utf8_lines(io.BytesIO((text + "\n").encode()), "f", block)) == got
        bad = text.encode().replace(b"long", b"lo\xc3ng")
        try:
            list(utf8_lines(io.BytesIO(bad), "f", block))
        except LabError as e:
            assert str(e) == "f:4: not UTF-8 text", block
        else:
            raise AssertionError("no error")


def test_an_unexpected_exception_is_one_line_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    from lab import service

    def boom(*args: object, **kwargs: object) -> None:
        raise ValueError("invalid literal")

    monkeypatch.setattr(service, "grade_workspace", boom)
    code, out, err = run("grade", "audit-enable-logging")
    assert code == 2 and out == ""
    assert err == (
        "cks-lab: internal error: ValueError: invalid literal "
        "(this is a bug; rerun with --debug for the traceback)\n"
    )
    r = CliRunner().invoke(main, ["--debug", "grade", "audit-enable-logging"])
    assert isinstance(r.exception, ValueError)  # the traceback, for a bug report


def test_ctrl_c_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    from lab import service

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(service, "grade_workspace", interrupted)
    code, _, err = run("grade", "audit-enable-logging")
    assert code == 130 and err == "cks-lab: interrupted\n"


def test_an_unwritable_report_is_an_error_not_a_bug(tmp_path: Path) -> None:
    out = tmp_path / "no-such-dir" / "r.xml"
    code, _, err = run("grade", "audit-enable-logging", "--junit", str(out), "-q")
    assert code == 2 and err.startswith(f"cks-lab: error: {out}: ") and err.count("\n") == 1


def test_error_lines_show_control_characters_escaped() -> None:
    code, _, err = run("start", "evil\x1b[2Jname\x07")
    assert code == 2 and "evil\\x1b[2Jname\\x07" in err
    assert not any(ord(ch) < 0x20 for ch in err.rstrip("\n"))


def test_grade_refuses_a_node_folder_the_scenario_does_not_have(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    (sub / "nodes/control-plane/etc").mkdir(parents=True)
    code, _, err = run("grade", "audit-policy-secrets", "-w", str(sub))
    assert code == 2
    assert "nodes/control-plane is not a node of scenario 'audit-policy-secrets'" in err
    assert "(its nodes: controlplane, worker)" in err


def test_check_reports_the_authors_own_broken_scenario(tmp_path: Path) -> None:
    own = _own_scenario(tmp_path)
    ws = tmp_path / "ws"
    assert run("start", str(own), "-w", str(ws))[0] == 0
    spec = own / "scenario.yaml"
    spec.write_text(spec.read_text().replace("difficulty: easy", "difficulty: eazy"))
    code, _, err = run("check", "-w", str(ws))
    assert code == 2 and f"{spec}:7: difficulty: must be one of" in err


def test_grade_writes_all_reports_or_none(tmp_path: Path) -> None:
    ok = tmp_path / "ok.json"
    code, _, err = run(
        "grade",
        "audit-enable-logging",
        "--json",
        str(ok),
        "--junit",
        str(tmp_path / "missing-dir" / "r.xml"),
        "-q",
    )
    assert code == 2 and "cannot write the report" in err
    assert not ok.exists() and list(tmp_path.iterdir()) == []


def test_no_hint_is_taken_when_every_task_passes(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    run("start", "audit-enable-logging", "-w", str(ws))
    run("solution", "--apply", "-y", "-w", str(ws))
    assert run("check", "-w", str(ws))[0] == 0
    code, out, _ = run("hint", "-w", str(ws))
    assert code == 0 and "passed every task: no hint needed" in out
    code, out, _ = run("status", "-w", str(ws))
    assert "hints 0/2, solution viewed" in out and "costing" not in out
