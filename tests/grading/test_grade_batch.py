"""`cks-lab grade` over several scenarios: by id (their workspaces), by manifest (a
course's folders), the reports they write and every way a manifest can be wrong."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lab import service
from lab.cli import main
from lab.grading.batch import md_text, summary_markdown
from lab.grading.report_json import SCHEMA_VERSION, Graded, report_dict
from lab.grading.report_junit import render_junit
from lab.grading.results import CheckResult, ScenarioResult, TaskResult
from lab.paths import bundled_scenarios_dir
from lab.scenarios.loader import load_scenario

DOCS = Path(__file__).resolve().parents[2] / "docs"
ENABLE, SECRETS = "audit-enable-logging", "audit-policy-secrets"


def run(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        r = CliRunner().invoke(main, list(args))
    finally:
        os.chdir(old)
    if r.exception and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.stdout, r.stderr


def solved(folder: Path, scenario: str) -> Path:
    """A submission of the scenario's reference solution files (nodes/ only)."""
    sc = load_scenario(bundled_scenarios_dir() / scenario)
    for task in sc.model.tasks:
        for f in task.solution.files:
            target = folder / "nodes" / f.node / f.path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(sc.node_file_bytes(f))
    return folder


def course(root: Path, manifest: str, *, solve: tuple[str, ...] = (ENABLE,)) -> Path:
    """A course repo: grading.yaml and submissions/<id>/ for the solved scenarios."""
    root.mkdir(parents=True, exist_ok=True)
    for sid in solve:
        solved(root / "submissions" / sid, sid)
    (root / "grading.yaml").write_text(manifest)
    return root


TWO = f"""\
learner: Ada Lovelace
scenarios:
  - scenario: {ENABLE}
    workspace: submissions/{ENABLE}
  - scenario: {SECRETS}
"""


def schema() -> dict[str, Any]:
    return json.loads((DOCS / "report.schema.json").read_text())


def assert_valid_report(report: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(schema())
    errors = [e.message for e in jsonschema.Draft202012Validator(schema()).iter_errors(report)]
    assert errors == []


# -- by id: each scenario in its workspace -------------------------------------------


def test_ids_grade_each_scenario_in_its_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert run("start", ENABLE, "-w", str(ws))[0] == 0
    assert run("solution", "--apply", "--yes", "-w", str(ws))[0] == 0
    out_json = tmp_path / "r.json"
    code, out, err = run("grade", ENABLE, SECRETS, "--json", str(out_json))
    assert code == 1, err
    lines = out.splitlines()
    assert lines[0].startswith(f"PASS {ENABLE} ") and lines[0].endswith(f"[{ws}]")
    assert lines[1].startswith(f"FAIL {SECRETS} ") and lines[1].endswith("[untouched]")
    assert "checks fail" in lines[1] and "checks fail" not in lines[0]
    assert len(lines) == 3  # a line per scenario and the total: no full reports
    report = json.loads(out_json.read_text())
    first, second = report["scenarios"]
    assert (first["id"], first["workspace"], first["passed"]) == (ENABLE, str(ws), True)
    assert (second["id"], second["workspace"], second["passed"]) == (SECRETS, None, False)
    assert first["skills"] == ["audit-logging"] and first["weight"] >= 1 and first["domain"]
    assert report["learner"] is None and report["passed"] is False
    t = report["totals"]
    assert t["points"] == first["points"] + second["points"]
    pct = f"{t['points'] / t['max_points']:.0%}"
    assert (
        lines[2] == f"Total: 1 of 2 scenarios pass, {t['points']}/{t['max_points']} points ({pct})"
    )
    assert (t["scenarios"], t["scenarios_passed"]) == (2, 1)
    assert_valid_report(report)


def test_the_current_workspace_wins_over_the_default_one(tmp_path: Path) -> None:
    assert service.workspace_to_grade(ENABLE) is None  # not started: untouched
    assert run("start", ENABLE)[0] == 0  # the default workspace
    default = service.default_workspace(ENABLE)
    assert service.workspace_to_grade(ENABLE) == default
    other = tmp_path / "other"
    assert run("start", SECRETS, "-w", str(other))[0] == 0  # current, of another scenario
    assert service.workspace_to_grade(ENABLE) == default
    assert service.workspace_to_grade(SECRETS) == other
    mine = tmp_path / "mine"
    assert run("start", ENABLE, "-w", str(mine))[0] == 0  # current, of this scenario
    assert service.workspace_to_grade(ENABLE) == mine
    assert run("solution", "--apply", "--yes", "-w", str(mine))[0] == 0
    # one id: the full report, of the workspace `check` would grade
    code, out, _ = run("grade", ENABLE)
    assert code == 0 and out.splitlines()[-1].startswith("Score: 14/14")


def test_one_id_with_a_workspace_keeps_the_full_report(tmp_path: Path) -> None:
    sub = solved(tmp_path / "sub", ENABLE)
    code, out, _ = run("grade", ENABLE, "-w", str(sub))
    assert code == 0 and "PASS task enable-audit" in out and "Total:" not in out
    code, out, _ = run("grade", ENABLE, SECRETS, "-v")
    assert code == 1
    assert "task enable-audit" in out and "task sensitive-data" in out  # both full reports
    assert out.splitlines()[-1].startswith("Total: 0 of 2 scenarios pass")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((ENABLE, SECRETS, "-w", "."), "grade one scenario"),
        ((ENABLE, ENABLE), f"scenario {ENABLE!r} is given twice"),
        ((ENABLE, "-v", "-q"), "exclude each other"),
        ((ENABLE, "--manifest", "grading.yaml"), "give no ID"),
        (("--manifest", "grading.yaml", "-w", "."), "give no ID"),
        ((ENABLE, "--learner", " "), "--learner needs a name"),
    ],
)
def test_usage_errors(tmp_path: Path, args: tuple[str, ...], says: str) -> None:
    course(tmp_path, TWO)
    code, _, err = run("grade", *args, "--json", "r.json", cwd=tmp_path)
    assert code == 2 and says in err
    assert not (tmp_path / "r.json").exists()


def test_an_unknown_id_among_several_stops_before_grading(tmp_path: Path) -> None:
    code, out, err = run("grade", ENABLE, "no-such", "--json", str(tmp_path / "r.json"))
    assert code == 2 and out == "" and "no scenario 'no-such'" in err
    assert not (tmp_path / "r.json").exists()


# -- by manifest ---------------------------------------------------------------------


def test_manifest_grades_the_listed_folders(tmp_path: Path) -> None:
    repo = course(tmp_path / "repo", TWO)
    args = ["--json", "r.json", "--junit", "r.xml", "--summary-md", "s.md"]
    code, out, err = run("grade", "--manifest", "grading.yaml", *args, cwd=repo)
    assert code == 1, err
    assert out.splitlines()[0] == "learner: Ada Lovelace"
    report = json.loads((repo / "r.json").read_text())
    assert report["schema"] == SCHEMA_VERSION == 2 and report["learner"] == "Ada Lovelace"
    assert [s["workspace"] for s in report["scenarios"]] == [f"submissions/{ENABLE}", None]
    assert [s["passed"] for s in report["scenarios"]] == [True, False]
    assert_valid_report(report)
    suites = ET.parse(repo / "r.xml").getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == [ENABLE, SECRETS]
    assert suites[0].get("failures") == "0" and int(suites[1].get("failures", "0")) > 0
    md = (repo / "s.md").read_text()
    assert "1 of 2 scenarios pass" in md and f"`submissions/{ENABLE}`" in md
    # the manifest may be given from elsewhere: paths are the manifest's, not the cwd's
    code, _, _ = run("grade", "-m", str(repo / "grading.yaml"), "-q", cwd=tmp_path)
    assert code == 1
    # --learner overrides the manifest's
    out_json = tmp_path / "l.json"
    run("grade", "-m", str(repo / "grading.yaml"), "--learner", "Grace", "--json", str(out_json))
    assert json.loads(out_json.read_text())["learner"] == "Grace"


def test_manifest_as_json_list_and_all_passing(tmp_path: Path) -> None:
    entries = [{"scenario": s, "workspace": f"./submissions/{s}/"} for s in (ENABLE, SECRETS)]
    repo = course(tmp_path, "", solve=(ENABLE, SECRETS))
    (repo / "grading.json").write_text(json.dumps(entries, indent="\t"))
    code, out, _ = run("grade", "--manifest", "grading.json", "--json", "r.json", cwd=repo)
    assert code == 0, out
    report = json.loads((repo / "r.json").read_text())
    assert report["passed"] and report["learner"] is None
    assert [s["workspace"] for s in report["scenarios"]] == [
        f"submissions/{ENABLE}",
        f"submissions/{SECRETS}",
    ]
    assert out.splitlines()[-1] == "Total: 2 of 2 scenarios pass, 35/35 points (100%)"


def test_a_single_entry_manifest_prints_the_full_report(tmp_path: Path) -> None:
    repo = course(tmp_path, f"- {{scenario: {ENABLE}, workspace: submissions/{ENABLE}}}\n")
    code, out, _ = run("grade", "-m", "grading.yaml", cwd=repo)
    assert code == 0 and out.splitlines()[-1].startswith("Score: 14/14")


def _symlink_out(repo: Path) -> None:
    outside = solved(repo.parent / "elsewhere", SECRETS)
    (repo / "submissions").mkdir(exist_ok=True)
    (repo / "submissions" / "linked").symlink_to(outside, target_is_directory=True)


MANIFEST_ERRORS = [
    # (manifest, setup, line, message part)
    (f"- scenario: {ENABLE}\n  workspace: ../outside\n", None, 2, "leads out of the manifest"),
    (f"- scenario: {ENABLE}\n  workspace: /etc\n", None, 2, "is absolute"),
    (
        f"- scenario: {SECRETS}\n  workspace: submissions/linked\n",
        _symlink_out,
        2,
        "symlink that leads out of the manifest's folder",
    ),
    (
        f"- scenario: {ENABLE}\n  workspace: submissions/{ENABLE}/x/../../../..\n",
        None,
        2,
        "leads out of the manifest",
    ),
    (f"- scenario: {SECRETS}\n  workspace: submissions/nope\n", None, 2, "no folder"),
    (f"- scenario: {ENABLE}\n  workspace: grading.yaml\n", None, 2, "is not a folder"),
    ("- scenario: no-such-scenario\n", None, 1, "no scenario 'no-such-scenario' (known: "),
    ("- scenario: ./scenarios/x\n", None, 1, "is a path, not a scenario id"),
    (
        f"learner: x\nscenarios:\n  - scenario: {ENABLE}\n  - scenario: {SECRETS}\n"
        f"  - scenario: {ENABLE}\n    workspace: submissions/{ENABLE}\n",
        None,
        5,
        f"scenario {ENABLE!r} is listed twice (first at line 3)",
    ),
    (f"- scenario: {ENABLE}\n  workspce: submissions\n", None, 2, "unknown key 'workspce'"),
    (f"learner: x\nscenario:\n  - scenario: {ENABLE}\n", None, 2, "unknown key 'scenario'"),
    ("learner: x\n", None, 1, "no `scenarios:` list"),
    ("scenarios: []\n", None, 1, "lists no scenarios"),
    ("just text\n", None, 1, "expected a list of {scenario: ID, workspace: PATH}"),
    (f"- {ENABLE}\n", None, 1, "expected {scenario: ID, workspace: PATH}"),
    ("- workspace: submissions\n", None, 1, "no `scenario:` id"),
    ("- scenario: [a]\n", None, 1, "scenario must be a non-empty string"),
    (f"learner: ''\nscenarios:\n  - scenario: {ENABLE}\n", None, 1, "learner must be"),
    (f"- scenario: {ENABLE}\n  workspace: [\n", None, 3, "invalid YAML"),
]


@pytest.mark.parametrize(
    ("manifest", "setup", "line", "says"),
    MANIFEST_ERRORS,
    ids=[m[3].split("(")[0].strip(" '") for m in MANIFEST_ERRORS],
)
def test_manifest_errors_are_located_and_write_nothing(
    tmp_path: Path, manifest: str, setup: Any, line: int, says: str
) -> None:
    repo = course(tmp_path / "repo", manifest)
    if setup:
        setup(repo)
    reports = ["--json", "r.json", "--junit", "r.xml", "--summary-md", "s.md"]
    code, out, err = run("grade", "--manifest", "grading.yaml", *reports, cwd=repo)
    assert code == 2 and out == ""
    assert err.startswith(f"cks-lab: error: grading.yaml:{line}: "), err
    assert says in err and err.count("\n") == 1
    assert not any((repo / f).exists() for f in ("r.json", "r.xml", "s.md"))


def test_a_broken_submission_is_located_at_its_manifest_entry(tmp_path: Path) -> None:
    repo = course(
        tmp_path,
        TWO.replace(f"  - scenario: {SECRETS}\n", "")
        + f"  - scenario: {SECRETS}\n    workspace: submissions/{SECRETS}\n",
    )
    (repo / "submissions" / SECRETS / "nodes/control-plane").mkdir(parents=True)
    code, _, err = run("grade", "-m", "grading.yaml", "--json", "r.json", cwd=repo)
    assert code == 2 and err.startswith(
        f"cks-lab: error: grading.yaml:5: submissions/{SECRETS}: nodes/control-plane is not"
    )
    assert "nodes/control-plane is not a node of scenario 'audit-policy-secrets'" in err
    assert not (repo / "r.json").exists()


# -- the reports' shape ---------------------------------------------------------------


def _hostile() -> Graded:
    nasty = "a \"quote\", 'single', <tag> & ]]> \x1b[31m\r\nnext \x00 | *bold* `code|x` _u_"
    checks = [
        CheckResult(
            "apiserver_flag", f"title {nasty}", False, 0, 2, f"why {nasty}", f"cause {nasty}"
        ),
        CheckResult("apiserver_flag", "fine", True, 1, 1, "ok"),
    ]
    result = ScenarioResult("sc-1", f"Title {nasty}", "sim", "r1", [TaskResult("t1", "T", checks)])
    return Graded(result, ("falco",), "system-hardening", 5, f"subs/{nasty}")


# Jenkins' junit-10.xsd, the shape CI tools read: element -> (children, required
# attributes, optional attributes).
JUNIT = {
    "testsuites": (
        {"testsuite"},
        set(),
        {"name", "time", "tests", "failures", "disabled", "errors"},
    ),
    "testsuite": (
        {"properties", "testcase", "system-out", "system-err"},
        {"name", "tests"},
        {
            "failures",
            "errors",
            "time",
            "disabled",
            "skipped",
            "timestamp",
            "hostname",
            "id",
            "package",
            "file",
            "log",
            "url",
            "version",
        },
    ),
    "properties": ({"property"}, set(), set()),
    "property": (set(), {"name", "value"}, set()),
    "testcase": (
        {"skipped", "error", "failure", "system-out", "system-err"},
        {"name"},
        {
            "assertions",
            "time",
            "classname",
            "status",
            "class",
            "file",
            "line",
            "log",
            "group",
            "url",
        },
    ),
    "failure": (set(), set(), {"message", "type"}),
}


def assert_junit_shape(el: ET.Element) -> None:
    children, required, optional = JUNIT[el.tag]
    assert required <= set(el.attrib) <= required | optional, (el.tag, el.attrib)
    for child in el:
        assert child.tag in children, f"<{child.tag}> in <{el.tag}>"
        assert_junit_shape(child)
    if el.tag == "testsuite":
        kids = [c.tag for c in el]
        assert kids.index("properties") == 0 if "properties" in kids else True
        cases = el.findall("testcase")
        assert int(el.get("tests", "-1")) == len(cases)
        assert int(el.get("failures", "-1")) == sum(c.find("failure") is not None for c in cases)


def test_junit_of_hostile_text_keeps_the_shape_and_escapes() -> None:
    g = _hostile()
    xml = render_junit([g], learner="Ada <&>")
    root = ET.fromstring(xml.encode("utf-8"))
    assert_junit_shape(root)
    failure = root.find(".//failure")
    assert failure is not None
    message = failure.get("message", "")
    assert failure.text == message  # the same full explanation as attribute and text
    assert message.startswith("why a \"quote\", 'single', <tag> & ]]> \\x1b[31m\\x0d\nnext \\x00")
    assert message.endswith(f": cause {message.split(': cause ')[1]}")  # the cause follows
    assert "\x1b" not in xml and "\r" not in xml and "\x00" not in xml
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["learner"] == "Ada <&>" and props["points"] == "1" and props["max_points"] == "3"
    assert props["workspace"].startswith('subs/a "quote"')
    # untouched and no learner: those properties are left out, not empty
    bare = ET.fromstring(render_junit([g.result]).encode())
    assert {p.get("name") for p in bare.iter("property")} == {"title", "points", "max_points"}


def test_markdown_summary_is_inert() -> None:
    report = report_dict([_hostile()], learner="<b>Ada</b>", graded_at="2026-01-02T03:04:05Z")
    md = summary_markdown(report)
    assert "<tag>" not in md and "<b>" not in md and "&lt;tag&gt;" in md
    assert "\x1b" not in md and "\x00" not in md
    row = next(line for line in md.splitlines() if line.startswith("| ❌"))
    # a table row keeps its five cells: every | in learner text is escaped
    assert row.replace("\\|", "").count("|") == 6
    assert "`code\\|x`" in row and "\\*bold\\*" in row
    assert md_text("a `b|c` *d*") == "a `b|c` \\*d\\*"  # outside a table, code is as is
    assert "learner **&lt;b&gt;Ada&lt;/b&gt;**" in md


def test_report_schema_names_every_field_the_report_has() -> None:
    """Without jsonschema too: the committed schema's required keys are exactly the
    report's keys at each level (a new field needs a schema and a doc entry)."""
    report = report_dict([_hostile()], learner="x")
    s = schema()
    defs = s["$defs"]

    def keys(node: dict[str, Any]) -> set[str]:
        return set(node["required"]) | set(node["properties"])

    assert set(report) == keys(s) == set(s["required"])
    assert set(report["totals"]) == keys(s["properties"]["totals"])
    sc = report["scenarios"][0]
    # fields added within schema 2 are optional, so a reader takes older reports too
    added = {"digest", "solutions_viewed"}
    assert set(sc) == keys(defs["scenario"]) == set(defs["scenario"]["required"]) | added
    assert set(sc["tasks"][0]) == keys(defs["task"]) == set(defs["task"]["required"]) | {
        "hints_taken"
    }
    assert set(sc["tasks"][0]["checks"][0]) == keys(defs["check"])
    assert s["properties"]["schema"]["const"] == SCHEMA_VERSION
    doc = (DOCS / "ci-grading.md").read_text()
    for name in [*report, *report["totals"], *sc, *sc["tasks"][0], *sc["tasks"][0]["checks"][0]]:
        assert f"`{name}`" in doc or f"`totals.{name}`" in doc or f".{name}`" in doc, name


def test_a_bare_result_validates_too() -> None:
    report = report_dict([_hostile().result])
    sc = report["scenarios"][0]
    assert (sc["skills"], sc["domain"], sc["weight"], sc["workspace"]) == ([], None, None, None)
    assert_valid_report(report)
    assert_valid_report(report_dict([_hostile()], learner="Ada"))
