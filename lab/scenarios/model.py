"""Scenario format v1: the pydantic model authors write against.

`cks-lab scenario schema` prints its JSON Schema for editor completion.
Field names are snake_case; every model forbids unknown keys so a typo is an
error with a place, not a silently ignored setting.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ID_RE = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"

Skill = Literal["audit-logging", "falco", "apparmor", "seccomp", "runtime-hardening"]
Domain = Literal["monitoring-logging-runtime-security", "system-hardening"]
Difficulty = Literal["easy", "medium", "hard"]
Stage = Literal["RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"]
Level = Literal["None", "Metadata", "Request", "RequestResponse"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- cluster and setup ---------------------------------------------------


class Node(Strict):
    name: Annotated[str, Field(pattern=ID_RE)]
    role: Literal["control-plane", "worker"] = "worker"


class Cluster(Strict):
    kind_config: str = Field(description="file name in kind-configs/ the kind backend uses")
    nodes: list[Node] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_control_plane(self) -> Cluster:
        names = [n.name for n in self.nodes]
        if len(set(names)) != len(names):
            raise ValueError("node names must be unique")
        if not any(n.role == "control-plane" for n in self.nodes):
            raise ValueError("the cluster needs a node with role control-plane")
        return self


class NodeFile(Strict):
    """A file placed on a node: `source` is relative to the scenario folder."""

    node: str
    path: str = Field(description="absolute path on the node")
    source: str | None = None
    content: str | None = None
    mode: Annotated[int, Field(ge=0, le=0o7777)] = Field(
        0o644, description="file mode: 0600 or the string '0600' (octal)"
    )

    @field_validator("mode", mode="before")
    @classmethod
    def _octal(cls, v: Any) -> Any:
        # YAML 1.1 reads 0600 as octal already; a quoted "0600"/"0o600" means octal too.
        if isinstance(v, str):
            try:
                return int(v.removeprefix("0o"), 8)
            except ValueError:
                raise ValueError("mode must be octal digits, e.g. 0600") from None
        return v

    @field_validator("path")
    @classmethod
    def _absolute(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError("must be an absolute path on the node")
        if any(part == ".." for part in v.split("/")):
            raise ValueError("must not contain '..'")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> NodeFile:
        if (self.source is None) == (self.content is None):
            raise ValueError("give exactly one of source or content")
        return self


class Setup(Strict):
    manifests: list[str] = Field(default_factory=list, description="Kubernetes manifests to apply")
    files: list[NodeFile] = Field(default_factory=list)


# --- attack ----------------------------------------------------------------


class Effects(Strict):
    """What a step does on a node, for the engines that replay it."""

    processes: list[str] = Field(default_factory=list, description="command lines started")
    reads: list[str] = Field(default_factory=list)
    writes: list[str] = Field(default_factory=list)
    connects: list[str] = Field(default_factory=list, description="host:port")
    capabilities: list[str] = Field(default_factory=list)


class ApiRequest(Strict):
    """An API request as the audit checker sees it (request attributes)."""

    user: str | None = Field(None, description="username; omit for an anonymous request")
    groups: list[str] = Field(default_factory=list)
    verb: str
    api_group: str = ""
    api_version: str = "v1"
    resource: str | None = None
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    uri: str | None = Field(None, description="request URI; derived for resource requests")
    body: dict[str, Any] | None = Field(None, description="request object, for create/update")
    response_code: int = 200

    @model_validator(mode="after")
    def _shape(self) -> ApiRequest:
        if self.resource is None and self.uri is None:
            raise ValueError("a non-resource request needs uri")
        if self.resource is None and (self.subresource or self.namespace or self.name):
            raise ValueError("subresource, namespace and name need resource")
        if self.uri is not None and not self.uri.startswith("/"):
            raise ValueError("uri must start with /")
        return self


class ExecStep(Strict):
    namespace: str
    pod: str
    container: str | None = None
    command: list[str] = Field(min_length=1)
    user: str = "kubernetes-admin"
    groups: list[str] = Field(
        default_factory=lambda: ["kubeadm:cluster-admins", "system:authenticated"]
    )


class AttackStep(Strict):
    id: Annotated[str, Field(pattern=ID_RE)]
    description: str
    api: ApiRequest | None = None
    exec: ExecStep | None = None
    effects: Effects = Field(default_factory=Effects)

    @model_validator(mode="after")
    def _one_action(self) -> AttackStep:
        if sum(x is not None for x in (self.api, self.exec)) != 1:
            raise ValueError("a step is exactly one of api or exec")
        return self


# --- tasks and checks ---------------------------------------------------


class Hint(Strict):
    text: str
    penalty: Annotated[int, Field(ge=0)] = 1


class Solution(Strict):
    files: list[NodeFile] = Field(default_factory=list)
    commands: list[str] = Field(default_factory=list, description="shown to the learner")
    notes: str = ""


class Check(Strict):
    """One typed check from the registry in lab.grading.checks; params are the rest."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: str
    points: Annotated[int, Field(ge=0)] = 1


class Task(Strict):
    id: Annotated[str, Field(pattern=ID_RE)]
    title: str
    statement: str = Field(description="Markdown")
    hints: list[Hint] = Field(default_factory=list)
    solution: Solution
    checks: list[Check] = Field(min_length=1)


class Scenario(Strict):
    api_version: Literal["cks-lab/v1"] = Field(alias="apiVersion")
    id: Annotated[str, Field(pattern=ID_RE)]
    title: str
    skills: list[Skill] = Field(min_length=1)
    domain: Domain
    difficulty: Difficulty
    minutes: Annotated[int, Field(gt=0, le=240)] = Field(description="suggested time")
    weight: Annotated[int, Field(gt=0, le=100)] = Field(description="points in an exam")
    briefing: str = Field(description="Markdown shown when the scenario starts")
    cluster: Cluster
    setup: Setup = Field(default_factory=Setup)
    attack: list[AttackStep] = Field(min_length=1)
    tasks: list[Task] = Field(min_length=1)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        nodes = {n.name for n in self.cluster.nodes}
        for i, f in enumerate(self.setup.files):
            if f.node not in nodes:
                raise ValueError(f"setup.files[{i}].node: no node named {f.node!r}")
        ids = [s.id for s in self.attack]
        if len(set(ids)) != len(ids):
            raise ValueError("attack step ids must be unique")
        tids = [t.id for t in self.tasks]
        if len(set(tids)) != len(tids):
            raise ValueError("task ids must be unique")
        for t in self.tasks:
            for j, f in enumerate(t.solution.files):
                if f.node not in nodes:
                    raise ValueError(f"task {t.id}: solution.files[{j}].node: no node {f.node!r}")
        return self

    def step(self, step_id: str) -> AttackStep | None:
        return next((s for s in self.attack if s.id == step_id), None)

    @property
    def control_plane(self) -> str:
        return next(n.name for n in self.cluster.nodes if n.role == "control-plane")

    @property
    def total_points(self) -> int:
        return sum(c.points for t in self.tasks for c in t.checks)


def slug_ok(value: str) -> bool:
    return re.match(ID_RE, value) is not None
