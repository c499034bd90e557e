"""The kind backend's package_upgrade step (falco_upgrade.py) on falco-override-output,
against fake nodes and a fake Falco DaemonSet: the upgrade puts the package's
falco_rules.yaml on the node and restarts Falco, whose later alerts show what it
loaded; afterwards the learner's file is back byte for byte and Falco runs on it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kind_fakes import FakeClock, FakeKube, FakeNodes, running_pod

from lab.backends.kind import KindBackend
from lab.backends.kind.falco_upgrade import JOURNAL, PackageUpgrades, recover
from lab.grading.grader import grade
from lab.kind.cluster import ClusterHandle
from lab.kind.nodes import ExecResult
from lab.scenarios.loader import LoadedScenario, load_scenario
from lab.work import ProgressEvent
from lab.workspace import create_workspace

REPO = Path(__file__).parents[2]
T0 = datetime(2025, 11, 27, 10, 0, 0, tzinfo=UTC)
NS = "cks-lab-falco"
RULES = "/etc/falco/falco_rules.yaml"
LOCAL = "/etc/falco/falco_rules.local.yaml"
CSV = "%evt.time,%container.id,%container.name,%user.name"
AFTER = "frontend-shell-after-upgrade"
# `falco -V ... -o json_output=true` of both rules files, as in test_kind_backend.py
VALID = json.dumps(
    {
        "falco_load_results": [
            {"errors": [], "name": RULES, "successful": True, "warnings": []},
            {"errors": [], "name": LOCAL, "successful": True, "warnings": []},
        ]
    }
)
# The workload pods: (namespace, pod) -> (container, its 64-hex id)
PODS = {
    ("prod", "frontend-7c9d8f6b5-2xk4m"): ("nginx", "3f1c9a7be2d4" + "0" * 52),
    ("dev", "toolbox"): ("toolbox", "8d2e6b1f4a90" + "1" * 52),
}


def _stamp(t: datetime) -> str:
    return f"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond * 1000:09d}Z"


def _start_lines(t: datetime) -> str:
    """What a Falco pod's log (read with --timestamps) says as it starts: the shape of
    tests/kind/samples/falco-pod-log-ts-hot-restart.txt."""
    asc = f"{t:%a %b %d %H:%M:%S %Y}"
    lines = [
        "Falco version: 0.44.1 (x86_64)",
        "Loading rules from:",
        f"   {RULES} | schema validation: ok",
        f"   {LOCAL} | schema validation: ok",
        "Loaded event sources: syscall",
        "Opening 'syscall' source with modern BPF probe.",
    ]
    return "".join(f"{_stamp(t)} {asc}: {line}\n" for line in lines)


def _alert(t: datetime, ns: str, pod: str, csv: bool) -> str:
    """Falco's json_output line for `Terminal shell in container` (keys sorted as
    nlohmann::json dumps them), with the lab DaemonSet's cks_lab.* fields, in the output
    the loaded rules give: the CSV format, or the default rule's sentence."""
    container, cid = PODS[(ns, pod)]
    short = cid[:12]
    clock = f"{t:%H:%M:%S}.{t.microsecond * 1000:09d}"
    ns_time = int(t.timestamp()) * 10**9 + t.microsecond * 1000
    if csv:
        message = f"{clock},{short},{container},root"
        fields: dict[str, Any] = {"container.id": short, "container.name": container,
                                  "evt.time": ns_time, "user.name": "root"}  # fmt: skip
    else:
        message = (
            "A shell was spawned in a container with an attached terminal (user=root "
            "user_loginuid=-1 process=bash proc_exepath=/usr/bin/bash parent=runc "
            f"command=bash terminal=34816 container_id={short} container_name={container} "
            f"image=docker.io/library/{container} k8s_ns={ns} k8s_pod={pod})"
        )
        fields = {"container.id": short, "container.image.repository":
                  f"docker.io/library/{container}", "container.name": container,
                  "evt.time": ns_time, "k8s.ns.name": ns, "k8s.pod.name": pod,
                  "proc.cmdline": "bash", "proc.exepath": "/usr/bin/bash", "proc.name": "bash",
                  "proc.pname": "runc", "proc.tty": 34816, "user.loginuid": -1,
                  "user.name": "root"}  # fmt: skip
    fields.update({"cks_lab.container.id": short, "cks_lab.container.name": container,
                   "cks_lab.k8s.ns.name": ns, "cks_lab.k8s.pod.name": pod,
                   "cks_lab.proc.name": "bash", "cks_lab.proc.cmdline": "bash",
                   "cks_lab.fd.name": "<NA>"})  # fmt: skip
    alert = {
        "hostname": "cks-lab-worker",
        "output": f"{clock}: Notice {message}",
        "output_fields": fields,
        "priority": "Notice",
        "rule": "Terminal shell in container",
        "source": "syscall",
        "tags": ["container", "shell", "mitre_execution"],
        "time": f"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond * 1000:09d}Z",
    }
    return f"{_stamp(t)} {json.dumps(alert, sort_keys=True)}\n"


@dataclass
class FalcoPlay:
    """The lab's Falco DaemonSet on node worker: a pod loads the node's rules files as
    it starts (the CSV output when either file has it); a deleted pod is replaced by a
    new one; an interactive shell in a workload pod is an alert in the running pod's log."""

    nodes: FakeNodes
    kube: FakeKube
    clock: FakeClock
    n: int = 0
    pod: str = ""
    csv: bool = False
    loaded: list[bytes] | None = None  # the falco_rules.yaml the running pod read
    fail_after_upgrade: bool = False  # the attack breaks at the step after the upgrade

    def start(self) -> None:
        self.n += 1
        self.pod = f"falco-{self.n}"
        files = self.nodes.files["worker"]
        self.csv = CSV.encode() in files.get(RULES, b"") + files.get(LOCAL, b"")
        self.loaded = [files.get(RULES, b"")]
        self.kube.pods_[(NS, self.pod)] = running_pod(NS, self.pod, "cks-lab-worker", ["falco"])
        self.kube.labels[(NS, self.pod)] = {"app.kubernetes.io/name": "falco"}
        self.kube.logs_[self.pod] = _start_lines(self.clock.now)

    def on_delete(self, kind: str, namespace: str, name: str) -> None:
        if kind == "Pod" and namespace == NS and (namespace, name) in self.kube.pods_:
            del self.kube.pods_[(namespace, name)]
            self.start()


class FalcoKube(FakeKube):
    play: FalcoPlay

    def exec(self, namespace: str, pod: str, container: str, argv: Any, **kw: Any) -> ExecResult:
        result = super().exec(namespace, pod, container, argv, **kw)
        if namespace == NS:  # falco -V in the Falco pod
            return ExecResult(0, VALID, "")
        if kw.get("tty") and list(argv) == ["bash"]:
            if self.play.fail_after_upgrade and self.play.n > 1:
                raise RuntimeError("the connection to the API server broke")
            t = self.play.clock()  # inside the step's window
            self.logs_[self.play.pod] += _alert(t, namespace, pod, self.play.csv)
        return result


def setup(
    tmp_path: Path, edit: dict[str, bytes]
) -> tuple[LoadedScenario, FakeNodes, FalcoKube, FalcoPlay, KindBackend, list[ProgressEvent]]:
    sc = load_scenario(REPO / "scenarios" / "falco-override-output")
    worker = {f.path: sc.node_file_bytes(f) for f in sc.model.setup.files}
    worker.update(edit)
    nodes = FakeNodes(files={"controlplane": {}, "worker": worker})
    kube = FalcoKube()
    clock = FakeClock(T0)
    play = FalcoPlay(nodes, kube, clock)
    kube.play = play
    kube.on_delete = play.on_delete
    for (ns, name), (container, cid) in PODS.items():
        kube.pods_[(ns, name)] = running_pod(ns, name, "cks-lab-worker", [container])
        kube.pods_[(ns, name)].containers[0].container_id = f"containerd://{cid}"
    play.start()
    cluster = ClusterHandle("cks-lab", tmp_path / "cluster")
    cluster.dir.mkdir()
    backend = KindBackend(cluster, nodes, kube, clock, sleep=lambda s: None,  # type: ignore[arg-type]
                          falco_grace=0, audit_grace=0, settle_timeout=0,
                          pods_timeout=0)  # fmt: skip
    return sc, nodes, kube, play, backend, []


def results(sc: LoadedScenario, ev: Any) -> dict[tuple[str, str | None], tuple[bool, str]]:
    """(check type, step) -> (passed, explanation) of falco-override-output's checks."""
    out = {}
    for task in grade(sc.model, ev).tasks:
        for c in task.checks:
            step = next((s.id for s in sc.model.attack if f"'{s.id}'" in c.title), None)
            out[(c.type, step)] = (c.passed, f"{c.explanation} {c.cause or ''}")
    return out


def edited_rules(sc: LoadedScenario) -> bytes:
    """falco_rules.yaml with the output changed in place, as the task says not to."""
    shipped = next(f for f in sc.model.setup.files if f.path == RULES)
    text = sc.node_file_bytes(shipped).decode()
    new, n = re.subn(r"output: >\n    A shell was spawned .*?k8s_pod=%k8s.pod.name\)",
                     f"output: '{CSV}'", text, count=1, flags=re.S)  # fmt: skip
    assert n == 1
    return new.encode()


def test_rules_edited_in_place_are_lost_to_the_upgrade_and_come_back_after(
    tmp_path: Path,
) -> None:
    sc = load_scenario(REPO / "scenarios" / "falco-override-output")
    mine = edited_rules(sc)
    sc, nodes, kube, play, backend, said = setup(tmp_path, {RULES: mine})
    nodes.modes[("worker", RULES)] = 0o600
    ws = create_workspace(tmp_path / "ws", sc, "kind")

    ev = backend.run_attack(sc, ws, said.append)

    falco = ev.falco
    assert falco is not None
    up = falco.upgrades["falco-upgrade"]
    assert (up.node, up.package, up.restored, up.changed) == ("worker", "falco", [RULES], [RULES])
    assert up.falco.running and up.falco.node == "worker"
    assert falco.after_upgrade == {AFTER: "falco-upgrade"}
    # the upgraded Falco read the package's file; the alert before it the learner's
    assert [a["output"].endswith(",nginx,root") for a in falco.alerts["frontend-shell"]] == [True]
    assert [("A shell was spawned" in a["output"]) for a in falco.alerts[AFTER]] == [True]

    got = results(sc, ev)
    assert got[("falco_output_format", "frontend-shell")][0]
    assert got[("falco_output_format", "toolbox-shell")][0]
    passed, text = got[("falco_output_format", AFTER)]
    assert not passed
    for part in (
        "after the falco package upgrade (attack step 'falco-upgrade') restored",
        f"{RULES}, the alert",
        "writes 'A shell was spawned in a container",
        f"your change was made in {RULES}, which upgrades overwrite:",
        f"put it in {LOCAL}, with `override`",
    ):
        assert part in text
    assert got[("falco_alert", AFTER)][0]  # it still alerts, at the same priority

    # the learner's file is back, bytes and mode, and Falco restarted on it
    assert nodes.files["worker"][RULES] == mine
    assert nodes.modes[("worker", RULES)] == 0o600
    assert [d[2] for d in kube.deleted] == ["falco-1", "falco-2"]
    assert play.loaded == [mine] and play.csv
    assert not (backend.cluster.dir / JOURNAL).exists()
    texts = [str(e) for e in said]
    assert any("put your /etc/falco/falco_rules.yaml back on node worker" in t for t in texts)
    assert not any("skipped" in t for t in texts)


def test_an_override_in_the_local_file_survives_the_upgrade(tmp_path: Path) -> None:
    solution = (
        REPO / "scenarios/falco-override-output/solution/falco_rules.local.yaml"
    ).read_bytes()
    sc, nodes, kube, play, backend, said = setup(tmp_path, {LOCAL: solution})
    before = dict(nodes.files["worker"])
    ev = backend.run_attack(sc, create_workspace(tmp_path / "ws", sc, "kind"), said.append)

    assert ev.falco is not None
    up = ev.falco.upgrades["falco-upgrade"]
    assert up.changed == [] and up.restored == [RULES]
    assert ev.falco.after_upgrade == {AFTER: "falco-upgrade"}
    failed = {k: v for k, v in results(sc, ev).items() if not v[0]}
    assert failed == {}
    assert nodes.files["worker"] == before
    # nothing of the learner's differed from the package: Falco already runs on their files
    assert [d[2] for d in kube.deleted] == ["falco-1"]
    assert any("nothing to put back" in str(e) for e in said)


def test_the_learners_file_comes_back_when_the_attack_breaks_half_way(tmp_path: Path) -> None:
    sc = load_scenario(REPO / "scenarios" / "falco-override-output")
    mine = edited_rules(sc)
    sc, nodes, kube, play, backend, said = setup(tmp_path, {RULES: mine})
    nodes.modes[("worker", RULES)] = 0o640
    play.fail_after_upgrade = True
    with pytest.raises(RuntimeError):
        backend.run_attack(sc, create_workspace(tmp_path / "ws", sc, "kind"), said.append)
    assert nodes.files["worker"][RULES] == mine
    assert nodes.modes[("worker", RULES)] == 0o640
    assert [d[2] for d in kube.deleted] == ["falco-1", "falco-2"]
    assert play.loaded == [mine]
    assert not (backend.cluster.dir / JOURNAL).exists()


def test_an_interrupted_check_puts_the_learners_file_back_at_the_next(tmp_path: Path) -> None:
    sc = load_scenario(REPO / "scenarios" / "falco-override-output")
    mine = edited_rules(sc)
    sc, nodes, kube, play, backend, said = setup(tmp_path, {RULES: mine})
    step = next(s for s in sc.model.attack if s.package_upgrade is not None)
    names = {"controlplane": "cks-lab-control-plane", "worker": "cks-lab-worker"}
    upgrades = PackageUpgrades(nodes, kube, sc, names, since=T0, clock=play.clock,
                               sleep=lambda s: None, journal_dir=backend.cluster.dir)  # fmt: skip
    upgrades.run(step)  # ... and the process is killed before undo()
    assert nodes.files["worker"][RULES] != mine
    recover(nodes, backend.cluster.dir, said.append)
    assert nodes.files["worker"][RULES] == mine
    assert not (backend.cluster.dir / JOURNAL).exists()
    assert any("interrupted" in str(e) for e in said)


def test_a_switch_after_a_killed_check_saves_the_learners_file_not_the_packages(
    tmp_path: Path,
) -> None:
    # the check was killed during the upgrade; the learner then starts another scenario:
    # the snapshot taken before the reset must hold their rules, not the package's
    sc, nodes, kube, play, backend, said = setup(tmp_path, {})
    first = create_workspace(tmp_path / "ws1", sc, "kind")
    backend.prepare(sc, first, said.append)
    mine = edited_rules(sc)
    nodes.files["worker"][RULES] = mine  # the learner's edit, on the node
    step = next(s for s in sc.model.attack if s.package_upgrade is not None)
    names = {"controlplane": "cks-lab-control-plane", "worker": "cks-lab-worker"}
    PackageUpgrades(nodes, kube, sc, names, since=T0, clock=play.clock,
                    sleep=lambda s: None, journal_dir=backend.cluster.dir).run(step)  # fmt: skip
    assert nodes.files["worker"][RULES] != mine  # killed here: the package's file is on
    backend.prepare(sc, create_workspace(tmp_path / "ws2", sc, "kind"), said.append)
    assert not (backend.cluster.dir / JOURNAL).exists()
    saved = sorted((first.root / ".lab").rglob("falco_rules.yaml"))
    assert [p.read_bytes() for p in saved] == [mine]
