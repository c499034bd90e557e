"""How a lab kind cluster is: its phase from kind, docker, state.json and the lock.

Apart from the lifecycle (lab.kind.cluster) because `up` and the readiness checks
look at the cluster between their steps, and `status` shows it; the phases and what
each detail line tells the learner to do are decided here, in one place.
"""

from __future__ import annotations

from lab.kind import kind_cli
from lab.kind.cluster_errors import QUERY_TIMEOUT, failure
from lab.kind.cluster_lock import lock_held
from lab.kind.cluster_state import (
    CREATED,
    CREATING,
    FAILED,
    READY,
    UNKNOWN,
    ClusterHandle,
    ClusterStatus,
    read_state,
)
from lab.kind.kind_cli import NodeState
from lab.kind.runner import CommandNotFound, CommandTimeout, Runner

STARTABLE = ("exited", "created")  # docker states `docker start` brings back


def observe(handle: ClusterHandle, run: Runner, *, look_at_lock: bool) -> ClusterStatus:
    """What kind, docker and state.json say about the cluster (`status`, and `up`
    before and after it acts: that one holds the lock, so need not look at it)."""
    state = read_state(handle)
    detail: list[str] = []
    missing: list[str] = []
    errors: list[str] = []
    exists = False
    try:
        res = run.run(kind_cli.get_clusters_argv(), timeout=QUERY_TIMEOUT)
        if res.code == 0:
            exists = handle.name in kind_cli.parse_get_clusters(res.stdout)
        else:
            errors.append(f"`kind get clusters` failed: {failure(res)}")
    except CommandNotFound as e:
        detail.append(e.message)
        missing.append(e.program)
    except (CommandTimeout, OSError) as e:  # a hung kind, a binary that cannot run
        errors.append(_failed("kind get clusters", e))
    nodes: list[NodeState] = []
    try:
        res = run.run(kind_cli.node_ps_argv(handle.name), timeout=QUERY_TIMEOUT)
        if res.code == 0:
            nodes = kind_cli.parse_node_ps(res.stdout, handle.name)
        else:
            errors.append(f"`docker ps` failed: {failure(res)}")
    except CommandNotFound as e:
        detail.append(e.message)
        missing.append(e.program)
    except (CommandTimeout, OSError) as e:
        errors.append(_failed("docker ps", e))
    detail.extend(errors)
    kubeconfig = handle.kubeconfig if handle.kubeconfig.is_file() else None
    recorded = state.get("phase")
    stopped = [n for n in nodes if not n.running]

    busy = look_at_lock and lock_held(handle)
    if busy and recorded != CREATING:
        detail.append("another cks-lab is running `up` or `down` on it right now")

    if errors:
        # what kind and docker did not say cannot be read from their empty answers:
        # no phase, and no note derived from one (`up` acts on none of it)
        phase = UNKNOWN
        detail.append(
            "cannot tell how the cluster is while kind or docker fails; "
            "`cks-lab doctor` checks them"
        )
    elif recorded == CREATING:
        phase = "creating"
        detail.append(
            "it is being created by another cks-lab (a `cks-lab up` is running): wait for it"
            if busy
            else "a `cks-lab up` was interrupted while creating it: `cks-lab up` deletes and "
            "recreates it, `cks-lab down` removes it"
        )
    elif not exists and not nodes:
        phase = "absent"
        if recorded == FAILED:
            detail.append(f"the last `cks-lab up` failed: {state.get('error', '?')}")
    elif not nodes or stopped or not exists:
        phase = "broken"
        for n in stopped:
            detail.append(f"node {n.name} is {n.state} ({n.status or 'no status'})")
        if not nodes:
            detail.append("kind lists it but docker shows no node containers")
        elif exists and recorded in (READY, CREATED) and startable(stopped):
            detail.append("its node containers are stopped: `cks-lab up` starts them again")
    elif recorded == FAILED:
        phase = "broken"
        detail.append(f"the last `cks-lab up` failed: {state.get('error', '?')}")
    elif recorded not in (READY, CREATED):
        phase = "created"
        detail.append(
            "kind has this cluster but the lab did not create it (or lost its record): "
            "`cks-lab up --recreate` makes it the lab's"
        )
    elif kubeconfig is None:
        phase = "broken"
        detail.append(f"its kubeconfig {handle.kubeconfig} is missing")
    elif recorded == CREATED:
        phase = "created"
        detail.append(
            "its nodes were not Ready when last checked (they may still be starting): "
            "`cks-lab up` checks again"
        )
    else:
        phase = "ready"
    return ClusterStatus(
        handle.name,
        exists,
        nodes,
        phase,
        phase == "ready",
        detail,
        kubeconfig,
        state.get("created"),
        state.get("config_digest"),
        missing,
        errors,
    )


def _failed(command: str, e: CommandTimeout | OSError) -> str:
    if isinstance(e, CommandTimeout):
        return e.message  # "`kind get clusters` did not finish within 30 s"
    return f"`{command}` cannot be run: {e.strerror or e}"  # e.g. "Exec format error"


def startable(stopped: list[NodeState]) -> bool:
    return bool(stopped) and all(n.state in STARTABLE for n in stopped)
