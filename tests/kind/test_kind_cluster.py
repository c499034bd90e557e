"""The kind cluster lifecycle (lab.kind.cluster) against a fake kind/docker fed real output.

The fake runner (kindfake.py) replays tests/kind/samples/kind-create-*.txt and
docker ps samples; each test asserts what the lab does with them: progress
events, state.json, what kind is asked, and the errors a learner sees.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from kindfake import PLANE_ID, WORKER_ID, FakeKind, sample

from lab.errors import LabError
from lab.kind import cluster, kind_cli, readiness
from lab.kind.cluster import (
    ClusterCancelled,
    ClusterCreateError,
    ClusterNotReady,
    ConfigChanged,
    cluster_handle,
)
from lab.kind.config import check_config, file_volumes
from lab.kind.kind_cli import NODE_IMAGE, parse_kind_line, parse_node_ps
from lab.kind.runner import CommandNotFound, CommandResult, CommandTimeout, SubprocessRunner
from lab.paths import kind_configs_dir
from lab.yamlsafe import parse_one

AUDIT = kind_configs_dir() / "audit.yaml"
AUDIT_ENABLED = kind_configs_dir() / "audit-enabled.yaml"
T = len(kind_cli.CREATE_STEPS)


class Events(list[str]):
    def __call__(self, message: str) -> None:
        self.append(message)

    def steps(self) -> list[tuple[str, int | None, int | None]]:
        return [(str(e), getattr(e, "done", None), getattr(e, "total", None)) for e in self]


# --- parse_kind_line: one row per shape kind prints ------------------------------------

PARSE_TABLE = [
    # piped (the lab's case): start " • %s  ..." -> done = steps before it
    (" • Ensuring node image (kindest/node:v1.36.1) 🖼  ...",
     ("Ensuring node image (kindest/node:v1.36.1)", 0, T)),
    (" • Preparing nodes 📦 📦   ...", ("Preparing nodes", 1, T)),
    # end " ✓ %s" -> done = its number
    (" ✓ Preparing nodes 📦 📦 ", ("Preparing nodes ✓", 2, T)),
    (" ✓ Starting control-plane 🕹️", ("Starting control-plane ✓", 4, T)),
    (" ✓ Joining worker nodes 🚜", ("Joining worker nodes ✓", 7, T)),
    (" ✓ Waiting ≤ 2m0s for control-plane = Ready ⏳",
     ("Waiting ≤ 2m0s for control-plane = Ready ✓", 8, T)),
    # failure, piped: "✗ %s" (no leading space); in a terminal " ✗ %s"
    ("✗ Starting control-plane 🕹️", ("Starting control-plane failed", 3, T)),
    # --wait ran out: the step fails, kind warns (on stdout) and still exits 0
    ("✗ Waiting ≤ 2m0s for control-plane = Ready ⏳",
     ("Waiting ≤ 2m0s for control-plane = Ready failed", 7, T)),
    (" • WARNING: Timed out waiting for Ready ⚠️",
     ("WARNING: Timed out waiting for Ready", None, None)),
    (" ✗ Installing CNI 🔌 ", ("Installing CNI failed", 4, T)),
    # older releases' colours, and a terminal's \r before the end line
    (" \x1b[32m✓\x1b[0m Writing configuration 📜", ("Writing configuration ✓", 3, T)),
    ("\r ✓ Installing StorageClass 💾", ("Installing StorageClass ✓", 6, T)),
    # the emoji variation selector some terminals keep: "🖼️"
    (" ✓ Ensuring node image (kindest/node:v1.36.1) 🖼️",
     ("Ensuring node image (kindest/node:v1.36.1) ✓", 1, T)),
    # a step kind has that the lab's configs do not use: a message, no count
    (" ✓ Configuring the external load balancer ⚖️",
     ("Configuring the external load balancer done", None, None)),
    # notes and the header
    (" • Ready after 17s 💚", ("Ready after 17s", None, None)),
    ('Creating cluster "cks-lab" ...', ('Creating cluster "cks-lab"', 0, T)),
    # not progress
    ("ERROR: failed to create cluster: node(s) already exist for a cluster with the name", None),
    ('Set kubectl context to "kind-cks-lab"', None),
    ('Deleted nodes: ["cks-lab-worker" "cks-lab-control-plane"]', None),
    ("Command Output: [init] Using Kubernetes version: v1.36.1", None),
    ("", None),
    (" • 💚", None),
]  # fmt: skip


@pytest.mark.parametrize("line,want", PARSE_TABLE)
def test_parse_kind_line(line: str, want: tuple[str, int | None, int | None] | None) -> None:
    ev = parse_kind_line(line)
    if want is None:
        assert ev is None
    else:
        assert ev is not None
        assert (str(ev), ev.done, ev.total, ev.phase) == (*want, "create")


@pytest.mark.parametrize("name", ["kind-create-success.txt", "kind-create-tty.txt"])
def test_a_whole_create_counts_up_to_every_step(name: str) -> None:
    events = [e for ln in sample(name).splitlines() if (e := parse_kind_line(ln))]
    counted = [e.done for e in events if e.done is not None]
    assert counted == sorted(counted), "progress never goes backwards"
    assert counted[-1] == T
    assert events[-1].fraction is None or events[-1].fraction == 1.0
    ends = [str(e) for e in events if str(e).endswith("✓")]
    assert ends[0] == "Ensuring node image (kindest/node:v1.36.1) ✓"
    assert len(ends) == T  # the lab's config (a worker, default CNI, --wait) runs every step


def test_error_lines_keep_the_failed_step_and_kinds_reason() -> None:
    lines = kind_cli.error_lines(sample("kind-create-failure.txt").splitlines())
    assert lines[0] == "✗ Starting control-plane 🕹️"
    assert lines[1].startswith("ERROR: failed to create cluster: failed to init node with kubeadm")
    assert lines[2].startswith("Command Output: ")
    assert len(lines) == 12
    assert not any(ln.startswith(" • ") for ln in lines)


# --- docker ps ---------------------------------------------------------------------------


def test_parse_node_ps_reads_the_real_json_lines() -> None:
    nodes = parse_node_ps(sample("kind-docker-ps-running.txt"), "cks-lab")
    assert [(n.name, n.role, n.state, n.running) for n in nodes] == [
        ("cks-lab-control-plane", "control-plane", "running", True),
        ("cks-lab-worker", "worker", "running", True),
    ]
    exited = parse_node_ps(sample("kind-docker-ps-worker-exited.txt"), "cks-lab")
    assert [(n.name, n.state, n.status) for n in exited if not n.running] == [
        ("cks-lab-worker", "exited", "Exited (137) 3 minutes ago")
    ]


def test_parse_node_ps_keeps_only_the_clusters_own_containers() -> None:
    text = sample("kind-docker-ps-running.txt")
    other = text.splitlines()[0].replace("cks-lab", "cks-lab-other")
    unlabelled = '{"ID":"aa","Names":"cks-lab-worker2","Labels":"","State":"running"}'
    nodes = parse_node_ps("\n".join([other, unlabelled, "not json", text]), "cks-lab")
    assert sorted(n.name for n in nodes) == ["cks-lab-control-plane", "cks-lab-worker"]
    # an old CLI without "State": "Up ..." is running
    old = (
        '{"ID":"b","Names":"cks-lab-worker","Labels":"io.x-k8s.kind.cluster=cks-lab",'
        '"Status":"Up 2 hours"}'
    )
    assert parse_node_ps(old, "cks-lab")[0].running


# --- argv: the user's kubeconfig is never written, names are checked ----------------------


def test_create_and_delete_write_only_the_labs_kubeconfig(tmp_path: Path) -> None:
    kc = tmp_path / "kubeconfig"
    argv = kind_cli.create_argv("cks-lab", tmp_path / "c.yaml", kc)
    assert argv[:3] == ["kind", "create", "cluster"]
    assert argv[argv.index("--kubeconfig") + 1] == str(kc)
    assert argv[argv.index("--image") + 1] == NODE_IMAGE
    assert NODE_IMAGE.startswith("kindest/node:v1.36.") and "@sha256:" in NODE_IMAGE
    assert argv[argv.index("--wait") + 1] == "120s"
    dargv = kind_cli.delete_argv("cks-lab", kc)
    assert dargv[dargv.index("--kubeconfig") + 1] == str(kc)


@pytest.mark.parametrize("bad", ["kind", "prod", "cks-lab-", "CKS-LAB", "cks-lab;rm"])
def test_commands_refuse_a_non_lab_cluster_name(bad: str, tmp_path: Path) -> None:
    for build in (
        lambda: kind_cli.create_argv(bad, tmp_path, tmp_path),
        lambda: kind_cli.delete_argv(bad, tmp_path),
        lambda: kind_cli.node_ps_argv(bad),
        lambda: cluster_handle(bad),
    ):
        with pytest.raises(LabError, match="cluster name"):
            build()


# --- up / status / down --------------------------------------------------------------------


def test_up_creates_the_cluster_in_its_own_folder() -> None:
    fake, events, h = FakeKind(), Events(), cluster_handle()
    st = cluster.up(h, AUDIT, events, runner=fake)

    assert st.phase == "ready" and st.ready
    assert [n.name for n in st.nodes] == ["cks-lab-control-plane", "cks-lab-worker"]
    assert st.kubeconfig == h.kubeconfig and h.kubeconfig.is_file()
    (create,) = fake.commands("kind", "create", "cluster")
    assert create == kind_cli.create_argv("cks-lab", h.config_file, h.kubeconfig)
    # the rendered config: this cluster's name, its absolute audit folders
    cfg = parse_one(h.config_file.read_text(), "cfg").data
    assert cfg["name"] == "cks-lab"
    mounts = {m["containerPath"]: m["hostPath"] for m in cfg["nodes"][0]["extraMounts"]}
    assert mounts["/var/log/kubernetes/audit"] == str(h.audit_log_dir)
    assert h.audit_log_dir.is_dir() and h.audit_policy_dir.is_dir()
    state = json.loads(h.state_file.read_text())
    assert state["phase"] == "ready" and state["created"] and state["image"] == NODE_IMAGE
    assert state["config_digest"] == st.config_digest
    # progress: one event per kind step, counted
    counted = [d for _, d, t in events.steps() if t == T]
    assert counted[-1] == T and counted == sorted(counted)
    assert events[-1] == "Kind cluster cks-lab is ready"


def test_a_healthy_cluster_is_reused() -> None:
    fake, h = FakeKind(), cluster_handle()
    cluster.up(h, AUDIT, Events(), runner=fake)
    events = Events()
    st = cluster.up(h, AUDIT, events, runner=fake)
    assert st.ready
    assert len(fake.commands("kind", "create")) == 1
    assert not fake.commands("kind", "delete")
    assert events == ["Reusing kind cluster cks-lab: its 2 nodes are running"]


def test_a_changed_config_asks_for_recreate_and_recreate_does_it() -> None:
    fake, h = FakeKind(), cluster_handle()
    first = cluster.up(h, AUDIT, Events(), runner=fake)
    rendered = h.config_file.read_text()
    with pytest.raises(ConfigChanged, match=r"cks-lab up --recreate"):
        cluster.up(h, AUDIT_ENABLED, Events(), runner=fake)
    assert not fake.commands("kind", "delete"), "never deleted without --recreate"
    assert h.config_file.read_text() == rendered, "the running cluster's config is kept"
    events = Events()
    st = cluster.up(h, AUDIT_ENABLED, events, runner=fake, recreate=True)
    kinds = [c[1] for c in fake.calls if c[0] == "kind" and c[1] != "get"]
    assert kinds == ["create", "delete", "create"]
    assert st.ready and st.config_digest != first.config_digest


def test_a_cluster_the_lab_did_not_make_is_not_taken_over() -> None:
    fake, h = FakeKind(), cluster_handle()
    fake.clusters["cks-lab"] = "running"  # made by hand with `kind create cluster --name cks-lab`
    assert cluster.status(h, runner=fake).phase == "created"
    with pytest.raises(ConfigChanged, match="no record of creating it"):
        cluster.up(h, AUDIT, Events(), runner=fake)
    assert fake.clusters and not fake.commands("kind", "delete")


def test_a_failed_create_reports_kinds_error_lines() -> None:
    fake, h = FakeKind("kind-create-failure.txt"), cluster_handle()
    events = Events()
    with pytest.raises(ClusterCreateError) as err:
        cluster.up(h, AUDIT, events, runner=fake)
    assert "kind could not create cluster 'cks-lab': failed to init node with kubeadm" in str(
        err.value
    )
    assert "\n" not in str(err.value)  # one line for the CLI; the detail is in kind_lines
    assert err.value.kind_lines[0] == "✗ Starting control-plane 🕹️"
    assert any("kube-apiserver is not healthy" in ln for ln in err.value.kind_lines)
    assert ("Starting control-plane failed", 3, T) in events.steps()
    state = json.loads(h.state_file.read_text())
    assert state["phase"] == "failed" and state["error"].startswith("failed to init node")
    st = cluster.status(h, runner=fake)  # kind removed its nodes
    assert st.phase == "absent"
    assert any("the last `cks-lab up` failed: failed to init node" in d for d in st.detail)


def test_nodes_already_there_point_to_down() -> None:
    # kind found node containers of that name (made outside the lab, between the
    # lab's look and kind's own): its one ERROR line
    fake, h = FakeKind("kind-create-exists.txt"), cluster_handle()
    with pytest.raises(ClusterCreateError, match=r"already exists.*cks-lab down --name cks-lab"):
        cluster.up(h, AUDIT, Events(), runner=fake)


def test_cancel_mid_create_leaves_creating_and_up_resumes() -> None:
    fake, h = FakeKind(), cluster_handle()
    fake.cancel_after = 5  # lines 0-4 replayed: up to "✓ Preparing nodes", nodes exist
    events, cancel = Events(), threading.Event()
    with pytest.raises(ClusterCancelled, match="`cks-lab up` finishes it"):
        cluster.up(h, AUDIT, events, runner=fake, cancel=cancel)
    assert cancel.is_set()
    assert max(d for _, d, t in events.steps() if t) == 2  # stopped after two steps
    assert json.loads(h.state_file.read_text())["phase"] == "creating"
    assert not fake.commands("kind", "delete"), "a cancel kills kind, it deletes nothing"
    st = cluster.status(h, runner=fake)
    assert st.phase == "creating" and not st.ready
    assert any("`cks-lab down` removes it" in d for d in st.detail)

    fake.cancel_after = None
    events = Events()
    st = cluster.up(h, AUDIT, events, runner=fake)
    assert st.ready
    assert events[0] == (
        "Kind cluster cks-lab was left half-made by an interrupted `cks-lab up`: "
        "deleting it and creating it again"
    )
    kinds = [c[1] for c in fake.calls if c[0] == "kind" and c[1] != "get"]
    assert kinds == ["create", "delete", "create"]


def test_a_broken_cluster_is_recreated() -> None:
    fake, h = FakeKind(), cluster_handle()
    cluster.up(h, AUDIT, Events(), runner=fake)
    fake.clusters["cks-lab"] = "dead"  # docker could not stop it cleanly: no `docker start`
    st = cluster.status(h, runner=fake)
    assert st.phase == "broken" and not st.ready
    assert "node cks-lab-worker is dead (Exited (137) 3 minutes ago)" in st.detail
    events = Events()
    assert cluster.up(h, AUDIT, events, runner=fake).ready
    assert events[0].startswith("Kind cluster cks-lab is not healthy (node cks-lab-worker is dead")
    assert len(fake.commands("kind", "delete")) == 1
    assert not fake.commands("docker", "start")


# --- stopped node containers are started, never deleted -----------------------------------


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """Readiness polls without sleeping; tests give the fake its answers."""
    monkeypatch.setattr(readiness, "READY_POLL", 0.0)
    monkeypatch.setattr(readiness, "START_TIMEOUT", 0.0)


def test_stopped_nodes_are_started_again_control_plane_first(quick: None) -> None:
    fake, h = FakeKind(), cluster_handle()
    cluster.up(h, AUDIT, Events(), runner=fake)
    fake.clusters["cks-lab"] = fake.planes["cks-lab"] = "exited"  # Docker Desktop quit
    st = cluster.status(h, runner=fake)
    assert st.phase == "broken"
    assert "its node containers are stopped: `cks-lab up` starts them again" in st.detail
    fake.nodes_ready = [False, True]  # the kubelets need a moment after the restart
    events = Events()
    st = cluster.up(h, AUDIT, events, runner=fake)
    assert st.ready and all(n.running for n in st.nodes)
    assert fake.commands("docker", "start") == [
        ["docker", "start", PLANE_ID],
        ["docker", "start", WORKER_ID],
    ]
    assert not fake.commands("kind", "delete") and len(fake.commands("kind", "create")) == 1
    assert events == [
        "Kind cluster cks-lab: its node containers are stopped "
        "(cks-lab-control-plane, cks-lab-worker); starting them",
        "Starting node container cks-lab-control-plane",
        "Starting node container cks-lab-worker",
        "Waiting ≤ 120s for the nodes of cks-lab to be Ready",
        "Kind cluster cks-lab is ready: all its nodes are Ready",
    ]
    assert len(fake.commands("docker", "exec")) == 2
    assert cluster.read_state(h)["phase"] == "ready"


def test_started_nodes_that_never_get_ready_ask_for_recreate(
    quick: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, h = FakeKind(), cluster_handle()
    cluster.up(h, AUDIT, Events(), runner=fake)
    fake.clusters["cks-lab"] = "exited"
    monkeypatch.setattr(readiness, "READY_TIMEOUT", 0.0)
    fake.nodes_ready = [False]
    with pytest.raises(ClusterNotReady, match=r"not Ready: cks-lab-worker.*--recreate") as err:
        cluster.up(h, AUDIT, Events(), runner=fake)
    assert err.value.status.phase == "created" and not err.value.status.ready
    assert fake.commands("docker", "start") == [["docker", "start", WORKER_ID]]
    assert not fake.commands("kind", "delete"), "the learner's cluster is never deleted unasked"
    st = cluster.status(h, runner=fake)
    assert st.phase == "created"
    assert any("`cks-lab up` checks again" in d for d in st.detail)
    # --recreate is the learner's explicit choice
    assert cluster.up(h, AUDIT, Events(), runner=fake, recreate=True).ready
    assert len(fake.commands("kind", "delete")) == 1


def test_a_node_docker_cannot_start_asks_for_recreate(quick: None) -> None:
    fake, h = FakeKind(), cluster_handle()
    cluster.up(h, AUDIT, Events(), runner=fake)
    fake.planes["cks-lab"] = "exited"
    fake.start_fails = True
    with pytest.raises(LabError, match=r"`docker start cks-lab-control-plane` failed: .*"
                       r"--recreate` deletes and recreates"):  # fmt: skip
        cluster.up(h, AUDIT, Events(), runner=fake)
    assert not fake.commands("kind", "delete")


def test_stopped_nodes_of_another_config_are_neither_started_nor_deleted() -> None:
    fake, h = FakeKind(), cluster_handle()
    cluster.up(h, AUDIT, Events(), runner=fake)
    fake.clusters["cks-lab"] = "exited"
    with pytest.raises(ConfigChanged, match="cks-lab up --recreate"):
        cluster.up(h, AUDIT_ENABLED, Events(), runner=fake)
    assert not fake.commands("kind", "delete") and not fake.commands("docker", "start")


# --- kind's --wait ran out: created, not ready ----------------------------------------------


def test_wait_timed_out_is_seen_in_kinds_output() -> None:
    assert kind_cli.wait_timed_out(sample("kind-create-wait-timeout.txt").splitlines())
    for name in ("kind-create-success.txt", "kind-create-tty.txt", "kind-create-failure.txt"):
        assert not kind_cli.wait_timed_out(sample(name).splitlines()), name
    # either sign alone is enough: the failed step (stderr) or the warning (stdout)
    assert kind_cli.wait_timed_out(["✗ Waiting ≤ 2m0s for control-plane = Ready ⏳"])
    assert kind_cli.wait_timed_out([" • WARNING: Timed out waiting for Ready ⚠️"])


def test_a_create_whose_wait_timed_out_is_created_not_ready(
    quick: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, h = FakeKind("kind-create-wait-timeout.txt"), cluster_handle()
    events = Events()
    with pytest.raises(ClusterNotReady, match=r"not Ready within 120s.*run `cks-lab up` again"):
        cluster.up(h, AUDIT, events, runner=fake)
    assert ("Waiting ≤ 2m0s for control-plane = Ready failed", T - 1, T) in events.steps()
    assert events[-1] == "Kind cluster cks-lab is created but its nodes are not Ready yet"
    state = cluster.read_state(h)
    assert state["phase"] == "created" and state["created"]
    st = cluster.status(h, runner=fake)
    assert st.phase == "created" and not st.ready
    assert any("not Ready when last checked" in d and "`cks-lab up`" in d for d in st.detail)

    # the next `up` checks again, and once every node is Ready the cluster is
    monkeypatch.setattr(readiness, "READY_TIMEOUT", 0.0)
    fake.nodes_ready = [False]
    with pytest.raises(ClusterNotReady, match=r"not Ready: cks-lab-worker"):
        cluster.up(h, AUDIT, Events(), runner=fake)
    assert cluster.read_state(h)["phase"] == "created"
    events = Events()
    st = cluster.up(h, AUDIT, events, runner=fake)
    assert st.ready and cluster.read_state(h)["phase"] == "ready"
    assert events[-1] == "Kind cluster cks-lab is ready: all its nodes are Ready"
    assert len(fake.commands("kind", "create")) == 1 and not fake.commands("kind", "delete")


def test_readiness_is_asked_of_the_control_plane_nodes_kubectl() -> None:
    argv = kind_cli.node_get_nodes_argv(PLANE_ID)
    assert argv == [
        "docker", "exec", PLANE_ID,
        "kubectl", "--kubeconfig=/etc/kubernetes/admin.conf", "get", "nodes", "-o", "json",
    ]  # fmt: skip
    assert kind_cli.parse_nodes_ready(sample("kind-kubectl-get-nodes-notready.json")) == {
        "cks-lab-control-plane": True,
        "cks-lab-worker": False,
    }
    assert all(kind_cli.parse_nodes_ready(sample("kind-kubectl-get-nodes-ready.json")).values())
    assert kind_cli.parse_nodes_ready("The connection to the server was refused") == {}
    for bad in ("cks-lab-control-plane", "--privileged", ""):
        with pytest.raises(LabError, match="not a docker container ID"):
            kind_cli.docker_start_argv(bad)


# --- the host side of the mounts exists before kind runs ------------------------------------


@pytest.mark.parametrize(
    "template", sorted(kind_configs_dir().glob("*.yaml")), ids=lambda p: p.name
)
def test_every_file_kubeadm_mounts_exists_when_kind_starts(template: Path) -> None:
    fake, h = FakeKind(), cluster_handle()
    seen: dict[str, bool] = {}
    real = fake.run

    def run(argv, **kw):  # type: ignore[no-untyped-def]
        if list(argv[:3]) == ["kind", "create", "cluster"]:
            for node_path, host in file_volumes(h.config_file.read_text()):
                assert host is not None, f"{node_path} is not mounted from the cluster folder"
                seen[node_path] = Path(host).is_file()
        return real(argv, **kw)

    fake.run = run  # type: ignore[method-assign]
    assert cluster.up(h, template, Events(), runner=fake).ready
    assert all(seen.values()), seen
    policy = h.audit_policy_dir / "policy.yaml"
    if template == AUDIT_ENABLED:
        assert seen == {"/etc/kubernetes/audit/policy.yaml": True}
        data = parse_one(policy.read_text(), "policy").data
        assert (data["apiVersion"], data["kind"], data["rules"]) == (
            "audit.k8s.io/v1",
            "Policy",
            [{"level": "Metadata"}],
        )
    elif template == AUDIT:  # auditing off: switching it on, policy included, is the scenario's
        assert seen == {} and not policy.exists()


def test_a_policy_already_there_is_kept() -> None:
    fake, h = FakeKind(), cluster_handle()
    h.audit_policy_dir.mkdir(parents=True)
    own = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: RequestResponse\n"
    (h.audit_policy_dir / "policy.yaml").write_text(own)
    cluster.up(h, AUDIT_ENABLED, Events(), runner=fake)
    assert (h.audit_policy_dir / "policy.yaml").read_text() == own


# --- AppArmor: the host's securityfs only when the Docker daemon has AppArmor ---------------


def _security_mounts(h: cluster.ClusterHandle) -> list[int]:
    cfg = parse_one(h.config_file.read_text(), "cfg").data
    return [
        i
        for i, node in enumerate(cfg["nodes"])
        for m in node.get("extraMounts", [])
        if m["containerPath"] == "/sys/kernel/security"
    ]


def test_without_docker_apparmor_no_node_gets_the_hosts_securityfs() -> None:
    fake, h = FakeKind(), cluster_handle()
    fake.apparmor = False
    assert cluster.cluster_has_apparmor(h) is None  # no cluster yet
    st = cluster.up(h, AUDIT_ENABLED, Events(), runner=fake)
    assert st.ready
    assert fake.commands("docker", "info") == [
        ["docker", "info", "--format", "{{json .SecurityOptions}}"]
    ]
    text = h.config_file.read_text()
    assert _security_mounts(h) == [] and "/sys/kernel/security" not in text.split("\n", 2)[2]
    assert check_config(text) == []
    cfg = parse_one(text, "cfg").data
    # the rest is what the template says: audit folders, the worker, the API server flags
    assert [m["containerPath"] for m in cfg["nodes"][0]["extraMounts"]] == [
        "/etc/kubernetes/audit",
        "/var/log/kubernetes/audit",
    ]
    assert "extraMounts" not in cfg["nodes"][1]
    assert "audit-policy-file" in cfg["nodes"][0]["kubeadmConfigPatches"][0]
    assert cluster.read_state(h)["apparmor"] is False
    assert cluster.cluster_has_apparmor(h) is False


def test_with_docker_apparmor_every_node_gets_it_and_a_change_is_a_new_config() -> None:
    fake, h = FakeKind(), cluster_handle()
    fake.apparmor = False
    first = cluster.up(h, AUDIT, Events(), runner=fake)
    fake.apparmor = True  # AppArmor switched on in the daemon since
    with pytest.raises(ConfigChanged, match="cks-lab up --recreate"):
        cluster.up(h, AUDIT, Events(), runner=fake)
    assert not fake.commands("kind", "delete")
    st = cluster.up(h, AUDIT, Events(), runner=fake, recreate=True)
    assert st.config_digest != first.config_digest
    assert _security_mounts(h) == [0, 1]
    assert cluster.cluster_has_apparmor(h) is True


# --- cancel, the lock, kind's provider ---------------------------------------------------------


def test_cancel_while_up_deletes_stops_before_creating() -> None:
    fake, h = FakeKind(), cluster_handle()
    fake.cancel_after = 5
    with pytest.raises(ClusterCancelled):
        cluster.up(h, AUDIT, Events(), runner=fake, cancel=threading.Event())
    fake.cancel_after, fake.cancel_delete = None, True
    cancel = threading.Event()
    with pytest.raises(ClusterCancelled, match="cancelled while deleting kind cluster 'cks-lab'"):
        cluster.up(h, AUDIT, Events(), runner=fake, cancel=cancel)
    (delete,) = fake.commands("kind", "delete")
    assert len(fake.commands("kind", "create")) == 1, "no create after a cancelled delete"
    assert cluster.status(h, runner=fake).phase == "creating"  # the next `up` finishes it


@pytest.mark.skipif(sys.platform == "win32", reason="flock")
def test_status_tells_a_running_create_from_an_interrupted_one() -> None:
    import fcntl

    fake, h = FakeKind(), cluster_handle()
    fake.cancel_after = 3
    with pytest.raises(ClusterCancelled):
        cluster.up(h, AUDIT, Events(), runner=fake, cancel=threading.Event())
    with open(cluster.clusters_dir() / ".cks-lab.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another cks-lab's `up` is creating it
        st = cluster.status(h, runner=fake)
        assert st.phase == "creating"
        assert any("being created by another cks-lab" in d for d in st.detail)
        assert not any("interrupted" in d for d in st.detail)
    st = cluster.status(h, runner=fake)
    assert any("was interrupted while creating it" in d for d in st.detail)
    # looking at the lock never takes it from an `up`
    assert cluster.up(h, AUDIT, Events(), runner=fake).ready


def test_subprocess_runner_makes_kind_use_docker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_kind = tmp_path / "kind"
    fake_kind.write_text('#!/bin/sh\necho "provider=$KIND_EXPERIMENTAL_PROVIDER"\n')
    fake_kind.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("KIND_EXPERIMENTAL_PROVIDER", "podman")  # the user's own setting
    res = SubprocessRunner().run(["kind", "version"], timeout=30)
    assert res.stdout == "provider=docker\n"
    other = SubprocessRunner().run(["sh", "-c", "echo $KIND_EXPERIMENTAL_PROVIDER"], timeout=30)
    assert other.stdout == "podman\n", "only kind's environment is changed"


def test_a_missing_kubeconfig_is_broken() -> None:
    fake, h = FakeKind(), cluster_handle()
    cluster.up(h, AUDIT, Events(), runner=fake)
    h.kubeconfig.unlink()
    st = cluster.status(h, runner=fake)
    assert st.phase == "broken" and st.kubeconfig is None
    assert any("kubeconfig" in d and "missing" in d for d in st.detail)


def test_down_deletes_the_cluster_and_its_folder() -> None:
    fake, h = FakeKind(), cluster_handle()
    cluster.up(h, AUDIT, Events(), runner=fake)
    (h.audit_log_dir / "audit.log").write_text("{}\n")
    events = Events()
    cluster.down(h, events, runner=fake)
    (delete,) = fake.commands("kind", "delete")
    assert delete == [
        "kind",
        "delete",
        "cluster",
        "--name",
        "cks-lab",
        "--kubeconfig",
        str(h.kubeconfig),
    ]
    assert not h.dir.exists()
    assert cluster.status(h, runner=fake).phase == "absent"
    assert events == ["Deleting kind cluster cks-lab"]


def test_down_cleans_a_cancelled_create() -> None:
    fake, h = FakeKind(), cluster_handle()
    fake.cancel_after = 3
    with pytest.raises(ClusterCancelled):
        cluster.up(h, AUDIT, Events(), runner=fake, cancel=threading.Event())
    cluster.down(h, Events(), runner=fake)
    assert not h.dir.exists() and not fake.clusters
    st = cluster.status(h, runner=fake)
    assert st.phase == "absent" and st.detail == []


def test_down_without_kind_removes_the_folder_unless_nodes_are_left() -> None:
    fake, h = FakeKind(), cluster_handle()
    h.dir.mkdir(parents=True)
    fake.missing = {"kind"}
    cluster.down(h, Events(), runner=fake)
    assert not h.dir.exists()
    h.dir.mkdir(parents=True)
    fake.clusters["cks-lab"] = "running"
    with pytest.raises(LabError, match="kind is not installed, and node containers"):
        cluster.down(h, Events(), runner=fake)
    assert h.dir.exists()


def test_down_without_kind_or_a_docker_daemon_removes_nothing() -> None:
    # nobody can say whether node containers are left: the folder (kubeconfig, the
    # learner's audit policy) stays until someone can
    fake, h = FakeKind(), cluster_handle()
    h.dir.mkdir(parents=True)
    fake.missing, fake.docker_down = {"kind"}, True
    with pytest.raises(LabError, match="nothing was removed"):
        cluster.down(h, Events(), runner=fake)
    assert h.dir.exists()
    fake.missing = {"kind", "docker"}  # neither installed: no container can exist
    cluster.down(h, Events(), runner=fake)
    assert not h.dir.exists()


def test_down_refuses_a_folder_that_is_not_the_labs(tmp_path: Path) -> None:
    elsewhere = tmp_path / "precious"
    elsewhere.mkdir()
    fake = FakeKind()
    with pytest.raises(LabError, match="refusing to remove"):
        cluster.down(cluster.ClusterHandle("cks-lab", elsewhere), Events(), runner=fake)
    assert elsewhere.exists() and fake.calls == []


def test_status_and_up_without_kind_say_so() -> None:
    fake, h = FakeKind(), cluster_handle()
    fake.missing = {"kind"}
    st = cluster.status(h, runner=fake)
    assert st.phase == "absent" and st.missing == ["kind"]
    assert any("kind not found on PATH" in d for d in st.detail)
    with pytest.raises(CommandNotFound, match="cks-lab doctor"):
        cluster.up(h, AUDIT, Events(), runner=fake)
    assert not fake.commands("kind", "create")


def test_up_stops_when_docker_does_not_answer() -> None:
    fake, h = FakeKind(), cluster_handle()
    down = (
        "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
        "Is the docker daemon running?\n"
    )
    real = fake.run

    def run(argv, **kw):  # type: ignore[no-untyped-def]
        if argv[0] == "docker":
            fake.calls.append(list(argv))
            return CommandResult(1, "", down)
        return real(argv, **kw)

    fake.run = run  # type: ignore[method-assign]
    st = cluster.status(h, runner=fake)
    assert st.phase == "unknown" and st.errors == [f"`docker ps` failed: {down.strip()}"]
    with pytest.raises(LabError, match=r"cannot see kind cluster 'cks-lab': `docker ps` failed"):
        cluster.up(h, AUDIT, Events(), runner=fake)
    assert not fake.commands("kind", "create")


HUNG_KIND = CommandTimeout("`kind get clusters` did not finish within 30 s")
HUNG_DOCKER = CommandTimeout("`docker ps --all` did not finish within 30 s")
BAD_BINARY = OSError(8, "Exec format error")


@pytest.mark.parametrize(
    ("prefix", "error", "said"),
    [
        (("kind", "get"), HUNG_KIND, "`kind get clusters` did not finish within 30 s"),
        (("kind", "get"), BAD_BINARY, "`kind get clusters` cannot be run: Exec format error"),
        (("docker", "ps"), HUNG_DOCKER, "`docker ps --all` did not finish within 30 s"),
        (("docker", "ps"), BAD_BINARY, "`docker ps` cannot be run: Exec format error"),
    ],
)
def test_a_hung_or_unrunnable_kind_or_docker_makes_the_phase_unknown(
    prefix: tuple[str, ...], error: Exception, said: str
) -> None:
    fake, h = FakeKind(), cluster_handle()
    assert cluster.up(h, AUDIT, Events(), runner=fake).ready
    fake.raises[prefix] = error
    st = cluster.status(h, runner=fake)  # neither raises nor guesses
    assert (st.phase, st.ready) == ("unknown", False)
    assert st.errors == [said] and said in st.detail
    assert not any("kind lists it" in d or "last `cks-lab up`" in d for d in st.detail)
    with pytest.raises(LabError, match="nothing was changed"):
        cluster.up(h, AUDIT, Events(), runner=fake)
    # a healthy cluster seen through a failing tool is never deleted (nor recreated)
    assert not fake.commands("kind", "delete") and len(fake.commands("kind", "create")) == 1
    del fake.raises[prefix]
    assert cluster.status(h, runner=fake).phase == "ready"


def test_a_down_docker_daemon_is_unknown_not_broken() -> None:
    # kind answers from its own state, docker cannot list the nodes: before, the
    # empty `docker ps` made this "broken" with a note that was not true
    fake, h = FakeKind(), cluster_handle()
    assert cluster.up(h, AUDIT, Events(), runner=fake).ready
    fake.docker_down = True
    st = cluster.status(h, runner=fake)
    assert st.phase == "unknown" and st.exists
    assert not any("docker shows no node containers" in d for d in st.detail)
    assert any("Cannot connect to the Docker daemon" in d for d in st.detail)
    with pytest.raises(LabError, match="cannot see kind cluster"):
        cluster.up(h, AUDIT, Events(), runner=fake, recreate=True)
    assert not fake.commands("kind", "delete")


def test_unknown_is_a_phase() -> None:
    assert "unknown" in cluster.PHASES


@pytest.mark.skipif(sys.platform == "win32", reason="flock")
def test_one_up_or_down_at_a_time() -> None:
    import fcntl

    fake, h = FakeKind(), cluster_handle()
    cluster.clusters_dir().mkdir(parents=True)
    with open(cluster.clusters_dir() / ".cks-lab.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a running `cks-lab up` in the TUI holds it
        for work in (
            lambda: cluster.up(h, AUDIT, Events(), runner=fake),
            lambda: cluster.down(h, Events(), runner=fake),
        ):
            with pytest.raises(LabError, match="another `cks-lab up` or `down` is working"):
                work()
        assert fake.calls == []
        other = cluster_handle("cks-lab-other")  # another cluster has its own lock
        assert cluster.up(other, AUDIT, Events(), runner=fake).ready
    assert cluster.up(h, AUDIT, Events(), runner=fake).ready  # released: it goes ahead


def test_status_json_shape() -> None:
    fake, h = FakeKind(), cluster_handle()
    cluster.up(h, AUDIT, Events(), runner=fake)
    data = cluster.status(h, runner=fake).to_json()
    assert data["phase"] == "ready" and data["kubeconfig"] == str(h.kubeconfig)
    assert [(n["name"], n["role"], n["state"]) for n in data["nodes"]] == [
        ("cks-lab-control-plane", "control-plane", "running"),
        ("cks-lab-worker", "worker", "running"),
    ]
    json.dumps(data)


def test_known_clusters_are_the_lab_folders_with_lab_names() -> None:
    assert cluster.known_clusters() == []
    cluster_handle("cks-lab-two").dir.mkdir(parents=True)
    (cluster.clusters_dir() / "not-a-lab-name").mkdir()
    assert [h.name for h in cluster.known_clusters()] == ["cks-lab-two"]


# --- the real runner ------------------------------------------------------------------


def test_subprocess_runner_streams_lines_from_both_streams() -> None:
    seen: list[str] = []
    code = (
        "import sys; print('out1', flush=True); "
        "print('err1', file=sys.stderr, flush=True); sys.exit(3)"
    )
    res = SubprocessRunner().run([sys.executable, "-c", code], on_line=seen.append, timeout=30)
    assert res.code == 3 and not res.cancelled
    assert sorted(seen) == ["err1", "out1"]
    assert res.stdout == "out1\n" and res.stderr == "err1\n"


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1].startswith("Z")  # a zombie is dead
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to see the child's fate")
def test_subprocess_runner_cancel_kills_the_whole_process_group() -> None:
    cancel = threading.Event()
    pids: list[int] = []

    def on_line(line: str) -> None:
        pids.append(int(line))
        cancel.set()

    started = time.monotonic()
    res = SubprocessRunner().run(
        ["sh", "-c", "sleep 60 & echo $!; wait"], on_line=on_line, cancel=cancel, timeout=30
    )
    assert res.cancelled and time.monotonic() - started < 10
    deadline = time.monotonic() + 5
    while not _gone(pids[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(pids[0]), "kind's children (docker commands) die with it"


def test_subprocess_runner_timeout_and_missing_program() -> None:
    with pytest.raises(CommandTimeout, match="did not finish within 1 s"):
        SubprocessRunner().run(["sleep", "30"], timeout=1)
    with pytest.raises(CommandNotFound, match="no-such-kind-binary not found on PATH"):
        SubprocessRunner().run(["no-such-kind-binary", "version"])


def test_subprocess_runner_ctrl_c_kills_the_child() -> None:
    # Ctrl-C arrives in the caller while the command runs: the child must not outlive it
    code = (
        "import _thread, threading, sys\n"
        "from lab.kind.runner import SubprocessRunner\n"
        "pids = []\n"
        "def on_line(l):\n"
        "    pids.append(int(l)); threading.Timer(0.2, _thread.interrupt_main).start()\n"
        "try:\n"
        "    SubprocessRunner().run(['sh', '-c', 'sleep 60 & echo $!; wait'], on_line=on_line)\n"
        "except KeyboardInterrupt:\n"
        "    print(pids[0])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, env=os.environ
    )
    pid = int(out.stdout.strip())
    deadline = time.monotonic() + 5
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(pid)


# a runner in the main thread of its own process; the child prints the pid of the
# `sleep` kind would have started, then the process signals itself
_SIGNALLED = """
import os, signal, sys
from lab.kind.runner import SubprocessRunner
sig = getattr(signal, sys.argv[1])
def on_line(line):
    print(line, flush=True)
    os.kill(os.getpid(), sig)  # as the closing terminal or `kill` would
SubprocessRunner().run(["sh", "-c", "sleep 60 & echo $!; wait"], on_line=on_line, timeout=30)
print("not ended by the signal", flush=True)
"""


def _kill_if_left(pid: int) -> None:
    try:
        os.kill(pid, 9)  # the test's own `sleep`, should the runner have left it
    except ProcessLookupError:
        pass


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to see the child's fate")
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])
def test_subprocess_runner_sigterm_or_sighup_kills_the_child_and_ends_as_the_signal(
    sig: str,
) -> None:
    import signal

    out = subprocess.run(
        [sys.executable, "-c", _SIGNALLED, sig],
        capture_output=True,
        text=True,
        timeout=30,
        env=os.environ,
    )
    pid = int(out.stdout.split()[0])
    try:
        deadline = time.monotonic() + 5
        while not _gone(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _gone(pid), f"kind's children die with cks-lab on {sig}"
        assert out.returncode == -getattr(signal, sig), out.stderr  # ended as the signal would
        assert "not ended by the signal" not in out.stdout
    finally:
        _kill_if_left(pid)


def test_subprocess_runner_puts_the_signal_handlers_back() -> None:
    import signal

    def mine(signum: int, frame: object) -> None:
        raise AssertionError("not delivered in this test")

    before = signal.signal(signal.SIGTERM, mine)
    try:
        SubprocessRunner().run(["true"], timeout=30)
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, before)


def test_signals_outside_the_main_thread_are_left_to_cancel() -> None:
    import signal

    from lab.kind.runner import on_termination

    seen: list[object] = []

    def worker() -> None:
        with on_termination(lambda s: None):
            seen.append(signal.getsignal(signal.SIGTERM))  # unchanged, and no error

    before = signal.getsignal(signal.SIGTERM)
    t = threading.Thread(target=worker)
    t.start()
    t.join(10)
    assert seen == [before]
