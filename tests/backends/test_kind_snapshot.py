"""The learner's node work on a kind cluster that holds one scenario at a time: saved
before every reset, put back when the learner goes back to the scenario, kept as a
backup (never put back) after a reset. Fake nodes (kind_fakes.py), bundled scenarios."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from kind_fakes import FakeClock, FakeKube, FakeNodes, sample
from test_kind_backend import MANIFEST, T0

from lab import service
from lab.backends.kind import KindBackend, snapshot
from lab.backends.kind import reset as lab_reset
from lab.errors import LabError
from lab.kind.cluster import ClusterHandle
from lab.kind.config import render_config
from lab.paths import kind_configs_dir
from lab.scenarios.catalog import Catalog

REPO = Path(__file__).parents[2]
POLICY = "/etc/kubernetes/audit/policy.yaml"
LOG = "/var/log/kubernetes/audit/audit.log"
RULES = "/etc/falco/falco_rules.local.yaml"
PROFILE = "/etc/apparmor.d/k8s-deny-write"
KERNEL = "/sys/kernel/security/apparmor/profiles"
KUBEADM = b"apiVersion: v1\nkind: Pod\n# kubeadm's manifest\n"


def catalog() -> Catalog:
    return Catalog([REPO / "scenarios"])


def cluster_handle(tmp_path: Path) -> ClusterHandle:
    """A cluster folder as `cks-lab up` leaves it: the rendered kind config included."""
    cluster = ClusterHandle("cks-lab", tmp_path / "cluster")
    cluster.dir.mkdir()
    text = render_config(kind_configs_dir() / "audit.yaml", cluster.dir, "cks-lab")
    cluster.config_file.write_text(text, encoding="utf-8")
    return cluster


def fresh_nodes() -> FakeNodes:
    return FakeNodes(
        files={
            "controlplane": {MANIFEST: KUBEADM},
            "worker": {"/etc/apparmor.d/usr.sbin.shipped": b"profile shipped {}\n"},
        },
        dirs={"controlplane": {"/etc/kubernetes/audit", "/var/log/kubernetes/audit"}},
        crictl_ps=sample("crictl-ps-apiserver-restarted.json"),
    )


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[KindBackend, FakeNodes, FakeKube]:
    nodes, kube = fresh_nodes(), FakeKube()
    backend = KindBackend(
        cluster_handle(tmp_path), nodes, kube, FakeClock(T0), sleep=lambda s: None,
        falco_grace=0, audit_grace=0, settle_timeout=0, pods_timeout=0,
    )  # fmt: skip
    real = service.backend_for

    def backend_for(name: str = "sim", cluster: str | None = None) -> object:
        return backend if name == "kind" else real(name, cluster)

    monkeypatch.setattr(service, "backend_for", backend_for)
    return backend, nodes, kube


def start(scenario_id: str, **kw: object) -> service.Opened:
    op, _ = service.start(catalog(), scenario_id, backend="kind", **kw)  # type: ignore[arg-type]
    return op


def index(snap: Path) -> dict:
    return json.loads((snap / "MANIFEST.json").read_text(encoding="utf-8"))


def saved(snap: Path, node: str, path: str) -> bytes:
    return (snap / node / path.lstrip("/")).read_bytes()


# --- a scenario switch saves, going back restores ---------------------------------------------


def test_switching_back_brings_the_learners_rules_manifest_and_policy_back(
    lab: tuple[KindBackend, FakeNodes, FakeKube],
) -> None:
    backend, nodes, _ = lab
    cp, worker = nodes.files["controlplane"], nodes.files["worker"]

    falco = start("falco-shell-alert")
    my_rules = b"- rule: my shell rule\n  condition: spawned_process and shell_procs\n"
    worker[RULES] = my_rules

    audit = start("audit-enable-logging")  # the cluster now holds the audit scenario
    assert backend.holds(audit.ws) and not backend.holds(falco.ws)
    assert RULES not in worker  # the reset took it off the node...
    (snap,) = snapshot.workspace_snapshots(falco.ws.root)
    assert saved(snap, "worker", RULES) == my_rules  # ...after saving it in falco's workspace
    assert index(snap)["reason"] == "switch" and index(snap)["scenario"] == "falco-shell-alert"

    setup_manifest = cp[MANIFEST]
    my_manifest = setup_manifest.replace(
        b"    - kube-apiserver\n",
        b"    - kube-apiserver\n    - --audit-policy-file=/etc/kubernetes/audit/policy.yaml\n",
    )
    assert my_manifest != setup_manifest
    my_policy = b"apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"
    cp[MANIFEST], cp[POLICY] = my_manifest, my_policy
    cp[LOG] = b'{"kind":"Event","userAgent":"kubectl (run=0badc0de; step=old)"}\n'
    cp["/etc/kubernetes/audit/extra-notes.txt"] = b"my notes\n"

    start("falco-shell-alert")  # back to falco: its rules come back
    assert worker[RULES] == my_rules
    assert backend.holds(falco.ws)
    (audit_snap,) = snapshot.workspace_snapshots(audit.ws.root)
    assert saved(audit_snap, "controlplane", MANIFEST) == my_manifest
    assert saved(audit_snap, "controlplane", POLICY) == my_policy
    assert saved(audit_snap, "controlplane", "/etc/kubernetes/audit/extra-notes.txt")
    # the audit folders carry nothing of the audit scenario into falco's
    assert POLICY not in cp and "/etc/kubernetes/audit/extra-notes.txt" not in cp
    assert cp[LOG] == b""  # emptied, not removed: an apiserver may hold it open
    skipped = {s["path"]: s["why"] for s in index(audit_snap)["skipped"]}
    assert "audit log" in skipped[LOG]
    assert not (audit_snap / "controlplane" / LOG.lstrip("/")).exists()
    assert cp[MANIFEST] == KUBEADM  # falco's setup runs on the pristine manifest

    start("audit-enable-logging")  # and back to audit: manifest and policy come back
    assert cp[MANIFEST] == my_manifest
    assert cp[POLICY] == my_policy
    assert cp["/etc/kubernetes/audit/extra-notes.txt"] == b"my notes\n"
    assert RULES not in worker
    # falco's rules were saved again on the way: two snapshots, the newest current
    falco_snaps = snapshot.workspace_snapshots(falco.ws.root)
    assert len(falco_snaps) == 2 and saved(falco_snaps[-1], "worker", RULES) == my_rules


def test_switching_back_reloads_the_learners_apparmor_profile(
    lab: tuple[KindBackend, FakeNodes, FakeKube],
) -> None:
    _, nodes, _ = lab
    worker = nodes.files["worker"]
    op = start("apparmor-deny-write")
    my_profile = b"#include <tunables/global>\nprofile k8s-deny-write flags=(attach_disconnected) {\n  deny /** w,\n}\n"  # noqa: E501
    worker[PROFILE] = my_profile
    nodes.aa_names[PROFILE] = ["k8s-deny-write"]
    worker[KERNEL] = b"k8s-deny-write (enforce)\nshipped (enforce)\n"

    start("audit-enable-logging")
    assert PROFILE not in worker
    assert ["apparmor_parser", "-R", PROFILE] in nodes.commands("worker")
    (snap,) = snapshot.workspace_snapshots(op.ws.root)
    entry = next(e for e in index(snap)["files"] if e["path"] == PROFILE)
    assert entry["loaded"] is True and entry["node"] == "worker"
    # the shipped profile is the node's own: not the learner's, not saved
    assert all(e["path"] != "/etc/apparmor.d/usr.sbin.shipped" for e in index(snap)["files"])

    worker[KERNEL] = b"shipped (enforce)\n"  # the reset unloaded it
    before = len(nodes.calls)
    start("apparmor-deny-write")
    assert worker[PROFILE] == my_profile
    assert ["apparmor_parser", "-r", PROFILE] in [a for n, a in nodes.calls[before:]]


def test_a_refused_snapshot_is_reported_and_kept(
    lab: tuple[KindBackend, FakeNodes, FakeKube],
) -> None:
    _, nodes, _ = lab
    op = start("falco-shell-alert")
    nodes.files["worker"][RULES] = b"- rule: mine\n"
    start("audit-enable-logging")
    (snap,) = snapshot.workspace_snapshots(op.ws.root)
    target = snap / "worker" / RULES.lstrip("/")
    target.unlink()
    target.symlink_to("/etc/passwd")
    events: list[object] = []
    service.start(catalog(), "falco-shell-alert", backend="kind", progress=events.append)
    assert nodes.files["worker"][RULES] != b"- rule: mine\n"  # the setup's, not /etc/passwd
    said = " ".join(str(e) for e in events)
    assert "were not put back" in said and str(snap) in said
    assert target.is_symlink()  # the snapshot stays for the learner to look at


# --- a reset: the snapshot is the backup, never put back --------------------------------------


def test_reset_saves_a_backup_and_does_not_restore_it(
    lab: tuple[KindBackend, FakeNodes, FakeKube],
) -> None:
    _, nodes, _ = lab
    cp = nodes.files["controlplane"]
    op = start("audit-enable-logging")
    setup_manifest, setup_policy = cp[MANIFEST], cp[POLICY]
    cp[MANIFEST] = setup_manifest + b"# my broken edit\n"
    cp[POLICY] = b"my policy\n"

    backup = service.reset(op)
    assert backup is not None and backup.parent == op.ws.lab_dir / "kind-saved"
    assert index(backup)["reason"] == "reset"
    assert saved(backup, "controlplane", MANIFEST) == setup_manifest + b"# my broken edit\n"
    assert saved(backup, "controlplane", POLICY) == b"my policy\n"
    assert cp[MANIFEST] == setup_manifest and cp[POLICY] == setup_policy

    start("audit-enable-logging")  # resumed: still the reset state
    assert cp[MANIFEST] == setup_manifest

    # start --fresh is a reset too; and an interrupted reset is finished, not undone
    cp[POLICY] = b"second try\n"
    start("audit-enable-logging", fresh=True)
    assert cp[POLICY] == setup_policy
    op.ws.update_state(prepared=False)
    start("audit-enable-logging")
    assert cp[POLICY] == setup_policy


def test_the_cli_reset_says_where_the_backup_is(
    lab: tuple[KindBackend, FakeNodes, FakeKube],
) -> None:
    from click.testing import CliRunner

    from lab.cli import main

    op = start("audit-enable-logging")
    result = CliRunner().invoke(main, ["reset", "--yes", "--workspace", str(op.ws.root)])
    assert result.exit_code == 0, result.output
    (snap,) = snapshot.workspace_snapshots(op.ws.root)
    assert f"Your previous files are in {snap}" in result.output.replace("\n", "")


def test_the_last_five_snapshots_are_kept(lab: tuple[KindBackend, FakeNodes, FakeKube]) -> None:
    _, nodes, _ = lab
    op = start("audit-enable-logging")
    made = []
    for i in range(7):
        nodes.files["controlplane"][POLICY] = f"try {i}\n".encode()
        made.append(service.reset(op))
    kept = snapshot.workspace_snapshots(op.ws.root)
    assert kept == made[-5:]
    assert saved(kept[-1], "controlplane", POLICY) == b"try 6\n"


def test_an_unfinished_setup_saves_under_the_cluster_folder(
    lab: tuple[KindBackend, FakeNodes, FakeKube],
) -> None:
    backend, nodes, _ = lab
    op = start("falco-shell-alert")
    nodes.files["worker"][RULES] = b"- rule: mine\n"
    state = lab_reset.load_state(backend.cluster.dir)
    state.workspace = None  # as a setup that never finished leaves it
    lab_reset.save_state(backend.cluster.dir, state)
    start("audit-enable-logging")
    assert snapshot.workspace_snapshots(op.ws.root) == []
    (snap,) = snapshot.snapshots(backend.cluster.dir / "saved")
    assert saved(snap, "worker", RULES) == b"- rule: mine\n"
    assert index(snap)["reason"] == "unfinished"


# --- what is saved, what is not ------------------------------------------------------------


def _state(**kw: object) -> lab_reset.LabState:
    return lab_reset.LabState(scenario="falco-shell-alert", **kw)  # type: ignore[arg-type]


NAMES = {"controlplane": "cks-lab-control-plane", "worker": "cks-lab-worker"}


def test_large_files_and_logs_are_listed_not_saved(tmp_path: Path) -> None:
    nodes = fresh_nodes()
    big = b"x" * ((1 << 20) + 1)
    nodes.files["worker"]["/etc/falco/falco_rules.yaml"] = big
    nodes.files["worker"][RULES] = b"- rule: mine\n"
    nodes.files["controlplane"][LOG] = b"{}\n" * 10
    nodes.files["controlplane"][POLICY] = b"kind: Policy\n"
    state = _state(files=[["cks-lab-worker", "/etc/falco/falco_rules.yaml"],
                          ["cks-lab-worker", RULES]])  # fmt: skip
    folders = [snapshot.LabFolder("/etc/kubernetes/audit", False),
               snapshot.LabFolder("/var/log/kubernetes/audit", True)]  # fmt: skip
    dest = tmp_path / "snap"
    dest.mkdir()
    idx = snapshot.save_learner_files(nodes, state, NAMES, "controlplane", dest, folders=folders)
    skipped = {s["path"]: s["why"] for s in idx["skipped"]}
    assert "larger than 1 MiB" in skipped["/etc/falco/falco_rules.yaml"]
    assert "audit log" in skipped[LOG]
    assert not (dest / "worker/etc/falco/falco_rules.yaml").exists()
    assert not (dest / "controlplane/var").exists()
    assert {(e["node"], e["path"]) for e in idx["files"]} == {
        ("worker", RULES), ("controlplane", MANIFEST), ("controlplane", POLICY),
    }  # fmt: skip
    assert json.loads((dest / "MANIFEST.json").read_text()) == idx


def test_the_lab_folders_come_from_the_rendered_kind_config(tmp_path: Path) -> None:
    cluster = cluster_handle(tmp_path)
    assert snapshot.lab_folders(cluster.dir) == [
        snapshot.LabFolder("/etc/kubernetes/audit", False),
        snapshot.LabFolder("/var/log/kubernetes/audit", True),
    ]
    assert snapshot.lab_folders(tmp_path / "no-cluster") == []


def test_a_file_the_pristine_manifest_names_is_not_cleared() -> None:
    nodes = fresh_nodes()
    cp = nodes.files["controlplane"]
    cp[lab_reset.PRISTINE_MANIFEST] = b"    - --audit-policy-file=" + POLICY.encode() + b"\n"
    cp[POLICY] = b"the cluster's own policy\n"
    cp["/etc/kubernetes/audit/old.yaml"] = b"an earlier scenario's\n"
    snapshot.clear_lab_folders(nodes, "controlplane",
                               [snapshot.LabFolder("/etc/kubernetes/audit", False)])  # fmt: skip
    assert cp[POLICY] == b"the cluster's own policy\n"  # kubelet needs it for the apiserver
    assert "/etc/kubernetes/audit/old.yaml" not in cp


def test_nodes_outside_the_scenario_are_untouched(tmp_path: Path) -> None:
    nodes = fresh_nodes()  # refuses any node but controlplane and worker
    nodes.files["worker"][RULES] = b"- rule: mine\n"
    state = _state(
        files=[["cks-lab-worker2", "/etc/falco/falco.yaml"], ["cks-lab-worker", RULES]],
        apparmor={"cks-lab-worker2": []},
    )
    dest = tmp_path / "snap"
    dest.mkdir()
    idx = snapshot.save_learner_files(nodes, state, NAMES, "controlplane", dest)
    away = [s for s in idx["skipped"] if s["container"] == "cks-lab-worker2"]
    assert away == [{"container": "cks-lab-worker2", "path": "/etc/falco/falco.yaml",
                     "why": "not a node of this scenario: the file stays on it"}]  # fmt: skip

    # a snapshot with worker2's file, restored where the scenario has no worker2
    (dest / "worker2/etc").mkdir(parents=True)
    (dest / "worker2/etc/x").write_bytes(b"x")
    idx["files"].append({"node": "worker2", "container": "cks-lab-worker2", "path": "/etc/x"})
    (dest / "MANIFEST.json").write_text(json.dumps(idx))
    del nodes.files["worker"][RULES]
    result = snapshot.restore_learner_files(nodes, NAMES, dest)
    assert nodes.files["worker"][RULES] == b"- rule: mine\n"
    assert "worker:" + RULES in result.files
    assert any("worker2:/etc/x: not a node of this scenario" in n for n in result.notes)


# --- restoring refuses what the lab would never write --------------------------------------


def _snapshot_of_rules(tmp_path: Path) -> tuple[FakeNodes, Path]:
    nodes = fresh_nodes()
    nodes.files["worker"][RULES] = b"- rule: mine\n"
    dest = tmp_path / "snap"
    dest.mkdir()
    snapshot.save_learner_files(
        nodes, _state(files=[["cks-lab-worker", RULES]]), NAMES, "controlplane", dest
    )
    nodes.files["worker"][RULES] = b"- rule: the setup's\n"
    return nodes, dest


@pytest.mark.parametrize(
    "path", ["/etc/falco/../../root/.ssh/authorized_keys", "../etc/x", "etc/x", "/etc//x", "/"]
)
def test_restore_refuses_paths_that_are_not_plain_absolute(tmp_path: Path, path: str) -> None:
    nodes, dest = _snapshot_of_rules(tmp_path)
    idx = index(dest)
    idx["files"].append({"node": "worker", "container": "cks-lab-worker", "path": path})
    (dest / "MANIFEST.json").write_text(json.dumps(idx))
    writes = len(nodes.calls)
    with pytest.raises(LabError, match="not restoring"):
        snapshot.restore_learner_files(nodes, NAMES, dest)
    assert nodes.files["worker"][RULES] == b"- rule: the setup's\n"  # nothing written at all
    assert len(nodes.calls) == writes


def test_restore_refuses_a_node_name_that_leaves_the_snapshot(tmp_path: Path) -> None:
    nodes, dest = _snapshot_of_rules(tmp_path)
    idx = index(dest)
    idx["files"][0]["node"] = ".."
    (dest / "MANIFEST.json").write_text(json.dumps(idx))
    with pytest.raises(LabError, match="not restoring"):
        snapshot.restore_learner_files(nodes, NAMES, dest)


@pytest.mark.parametrize("where", ["file", "folder"])
def test_restore_refuses_a_snapshot_with_a_symlink(tmp_path: Path, where: str) -> None:
    nodes, dest = _snapshot_of_rules(tmp_path)
    secret = tmp_path / "secret"
    secret.write_bytes(b"host secret\n")
    if where == "file":
        target = dest / "worker" / RULES.lstrip("/")
        target.unlink()
        target.symlink_to(secret)
    else:
        folder = dest / "worker" / "etc" / "falco"
        os.rename(folder, tmp_path / "elsewhere")
        folder.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(LabError, match="symlink"):
        snapshot.restore_learner_files(nodes, NAMES, dest)
    assert nodes.files["worker"][RULES] == b"- rule: the setup's\n"


def test_restore_keeps_a_manifest_of_an_earlier_cluster_aside(tmp_path: Path) -> None:
    nodes = fresh_nodes()
    cp = nodes.files["controlplane"]
    cp[lab_reset.PRISTINE_MANIFEST] = KUBEADM
    cp[MANIFEST] = KUBEADM + b"# mine\n"
    dest = tmp_path / "snap"
    dest.mkdir()
    snapshot.save_learner_files(nodes, _state(), NAMES, "controlplane", dest)
    # `cks-lab down` + `up`: kubeadm wrote another manifest (the node's address changed)
    cp[lab_reset.PRISTINE_MANIFEST] = cp[MANIFEST] = KUBEADM + b"# 172.18.0.9\n"
    result = snapshot.restore_learner_files(nodes, NAMES, dest)
    assert cp[MANIFEST] == KUBEADM + b"# 172.18.0.9\n"
    assert any("made again" in n for n in result.notes)
