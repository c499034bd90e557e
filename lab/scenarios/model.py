"""Scenario format v1: the records authors write in scenario.yaml.

`cks-lab scenario schema` prints the JSON Schema for editor completion; the
reference is docs/scenario-format.md. Unknown keys are errors, so a typo is
reported with its place instead of being silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import field
from typing import Annotated, Any, Literal

from lab.scenarios.effects import capability_name, command_words, split_host_port
from lab.schema import Loc, Meta, record

ID_RE = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"

Id = Annotated[str, Meta(pattern=ID_RE, doc="lowercase letters, digits and '-'")]
Skill = Literal["audit-logging", "falco", "apparmor", "seccomp", "runtime-hardening"]
Domain = Literal["monitoring-logging-runtime-security", "system-hardening"]
Difficulty = Literal["easy", "medium", "hard"]
Mode = Annotated[
    int | str,
    Meta(
        doc="octal permission bits, 0000-0777: 0600 or the string '0600' "
        "(a plain 600 is refused: it is decimal)"
    ),
]


# --- cluster and setup ---------------------------------------------------


@record
class Node:
    name: Id
    role: Literal["control-plane", "worker"] = "worker"
    apparmor: Annotated[
        bool,
        Meta(doc="the node's kernel has AppArmor; without it the kubelet refuses pods that "
             "ask for a profile"),
    ] = True


@record
class Cluster:
    kind_config: Annotated[
        str, Meta(doc="kind cluster config: a file in the scenario folder, or one in kind-configs/")
    ]
    nodes: Annotated[list[Node], Meta(min_items=1)]

    def _problems(self) -> Iterable[tuple[Loc, str]]:
        names = [n.name for n in self.nodes]
        for i, name in enumerate(names):
            if name in names[:i]:
                yield ("nodes", i, "name"), f"node {name!r} is defined twice"
        if not any(n.role == "control-plane" for n in self.nodes):
            yield ("nodes",), "the cluster needs a node with role control-plane"


def octal_mode(value: int | str) -> int | None:
    """The mode as an int, or None when it is not an octal permission mode.

    Permission bits only: scenarios come from other people, and a setuid file
    planted in a workspace has no use in a lab.
    """
    if isinstance(value, str):
        digits = value.removeprefix("0o")
        if not digits or not set(digits) <= set("01234567"):
            return None
        value = int(digits, 8)
    # YAML reads 0600 as octal already; a plain 600 is decimal, almost surely a slip.
    return value if 0 <= value <= 0o777 else None


ASSET_RE = r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*"

# `effects.sockets`: the socket families and types a step may create (AppArmor's
# `network FAMILY TYPE`); tcp, udp and icmp name their type.
SOCKET_FAMILIES = ("unix", "inet", "inet6", "netlink", "packet")
SOCKET_TYPES = ("stream", "dgram", "raw", "seqpacket", "rdm")
SOCKET_PROTOCOLS = {"tcp": "stream", "udp": "dgram", "icmp": "raw"}


def socket_words(sock: str) -> tuple[str, str] | None:
    """("inet", "raw") for "inet raw" or "inet icmp"; None when it is not a socket."""
    words = sock.split()
    if len(words) != 2 or words[0] not in SOCKET_FAMILIES:
        return None
    family, kind = words
    if kind in SOCKET_PROTOCOLS:
        if family not in ("inet", "inet6") or (kind == "icmp" and family != "inet"):
            return None
        kind = SOCKET_PROTOCOLS[kind]
    return (family, kind) if kind in SOCKET_TYPES else None


@record
class NodeFile:
    """A file placed on a node: from `source` (relative to the scenario folder),
    `content`, or `asset` (a file the lab ships, such as its default Falco rules)."""

    node: str
    path: Annotated[str, Meta(doc="absolute path on the node")]
    source: str | None = None
    content: str | None = None
    asset: Annotated[
        str | None,
        Meta(doc="a file the lab ships (lab/assets/), e.g. falco/falco_rules.yaml"),
    ] = None
    mode: Mode = 0o644

    @property
    def file_mode(self) -> int:
        mode = octal_mode(self.mode)
        return 0o644 if mode is None else mode

    def _problems(self) -> Iterable[tuple[Loc, str]]:
        if not self.path.startswith("/"):
            yield ("path",), "must be an absolute path on the node"
        elif ".." in self.path.split("/"):
            yield ("path",), "must not contain '..'"
        given = [x for x in (self.source, self.content, self.asset) if x is not None]
        if len(given) != 1:
            yield (), "give exactly one of source, content or asset"
        if self.asset is not None and (
            not re.fullmatch(ASSET_RE, self.asset) or ".." in self.asset.split("/")
        ):
            yield ("asset",), f"{self.asset!r} is not an asset name such as falco/falco_rules.yaml"
        if octal_mode(self.mode) is None:
            yield ("mode",), (
                f"{self.mode!r} is not an octal permission mode (0000-0777); write 0600 or '0600'"
            )


@record
class Container:
    """A container of a pod: what Falco's container.* and proc.* fields show."""

    name: str
    image: Annotated[
        str, Meta(doc="image reference, e.g. nginx:1.27 or docker.io/library/nginx:1.27")
    ]
    command: Annotated[
        list[str], Meta(min_items=1, doc="the main process (PID 1 in the container)")
    ] = field(default_factory=lambda: ["sleep", "infinity"])
    run_as_user: Annotated[int, Meta(ge=0, doc="uid of its processes")] = 0
    privileged: bool = False


@record
class NodePath:
    """A file on a node."""

    node: str
    path: Annotated[str, Meta(doc="absolute path on the node")]

    def _problems(self) -> Iterable[tuple[Loc, str]]:
        if not self.path.startswith("/"):
            yield ("path",), "must be an absolute path on the node"
        elif ".." in self.path.split("/"):
            yield ("path",), "must not contain '..'"


@record
class Pod:
    """A pod the setup's manifests create, as the sim backend needs to know it."""

    name: str
    namespace: str = "default"
    node: Annotated[str, Meta(doc="the node it runs on (whose Falco sees its events)")]
    labels: dict[str, str] = field(default_factory=dict)
    containers: Annotated[list[Container], Meta(min_items=1)]
    manifest: Annotated[
        NodePath | None,
        Meta(doc="the manifest file the learner edits and applies (a Pod, or a Deployment "
             "or other workload whose pods these are); the sim applies it at every check"),
    ] = None

    def container(self, name: str | None) -> Container | None:
        """The named container; without a name, the first (kubectl's default)."""
        if name is None:
            return self.containers[0]
        return next((c for c in self.containers if c.name == name), None)

    def _problems(self) -> Iterable[tuple[Loc, str]]:
        names = [c.name for c in self.containers]
        for i, name in enumerate(names):
            if name in names[:i]:
                yield ("containers", i, "name"), f"container {name!r} is defined twice"


@record
class Setup:
    manifests: Annotated[list[str], Meta(doc="Kubernetes manifests to apply")] = field(
        default_factory=list
    )
    files: list[NodeFile] = field(default_factory=list)
    pods: Annotated[
        list[Pod], Meta(doc="the pods the manifests create: node, labels, containers")
    ] = field(default_factory=list)

    load_profiles: Annotated[
        list[NodePath],
        Meta(doc="AppArmor profile files loaded on their node at start, as apparmor_parser "
             "-r FILE would (a file only written is not loaded)"),
    ] = field(default_factory=list)

    def pod(self, namespace: str, name: str) -> Pod | None:
        return next((p for p in self.pods if (p.namespace, p.name) == (namespace, name)), None)


# --- attack ----------------------------------------------------------------


@record
class Effects:
    """What a step does on a node, for the engines that replay it."""

    processes: Annotated[
        list[str],
        Meta(doc="command lines started, in order; a later one is a child of the latest shell"),
    ] = field(default_factory=list)
    reads: Annotated[list[str], Meta(doc="absolute paths opened for reading")] = field(
        default_factory=list
    )
    writes: Annotated[list[str], Meta(doc="absolute paths opened for writing")] = field(
        default_factory=list
    )
    connects: Annotated[list[str], Meta(doc="host:port (TCP)")] = field(default_factory=list)
    capabilities: Annotated[list[str], Meta(doc="Linux capabilities used, e.g. SYS_ADMIN")] = (
        field(default_factory=list)
    )
    sockets: Annotated[
        list[str],
        Meta(doc="sockets created, as FAMILY TYPE: 'inet raw' (ping), 'packet raw', 'inet6 dgram'"),
    ] = field(default_factory=list)

    def _problems(self) -> Iterable[tuple[Loc, str]]:
        for i, sock in enumerate(self.sockets):
            if socket_words(sock) is None:
                yield ("sockets", i), (
                    f"{sock!r} is not a socket: FAMILY TYPE, family one of "
                    f"{', '.join(SOCKET_FAMILIES)}, type one of {', '.join(SOCKET_TYPES)} "
                    "(or tcp, udp, icmp)"
                )
        for key, paths in (("reads", self.reads), ("writes", self.writes)):
            for i, path in enumerate(paths):
                if not path.startswith("/"):
                    yield (key, i), "must be an absolute path"
        for i, cmd in enumerate(self.processes):
            if not command_words(cmd):
                yield ("processes", i), "must be a command line (a program and its arguments)"
        for i, target in enumerate(self.connects):
            if split_host_port(target) is None:
                yield ("connects", i), f"{target!r} is not host:port (port 1-65535)"
        for i, cap in enumerate(self.capabilities):
            if capability_name(cap) is None:
                yield ("capabilities", i), f"{cap!r} is not a Linux capability (e.g. SYS_ADMIN)"


@record
class ApiRequest:
    """An API request as the audit checker sees it (request attributes)."""

    user: Annotated[
        str | None,
        Meta(
            doc="username; omit only for a request whose authentication failed. Anonymous "
            "requests are user system:anonymous in group system:unauthenticated"
        ),
    ] = None
    groups: list[str] = field(default_factory=list)
    verb: str
    api_group: str = ""
    api_version: str = "v1"
    resource: str | None = None
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    uri: Annotated[str | None, Meta(doc="request URI; derived for resource requests")] = None
    body: Annotated[dict[str, Any] | None, Meta(doc="request object, for create/update/patch")] = (
        None
    )
    response_code: int = 200

    def _problems(self) -> Iterable[tuple[Loc, str]]:
        if self.resource is None and (self.subresource or self.namespace or self.name):
            yield (), "subresource, namespace and name need resource"
        elif self.resource is None and self.uri is None:
            yield (), "a non-resource request needs uri"
        if self.uri is not None and not self.uri.startswith("/"):
            yield ("uri",), "must start with /"


@record
class ExecStep:
    namespace: str
    pod: str
    container: str | None = None
    command: Annotated[list[str], Meta(min_items=1)]
    tty: Annotated[
        bool, Meta(doc="kubectl exec -it: stdin and a terminal (Falco's proc.tty is not 0)")
    ] = False
    user: str = "kubernetes-admin"
    groups: list[str] = field(
        default_factory=lambda: ["kubeadm:cluster-admins", "system:authenticated"]
    )


@record
class WorkloadStep:
    """What a pod's own main process does (no kubectl involved)."""

    namespace: str = "default"
    pod: str
    container: str | None = None


# The sim backend gives the restored files their setup content for the node's Falco
# from this step on (the workspace keeps the learner's files) and restarts it
# (lab/backends/sim/falco.py). The kind backend re-enacts it on the node: it writes
# those files as the package ships them, restarts the node's Falco, and puts the
# learner's files back after the attack (lab/backends/kind/falco_upgrade.py); the
# contract both fill is FalcoEvidence.upgrades (lab/evidence.py).
@record
class PackageUpgrade:
    """A package upgrade on a node: the files the package ships are put back as it
    ships them (a change made there is lost), and its service restarts."""

    node: str
    package: Annotated[str, Meta(doc="the package upgraded, as explanations name it")] = "falco"
    restore: Annotated[
        list[str],
        Meta(min_items=1, doc="files the package ships: setup files of the node, which get "
             "their setup content back"),
    ]


@record
class AttackStep:
    id: Id
    description: str
    api: ApiRequest | None = None
    exec: ExecStep | None = None
    workload: WorkloadStep | None = None
    package_upgrade: PackageUpgrade | None = None
    effects: Effects = field(default_factory=Effects)
    trace: Annotated[
        str | None,
        Meta(doc="recorded Falco events (JSON lines) in the scenario folder, replayed as they are"),
    ] = None
    secret: Annotated[
        bool,
        Meta(doc="finding out what the step is (which pod) is the task: check explanations "
             "name it by its id and description only"),
    ] = False

    def _problems(self) -> Iterable[tuple[Loc, str]]:
        kinds = (self.api, self.exec, self.workload, self.package_upgrade)
        if sum(x is not None for x in kinds) != 1:
            yield (), "a step is exactly one of api or exec or workload or package_upgrade"
            return
        if self.trace is not None and self.in_pod is None:
            yield ("trace",), "a trace needs the pod it happens in: use it with exec or workload"
        if self.secret and self.in_pod is None:
            yield ("secret",), "only an exec or workload step can be secret"
        if self.package_upgrade is not None and self.effects != Effects():
            yield ("effects",), "a package upgrade has no effects of its own"

    @property
    def in_pod(self) -> tuple[str, str, str | None] | None:
        """(namespace, pod, container) of an exec or workload step."""
        where = self.exec or self.workload
        return (where.namespace, where.pod, where.container) if where else None


# --- tasks and checks ---------------------------------------------------


@record
class Hint:
    text: str
    penalty: Annotated[int, Meta(ge=0, doc="points taken off the task")] = 1


@record
class NodeCommand:
    """A command run on a node (`cks-lab node exec NODE -- COMMAND`)."""

    node: str
    command: Annotated[str, Meta(doc="e.g. apparmor_parser -r /etc/apparmor.d/k8s-deny-write")]

    def _problems(self) -> Iterable[tuple[Loc, str]]:
        if not command_words(self.command):
            yield ("command",), "must be a command line (a program and its arguments)"


@record
class Solution:
    files: list[NodeFile] = field(default_factory=list)
    commands: Annotated[list[str], Meta(doc="shown to the learner")] = field(default_factory=list)
    node_exec: Annotated[
        list[NodeCommand],
        Meta(doc="node commands run after the files are written (by `solution --apply` and "
             "the self-test), e.g. loading a profile"),
    ] = field(default_factory=list)
    notes: str = ""


@record(extra="params")
class Check:
    """One typed check from the registry (lab/grading/checks); its parameters are the other keys."""

    type: str
    points: Annotated[int, Meta(ge=0)] = 1
    params: dict[str, Any] = field(default_factory=dict)


@record
class Task:
    id: Id
    title: str
    statement: Annotated[str, Meta(doc="Markdown")]
    hints: list[Hint] = field(default_factory=list)
    solution: Solution
    checks: Annotated[list[Check], Meta(min_items=1)]


@record
class Scenario:
    api_version: Annotated[Literal["cks-lab/v1"], Meta(alias="apiVersion")]
    id: Id
    title: str
    skills: Annotated[list[Skill], Meta(min_items=1)]
    domain: Domain
    difficulty: Difficulty
    minutes: Annotated[int, Meta(ge=1, le=240, doc="suggested time")]
    weight: Annotated[int, Meta(ge=1, le=100, doc="share of an exam, in percent")]
    briefing: Annotated[str, Meta(doc="Markdown shown when the scenario starts")]
    cluster: Cluster
    setup: Setup = field(default_factory=Setup)
    attack: Annotated[list[AttackStep], Meta(min_items=1)]
    tasks: Annotated[list[Task], Meta(min_items=1)]

    def _problems(self) -> Iterable[tuple[Loc, str]]:
        nodes = {n.name for n in self.cluster.nodes}
        for i, f in enumerate(self.setup.files):
            if f.node not in nodes:
                yield ("setup", "files", i, "node"), f"no node named {f.node!r}"
        yield from self._pod_problems(nodes)
        for i, s in enumerate(self.attack):
            if s.id in [x.id for x in self.attack[:i]]:
                yield ("attack", i, "id"), f"step id {s.id!r} is used twice"
        for i, t in enumerate(self.tasks):
            if t.id in [x.id for x in self.tasks[:i]]:
                yield ("tasks", i, "id"), f"task id {t.id!r} is used twice"
            for j, f in enumerate(t.solution.files):
                if f.node not in nodes:
                    yield ("tasks", i, "solution", "files", j, "node"), f"no node named {f.node!r}"
            for j, c in enumerate(t.solution.node_exec):
                if c.node not in nodes:
                    loc = ("tasks", i, "solution", "node_exec", j, "node")
                    yield loc, f"no node named {c.node!r}"
        yield from self._upgrade_problems(nodes)
        for i, lp in enumerate(self.setup.load_profiles):
            if lp.node not in nodes:
                yield ("setup", "load_profiles", i, "node"), f"no node named {lp.node!r}"

    def _upgrade_problems(self, nodes: set[str]) -> Iterable[tuple[Loc, str]]:
        for i, s in enumerate(self.attack):
            up = s.package_upgrade
            if up is None:
                continue
            if up.node not in nodes:
                yield ("attack", i, "package_upgrade", "node"), f"no node named {up.node!r}"
                continue
            shipped = {f.path for f in self.setup.files if f.node == up.node}
            for j, path in enumerate(up.restore):
                if path not in shipped:
                    yield ("attack", i, "package_upgrade", "restore", j), (
                        f"{path} is not a setup file of node {up.node} (setup.files): only "
                        "those have content to restore"
                    )

    def _pod_problems(self, nodes: set[str]) -> Iterable[tuple[Loc, str]]:
        pods = self.setup.pods
        for i, p in enumerate(pods):
            if p.node not in nodes:
                yield ("setup", "pods", i, "node"), f"no node named {p.node!r}"
            if (p.namespace, p.name) in [(x.namespace, x.name) for x in pods[:i]]:
                yield ("setup", "pods", i, "name"), f"pod {p.namespace}/{p.name} is defined twice"
            if p.manifest is not None and p.manifest.node not in nodes:
                loc = ("setup", "pods", i, "manifest", "node")
                yield loc, f"no node named {p.manifest.node!r}"
        # Exec steps of audit-only scenarios need no pod facts; Falco's events do.
        strict = bool(pods) or self.needs_falco
        for i, s in enumerate(self.attack):
            if s.in_pod is None or (s.exec is not None and not strict):
                continue
            ns, name, container = s.in_pod
            kind = "exec" if s.exec is not None else "workload"
            pod = self.setup.pod(ns, name)
            if pod is None:
                yield ("attack", i, kind, "pod"), f"no pod {ns}/{name} in setup.pods"
            elif pod.container(container) is None:
                known = ", ".join(c.name for c in pod.containers)
                yield (
                    ("attack", i, kind, "container"),
                    f"pod {ns}/{name} has no container {container!r} (containers: {known})",
                )

    @property
    def needs_falco(self) -> bool:
        """Whether the attack is replayed through Falco: a falco_* check, or Falco's
        configuration on a node."""
        checks = (c.type for t in self.tasks for c in t.checks)
        return any(t.startswith("falco_") for t in checks) or any(
            f.path.startswith("/etc/falco/") for f in self.setup.files
        )

    @property
    def needs_apparmor(self) -> bool:
        """Whether the sim works out AppArmor confinement: an apparmor_* check, a pod
        manifest the learner edits, or profiles loaded at start."""
        checks = (c.type for t in self.tasks for c in t.checks)
        return (
            any(t.startswith("apparmor_") for t in checks)
            or any(p.manifest is not None for p in self.setup.pods)
            or bool(self.setup.load_profiles)
        )

    def step(self, step_id: str) -> AttackStep | None:
        return next((s for s in self.attack if s.id == step_id), None)

    @property
    def control_plane(self) -> str:
        return next(n.name for n in self.cluster.nodes if n.role == "control-plane")
