"""Output quoted in the docs is real output, produced again on every test run.

A fenced block in README.md or docs/*.md that quotes what cks-lab prints is
marked by an HTML comment on the line before it:

    <!-- output: check-flag-typo -->
    ```
    ...
    ```

OUTPUTS below maps each id to a function that produces that text by running
cks-lab (click's CliRunner on ``lab.cli.main``) in a tmp folder, on a bundled
scenario or a copy of one with a small edit. The test asserts that the block
equals the output, after normalising the tmp folder (to /home/me), run ids and
time stamps. A line holding only ``...`` (any indentation) stands for any
number of lines left out, as doctest's ELLIPSIS, so a block can quote an
excerpt; every other line must match exactly and in order. Unmarked blocks are
illustrations and are not checked.

To see what a block should hold:    python tests/test_docs_examples.py ID
(no ID: every id, with its output).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lab.cli import main
from lab.paths import bundled_scenarios_dir

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKER = re.compile(r"^<!-- output: ([a-z0-9-]+) -->\n```[a-z]*\n(.*?)^```$", re.M | re.S)
HOME = "/home/me"  # what the tmp folder is shown as in the docs

# -- running cks-lab ----------------------------------------------------------------


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def cli(tmp: Path, *args: str, code: int | None = None) -> Result:
    """`cks-lab ARGS` run in `tmp`, on a 100-column terminal (the width when piped)."""
    with _cwd(tmp):
        r = CliRunner().invoke(main, list(args), prog_name="cks-lab", env={"COLUMNS": "100"})
    if r.exception and not isinstance(r.exception, SystemExit):
        raise r.exception
    if code is not None:
        assert r.exit_code == code, f"cks-lab {' '.join(args)}: exit {r.exit_code}\n{r.output}"
    return r


def shell(tmp: Path, *args: str, code: int) -> str:
    """`$ cks-lab ARGS` and what it prints, stdout and stderr, as in a terminal."""
    return f"$ cks-lab {' '.join(args)}\n" + cli(tmp, *args, code=code).output


def submission(tmp: Path, files: dict[str, str], name: str = "submission") -> Path:
    """A submission folder holding only the given controlplane files."""
    sub = tmp / name
    for path, text in files.items():
        f = sub / "nodes/controlplane" / path.lstrip("/")
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    sub.mkdir(exist_ok=True)
    return sub


def start(tmp: Path, scenario: str, name: str = "ws") -> Path:
    cli(tmp, "start", scenario, "--workspace", name, code=0)
    return tmp / name


def edit(path: Path, *pairs: tuple[str, str]) -> None:
    text = path.read_text()
    for old, new in pairs:
        assert old in text, f"stale edit: {old!r} is not in {path}"
        text = text.replace(old, new, 1)
    path.write_text(text)


def bundled(scenario: str, *parts: str) -> str:
    return bundled_scenarios_dir().joinpath(scenario, *parts).read_text()


def grade_json(tmp: Path, scenario: str, files: dict[str, str] | None) -> dict:
    """The JSON report of `cks-lab grade` for a submission of these files (None: untouched)."""
    name = f"sub{len(list(tmp.glob('sub*.json')))}"
    out = tmp / f"{name}.json"
    ws = ["-w", submission(tmp, files, name).name] if files is not None else []
    cli(tmp, "grade", scenario, *ws, "--json", str(out), "-q")
    return json.loads(out.read_text())


def checks(report: dict) -> Iterator[dict]:
    for sc in report["scenarios"]:
        for task in sc["tasks"]:
            yield from task["checks"]


def explanation(report: dict, title_part: str) -> str:
    found = [c for c in checks(report) if title_part in c["title"]]
    assert len(found) == 1, f"{len(found)} checks have {title_part!r} in their title"
    c = found[0]
    assert not c["passed"], f"{c['title']} passed"
    return c["explanation"] + (f": {c['cause']}" if c["cause"] else "")


def lines(*texts: str) -> str:
    return "\n".join(texts) + "\n"


# The bundled manifests and policies, with the edits the examples make.
ENABLE_MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
POLICY = "/etc/kubernetes/audit/policy.yaml"
ENABLE_SOLVED = bundled("audit-enable-logging", "solution", "kube-apiserver.yaml")
SECRETS_SOLVED = bundled("audit-policy-secrets", "solution", "policy.yaml")
USERGROUPS_TYPO = SECRETS_SOLVED.replace("userGroups:", "usergroups:")


def author_copy(tmp: Path, src: str, new_id: str, *pairs: tuple[str, str]) -> str:
    """An author's scenario my-scenarios/NEW_ID: a bundled one, its scenario.yaml edited."""
    folder = tmp / "my-scenarios" / new_id
    shutil.copytree(bundled_scenarios_dir() / src, folder)
    edit(folder / "scenario.yaml", (f"id: {src}", f"id: {new_id}"), *pairs)
    return f"my-scenarios/{new_id}"


# -- the outputs, by id --------------------------------------------------------------

Producer = Callable[[Path], str]
OUTPUTS: dict[str, Producer] = {}


def output(name: str) -> Callable[[Producer], Producer]:
    def register(fn: Producer) -> Producer:
        OUTPUTS[name] = fn
        return fn

    return register


@output("scenario-test")
def _scenario_test(tmp: Path) -> str:
    # Two authors' copies of audit-enable-logging: one whose check wants another
    # value than the solution sets, one whose task has no check that fails untouched.
    author_copy(tmp, "audit-enable-logging", "audit-logging-lab", ('value: "10"', 'value: "11"'))
    author_copy(tmp, "audit-enable-logging", "audit-rotation-lab")
    yaml_file = tmp / "my-scenarios/audit-rotation-lab/scenario.yaml"
    text = yaml_file.read_text()
    cut = text.index("      - type: apiserver_running\n")  # the retention task's last check
    yaml_file.write_text(text[:cut] + "      - type: apiserver_running\n")
    args = ["audit-policy-secrets", "audit-logging-lab", "audit-rotation-lab"]
    return shell(tmp, "--scenarios", "my-scenarios", "scenario", "test", *args, code=1)


def validate(tmp: Path, *pairs: tuple[str, str]) -> str:
    """`cks-lab scenario validate` of an author's broken copy of audit-policy-secrets."""
    folder = author_copy(tmp, "audit-policy-secrets", "audit-secrets-lab", *pairs)
    return shell(tmp, "scenario", "validate", folder, code=1)


@output("validate-fields")
def _validate_fields(tmp: Path) -> str:
    return validate(
        tmp,
        ("difficulty: medium", "dificulty: medium"),
        ("minutes: 15", 'minutes: "15"'),
        ("mode: 0600", "mode: 600"),
    )


@output("validate-cross-field")
def _validate_cross_field(tmp: Path) -> str:
    return validate(
        tmp,
        (
            "- node: controlplane\n      path: /etc/kubernetes/audit",
            "- node: control-plane\n      path: /etc/kubernetes/audit",
        ),
        ("  - id: node-reads-secret", "  - id: app-reads-secret"),
        ("  - id: less-noise", "  - id: sensitive-data"),
    )


@output("validate-references")
def _validate_references(tmp: Path) -> str:
    return validate(
        tmp,
        ("kind_config: audit-enabled.yaml", "kind_config: kind.yaml"),
        ("step: node-lists-pods", "step: node-list-pods"),
        ("step: health-probe\n", "step: health-probe\n        level: None\n"),
    )


@output("start-misspelt-parameter")
def _start_misspelt_parameter(tmp: Path) -> str:
    misspelt = ("level: Metadata\n", "level: Metadata\n        stage: [ResponseComplete]\n")
    folder = author_copy(tmp, "audit-policy-secrets", "audit-secrets-lab", misspelt)
    return shell(tmp, "start", "./" + folder, "--workspace", "try", code=2)


@output("check-flag-typo")
def _check_flag_typo(tmp: Path) -> str:
    """The learner's report after a typo in a flag name: the apiserver does not start."""
    ws = start(tmp, "audit-enable-logging")
    manifest = ws / "nodes/controlplane" / ENABLE_MANIFEST.lstrip("/")
    manifest.write_text(ENABLE_SOLVED.replace("--audit-log-maxage", "--audit-log-max-age"))
    return cli(tmp, "check", "-w", "ws", code=1).stdout


@output("note-manifest-backup")
def _note_manifest_backup(tmp: Path) -> str:
    """A backup of the manifest left next to it: kubelet runs the backup."""
    ws = start(tmp, "audit-enable-logging")
    manifest = ws / "nodes/controlplane" / ENABLE_MANIFEST.lstrip("/")
    shutil.copy(manifest, manifest.with_name("kube-apiserver.yaml.bak"))
    manifest.write_text(ENABLE_SOLVED)
    return cli(tmp, "check", "-w", "ws", code=1).stdout


@output("hint-all-passed")
def _hint_all_passed(tmp: Path) -> str:
    start(tmp, "audit-policy-secrets")
    cli(tmp, "solution", "--apply", "--yes", "-w", "ws", code=0)
    cli(tmp, "check", "-w", "ws", code=0)
    return cli(tmp, "hint", "-w", "ws", code=0).stdout


@output("exec-request-uri")
def _exec_request_uri(tmp: Path) -> str:
    """The requestURI of audit-enable-logging's exec step, from the audit log on the node."""
    ws = start(tmp, "audit-enable-logging")
    cli(tmp, "solution", "--apply", "--yes", "-w", "ws", code=0)
    cli(tmp, "check", "-w", "ws", code=0)
    log = ws / "nodes/controlplane/var/log/kubernetes/audit/audit.log"
    events = [json.loads(line) for line in log.read_text().splitlines()]
    return lines(*{e["requestURI"] for e in events if e["objectRef"].get("subresource") == "exec"})


@output("check-policy-typo")
def _check_policy_typo(tmp: Path) -> str:
    """A policy kube-apiserver refuses: every check fails for that one reason."""
    ws = start(tmp, "audit-policy-secrets")
    policy = ws / "nodes/controlplane" / POLICY.lstrip("/")
    policy.write_text(SECRETS_SOLVED.replace("level: Metadata", "level: Metadat", 1))
    return cli(tmp, "check", "-w", "ws", code=1).stdout


def enable_logging(tmp: Path, *pairs: tuple[str, str], policy: str | None = None) -> dict:
    """The JSON report of audit-enable-logging with the solution's manifest, edited."""
    text = ENABLE_SOLVED
    for old, new in pairs:
        assert old in text, f"stale edit: {old!r}"
        text = text.replace(old, new, 1)
    files = {ENABLE_MANIFEST: text, **({POLICY: policy} if policy else {})}
    return grade_json(tmp, "audit-enable-logging", files)


def policy_secrets(tmp: Path, policy: str) -> dict:
    return grade_json(tmp, "audit-policy-secrets", {POLICY: policy})


LOG_MOUNT = (
    "    - mountPath: /var/log/kubernetes/audit/\n      name: audit-log\n      readOnly: false\n"
)


@output("flag-failures")
def _flag_failures(tmp: Path) -> str:
    return lines(
        explanation(grade_json(tmp, "audit-enable-logging", None), "--audit-log-maxage"),
        explanation(
            enable_logging(
                tmp, ("--audit-log-path=/var/log/kubernetes/audit/audit.log", "--audit-log-path=-")
            ),
            "--audit-log-path",
        ),
    )


@output("mount-failures")
def _mount_failures(tmp: Path) -> str:
    title = "/var/log/kubernetes/audit in the apiserver"
    return lines(
        explanation(enable_logging(tmp, (LOG_MOUNT, "")), title),
        explanation(
            enable_logging(tmp, ("path: /var/log/kubernetes/audit/\n", "path: /var/log/audit/\n")),
            title,
        ),
        explanation(enable_logging(tmp, (LOG_MOUNT, LOG_MOUNT.replace("false", "true"))), title),
    )


@output("policy-valid-failures")
def _policy_valid_failures(tmp: Path) -> str:
    return lines(
        explanation(
            enable_logging(
                tmp, ("    - --audit-policy-file=/etc/kubernetes/audit/policy.yaml\n", "")
            ),
            "loads your audit policy",
        ),
    )


@output("logged-failures")
def _logged_failures(tmp: Path) -> str:
    untouched = grade_json(tmp, "audit-policy-secrets", None)
    none_first = policy_secrets(
        tmp,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n"
        "  - level: None\n    resources: [{resources: [secrets]}]\n  - level: Metadata\n",
    )
    no_catch_all = policy_secrets(tmp, SECRETS_SOLVED.split("  # 6.")[0])
    wrong_group = policy_secrets(
        tmp,
        SECRETS_SOLVED.replace(
            '      - group: ""\n        resources: ["configmaps"]',
            '      - group: "v1"\n        resources: ["configmaps"]',
        ),
    )
    enable_policy = bundled("audit-enable-logging", "files", "policy.yaml")
    all_stages = enable_logging(
        tmp, policy=enable_policy.replace("  - RequestReceived\n", "  []\n")
    )
    two_omitted = enable_logging(
        tmp,
        policy=enable_policy.replace(
            "  - RequestReceived\n", "  - RequestReceived\n  - ResponseStarted\n"
        ),
    )
    return lines(
        explanation(untouched, "'dev-updates-configmap'"),
        explanation(none_first, "'app-reads-secret'"),
        explanation(no_catch_all, "'dev-deletes-deployment'"),
        explanation(wrong_group, "'dev-updates-configmap'"),
        explanation(all_stages, "'read-secrets'"),
        explanation(two_omitted, "'exec-shell'"),
    )


@output("not-logged-reasons")
def _not_logged_reasons(tmp: Path) -> str:
    """Why `read-secrets` is not logged, for five ways of breaking the logging itself."""
    title = "'read-secrets'"
    return lines(
        explanation(grade_json(tmp, "audit-enable-logging", None), title),
        explanation(
            enable_logging(
                tmp, ("    - --audit-policy-file=/etc/kubernetes/audit/policy.yaml\n", "")
            ),
            title,
        ),
        explanation(
            enable_logging(
                tmp, ("--audit-log-path=/var/log/kubernetes/audit/audit.log", "--audit-log-path=-")
            ),
            title,
        ),
        explanation(enable_logging(tmp, (LOG_MOUNT, "")), title),
        explanation(enable_logging(tmp, ("--audit-log-maxage", "--audit-log-max-age")), title),
    )


@output("not-logged-failures")
def _not_logged_failures(tmp: Path) -> str:
    return lines(
        explanation(grade_json(tmp, "audit-policy-secrets", None), "'health-probe'"),
        explanation(grade_json(tmp, "audit-enable-logging", None), "'kube-proxy-watch'"),
    )


@output("stage-omitted-failure")
def _stage_omitted_failure(tmp: Path) -> str:
    return lines(
        explanation(grade_json(tmp, "audit-policy-secrets", None), "stage RequestReceived")
    )


# The submission of docs/ci-grading.md: the solution's policy with `userGroups` misspelt.


def usergroups_typo(tmp: Path) -> None:
    submission(tmp, {POLICY: USERGROUPS_TYPO})


@output("grade-usergroups-typo")
def _grade_usergroups_typo(tmp: Path) -> str:
    usergroups_typo(tmp)
    return cli(tmp, "grade", "audit-policy-secrets", "--workspace", "submission", code=1).stdout


JQ_TOTALS = '.scenarios[] | "\\(.id): \\(.points)/\\(.max_points) passed=\\(.passed)"'
JQ_FAILED = (
    ".scenarios[].tasks[].checks[] | select(.passed | not) | "
    '"\\(.title): \\(.explanation)\\(if .cause then ": " + .cause else "" end)"'
)


def jq(expr: str, report: Path) -> str:
    """`jq -r EXPR REPORT`; the same in Python where jq is not installed."""
    assert f"jq -r '{expr}' out.json" in (ROOT / "docs/ci-grading.md").read_text(), expr
    if shutil.which("jq"):
        run = subprocess.run(["jq", "-r", expr, str(report)], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        return run.stdout
    return jq_in_python(expr, json.loads(report.read_text()))


def jq_in_python(expr: str, data: dict) -> str:
    if expr == JQ_TOTALS:
        return lines(
            *(
                f"{s['id']}: {s['points']}/{s['max_points']} passed={json.dumps(s['passed'])}"
                for s in data["scenarios"]
            )
        )
    assert expr == JQ_FAILED, expr
    return lines(
        *(
            f"{c['title']}: {c['explanation']}" + (f": {c['cause']}" if c["cause"] else "")
            for c in checks(data)
            if not c["passed"]
        )
    )


def grade_reports(tmp: Path) -> None:
    cli(
        tmp,
        "grade",
        "audit-policy-secrets",
        "--workspace",
        "submission",
        "--json",
        "out.json",
        "--junit",
        "out.xml",
        "--quiet",
        code=1,
    )


@output("jq-usergroups-typo")
def _jq_usergroups_typo(tmp: Path) -> str:
    usergroups_typo(tmp)
    grade_reports(tmp)
    return jq(JQ_TOTALS, tmp / "out.json") + jq(JQ_FAILED, tmp / "out.json")


@output("audit-validate-usergroups-typo")
def _audit_validate(tmp: Path) -> str:
    usergroups_typo(tmp)
    return shell(tmp, "audit", "validate", "submission/nodes/controlplane" + POLICY, code=0)


@output("json-usergroups-typo")
def _json_usergroups_typo(tmp: Path) -> str:
    usergroups_typo(tmp)
    grade_reports(tmp)
    return (tmp / "out.json").read_text()


@output("json-cause")
def _json_cause(tmp: Path) -> str:
    submission(tmp, {POLICY: SECRETS_SOLVED.replace("level: Metadata", "level: Metadat", 1)})
    grade_reports(tmp)
    return (tmp / "out.json").read_text()


@output("junit-usergroups-typo")
def _junit_usergroups_typo(tmp: Path) -> str:
    usergroups_typo(tmp)
    grade_reports(tmp)
    return (tmp / "out.xml").read_text()


@output("grade-errors")
def _grade_errors(tmp: Path) -> str:
    """Exit 2: no report is written, one line on stderr."""
    usergroups_typo(tmp)
    (tmp / "submission/nodes/control-plane").mkdir()
    out = shell(
        tmp, "grade", "audit-policy-secrets", "-w", "submission", "--json", "out.json", code=2
    )
    assert not (tmp / "out.json").exists()
    return out + shell(tmp, "grade", "audit-policy-secrets", "-w", "nope", code=2)



# Several scenarios: by id (each in its workspace) and by a course repo's manifest.
COURSE_MANIFEST = """\
learner: Ada Lovelace
scenarios:
  - scenario: audit-enable-logging
    workspace: submissions/audit-enable-logging
  - scenario: audit-policy-secrets
    workspace: submissions/audit-policy-secrets
"""
COURSE_GRADE = (
    "grade", "--manifest", "grading.yaml", "--json", "report.json", "--junit", "report.xml",
    "--summary-md", "summary.md",
)


def course_repo(tmp: Path) -> None:
    """A course repo: one scenario solved, one as the course ships it (an empty node folder)."""
    submission(tmp, {ENABLE_MANIFEST: ENABLE_SOLVED}, "submissions/audit-enable-logging")
    submission(tmp, {".gitkeep": ""}, "submissions/audit-policy-secrets")
    (tmp / "grading.yaml").write_text(COURSE_MANIFEST)
    assert COURSE_MANIFEST in (ROOT / "docs/ci-grading.md").read_text()


@output("grade-several")
def _grade_several(tmp: Path) -> str:
    start(tmp, "audit-enable-logging")
    cli(tmp, "solution", "--apply", "--yes", "-w", "ws", code=0)
    return shell(tmp, "grade", "audit-enable-logging", "audit-policy-secrets", code=1)


@output("grade-manifest")
def _grade_manifest(tmp: Path) -> str:
    course_repo(tmp)
    return shell(tmp, *COURSE_GRADE, code=1)


@output("grade-summary-md")
def _grade_summary_md(tmp: Path) -> str:
    course_repo(tmp)
    cli(tmp, *COURSE_GRADE, code=1)
    return (tmp / "summary.md").read_text()


@output("grade-manifest-errors")
def _grade_manifest_errors(tmp: Path) -> str:
    course_repo(tmp)
    out = ""
    for old, new in [
        ("submissions/audit-policy-secrets\n", "../audit-policy-secrets\n"),
        ("scenario: audit-policy-secrets", "scenario: audit-policy-secret"),
        ("scenario: audit-policy-secrets", "scenario: audit-enable-logging"),
    ]:
        (tmp / "grading.yaml").write_text(COURSE_MANIFEST.replace(old, new))
        out += shell(tmp, "grade", "--manifest", "grading.yaml", code=2)
    assert not (tmp / "report.json").exists()
    return out

# -- docs/falco-tools.md: the learner's Falco rules tools ----------------------------

FALCO_DOC = ROOT / "docs/falco-tools.md"
# The input files the doc shows; the producers write exactly these (checked below).
FALCO_LOCAL_TYPOS = """\
- rule: Terminal shell in container
  output: >-
    Shell in a container (user=%user.name pod=%k8s.pod.name ns=%k8s.ns.name
    command=%proc.cmdline)
  override:
    output: replace

- rule: Shadow file read in container
  desc: Something in a container opened /etc/shadow
  condition: open_read and container and fd.nme = /etc/shadow
  output: Shadow file read (process=%proc.name parent=%proc.pname pod=%k8s.pod.name)
  priority: WARNING
  severity: high
"""
FALCO_LOCAL = FALCO_LOCAL_TYPOS.replace("fd.nme", "fd.name").replace("  severity: high\n", "")
FALCO_TRACE = (
    '{"container.id":"3ad7b26ded6d","container.image.repository":"nginx","container.name":"web",'
    '"evt.dir":"<","evt.num":4171,"evt.rawres":0,"evt.time":1764237600000000000,'
    '"evt.type":"execve","k8s.ns.name":"shop","k8s.pod.name":"web-7d9c5f6b8-x2xkq",'
    '"proc.cmdline":"bash","proc.exepath":"/usr/bin/bash","proc.name":"bash","proc.pname":"runc",'
    '"proc.tty":34816,"user.loginuid":-1,"user.name":"root"}\n'
    '{"container.id":"3ad7b26ded6d","container.image.repository":"nginx","container.name":"web",'
    '"evt.arg.flags":"O_RDONLY","evt.dir":"<","evt.is_open_read":true,"evt.num":4388,'
    '"evt.rawres":3,"evt.time":1764237604500000000,"evt.type":"openat","fd.name":"/etc/shadow",'
    '"k8s.ns.name":"shop","k8s.pod.name":"web-7d9c5f6b8-x2xkq","proc.cmdline":"cat /etc/shadow",'
    '"proc.exepath":"/usr/bin/cat","proc.name":"cat","proc.pname":"bash","proc.tty":34816,'
    '"user.loginuid":-1,"user.name":"root"}\n'
)
FALCO_RULES_ARGS = ("--rules", "falco_rules.yaml", "--rules", "falco_rules.local.yaml")


def falco_files(tmp: Path, local: str = FALCO_LOCAL) -> None:
    """The lab's default rules, the learner's local file and a two-event trace, in tmp."""
    doc = FALCO_DOC.read_text()
    # the doc shows the file with its two typos, and says how it was fixed
    for text in (FALCO_LOCAL_TYPOS, FALCO_TRACE):
        assert text in doc, f"docs/falco-tools.md no longer shows this file:\n{text}"
    shutil.copy(ROOT / "lab/assets/falco/falco_rules.yaml", tmp / "falco_rules.yaml")
    (tmp / "falco_rules.local.yaml").write_text(local)
    (tmp / "shell.jsonl").write_text(FALCO_TRACE)


@output("falco-validate")
def _falco_validate(tmp: Path) -> str:
    falco_files(tmp, FALCO_LOCAL_TYPOS)
    out = shell(tmp, "falco", "validate", "falco_rules.yaml", "falco_rules.local.yaml", code=1)
    (tmp / "falco_rules.local.yaml").write_text(FALCO_LOCAL)
    return out + shell(tmp, "falco", "validate", "falco_rules.yaml", "falco_rules.local.yaml",
                       code=0)


@output("falco-replay")
def _falco_replay(tmp: Path) -> str:
    falco_files(tmp)
    return shell(tmp, "falco", "replay", *FALCO_RULES_ARGS, "shell.jsonl", code=0)


@output("falco-replay-all")
def _falco_replay_all(tmp: Path) -> str:
    falco_files(tmp)
    return shell(tmp, "falco", "replay", *FALCO_RULES_ARGS, "shell.jsonl", "--all-matches",
                 code=0)


@output("falco-replay-json")
def _falco_replay_json(tmp: Path) -> str:
    """`... --json | head -1 | jq .`: the first alert, as jq prints it."""
    falco_files(tmp)
    r = cli(tmp, "falco", "replay", *FALCO_RULES_ARGS, "shell.jsonl", "--json", code=0)
    first = json.loads(r.stdout.splitlines()[0])
    return json.dumps(first, indent=2, ensure_ascii=False) + "\n"


@output("falco-replay-errors")
def _falco_replay_errors(tmp: Path) -> str:
    falco_files(tmp, FALCO_LOCAL_TYPOS)
    out = shell(tmp, "falco", "replay", *FALCO_RULES_ARGS, "shell.jsonl", code=2)
    (tmp / "falco_rules.local.yaml").write_text(FALCO_LOCAL)
    (tmp / "shell.jsonl").write_text(FALCO_TRACE + '{"evt.type": "execve", proc.name: "sh"}\n')
    return out + shell(tmp, "falco", "replay", *FALCO_RULES_ARGS, "shell.jsonl", code=2)


@output("falco-fields")
def _falco_fields(tmp: Path) -> str:
    return shell(tmp, "falco", "fields", code=0)


# -- docs/apparmor-tools.md: the learner's AppArmor profile tools ----------------------

APPARMOR_DOC = ROOT / "docs/apparmor-tools.md"
# The profiles the doc shows; the producers write exactly these (checked below).
DENY_WRITE_TYPO = """\
#include <tunables/global>

profile k8s-apparmor-example-deny-write flags=(attach_disconnected) {
  #include <abstractions/base>

  file,

  # Deny all file writes.
  deny /** w
}
"""
DENY_WRITE = DENY_WRITE_TYPO.replace("deny /** w\n", "deny /** w,\n")
NGINX_PROFILES = """\
#include <tunables/global>

profile nginx-web flags=(attach_disconnected) {
  #include <abstractions/base>

  capability net_bind_service,
  capability setuid setgid,
  network inet tcp,

  /usr/sbin/nginx mr,
  /etc/nginx/** r,
  /usr/share/nginx/html/** r,
  /var/cache/nginx/** rw,
  /run/nginx.pid rw,
  deny /bin/** x,
  deny /usr/bin/** x,
}

profile nginx-learning flags=(complain) {
  #include <abstractions/base>
  /etc/nginx/** r,
}
"""


def apparmor_files(tmp: Path, deny_write: str = DENY_WRITE) -> None:
    doc = APPARMOR_DOC.read_text()
    for text in (DENY_WRITE_TYPO, NGINX_PROFILES):
        assert text in doc, f"docs/apparmor-tools.md no longer shows this profile:\n{text}"
    (tmp / "k8s-apparmor-example-deny-write").write_text(deny_write)
    (tmp / "nginx").write_text(NGINX_PROFILES)


def accesses(*texts: str) -> list[str]:
    """`--access "r /etc/shadow" ...`, quoted as the doc shows them."""
    return [f'--access "{t}"' for t in texts]


def aa_shell(tmp: Path, *args: str, code: int) -> str:
    """`$ cks-lab apparmor ...` with --access values quoted, and what it prints."""
    shown = " ".join(args)
    argv: list[str] = []
    for a in args:
        if a.startswith('--access "'):
            argv += ["--access", a[len('--access "'):-1]]
        else:
            argv.append(a)
    return f"$ cks-lab apparmor {shown}\n" + cli(tmp, "apparmor", *argv, code=code).output


@output("apparmor-validate")
def _apparmor_validate(tmp: Path) -> str:
    apparmor_files(tmp, DENY_WRITE_TYPO)
    name = "k8s-apparmor-example-deny-write"
    out = aa_shell(tmp, "validate", "--builtin", name, code=1)
    (tmp / name).write_text(DENY_WRITE)
    return out + aa_shell(tmp, "validate", "--builtin", name, code=0)


@output("apparmor-validate-no-parser")
def _apparmor_validate_no_parser(tmp: Path) -> str:
    """On a machine without apparmor_parser."""
    from unittest import mock

    apparmor_files(tmp)
    with mock.patch("lab.engines.apparmor.compiler.find_apparmor_parser", return_value=None):
        return aa_shell(tmp, "validate", "k8s-apparmor-example-deny-write", code=0)


@output("apparmor-eval")
def _apparmor_eval(tmp: Path) -> str:
    apparmor_files(tmp)
    return aa_shell(tmp, "eval", "k8s-apparmor-example-deny-write", *accesses(
        "r /etc/shadow", "w /etc/passwd", "a /var/log/app.log", "x /bin/sh",
        "capability sys_admin", "network inet raw"), code=0)


@output("apparmor-eval-profiles")
def _apparmor_eval_profiles(tmp: Path) -> str:
    apparmor_files(tmp)
    web = aa_shell(tmp, "eval", "nginx", "--profile-name", "nginx-web", *accesses(
        "r /etc/nginx/nginx.conf", "w /var/cache/nginx/client_temp/1",
        "w /usr/share/nginx/html/index.html", "x /bin/sh", "r /etc/ld.so.cache",
        "capability net_bind_service"), code=0)
    return web + aa_shell(tmp, "eval", "nginx", "--profile-name", "nginx-learning", *accesses(
        "w /etc/passwd", "r /etc/nginx/nginx.conf"), code=0)


@output("apparmor-eval-json")
def _apparmor_eval_json(tmp: Path) -> str:
    apparmor_files(tmp)
    return aa_shell(tmp, "eval", "k8s-apparmor-example-deny-write", "--json",
                    *accesses("w /tmp/x", "x /bin/sh"), code=0)


@output("apparmor-eval-errors")
def _apparmor_eval_errors(tmp: Path) -> str:
    apparmor_files(tmp)
    return (
        aa_shell(tmp, "eval", "nginx", *accesses("x /bin/sh"), code=2)
        + aa_shell(tmp, "eval", "nginx", "--profile-name", "nginx", *accesses("x /bin/sh"),
                   code=2)
        + aa_shell(tmp, "eval", "nginx", "--profile-name", "nginx-web",
                   *accesses("x /bin/sh", "w etc/passwd"), code=2)
    )


# -- the test ------------------------------------------------------------------------


def normalise(text: str, tmp: Path) -> str:
    for t in {str(tmp.resolve()), str(tmp)}:
        text = text.replace(t, HOME)
    text = re.sub(r'"run_id": "[0-9a-f]+"', '"run_id": "cf95d788"', text)
    # a scenario's digest changes with any edit of its folder; the docs show a stand-in
    text = re.sub(r'"digest": "[0-9a-f]{64}"', '"digest": "' + "5ca1ab1e" * 8 + '"', text)
    # time stamps: in audit events, `status`, and backup folder names
    text = re.sub(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", "2025-01-01T00:00:00Z", text
    )
    text = re.sub(r"\d{8}T\d{6}-\d{6}", "20250101T000000-000000", text)
    return re.sub(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "00000000-0000-0000-0000-000000000000",
        text,
    )  # audit IDs


def produce(name: str, tmp: Path) -> str:
    return normalise(OUTPUTS[name](tmp), tmp)


def marked_blocks() -> list[tuple[str, str, str]]:
    """(file, id, block text) of every marked block in the docs."""
    return [
        (f.relative_to(ROOT).as_posix(), m.group(1), m.group(2))
        for f in DOC_FILES
        for m in MARKER.finditer(f.read_text(encoding="utf-8"))
    ]


def matches(block: list[str], out: list[str]) -> bool:
    """Whether `out` is `block` with each `...` line standing for zero or more lines."""
    if not block:
        return not out
    if block[0].strip() == "...":
        return any(matches(block[1:], out[i:]) for i in range(len(out) + 1))
    return bool(out) and out[0] == block[0] and matches(block[1:], out[1:])


def _first_difference(block: list[str], out: list[str]) -> str:
    """The first line of the block that the output does not have, or else the first
    line where they differ (an excerpt's lines out of order or not contiguous)."""
    for b in block:
        if b.strip() != "..." and b not in out:
            return f"the output has no line\n  {b!r}"
    for i, (b, o) in enumerate(zip(block, out, strict=False)):
        if b.strip() == "...":
            break
        if b != o:
            return f"line {i + 1}:\n  doc:    {b!r}\n  output: {o!r}"
    return "every line is there, but not in this order or not together"


BLOCKS = marked_blocks()


@pytest.mark.parametrize(("doc", "name", "block"), BLOCKS, ids=[f"{d}:{n}" for d, n, _ in BLOCKS])
def test_block_is_real_output(doc: str, name: str, block: str, tmp_path: Path) -> None:
    assert name in OUTPUTS, f"{doc}: no producer for <!-- output: {name} -->; add one to OUTPUTS"
    out = produce(name, tmp_path)
    want, got = block.splitlines(), out.rstrip("\n").splitlines()
    assert matches(want, got), (
        f"{doc}: the block <!-- output: {name} --> is stale; "
        f"`python tests/test_docs_examples.py {name}` prints the real output:\n"
        f"{_first_difference(want, got)}\n--- real output ---\n{out}"
    )


def test_every_producer_is_used() -> None:
    unused = sorted(set(OUTPUTS) - {n for _, n, _ in BLOCKS})
    assert not unused, f"no block in the docs is marked with these ids: {unused}"


def test_every_marker_is_right_before_a_block() -> None:
    for f in DOC_FILES:
        text = f.read_text(encoding="utf-8")
        assert text.count("<!-- output:") == len(MARKER.findall(text)), (
            f"{f.name}: an <!-- output: ID --> marker (ID: a-z, 0-9, -) must be the line "
            "right before a fenced block"
        )


@pytest.mark.skipif(not shutil.which("jq"), reason="jq is not installed")
@pytest.mark.parametrize("name", ["json-usergroups-typo", "json-cause"])
def test_jq_in_python_agrees_with_jq(name: str, tmp_path: Path) -> None:
    OUTPUTS[name](tmp_path)
    report = tmp_path / "out.json"
    for expr in (JQ_TOTALS, JQ_FAILED):
        assert jq_in_python(expr, json.loads(report.read_text())) == jq(expr, report)


def test_ellipsis_matching() -> None:
    assert matches(["a", "...", "d"], ["a", "b", "c", "d"])
    assert matches(["a", "  ...", "b"], ["a", "b"])
    assert not matches(["a", "d"], ["a", "b", "d"])
    assert not matches(["a", "..."], ["b", "a"])
    assert not matches(["...", "c"], ["c", "d"])


if __name__ == "__main__":
    for name in sys.argv[1:] or OUTPUTS:
        with tempfile.TemporaryDirectory(prefix="docs-") as d:
            os.environ["CKS_LAB_HOME"] = str(Path(d) / "home")
            os.environ.pop("CKS_LAB_SCENARIOS", None)
            if len(sys.argv) < 2:
                print(f"<!-- output: {name} -->")
            print(produce(name, Path(d)), end="")
