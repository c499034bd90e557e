"""The kind backend's evidence where a correct solution used to fail on a real cluster:
a profile read from the node, workload steps re-enacted by probes in the sim's order,
Falco alerts of a pod's workloads told apart by container and effect, and the time
the workloads get watched. Fakes of kind_fakes.py fed real-format samples; the
bundled scenarios are graded by the same checks as the sim's."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from kind_fakes import FakeClock, FakeKube, FakeNodes, running_pod, sample
from test_kind_backend import REPO, T0, at, backend, checks, scenario, workspace

from lab.backends.kind import reset as lab_reset
from lab.backends.kind.falco import LAB_PREFIX, WorkloadTarget, assign, fit
from lab.backends.kind.steps import ExecRun
from lab.grading.grader import grade
from lab.kind.falco_deploy import validate_argv
from lab.kind.kube import ContainerInfo, PodInfo
from lab.kind.nodes import ExecResult

# --- AppArmor: apparmor-nginx-hardening ------------------------------------------------

WWW = ("public", "www-5b7f9c6d8-r2t4n")
NGINX_ID = "3f9c2b7d1a4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8"
PID = 48213  # crictl-inspect-nginx.json's info.pid
CAT_DENIED = ExecResult(1, "", "cat: /proc/1/attr/current: Permission denied\n")


def exec_denied(shell_line: str) -> ExecResult:
    return ExecResult(126, "", f"sh: 1: exec: {shell_line}: Permission denied\n")


def hardening(tmp_path: Path, *, solved: bool) -> tuple[Any, FakeNodes, FakeKube]:
    sc = scenario("apparmor-nginx-hardening")
    sc_dir = REPO / "scenarios" / "apparmor-nginx-hardening"
    manifest = (sc_dir / ("solution/www.yaml" if solved else "manifests/www.yaml")).read_bytes()
    worker = {
        "/sys/kernel/security/apparmor/profiles": b"cri-containerd.apparmor.d (enforce)\n"
        + (b"nginx-hardened (enforce)\n" if solved else b""),
    }
    label = b"nginx-hardened (enforce)" if solved else b"cri-containerd.apparmor.d (enforce)"
    worker[f"/proc/{PID}/attr/apparmor/current"] = label + b"\n"
    if solved:
        worker["/etc/apparmor.d/nginx-hardened"] = (sc_dir / "solution/nginx-hardened").read_bytes()
    nodes = FakeNodes(
        files={"controlplane": {"/root/www.yaml": manifest}, "worker": worker},
        aa_names={"/etc/apparmor.d/nginx-hardened": ["nginx-hardened"]},
        crictl_inspect={NGINX_ID: sample("crictl-inspect-nginx.json")},
    )
    kube = FakeKube()
    kube.pods_[WWW] = PodInfo(
        *WWW,
        "cks-lab-worker",
        "Running",
        [ContainerInfo("nginx", "running", container_id=f"containerd://{NGINX_ID}")],
    )
    pod = WWW[1]
    # in the container, the profile denies reading pid 1's label (no ptrace read rule)
    kube.exec_results[(pod, "cat", "/proc/1/attr/current")] = (
        CAT_DENIED if solved else (ExecResult(0, "cri-containerd.apparmor.d (enforce)\n", ""))
    )
    # nginx's files and folders exist: `test` finds the parents, nothing to clean up
    for path in ("/var/run/nginx.pid", "/var/cache/nginx/client_temp/0000000001"):
        check = (pod, "sh", "-c", 'test -d "$1" || exit 3; test -e "$2" && exit 4; exit 0',
                 "sh", path.rsplit("/", 1)[0], path)  # fmt: skip
        kube.exec_results[check] = ExecResult(4, "", "")
    if solved:
        for shell in ("/bin/sh", "/bin/bash"):
            probe = (pod, "sh", "-c", 'exec "$@"', "sh", shell, "-c", ":")
            kube.exec_results[probe] = exec_denied(shell)
        kube.exec_results.update(
            {
                (pod, "sh", "-c", "echo hacked > /usr/share/nginx/html/index.html"): ExecResult(
                    2,
                    "",
                    "sh: 1: cannot create /usr/share/nginx/html/index.html: Permission denied\n",
                ),
                (pod, *sc.model.step("proxy-conf-drop").exec.command): ExecResult(  # type: ignore[union-attr]
                    23,
                    "",
                    "Warning: Failed to open the file /etc/nginx/conf.d/zz-proxy.conf: "
                    "Permission denied\ncurl: (23) client returned ERROR on write of 153 bytes\n",
                ),
                (pod, *sc.model.step("miner-drop").exec.command): ExecResult(  # type: ignore[union-attr]
                    23, "", "Warning: Failed to open the file /tmp/xmrig: Permission denied\n"
                ),
            }
        )
    return sc, nodes, kube


def hardening_backend(tmp_path: Path, nodes: FakeNodes, kube: FakeKube) -> Any:
    b = backend(tmp_path, nodes, kube)
    lab_reset.save_state(b.cluster.dir, lab_reset.LabState(apparmor={"cks-lab-worker": []}))
    return b


def test_the_profile_is_read_from_the_node_when_the_container_cannot_read_it(
    tmp_path: Path,
) -> None:
    sc, nodes, kube = hardening(tmp_path, solved=True)
    ev = hardening_backend(tmp_path, nodes, kube).run_attack(sc, workspace(tmp_path, sc))
    assert ev.apparmor is not None
    c = ev.apparmor.container(*WWW, "nginx")
    assert c is not None and (c.profile, c.mode) == ("nginx-hardened", "enforce")
    inspect = ["crictl", "inspect", "-o", "json", NGINX_ID]
    assert inspect in nodes.commands("worker")
    assert ["head", "-c", "4097", "--", f"/proc/{PID}/attr/apparmor/current"] in (
        nodes.commands("worker")
    )
    # the node answered: the in-container read (denied under this profile) is not needed
    assert not any(e.argv == ["cat", "/proc/1/attr/current"] for e in kube.execs)
    passed, text = checks(grade(sc.model, ev))["apparmor_pod_confined"][0]
    assert passed, text


def test_the_in_container_read_is_the_fallback(tmp_path: Path) -> None:
    sc, nodes, kube = hardening(tmp_path, solved=False)
    nodes.crictl_inspect.clear()  # the runtime does not know the container (yet)
    ev = hardening_backend(tmp_path, nodes, kube).run_attack(sc, workspace(tmp_path, sc))
    assert ev.apparmor is not None
    c = ev.apparmor.container(*WWW, "nginx")
    assert c is not None and c.profile == "cri-containerd.apparmor.d"
    assert any(e.argv == ["cat", "/proc/1/attr/current"] for e in kube.execs)


def test_the_solved_hardening_passes_every_check_with_probed_workloads(tmp_path: Path) -> None:
    sc, nodes, kube = hardening(tmp_path, solved=True)
    ev = hardening_backend(tmp_path, nodes, kube).run_attack(sc, workspace(tmp_path, sc))
    result = grade(sc.model, ev)
    failed = [(c.type, c.explanation) for t in result.tasks for c in t.checks if not c.passed]
    assert failed == []
    assert ev.apparmor is not None
    rce = ev.apparmor.steps["rce-sh"].accesses
    # as the sim: the shell's exec is denied, so curl (its child) never starts
    assert [(a.access, a.aliases, a.outcome) for a in rce] == [
        ("x /usr/bin/dash", ("x /bin/sh", "x /usr/bin/sh"), "DENIED"),
        ("x /usr/bin/curl", ("x /bin/curl",), "DENIED"),
    ]
    assert "Permission denied" in rce[0].reason and "probe" in rce[0].reason
    assert rce[1].reason.startswith("not tried")
    assert not any("curl" in e.argv and "--version" in e.argv for e in kube.execs)
    # nginx's own reads and writes were probed, each by the smallest command
    argvs = [e.argv for e in kube.execs]
    assert ["head", "-c", "1", "/etc/nginx/nginx.conf"] in argvs
    assert ["sh", "-c", ': >> "$1"', "sh", "/var/run/nginx.pid"] in argvs
    starts = {a.access: a for a in ev.apparmor.steps["nginx-starts"].accesses}
    assert starts["w /run/nginx.pid"].aliases == ("w /var/run/nginx.pid",)
    assert starts["capability chown"].outcome == "ALLOWED"
    # files that existed are left alone: no clean-up
    assert not any(a[:1] == ["rm"] for a in argvs)


def test_the_untouched_hardening_fails_the_denials_from_the_probes(tmp_path: Path) -> None:
    sc, nodes, kube = hardening(tmp_path, solved=False)
    ev = hardening_backend(tmp_path, nodes, kube).run_attack(sc, workspace(tmp_path, sc))
    got = checks(grade(sc.model, ev))
    rce_sh, rce_bash = got["apparmor_denied"][:2]
    assert not rce_sh[0] and "was ALLOWED" in rce_sh[1]
    assert not rce_bash[0]
    assert all(passed for passed, _ in got["apparmor_allowed"])
    assert ev.apparmor is not None
    curl = ev.apparmor.steps["rce-sh"].accesses[1]
    assert (curl.access, curl.outcome) == ("x /usr/bin/curl", "ALLOWED")
    assert ["sh", "-c", 'exec "$@"', "sh", "curl", "--version"] in [e.argv for e in kube.execs]


def test_a_write_probe_removes_the_file_it_created_and_skips_a_missing_folder(
    tmp_path: Path,
) -> None:
    sc, nodes, kube = hardening(tmp_path, solved=True)
    pod = WWW[1]
    cache = "/var/cache/nginx/client_temp/0000000001"
    check = 'test -d "$1" || exit 3; test -e "$2" && exit 4; exit 0'
    created = (pod, "sh", "-c", check, "sh", cache.rsplit("/", 1)[0], cache)
    kube.exec_results[created] = ExecResult(0, "", "")
    kube.exec_results[(pod, "sh", "-c", check, "sh", "/var/run", "/var/run/nginx.pid")] = (
        ExecResult(3, "", "")
    )
    ev = hardening_backend(tmp_path, nodes, kube).run_attack(sc, workspace(tmp_path, sc))
    argvs = [e.argv for e in kube.execs]
    assert ["rm", "-f", "--", cache] in argvs
    assert ["sh", "-c", ': >> "$1"', "sh", "/var/run/nginx.pid"] not in argvs
    assert ev.apparmor is not None
    pid = {a.access: a for a in ev.apparmor.steps["nginx-starts"].accesses}["w /run/nginx.pid"]
    assert pid.outcome == "ALLOWED" and "not probed" in pid.reason
    assert "no folder /var/run" in pid.reason


# --- Falco: falco-etc-writes ---------------------------------------------------------------

STOREFRONT = ("shop", "storefront-6b8f9c7d5-h4j2k")
NGINX_C = "3f9c2b7d1a4e" + "0" * 52
RELOADER_C = "8d21e6f0c3b9" + "1" * 52
VALID = json.dumps(
    {
        "falco_load_results": [
            {"errors": [], "name": p, "successful": True, "warnings": []}
            for p in ("/etc/falco/falco_rules.yaml", "/etc/falco/falco_rules.local.yaml")
        ]
    }
)


def etc_writes(log: str) -> tuple[Any, FakeNodes, FakeKube]:
    sc = scenario("falco-etc-writes")
    worker = {f.path: sc.node_file_bytes(f) for f in sc.model.setup.files}
    solution = REPO / "scenarios/falco-etc-writes/solution/falco_rules.local.yaml"
    worker["/etc/falco/falco_rules.local.yaml"] = solution.read_bytes()
    nodes = FakeNodes(files={"controlplane": {}, "worker": worker})
    kube = FakeKube()
    falco = ("cks-lab-falco", "falco-w")
    kube.pods_[falco] = running_pod(*falco, "cks-lab-worker", ["falco"])
    kube.labels[falco] = {"app.kubernetes.io/name": "falco"}
    kube.pods_[STOREFRONT] = PodInfo(
        *STOREFRONT,
        "cks-lab-worker",
        "Running",
        [
            ContainerInfo("nginx", "running", container_id=f"containerd://{NGINX_C}"),
            ContainerInfo("config-reloader", "running", container_id=f"containerd://{RELOADER_C}"),
        ],
    )
    for ns, name, container in (
        ("shop", "cart-store-0", "etcd"),
        ("warehouse", "inventory-api-5c7b9d8f6-p3w8z", "api"),
    ):
        kube.pods_[(ns, name)] = running_pod(ns, name, "cks-lab-worker", [container], cid="99")
    kube.logs_["falco-w"] = log
    files = ["/etc/falco/falco_rules.yaml", "/etc/falco/falco_rules.local.yaml"]
    kube.exec_results[("falco-w", *validate_argv(files))] = ExecResult(0, VALID, "")
    return sc, nodes, kube


def etc_clock() -> FakeClock:
    # the run starts 09:59:59; cron-backdoor's exec 10:00:04-06, proxy-conf-drop's 10:00:11-14
    return FakeClock(
        T0, [at("9:59:59"), at("10:00:04"), at("10:00:06"), at("10:00:11"), at("10:00:14")]
    )


def test_a_pods_workload_alerts_go_to_the_step_whose_container_and_file_fit(
    tmp_path: Path,
) -> None:
    sc, nodes, kube = etc_writes(sample("falco-pod-log-etc-writes.txt"))
    ev = backend(tmp_path, nodes, kube, etc_clock()).run_attack(sc, workspace(tmp_path, sc))
    falco = ev.falco
    assert falco is not None
    names = {k: [a["output_fields"]["fd.name"] for a in v] for k, v in falco.alerts.items()}
    # the reloader's /etc/passwd writes, one of them during the nginx exec: its step only
    assert names["reloader-writes-passwd"] == ["/etc/passwd"] * 3
    assert names["cron-backdoor"] == ["/etc/cron.d/backup"]
    assert names["proxy-conf-drop"] == ["/etc/nginx/conf.d/zz-proxy.conf"]
    for quiet in ("reloader-renders-conf", "nginx-reads-conf", "cart-store-writes-data"):
        assert names[quiet] == [], quiet
    assert "" not in falco.alerts
    # the checks see the alerts as the learner's rule made them
    every = [a for v in falco.alerts.values() for a in v]
    assert not any(k.startswith(LAB_PREFIX) for a in every for k in a["output_fields"])
    result = grade(sc.model, ev)
    failed = [(c.type, c.explanation) for t in result.tasks for c in t.checks if not c.passed]
    assert failed == []


def _alert(fd: str, proc: str, container: str, cid: str, **extra: Any) -> dict[str, Any]:
    fields = {"fd.name": fd, "k8s.pod.name": STOREFRONT[1]}  # the task's minimal output
    lab = {"container.name": container, "container.id": cid[:12], "proc.name": proc,
           "k8s.ns.name": "shop", "k8s.pod.name": STOREFRONT[1], "fd.name": fd}  # fmt: skip
    fields.update({LAB_PREFIX + k: v for k, v in lab.items()})
    fields.update(extra)
    return {"rule": "etc", "time": "2025-11-27T10:00:20.000000000Z", "output": fd,
            "output_fields": fields}  # fmt: skip


def _targets() -> dict[str, WorkloadTarget]:
    from lab.backends.kind.falco import workload_target

    sc = scenario("falco-etc-writes").model
    kube_info = PodInfo(
        *STOREFRONT,
        "cks-lab-worker",
        "Running",
        [
            ContainerInfo("nginx", "running", container_id=f"containerd://{NGINX_C}"),
            ContainerInfo("config-reloader", "running", container_id=f"containerd://{RELOADER_C}"),
        ],
    )
    out = {}
    for step in sc.attack:
        if step.workload is not None and step.workload.pod == STOREFRONT[1]:
            t = workload_target(sc, step, kube_info)
            assert t is not None
            out[step.id] = t
    return out


def test_an_alert_fitting_no_workload_step_is_kept_apart() -> None:
    targets = _targets()
    # without the exception, the reloader's other files alert: upstreams.conf is the
    # step's own file; default.conf is no step's
    reloader = ("config-reloader", "config-reloader", RELOADER_C)
    got = assign(
        [
            _alert("/etc/nginx/conf.d/upstreams.conf", *reloader),
            _alert("/etc/nginx/conf.d/default.conf", *reloader),
        ],
        [],
        targets,
    )
    assert [a["output"] for a in got["reloader-renders-conf"]] == [
        "/etc/nginx/conf.d/upstreams.conf"
    ]
    assert "nginx-reads-conf" not in got  # same file, but another container and program
    assert [a["output"] for a in got[""]] == ["/etc/nginx/conf.d/default.conf"]
    assert all(set(a["output_fields"]) == {"fd.name", "k8s.pod.name"} for v in got.values()
               for a in v)  # fmt: skip


def test_fit_uses_the_rules_own_fields_and_refuses_host_events() -> None:
    t = _targets()["reloader-writes-passwd"]
    plain = {"output_fields": {"fd.name": "/etc/passwd", "proc.name": "config-reloader",
                               "k8s.pod.name": STOREFRONT[1]}}  # fmt: skip
    assert fit(plain, t) == 4  # pod, file (2), program
    other_pod = {"output_fields": {"fd.name": "/etc/passwd", "k8s.pod.name": "cart-store-0"}}
    assert fit(other_pod, t) is None
    nginx = {"output_fields": {"fd.name": "/etc/passwd", "container.name": "nginx"}}
    assert fit(nginx, t) is None
    host = {"output_fields": {"fd.name": "/etc/passwd", "container.id": "host"}}
    assert fit(host, t) is None
    blank = {"output_fields": {"fd.name": "<NA>", "k8s.pod.name": "<NA>"}}
    assert fit(blank, t) == 0  # says nothing either way


def test_an_alert_of_another_container_in_an_exec_window_is_not_the_execs() -> None:
    targets = _targets()
    run = ExecRun("cron-backdoor", *STOREFRONT, "nginx", "worker", at("10:00:19"),
                  at("10:00:21"))  # fmt: skip
    mine = _alert("/etc/cron.d/backup", "sh", "nginx", NGINX_C)
    theirs = _alert("/etc/passwd", "config-reloader", "config-reloader", RELOADER_C)
    got = assign([mine, theirs], [run], targets)
    assert [a["output"] for a in got["cron-backdoor"]] == ["/etc/cron.d/backup"]
    assert [a["output"] for a in got["reloader-writes-passwd"]] == ["/etc/passwd"]


def test_workloads_are_watched_for_the_window_before_the_log_is_read(tmp_path: Path) -> None:
    sc, nodes, kube = etc_writes(sample("falco-pod-log-etc-writes.txt"))
    # the storefront's nginx restarted at 10:00:02.5 (crictl-inspect-nginx.json's startedAt)
    nodes.crictl_inspect[NGINX_C] = sample("crictl-inspect-nginx.json")
    clock = etc_clock()
    slept: list[float] = []
    read_at: list[Any] = []
    logs = kube.logs

    def logged(*args: Any, **kw: Any) -> str:
        read_at.append(clock.now)
        return logs(*args, **kw)

    kube.logs = logged  # type: ignore[method-assign]
    b = backend(tmp_path, nodes, kube, clock)
    b.workload_window = 30
    b.sleep = slept.append
    b.run_attack(sc, workspace(tmp_path, sc))
    started = T0.replace(second=2, microsecond=500000)
    assert read_at and read_at[0] >= started + timedelta(seconds=30)
    assert slept and all(s <= 1.0 for s in slept)
    assert ["crictl", "inspect", "-o", "json", NGINX_C] in nodes.commands("worker")


def test_no_watching_without_a_window(tmp_path: Path) -> None:
    sc, nodes, kube = etc_writes(sample("falco-pod-log-etc-writes.txt"))
    b = backend(tmp_path, nodes, kube, etc_clock())
    b.workload_window = 0
    slept: list[float] = []
    b.sleep = slept.append
    b.run_attack(sc, workspace(tmp_path, sc))
    assert slept == []
    assert not any(argv[:2] == ["crictl", "inspect"] for argv in nodes.commands())
