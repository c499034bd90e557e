"""`cks-lab up` / `down` / `status` through click, with kind and docker played by the fake
runner (kindfake.py) that replays real kind output: what the learner reads, exit codes."""

from __future__ import annotations

import _thread
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner
from kindfake import FakeKind
from test_kind_availability import checks

from lab import cli_cluster, service
from lab.cli import main
from lab.errors import LabError
from lab.kind import cluster
from lab.kind.cluster_lock import lock_held
from lab.kind.cluster_state import SAVED_DIR
from lab.kind.kind_cli import NODE_IMAGE
from lab.kind.runner import CommandTimeout


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeKind:
    kind = FakeKind()
    monkeypatch.setattr(cli_cluster, "make_runner", lambda: kind)
    return kind


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    return r.exit_code, r.stdout, r.stderr


def test_up_prints_progress_to_stderr_and_the_status_to_stdout(fake: FakeKind) -> None:
    code, out, err = run("up")
    assert code == 0, err
    progress = err.splitlines()
    assert progress[0] == '[0/8] Creating cluster "cks-lab"'
    assert "[0/8] Ensuring node image (kindest/node:v1.36.1)" in progress
    assert "[1/8] Ensuring node image (kindest/node:v1.36.1) ✓" in progress
    assert "[4/8] Installing CNI" in progress
    assert "[8/8] Waiting ≤ 2m0s for control-plane = Ready ✓" in progress
    assert "… Ready after 17s" in progress
    assert progress[-1] == "… Kind cluster cks-lab is ready"
    h = cluster.cluster_handle()
    lines = out.splitlines()
    assert lines[0].startswith("cluster cks-lab: ready (created 20")
    assert lines[1] == "  node cks-lab-control-plane (control-plane): running, Up 12 minutes"
    assert lines[2] == "  node cks-lab-worker (worker): running, Up 12 minutes"
    assert lines[3] == f"  kubeconfig {h.kubeconfig}"
    (create,) = fake.commands("kind", "create", "cluster")
    assert create[create.index("--image") + 1] == NODE_IMAGE
    assert create[create.index("--kubeconfig") + 1] == str(h.kubeconfig)


def test_up_again_reuses(fake: FakeKind) -> None:
    assert run("up")[0] == 0
    code, out, err = run("up")
    assert code == 0
    assert err == "… Reusing kind cluster cks-lab: its 2 nodes are running\n"
    assert out.startswith("cluster cks-lab: ready")
    assert len(fake.commands("kind", "create")) == 1


def test_up_failure_shows_kinds_lines_and_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    kind = FakeKind("kind-create-failure.txt")
    monkeypatch.setattr(cli_cluster, "make_runner", lambda: kind)
    code, out, err = run("up")
    assert code == 2 and out == ""
    assert "[3/8] Starting control-plane failed" in err
    assert "  kind: ✗ Starting control-plane 🕹️" in err
    assert "  kind: ERROR: failed to create cluster: failed to init node with kubeadm" in err
    last = err.splitlines()[-1]
    assert last.startswith(
        "cks-lab: error: kind could not create cluster 'cks-lab': failed to init node with kubeadm"
    )


def test_up_whose_wait_timed_out_shows_the_cluster_and_starts_no_scenario(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kind = FakeKind("kind-create-wait-timeout.txt")
    monkeypatch.setattr(cli_cluster, "make_runner", lambda: kind)
    started = Started()
    monkeypatch.setattr(service, "start", started)
    monkeypatch.setattr(cli_cluster, "host_checks", lambda: checks())
    code, out, err = run("up", "--scenario", "audit-enable-logging")
    assert code == 2
    assert "[7/8] Waiting ≤ 2m0s for control-plane = Ready failed" in err.splitlines()
    assert "… WARNING: Timed out waiting for Ready" in err.splitlines()
    assert err.splitlines()[-1].startswith(
        "cks-lab: error: kind created cluster 'cks-lab' but its nodes were not Ready within 120s"
    )
    assert out.startswith("cluster cks-lab: created (created 20")
    assert "`cks-lab up` checks again" in out
    assert started == [], "no scenario on a cluster whose nodes are not Ready"
    code, out, _ = run("up")  # later: the nodes are Ready now
    assert code == 0 and out.startswith("cluster cks-lab: ready")
    assert len(kind.commands("kind", "create")) == 1


def test_up_with_another_config_needs_recreate(fake: FakeKind) -> None:
    assert run("up")[0] == 0
    code, _, err = run("up", "--config", "audit-enabled.yaml")
    assert code == 2
    assert "was created from another kind config" in err and "cks-lab up --recreate" in err
    assert not fake.commands("kind", "delete")
    code, out, err = run("up", "--config", "audit-enabled.yaml", "--recreate")
    assert code == 0, err
    assert "… Deleting kind cluster cks-lab" in err.splitlines()
    assert out.startswith("cluster cks-lab: ready")


def test_up_refuses_unknown_configs_and_names(fake: FakeKind) -> None:
    code, _, err = run("up", "--config", "nope.yaml")
    assert code == 2
    assert "no kind config 'nope.yaml'; bundled ones: audit-enabled.yaml, audit.yaml" in err
    code, _, err = run("up", "--name", "production")
    assert code == 2 and "is not a lab cluster name" in err
    assert fake.calls == []


class Started(list[dict[str, Any]]):
    """service.start as `up --scenario` calls it (the briefing is `cks-lab start`'s business)."""

    def __call__(self, catalog: Any, scenario_id: str, workspace: Path | None, **kw: Any) -> Any:
        self.append({"id": scenario_id, "workspace": workspace, **kw})
        raise LabError("stop here")


def test_up_scenario_starts_it_on_the_kind_backend(
    fake: FakeKind, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = Started()
    monkeypatch.setattr(service, "start", started)
    monkeypatch.setattr(cli_cluster, "host_checks", lambda: checks())
    code, _, err = run("up", "--name", "cks-lab-two", "--scenario", "audit-enable-logging")
    assert code == 2 and "stop here" in err
    assert len(fake.commands("kind", "create")) == 1  # the cluster first
    (call,) = started
    assert call["id"] == "audit-enable-logging" and call["workspace"] is None
    assert (call["backend"], call["cluster"]) == ("kind", "cks-lab-two")


def test_up_scenario_the_host_cannot_serve_goes_to_sim_with_the_reason(
    fake: FakeKind, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = Started()
    monkeypatch.setattr(service, "start", started)
    monkeypatch.setattr(cli_cluster, "host_checks", lambda: checks(apparmor=None))
    code, _, err = run("up", "--scenario", "apparmor-deny-write")
    assert code == 2
    assert (started[0]["backend"], started[0]["cluster"]) == ("sim", None)
    assert (
        "cks-lab: apparmor-deny-write: offered on the sim backend: AppArmor scenarios need "
        "AppArmor enabled on the host"
    ) in err


def test_a_cluster_made_without_apparmor_sends_apparmor_scenarios_to_sim(
    fake: FakeKind, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the host may have AppArmor now, but the cluster's nodes were made without
    # /sys/kernel/security (its daemon had none): they cannot load profiles
    started = Started()
    monkeypatch.setattr(service, "start", started)
    monkeypatch.setattr(cli_cluster, "host_checks", lambda: checks())
    fake.apparmor = False
    run("up", "--scenario", "apparmor-deny-write")
    assert (started[0]["backend"], started[0]["cluster"]) == ("sim", None)
    run("up", "--scenario", "falco-shell-alert")  # the others stay on kind
    assert (started[1]["backend"], started[1]["cluster"]) == ("kind", "cks-lab")


def test_down_deletes_the_cluster_and_its_folder(fake: FakeKind) -> None:
    assert run("up")[0] == 0
    h = cluster.cluster_handle()
    code, out, err = run("down", "--yes")
    assert code == 0, err
    assert out == f"Kind cluster cks-lab is gone (and its folder {h.dir}).\n"
    assert err == "… Deleting kind cluster cks-lab\n"
    (delete,) = fake.commands("kind", "delete")
    assert delete[-2:] == ["--kubeconfig", str(h.kubeconfig)]
    assert not h.dir.exists() and not fake.clusters


def test_down_first_unloads_the_labs_profiles_from_the_shared_kernel(
    fake: FakeKind, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lab.backends.kind import reset as lab_reset

    assert run("up")[0] == 0
    h = cluster.cluster_handle()
    lab_reset.save_state(h.dir, lab_reset.LabState(apparmor={"cks-lab-worker": []}))
    released: list[tuple[Path, str]] = []

    def release(cluster_dir: Path, name: str, progress: Any) -> list[str]:
        released.append((cluster_dir, name))
        assert fake.clusters, "before the nodes are deleted"
        # under `down`'s lock: no `up` can recreate the cluster while it unloads
        assert lock_held(h), "release_host_profiles runs inside the cluster's lock"
        return []

    monkeypatch.setattr(lab_reset, "release_host_profiles", release)
    assert run("down", "--yes")[0] == 0
    assert released == [(h.dir, "cks-lab")]


def test_status_cluster_json(fake: FakeKind) -> None:
    code, out, _ = run("status", "--cluster", "--json")
    assert code == 0
    (absent,) = json.loads(out)["clusters"]
    assert (absent["name"], absent["phase"], absent["nodes"]) == ("cks-lab", "absent", [])
    run("up", "--name", "cks-lab-b")
    code, out, _ = run("status", "--cluster", "--json")
    (st,) = json.loads(out)["clusters"]  # the clusters the lab made
    assert (st["name"], st["phase"], st["ready"]) == ("cks-lab-b", "ready", True)
    assert [n["role"] for n in st["nodes"]] == ["control-plane", "worker"]
    code, out, _ = run("status", "--cluster")
    assert out.splitlines()[0].startswith("cluster cks-lab-b: ready")


def test_status_json_needs_cluster(fake: FakeKind) -> None:
    # a bare --json used to mean cluster-only without saying so
    code, out, err = run("status", "--json")
    assert code == 2 and out == ""
    assert "--json goes with --cluster: `cks-lab status --cluster --json`" in err
    assert fake.calls == []


def test_status_cluster_exits_1_with_the_reason_when_docker_fails(fake: FakeKind) -> None:
    assert run("up")[0] == 0
    fake.docker_down = True
    code, out, err = run("status", "--cluster")
    assert code == 1
    assert out.splitlines()[0].startswith("cluster cks-lab: unknown")
    assert "docker shows no node containers" not in out
    assert err == (
        "cks-lab: cannot tell how kind cluster cks-lab is: `docker ps` failed: Cannot "
        "connect to the Docker daemon at unix:///var/run/docker.sock.\n"
    )
    code, out, _ = run("status", "--cluster", "--json")
    assert code == 1 and json.loads(out)["clusters"][0]["phase"] == "unknown"
    code, _, err = run("up")  # acts on nothing it cannot see
    assert code == 2 and "cannot see kind cluster 'cks-lab'" in err
    assert not fake.commands("kind", "delete")


def test_a_hung_kind_does_not_break_plain_status(fake: FakeKind) -> None:
    assert run("start", "audit-enable-logging")[0] == 0
    assert run("up")[0] == 0
    fake.raises[("kind", "get")] = CommandTimeout("`kind get clusters` did not finish within 30 s")
    code, out, err = run("status")
    assert code == 0, err
    assert "audit-enable-logging" in out and "\ncluster cks-lab: unknown (created 20" in out
    assert "  note: `kind get clusters` did not finish within 30 s" in out


def test_status_without_a_scenario_still_shows_the_cluster(fake: FakeKind) -> None:
    code, out, err = run("status")  # neither: the error alone, as before
    assert code == 2 and out == "" and "no scenario" in err
    assert run("up")[0] == 0
    code, out, err = run("status")
    assert code == 2
    assert out.startswith("cluster cks-lab: ready")
    assert err.splitlines()[-1].startswith("cks-lab: error: no scenario")


def test_down_keeps_the_learners_saved_files(
    fake: FakeKind, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lab.backends.kind import snapshot
    from lab.paths import data_dir

    # what snapshot.py writes into the cluster folder is what `down` keeps
    assert snapshot.CLUSTER_SAVED_DIR == SAVED_DIR
    assert run("up")[0] == 0
    h = cluster.cluster_handle()
    snap = h.saved_dir / "20250101T101010000000Z"
    (snap / "worker" / "etc").mkdir(parents=True)
    (snap / "worker" / "etc" / "policy.yaml").write_text("learner's work\n")
    kept = data_dir().resolve() / "kind-saved" / "cks-lab"
    # a terminal: the question says the saved files are kept, and where
    monkeypatch.setattr(
        cli_cluster, "sys", SimpleNamespace(stdin=SimpleNamespace(isatty=lambda: True))
    )
    r = CliRunner().invoke(main, ["down"], input="n\n")
    assert r.exit_code == 0 and "Nothing was deleted." in r.stdout
    assert f"Your saved files in {h.saved_dir} are kept: moved to {kept}." in r.stdout
    assert h.dir.exists() and fake.clusters
    code, out, err = run("down", "--yes")
    assert code == 0, err
    assert out.splitlines()[-1] == f"Your saved files are kept in {kept}."
    assert not h.dir.exists()
    moved = kept / snap.name / "worker" / "etc" / "policy.yaml"
    assert moved.read_text() == "learner's work\n"
    # a second cluster life, the same snapshot name: neither is lost
    assert run("up")[0] == 0
    snap.mkdir(parents=True)
    (snap / "again").write_text("2\n")
    assert run("down", "--yes")[0] == 0
    assert (kept / f"{snap.name}-1" / "again").read_text() == "2\n" and moved.is_file()


def test_status_appends_cluster_lines_only_when_the_lab_has_a_cluster(fake: FakeKind) -> None:
    assert run("start", "audit-enable-logging")[0] == 0
    code, out, _ = run("status")
    assert code == 0 and "audit-enable-logging" in out
    assert "cluster" not in out
    assert fake.calls == [], "no kind cluster: status runs neither kind nor docker"
    fake.cancel_after = 3
    code, _, err = run("up")  # cancelled: the fake sets the cancel event mid-create
    assert code == 130 and "cks-lab: cancelled while creating kind cluster 'cks-lab'" in err
    code, out, _ = run("status")
    assert code == 0
    assert "\ncluster cks-lab: creating\n" in out
    assert "note: a `cks-lab up` was interrupted while creating it" in out


def test_ctrl_c_cancels_the_work_and_waits_for_it_to_stop() -> None:
    stopped: list[str] = []

    def work(cancel: threading.Event) -> None:
        threading.Timer(0.2, _thread.interrupt_main).start()  # Ctrl-C in the main thread
        assert cancel.wait(10), "Ctrl-C sets the cancel event"
        stopped.append("kind killed")
        raise cluster.ClusterCancelled("cancelled while creating kind cluster 'cks-lab'")

    with pytest.raises(cluster.ClusterCancelled):
        cli_cluster._cancellable(work)
    assert stopped == ["kind killed"]
    assert cli_cluster._cancellable(lambda cancel: 42) == 42


def test_sigterm_during_up_stops_kind_then_ends_cks_lab() -> None:
    # `up` runs kind in a worker thread, where the runner cannot catch signals: the
    # main thread's wait turns SIGTERM into the cancel, then ends as SIGTERM would
    code = (
        "import os, signal, threading\n"
        "from lab.cli_cluster import _cancellable\n"
        "def work(cancel):\n"
        "    threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()\n"
        "    assert cancel.wait(10)\n"
        "    print('kind stopped', flush=True)\n"
        "_cancellable(work)\n"
        "print('not ended by the signal', flush=True)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, env=os.environ
    )
    assert out.stdout == "kind stopped\n", out.stderr
    assert out.returncode == -signal.SIGTERM
