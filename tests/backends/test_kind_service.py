"""The service on a kind workspace: start/resume on a cluster that holds one scenario at
a time, and the learner's node work (solutions, node exec, shell) going to the nodes."""

from __future__ import annotations

from pathlib import Path

import pytest
from kind_fakes import FakeClock, FakeKube, FakeNodes, sample
from test_kind_backend import MANIFEST, T0

from lab import service
from lab.backends.kind import KindBackend
from lab.errors import LabError
from lab.kind.cluster import ClusterHandle
from lab.scenarios.catalog import Catalog

REPO = Path(__file__).parents[2]


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[KindBackend, FakeNodes]:
    nodes = FakeNodes(
        files={"controlplane": {MANIFEST: b"apiVersion: v1\nkind: Pod\n"}, "worker": {}},
        crictl_ps=sample("crictl-ps-apiserver-restarted.json"),
    )
    cluster = ClusterHandle("cks-lab", tmp_path / "cluster")
    cluster.dir.mkdir()
    (cluster.dir / "state.json").write_text('{"name": "cks-lab", "phase": "ready"}')
    backend = KindBackend(
        cluster, nodes, FakeKube(), FakeClock(T0), sleep=lambda s: None,
        falco_grace=0, audit_grace=0, settle_timeout=0, pods_timeout=0,
    )  # fmt: skip
    real = service.backend_for

    def backend_for(name: str = "sim", cluster: str | None = None) -> object:
        if name == "kind":
            assert cluster == "cks-lab"
            return backend
        return real(name, cluster)

    monkeypatch.setattr(service, "backend_for", backend_for)
    return backend, nodes


def catalog() -> Catalog:
    return Catalog([REPO / "scenarios"])


def test_start_on_kind_prepares_once_and_resumes_while_the_cluster_holds_it(
    lab: tuple[KindBackend, FakeNodes],
) -> None:
    backend, nodes = lab
    op, created = service.start(catalog(), "apparmor-deny-write", backend="kind")
    assert created and op.ws.state()["cluster"] == "cks-lab"
    assert "workspaces-kind" in str(op.ws.root)  # apart from the sim's workspace
    assert backend.holds(op.ws)
    setup = len(nodes.calls)
    op2, created2 = service.start(catalog(), "apparmor-deny-write", backend="kind")
    assert not created2 and op2.ws.root == op.ws.root
    assert len(nodes.calls) == setup  # resumed: nothing done on the nodes

    other, _ = service.start(catalog(), "audit-enable-logging", backend="kind")
    assert backend.holds(other.ws) and not backend.holds(op.ws)
    service.start(catalog(), "apparmor-deny-write", backend="kind")  # set up again
    assert backend.holds(op.ws)


def test_a_sim_workspace_is_not_resumed_on_kind(lab: tuple[KindBackend, FakeNodes]) -> None:
    op, _ = service.start(catalog(), "apparmor-deny-write")  # sim
    with pytest.raises(LabError, match="runs on the sim backend, not kind"):
        service.start(catalog(), "apparmor-deny-write", workspace=op.ws.root, backend="kind")


def test_solution_node_exec_and_shell_go_to_the_nodes(lab: tuple[KindBackend, FakeNodes]) -> None:
    backend, nodes = lab
    op, _ = service.start(catalog(), "apparmor-deny-write", backend="kind")
    service.show_solution(op, apply=True)
    profile = nodes.files["worker"]["/etc/apparmor.d/k8s-deny-write"]
    assert b"k8s-deny-write" in profile
    assert not (op.ws.root / "nodes" / "worker" / "etc").exists()  # not into the folder
    assert ["apparmor_parser", "-r", "/etc/apparmor.d/k8s-deny-write"] in nodes.commands("worker")

    res = service.node_exec(op, "worker", ["aa-status"])
    assert res.code == 0 and ["aa-status"] in nodes.commands("worker")
    with pytest.raises(LabError, match="no node 'db'"):
        service.node_exec(op, "db", ["true"])

    sh = service.shell_command(op, "controlplane")
    assert sh.argv == ["docker", "exec", "-it", "cks-lab-controlplane", "bash"]
    assert sh.env["CKS_LAB_WORKSPACE"] == str(op.ws.root.resolve())
    with pytest.raises(LabError, match="on kind your files are on the nodes"):
        service.learner_diff(op)


def test_the_kind_backend_is_offered_once_up_has_made_the_cluster() -> None:
    from lab.fsutil import atomic_write_json
    from lab.kind.cluster import cluster_handle

    kind = {b.name: b for b in service.backend_status()}["kind"]
    assert not kind.available and "cks-lab up" in kind.detail
    handle = cluster_handle("cks-lab")
    atomic_write_json(handle.state_file, {"name": "cks-lab", "phase": "creating"})
    kind = {b.name: b for b in service.backend_status()}["kind"]
    assert not kind.available and "making the cluster" in kind.detail
    atomic_write_json(handle.state_file, {"name": "cks-lab", "phase": "ready"})
    kind = {b.name: b for b in service.backend_status()}["kind"]
    assert kind.available


def test_a_kind_reset_keeps_its_backup_as_a_snapshot_not_an_empty_folder_backup(
    lab: tuple[KindBackend, FakeNodes],
) -> None:
    op, _ = service.start(catalog(), "apparmor-deny-write", backend="kind")
    backup = service.reset(op)
    assert backup is not None and backup.parent == service.backup_dir(op.ws)
    assert service.backup_dir(op.ws).name == "kind-saved"
    assert not (op.ws.lab_dir / "backups").exists()  # the node trees hold nothing on kind
    sim, _ = service.start(catalog(), "apparmor-deny-write")
    assert service.backup_dir(sim.ws) == sim.ws.lab_dir / "backups"


def test_work_on_a_scenario_the_cluster_no_longer_holds_is_refused(
    lab: tuple[KindBackend, FakeNodes],
) -> None:
    # `up --scenario B` while the TUI still shows A: a check of A would attack B's
    # cluster, and its solution would land on B's nodes
    backend, nodes = lab
    a, _ = service.start(catalog(), "apparmor-deny-write", backend="kind")
    service.start(catalog(), "audit-enable-logging", backend="kind")
    before = list(nodes.calls)
    for what, call in [
        ("check it", lambda: service.check(a)),
        ("run a command on its nodes", lambda: service.node_exec(a, "worker", ["aa-status"])),
        ("apply the solution", lambda: service.show_solution(a, apply=True)),
        ("open a shell on its nodes", lambda: service.shell_command(a, "worker")),
    ]:
        with pytest.raises(LabError, match=f"cannot {what}: the kind cluster now holds "
                           "scenario 'audit-enable-logging'"):  # fmt: skip
            call()
    assert nodes.calls == before  # nothing ran on the nodes
    assert not service.status(a).attempts  # and no failed attempt was recorded


def test_applying_a_solution_on_kind_saves_the_learners_node_files_first(
    lab: tuple[KindBackend, FakeNodes],
) -> None:
    backend, nodes = lab
    op, _ = service.start(catalog(), "apparmor-deny-write", backend="kind")
    mine = b"apiVersion: v1\nkind: Pod\n# my edit\n"
    nodes.files["controlplane"]["/root/hello-apparmor.yaml"] = mine
    service.show_solution(op, apply=True)
    saved = sorted(service.backup_dir(op.ws).iterdir())
    assert saved, "a snapshot was taken before the solution was written"
    kept = saved[-1] / "controlplane" / "root" / "hello-apparmor.yaml"
    assert kept.read_bytes() == mine
