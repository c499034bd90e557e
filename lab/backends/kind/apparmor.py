"""AppArmor evidence from a kind cluster: what the (shared host) kernel has loaded,
the pods' containers as the kubelet reports them, and the attack's commands run
for real in them.

The kernel decides; the lab only sees the result. A step's accesses are DENIED
when its command failed with "Permission denied", ALLOWED when it succeeded: which
rule decided is not known on kind (AppArmorAccess.rules stays empty), and a step
that failed for another reason (no network, say) tried nothing the lab can tell
apart. A capability of a command that failed is probed on its own: the kernel
asks AppArmor for a socket's network permission before capable(CAP_NET_RAW), so a
refused raw socket says nothing of `capability net_raw`. A workload step is the
pod's own processes, which the lab cannot make happen: each of its effects is
re-enacted by a probe command in the container (lab/backends/kind/apparmor_probe.py).

A container's profile is read from its node: its first process's pid from
`crictl inspect` (containerd's info.pid, in the node's pid namespace, which holds
the pods'), then /proc/<pid>/attr/apparmor/current (attr/current on kernels
without the per-LSM folder). Reading it inside the container (`cat
/proc/1/attr/current`) is only the fallback: a profile that denies reading
another process's attributes (no `ptrace read` rule) or running programs makes
that read fail for a correctly confined container.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from lab.backends.kind.apparmor_probe import Run, is_ip, probe_capability, runner
from lab.backends.kind.steps import (
    ExecRun,
    container_of,
    find_pod,
    inspect_container,
    list_files,
    read_text,
)
from lab.errors import LabError
from lab.evidence import (
    AppArmorAccess,
    AppArmorBrokenFile,
    AppArmorContainer,
    AppArmorEvidence,
    AppArmorNode,
    AppArmorProfileState,
    AppArmorStep,
)
from lab.scenarios.effects import capability_name, command_words, split_host_port
from lab.scenarios.model import AttackStep, Pod, Scenario, socket_words

if TYPE_CHECKING:
    from lab.kind.kube import ContainerInfo, Kube, PodInfo
    from lab.kind.nodes import ExecResult, LabNodes

PROFILE_DIR = "/etc/apparmor.d"
PROFILES = "/sys/kernel/security/apparmor/profiles"
KERNEL = "the kernel decided (kind shows the outcome, not the rule)"


# --- the node ---------------------------------------------------------------------------


def node_state(nodes: LabNodes, node: str, enabled: bool, baseline: frozenset[str]) -> AppArmorNode:
    """The profiles the kernel holds, and what the files the lab or the learner put in
    /etc/apparmor.d define (broken ones with apparmor_parser's error)."""
    from lab.backends.sim.apparmor_kernel import profile_names_in
    from lab.kind.apparmor_node import parse_profiles

    state = AppArmorNode(node, enabled=enabled)
    text = read_text(nodes, node, PROFILES) if enabled else None
    if text is None:
        state.enabled = False
        return state
    for path in list_files(nodes, node, PROFILE_DIR):
        if path in baseline:
            continue  # the apparmor package's own files: not the lab's business
        check = nodes.exec(node, ["apparmor_parser", "-Q", "-K", path])
        if check.code != 0:
            error = check.stderr.strip() or check.stdout.strip() or f"exit code {check.code}"
            names = profile_names_in(read_text(nodes, node, path) or "")
            state.broken.append(AppArmorBrokenFile(path, error, names))
            continue
        listed = nodes.exec(node, ["apparmor_parser", "-N", path])
        for name in (n.strip() for n in listed.stdout.splitlines()):
            if name:
                state.defined.setdefault(name, path)
    state.loaded = [
        AppArmorProfileState(name, mode, state.defined.get(name))
        for name, mode in parse_profiles(text)
    ]
    return state


# --- the containers ---------------------------------------------------------------------


def _templates(docs: list[Any]) -> list[Any]:
    from lab.engines.apparmor.podspec import pod_template

    return [t for t in (pod_template(d) for d in docs) if t is not None]


def _template_for(templates: list[Any], pod: Pod) -> Any:
    """The manifest object that makes a scenario pod: the Pod by name, else a workload
    whose template's labels the pod has."""
    for t in templates:
        if (t.namespace or "default") != pod.namespace:
            continue
        if t.kind == "Pod" and t.name == pod.name:
            return t
        labels = dict(t.labels)
        if t.kind != "Pod" and labels and all(pod.labels.get(k) == v for k, v in labels.items()):
            return t
    return None


def _state(c: ContainerInfo | None, info: PodInfo | None) -> tuple[str, str, str]:
    """(state, reason, message) in AppArmorContainer's terms."""
    if info is None:
        return "missing", "", "there is no such pod in the cluster"
    if c is None:
        if info.phase == "Failed":
            return "rejected", "Failed", f"pod phase {info.phase}"
        if info.node is None:
            return "pending", "Pending", "it is not scheduled to a node"
        return "missing", "", "the pod has no such container"
    if c.state == "running":
        return "running", "", ""
    if info.phase == "Failed" and c.state != "terminated":
        return "rejected", c.reason or "Failed", c.message
    return "waiting", c.reason or c.state, c.message


def node_label(
    nodes: LabNodes, node: str | None, container_id: str
) -> tuple[str | None, str] | None:
    """(profile, mode) of a container's first process, read in its node; None when the
    node cannot tell (no such container, no pid, no attribute file)."""
    from lab.kind.apparmor_node import parse_attr_current

    pid, _ = inspect_container(nodes, node, container_id)
    if pid is None or node is None:
        return None
    for path in (f"/proc/{pid}/attr/apparmor/current", f"/proc/{pid}/attr/current"):
        text = read_text(nodes, node, path, 4096)
        if text is not None and text.strip("\x00\n "):
            return parse_attr_current(text)
    return None


def container_label(
    nodes: LabNodes, kube: Kube, info: PodInfo, c: ContainerInfo, node: str | None
) -> tuple[str | None, str] | None:
    """The container's AppArmor label: from the node, else (fallback) read inside it."""
    from lab.kind.apparmor_node import ATTR_CURRENT, parse_attr_current

    got = node_label(nodes, node, c.container_id)
    if got is not None:
        return got
    r = _exec(kube, info, c.name, ["cat", ATTR_CURRENT])
    return parse_attr_current(r.stdout) if r is not None and r.code == 0 else None


def container_states(
    nodes: LabNodes,
    kube: Kube,
    sc: Scenario,
    docs: Mapping[tuple[str, str], list[Any]],
    node_of: Callable[[str | None], str | None],
    refused: Mapping[tuple[str, str], str],
) -> tuple[list[AppArmorContainer], dict[tuple[str, str], PodInfo | None]]:
    """Every setup pod's containers: running (under which profile) or why not."""
    from lab.engines.apparmor.podspec import LOCALHOST, resolve

    out: list[AppArmorContainer] = []
    infos: dict[tuple[str, str], PodInfo | None] = {}
    for pod in sc.setup.pods:
        info = find_pod(kube, pod.namespace, pod.name, pod)
        infos[(pod.namespace, pod.name)] = info
        tpl = _template_for(_templates(docs.get((pod.namespace, pod.name), [])), pod)
        manifest = f"{pod.manifest.node}:{pod.manifest.path}" if pod.manifest else None
        for spec in pod.containers:
            c = next((x for x in (info.containers if info else []) if x.name == spec.name), None)
            state, reason, message = _state(c, info)
            if (pod.namespace, pod.name) in refused:
                state, reason, message = "invalid", "Invalid", refused[(pod.namespace, pod.name)]
            ac = AppArmorContainer(pod.namespace, pod.name, spec.name,
                                   node=node_of(info.node) if info else None, state=state,
                                   reason=reason, message=message, manifest=manifest)  # fmt: skip
            if tpl is not None:
                conf = resolve(tpl, spec.name)
                ac.requested = conf.describe() if conf.type else ""
                ac.localhost = conf.profile if conf.type == LOCALHOST else None
            if state == "running" and info is not None and c is not None:
                label = container_label(nodes, kube, info, c, ac.node)
                if label is not None:
                    ac.profile, ac.mode = label
            out.append(ac)
    return out, infos


def _exec(kube: Kube, info: PodInfo, container: str, argv: list[str]) -> ExecResult | None:
    try:
        return kube.exec(info.namespace, info.name, container, argv, timeout=30)
    except LabError:
        return None


# --- the steps ----------------------------------------------------------------------------


def _accesses(step: AttackStep) -> list[tuple[str, str]]:
    """(access, who) for each effect of a step, as the AppArmor checks name them."""
    eff = step.effects
    out: list[tuple[str, str]] = []
    for cmd in eff.processes:
        words = command_words(cmd)
        if words:
            out.append((f"x {words[0]}", cmd))
    who = (shlex.join(step.exec.command) if step.exec else eff.processes[-1]
           if eff.processes else "the container's process")  # fmt: skip
    out += [(f"r {p}", who) for p in eff.reads]
    out += [(f"w {p}", who) for p in eff.writes]
    # in the sim's order and words (lab/backends/sim/apparmor_access.py files_and_more)
    for target in eff.connects:
        host, _ = split_host_port(target) or ("", 0)
        if host and not is_ip(host):
            out.append(("network inet dgram", f"{who} (DNS lookup of {host})"))
        family = "inet6" if ":" in host or target.startswith("[") else "inet"
        out.append((f"network {family} stream", f"{who} (connect to {target})"))
    for sock in eff.sockets:
        pair = socket_words(sock)
        if pair:
            out.append((f"network {pair[0]} {pair[1]}", f"{who} (socket {sock})"))
            if pair[1] == "raw" or pair[0] == "packet":
                # a raw or packet socket needs the capability as well
                out.append(("capability net_raw", f"{who} (socket {sock})"))
    for cap in eff.capabilities:
        name = capability_name(cap)
        if name:
            out.append((f"capability {name.lower()}", who))
    if not out and step.exec is not None:
        out.append((f"x {step.exec.command[0]}", who))
    first: dict[str, str] = {}  # one entry per access (net_raw: for a raw socket and listed)
    for access, by in out:
        first.setdefault(access, by)
    return list(first.items())


def _outcome(result: ExecResult) -> tuple[str, str] | None:
    from lab.kind.apparmor_node import denied

    if result.code == 0:
        return "ALLOWED", f"allowed: the command succeeded; {KERNEL}"
    if denied(result):
        said = (result.stderr.strip() or result.stdout.strip()).splitlines()
        return (
            "DENIED",
            f"denied: the command failed with {said[-1] if said else 'EACCES'!r}; {KERNEL}",
        )
    return None


def exec_step(
    step: AttackStep, run: ExecRun, profile: str | None, probe: Run | None = None
) -> AppArmorStep:
    """An exec step as it ran: every access shares the command's fate, but for a
    capability when the command failed: the kernel checks the network permission of a
    socket before the capability (capable(CAP_NET_RAW)), so a denied raw socket says
    nothing of net_raw. Those are probed on their own in the container (`probe`,
    lab/backends/kind/apparmor_probe.py CAP_PROBES)."""
    st = AppArmorStep(step.id, run.namespace, run.pod, run.container or "")
    if run.result is None:
        st.ran = False
        return st
    got = _outcome(run.result)
    said = (run.result.stderr.strip() or run.result.stdout.strip()).splitlines()
    for access, who in _accesses(step):
        # 126/127: a program of the command did not start, so nothing after it was tried
        if (access.startswith("capability ") and run.result.code not in (0, 126, 127)
                and probe is not None):  # fmt: skip
            outcome, why = probe_capability(probe, access.split()[1])
            if outcome is None:
                failed = said[-1] if said else f"exit code {run.result.code}"
                why = f"allowed: not probed ({why}); the command failed ({failed!r})"
            st.accesses.append(AppArmorAccess(access, outcome or "ALLOWED", who, profile=profile,
                                              reason=why))  # fmt: skip
            continue
        if got is None:
            why = said[-1] if said else f"exit code {run.result.code}"
            st.accesses.append(
                AppArmorAccess(
                    access,
                    "ALLOWED",
                    who,
                    profile=profile,
                    reason=f"not tried: the command failed, not for AppArmor ({why})",
                )
            )
            continue
        st.accesses.append(AppArmorAccess(access, got[0], who, profile=profile, reason=got[1]))
    return st


def workload_step(
    kube: Kube, sc: Scenario, step: AttackStep, info: PodInfo, container: str, profile: str | None
) -> AppArmorStep:
    """A workload step: each effect re-enacted by a probe in the container, in the
    step's order (see lab/backends/kind/apparmor_probe.py)."""
    from lab.backends.kind.apparmor_probe import WorkloadProbe
    from lab.backends.sim.apparmor_access import rootfs

    w = step.workload
    pod = sc.setup.pod(w.namespace, w.pod) if w is not None else None
    spec = pod.container(container) if pod is not None else None
    layout = rootfs(spec.image) if spec is not None else "plain"
    main = shlex.join(spec.command) if spec is not None and spec.command else (
        "the container's main process")  # fmt: skip
    return WorkloadProbe(kube, info, container, layout, profile, main).step(step)


def apparmor_evidence(
    nodes: LabNodes,
    kube: Kube,
    sc: Scenario,
    execs: Mapping[str, ExecRun],
    docs: Mapping[tuple[str, str], list[Any]],
    baselines: Mapping[str, frozenset[str]],
    node_of: Callable[[str | None], str | None],
    refused: Mapping[tuple[str, str], str] | None = None,
) -> AppArmorEvidence:
    ev = AppArmorEvidence()
    for n in sc.cluster.nodes:
        ev.nodes[n.name] = node_state(nodes, n.name, n.apparmor, baselines.get(n.name, frozenset()))
    ev.containers, infos = container_states(nodes, kube, sc, docs, node_of, refused or {})
    for step in sc.attack:
        where = step.in_pod
        if where is None:
            continue
        ns, name, _ = where
        info = infos.get((ns, name)) or find_pod(kube, ns, name, sc.setup.pod(ns, name))
        container = container_of(step, sc, info)
        c = ev.container(ns, name, container)
        profile = c.profile if c else None
        if c is not None and not c.running:
            ev.steps[step.id] = AppArmorStep(step.id, ns, name, c.container, ran=False)
        elif step.id in execs:
            run = execs[step.id]
            probe = (runner(kube, run.namespace, run.pod, run.container)
                     if run.container else None)  # fmt: skip
            ev.steps[step.id] = exec_step(step, run, profile, probe)
            ev.steps[step.id].pod = name  # checks find the container by the scenario's name
        elif step.workload is not None and info is not None and container is not None:
            ev.steps[step.id] = workload_step(kube, sc, step, info, container, profile)
            ev.steps[step.id].pod = name
    return ev
