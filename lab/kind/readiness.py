"""Waiting for a lab kind cluster's nodes to be Ready, and starting stopped ones.

`up` finishes a cluster kind made but whose nodes were not Ready (kind's --wait ran
out), and brings back one whose node containers stopped (Docker Desktop quit, a
reboot) rather than delete the learner's cluster. Apart from the lifecycle for the
polling and its timeouts (which tests shorten here).
"""

from __future__ import annotations

import threading
import time

from lab.errors import LabError
from lab.kind import kind_cli
from lab.kind.cluster_errors import QUERY_TIMEOUT, ClusterCancelled, ClusterNotReady, failure
from lab.kind.cluster_state import CREATED, READY, ClusterHandle, ClusterStatus, write_state
from lab.kind.cluster_status import observe
from lab.kind.kind_cli import NodeState
from lab.kind.runner import Runner
from lab.work import Progress

READY_TIMEOUT = 120.0  # how long `up` waits for the nodes of an existing cluster to be Ready
READY_POLL = 2.0
START_TIMEOUT = 30.0  # how long started node containers get to show as running


def nodes_ready(handle: ClusterHandle, run: Runner) -> tuple[bool, str]:
    """Whether every node of the cluster is Ready, as the control-plane node's own
    kubectl sees it (what kind's --wait checks); else why not."""
    st = observe(handle, run, look_at_lock=False)
    plane = next((n for n in st.nodes if n.role == "control-plane"), None)
    if plane is None or not plane.running:
        return False, "its control-plane node container is not running"
    res = run.run(kind_cli.node_get_nodes_argv(plane.id), timeout=QUERY_TIMEOUT)
    if res.code != 0:
        return False, f"its API server does not answer yet: {failure(res)}"
    ready = kind_cli.parse_nodes_ready(res.stdout)
    waiting = sorted(name for name, ok in ready.items() if not ok)
    if waiting:
        return False, f"not Ready: {', '.join(waiting)}"
    if len(ready) < len(st.nodes):
        return False, f"{len(ready)} of {len(st.nodes)} nodes have joined"
    return True, ""


def sleep(cancel: threading.Event | None, seconds: float) -> bool:
    """Wait; True when cancelled meanwhile."""
    if cancel is None:
        time.sleep(seconds)
        return False
    return cancel.wait(seconds)


def wait_ready(
    handle: ClusterHandle, progress: Progress, run: Runner, cancel: threading.Event | None
) -> tuple[bool, str]:
    progress(f"Waiting ≤ {READY_TIMEOUT:.0f}s for the nodes of {handle.name} to be Ready")
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        ok, why = nodes_ready(handle, run)
        if ok or time.monotonic() >= deadline:
            return ok, why
        if sleep(cancel, READY_POLL):
            raise ClusterCancelled(
                f"cancelled while waiting for the nodes of kind cluster {handle.name!r}: "
                "`cks-lab up` checks them again"
            )


def promote(
    handle: ClusterHandle, progress: Progress, run: Runner, cancel: threading.Event | None
) -> ClusterStatus:
    """A made cluster whose nodes were not Ready: ready once they are."""
    ok, why = wait_ready(handle, progress, run, cancel)
    if ok:
        write_state(handle, phase=READY, error=None)
        progress(f"Kind cluster {handle.name} is ready: all its nodes are Ready")
        return observe(handle, run, look_at_lock=False)
    write_state(handle, phase=CREATED)
    raise ClusterNotReady(
        f"the nodes of kind cluster {handle.name!r} are not Ready after "
        f"{READY_TIMEOUT:.0f}s ({why}): run `cks-lab up` again later (it checks again), or "
        "`cks-lab up --recreate` to delete and recreate the cluster",
        observe(handle, run, look_at_lock=False),
    )


def restart(
    handle: ClusterHandle,
    stopped: list[NodeState],
    progress: Progress,
    run: Runner,
    cancel: threading.Event | None,
) -> ClusterStatus:
    """Node containers that stopped (Docker Desktop quit, a reboot): start them again,
    control plane first, rather than delete the learner's cluster."""
    names = ", ".join(n.name for n in stopped)
    progress(
        f"Kind cluster {handle.name}: its node containers are stopped ({names}); starting them"
    )
    # until its nodes are seen Ready, the next `up` checks (and never deletes) it
    write_state(handle, phase=CREATED)
    for n in sorted(stopped, key=lambda n: n.role != "control-plane"):
        progress(f"Starting node container {n.name}")
        res = run.run(kind_cli.docker_start_argv(n.id), timeout=QUERY_TIMEOUT, cancel=cancel)
        if res.cancelled:
            raise ClusterCancelled(
                f"cancelled while starting the nodes of kind cluster {handle.name!r}: "
                "`cks-lab up` starts them"
            )
        if res.code != 0:
            raise LabError(
                f"`docker start {n.name}` failed: {failure(res)}; `cks-lab up --recreate` "
                f"deletes and recreates kind cluster {handle.name!r}"
            )
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        st = observe(handle, run, look_at_lock=False)
        down = [n for n in st.nodes if not n.running]
        if not down:
            break
        if time.monotonic() >= deadline:
            raise ClusterNotReady(
                f"the node containers of kind cluster {handle.name!r} do not stay running "
                f"({', '.join(f'{n.name}: {n.status or n.state}' for n in down)}): "
                "`cks-lab up --recreate` deletes and recreates it",
                st,
            )
        if sleep(cancel, READY_POLL):
            raise ClusterCancelled(
                f"cancelled while starting the nodes of kind cluster {handle.name!r}: "
                "`cks-lab up` checks them again"
            )
    return promote(handle, progress, run, cancel)
