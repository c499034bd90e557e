"""`cks-lab shell`: the command built, and what a real bash started by it shows."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import lab
from lab import service
from lab.cli import main
from lab.errors import LabError
from lab.scenarios.catalog import Catalog
from lab.shell import ShellCommand, shell_command

BASH = shutil.which("bash")
needs_bash = pytest.mark.skipif(BASH is None, reason="no bash on PATH")


def started(
    tmp_path: Path, scenario: str = "audit-enable-logging", name: str = "ws"
) -> service.Opened:
    op, created = service.start(Catalog.default(()), scenario, tmp_path / name)
    assert created
    return op


def env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", os.defpath), "LANG": "C"}


def run(sc: ShellCommand, script: str) -> subprocess.CompletedProcess[str]:
    """The shell as built, fed `script` on stdin. A new session: an interactive
    bash must not take this terminal's foreground (it prompts on stderr)."""
    return subprocess.run(
        sc.argv,
        cwd=sc.cwd,
        env=sc.env,
        input=script,
        capture_output=True,
        text=True,
        timeout=30,
        start_new_session=True,
    )


@needs_bash
def test_the_command_starts_bash_in_the_node_folder(tmp_path: Path) -> None:
    op = started(tmp_path)
    sc = service.shell_command(op, base_env=env())
    root = Path(os.path.realpath(op.ws.node_root("controlplane")))
    rc = Path(os.path.realpath(tmp_path / "ws")) / ".lab/shell/bashrc-controlplane"
    assert sc.argv == [BASH, "--noprofile", "--rcfile", str(rc), "-i"]
    assert rc.is_file() and "PROMPT_COMMAND" in rc.read_text()
    assert sc.cwd == root
    assert sc.display == f"cd {root}"
    assert sc.env["CKS_LAB_NODE"] == "controlplane"
    assert sc.env["CKS_LAB_NODE_ROOT"] == str(root)
    assert sc.env["CKS_LAB_WORKSPACE"] == os.path.realpath(tmp_path / "ws")
    assert sc.env["HISTFILE"] == os.path.realpath(tmp_path / "ws/.lab/shell/history")
    assert sc.env["PATH"] == env()["PATH"] and sc.env["LANG"] == "C"  # the base env is kept


def test_default_node_is_the_one_the_scenario_files_are_on(tmp_path: Path) -> None:
    # falco-shell-alert's files are on the worker, the second node
    op = started(tmp_path, "falco-shell-alert")
    assert shell_command(op, base_env=env()).env["CKS_LAB_NODE"] == "worker"
    assert shell_command(op, "controlplane", base_env=env()).cwd.name == "controlplane"


def test_an_unknown_node_is_an_error_naming_the_nodes(tmp_path: Path) -> None:
    op = started(tmp_path)
    with pytest.raises(LabError, match=r"no node 'cp'.*its nodes: controlplane, worker"):
        shell_command(op, "cp", base_env=env())


def test_a_kind_workspace_without_its_cluster_says_so(tmp_path: Path) -> None:
    op = started(tmp_path)
    op.ws.update_state(backend="kind", cluster="cks-lab-nonesuch")
    with pytest.raises(LabError) as err:
        shell_command(op, base_env=env())
    # never another container: the lab says the cluster is not up and how to get it
    assert "the kind cluster 'cks-lab-nonesuch' is not up" in str(err.value)
    assert "cks-lab up --name cks-lab-nonesuch --scenario" in str(err.value)


@needs_bash
def test_the_prompt_shows_the_path_on_the_node(tmp_path: Path) -> None:
    op = started(tmp_path)
    sc = shell_command(op, base_env=env())
    out = run(
        sc,
        "cd etc\ncd kubernetes\ncd /etc/kubernetes/manifests\npwd\ncd\nbuiltin cd /\nexit 7\n",
    )
    assert out.returncode == 7, out.stderr
    assert re.findall(r"\[cks-lab\] (.*?)[#$] ", out.stderr) == [
        "root@controlplane:/",
        "root@controlplane:/etc",
        "root@controlplane:/etc/kubernetes",
        "root@controlplane:/etc/kubernetes/manifests",
        "root@controlplane:/etc/kubernetes/manifests",  # after pwd
        "root@controlplane:/",  # `cd` alone: the node's /
        "(not on node controlplane) /",  # this computer's /, said so
    ]
    # `cd /etc/...` went to the node's folder, not this computer's /etc
    root = os.path.realpath(op.ws.node_root("controlplane"))
    assert out.stdout.splitlines()[-1] == f"{root}/etc/kubernetes/manifests"
    banner = " ".join(out.stdout.split())
    assert "This folder is controlplane's `/`" in banner
    assert "`cks-lab check` grades your work; `exit` returns to the lab." in banner
    # history is kept in the workspace, for the next shell
    history = (tmp_path / "ws/.lab/shell/history").read_text()
    assert "cd kubernetes" in history


@needs_bash
def test_a_folder_name_in_the_prompt_is_shown_not_run(tmp_path: Path) -> None:
    op = started(tmp_path)
    odd = op.ws.node_root("controlplane") / "$(touch pwned)"
    odd.mkdir()
    out = run(shell_command(op, base_env=env()), "cd '$(touch pwned)'\nexit\n")
    assert "root@controlplane:/$(touch pwned)# " in out.stderr
    assert not list(tmp_path.rglob("pwned"))


@needs_bash
def test_cks_lab_inside_the_shell_works_on_the_shells_workspace(tmp_path: Path) -> None:
    first = started(tmp_path, name="first")
    started(tmp_path, "audit-policy-secrets", name="second")  # now the current one
    script = f"{sys.executable} -c 'from lab.cli import main; main()' status\nexit\n"
    out = run(shell_command(first, base_env=env()), script)
    assert "(audit-enable-logging) — workspace" in out.stdout, out.stdout + out.stderr
    assert "`cks-lab check` grades" in " ".join(out.stdout.split())


def test_without_bash_it_is_sh_with_the_same_banner(tmp_path: Path) -> None:
    sh = shutil.which("sh")
    if sh is None:
        pytest.skip("no sh")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sh").symlink_to(sh)
    op = started(tmp_path)
    sc = shell_command(op, base_env={"PATH": str(bin_dir)})
    assert sc.argv == [str(bin_dir / "sh"), "-i"]
    assert sc.env["ENV"].endswith("/.lab/shell/shrc-controlplane")
    out = run(sc, "cd etc\nexit 4\n")
    assert out.returncode == 4
    assert "[cks-lab] controlplane:" in out.stderr
    assert "This folder is controlplane's `/`" in " ".join(out.stdout.split())


def test_cli_print_shows_the_command_for_your_own_terminal(tmp_path: Path) -> None:
    op = started(tmp_path, "falco-shell-alert")
    r = CliRunner().invoke(main, ["shell", "--print", "-w", str(tmp_path / "ws")])
    assert r.exit_code == 0, r.output
    assert r.stdout == f"cd {os.path.realpath(op.ws.node_root('worker'))}\n"
    r = CliRunner().invoke(main, ["shell", "nope", "--print"])
    assert r.exit_code == 2 and "no node 'nope'" in r.stderr


@needs_bash
def test_cli_shell_exits_with_the_shells_status(tmp_path: Path, lab_home: Path) -> None:
    started(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", "from lab.cli import main; main()", "shell", "worker"],
        input="pwd\nexit 3\n",
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
        env={
            **os.environ,
            "CKS_LAB_HOME": str(lab_home),
            "PYTHONPATH": str(Path(lab.__file__).parents[1]),
        },
    )
    assert out.returncode == 3, out.stderr
    assert out.stdout.splitlines()[-1] == os.path.realpath(tmp_path / "ws/nodes/worker")
