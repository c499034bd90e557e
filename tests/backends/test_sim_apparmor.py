"""The sim backend's AppArmor: pods applied from the learner's manifest, profiles as the
nodes' kernels hold them, and the attack's accesses decided through exec transitions.

Table: tests/backends/cases/sim_apparmor.yaml (on tests/scenarios/fixtures/apparmor-lab).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab import service
from lab.backends.sim import SimBackend
from lab.backends.sim.apparmor_access import (
    file_paths,
    program_paths,
    program_written,
    rootfs,
)
from lab.evidence import AppArmorEvidence
from lab.nodefs import resolve_in_node
from lab.scenarios.loader import LoadedScenario, load_scenario
from lab.service import Opened, self_test
from lab.workspace import Workspace, create_workspace

HERE = Path(__file__).parent
CASES = yaml.safe_load((HERE / "cases" / "sim_apparmor.yaml").read_text())
FIXTURE = HERE.parent / "scenarios" / "fixtures" / "apparmor-lab"


@pytest.fixture(scope="module")
def scenario() -> LoadedScenario:
    return load_scenario(FIXTURE)


def workspace(tmp: Path, sc: LoadedScenario, solved: bool) -> Workspace:
    ws = create_workspace(tmp / "ws", sc, "sim")
    SimBackend().prepare(sc, ws)
    if solved:
        service.show_solution(Opened(ws, sc), apply=True)
    return ws


def edit(ws: Workspace, sc: LoadedScenario, case: dict[str, Any]) -> None:
    for node, files in case.get("write", {}).items():
        for path, text in files.items():
            target = resolve_in_node(ws.node_root(node), path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    for node, files in case.get("replace", {}).items():
        for path, pairs in files.items():
            target = resolve_in_node(ws.node_root(node), path)
            text = target.read_text()
            for old, new in pairs:
                assert old in text, f"case is stale: {old!r} not in {path}"
                text = text.replace(old, new, 1)
            target.write_text(text)
    for node, paths in case.get("delete", {}).items():
        for path in paths:
            resolve_in_node(ws.node_root(node), path).unlink()
    for node, cmd in case.get("exec", []):
        res = service.node_exec(Opened(ws, sc), node, shlex.split(cmd))
        assert res.code == 0, res.stderr


def check_containers(ev: AppArmorEvidence, expect: dict[str, Any]) -> None:
    for key, want in expect.items():
        ns, pod, name = key.split("/")
        c = ev.container(ns, pod, name)
        assert c is not None, key
        for field in ("state", "profile", "mode", "node", "reason"):
            if field in want:
                assert getattr(c, field) == want[field], f"{key}.{field}: {c}"
        for field in ("message", "requested"):
            if field in want:
                assert want[field] in getattr(c, field), f"{key}.{field}: {c}"


def check_steps(ev: AppArmorEvidence, expect: dict[str, Any]) -> None:
    for step, want in expect.items():
        st = ev.steps[step]
        if "ran" in want:
            assert st.ran is want["ran"], step
        got = {a.access: a for a in st.accesses}
        for access, outcome in want.get("accesses", {}).items():
            assert access in got, f"{step}: no {access!r} in {list(got)}"
            assert got[access].outcome == outcome, f"{step}: {got[access]}"
        for access, words in want.get("reasons", {}).items():
            assert words in got[access].reason, f"{step}: {got[access]}"
        for access, words in want.get("by", {}).items():
            assert words in got[access].by, f"{step}: {got[access]}"


def check_nodes(ev: AppArmorEvidence, expect: dict[str, Any]) -> None:
    for node, want in expect.items():
        state = ev.nodes[node]
        if "loaded" in want:
            assert [p.name for p in state.loaded] == want["loaded"]
        if "stale" in want:
            assert [p.name for p in state.loaded if p.stale] == want["stale"]
        for name, file in want.get("defined", {}).items():
            assert state.defined.get(name) == file, state.defined


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_sim_apparmor(case: dict[str, Any], tmp_path: Path, scenario: LoadedScenario) -> None:
    ws = workspace(tmp_path, scenario, case["from"] == "solution")
    edit(ws, scenario, case)
    ev = SimBackend().run_attack(scenario, ws).apparmor
    assert ev is not None
    exp = case["expect"]
    check_containers(ev, exp.get("containers", {}))
    check_steps(ev, exp.get("steps", {}))
    check_nodes(ev, exp.get("nodes", {}))


def test_fixture_self_test() -> None:
    t = self_test(load_scenario(FIXTURE))
    assert t.ok, t.problems


@pytest.mark.parametrize(
    ("image", "layout"),
    [("nginx:1.27", "debian"), ("docker.io/library/nginx:1.27-alpine", "alpine"),
     ("alpine", "alpine"), ("busybox:1.36", "busybox"), ("ubuntu:24.04", "debian"),
     ("registry.k8s.io/pause:3.9", "plain")],
)
def test_rootfs_from_image(image: str, layout: str) -> None:
    assert rootfs(image) == layout


@pytest.mark.parametrize(
    ("program", "layout", "paths"),
    [
        ("sh", "debian", ["/usr/bin/sh", "/bin/sh", "/usr/bin/dash"]),
        ("/bin/sh", "debian", ["/bin/sh", "/usr/bin/sh", "/usr/bin/dash"]),
        ("cat", "debian", ["/bin/cat", "/usr/bin/cat"]),
        ("nginx", "debian", ["/sbin/nginx", "/usr/sbin/nginx"]),
        ("sh", "alpine", ["/bin/sh", "/bin/busybox"]),
        ("curl", "alpine", ["/usr/bin/curl"]),
        ("sh", "busybox", ["/bin/sh"]),
        ("/usr/local/bin/app", "debian", ["/usr/local/bin/app"]),
        ("sh", "plain", ["/bin/sh"]),
        ("gunicorn", "plain", ["/usr/bin/gunicorn"]),
    ],
)
def test_program_paths(program: str, layout: str, paths: list[str]) -> None:
    assert program_paths(program, layout) == paths


@pytest.mark.parametrize(
    ("program", "layout", "written"),
    [
        ("sh", "debian", "sh"),  # dash, through the /usr/bin/sh link
        ("/bin/sh", "debian", "/bin/sh"),
        ("sh", "alpine", "sh"),  # busybox
        ("curl", "debian", ""),  # found on PATH: nothing more to say
        ("nginx", "debian", ""),
        ("/usr/sbin/nginx", "debian", ""),
        ("sh", "busybox", ""),  # a hard link: the kernel sees /bin/sh
    ],
)
def test_the_program_as_written_is_kept_when_apparmor_sees_another(
        program: str, layout: str, written: str) -> None:
    assert program_written(program, program_paths(program, layout)[-1]) == written


@pytest.mark.parametrize(
    ("image", "command", "exe"),
    [
        ("busybox:1.28", "sh", "/bin/sh"),
        ("alpine:3.20", "sh", "/bin/busybox"),
        ("nginx:1.27", "sh", "/usr/bin/dash"),
        ("nginx:1.27", "nginx", "/usr/sbin/nginx"),
        ("registry.example.com/team/app:1", "sh", "/bin/sh"),
    ],
)
def test_aa_status_shows_the_path_the_process_runs_from(
        image: str, command: str, exe: str, tmp_path: Path, scenario: LoadedScenario) -> None:
    """aa-status prints each confined process by its executable, symlinks resolved."""
    from dataclasses import replace

    from lab.backends.sim.apparmor import confined_processes

    pods = list(scenario.model.setup.pods)
    hello = pods[0]
    c = replace(hello.containers[0], image=image, command=[command, "-c", "x"])
    pods[0] = replace(hello, containers=[c])
    model = replace(scenario.model, setup=replace(scenario.model.setup, pods=pods))
    sc = LoadedScenario(model, scenario.root, scenario.doc)
    ws = workspace(tmp_path, sc, solved=True)
    procs = confined_processes(ws, sc, "worker")
    assert [(p[0], p[2]) for p in procs][0] == (exe, "k8s-deny-write")


def test_file_paths_follow_the_image_symlinks() -> None:
    assert file_paths("/var/run/nginx.pid", "debian") == ["/var/run/nginx.pid", "/run/nginx.pid"]
    assert file_paths("/var/run", "alpine") == ["/var/run", "/run"]
    assert file_paths("/var/running", "debian") == ["/var/running"]
    assert file_paths("/bin/../etc//shadow", "debian") == ["/etc/shadow"]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("manifest: {node: controlplane, path: /root/hello.yaml}",
         "manifest: {node: cp, path: /root/hello.yaml}",
         "setup.pods[0].manifest.node: no node named 'cp'"),
        ("manifest: {node: controlplane, path: /root/hello.yaml}",
         "manifest: {node: controlplane, path: root/hello.yaml}",
         "setup.pods[0].manifest.path: must be an absolute path on the node"),
        ('sockets: ["inet raw"]', 'sockets: ["inet6 icmp"]', "attack[4].effects.sockets[0]: "
         "'inet6 icmp' is not a socket"),
        ('sockets: ["inet raw"]', 'sockets: ["bluetooth raw"]', "is not a socket"),
        ("        - node: worker\n          command: apparmor_parser -r /etc/apparmor.d/nginx",
         "        - node: wrker\n          command: apparmor_parser -r /etc/apparmor.d/nginx",
         "tasks[1].solution.node_exec[0].node: no node named 'wrker'"),
        ("    - name: legacy\n      apparmor: false",
         "    - name: legacy\n      apparmor: nope", "cluster.nodes[2].apparmor: must be"),
    ],
)
def test_new_fields_are_validated(old: str, new: str, message: str, tmp_path: Path) -> None:
    import shutil

    from lab.scenarios.loader import ScenarioError

    folder = tmp_path / "apparmor-lab"
    shutil.copytree(FIXTURE, folder)
    text = (folder / "scenario.yaml").read_text()
    assert old in text
    (folder / "scenario.yaml").write_text(text.replace(old, new, 1))
    with pytest.raises(ScenarioError) as e:
        load_scenario(folder)
    assert any(message in str(err) for err in e.value.errors), [str(x) for x in e.value.errors]


def test_setup_load_profiles_are_loaded_at_start_and_reset(tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "apparmor-lab"
    shutil.copytree(FIXTURE, folder)
    load = "  load_profiles:\n    - {node: worker, path: /etc/apparmor.d/k8s-deny-write}\n"
    text = (folder / "scenario.yaml").read_text().replace("  pods:\n", load + "  pods:\n", 1)
    (folder / "scenario.yaml").write_text(text)
    sc = load_scenario(folder)
    ws = workspace(tmp_path, sc, solved=False)
    ev = SimBackend().run_attack(sc, ws).apparmor
    assert ev is not None and [p.name for p in ev.nodes["worker"].loaded] == ["k8s-deny-write"]
    service.node_exec(Opened(ws, sc), "worker", ["apparmor_parser", "-R",
                                                  "/etc/apparmor.d/k8s-deny-write"])
    service.reset(Opened(ws, sc))
    ev = SimBackend().run_attack(sc, ws).apparmor
    assert ev is not None and [p.name for p in ev.nodes["worker"].loaded] == ["k8s-deny-write"]


def test_apparmor_nodes_start_with_their_profile_folder(tmp_path: Path,
                                                       scenario: LoadedScenario) -> None:
    """Every AppArmor node has /etc/apparmor.d, where a learner writes a new profile."""
    ws = workspace(tmp_path, scenario, False)
    assert (ws.node_root("worker") / "etc" / "apparmor.d").is_dir()
    assert (ws.node_root("controlplane") / "etc" / "apparmor.d").is_dir()
    assert not (ws.node_root("legacy") / "etc" / "apparmor.d").exists()  # no AppArmor there
