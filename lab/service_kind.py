"""What the service does differently on the kind backend, where the cluster holds one
scenario at a time and the learner's files are on the node containers.

lab.service re-exports these, so the CLI and the TUI call them from there.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.errors import LabError
from lab.workspace import Workspace

if TYPE_CHECKING:
    from lab.backends.kind import KindBackend
    from lab.scenarios.loader import LoadedScenario
    from lab.service import Opened


def on_cluster(ws: Workspace) -> bool:
    """Whether the workspace's scenario is the one its kind cluster holds (sim: always)."""
    kind = kind_backend(ws)
    return kind is None or kind.holds(ws)


def scenario_backend(
    sc: LoadedScenario, cluster: str | None = None, checks: Sequence[Any] | None = None
) -> tuple[str, str | None]:
    """("kind", None) when the kind backend can serve the scenario's skills on this
    host and cluster; else ("sim", why) — AppArmor needs the host's AppArmor (not on
    macOS or SELinux hosts) and a cluster made with it, Falco needs BTF. `checks`:
    `cks-lab doctor`'s, run here when not given (about a second)."""
    from lab import service  # lazily: it imports this module
    from lab.kind.availability import backend_for_scenario, host_limits
    from lab.kind.cluster import cluster_handle, cluster_has_apparmor

    if checks is None:
        from lab.kind.doctor import HostProbe, run_checks

        checks = run_checks(HostProbe(), service.data_dir())
    skills = list(sc.model.skills)
    limits = host_limits(list(checks), skills)
    if cluster_has_apparmor(cluster_handle(cluster or service.DEFAULT_CLUSTER)) is False:
        # made where the daemon had no AppArmor: its nodes cannot load profiles
        limits.setdefault("apparmor", "this cluster was made without the host's AppArmor")
    return backend_for_scenario(skills, limits)


def require_on_cluster(op: Opened, what: str) -> None:
    """On kind, refuse work on a workspace whose scenario the cluster no longer holds:
    it would attack, or write onto, another scenario's nodes."""
    from lab import service  # lazily: it imports this module

    kind = kind_backend(op.ws)
    if kind is None or kind.holds(op.ws):
        return
    from lab.kind.cluster_state import read_state

    name = kind.cluster.name
    if read_state(kind.cluster).get("phase") != "ready":  # type: ignore[arg-type]
        up = "cks-lab up" + ("" if name == service.DEFAULT_CLUSTER else f" --name {name}")
        raise LabError(
            f"cannot {what}: the kind cluster {name!r} is not up; `{up} --scenario {op.sc.id}` "
            "makes it and sets your scenario up again",
            file=str(op.ws.root),
        )
    other = kind.holder()
    now = f"scenario {other!r}" if other else "no finished scenario"
    raise LabError(
        f"cannot {what}: the kind cluster now holds {now}, not {op.sc.id!r}; "
        f"`cks-lab start {op.sc.id}` sets yours up again (your saved files come back)",
        file=str(op.ws.root),
    )


def kind_nodes(op: Opened) -> dict[str, str] | None:
    """On kind, each node's container (`docker exec -it NAME bash` reaches it);
    None on the sim, whose nodes are the workspace's folders."""
    from lab import service  # lazily: it imports this module

    state = op.ws.state()
    if state.get("backend", "sim") != "kind":
        return None
    from lab.kind.nodes import node_container_names  # no docker call: kind's naming

    cluster = str(state.get("cluster") or service.DEFAULT_CLUSTER)
    nodes = [(n.name, n.role) for n in op.sc.model.cluster.nodes]
    return dict(node_container_names(cluster, nodes))


def kind_backend(ws: Workspace) -> KindBackend | None:
    """The workspace's KindBackend, or None on the sim (whose nodes are its folders)."""
    from lab import service  # lazily: it imports this module

    if ws.state().get("backend", "sim") != "kind":
        return None
    return service.workspace_backend(ws)  # type: ignore[return-value]


def backup_dir(ws: Workspace) -> Path:
    """Where a reset keeps the learner's files: the workspace's node trees' backups
    on the sim, the snapshots of the nodes' files on kind."""
    if ws.state().get("backend", "sim") == "kind":
        from lab.backends.kind.snapshot import SAVED_DIR

        return ws.lab_dir / SAVED_DIR
    return ws.lab_dir / "backups"
