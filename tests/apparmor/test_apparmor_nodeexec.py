"""`cks-lab node exec`: apparmor_parser and aa-status on the sim's nodes, the kernel
state they leave in the workspace, and start -> load -> check end to end.

Table: tests/apparmor/cases/nodeexec.yaml (on tests/scenarios/fixtures/apparmor-lab).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from lab import service
from lab.backends.sim import SimBackend
from lab.backends.sim.apparmor_kernel import loaded
from lab.cli import main
from lab.nodefs import resolve_in_node
from lab.scenarios.loader import LoadedScenario, load_scenario
from lab.service import Opened
from lab.workspace import Workspace, create_workspace

HERE = Path(__file__).parent
CASES = yaml.safe_load((HERE / "cases" / "nodeexec.yaml").read_text())
FIXTURE = HERE.parent / "scenarios" / "fixtures" / "apparmor-lab"


@pytest.fixture(scope="module")
def scenario() -> LoadedScenario:
    return load_scenario(FIXTURE)


def workspace(tmp: Path, sc: LoadedScenario) -> Workspace:
    ws = create_workspace(tmp / "ws", sc, "sim")
    SimBackend().prepare(sc, ws)
    return ws


def write(ws: Workspace, node: str, path: str, text: str) -> None:
    target = resolve_in_node(ws.node_root(node), path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def run(ws: Workspace, sc: LoadedScenario, node: str, cmd: str) -> Any:
    return service.node_exec(Opened(ws, sc), node, shlex.split(cmd))


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_node_exec(case: dict[str, Any], tmp_path: Path, scenario: LoadedScenario) -> None:
    ws = workspace(tmp_path, scenario)
    for node, files in case.get("files", {}).items():
        for path, text in files.items():
            write(ws, node, path, text)
    for step in case["run"]:
        res = run(ws, scenario, step.get("node", "worker"), step["cmd"])
        where = f"{step['cmd']}: out={res.stdout!r} err={res.stderr!r}"
        assert res.code == step.get("code", 0), where
        for text in step.get("out", []):
            assert text in res.stdout, where
        for text in step.get("err", []):
            assert text in res.stderr, where
        if "out_exact" in step:
            assert res.stdout == step["out_exact"], where
        if "err_exact" in step:
            assert res.stderr == step["err_exact"], where
    for node, expect in case.get("loaded", {}).items():
        assert [[p.name, p.mode] for p in loaded(ws, node)] == expect


def test_unknown_node_is_an_error(tmp_path: Path, scenario: LoadedScenario) -> None:
    ws = workspace(tmp_path, scenario)
    with pytest.raises(Exception, match="no node 'wroker'"):
        run(ws, scenario, "wroker", "aa-status")


def test_the_kernel_keeps_the_text_it_loaded(tmp_path: Path, scenario: LoadedScenario) -> None:
    """Editing the file (or a file it includes) after loading changes nothing."""
    ws = workspace(tmp_path, scenario)
    write(ws, "worker", "/etc/apparmor.d/abstractions/mine", "  /etc/** r,\n")
    write(ws, "worker", "/etc/apparmor.d/p", "profile p {\n  #include <abstractions/mine>\n}\n")
    assert run(ws, scenario, "worker", "apparmor_parser -r /etc/apparmor.d/p").code == 0
    write(ws, "worker", "/etc/apparmor.d/abstractions/mine", "  deny /etc/** r,\n")
    write(ws, "worker", "/etc/apparmor.d/p", "profile p {\n}\n")
    from lab.backends.sim.apparmor_kernel import compiled
    from lab.engines.apparmor import decide

    (lp,) = loaded(ws, "worker")
    assert "include" in lp.text
    assert decide(compiled(lp), "r /etc/hosts").verdict == "ALLOW"
    state = json.loads((ws.lab_dir / "state.json").read_text())
    assert state["apparmor"]["worker"][0]["name"] == "p"


def test_reset_is_a_fresh_boot(tmp_path: Path, scenario: LoadedScenario) -> None:
    ws = workspace(tmp_path, scenario)
    run(ws, scenario, "worker", "apparmor_parser -r /etc/apparmor.d/k8s-deny-write")
    assert loaded(ws, "worker")
    service.reset(Opened(ws, scenario))
    assert loaded(ws, "worker") == []


def test_aa_status_lists_confined_containers(tmp_path: Path, scenario: LoadedScenario) -> None:
    ws = workspace(tmp_path, scenario)
    service.show_solution(Opened(ws, scenario), "deny-write", apply=True)
    out = run(ws, scenario, "worker", "aa-status").stdout
    assert "2 processes are in enforce mode." in out  # and nginx, under the default
    assert "   /bin/sh (" in out and ") k8s-deny-write" in out


def test_solution_commands_that_fail_say_so(tmp_path: Path, scenario: LoadedScenario) -> None:
    ws = workspace(tmp_path, scenario)
    resolve_in_node(ws.node_root("worker"), "/etc/apparmor.d/k8s-deny-write").unlink()
    failed = "apparmor_parser -r /etc/apparmor.d/k8s-deny-write.*exit 2"
    with pytest.raises(Exception, match=failed):
        service.show_solution(Opened(ws, scenario), "deny-write", apply=True)


def cli(*args: str, code: int) -> str:
    r = CliRunner().invoke(main, list(args), prog_name="cks-lab")
    if r.exception and not isinstance(r.exception, SystemExit):
        raise r.exception
    assert r.exit_code == code, r.output
    return r.output


def test_start_load_check_end_to_end(tmp_path: Path) -> None:
    ws = str(tmp_path / "ws")
    cli("start", str(FIXTURE), "--workspace", ws, code=0)
    out = cli("check", "-w", ws, code=1)
    assert "was never loaded" in out
    # load the profile the way the exam does, then point the pod at it
    cli("node", "exec", "-w", ws, "worker", "--", "apparmor_parser", "-r",
        "/etc/apparmor.d/k8s-deny-write", code=0)
    status = cli("node", "exec", "-w", ws, "worker", "--", "aa-status", code=0)
    assert "   k8s-deny-write" in status
    cli("solution", "--apply", "-y", "-w", ws, code=0)
    out = cli("check", "-w", ws, code=0)
    assert "FAIL" not in out
    cli("node", "exec", "-w", ws, "worker", "--", "apparmor_parser", "-R",
        "/etc/apparmor.d/k8s-deny-write", code=0)
    out = cli("check", "-w", ws, code=1)
    assert "apparmor profile not found k8s-deny-write" in out
    # grading the workspace headlessly keeps what its kernels loaded
    res = service.grade_workspace(None, None, Path(ws), scenario_dir=FIXTURE)  # type: ignore[arg-type]
    loaded_check = res.tasks[0].checks[0]
    assert not loaded_check.passed and "never loaded" in loaded_check.explanation


def test_node_exec_cli_passes_exit_status_and_streams(tmp_path: Path) -> None:
    ws = str(tmp_path / "ws")
    cli("start", str(FIXTURE), "--workspace", ws, code=0)
    r = CliRunner().invoke(main, ["node", "exec", "-w", ws, "worker", "--", "apparmor_parser",
                                  "-r", "/etc/apparmor.d/nope"])
    assert r.exit_code == 2
    assert "File /etc/apparmor.d/nope not found, skipping..." in r.stderr
    r = CliRunner().invoke(main, ["node", "exec", "-w", ws, "nowhere", "--", "aa-status"])
    assert r.exit_code == 2 and "no node 'nowhere'" in r.stderr


def test_includes_never_leave_the_node(tmp_path: Path, scenario: LoadedScenario) -> None:
    """A symlink or an absolute include is read as the node would, inside its tree."""
    ws = workspace(tmp_path, scenario)
    folder = resolve_in_node(ws.node_root("worker"), "/etc/apparmor.d/abstractions")
    folder.mkdir(parents=True)
    (folder / "evil").symlink_to("/etc/hostname")  # the node's /etc/hostname: there is none
    write(ws, "worker", "/etc/apparmor.d/a", "profile a {\n  #include <abstractions/evil>\n}\n")
    res = run(ws, scenario, "worker", "apparmor_parser -r /etc/apparmor.d/a")
    assert res.code == 1 and "Could not open 'abstractions/evil'" in res.stderr
    write(ws, "worker", "/etc/apparmor.d/b", 'profile b {\n  include "/etc/passwd"\n}\n')
    res = run(ws, scenario, "worker", "apparmor_parser -r /etc/apparmor.d/b")
    assert res.code == 1 and "Could not open '/etc/passwd'" in res.stderr
    write(ws, "worker", "/etc/passwd", "  /etc/passwd r,\n")  # now the node has one
    assert run(ws, scenario, "worker", "apparmor_parser -r /etc/apparmor.d/b").code == 0


def test_include_dirs_from_the_command_line(tmp_path: Path, scenario: LoadedScenario) -> None:
    ws = workspace(tmp_path, scenario)
    write(ws, "worker", "/opt/inc/mine/rules", "  /srv/** r,\n")
    write(ws, "worker", "/etc/apparmor.d/c", "profile c {\n  #include <mine/rules>\n}\n")
    assert run(ws, scenario, "worker", "apparmor_parser -r /etc/apparmor.d/c").code == 1
    res = run(ws, scenario, "worker", "apparmor_parser -I /opt/inc -r /etc/apparmor.d/c")
    assert res.code == 0, res.stderr
    assert [p.name for p in loaded(ws, "worker")] == ["c"]


def test_the_real_compiler_sees_a_copy_and_has_the_last_word(
    tmp_path: Path, scenario: LoadedScenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lab.backends.sim import apparmor_cmds
    from lab.engines.apparmor import CompileResult, ProfileError

    seen: list[set[str]] = []

    def fake(path: Path, include_dirs: list[Path]) -> CompileResult:
        (inc,) = include_dirs
        seen.append({str(p.relative_to(inc)) for p in inc.rglob("*") if p.is_file()})
        err = ProfileError("boom", file=str(path), line=2)
        return CompileResult(False, 1, (err,), (), ())

    monkeypatch.setattr(apparmor_cmds, "compile_real", fake)
    ws = workspace(tmp_path, scenario)
    res = run(ws, scenario, "worker", "apparmor_parser -r /etc/apparmor.d/k8s-deny-write")
    assert res.code == 1
    assert res.stderr == ("AppArmor parser error for /etc/apparmor.d/k8s-deny-write in profile "
                          "/etc/apparmor.d/k8s-deny-write at line 2: boom\n")
    assert len(seen) == 1 and {"tunables/global", "abstractions/base"} <= seen[0]
    assert loaded(ws, "worker") == []


def test_solution_shows_node_commands_in_both_forms(tmp_path: Path) -> None:
    ws = str(tmp_path / "ws")
    cli("start", str(FIXTURE), "--workspace", ws, code=0)
    out = cli("solution", "-w", ws, code=0)
    assert ("  cks-lab node exec worker -- apparmor_parser -r /etc/apparmor.d/k8s-deny-write\n"
            "      (on the exam: ssh worker, then apparmor_parser -r "
            "/etc/apparmor.d/k8s-deny-write)\n") in out
    assert "cks-lab node exec worker -- apparmor_parser -r /etc/apparmor.d/nginx" in out
    out = cli("solution", "--apply", "-y", "-w", ws, code=0)
    assert "and the node commands were run." in out
