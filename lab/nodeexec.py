"""`cks-lab node exec NODE -- COMMAND`: node commands, as the learner runs them on the exam.

In the sim backend a node is a folder, edited with the learner's own editor; the
commands that change what the node's kernel holds are simulated
(lab/backends/sim/apparmor_cmds.py): `apparmor_parser` loads, replaces and removes
profiles, `aa-status` shows them. Anything else is "command not found", with a
word on where the node's files are.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath

from lab.backends.sim.apparmor import confined_processes
from lab.backends.sim.apparmor_cmds import PARSER, ExecResult, ParserRun, aa_status
from lab.backends.sim.apparmor_kernel import loaded
from lab.errors import LabError
from lab.scenarios.loader import LoadedScenario
from lab.workspace import Workspace

STATUS = ("aa-status", "apparmor_status")
COMMANDS = (PARSER, *STATUS)
UTILS = {
    "aa-enforce": f"load the profile in enforce mode with: {PARSER} -r /etc/apparmor.d/NAME",
    "aa-complain": f"load the profile in complain mode with: {PARSER} -C -r /etc/apparmor.d/NAME",
    "aa-disable": f"unload the profile with: {PARSER} -R /etc/apparmor.d/NAME",
}


def node_exec(ws: Workspace, sc: LoadedScenario, node: str, argv: Sequence[str]) -> ExecResult:
    """Run a command on a sim node; what it prints and its exit status."""
    from lab.exam.guard import refuse_after_deadline

    refuse_after_deadline(ws, "node exec")  # an exam item's time is up: no more work on it
    nodes = {n.name: n for n in sc.model.cluster.nodes}
    if node not in nodes:
        raise LabError(f"no node {node!r} in this scenario (nodes: {', '.join(nodes)})")
    if not argv:
        raise LabError("give the command after --, e.g. "
                       f"cks-lab node exec {node} -- {PARSER} -r /etc/apparmor.d/NAME")
    prog = PurePosixPath(argv[0]).name
    enabled = nodes[node].apparmor
    if prog == PARSER:
        return ParserRun(ws, node, enabled).run(list(argv[1:]))
    if prog in STATUS:
        procs = confined_processes(ws, sc, node) if enabled else []
        return aa_status(loaded(ws, node), enabled, list(argv[1:]), procs)
    res = ExecResult(code=127)
    res.err(f"bash: {argv[0]}: command not found")
    if prog in UTILS:
        # apparmor-utils is not on exam nodes by default either; say what does the same.
        res.err(f"({prog} is in apparmor-utils; {UTILS[prog]})")
    res.err(f"(cks-lab simulates {', '.join(COMMANDS)} on the nodes; edit a node's files in the "
            f"workspace, under {ws.node_root(node)})")
    return res
