"""`cks-lab shell [NODE]`: a shell in a sim node's folder, as `ssh NODE` is on the exam.

The command is built here, run by the CLI (and the TUI, suspended) with `run`.
In bash the prompt shows where you are *on the node*
(`[cks-lab] root@controlplane:/etc/kubernetes# `), and `cd /etc` goes to the
node's /etc. The rc file that does this is written into the workspace's .lab/
each time, so a newer cks-lab never runs an older one's.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import textwrap
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lab.errors import LabError
from lab.fsutil import atomic_write_bytes

if TYPE_CHECKING:
    from lab.service import Opened

SHELL_DIR = "shell"  # under the workspace's .lab/
HISTORY_FILE = "history"


@dataclass(frozen=True)
class ShellCommand:
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    # the copyable command line for people who prefer their own terminal
    display: str


def default_node(op: Opened) -> str:
    """The node of the scenario's first setup file (the one the briefing names
    first), else the first node."""
    files = op.sc.model.setup.files
    return files[0].node if files else op.sc.model.cluster.nodes[0].name


def banner(node: str, check: str) -> str:
    return (
        f"cks-lab: a shell on node {node} (sim backend). This folder is {node}'s `/`: "
        "edit the node's files here with your own tools. `cd /etc` goes to the node's "
        "/etc; other commands read a path starting with / as this computer's, so give "
        f"them paths relative to here. `{check}` grades your work; `exit` returns to the lab."
    )


# The prompt is computed from $PWD by PROMPT_COMMAND into a variable that PS1
# expands: a folder name holding `$(...)` is shown, never run (an expansion's
# result is not expanded again).
_BASH_RC = r"""# Written by cks-lab for `cks-lab shell` (rewritten each time one starts).
set -P  # $PWD is the real path: the prompt can tell when you leave the node
__cks_lab_prompt() {
    case "$PWD/" in
        "$CKS_LAB_NODE_ROOT"/*)
            __cks_lab_where="${PWD#"$CKS_LAB_NODE_ROOT"}"
            __cks_lab_where="root@$CKS_LAB_NODE:${__cks_lab_where:-/}# " ;;
        *) __cks_lab_where="(not on node $CKS_LAB_NODE) $PWD\$ " ;;
    esac
}
PROMPT_COMMAND=__cks_lab_prompt
PS1='[cks-lab] ${__cks_lab_where}'
# `cd /etc` goes to the node's /etc, as on the node; `builtin cd /etc` to this computer's.
cd() {
    if [ "$#" -eq 0 ]; then builtin cd -- "$CKS_LAB_NODE_ROOT"; return; fi
    if [ "$#" -eq 1 ]; then
        case "$1" in
            "$CKS_LAB_NODE_ROOT" | "$CKS_LAB_NODE_ROOT"/*) ;;
            /*) builtin cd -- "$CKS_LAB_NODE_ROOT$1"; return ;;
        esac
    fi
    builtin cd "$@"
}
shopt -s histappend
"""

# Without bash (a minimal system): the banner, and a prompt with the real path.
_SH_RC = r"""# Written by cks-lab for `cks-lab shell` (rewritten each time one starts).
PS1='[cks-lab] $CKS_LAB_NODE:$PWD# '
"""


def shell_command(
    op: Opened, node: str | None = None, *, base_env: Mapping[str, str] | None = None
) -> ShellCommand:
    """The command that starts a shell in `node`'s folder (default: `default_node`).

    `base_env` is the environment to start from (default: this process's).
    Writes the shell's rc file into the workspace's .lab/ folder.
    """
    from lab.exam.guard import refuse_after_deadline

    refuse_after_deadline(op.ws, "shell")  # an exam item's time is up: no more work on it
    backend = str(op.ws.state().get("backend", "sim"))
    nodes = [n.name for n in op.sc.model.cluster.nodes]
    node = node or default_node(op)
    if node not in nodes:
        raise LabError(f"no node {node!r} in scenario {op.sc.id!r} (its nodes: {', '.join(nodes)})")
    if backend == "kind":
        return _kind_shell(op, node, base_env)
    op.ws.guard()  # a symlinked node root would put the shell outside the workspace
    op.ws.node_root(node).mkdir(parents=True, exist_ok=True)  # a node with no files yet
    root = Path(os.path.realpath(op.ws.node_root(node)))
    ws_root = Path(os.path.realpath(op.ws.root))
    lab = ws_root / op.ws.lab_dir.name / SHELL_DIR

    env = dict(os.environ if base_env is None else base_env)
    env.update(
        CKS_LAB_NODE=node,
        CKS_LAB_NODE_ROOT=str(root),
        CKS_LAB_WORKSPACE=str(ws_root),
        HISTFILE=str(lab / HISTORY_FILE),  # one history per workspace, kept across shells
        PWD=str(root),
    )
    words = textwrap.fill(
        banner(node, _check_command(op, ws_root)),
        78,
        break_on_hyphens=False,
        break_long_words=False,
    )
    text = f"printf '%s\\n\\n' {shlex.quote(words)}\n"
    bash = shutil.which("bash", path=env.get("PATH", os.defpath))
    if bash:
        rc = lab / f"bashrc-{node}"
        atomic_write_bytes(rc, (_BASH_RC + text).encode(), within=ws_root)
        argv = [bash, "--noprofile", "--rcfile", str(rc), "-i"]
    else:
        rc = lab / f"shrc-{node}"
        atomic_write_bytes(rc, (_SH_RC + text).encode(), within=ws_root)
        env["ENV"] = str(rc)  # what an interactive POSIX sh runs first
        argv = [shutil.which("sh", path=env.get("PATH", os.defpath)) or "/bin/sh", "-i"]
    return ShellCommand(argv, root, env, f"cd {shlex.quote(str(root))}")


def _kind_shell(op: Opened, node: str, base_env: Mapping[str, str] | None) -> ShellCommand:
    """On kind the node is a real container: `docker exec -it NODE bash`, as the
    exam's `ssh NODE`. `cks-lab check` runs outside it, on the host."""
    from lab import service

    service.require_on_cluster(op, "open a shell on its nodes")
    backend = service.workspace_backend(op.ws)
    argv = backend.shell_argv(op.sc, node)  # type: ignore[attr-defined]
    env = dict(os.environ if base_env is None else base_env)
    env["CKS_LAB_WORKSPACE"] = str(op.ws.root.resolve())
    return ShellCommand(argv, op.ws.root, env, shlex.join(argv))


def _check_command(op: Opened, ws_root: Path) -> str:
    """Inside the shell CKS_LAB_WORKSPACE names this workspace, so plain `check` grades it."""
    return "cks-lab check"


def _ignore(signum: int, frame: object) -> None:
    """Ctrl-C while the shell runs is the shell's; a handler (not SIG_IGN) is
    reset to the default in the child, so its own commands still get it."""


def run(sc: ShellCommand) -> int:
    """Run the shell in this terminal until it exits; its exit status."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, _ignore) if main else None
    try:
        return subprocess.call(sc.argv, cwd=sc.cwd, env=sc.env)
    except OSError as e:
        raise LabError(f"cannot start the shell {sc.argv[0]}: {e.strerror or e}") from None
    finally:
        if main:
            signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)
