"""The kind backend's evidence parsers, fed real-format output samples (tests/kind/samples).

Each sample starts with '#' lines saying what produced it; ``sample()`` drops them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lab.engines.audit.gotext import ENOENT, go_quote, klog_line, path_error
from lab.errors import LabError
from lab.evidence import FalcoMessage
from lab.kind import apparmor_node, crictl, falco_log

SAMPLES = Path(__file__).parent / "samples"
LOCAL = "/etc/falco/falco_rules.local.yaml"
STOCK = "/etc/falco/falco_rules.yaml"


def sample(name: str) -> str:
    lines = (SAMPLES / name).read_text(encoding="utf-8").splitlines(keepends=True)
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    return "".join(lines)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- crictl ------------------------------------------------------------------------


def test_ps_json_reads_every_container_with_its_fields() -> None:
    containers = crictl.parse_ps_json(sample("crictl-ps-apiserver-crashloop.json"))
    assert [(c.id[:4], c.state, c.attempt) for c in containers] == [
        ("c3f1", "CONTAINER_EXITED", 1),
        ("b27c", "CONTAINER_EXITED", 0),
        ("a14d", "CONTAINER_EXITED", 0),
    ]
    first = containers[0]
    assert first.name == "kube-apiserver"
    assert first.created_at == 1764237620481516273  # int64 as a string of ns
    assert first.pod_sandbox_id.startswith("5e2a9c7d")
    assert first.labels["io.kubernetes.pod.namespace"] == "kube-system"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "did not print JSON: (no output)"),
        ("FATA[0000] connect: connection refused\n", "did not print JSON: FATA[0000]"),
        ('["not", "a", "response"]', "without a 'containers' list"),
        ('{"containers": {"id": "x"}}', "without a 'containers' list"),
    ],
)
def test_ps_json_that_is_not_a_listing_is_a_lab_error(text: str, words: str) -> None:
    with pytest.raises(
        LabError, match=words.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")
    ):
        crictl.parse_ps_json(text)


def test_ps_json_without_containers_is_empty() -> None:
    assert crictl.parse_ps_json('{"containers": []}') == []
    assert crictl.parse_ps_json("{}") == []


def test_newest_is_the_latest_created_of_that_name() -> None:
    containers = crictl.parse_ps_json(sample("crictl-ps-apiserver-crashloop.json"))
    assert crictl.newest(reversed(containers), "kube-apiserver") == containers[0]
    assert crictl.newest(containers, "etcd") is None


@dataclass(frozen=True)
class RunCase:
    ps: str
    before: str | None
    logs: str | None
    running: bool
    restarted: bool
    crash_looping: bool
    newest: str


OLD = "a14d8f2e6b0c4a7e9d1f3b5a7c9e0d2f4a6b8c0e2d4f6a8b0c2e4d6f8a0b2c4d"

RUN_CASES = {
    "accepted edit: new pod runs": RunCase(
        "crictl-ps-apiserver-restarted.json", OLD, None, True, True, False, "b27c"
    ),
    "nothing known of before": RunCase(
        "crictl-ps-apiserver-restarted.json", None, None, True, False, False, "b27c"
    ),
    "rejected edit: restarted and exited twice": RunCase(
        "crictl-ps-apiserver-crashloop.json",
        OLD,
        "crictl-logs-apiserver-policy.txt",
        False,
        True,
        True,
        "c3f1",
    ),
}


@pytest.mark.parametrize("case", RUN_CASES.values(), ids=RUN_CASES.keys())
def test_apiserver_run_conformance(case: RunCase) -> None:
    run = crictl.apiserver_run(case.before, sample(case.ps), case.logs and sample(case.logs))
    assert (run.running, run.restarted, run.crash_looping) == (
        case.running,
        case.restarted,
        case.crash_looping,
    )
    assert run.container is not None and run.container.id.startswith(case.newest)
    assert bool(run.error_lines) == (not case.running)


def test_a_single_exit_in_a_new_pod_is_not_yet_a_crash_loop() -> None:
    data = json.loads(sample("crictl-ps-apiserver-crashloop.json"))
    data["containers"] = data["containers"][1:]  # only attempt 0 of the new pod
    run = crictl.apiserver_run(OLD, json.dumps(data), "Error: unknown flag: --x\n")
    assert (run.running, run.restarted, run.crash_looping) == (False, True, False)
    assert run.error_lines == ["Error: unknown flag: --x"]


def test_no_apiserver_container_at_all() -> None:
    run = crictl.apiserver_run(OLD, '{"containers": []}', None)
    assert run == crictl.ApiserverRun(False, None, False, False, [])


def test_a_running_apiserver_gets_no_error_lines_even_with_noisy_logs() -> None:
    run = crictl.apiserver_run(OLD, sample("crictl-ps-apiserver-restarted.json"), "E1127 x\n")
    assert run.running and run.error_lines == []


POLICY_ERROR = (
    "loading audit policy file: failed to read file path "
    f"{go_quote('/etc/kubernetes/audit/policy.yaml')}: "
    f"{path_error('open', '/etc/kubernetes/audit/policy.yaml', ENOENT)}"
)


def test_policy_failure_is_found_and_worded_as_the_sim_words_it() -> None:
    lines = crictl.explain_apiserver_logs(sample("crictl-logs-apiserver-policy.txt"))
    assert len(lines) == 1 and lines[0].startswith("E1127 10:00:20.515402")
    assert '"command failed" err="loading audit policy file' in lines[0]
    # The sim (lab.engines.audit) reports the same words for a missing policy file.
    assert crictl.error_message(lines) == POLICY_ERROR


def test_flag_error_after_the_usage_text() -> None:
    lines = crictl.explain_apiserver_logs(sample("crictl-logs-apiserver-flag.txt"))
    assert lines == ["Error: unknown flag: --audit-policy-fle"]
    assert crictl.error_message(lines) == "unknown flag: --audit-policy-fle"


FATAL = "F0101 00:00:01.000002       1 instance.go:226] Error creating leases: deadline exceeded"

LOG_CASES = {
    "fatal klog line": (
        "I0101 00:00:00.000001       1 a.go:1] starting\n" + FATAL + "\n",
        [FATAL],
    ),
    "no decisive line: the last error line": (
        "E0101 00:00:00.000001       1 a.go:1] first\n"
        "E0101 00:00:00.000002       1 a.go:2] second\n"
        "I0101 00:00:00.000003       1 a.go:3] bye\n",
        ["E0101 00:00:00.000002       1 a.go:2] second"],
    ),
    "no error line: the last line": (
        "panic: boom\n\ngoroutine 1 [running]:\n",
        ["goroutine 1 [running]:"],
    ),
    "empty log": ("", []),
    "kubelet's CRI log file prefixes are dropped": (
        "2025-11-27T10:00:20.515402000Z stderr F Error: unknown flag: --foo\n",
        ["Error: unknown flag: --foo"],
    ),
    "multi-line err value": (
        'E0101 00:00:00.000001       1 run.go:72] "command failed" err=<\n'
        "\tloading audit policy file: line one\n"
        "\tline two\n"
        " >\n"
        "I0101 00:00:00.000002       1 a.go:2] unrelated\n",
        [
            'E0101 00:00:00.000001       1 run.go:72] "command failed" err=<',
            "\tloading audit policy file: line one",
            "\tline two",
            " >",
        ],
    ),
}


@pytest.mark.parametrize(("text", "expected"), LOG_CASES.values(), ids=LOG_CASES.keys())
def test_explain_apiserver_logs_table(text: str, expected: list[str]) -> None:
    assert crictl.explain_apiserver_logs(text) == expected


@pytest.mark.parametrize(
    "message",
    [
        POLICY_ERROR,
        'quotes "inside" and a back\\slash',
        "tab\there, bell\a, del\x7f, accent é, emoji \U0001f600, nbsp\u00a0",
    ],
)
def test_error_message_undoes_klogs_quoting(message: str) -> None:
    line = klog_line("command failed", [("err", message)], where="run.go:72")
    assert crictl.error_message(crictl.explain_apiserver_logs(line + "\n")) == message


def test_error_message_of_a_multi_line_value_and_of_nothing() -> None:
    lines = crictl.explain_apiserver_logs(LOG_CASES["multi-line err value"][0])
    assert crictl.error_message(lines) == "loading audit policy file: line one\nline two"
    assert crictl.error_message([]) is None
    assert crictl.error_message(["E0101 00:00:00.000002       1 a.go:2] second"]) == "second"


# --- Falco log ---------------------------------------------------------------------


def test_falco_log_sorts_alerts_reload_failures_and_rule_loading() -> None:
    log = falco_log.parse_falco_log(sample("falco-pod-log.txt"))
    assert [a["output_fields"]["k8s.pod.name"] for a in log.alerts] == ["other", "web", "web"]
    assert all(a["source"] == "syscall" for a in log.alerts)
    assert len(log.reload_failures) == 1
    failure = log.reload_failures[0]
    assert failure["priority"] == "Critical" and failure["output_fields"] == {}
    assert log.started and log.errors == []
    assert log.rule_load_lines[:3] == [
        "Loading rules from:",
        "   /etc/falco/falco_rules.yaml | schema validation: ok",
        "   /etc/falco/falco_rules.local.yaml | schema validation: ok",
    ]
    # the warning's verbose result continues without time stamps
    assert log.rule_load_lines[3] == f"{LOCAL}: Ok, with warnings"
    assert log.rule_load_lines[-1].startswith("LOAD_UNUSED_MACRO (Unused macro): ")
    assert not any("syscall buffer" in line for line in log.rule_load_lines)


def test_falco_log_of_a_start_with_invalid_rules() -> None:
    log = falco_log.parse_falco_log(sample("falco-pod-log-invalid.txt"))
    assert not log.started and log.alerts == [] and log.reload_failures == []
    assert len(log.errors) == 1
    error = log.errors[0]
    assert error.startswith(f"Error: {LOCAL}: Invalid\n1 Errors:\n")
    assert error.endswith("filter_check called with nonexistent field proc.nme")
    files = falco_log.parse_load_text(error)
    assert [(f.path, f.status) for f in files] == [(LOCAL, "Invalid")]
    assert files[0].messages == [CONDITION_ERROR]


CONDITION_ERROR = FalcoMessage(
    severity="error",
    message="filter_check called with nonexistent field proc.nme",
    file=LOCAL,
    line=3,  # the condition's line: 0-based YAML mark 2
    item="rule 'Shell in cks pod'",
    code="LOAD_ERR_COMPILE_CONDITION",
)


def test_hot_restart_failure_reason_reads_as_the_load_result() -> None:
    log = falco_log.parse_falco_log(sample("falco-pod-log.txt"))
    reason = falco_log.reload_failure_reason(log.reload_failures[0])
    assert reason.startswith(f"{LOCAL}: Invalid\n")
    files = falco_log.parse_load_text(reason)
    assert [(f.path, f.status, f.messages) for f in files] == [
        (LOCAL, "Invalid", [CONDITION_ERROR])
    ]


def test_load_text_warnings_and_non_load_errors() -> None:
    log = falco_log.parse_falco_log(sample("falco-pod-log.txt"))
    warned = falco_log.parse_load_text("\n".join(log.rule_load_lines))
    assert [(f.path, f.status) for f in warned] == [(LOCAL, "Ok, with warnings")]
    assert warned[0].messages == [
        FalcoMessage(
            "warning",
            "Macro not referred to by any other rule/macro",
            LOCAL,
            7,
            "macro 'lab_shell'",
            "LOAD_UNUSED_MACRO",
        ),
    ]
    other = "Plugin requirement not satisfied, must load one of: container (>= 0.6.0)"
    assert falco_log.parse_load_text(other) == []
    assert falco_log.reload_failure_reason({"output": other}) == other


LINE_CASES = {
    "kubectl --timestamps prefix": (
        '2025-11-27T10:00:05.200000000Z {"output":"x","priority":"Warning","rule":"R",'
        '"source":"syscall","time":"2025-11-27T10:00:05.1Z"}',
        1,
        0,
        0,
    ),
    "other internal alert": (
        '{"output":"Falco internal: syscall event drop","output_fields":{},"priority":"Debug",'
        '"rule":"Falco internal: syscall event drop","source":"internal",'
        '"time":"2025-11-27T10:00:05.1Z"}',
        0,
        0,
        1,
    ),
    "JSON that is no alert": ('{"falco_load_results": []}', 0, 0, 0),
    "broken JSON": ('{"rule": "R", "output": ', 0, 0, 0),
}


@pytest.mark.parametrize(
    ("line", "alerts", "failures", "internal"), LINE_CASES.values(), ids=LINE_CASES.keys()
)
def test_falco_log_line_table(line: str, alerts: int, failures: int, internal: int) -> None:
    log = falco_log.parse_falco_log(line + "\n")
    assert (len(log.alerts), len(log.reload_failures), len(log.internal)) == (
        alerts,
        failures,
        internal,
    )


def test_falco_restart_after_a_fatal_error_counts_as_started() -> None:
    text = (
        sample("falco-pod-log-invalid.txt")
        + "2025-11-27T10:06:00+0000: Opening 'syscall' source with modern BPF probe.\n"
    )
    log = falco_log.parse_falco_log(text)
    assert log.started and len(log.errors) == 1
    assert "Opening" not in log.errors[0]  # a time-stamped line ends the error block


def test_runtime_error_stops_falco() -> None:
    text = (
        "Thu Nov 27 10:00:00 2025: Opening 'syscall' source with modern BPF probe.\n"
        "Thu Nov 27 10:00:01 2025: Runtime error: ring buffer map type is not supported. Exiting.\n"
    )
    log = falco_log.parse_falco_log(text)
    assert not log.started
    assert log.errors == ["Runtime error: ring buffer map type is not supported. Exiting."]


TIME_CASES = {
    "nanoseconds, Z": ({"time": "2025-11-27T10:00:05.123456789Z"}, "2025-11-27T10:00:05.123456"),
    "no fraction": ({"time": "2025-11-27T10:00:05Z"}, "2025-11-27T10:00:05"),
    "offset": ({"time": "2025-11-27T11:00:05.5+01:00"}, "2025-11-27T10:00:05.500000"),
    "evt.time fallback": (
        {"output_fields": {"evt.time": 1764237605123456789}},
        "2025-11-27T10:00:05.123456",
    ),
    "garbage": ({"time": "yesterday"}, None),
    "nothing": ({}, None),
}


@pytest.mark.parametrize(("alert", "expected"), TIME_CASES.values(), ids=TIME_CASES.keys())
def test_alert_time_table(alert: dict[str, object], expected: str | None) -> None:
    got = falco_log.alert_time(alert)
    assert got == (utc(expected) if expected else None)
    assert got is None or got.tzinfo is not None


def _step_windows() -> list[tuple[str, datetime, datetime]]:
    return [
        ("shell", utc("2025-11-27T10:00:04"), utc("2025-11-27T10:00:06")),
        ("shadow", utc("2025-11-27T10:00:12"), utc("2025-11-27T10:00:13")),
        ("quiet", utc("2025-11-27T10:00:20"), utc("2025-11-27T10:00:21")),
    ]


def test_assign_alerts_puts_each_alert_in_its_steps_window() -> None:
    log = falco_log.parse_falco_log(sample("falco-pod-log.txt"))
    got = falco_log.assign_alerts(log.alerts, _step_windows())
    assert [a["output_fields"]["proc.cmdline"] for a in got["shell"]] == ["sh -c id"]
    assert [a["output_fields"]["proc.cmdline"] for a in got["shadow"]] == [
        "sh -c 'cat /etc/shadow'"
    ]
    assert got["quiet"] == []
    assert [a["output_fields"]["k8s.pod.name"] for a in got[""]] == ["other"]  # before any step


def _alert(at: str, pod: str | None = None, ns: str | None = None) -> dict[str, object]:
    fields: dict[str, object] = {}
    if pod is not None:
        fields.update({"k8s.pod.name": pod, "k8s.ns.name": ns})
    return {"rule": "R", "time": at, "output_fields": fields}


ASSIGN_CASES = {
    "inside the window": (_alert("2025-11-27T10:00:05Z"), "shell"),
    "on the start": (_alert("2025-11-27T10:00:04Z"), "shell"),
    "in the grace after the end": (_alert("2025-11-27T10:00:06.900Z"), "shell"),
    "after the grace": (_alert("2025-11-27T10:00:07.100Z"), ""),
    "the step's pod": (_alert("2025-11-27T10:00:05Z", "web", "cks-falco"), "shell"),
    "another pod at the same time": (_alert("2025-11-27T10:00:05Z", "db", "cks-falco"), ""),
    "another namespace": (_alert("2025-11-27T10:00:05Z", "web", "default"), ""),
    "null pod fields (a host event)": (_alert("2025-11-27T10:00:05Z", None), "shell"),
    "no time": ({"rule": "R"}, ""),
}


@pytest.mark.parametrize(("alert", "step"), ASSIGN_CASES.values(), ids=ASSIGN_CASES.keys())
def test_assign_alerts_table(alert: dict[str, object], step: str) -> None:
    pods = {"shell": ("cks-falco", "web"), "shadow": ("cks-falco", "web")}
    got = falco_log.assign_alerts([alert], _step_windows(), pods)
    assert [s for s, found in got.items() if found] == [step]
    assert set(got) >= {"shell", "shadow", "quiet"}


def test_inside_a_window_beats_the_previous_steps_grace() -> None:
    windows = [
        ("first", utc("2025-11-27T10:00:00"), utc("2025-11-27T10:00:01")),
        ("second", utc("2025-11-27T10:00:01.500000"), utc("2025-11-27T10:00:03")),
    ]
    got = falco_log.assign_alerts([_alert("2025-11-27T10:00:01.700Z")], windows)
    assert [len(got["first"]), len(got["second"])] == [0, 1] and "" not in got


def test_naive_window_times_are_taken_as_utc() -> None:
    start = datetime(2025, 11, 27, 10, 0, 4)
    got = falco_log.assign_alerts(
        [_alert("2025-11-27T10:00:05Z")], [("s", start, start + timedelta(seconds=2))]
    )
    assert len(got["s"]) == 1


# --- falco -V ----------------------------------------------------------------------


def test_validate_json_invalid_local_file() -> None:
    files = falco_log.parse_validate_json(sample("falco-validate-invalid.json"), [STOCK, LOCAL])
    assert [(f.path, f.status) for f in files] == [(STOCK, "Ok"), (LOCAL, "Invalid")]
    assert files[0].messages == []
    assert files[1].messages == [CONDITION_ERROR]
    assert str(files[1].messages[0]) == (
        f"{LOCAL}:3: rule 'Shell in cks pod': LOAD_ERR_COMPILE_CONDITION: "
        "filter_check called with nonexistent field proc.nme"
    )


def test_validate_json_warnings() -> None:
    files = falco_log.parse_validate_json(sample("falco-validate-warnings.json"), [STOCK, LOCAL])
    assert [(f.path, f.status) for f in files] == [(STOCK, "Ok"), (LOCAL, "Ok, with warnings")]
    (warning,) = files[1].messages
    assert (warning.severity, warning.line, warning.item, warning.code) == (
        "warning",
        7,
        "macro 'lab_shell'",
        "LOAD_UNUSED_MACRO",
    )


def test_validate_json_among_log_lines_and_in_a_different_order() -> None:
    text = (
        "Thu Nov 27 10:00:00 2025: Falco version: 0.44.1 (x86_64)\n"
        + sample("falco-validate-invalid.json")
        + f"Error: {LOCAL}: Invalid\n"
    )
    files = falco_log.parse_validate_json(text, [LOCAL, STOCK, "/etc/falco/rules.d/x.yaml"])
    assert [(f.path, f.status) for f in files] == [
        (LOCAL, "Invalid"),
        (STOCK, "Ok"),
        ("/etc/falco/rules.d/x.yaml", "Not loaded"),
    ]


def test_validate_json_stopping_at_the_first_invalid_file_as_start_up_does() -> None:
    text = sample("falco-validate-invalid.json")
    files = falco_log.parse_validate_json(text, [LOCAL, STOCK], stop_at_invalid=True)
    assert [(f.path, f.status, f.messages) for f in files] == [
        (LOCAL, "Invalid", [CONDITION_ERROR]),
        (STOCK, "Not loaded", []),
    ]


def test_validate_without_json_marks_files_not_loaded_with_falcos_error() -> None:
    text = f"Error: Could not open file {LOCAL} for reading: No such file or directory\n"
    files = falco_log.parse_validate_json(text, [STOCK, LOCAL])
    assert [(f.path, f.status) for f in files] == [(STOCK, "Not loaded"), (LOCAL, "Not loaded")]
    assert files[0].messages == []
    assert files[1].messages == [FalcoMessage("error", text[len("Error: ") :].strip(), file=LOCAL)]
    assert falco_log.parse_validate_json("", [STOCK]) == [
        falco_log.FalcoRulesFile(STOCK, "Not loaded")
    ]


def test_validate_json_agrees_with_the_sim_engine_on_the_same_rules() -> None:
    """The kind backend's reading of Falco and the sim's engine locate a problem alike."""
    from lab.engines.falco.engine import load_rules

    rules = (
        "- rule: Shell in cks pod\n"
        "  desc: a shell runs in a lab pod\n"
        "  condition: spawned_process and container and proc.nme = sh\n"
        "  output: Shell spawned (user=%user.name)\n"
        "  priority: WARNING\n"
    )
    # the lab's own stand-ins for the stock file's macros, loaded first as Falco does
    stock = (
        "- macro: spawned_process\n  condition: evt.type = execve\n"
        "- macro: container\n  condition: container.id != host\n"
    )
    result = load_rules([(STOCK, stock), (LOCAL, rules)])
    problem = next(p for r in result.reports for p in r.problems if p.severity == "error")
    real = falco_log.parse_validate_json(sample("falco-validate-invalid.json"), [LOCAL])[0]
    assert (problem.file, problem.line, problem.item, problem.code, problem.message) == (
        real.messages[0].file,
        real.messages[0].line,
        real.messages[0].item,
        real.messages[0].code,
        real.messages[0].message,
    )


# --- AppArmor ----------------------------------------------------------------------


def test_profiles_file() -> None:
    profiles = apparmor_node.parse_profiles(sample("apparmor-profiles.txt"))
    assert profiles[:3] == [
        ("k8s-deny-write", "enforce"),
        ("cri-containerd.apparmor.d", "enforce"),
        ("docker-default", "enforce"),
    ]
    assert ("firefox", "unconfined") in profiles
    assert ("snap.lxd.lxc", "complain") in profiles
    assert ("/usr/sbin/cupsd//third_party", "enforce") in profiles
    assert len(profiles) == 13


def test_profiles_odd_lines() -> None:
    text = "my profile (kill)\n\nnot a profile line\n  spaced (enforce)  \n"
    assert apparmor_node.parse_profiles(text) == [("my profile", "kill"), ("spaced", "enforce")]


ATTR_CASES = {
    "enforced": ("k8s-deny-write (enforce)\n", ("k8s-deny-write", "enforce")),
    "complain, NUL-terminated": ("k8s-audit (complain)\n\x00", ("k8s-audit", "complain")),
    "unconfined": ("unconfined\n", (None, "unconfined")),
    "unconfined with NUL": ("unconfined\x00", (None, "unconfined")),
    "empty": ("", (None, "unconfined")),
    "a profile in unconfined mode": ("firefox (unconfined)\n", ("firefox", "unconfined")),
    "containerd's default": (
        "cri-containerd.apparmor.d (enforce)\n",
        ("cri-containerd.apparmor.d", "enforce"),
    ),
    "another LSM's label": (
        "system_u:system_r:container_t:s0:c1,c2\n",
        ("system_u:system_r:container_t:s0:c1,c2", ""),
    ),
}


@pytest.mark.parametrize(("text", "expected"), ATTR_CASES.values(), ids=ATTR_CASES.keys())
def test_attr_current_table(text: str, expected: tuple[str | None, str]) -> None:
    assert apparmor_node.parse_attr_current(text) == expected


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str = ""
    stderr: str = ""


DENIED_CASES = {
    "busybox write": (Result(1, stderr="sh: can't create /tmp/x: Permission denied\n"), True),
    "touch": (Result(1, stderr="touch: /tmp/test: Permission denied\n"), True),
    "exec of a denied program from sh": (
        Result(126, stderr="sh: 1: /usr/bin/id: Permission denied\n"),
        True,
    ),
    "exit 126 without words": (Result(126), True),
    "runc exec refused": (
        Result(126, stderr='exec failed: exec: "/bin/touch": permission denied: unknown'),
        True,
    ),
    "message on stdout": (Result(2, stdout="cat: /etc/shadow: Permission denied\n"), True),
    "EACCES spelled out": (Result(1, stderr="open: EACCES\n"), True),
    "succeeded": (Result(0, stdout="Permission denied is a phrase\n"), False),
    "EPERM is not AppArmor's answer": (
        Result(1, stderr="chown: /tmp/x: Operation not permitted\n"),
        False,
    ),
    "not found": (Result(127, stderr="sh: 1: nope: not found\n"), False),
    "other failure": (Result(1, stderr="cat: /nope: No such file or directory\n"), False),
}


@pytest.mark.parametrize(("result", "expected"), DENIED_CASES.values(), ids=DENIED_CASES.keys())
def test_denied_table(result: Result, expected: bool) -> None:
    assert apparmor_node.denied(result) is expected


def test_denied_reads_lab_kind_nodes_exec_results_too() -> None:
    nodes = pytest.importorskip("lab.kind.nodes")
    assert apparmor_node.denied(nodes.ExecResult(1, "", "touch: /tmp/t: Permission denied"))


def test_node_prep_commands() -> None:
    cmds = apparmor_node.node_prep_commands()
    assert all(isinstance(c, list) and all(isinstance(a, str) for a in c) for c in cmds)
    assert cmds[0] == ["apt-get", "update", "-qq"]
    assert cmds[1] == [
        "env", "DEBIAN_FRONTEND=noninteractive",
        "apt-get", "install", "-y", "-qq", "--no-install-recommends", "apparmor",
    ]  # fmt: skip
    # the drop-in is written before systemd reloads units, and containerd restarts last
    assert cmds[-2:] == [["systemctl", "daemon-reload"], ["systemctl", "restart", "containerd"]]
    write = cmds[2]
    assert write[:2] == ["sh", "-c"]
    assert write[-2:] == [apparmor_node.CONTAINERD_DROPIN_PATH, apparmor_node.CONTAINERD_DROPIN]


def test_drop_in_writer_writes_exactly_the_drop_in(tmp_path: Path) -> None:
    """Run the write command's script with a local sh, redirected under tmp_path."""
    import shutil
    import subprocess

    if shutil.which("sh") is None:
        pytest.skip("no sh on this machine")
    write = apparmor_node.node_prep_commands()[2]
    target_dir = tmp_path / "containerd.service.d"
    target = target_dir / "cks-lab-apparmor.conf"
    argv = [*write[:4], str(target_dir), str(target), write[6]]
    subprocess.run(argv, check=True, timeout=10)
    assert target.read_text() == "[Service]\nUnsetEnvironment=container\n"
