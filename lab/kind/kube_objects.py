"""Kubernetes API objects as the lab reads them, apart from the client that fetches them.

The records (PodInfo, ContainerInfo, Rollout) and the functions that build them from
the JSON the API server returns (pod_info, rollout_of, exec_exit_status), with the
table of kinds the lab applies. They are pure — no network, no ``kubernetes`` import —
so backends, fakes and tests use them without a cluster; lab.kind.kube (the client)
re-exports them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lab.kind.crictl import as_int

# kind -> (API group, plural, namespaced): the kinds scenario manifests use. A table
# instead of API discovery keeps apply to one request per object.
KINDS: dict[str, tuple[str, str, bool]] = {
    "Namespace": ("", "namespaces", False),
    "Pod": ("", "pods", True),
    "ServiceAccount": ("", "serviceaccounts", True),
    "ConfigMap": ("", "configmaps", True),
    "Secret": ("", "secrets", True),
    "Service": ("", "services", True),
    "Deployment": ("apps", "deployments", True),
    "DaemonSet": ("apps", "daemonsets", True),
    "StatefulSet": ("apps", "statefulsets", True),
    "ReplicaSet": ("apps", "replicasets", True),
    "Job": ("batch", "jobs", True),
    "CronJob": ("batch", "cronjobs", True),
    "Role": ("rbac.authorization.k8s.io", "roles", True),
    "RoleBinding": ("rbac.authorization.k8s.io", "rolebindings", True),
    "ClusterRole": ("rbac.authorization.k8s.io", "clusterroles", False),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io", "clusterrolebindings", False),
    "NetworkPolicy": ("networking.k8s.io", "networkpolicies", True),
}

# Waiting reasons that will not clear on their own: the pod is as started as it gets,
# and the caller reports it (an AppArmor scenario expects CreateContainerError).
STUCK_REASONS = frozenset(
    {
        "CreateContainerError",
        "CreateContainerConfigError",
        "CrashLoopBackOff",
        "ErrImagePull",
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "InvalidImageName",
        "RunContainerError",
    }
)


@dataclass
class ContainerInfo:
    name: str
    state: str  # "running" | "waiting" | "terminated"
    reason: str = ""
    message: str = ""
    container_id: str = ""


@dataclass
class PodInfo:
    namespace: str
    name: str
    node: str | None
    phase: str
    containers: list[ContainerInfo] = field(default_factory=list)
    # metadata a rollout tells old pods from new ones by (lab/backends/kind/steps.py)
    deletion_timestamp: str | None = None  # set: the pod is terminating
    owners: list[tuple[str, str]] = field(default_factory=list)  # (kind, name) of its owners
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return (
            self.phase == "Running"
            and bool(self.containers)
            and all(c.state == "running" for c in self.containers)
        )

    @property
    def settled(self) -> bool:
        """Running, finished, or stuck for a reason that will not clear by waiting."""
        if self.running or self.phase in ("Succeeded", "Failed"):
            return True
        return any(c.state == "waiting" and c.reason in STUCK_REASONS for c in self.containers)

    def describe(self) -> str:
        states = ", ".join(
            f"{c.name} {c.state}" + (f" ({c.reason})" if c.reason else "") for c in self.containers
        )
        return f"{self.namespace}/{self.name}: {self.phase}" + (f" [{states}]" if states else "")


def pod_info(obj: dict[str, Any]) -> PodInfo:
    """PodInfo from a Pod object as the API returns it."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    statuses = {s.get("name"): s for s in status.get("containerStatuses") or []}
    # Before the kubelet reports, say why the pod waits (e.g. Unschedulable).
    pending = next(
        (
            (c.get("reason") or "", c.get("message") or "")
            for c in status.get("conditions") or []
            if c.get("status") == "False" and c.get("message")
        ),
        ("", ""),
    )
    containers = []
    for c in spec.get("containers") or []:
        name = c.get("name", "")
        st = statuses.get(name)
        if st is None:
            containers.append(ContainerInfo(name, "waiting", pending[0], pending[1]))
            continue
        state = st.get("state") or {}
        kind = next((k for k in ("running", "waiting", "terminated") if k in state), "waiting")
        detail = state.get(kind) or {}
        containers.append(
            ContainerInfo(
                name,
                kind,
                detail.get("reason", "") or "",
                detail.get("message", "") or "",
                st.get("containerID", "") or "",
            )
        )
    return PodInfo(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        node=spec.get("nodeName"),
        phase=status.get("phase", "") or "Unknown",
        containers=containers,
        deletion_timestamp=meta.get("deletionTimestamp") or None,
        owners=[
            (str(o.get("kind", "")), str(o.get("name", "")))
            for o in meta.get("ownerReferences") or []
            if isinstance(o, dict)
        ],
        labels={str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
    )


# Workload controllers whose pods a changed template replaces (a rollout).
ROLLOUT_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"


@dataclass
class Rollout:
    """Where a workload controller's rollout stands, from its object's status (what
    `kubectl rollout status` reads) and its newest revision."""

    kind: str
    namespace: str
    name: str
    generation: int
    observed_generation: int
    desired: int  # pods the spec wants
    updated: int  # of them, pods of the current template
    total: int  # pods the controller counts, old ones included
    selector: dict[str, str] = field(default_factory=dict)  # spec.selector.matchLabels
    # (label, value) that the current template's pods carry: a Deployment's newest
    # ReplicaSet's pod-template-hash, a StatefulSet's or DaemonSet's
    # controller-revision-hash. None: not known (yet), or the controller does not roll
    # (updateStrategy OnDelete).
    current: tuple[str, str] | None = None

    @property
    def observed(self) -> bool:
        """Whether the controller has acted on the object's latest spec."""
        return self.observed_generation >= self.generation


def _owned_by(child: dict[str, Any], uid: str) -> bool:
    refs = (child.get("metadata") or {}).get("ownerReferences") or []
    return bool(uid) and any(isinstance(r, dict) and r.get("uid") == uid for r in refs)


def _revision(rs: dict[str, Any]) -> int:
    notes = (rs.get("metadata") or {}).get("annotations") or {}
    return as_int(notes.get(REVISION_ANNOTATION))


def rollout_of(obj: dict[str, Any], children: Sequence[dict[str, Any]] = ()) -> Rollout:
    """Rollout from a Deployment, StatefulSet or DaemonSet as the API returns it, and
    (Deployment, DaemonSet) the ReplicaSets or ControllerRevisions of its namespace:
    those it owns tell which template is the newest."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    kind = str(obj.get("kind") or "")
    uid = str(meta.get("uid") or "")
    mine = [c for c in children if isinstance(c, dict) and _owned_by(c, uid)]
    rolls = (spec.get("updateStrategy") or {}).get("type") != "OnDelete"
    current: tuple[str, str] | None = None
    if kind == "DaemonSet":
        desired = as_int(status.get("desiredNumberScheduled"))
        updated = as_int(status.get("updatedNumberScheduled"))
        total = as_int(status.get("currentNumberScheduled"))
        total += as_int(status.get("numberMisscheduled"))
        newest = max(mine, key=lambda c: as_int(c.get("revision")), default=None)
        labels = ((newest or {}).get("metadata") or {}).get("labels") or {}
        if rolls and labels.get("controller-revision-hash"):
            current = ("controller-revision-hash", str(labels["controller-revision-hash"]))
    else:
        desired = as_int(spec.get("replicas"), 1)
        updated = as_int(status.get("updatedReplicas"))
        total = as_int(status.get("replicas"))
        if kind == "StatefulSet":
            if rolls and status.get("updateRevision"):
                current = ("controller-revision-hash", str(status["updateRevision"]))
        else:
            newest = max(mine, key=_revision, default=None)
            labels = ((newest or {}).get("metadata") or {}).get("labels") or {}
            if labels.get("pod-template-hash"):
                current = ("pod-template-hash", str(labels["pod-template-hash"]))
    if not rolls:
        updated = desired  # nothing replaces the pods until someone deletes them
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    return Rollout(
        kind=kind,
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        generation=as_int(meta.get("generation")),
        observed_generation=as_int(status.get("observedGeneration")),
        desired=desired,
        updated=updated,
        total=total,
        selector={str(k): str(v) for k, v in selector.items()},
        current=current,
    )


def exec_exit_status(text: str) -> tuple[int, str]:
    """(exit code, message) from the exec error channel's Status JSON.

    Success -> 0; NonZeroExitCode -> the ExitCode cause. Other failures are the
    runtime refusing to start the command: 126 when it says "permission denied"
    (e.g. AppArmor denying the exec), 127 for "not found", 1 otherwise — the shell's
    conventions — with the runtime's message for stderr. No status at all: -1.
    """
    if not text.strip():
        return -1, "the exec stream closed without an exit status"
    try:
        status = json.loads(text)
    except ValueError:
        return 1, text.strip()  # the v1 protocol sends plain text
    if not isinstance(status, dict):
        return 1, text.strip()
    if status.get("status") == "Success":
        return 0, ""
    message = str(status.get("message") or "")
    if status.get("reason") == "NonZeroExitCode":
        causes = (status.get("details") or {}).get("causes") or []
        for cause in causes:
            if isinstance(cause, dict) and cause.get("reason") == "ExitCode":
                try:
                    return int(cause.get("message", "")), ""
                except ValueError:
                    break
    low = message.lower()
    if "permission denied" in low:
        return 126, message
    if "not found" in low or "no such file" in low:
        return 127, message
    return 1, message or text.strip()
