"""AppArmor on kind where reference solutions used to fail on a real cluster:

- a rollout race: after the learner's Deployment is applied, the old pods (stuck, or
  running under containerd's default profile) were graded instead of the new ones;
- `capability net_raw` was never recorded for exec steps (the raw socket's network
  denial comes first: the capability is probed on its own);
- write and read probes ran as root, which a profile without dac_override keeps out
  of nginx's 0700 cache folder: they run again as the folder's owner;
- a workload's setuid/setgid are probed instead of assumed.

Fakes of kind_fakes.py; API objects from real-format samples in tests/kind/samples.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from kind_fakes import FakeClock, FakeKube, FakeNodes, sample
from test_kind_backend import REPO, T0, checks, scenario, workspace
from test_kind_evidence import PID, WWW, hardening, hardening_backend

from lab.backends.kind import reset as lab_reset
from lab.backends.kind.apparmor_probe import NET_RAW_PY, WRITE_CHECK, WRITE_PROBE, probe_capability
from lab.backends.kind.backend import KindBackend
from lab.backends.kind.steps import find_pod
from lab.errors import LabError
from lab.grading.grader import grade
from lab.kind.cluster import ClusterHandle
from lab.kind.kube import ContainerInfo, Kube, PodInfo, Rollout, pod_info, rollout_of
from lab.kind.nodes import ExecResult

ORDERS = REPO / "scenarios" / "apparmor-raw-sockets"
OLD, NEW = "6d8c7b9f5", "7b4f6c9d8"  # pod-template-hash of ReplicaSet revisions 1 and 2
DEPLOY = ("Deployment", "orders", "orders-api")
CREATE_ERROR = "failed to create containerd container: apparmor profile not found k8s-deny-raw"
EACCES = ExecResult(
    1,
    "",
    'Traceback (most recent call last):\n  File "<string>", line 1, in <module>\n'
    "PermissionError: [Errno 13] Permission denied\n",
)
EPERM_PY = ExecResult(
    1,
    "",
    'Traceback (most recent call last):\n  File "<string>", line 1, in <module>\n'
    "PermissionError: [Errno 1] Operation not permitted\n",
)


def no_program(name: str) -> ExecResult:
    """What Kube.exec returns when the runtime finds no such program (exit_exit_status)."""
    return ExecResult(
        127,
        "",
        "OCI runtime exec failed: exec failed: unable to start container process: exec: "
        f'"{name}": executable file not found in $PATH: unknown\n',
    )


# --- the API objects ------------------------------------------------------------------


def test_a_deployments_rollout_names_the_newest_replicasets_pods() -> None:
    dep = json.loads(sample("kube-get-deployment-rolling.json"))
    replicasets = json.loads(sample("kube-list-replicasets.json"))["items"]
    r = rollout_of(dep, replicasets)
    assert (r.kind, r.namespace, r.name) == DEPLOY
    assert (r.generation, r.observed_generation, r.desired, r.updated, r.total) == (2, 2, 1, 1, 2)
    assert r.observed and r.selector == {"app": "orders-api"}
    # revision 9 matches the selector but is another Deployment's (another uid)
    assert r.current == ("pod-template-hash", NEW)
    assert rollout_of(dep, []).current is None


def test_statefulset_and_daemonset_rollouts_name_their_current_revision() -> None:
    sts = {
        "kind": "StatefulSet",
        "metadata": {"name": "cart-store", "namespace": "shop", "generation": 3, "uid": "s1"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "cart"}}},
        "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1,
                   "currentRevision": "cart-store-5d4c8b", "updateRevision": "cart-store-7f8e9a"},
    }  # fmt: skip
    r = rollout_of(sts)
    assert (r.desired, r.updated, r.total, r.observed) == (2, 1, 2, False)
    assert r.current == ("controller-revision-hash", "cart-store-7f8e9a")

    def revision(n: int, h: str, owner: str = "d1") -> dict[str, Any]:
        meta = {
            "name": f"agent-{h}",
            "labels": {"app": "agent", "controller-revision-hash": h},
            "ownerReferences": [{"kind": "DaemonSet", "name": "agent", "uid": owner}],
        }
        return {"kind": "ControllerRevision", "metadata": meta, "revision": n}

    ds = {
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "ops", "generation": 4, "uid": "d1"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}},
        "status": {"observedGeneration": 4, "desiredNumberScheduled": 2,
                   "currentNumberScheduled": 2, "updatedNumberScheduled": 1},
    }  # fmt: skip
    r = rollout_of(ds, [revision(3, "6b7c8d"), revision(4, "9f8e7d"), revision(7, "x", "d2")])
    assert (r.desired, r.updated, r.observed) == (2, 1, True)
    assert r.current == ("controller-revision-hash", "9f8e7d")
    # OnDelete: nothing replaces the pods, so there is no rollout to wait for
    ds["spec"]["updateStrategy"] = {"type": "OnDelete"}
    r = rollout_of(ds, [revision(4, "9f8e7d")])
    assert r.current is None and r.updated == r.desired


def test_kube_rollout_reads_the_object_then_the_replicasets_it_owns() -> None:
    dep = json.loads(sample("kube-get-deployment-rolling.json"))
    listing = json.loads(sample("kube-list-replicasets.json"))
    calls: list[tuple[str, str, Any]] = []

    def answer(method: str, path: str, **kw: Any) -> tuple[int, Any]:
        calls.append((method, path, kw.get("query")))
        if path.endswith("/deployments/orders-api"):
            return 200, dep
        if path.endswith("/replicasets"):
            return 200, listing
        return 404, {"kind": "Status", "reason": "NotFound", "message": "not found"}

    kube = object.__new__(Kube)  # no cluster: the wire is answered above
    kube._json = answer  # type: ignore[method-assign]
    r = kube.rollout("deployment", "orders", "orders-api")
    assert r is not None and r.current == ("pod-template-hash", NEW)
    assert calls == [
        ("GET", "/apis/apps/v1/namespaces/orders/deployments/orders-api", None),
        (
            "GET",
            "/apis/apps/v1/namespaces/orders/replicasets",
            [("labelSelector", "app=orders-api")],
        ),
    ]
    assert kube.rollout("StatefulSet", "orders", "gone") is None
    with pytest.raises(LabError, match="no rollout"):
        kube.rollout("Pod", "orders", "orders-api")


def test_pod_info_reads_what_tells_a_rollouts_old_pods_from_its_new_ones() -> None:
    info = pod_info(json.loads(sample("kube-get-pod-terminating.json")))
    assert info.deletion_timestamp == "2025-11-27T10:00:38Z"
    assert info.owners == [("ReplicaSet", f"orders-api-{OLD}")]
    assert info.labels == {"app": "orders-api", "pod-template-hash": OLD}
    assert info.running and info.settled  # as before: the states are the kubelet's
    plain = pod_info({"metadata": {"name": "p", "namespace": "n"}, "status": {"phase": "Pending"}})
    assert (plain.deletion_timestamp, plain.owners, plain.labels) == (None, [], {})


# --- the rollout race ------------------------------------------------------------------


def api_pod(
    template: str, state: str = "running", reason: str = "", *, deleting: str | None = None
) -> PodInfo:
    phase = "Running" if state == "running" else "Pending"
    message = CREATE_ERROR if reason == "CreateContainerError" else ""
    cid = ("e" if template == NEW else "c") * 64
    return PodInfo(
        "orders",
        f"orders-api-{template}-{'q5x2m' if template == NEW else 'w7q2z'}",
        "cks-lab-worker",
        phase,
        [ContainerInfo("api", state, reason, message, container_id=f"containerd://{cid}")],
        deletion_timestamp=deleting,
        owners=[("ReplicaSet", f"orders-api-{template}")],
        labels={"app": "orders-api", "pod-template-hash": template},
    )


def rollout(observed: int, updated: int, total: int) -> Rollout:
    return Rollout(*DEPLOY, generation=2, observed_generation=observed, desired=1,
                   updated=updated, total=total, selector={"app": "orders-api"},
                   current=("pod-template-hash", NEW))  # fmt: skip


def orders_kube(*pods: PodInfo) -> FakeKube:
    kube = FakeKube()
    for p in pods:
        kube.pods_[(p.namespace, p.name)] = p
    # the ReplicaSets as the API returns them: find_pod reads their revisions
    for rs in json.loads(sample("kube-list-replicasets.json"))["items"]:
        kube.objects[f"/apis/apps/v1/namespaces/orders/replicasets/{rs['metadata']['name']}"] = rs
    return kube


class World:
    """The cluster's rollout, one phase further at every poll of the backend."""

    def __init__(self, kube: FakeKube, phases: list[tuple[Rollout, list[PodInfo]]]) -> None:
        self.kube, self.phases, self.phase = kube, phases, -1
        self.advance(0)

    def advance(self, _seconds: float) -> None:
        self.phase = min(self.phase + 1, len(self.phases) - 1)
        r, pods = self.phases[self.phase]
        self.kube.rollouts[DEPLOY] = [r]
        self.kube.pods_ = {(p.namespace, p.name): p for p in pods}


def orders_backend(tmp_path: Path, nodes: FakeNodes, kube: FakeKube, world: World | None,
                   pods_timeout: float = 60) -> KindBackend:  # fmt: skip
    cluster = ClusterHandle("cks-lab", tmp_path / "cluster")
    cluster.dir.mkdir(exist_ok=True)
    b = KindBackend(cluster, nodes, kube, FakeClock(T0),
                    sleep=world.advance if world else lambda s: None, falco_grace=0,
                    audit_grace=0, settle_timeout=0, pods_timeout=pods_timeout)  # fmt: skip
    lab_reset.save_state(cluster.dir, lab_reset.LabState(apparmor={"cks-lab-worker": []}))
    return b


def orders_nodes(profile: str = "solution/k8s-deny-raw", loaded: bool = True) -> FakeNodes:
    worker = {
        "/sys/kernel/security/apparmor/profiles": b"cri-containerd.apparmor.d (enforce)\n"
        + (b"k8s-deny-raw (enforce)\n" if loaded else b""),
        "/etc/apparmor.d/k8s-deny-raw": (ORDERS / profile).read_bytes(),
        f"/proc/{PID}/attr/apparmor/current": b"k8s-deny-raw (enforce)\n",
    }
    manifest = (ORDERS / "solution/orders-api.yaml").read_bytes()
    return FakeNodes(
        files={"controlplane": {"/root/orders-api.yaml": manifest}, "worker": worker},
        aa_names={"/etc/apparmor.d/k8s-deny-raw": ["k8s-deny-raw"]},
        crictl_inspect={"e" * 64: sample("crictl-inspect-nginx.json")},
    )


def test_the_wait_lasts_until_the_new_template_replaced_a_stuck_old_pod(tmp_path: Path) -> None:
    sc = scenario("apparmor-raw-sockets")
    stuck = api_pod(OLD, "waiting", "CreateContainerError")  # the learner's earlier try
    kube = orders_kube()
    world = World(kube, [
        (rollout(1, 0, 1), [stuck]),  # the apply's PUT: the controller has not acted yet
        (rollout(2, 1, 2), [stuck, api_pod(NEW, "waiting", "ContainerCreating")]),
        (rollout(2, 1, 2), [api_pod(OLD, "waiting", "CreateContainerError", deleting="x"),
                            api_pod(NEW)]),
        (rollout(2, 1, 1), [api_pod(NEW)]),
    ])  # fmt: skip
    events: list[Any] = []
    b = orders_backend(tmp_path, orders_nodes(), kube, world)
    b._apply_pod_manifests(sc, orders_nodes(), kube, events.append)
    assert world.phase == 3  # not at once because the stuck old pod counted as settled
    said = [str(e) for e in events]
    assert any("waiting for the rollout of deployment orders/orders-api: its controller has "
               "not acted" in s for s in said)  # fmt: skip
    assert any("1 old pod(s) still terminating" in s for s in said)
    assert "pods started: 1/1" in said[-1] and "rollout" not in said[-1]
    info = find_pod(kube, "orders", sc.model.setup.pods[0].name, sc.model.setup.pods[0])
    assert info is not None and info.name == f"orders-api-{NEW}-q5x2m"


def test_a_rollout_whose_new_pods_fail_ends_the_wait_and_they_are_graded(tmp_path: Path) -> None:
    sc = scenario("apparmor-raw-sockets")
    # maxUnavailable 0: the old pod runs on (under containerd's default profile) next to
    # the new one, which cannot start: the learner applied before loading the profile
    old, new = api_pod(OLD), api_pod(NEW, "waiting", "CreateContainerError")
    kube = orders_kube()
    world = World(kube, [(rollout(2, 1, 2), [old, new])])
    nodes = orders_nodes(loaded=False)
    b = orders_backend(tmp_path, nodes, kube, world)
    ev = b.run_attack(sc, workspace(tmp_path, sc))
    assert world.phase == 0  # no waiting for a rollout that cannot finish
    pod = sc.model.setup.pods[0]
    assert find_pod(kube, pod.namespace, pod.name, pod) == new  # the newest ReplicaSet's
    assert ev.apparmor is not None
    c = ev.apparmor.container(pod.namespace, pod.name, "api")
    assert c is not None and (c.state, c.reason) == ("waiting", "CreateContainerError")
    passed, text = checks(grade(sc.model, ev))["apparmor_pod_confined"][0]
    assert not passed and "CreateContainerError" in text and CREATE_ERROR in text
    # nothing was run in the old pod, which is not the learner's
    assert not any(e.pod == old.name for e in kube.execs)


def test_a_rollout_that_does_not_finish_in_time_is_reported(tmp_path: Path) -> None:
    sc = scenario("apparmor-raw-sockets")
    kube = orders_kube()
    world = World(kube, [(rollout(2, 0, 1), [api_pod(OLD)])])  # the new pod never comes
    events: list[Any] = []
    b = orders_backend(tmp_path, orders_nodes(), kube, world, pods_timeout=5)
    b._apply_pod_manifests(sc, orders_nodes(), kube, events.append)
    assert str(events[-1]) == (
        "warning: after 5s still waiting for the rollout of deployment orders/orders-api: "
        "0/1 pod(s) of the new template"
    )


def test_find_pod_skips_terminating_pods_and_prefers_the_newest_replicaset() -> None:
    sc = scenario("apparmor-raw-sockets")
    pod = sc.model.setup.pods[0]
    # old running, new running: the newest revision, whatever the listing's order
    kube = orders_kube(api_pod(OLD), api_pod(NEW))
    got = find_pod(kube, pod.namespace, pod.name, pod)
    assert got is not None and got.name.startswith(f"orders-api-{NEW}")
    # the old one terminating (still running), the new one starting: the new one
    kube = orders_kube(api_pod(OLD, deleting="2025-11-27T10:00:38Z"),
                       api_pod(NEW, "waiting", "ContainerCreating"))  # fmt: skip
    got = find_pod(kube, pod.namespace, pod.name, pod)
    assert got is not None and got.name.startswith(f"orders-api-{NEW}")
    # only a terminating pod: none
    kube = orders_kube(api_pod(OLD, deleting="2025-11-27T10:00:38Z"))
    assert find_pod(kube, pod.namespace, pod.name, pod) is None
    # found by name but terminating: not it either
    named = api_pod(OLD, deleting="2025-11-27T10:00:38Z")
    kube = orders_kube(named)
    assert find_pod(kube, "orders", named.name) is None


# --- capability net_raw of exec steps -----------------------------------------------------


def orders_run(tmp_path: Path, profile: str, results: dict[tuple[str, ...], ExecResult]) -> Any:
    sc = scenario("apparmor-raw-sockets")
    kube = orders_kube(api_pod(NEW))
    name = api_pod(NEW).name
    for (step, *argv), r in results.items():
        command = tuple(sc.model.step(step).exec.command) if step != "probe" else ()  # type: ignore[union-attr]
        kube.exec_results[(name, *command, *argv)] = r
    nodes = orders_nodes(profile)
    ev = orders_backend(tmp_path, nodes, kube, None).run_attack(sc, workspace(tmp_path, sc))
    return sc, kube, ev


NET_RAW = ("probe", "python3", "-c", NET_RAW_PY)


def test_the_solved_raw_sockets_task_passes_with_net_raw_probed_on_its_own(
    tmp_path: Path,
) -> None:
    # the network rules refuse the raw sockets (EACCES) before the capability is asked
    # for; the probe asks for CAP_NET_RAW alone, which `deny capability net_raw` refuses
    results = {(s,): EACCES for s in ("icmp-sweep", "arp-spoof", "ra-spoof")}
    sc, kube, ev = orders_run(tmp_path, "solution/k8s-deny-raw", {**results, NET_RAW: EPERM_PY})
    result = grade(sc.model, ev)
    failed = [(c.type, c.explanation) for t in result.tasks for c in t.checks if not c.passed]
    assert failed == []
    sweep = {a.access: a for a in ev.apparmor.steps["icmp-sweep"].accesses}
    assert list(sweep) == ["network inet raw", "capability net_raw"]  # the sim's order
    assert sweep["network inet raw"].outcome == "DENIED"
    cap = sweep["capability net_raw"]
    assert cap.outcome == "DENIED" and "Operation not permitted" in cap.reason
    assert ["python3", "-c", NET_RAW_PY] in [e.argv for e in kube.execs if e.container == "api"]


def test_a_profile_denying_only_the_capability_fails_the_network_checks(tmp_path: Path) -> None:
    # no network rule refuses: the socket calls get as far as capable(CAP_NET_RAW): EPERM
    results = {(s,): EPERM_PY for s in ("icmp-sweep", "arp-spoof", "ra-spoof")}
    sc, _kube, ev = orders_run(tmp_path, "solution/k8s-deny-raw", {**results, NET_RAW: EPERM_PY})
    denied = checks(grade(sc.model, ev))["apparmor_denied"]
    assert [passed for passed, _ in denied] == [False, False, False, True]
    assert "network inet raw socket was ALLOWED" in denied[0][1]


def test_the_capability_is_allowed_when_the_socket_was_made_and_not_probed_without_python(
    tmp_path: Path,
) -> None:
    sc, kube, ev = orders_run(tmp_path, "solution/k8s-deny-raw", {})  # every command succeeds
    cap = {a.access: a for a in ev.apparmor.steps["icmp-sweep"].accesses}["capability net_raw"]
    assert cap.outcome == "ALLOWED" and "the command succeeded" in cap.reason
    assert ["python3", "-c", NET_RAW_PY] not in [e.argv for e in kube.execs]
    # an image without python3: no verdict, and it says so
    run = {("python3", "-c", NET_RAW_PY): no_program("python3")}
    assert probe_capability(lambda argv: run.get(tuple(argv)), "net_raw") == (
        None, "the image has no python3 to probe it with")  # fmt: skip


SETUID = ("setpriv", "--reuid=65534", "true")
SETGID = ("setpriv", "--regid=65534", "--keep-groups", "true")


@pytest.mark.parametrize(
    ("answers", "outcome", "words"),
    [
        ({SETUID: ExecResult(0, "", "")}, "ALLOWED", "used capability setuid"),
        # setpriv switched, then the profile did not let it start `true`
        ({SETUID: ExecResult(126, "", "setpriv: failed to execute true: Permission denied\n")},
         "ALLOWED", "failed to execute true"),
        ({SETUID: ExecResult(127, "", "setpriv: setresuid failed: Operation not permitted\n")},
         "DENIED", "EPERM: capability setuid refused"),
        # no setpriv in the image: python's os.setresuid instead
        ({SETUID: no_program("setpriv"),
          ("python3", "-c", "import os; os.setresuid(65534, 65534, 65534)"): EPERM_PY},
         "DENIED", "os.setresuid"),
        ({SETUID: no_program("setpriv"),
          ("python3", "-c", "import os; os.setresuid(65534, 65534, 65534)"): no_program("python3")},
         None, "the image has no setpriv or python3"),
    ],
)  # fmt: skip
def test_setuid_probes(answers: dict[tuple[str, ...], ExecResult], outcome: str | None,
                       words: str) -> None:  # fmt: skip
    got, why = probe_capability(lambda argv: answers.get(tuple(argv)), "setuid")
    assert got == outcome and words in why


def test_a_workload_whose_profile_lacks_setuid_fails_its_allowed_check(tmp_path: Path) -> None:
    results = {(s,): EACCES for s in ("icmp-sweep", "arp-spoof", "ra-spoof")}
    refused = ExecResult(127, "", "setpriv: setresuid failed: Operation not permitted\n")
    results.update({NET_RAW: EPERM_PY, ("probe", *SETUID): refused})
    sc, _kube, ev = orders_run(tmp_path, "solution/k8s-deny-raw", results)
    starts = {a.access: a for a in ev.apparmor.steps["api-starts"].accesses}
    assert starts["capability setuid"].outcome == "DENIED"
    assert starts["capability setgid"].outcome == "ALLOWED"  # the fake's setpriv succeeds
    assert "re-enacting" in starts["capability setuid"].reason
    assert starts["capability chown"].reason.endswith("leave the pod as it is")  # no probe
    allowed = checks(grade(sc.model, ev))["apparmor_allowed"]
    passed, text = allowed[0]
    assert not passed and "capability setuid was DENIED" in text


# --- probes as the folder's owner ----------------------------------------------------------

CACHE = "/var/cache/nginx/client_temp/0000000001"
FOLDER = "/var/cache/nginx/client_temp"
POD = WWW[1]
ROOT_REFUSED = ExecResult(2, "", f"sh: 1: cannot create {CACHE}: Permission denied\n")
AS_NGINX = ["setpriv", "--reuid=101", "--regid=101", "--clear-groups"]
CHECK = ["sh", "-c", WRITE_CHECK, "sh", FOLDER, CACHE]
WRITE = ["sh", "-c", WRITE_PROBE, "sh", CACHE]


def cache_write(tmp_path: Path, answers: dict[tuple[str, ...], ExecResult]) -> tuple[Any, Any]:
    """The solved hardening where root may not enter nginx's cache folder (no
    dac_override): root's `test -e` sees no file there, its write is refused."""
    sc, nodes, kube = hardening(tmp_path, solved=True)
    kube.exec_results[(POD, *CHECK)] = ExecResult(0, "", "")
    kube.exec_results[(POD, *WRITE)] = ROOT_REFUSED
    kube.exec_results[(POD, "stat", "-c", "%u %g %U", "--", FOLDER)] = ExecResult(
        0, "101 101 nginx\n", ""
    )
    kube.exec_results.update({(POD, *k): v for k, v in answers.items()})
    ev = hardening_backend(tmp_path, nodes, kube).run_attack(sc, workspace(tmp_path, sc))
    access = {a.access: a for a in ev.apparmor.steps["nginx-serves"].accesses}[f"w {CACHE}"]
    return (sc, ev, kube, [e.argv for e in kube.execs]), access


def test_a_write_refused_to_root_runs_again_as_the_folders_owner(tmp_path: Path) -> None:
    (sc, ev, _kube, argvs), access = cache_write(tmp_path, {})
    assert access.outcome == "ALLOWED" and "as uid 101, the owner of " + FOLDER in access.reason
    assert "Permission denied" in access.reason  # what root was told
    # the owner checks the file is not there, writes, and removes the probe's own file
    assert [*AS_NGINX, *CHECK] in argvs and [*AS_NGINX, *WRITE] in argvs
    assert [*AS_NGINX, "rm", "-f", "--", CACHE] in argvs
    steps = [c.params["step"] for t in sc.model.tasks for c in t.checks
             if c.type == "apparmor_allowed"]  # fmt: skip
    allowed = dict(zip(steps, checks(grade(sc.model, ev))["apparmor_allowed"], strict=True))
    assert allowed["nginx-serves"][0], allowed["nginx-serves"][1]


def test_the_owners_probe_leaves_a_file_that_was_there_and_reports_its_denial(
    tmp_path: Path,
) -> None:
    answers = {
        (*AS_NGINX, *CHECK): ExecResult(4, "", ""),  # nginx sees the file: it was there
        (*AS_NGINX, *WRITE): ROOT_REFUSED,  # and the profile refuses nginx too
    }
    (_sc, _ev, _kube, argvs), access = cache_write(tmp_path, answers)
    assert access.outcome == "DENIED" and "as uid 101" in access.reason
    assert not any("rm" in a for a in argvs)


def test_without_setpriv_su_runs_the_probe(tmp_path: Path) -> None:
    su = ["su", "-s", "/bin/sh", "nginx", "-c"]
    answers = {
        (*AS_NGINX, *CHECK): no_program("setpriv"),
        (*su, shlex.join(CHECK)): ExecResult(4, "", ""),
        (*AS_NGINX, *WRITE): no_program("setpriv"),
    }
    (_sc, _ev, _kube, argvs), access = cache_write(tmp_path, answers)
    assert access.outcome == "ALLOWED" and "`su -s /bin/sh nginx -c" in access.reason
    assert [*su, shlex.join(WRITE)] in argvs


def test_when_the_owner_cannot_run_the_probe_it_is_not_probed_and_says_the_uid(
    tmp_path: Path,
) -> None:
    # nginx-hardened grants no exec: setpriv switches to nginx but cannot start sh
    refused = ExecResult(126, "", "setpriv: failed to execute sh: Permission denied\n")
    (_sc, _ev, _kube, argvs), access = cache_write(tmp_path, {(*AS_NGINX, *CHECK): refused})
    assert access.outcome == "ALLOWED" and "not probed" in access.reason
    assert "needs uid 101, the owner of " + FOLDER in access.reason
    assert "failed to execute sh" in access.reason
    assert [*AS_NGINX, *WRITE] not in argvs and not any("rm" in a for a in argvs)


def test_a_refusal_in_roots_own_folder_stands(tmp_path: Path) -> None:
    owner = {("stat", "-c", "%u %g %U", "--", FOLDER): ExecResult(0, "0 0 root\n", "")}
    (_sc, _ev, _kube, argvs), access = cache_write(tmp_path, owner)
    assert access.outcome == "DENIED" and "as uid" not in access.reason
    assert not any(a[:4] == AS_NGINX or a[0] == "su" for a in argvs)


def test_a_read_refused_to_root_runs_again_as_the_folders_owner(tmp_path: Path) -> None:
    conf = "/etc/nginx/nginx.conf"
    answers = {
        ("head", "-c", "1", conf): ExecResult(1, "", f"head: cannot open '{conf}' for reading: "
                                                     "Permission denied\n"),
        ("stat", "-c", "%u %g %U", "--", "/etc/nginx"): ExecResult(0, "101 101 nginx\n", ""),
        (*AS_NGINX, "head", "-c", "1", conf): ExecResult(0, "u", ""),
    }  # fmt: skip
    (_sc, ev, _kube, _argvs), _ = cache_write(tmp_path, answers)
    read = {a.access: a for a in ev.apparmor.steps["nginx-starts"].accesses}[f"r {conf}"]
    assert read.outcome == "ALLOWED" and "as uid 101" in read.reason


def test_a_pod_stuck_before_the_profile_was_loaded_is_started_again(tmp_path: Path) -> None:
    # The learner loads the profile after the pod failed to start; the template did not
    # change, so no rollout comes, and kubelet retries only after a back-off: the check
    # deletes the stuck pod and grades the one its ReplicaSet makes now.
    sc = scenario("apparmor-raw-sockets")
    stuck, fresh = api_pod(NEW, "waiting", "CreateContainerError"), api_pod(NEW)

    class Retrying(FakeKube):
        def delete(self, kind: str, namespace: str, name: str, *, wait: float = 60) -> None:
            super().delete(kind, namespace, name, wait=wait)
            if (kind, name) == ("Pod", stuck.name):
                self.pods_ = {
                    (fresh.namespace, fresh.name + "-2"): replace(fresh, name=fresh.name + "-2")
                }

    kube = Retrying()
    for rs in json.loads(sample("kube-list-replicasets.json"))["items"]:
        kube.objects[f"/apis/apps/v1/namespaces/orders/replicasets/{rs['metadata']['name']}"] = rs
    world = World(kube, [(rollout(2, 1, 1), [stuck])])
    b = orders_backend(tmp_path, orders_nodes(), kube, None)
    ev = b.run_attack(sc, workspace(tmp_path, sc))
    assert ("Pod", "orders", stuck.name) in kube.deleted
    assert world.phase == 0
    pod = sc.model.setup.pods[0]
    assert ev.apparmor is not None
    c = ev.apparmor.container(pod.namespace, pod.name, "api")
    assert c is not None and c.state == "running"
