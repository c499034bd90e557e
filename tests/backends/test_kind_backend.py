"""The kind backend against fake nodes and a fake API server (kind_fakes.py): the
evidence it reads from real-format outputs is graded by the same checks as the sim's
(lab.grading.grader.grade), untouched scenarios fail and solved ones pass."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kind_fakes import FakeClock, FakeKube, FakeNodes, running_pod, sample

from lab.backends.kind import KindBackend
from lab.backends.kind import reset as lab_reset
from lab.evidence import Evidence
from lab.grading.grader import grade
from lab.grading.results import ScenarioResult
from lab.kind.cluster import ClusterHandle
from lab.kind.kube import ContainerInfo, PodInfo
from lab.kind.nodes import ExecResult
from lab.scenarios.loader import LoadedScenario, load_scenario
from lab.work import ProgressEvent
from lab.workspace import Workspace, create_workspace

REPO = Path(__file__).parents[2]
MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
POLICY = "/etc/kubernetes/audit/policy.yaml"
LOG = "/var/log/kubernetes/audit/audit.log"
T0 = datetime(2025, 11, 27, 10, 0, 0, tzinfo=UTC)


def scenario(name: str) -> LoadedScenario:
    return load_scenario(REPO / "scenarios" / name)


def backend(tmp_path: Path, nodes: FakeNodes, kube: FakeKube, clock: FakeClock | None = None):
    cluster = ClusterHandle("cks-lab", tmp_path / "cluster")
    cluster.dir.mkdir(exist_ok=True)
    return KindBackend(
        cluster,
        nodes,
        kube,
        clock or FakeClock(T0),
        sleep=lambda s: None,  # type: ignore[arg-type]
        falco_grace=0,
        audit_grace=0,
        settle_timeout=0,
        pods_timeout=0,
    )


def workspace(tmp_path: Path, sc: LoadedScenario) -> Workspace:
    return create_workspace(tmp_path / "ws", sc, "kind")


def checks(result: ScenarioResult) -> dict[str, list[tuple[bool, str]]]:
    """check type -> (passed, explanation + cause) of each of them, in order."""
    out: dict[str, list[tuple[bool, str]]] = {}
    for task in result.tasks:
        for c in task.checks:
            out.setdefault(c.type, []).append((c.passed, f"{c.explanation} {c.cause or ''}"))
    return out


# --- audit ------------------------------------------------------------------------------


def audit_nodes(manifest_file: str) -> FakeNodes:
    sc_dir = REPO / "scenarios" / "audit-enable-logging"
    cp = {
        MANIFEST: (sc_dir / manifest_file).read_bytes(),
        POLICY: (sc_dir / "files" / "policy.yaml").read_bytes(),
        # the cluster's own traffic and an earlier run: never this run's evidence
        LOG: (
            json.dumps(
                {
                    "level": "Metadata",
                    "stage": "ResponseComplete",
                    "userAgent": "kube-controller-manager/v1.36.0",
                }
            )
            + "\n"
        ).encode(),
    }
    return FakeNodes(
        files={"controlplane": cp, "worker": {}},
        dirs={"controlplane": {"/var/log/kubernetes/audit", "/etc/ssl/certs"}},
        crictl_ps=sample("crictl-ps-apiserver-restarted.json"),
    )


def audit_kube(ready: bool = True) -> FakeKube:
    kube = FakeKube(ready=ready)
    kube.pods_[("payments", "web")] = running_pod("payments", "web", "cks-lab-worker", ["web"])
    return kube


def fake_apiserver(nodes: FakeNodes, levels: dict[str, tuple[str, list[str]]]):
    """Writes each request's events to the node's audit log at the level the policy
    gives it (per step), with the user agent the request carried."""

    def on_request(method: str, uri: str, user: str | None, groups: list[str], ua: str | None):
        step = (ua or "").split("step=")[-1].rstrip(")")
        if step not in levels:
            return
        level, stages = levels[step]
        audit_id = str(uuid.uuid4())
        lines = [
            json.dumps(
                {
                    "kind": "Event",
                    "apiVersion": "audit.k8s.io/v1",
                    "level": level,
                    "auditID": audit_id,
                    "stage": stage,
                    "requestURI": uri,
                    "verb": "list",
                    "user": {"username": user, "groups": groups},
                    "userAgent": ua,
                }
            )
            for stage in stages
        ]
        log = nodes.files["controlplane"]
        log[LOG] = log.get(LOG, b"") + "".join(ln + "\n" for ln in lines).encode()

    return on_request


def test_untouched_audit_scenario_fails_with_the_reasons(tmp_path: Path) -> None:
    sc = scenario("audit-enable-logging")
    nodes = audit_nodes("files/kube-apiserver.yaml")
    kube = audit_kube()
    ev = backend(tmp_path, nodes, kube).run_attack(sc, workspace(tmp_path, sc))
    assert ev.backend == "kind" and ev.audit is not None
    assert ev.audit.apiserver.running
    assert "--audit-policy-file" not in ev.audit.apiserver.flags
    assert ev.audit.apiserver.flags["--etcd-servers"] == "https://127.0.0.1:2379"
    got = checks(grade(sc.model, ev))
    assert not any(passed for passed, _ in got["apiserver_flag"])
    assert "--audit-policy-file is not set" in got["apiserver_flag"][0][1]
    assert "is not on any hostPath volume" in got["apiserver_mount"][0][1]
    assert "audit logging is off" in got["audit_logged"][0][1]
    # the API steps were still sent, as their users, tagged with the run
    sent = [r for r in kube.requests if r[4] and f"run={ev.run_id}" in r[4]]
    assert [r[2] for r in sent] == ["system:serviceaccount:payments:app", "system:kube-proxy"]
    assert sent[1][1].endswith("?watch=true&timeoutSeconds=1")


def test_solved_audit_scenario_passes_from_the_log_on_the_node(tmp_path: Path) -> None:
    sc = scenario("audit-enable-logging")
    nodes = audit_nodes("solution/kube-apiserver.yaml")
    kube = audit_kube()
    kube.on_request = fake_apiserver(
        nodes,
        {
            "read-secrets": ("Metadata", ["ResponseComplete"]),
            "exec-shell": ("RequestResponse", ["ResponseStarted", "ResponseComplete"]),
        },
    )
    events: list[ProgressEvent] = []
    ev = backend(tmp_path, nodes, kube).run_attack(
        sc,
        workspace(tmp_path, sc),
        lambda m: events.append(m),  # type: ignore[arg-type]
    )
    assert ev.audit is not None
    assert ev.audit.log_on_node == "/var/log/kubernetes/audit/audit.log"
    assert ev.audit.policy_text == nodes.files["controlplane"][POLICY].decode()
    assert sorted(ev.audit.events) == ["exec-shell", "read-secrets"]
    result = grade(sc.model, ev)
    failed = [(c.type, c.explanation) for t in result.tasks for c in t.checks if not c.passed]
    assert failed == []
    # the exec step ran in the pod as its user, tagged for the audit log
    (ex,) = kube.execs
    assert (ex.namespace, ex.pod, ex.container, ex.user) == (
        "payments",
        "web",
        "web",
        "kubernetes-admin",
    )
    assert ex.user_agent and f"run={ev.run_id}; step=exec-shell" in ex.user_agent
    assert {"manifests", "attack", "evidence"} <= {getattr(e, "phase", "") for e in events}


def test_crash_looping_apiserver_reports_its_log_line(tmp_path: Path) -> None:
    sc = scenario("audit-enable-logging")
    nodes = audit_nodes("files/kube-apiserver.yaml")
    text = nodes.files["controlplane"][MANIFEST].decode()
    broken = text.replace(
        "    - kube-apiserver\n", f"    - kube-apiserver\n    - --audit-policy-file={POLICY}\n", 1
    )
    nodes.files["controlplane"][MANIFEST] = broken.encode()
    nodes.crictl_ps = sample("crictl-ps-apiserver-crashloop.json")
    newest = "c3f1d07a9b2e4c5d8e6f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f"
    nodes.crictl_logs[newest] = sample("crictl-logs-apiserver-policy.txt")
    kube = audit_kube(ready=False)
    ev = backend(tmp_path, nodes, kube).run_attack(sc, workspace(tmp_path, sc))
    assert ev.audit is not None
    status = ev.audit.apiserver
    assert status.running is False
    assert status.error is not None and "loading audit policy file" in status.error
    assert status.flags["--audit-policy-file"] == POLICY  # still read from the manifest
    assert ["crictl", "logs", "--tail", "60", newest] in nodes.commands("controlplane")
    assert kube.requests == []  # nobody answers: no request sent
    got = checks(grade(sc.model, ev))
    passed, text = got["apiserver_running"][0]
    assert not passed and "open /etc/kubernetes/audit/policy.yaml" in text


# --- Falco --------------------------------------------------------------------------------

FALCO_SCENARIO = """\
apiVersion: cks-lab/v1
id: kind-falco-test
title: Falco on kind
skills: [falco]
domain: monitoring-logging-runtime-security
difficulty: easy
minutes: 5
weight: 1
briefing: test
cluster:
  kind_config: audit.yaml
  nodes:
    - {name: controlplane, role: control-plane}
    - {name: worker, role: worker}
setup:
  files:
    - {node: worker, path: /etc/falco/falco.yaml, asset: falco/falco.yaml}
    - {node: worker, path: /etc/falco/falco_rules.yaml, content: "- list: unused\\n  items: []\\n"}
    - {node: worker, path: /etc/falco/falco_rules.local.yaml, source: local.yaml}
  pods:
    - name: web
      namespace: cks-falco
      node: worker
      containers: [{name: web, image: alpine:3.20}]
attack:
  - id: shell-id
    description: a shell runs id
    exec: {namespace: cks-falco, pod: web, command: [sh, -c, id]}
  - id: shell-shadow
    description: a shell reads /etc/shadow
    exec: {namespace: cks-falco, pod: web, command: [sh, -c, cat /etc/shadow]}
  - id: web-runs
    description: the pod's own process
    workload: {namespace: cks-falco, pod: web}
tasks:
  - id: t
    title: t
    statement: t
    solution: {}
    checks:
      - type: falco_rules_load
      - {type: falco_alert, step: shell-id, rule: Shell in cks pod, priority: warning}
      - {type: falco_alert, step: shell-shadow, rule: Shell in cks pod, output_contains: shadow}
      - {type: falco_no_alert, step: web-runs}
"""

LOCAL_RULES = """\
- rule: Shell in cks pod
  desc: a shell in a lab pod
  condition: evt.type = execve and proc.name = sh
  output: Shell spawned in a lab pod (user=%user.name command=%proc.cmdline)
  priority: WARNING
"""


def falco_setup(
    tmp_path: Path, log: str, validate: str
) -> tuple[LoadedScenario, FakeNodes, FakeKube]:
    folder = tmp_path / "kind-falco-test"
    folder.mkdir()
    (folder / "scenario.yaml").write_text(FALCO_SCENARIO)
    (folder / "local.yaml").write_text(LOCAL_RULES)
    sc = load_scenario(folder)
    worker = {f.path: sc.node_file_bytes(f) for f in sc.model.setup.files}
    nodes = FakeNodes(files={"controlplane": {}, "worker": worker})
    kube = FakeKube()
    kube.pods_[("cks-lab-falco", "falco-w")] = running_pod(
        "cks-lab-falco", "falco-w", "cks-lab-worker", ["falco"]
    )
    kube.labels[("cks-lab-falco", "falco-w")] = {"app.kubernetes.io/name": "falco"}
    kube.pods_[("cks-falco", "web")] = running_pod("cks-falco", "web", "cks-lab-worker", ["web"])
    kube.logs_["falco-w"] = log
    from lab.kind.falco_deploy import validate_argv

    files = ["/etc/falco/falco_rules.yaml", "/etc/falco/falco_rules.local.yaml"]
    kube.exec_results[("falco-w", *validate_argv(files))] = ExecResult(0, validate, "")
    return sc, nodes, kube


def at(hms: str) -> datetime:
    h, m, s = (int(x) for x in hms.split(":"))
    return T0.replace(hour=h, minute=m, second=s)


VALID = json.dumps(
    {
        "falco_load_results": [
            {
                "errors": [],
                "name": "/etc/falco/falco_rules.yaml",
                "successful": True,
                "warnings": [],
            },
            {
                "errors": [],
                "name": "/etc/falco/falco_rules.local.yaml",
                "successful": True,
                "warnings": [],
            },
        ]
    }
)


def test_falco_alerts_go_to_the_steps_that_raised_them(tmp_path: Path) -> None:
    # The sample's alerts: 09:58:30 another pod (before the run), 10:00:05 `sh -c id`
    # and 10:00:12 `sh -c 'cat /etc/shadow'` in cks-falco/web.
    log = sample("falco-pod-log.txt").split(
        '{"hostname":"cks-lab-worker","output":"Falco internal'
    )[0]
    sc, nodes, kube = falco_setup(tmp_path, log, VALID)
    clock = FakeClock(
        T0, [at("9:59:59"), at("10:00:04"), at("10:00:06"), at("10:00:11"), at("10:00:14")]
    )
    ev = backend(tmp_path, nodes, kube, clock).run_attack(sc, workspace(tmp_path, sc))
    falco = ev.falco
    assert falco is not None
    assert [a["output_fields"]["proc.cmdline"] for a in falco.alerts["shell-id"]] == ["sh -c id"]
    assert [a["output_fields"]["proc.cmdline"] for a in falco.alerts["shell-shadow"]] == [
        "sh -c 'cat /etc/shadow'"
    ]
    assert falco.alerts["web-runs"] == []  # the other pod's alert is not the workload's
    assert falco.step_nodes == {
        "shell-id": "worker",
        "shell-shadow": "worker",
        "web-runs": "worker",
    }
    worker = falco.nodes["worker"]
    assert worker.running and [f.status for f in worker.rules_files] == ["Ok", "Ok"]
    assert worker.rule("Shell in cks pod") is not None  # explanations can name near misses
    result = grade(sc.model, ev)
    failed = [(c.type, c.explanation) for t in result.tasks for c in t.checks if not c.passed]
    assert failed == []
    assert "controlplane" not in falco.nodes or not falco.nodes["controlplane"].installed


def test_alerts_of_the_pod_outside_exec_windows_are_the_workloads(tmp_path: Path) -> None:
    log = sample("falco-pod-log.txt").split(
        '{"hostname":"cks-lab-worker","output":"Falco internal'
    )[0]
    sc, nodes, kube = falco_setup(tmp_path, log, VALID)
    # the execs ran long after Falco's alerts of the pod: those are its own process's
    clock = FakeClock(
        T0, [at("9:59:59"), at("10:01:00"), at("10:01:01"), at("10:01:02"), at("10:01:03")]
    )
    ev = backend(tmp_path, nodes, kube, clock).run_attack(sc, workspace(tmp_path, sc))
    assert ev.falco is not None
    assert len(ev.falco.alerts["web-runs"]) == 2
    assert ev.falco.alerts["shell-id"] == []
    got = checks(grade(sc.model, ev))
    assert got["falco_no_alert"][0][0] is False
    assert "Shell in cks pod" in got["falco_no_alert"][0][1]


def test_a_failed_hot_reload_says_the_learners_rules_did_not_load(tmp_path: Path) -> None:
    sc, nodes, kube = falco_setup(
        tmp_path, sample("falco-pod-log.txt"), sample("falco-validate-invalid.json")
    )
    ev = backend(tmp_path, nodes, kube).run_attack(sc, workspace(tmp_path, sc))
    assert ev.falco is not None
    worker = ev.falco.nodes["worker"]
    assert worker.running is False
    assert worker.error and "your rules did not load" in worker.error
    assert "proc.nme" in worker.error
    assert any("hot reload" in n and "kept the rules" in n for n in worker.notes)
    got = checks(grade(sc.model, ev))
    passed, text = got["falco_rules_load"][0]
    assert not passed
    assert "/etc/falco/falco_rules.local.yaml is invalid" in text
    assert not got["falco_alert"][0][0]


# --- AppArmor ------------------------------------------------------------------------------

DENIED = ExecResult(1, "", "touch: /tmp/test: Permission denied\n")


def apparmor_setup(manifest: str, profile_loaded: bool) -> tuple[FakeNodes, FakeKube]:
    sc_dir = REPO / "scenarios" / "apparmor-deny-write"
    worker: dict[str, bytes] = {
        "/sys/kernel/security/apparmor/profiles": b"cri-containerd.apparmor.d (enforce)\n"
        + (b"k8s-deny-write (enforce)\n" if profile_loaded else b""),
        "/etc/apparmor.d/k8s-deny-write": (sc_dir / "solution" / "k8s-deny-write").read_bytes(),
        "/etc/apparmor.d/usr.bin.shipped": b"# the package's own\n",
    }
    nodes = FakeNodes(
        files={
            "controlplane": {"/root/hello-apparmor.yaml": (sc_dir / manifest).read_bytes()},
            "worker": worker,
        },
        aa_names={"/etc/apparmor.d/k8s-deny-write": ["k8s-deny-write"]},
    )
    return nodes, FakeKube()


def apparmor_backend(tmp_path: Path, nodes: FakeNodes, kube: FakeKube) -> KindBackend:
    b = backend(tmp_path, nodes, kube)
    state = lab_reset.LabState(apparmor={"cks-lab-worker": ["/etc/apparmor.d/usr.bin.shipped"]})
    lab_reset.save_state(b.cluster.dir, state)
    return b


def test_apparmor_outcomes_come_from_the_commands_results(tmp_path: Path) -> None:
    sc = scenario("apparmor-deny-write")
    nodes, kube = apparmor_setup("solution/hello-apparmor.yaml", profile_loaded=True)
    kube.pods_[("default", "hello-apparmor")] = running_pod(
        "default", "hello-apparmor", "cks-lab-worker", ["hello"]
    )
    p = "hello-apparmor"
    kube.exec_results.update(
        {
            (p, "cat", "/proc/1/attr/current"): ExecResult(0, "k8s-deny-write (enforce)", ""),
            (p, "touch", "/tmp/test"): DENIED,
            (p, "sh", "-c", "echo toor:x:0:0::/root:/bin/sh >> /etc/passwd"): ExecResult(
                1, "", "sh: can't create /etc/passwd: Permission denied\n"
            ),
            (
                p,
                "sh",
                "-c",
                "mkdir -p /root/.ssh /usr/local/bin && echo ssh-ed25519 AAAA >> "
                "/root/.ssh/authorized_keys && echo '#!/bin/sh' > /usr/local/bin/kworker",
            ): ExecResult(1, "", "mkdir: can't create directory '/root/.ssh': Permission denied\n"),
        }
    )
    ev = apparmor_backend(tmp_path, nodes, kube).run_attack(sc, workspace(tmp_path, sc))
    aa = ev.apparmor
    assert aa is not None
    # the learner's manifest was applied as it is on the node
    assert kube.applied[0][0] == "controlplane:/root/hello-apparmor.yaml"
    c = aa.container("default", "hello-apparmor", "hello")
    assert c is not None and (c.profile, c.mode, c.node) == ("k8s-deny-write", "enforce", "worker")
    assert c.localhost == "k8s-deny-write"
    touch = aa.steps["touch-tmp"].accesses
    assert [(a.access, a.outcome) for a in touch] == [("w /tmp/test", "DENIED")]
    assert "kernel decided" in touch[0].reason and touch[0].rules == ()
    assert aa.steps["read-profile"].accesses[0].outcome == "ALLOWED"
    assert aa.nodes["worker"].defined == {"k8s-deny-write": "/etc/apparmor.d/k8s-deny-write"}
    # the package's own profile files are not parsed
    assert [
        "apparmor_parser",
        "-Q",
        "-K",
        "/etc/apparmor.d/usr.bin.shipped",
    ] not in nodes.commands()
    result = grade(sc.model, ev)
    failed = [(c.type, c.explanation) for t in result.tasks for c in t.checks if not c.passed]
    assert failed == []


def test_untouched_apparmor_scenario_fails(tmp_path: Path) -> None:
    sc = scenario("apparmor-deny-write")
    nodes, kube = apparmor_setup("manifests/hello-apparmor.yaml", profile_loaded=False)
    nodes.files["worker"].pop("/etc/apparmor.d/k8s-deny-write")
    kube.pods_[("default", "hello-apparmor")] = running_pod(
        "default", "hello-apparmor", "cks-lab-worker", ["hello"]
    )
    kube.exec_results[("hello-apparmor", "cat", "/proc/1/attr/current")] = ExecResult(
        0, "cri-containerd.apparmor.d (enforce)\n", ""
    )
    ev = apparmor_backend(tmp_path, nodes, kube).run_attack(sc, workspace(tmp_path, sc))
    got = checks(grade(sc.model, ev))
    assert "is not loaded on node worker" in got["apparmor_profile_loaded"][0][1]
    assert "containerd's default profile" in got["apparmor_pod_confined"][0][1]
    passed, text = got["apparmor_denied"][0]
    assert not passed and "write of /tmp/test was ALLOWED" in text
    assert all(passed for passed, _ in got["apparmor_allowed"])


def test_container_create_error_is_reported_with_the_runtimes_words(tmp_path: Path) -> None:
    sc = scenario("apparmor-deny-write")
    nodes, kube = apparmor_setup("solution/hello-apparmor.yaml", profile_loaded=False)
    message = "failed to create containerd container: apparmor profile not found k8s-deny-write"
    kube.pods_[("default", "hello-apparmor")] = PodInfo(
        "default",
        "hello-apparmor",
        "cks-lab-worker",
        "Pending",
        [ContainerInfo("hello", "waiting", "CreateContainerError", message)],
    )
    ev = apparmor_backend(tmp_path, nodes, kube).run_attack(sc, workspace(tmp_path, sc))
    assert ev.apparmor is not None
    assert ev.apparmor.steps["touch-tmp"].ran is False
    got = checks(grade(sc.model, ev))
    passed, text = got["apparmor_pod_confined"][0]
    assert not passed and "CreateContainerError" in text and message in text
    # the profile is written but not loaded: the check says what to run
    assert "apparmor_parser -r /etc/apparmor.d/k8s-deny-write" in text
    assert "could not run" in got["apparmor_denied"][0][1]


# --- reset and setup ---------------------------------------------------------------------


def test_prepare_resets_the_earlier_scenario_on_the_scenarios_nodes_only(tmp_path: Path) -> None:
    sc = scenario("apparmor-deny-write")
    pristine = b"apiVersion: v1\nkind: Pod\n# pristine\n"
    cp = {
        MANIFEST: b"apiVersion: v1\nkind: Pod\n# learner's\n",
        lab_reset.PRISTINE_MANIFEST: pristine,
        "/etc/falco/falco.yaml": b"x",
    }
    worker = {"/etc/apparmor.d/learner-profile": b"profile x {}\n", "/etc/apparmor.d/shipped": b""}
    nodes = FakeNodes(
        files={"controlplane": cp, "worker": worker},
        crictl_ps=sample("crictl-ps-apiserver-restarted.json"),
    )
    kube = FakeKube()
    b = backend(tmp_path, nodes, kube)
    lab_reset.save_state(
        b.cluster.dir,
        lab_reset.LabState(
            scenario="falco-shell-alert",
            namespaces=["payments"],
            objects=[["Pod", "default", "debug"]],
            files=[
                ["cks-lab-control-plane", "/etc/falco/falco.yaml"],
                ["cks-lab-worker2", "/etc/falco/falco.yaml"],
            ],
            apparmor={"cks-lab-worker": ["/etc/apparmor.d/shipped"], "cks-lab-control-plane": []},
        ),
    )
    events: list[str] = []
    b.prepare(sc, workspace(tmp_path, sc), events.append)
    assert nodes.files["controlplane"][MANIFEST] == pristine
    assert ("Pod", "default", "debug") in kube.deleted
    assert ("Namespace", "", "payments") in kube.deleted
    assert "/etc/falco/falco.yaml" not in nodes.files["controlplane"]
    # the learner's profile is unloaded from the kernel, then its file removed
    assert ["apparmor_parser", "-R", "/etc/apparmor.d/learner-profile"] in nodes.commands("worker")
    assert "/etc/apparmor.d/learner-profile" not in nodes.files["worker"]
    assert "/etc/apparmor.d/shipped" in nodes.files["worker"]
    # the scenario's own setup: its files, its manifest, recorded for the next reset
    assert nodes.files["controlplane"]["/root/hello-apparmor.yaml"].startswith(b"# The pod")
    assert kube.applied[-1][0] == "manifests/hello-apparmor.yaml"
    state = lab_reset.load_state(b.cluster.dir)
    assert state.scenario == "apparmor-deny-write"
    assert ["Pod", "default", "hello-apparmor"] in state.objects
    assert state.namespaces == []
    # worker2 is not a node of this scenario: untouched, and still on the record
    assert state.files == [
        ["cks-lab-worker2", "/etc/falco/falco.yaml"],
        ["cks-lab-control-plane", "/root/hello-apparmor.yaml"],
    ]
    phases = {getattr(e, "phase", "") for e in events}
    assert {"reset", "files", "manifests", "pods"} <= phases


def test_first_use_keeps_the_pristine_manifest_and_setup_writes_one(tmp_path: Path) -> None:
    sc = scenario("audit-enable-logging")
    stock = b"apiVersion: v1\nkind: Pod\n# kubeadm's\n"
    nodes = FakeNodes(
        files={"controlplane": {MANIFEST: stock}, "worker": {}},
        crictl_ps=sample("crictl-ps-apiserver-restarted.json"),
    )
    kube = FakeKube()
    b = backend(tmp_path, nodes, kube)
    b.prepare(sc, workspace(tmp_path, sc))
    cp = nodes.files["controlplane"]
    assert cp[lab_reset.PRISTINE_MANIFEST] == stock
    assert (
        cp[MANIFEST]
        == (REPO / "scenarios/audit-enable-logging/files/kube-apiserver.yaml").read_bytes()
    )
    state = lab_reset.load_state(b.cluster.dir)
    assert state.namespaces == ["payments"]
    # the manifest is put back from the pristine copy, never deleted
    assert ["cks-lab-control-plane", MANIFEST] not in state.files


def test_setup_stops_when_the_apiserver_does_not_come_back(tmp_path: Path) -> None:
    from lab.errors import LabError

    sc = scenario("audit-enable-logging")
    nodes = FakeNodes(
        files={"controlplane": {MANIFEST: b"x"}, "worker": {}},
        crictl_ps=sample("crictl-ps-apiserver-crashloop.json"),
    )
    nodes.crictl_logs["c3f1d07a9b2e4c5d8e6f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f"] = sample(
        "crictl-logs-apiserver-flag.txt"
    )
    with pytest.raises(LabError, match="did not come back after the setup"):
        backend(tmp_path, nodes, FakeKube()).prepare(sc, workspace(tmp_path, sc))


def test_evidence_is_of_the_kind_backend(tmp_path: Path) -> None:
    sc = scenario("audit-enable-logging")
    ev = backend(tmp_path, audit_nodes("files/kube-apiserver.yaml"), FakeKube()).run_attack(
        sc, workspace(tmp_path, sc)
    )
    assert isinstance(ev, Evidence) and ev.falco is None and ev.apparmor is None
    assert ev.files is not None
    assert (
        ev.files.read("controlplane", POLICY).text
        == (REPO / "scenarios/audit-enable-logging/files/policy.yaml").read_text()
    )


@pytest.mark.parametrize(
    ("validate", "running", "noted"),
    [
        (VALID, True, False),  # fixed since: the old failure is history, not news
        ("Error: cannot run falco -V\n", False, True),  # no verdict: the failure decides
    ],
)
def test_an_earlier_reload_failure_counts_only_without_a_better_verdict(
    tmp_path: Path, validate: str, running: bool, noted: bool
) -> None:
    sc, nodes, kube = falco_setup(tmp_path, sample("falco-pod-log.txt"), validate)
    ev = backend(tmp_path, nodes, kube).run_attack(sc, workspace(tmp_path, sc))
    assert ev.falco is not None
    worker = ev.falco.nodes["worker"]
    assert worker.running is running
    assert any("hot reload" in n for n in worker.notes) is noted
    if not running:
        assert worker.error and "Falco's hot reload failed" in worker.error


def test_an_interactive_exec_step_gets_a_terminal_and_leaves_the_shell() -> None:
    # falco-shell-alert's `kubectl exec -it ... -- sh`: without a terminal, Falco's
    # proc.tty is 0 and "Terminal shell in container"-style rules never fire.
    from lab.backends.kind.steps import INTERACTIVE_INPUT, run_exec

    sc = scenario("falco-shell-alert")
    kube = FakeKube()
    pod = ("payments", "payments-api-7d9c6b5f48-lx2vq")
    kube.pods_[pod] = running_pod(*pod, "cks-lab-worker", ["api"])
    steps = {s.id: s for s in sc.model.attack}
    clock = FakeClock(T0, [at("10:00:01"), at("10:00:02"), at("10:00:03"), at("10:00:04")])
    for sid in ("interactive-shell", "scripted-shell"):
        run = run_exec(kube, sc.model, steps[sid], "r1", clock, lambda n: "worker")
        assert run.error is None
    tty, plain = kube.execs
    assert (tty.argv, tty.tty, tty.stdin) == (["sh"], True, INTERACTIVE_INPUT)
    assert (plain.tty, plain.stdin) == (False, None)


def test_the_cluster_holds_a_workspace_only_once_its_setup_has_finished(tmp_path: Path) -> None:
    from lab.errors import LabError

    audit, falco = scenario("audit-enable-logging"), scenario("falco-shell-alert")
    nodes = FakeNodes(
        files={"controlplane": {MANIFEST: b"kind: Pod\n"}, "worker": {}},
        crictl_ps=sample("crictl-ps-apiserver-restarted.json"),
    )
    b = backend(tmp_path, nodes, FakeKube())
    first = create_workspace(tmp_path / "a", audit, "kind")
    second = create_workspace(tmp_path / "b", falco, "kind")
    assert not b.holds(first)
    b.prepare(audit, first)
    assert b.holds(first) and not b.holds(second)

    def broken_apply(docs: object, *, source: str = "") -> list[str]:
        raise LabError("the API server refused it")

    b.kube().apply = broken_apply  # type: ignore[method-assign]
    with pytest.raises(LabError):
        b.prepare(falco, second)  # fails half-way: the cluster holds neither now
    assert not b.holds(first) and not b.holds(second)


@pytest.mark.parametrize(
    ("policy_ctime", "restarted"),
    [
        (1764237605 - 60, False),  # before it started
        (1764237605 + 60, True),  # after
        # in the second it started, after it: only the change time's fraction tells
        (1764237605.5, True),
    ],
)
def test_a_policy_changed_since_the_apiserver_started_restarts_it(
    tmp_path: Path, policy_ctime: float, restarted: bool
) -> None:
    # kube-apiserver reads its policy only at start: an edited policy is not in force
    # until it restarts, so the check restarts it, as on the exam.
    sc = scenario("audit-enable-logging")
    nodes = audit_nodes("solution/kube-apiserver.yaml")
    nodes.ctime = policy_ctime  # the newest container was created at 1764237605
    said: list[str] = []
    backend(tmp_path, nodes, FakeKube()).run_attack(sc, workspace(tmp_path, sc), said.append)
    stops = [c for c in nodes.commands("controlplane") if c[:2] == ["crictl", "stop"]]
    if restarted:
        assert stops == [
            ["crictl", "stop", "b27c4e9d0a1f3b5c7d9e1f2a4b6c8d0e1f3a5b7c9d1e3f5a7b9c1d3e5f7a9b1c"]
        ]
        assert any("your audit policy changed" in m for m in said)
    else:
        assert stops == [] and not any("policy changed" in m for m in said)


@pytest.mark.parametrize("same_spec", [True, False])
def test_a_manifest_saved_unchanged_is_not_waited_out(tmp_path: Path, same_spec: bool) -> None:
    # kubelet restarts a static pod only when its spec changes: after a save with no
    # change (a newer ctime, the same content) the running container already runs it
    from lab.backends.kind.audit import manifest_spec
    from lab.backends.kind.backend import APISERVER_RECORD
    from lab.fsutil import atomic_write_json

    sc = scenario("audit-enable-logging")
    nodes = audit_nodes("solution/kube-apiserver.yaml")
    nodes.ctimes[MANIFEST] = 1764237605 + 60  # saved after the newest container started
    b = backend(tmp_path, nodes, FakeKube())
    b.settle_timeout = 60
    slept: list[float] = []
    b.sleep = slept.append  # type: ignore[method-assign]
    newest = "b27c4e9d0a1f3b5c7d9e1f2a4b6c8d0e1f3a5b7c9d1e3f5a7b9c1d3e5f7a9b1c"
    spec = manifest_spec(nodes, "controlplane")
    assert spec is not None
    recorded = spec if same_spec else "0" * 64
    atomic_write_json(b.cluster.dir / APISERVER_RECORD, {"container": newest, "spec": recorded})
    said: list[str] = []
    clock_calls = iter(range(10_000))
    b.clock = lambda: datetime.fromtimestamp(  # type: ignore[method-assign]
        1764237700 + next(clock_calls), UTC
    )
    b.run_attack(sc, workspace(tmp_path, sc), said.append)
    waited = any("waiting for kube-apiserver" in m for m in said)
    assert waited is not same_spec  # another spec: kubelet is yet to start it, so wait
