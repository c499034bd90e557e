"""Scenario format v1: the records authors write in scenario.yaml.

`cks-lab scenario schema` prints the JSON Schema for editor completion; the
reference is docs/scenario-format.md. Unknown keys are errors, so a typo is
reported with its place instead of being silently ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import field
from typing import Annotated, Any, Literal

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


@record
class NodeFile:
    """A file placed on a node: from `source` (relative to the scenario folder) or `content`."""

    node: str
    path: Annotated[str, Meta(doc="absolute path on the node")]
    source: str | None = None
    content: str | None = None
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
        if (self.source is None) == (self.content is None):
            yield (), "give exactly one of source or content"
        if octal_mode(self.mode) is None:
            yield ("mode",), (
                f"{self.mode!r} is not an octal permission mode (0000-0777); write 0600 or '0600'"
            )


@record
class Setup:
    manifests: Annotated[list[str], Meta(doc="Kubernetes manifests to apply")] = field(
        default_factory=list
    )
    files: list[NodeFile] = field(default_factory=list)


# --- attack ----------------------------------------------------------------


@record
class Effects:
    """What a step does on a node, for the engines that replay it."""

    processes: Annotated[list[str], Meta(doc="command lines started")] = field(default_factory=list)
    reads: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    connects: Annotated[list[str], Meta(doc="host:port")] = field(default_factory=list)
    capabilities: list[str] = field(default_factory=list)


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
    user: str = "kubernetes-admin"
    groups: list[str] = field(
        default_factory=lambda: ["kubeadm:cluster-admins", "system:authenticated"]
    )


@record
class AttackStep:
    id: Id
    description: str
    api: ApiRequest | None = None
    exec: ExecStep | None = None
    effects: Effects = field(default_factory=Effects)

    def _problems(self) -> Iterable[tuple[Loc, str]]:
        if (self.api is None) == (self.exec is None):
            yield (), "a step is exactly one of api or exec"


# --- tasks and checks ---------------------------------------------------


@record
class Hint:
    text: str
    penalty: Annotated[int, Meta(ge=0, doc="points taken off the task")] = 1


@record
class Solution:
    files: list[NodeFile] = field(default_factory=list)
    commands: Annotated[list[str], Meta(doc="shown to the learner")] = field(default_factory=list)
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
        for i, s in enumerate(self.attack):
            if s.id in [x.id for x in self.attack[:i]]:
                yield ("attack", i, "id"), f"step id {s.id!r} is used twice"
        for i, t in enumerate(self.tasks):
            if t.id in [x.id for x in self.tasks[:i]]:
                yield ("tasks", i, "id"), f"task id {t.id!r} is used twice"
            for j, f in enumerate(t.solution.files):
                if f.node not in nodes:
                    yield ("tasks", i, "solution", "files", j, "node"), f"no node named {f.node!r}"

    def step(self, step_id: str) -> AttackStep | None:
        return next((s for s in self.attack if s.id == step_id), None)

    @property
    def control_plane(self) -> str:
        return next(n.name for n in self.cluster.nodes if n.role == "control-plane")
