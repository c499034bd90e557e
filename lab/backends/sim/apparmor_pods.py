"""The learner's pod manifest, applied at every check: where each container runs and
under which AppArmor profile, or why it does not run.

`kubectl apply -f FILE` (the file on the node the scenario names), then the scheduler
(`spec.nodeName`, a `kubernetes.io/hostname` node selector, else the node the
scenario gives), the kubelet's admission and containerd's profile lookup, as
lab/engines/apparmor/podspec.py decides them against the profiles loaded in that
node's kernel. A pod without a manifest asks for no profile: containerd's default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from lab.backends.sim import apparmor_kernel as kernel
from lab.backends.sim.apparmor_kernel import LoadedProfile
from lab.engines.apparmor import ProfileError, parse_profile_text, podspec
from lab.engines.apparmor.model import Profile
from lab.errors import LabError
from lab.evidence import AppArmorContainer
from lab.nodefs import NodePathError, NotRegularFile, read_regular, resolve_in_node
from lab.scenarios.model import Container, Pod, Scenario
from lab.workspace import Workspace
from lab.yamlsafe import MAX_BYTES, parse_all

# The lab's stand-in for containerd's default profile: everything but the kernel
# interfaces a container has no business with.
RUNTIME_DEFAULT_TEXT = f"""#include <tunables/global>
profile {podspec.RUNTIME_DEFAULT_PROFILE} flags=(attach_disconnected,mediate_deleted) {{
  #include <abstractions/base>
  network,
  capability,
  file,
  umount,
  deny mount,
  deny @{{PROC}}/sysrq-trigger rwklx,
  deny @{{PROC}}/kcore rwklx,
  deny @{{PROC}}/sys/[^k]** w,
  deny /sys/firmware/** rwklx,
  deny /sys/kernel/security/** rwklx,
}}
"""


@lru_cache(maxsize=1)
def runtime_default() -> Profile:
    return parse_profile_text(RUNTIME_DEFAULT_TEXT, name="containerd default profile").profile()


@dataclass
class RunningContainer:
    """A container's evidence and, when it runs confined, its profile to decide with."""

    pod: Pod
    container: Container
    evidence: AppArmorContainer
    profile: Profile | None = None


@dataclass(frozen=True)
class _Applied:
    """What `kubectl apply` made of the manifest for one pod."""

    template: podspec.PodTemplate | None = None
    state: str = "running"
    reason: str = ""
    message: str = ""
    source: str | None = None


def _read_manifest(ws: Workspace, pod: Pod) -> _Applied:
    ref = pod.manifest
    assert ref is not None
    where = f"{ref.node}:{ref.path}"
    try:
        raw = read_regular(resolve_in_node(ws.node_root(ref.node), ref.path), MAX_BYTES)
    except FileNotFoundError:
        return _Applied(None, "missing", "kubectl apply",
                        f'error: the path "{ref.path}" does not exist', where)
    except (NotRegularFile, NodePathError) as e:
        return _Applied(None, "missing", "kubectl apply", f"error: {ref.path}: {e.message}",
                        where)
    try:
        docs = parse_all(raw, ref.path)
    except LabError as e:
        line = f"line {e.line}: " if e.line else ""
        return _Applied(None, "invalid", "kubectl apply",
                        f"error: error parsing {ref.path}: {line}{e.message}", where)
    for doc in docs:
        tpl = podspec.pod_template(doc.data)
        if tpl is None or not _creates(tpl, pod):
            continue
        errors = podspec.validate(tpl)
        if errors:
            return _Applied(tpl, "invalid", "Invalid",
                            f"Error from server (Invalid): {podspec.invalid_message(tpl, errors)}",
                            where)
        on_create = podspec.validate_pod_create(tpl)
        if on_create:
            body = "; ".join(map(str, on_create))
            owner = "ReplicaSet" if tpl.kind == "Deployment" else tpl.kind
            return _Applied(tpl, "invalid", "FailedCreate",
                            f"{tpl.kind} {tpl.name} applied, but its {owner} cannot create pods "
                            f'(event FailedCreate): Error creating: Pod "{pod.name}" is invalid: '
                            f"{body}", where)
        return _Applied(tpl, source=where)
    return _Applied(None, "missing", "kubectl apply",
                    f"{ref.path} creates no pod {pod.namespace}/{pod.name}: it needs a Pod named "
                    f"{pod.name} or a workload whose pods are named after it", where)


def _creates(tpl: podspec.PodTemplate, pod: Pod) -> bool:
    """Whether the object makes this pod (a Pod by name; a workload by name prefix)."""
    if tpl.namespace not in (None, pod.namespace):
        return False
    if tpl.kind == "Pod":
        return tpl.name == pod.name
    return bool(tpl.name) and pod.name.startswith(tpl.name + "-")


def _schedule(sc: Scenario, pod: Pod, tpl: podspec.PodTemplate | None) -> tuple[str | None, str]:
    """The node the pod lands on, or None and the scheduler's message."""
    nodes = [n.name for n in sc.cluster.nodes]
    if tpl is None:
        return pod.node, ""
    name = tpl.spec.get("nodeName")
    if isinstance(name, str) and name:
        if name in nodes:
            return name, ""
        return None, f"spec.nodeName is {name!r}, which is not a node (nodes: {', '.join(nodes)})"
    selector = tpl.spec.get("nodeSelector")
    if isinstance(selector, Mapping) and "kubernetes.io/hostname" in selector:
        want = selector["kubernetes.io/hostname"]
        if want in nodes:
            return str(want), ""
        return None, (f"0/{len(nodes)} nodes are available: {len(nodes)} node(s) didn't match "
                      "Pod's node affinity/selector.")
    return pod.node, ""


def _privileged(c: Container, tpl: podspec.PodTemplate | None) -> bool:
    if tpl is None:
        return c.privileged
    spec = next((s for s in podspec.containers(tpl) if s.name == c.name), None)
    return spec.privileged if spec is not None else c.privileged


def apply_pods(ws: Workspace, sc: Scenario,
               loaded: Mapping[str, list[LoadedProfile]]) -> list[RunningContainer]:
    """Every container of setup.pods, after its manifest is applied."""
    out: list[RunningContainer] = []
    host = {n.name: n.apparmor for n in sc.cluster.nodes}
    for pod in sc.setup.pods:
        applied = _read_manifest(ws, pod) if pod.manifest is not None else _Applied()
        node, unscheduled = _schedule(sc, pod, applied.template)
        for c in pod.containers:
            ev = AppArmorContainer(pod.namespace, pod.name, c.name, manifest=applied.source)
            out.append(_container(pod, c, ev, applied, node, unscheduled, host, loaded))
    return out


def _container(pod: Pod, c: Container, ev: AppArmorContainer, applied: _Applied,
               node: str | None, unscheduled: str, host: Mapping[str, bool],
               loaded: Mapping[str, list[LoadedProfile]]) -> RunningContainer:
    rc = RunningContainer(pod, c, ev)
    tpl = applied.template
    if applied.state != "running":
        ev.state, ev.reason, ev.message = applied.state, applied.reason, applied.message
        return rc
    names = [s.name for s in podspec.containers(tpl)] if tpl is not None else [c.name]
    if c.name not in names:
        ev.state, ev.reason = "missing", "kubectl apply"
        ev.message = (f"the manifest has no container {c.name!r} in pod {pod.name} "
                      f"(containers: {', '.join(names) or 'none'})")
        return rc
    conf = podspec.resolve(tpl, c.name) if tpl is not None else podspec.Confinement("")
    ev.requested = conf.describe()
    ev.localhost = conf.profile if conf.type == podspec.LOCALHOST else None
    if node is None:
        ev.state, ev.reason, ev.message = "pending", "FailedScheduling", unscheduled
        return rc
    ev.node = node
    enabled = host.get(node, True)
    if tpl is not None:
        refused = podspec.admit(tpl, enabled)
        if refused:
            ev.state, ev.reason, ev.message = "rejected", "AppArmor", refused
            return rc
    by_name = {lp.name: lp for lp in loaded.get(node, [])}
    got = podspec.runtime_profile(conf, privileged=_privileged(c, tpl), host_apparmor=enabled,
                                  loaded=by_name.keys())
    if got.error:
        ev.state, ev.reason, ev.message = "waiting", got.reason, f"Error: {got.error}"
        return rc
    if got.profile is None:
        return rc  # running, unconfined
    if got.profile == podspec.RUNTIME_DEFAULT_PROFILE and got.profile not in by_name:
        rc.profile = runtime_default()
        ev.profile, ev.mode = got.profile, "enforce"
        return rc
    lp = by_name[got.profile]
    try:
        rc.profile = kernel.compiled(lp)
    except ProfileError as e:  # a state file edited by hand; the kernel would not hold it
        ev.state, ev.reason = "waiting", "CreateContainerError"
        ev.message = f"Error: the loaded profile {lp.name} cannot be read back: {e}"
        return rc
    ev.profile, ev.mode = lp.name, lp.mode
    return rc
