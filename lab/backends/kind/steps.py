"""Running a scenario's attack on a kind cluster: where its nodes and pods really are,
and each step sent for real, timestamped so evidence can be matched to it.

A scenario names its nodes (`controlplane`, `worker`) and its pods as the sim sees
them; on kind a Deployment's pods get generated names, so a pod is found by name
first, then by its labels. Node commands go through LabNodes by scenario node name
only: the backend never touches a node the scenario does not have.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from lab.backends.auditlog import user_agent
from lab.errors import LabError
from lab.scenarios.model import AttackStep, Pod, Scenario
from lab.scenarios.requests import ApiCall

if TYPE_CHECKING:
    from pathlib import Path

    from lab.kind.kube import Kube, PodInfo
    from lab.kind.nodes import ExecResult, LabNodes
    from lab.kind.users import Identity

Clock = Callable[[], datetime]

# The label a ReplicaSet adds to its pods; the scenario's copy is from another run.
GENERATED_LABELS = ("pod-template-hash", "controller-revision-hash")
EXEC_TIMEOUT = 60.0
INTERACTIVE_INPUT = b"exit\n"  # what the attacker types into an interactive shell


# --- nodes -------------------------------------------------------------------------


def scenario_node_names(sc: Scenario, cluster: str) -> dict[str, str]:
    """Scenario node name -> kind node container (and Kubernetes node) name."""
    from lab.kind.nodes import node_container_names

    return dict(node_container_names(cluster, [(n.name, n.role) for n in sc.cluster.nodes]))


@dataclass(frozen=True)
class NodeStat:
    """What is at a node path, as `stat -c STAT_FORMAT` says."""

    kind: str  # "file" | "dir" | "symlink" (not followed) | "other"
    mode: int  # permission bits with setuid, setgid and sticky (& 0o7777)
    ctime: float  # last change, s since the epoch (ns as the kernel keeps it)
    size: int

    @staticmethod
    def parse(text: str) -> NodeStat | None:
        """`%f %s %.9Z`: the raw mode in hex (type and permissions), the size, the change
        time. The change time, not the modification time: every write sets it from the
        kernel's clock and no tool can set it (`cp -p`, `touch -d` and docker's file copy,
        the lab's put_file, give a file whatever mtime they like)."""
        parts = text.split()
        try:
            raw, size, ctime = int(parts[0], 16), int(parts[1]), float(parts[2])
        except (IndexError, ValueError):
            return None
        kind = _KINDS.get(stat.S_IFMT(raw), "other")
        return NodeStat(kind, stat.S_IMODE(raw), ctime, size)


STAT_FORMAT = "%f %s %.9Z"
_KINDS = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "symlink"}


def node_stat(nodes: LabNodes, node: str, path: str, *, follow: bool = True) -> NodeStat | None:
    """What is at a node path (a symbolic link followed unless ``follow`` is false);
    None when there is nothing (a dangling link, when followed) or it cannot be stat'ed."""
    r = nodes.exec(node, ["stat", *(["-L"] if follow else []), "-c", STAT_FORMAT, "--", path],
                   timeout=30)  # fmt: skip
    return NodeStat.parse(r.stdout) if r.code == 0 else None


def path_kind(nodes: LabNodes, node: str, path: str) -> str | None:
    """What is at a node path, symlinks followed: "file", "dir", "other"; None: nothing."""
    st = node_stat(nodes, node, path)
    return st.kind if st is not None else None


def list_files(nodes: LabNodes, node: str, folder: str, depth: int | None = 1) -> list[str]:
    """The regular files in a node folder (full paths, sorted), directly in it or down to
    ``depth`` folders deep (None: any depth); symlinks are not followed. [] if none."""
    limit = ["-maxdepth", str(depth)] if depth is not None else []
    r = nodes.exec(node, ["find", folder, *limit, "-type", "f"])
    if r.code != 0:
        return []
    top = folder.rstrip("/") + "/"
    return sorted(
        p
        for p in r.stdout.splitlines()
        if p.startswith(top) and (depth is None or p[len(top) :].count("/") < depth)
    )


def read_text(nodes: LabNodes, node: str, path: str, limit: int = 1 << 20) -> str | None:
    """A node file as text (also on the mounts docker cannot copy from); None when it is
    missing, larger than ``limit`` or cannot be read."""
    from lab.kind.nodes import NodeFileError

    try:
        return nodes.read_node_bytes(node, path, limit).decode("utf-8", errors="replace")
    except NodeFileError:
        return None


# --- pods ----------------------------------------------------------------------------


def _selector(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in GENERATED_LABELS)


def find_pod(kube: Kube, namespace: str, name: str, pod: Pod | None = None) -> PodInfo | None:
    """The cluster's pod for a scenario pod: by name, else the one its labels select
    (a Deployment's pod has another name on every cluster). Terminating pods are
    never it; among several, the newest template's (a rollout in progress leaves the
    old pod running next to a new one that fails), then a running one."""
    info = kube.pod(namespace, name)
    if info is not None and info.deletion_timestamp is not None:
        info = None
    selector = _selector(pod.labels) if pod is not None else ""
    # a ReplicaSet's pod of that name is one of its Deployment's: its siblings may be newer
    if info is None or not selector or all(k != "ReplicaSet" for k, _ in info.owners):
        if info is not None or not selector:
            return info
    found = [p for p in kube.pods(namespace, selector) if p.deletion_timestamp is None]
    if len(found) > 1:
        newness = _newness(kube, namespace, found)
        found.sort(key=lambda p: (-newness[p.name], p.phase != "Running"))
    else:
        found.sort(key=lambda p: p.phase != "Running")
    return found[0] if found else None


def _newness(kube: Kube, namespace: str, pods: list[PodInfo]) -> dict[str, int]:
    """How new each pod's template is: its ReplicaSet's revision (the annotation the
    Deployment controller numbers them by); for a StatefulSet's or DaemonSet's pod, 1
    when it carries the controller's current revision; 0 when unknown."""
    cache: dict[tuple[str, str], int | tuple[str, str] | None] = {}
    out: dict[str, int] = {}
    for p in pods:
        owner = next(((k, n) for k, n in p.owners if k in _CONTROLLERS), None)
        if owner is None:
            out[p.name] = 0
            continue
        if owner not in cache:
            cache[owner] = _current(kube, namespace, *owner)
        got = cache[owner]
        if isinstance(got, int):
            out[p.name] = got
        else:
            out[p.name] = int(got is not None and p.labels.get(got[0]) == got[1])
    return out


def _current(kube: Kube, namespace: str, kind: str, name: str) -> int | tuple[str, str] | None:
    """A ReplicaSet's revision number; a StatefulSet's or DaemonSet's current revision
    label; 0 or None when the API does not say."""
    from lab.kind.kube import REVISION_ANNOTATION

    try:
        if kind != "ReplicaSet":
            r = kube.rollout(kind, namespace, name)
            return r.current if r is not None else None
        uri = f"/apis/apps/v1/namespaces/{quote(namespace)}/replicasets/{quote(name)}"
        status, rs = kube.request("GET", uri)
    except LabError:
        return None if kind != "ReplicaSet" else 0
    meta = rs.get("metadata") if status == 200 and isinstance(rs, dict) else None
    value = str(((meta or {}).get("annotations") or {}).get(REVISION_ANNOTATION, ""))
    return int(value) if value.isdigit() else 0


_CONTROLLERS = ("ReplicaSet", "StatefulSet", "DaemonSet")


def controllers_in(docs: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(kind, namespace, name) of the Deployments, StatefulSets and DaemonSets in docs."""
    from lab.kind.kube import ROLLOUT_KINDS

    out = []
    for d in docs:
        meta = d.get("metadata")
        if d.get("kind") in ROLLOUT_KINDS and isinstance(meta, dict) and meta.get("name"):
            out.append((str(d["kind"]), str(meta.get("namespace") or "default"), str(meta["name"])))
    return out


def rollout_waits_for(kube: Kube, kind: str, namespace: str, name: str) -> str | None:
    """What the rollout of a Deployment, StatefulSet or DaemonSet still waits for, or
    None when it is over: every pod of the current template there and settled, no
    old or terminating pod left. A rollout that cannot finish because the new pods
    fail for good (CreateContainerError: the profile is not loaded) is over as well:
    that is the learner's error, which the checks explain from those pods."""
    r = kube.rollout(kind, namespace, name)
    if r is None:
        return None
    what = f"{kind.lower()} {namespace}/{name}"
    if not r.observed:
        return f"{what}: its controller has not acted on the change yet"
    selector = ",".join(f"{k}={v}" for k, v in sorted(r.selector.items()))
    pods = kube.pods(namespace, selector) if selector else []
    terminating = [p for p in pods if p.deletion_timestamp is not None]
    alive = [p for p in pods if p.deletion_timestamp is None]
    key = r.current
    new = [p for p in alive if key is None or p.labels.get(key[0]) == key[1]]
    old = [p for p in alive if p not in new]
    if terminating:
        return f"{what}: {len(terminating)} old pod(s) still terminating"
    if new and all(p.settled and not p.running for p in new):
        return None  # the new template's pods fail for good: nothing more will change
    if r.updated < r.desired or len(new) < r.desired:
        return f"{what}: {min(r.updated, len(new))}/{r.desired} pod(s) of the new template"
    if old:
        return f"{what}: {len(old)} pod(s) of the old template left"
    if any(not p.settled for p in new):
        return f"{what}: its new pod(s) are starting"
    return None


def container_of(step: AttackStep, sc: Scenario, info: PodInfo | None) -> str | None:
    """The container a step runs in: its own, else the pod's first (kubectl's default)."""
    where = step.in_pod
    if where is None:
        return None
    ns, name, container = where
    if container:
        return container
    pod = sc.setup.pod(ns, name)
    if pod is not None:
        return pod.containers[0].name
    if info is not None and info.containers:
        return info.containers[0].name
    return None


# --- steps -----------------------------------------------------------------------------


@dataclass
class ExecRun:
    """One exec step as it ran: its window, the pod it ran in, and what it printed."""

    step: str
    namespace: str
    pod: str  # the cluster's pod name (a Deployment's pod: the generated one)
    container: str | None
    node: str | None  # scenario node the pod runs on
    start: datetime
    end: datetime
    result: ExecResult | None = None
    error: str | None = None  # why it could not run at all


_METHODS = {
    "get": "GET", "list": "GET", "watch": "GET", "create": "POST", "update": "PUT",
    "patch": "PATCH", "delete": "DELETE", "deletecollection": "DELETE",
}  # fmt: skip


# Scenarios name kind's nodes as the default cluster does (system:node:cks-lab-worker,
# spec.nodeName=cks-lab-worker); on a cluster of another name the Node authorizer
# knows them by that cluster's names.
_DEFAULT_NODE = re.compile(
    r"(?:(?<=%3D)|(?<=%3d)|(?<![A-Za-z0-9-]))cks-lab-(control-plane|worker\d*)(?![A-Za-z0-9-])"
)


def for_cluster(value: Any, cluster: str) -> Any:
    """A request's strings with the default cluster's node names made this cluster's."""
    if cluster == "cks-lab":
        return value
    if isinstance(value, str):
        return _DEFAULT_NODE.sub(lambda m: f"{cluster}-{m.group(1)}", value)
    if isinstance(value, list):
        return [for_cluster(v, cluster) for v in value]
    if isinstance(value, dict):
        return {k: for_cluster(v, cluster) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class Issuer:
    """Where a step's user gets its client certificate: the cluster's control-plane
    node (scenario name) and the cluster's folder, which caches them."""

    nodes: LabNodes
    node: str
    cluster_dir: Path


def step_identity(
    kube: Kube, issuer: Issuer | None, user: str | None, groups: list[str]
) -> Identity:
    """How a step authenticates as its user: its own client certificate, none at all
    (anonymous), or the lab's admin credentials when it is kind's admin. Without an
    issuer only the last two are possible.

    Not impersonation: the apiserver applies the audit policy to the user who
    authenticated, so a rule for the step's user would never match (lab.kind.users)."""
    from lab.kind.users import UserCerts, identity

    certs = None
    if issuer is not None:
        certs = UserCerts(issuer.nodes, issuer.node, issuer.cluster_dir,
                          trusted_ca=kube.ca_fingerprint())  # fmt: skip
    return identity(user, groups, certs)


def send_api(
    kube: Kube, call: ApiCall, run_id: str, cluster: str = "cks-lab", issuer: Issuer | None = None
) -> tuple[int, Any]:
    """Send a step's request as its user, tagged with the run's user agent."""
    a = call.attrs
    uri = for_cluster(call.uri, cluster)
    if a.verb == "watch":
        # A watch streams until closed: let the apiserver end it after a second.
        uri += ("&" if "?" in uri else "?") + "timeoutSeconds=1"
    user = for_cluster(a.user.username, cluster) if a.user else None
    who = step_identity(kube, issuer, user, list(a.user.groups) if a.user else [])
    return kube.request(
        _METHODS.get(a.verb, "GET"),
        uri,
        body=for_cluster(call.body, cluster),
        user_agent=user_agent(run_id, call.step_id),
        credentials=who.credentials,
        anonymous=who.anonymous,
    )


def created_uri(call: ApiCall, status: int, answer: Any) -> str | None:
    """The object an attack step created (so the lab can remove it after the run and
    the next check's create is not a 409), or None when it created nothing."""
    if call.attrs.verb != "create" or not 200 <= status < 300 or call.attrs.subresource:
        return None
    meta = answer.get("metadata") if isinstance(answer, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name or "/" in name:
        return None
    return call.uri.split("?", 1)[0].rstrip("/") + "/" + quote(name, safe="")


def run_exec(
    kube: Kube,
    sc: Scenario,
    step: AttackStep,
    run_id: str,
    clock: Clock,
    node_of: Callable[[str | None], str | None],
    issuer: Issuer | None = None,
) -> ExecRun:
    """Run an exec step in its pod as its user; the window brackets the command."""
    ex = step.exec
    assert ex is not None
    info = find_pod(kube, ex.namespace, ex.pod, sc.setup.pod(ex.namespace, ex.pod))
    container = container_of(step, sc, info)
    # the certificate first: issuing one takes a second that is not the command's
    who: Identity | None = None
    refused = None
    if info is not None and container is not None:
        try:
            who = step_identity(kube, issuer, ex.user, list(ex.groups))
        except LabError as e:
            refused = e.message
    start = clock()
    run = ExecRun(step.id, ex.namespace, info.name if info else ex.pod, container,
                  node_of(info.node if info else None), start, start)  # fmt: skip
    if info is None:
        run.error = f"there is no pod {ex.namespace}/{ex.pod} in the cluster"
        return run
    if container is None:
        run.error = f"pod {ex.namespace}/{info.name} has no container"
        return run
    if who is None:
        run.error = refused
        return run
    try:
        run.result = kube.exec(
            ex.namespace,
            info.name,
            container,
            list(ex.command),
            credentials=who.credentials,
            anonymous=who.anonymous,
            user_agent=user_agent(run_id, step.id),
            timeout=EXEC_TIMEOUT,
            # `kubectl exec -it POD -- sh`: a terminal, and the attacker leaves at once
            stdin=INTERACTIVE_INPUT if ex.tty else None,
            tty=ex.tty,
        )
    except LabError as e:
        run.error = e.message
    run.end = clock()
    return run


def inverse(names: Mapping[str, str]) -> Callable[[str | None], str | None]:
    """Kubernetes node name (= kind container name) -> scenario node name."""
    back = {v: k for k, v in names.items()}
    return lambda k8s_node: back.get(k8s_node) if k8s_node else None


# --- containers, as the node's runtime sees them ---------------------------------------


def parse_inspect(text: str) -> tuple[int | None, datetime | None]:
    """(pid, started at) of `crictl inspect -o json ID`: containerd's verbose info
    carries the container's first process as the node sees it (info.pid) and the
    status its start (status.startedAt, RFC 3339 with ns; the zero time when it never
    started). (None, None) for anything else."""
    import json
    import re
    from datetime import UTC

    try:
        data = json.loads(text)
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    info, status = data.get("info"), data.get("status")
    pid = info.get("pid") if isinstance(info, dict) else None
    pid = pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None
    raw = status.get("startedAt") if isinstance(status, dict) else None
    started = None
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", str(raw))
    if m and not m.group(1).startswith("0001-"):
        micro = (m.group(2) or "").ljust(6, "0")[:6]
        zone = "+00:00" if m.group(3) == "Z" else m.group(3)
        started = datetime.fromisoformat(f"{m.group(1)}.{micro}{zone}").astimezone(UTC)
    return pid, started


def inspect_container(
    nodes: LabNodes, node: str | None, container_id: str
) -> tuple[int | None, datetime | None]:
    """`crictl inspect` of a pod's container (PodInfo's "containerd://<id>") in its
    node; (None, None) when the node or the runtime does not know it."""
    cid = container_id.split("://", 1)[-1]
    if node is None or not cid:
        return None, None
    try:
        r = nodes.exec(node, ["crictl", "inspect", "-o", "json", cid], timeout=30)
    except LabError:
        return None, None
    return parse_inspect(r.stdout) if r.code == 0 else (None, None)
