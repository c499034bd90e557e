"""What a backend hands to the checks: facts observed, not how they were observed.

The kind backend fills these from a real cluster, the sim backend from its
engines; checks read only these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class MountInfo:
    name: str
    mount_path: str
    host_path: str | None  # None: not a hostPath volume
    read_only: bool


@dataclass
class ApiserverStatus:
    running: bool
    error: str | None = None  # what crictl logs / kubelet say when it is not running
    flags: dict[str, str] = field(default_factory=dict)  # "--audit-log-path" -> value
    mounts: list[MountInfo] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # non-fatal facts worth telling


@dataclass
class AuditEvidence:
    apiserver: ApiserverStatus
    policy_file: str | None = None  # container path of --audit-policy-file
    policy_text: str | None = None  # the policy the apiserver loaded
    log_path: str | None = None  # container path of --audit-log-path ("-" = stdout)
    log_on_node: str | None = None  # node path the log lands at, None if nowhere on the node
    log_format: str = "json"  # --audit-log-format: json, or legacy (which has no level)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # step id -> events
    log_error: str | None = None  # the log exists but could not be read


# --- Falco -------------------------------------------------------------------


@dataclass(frozen=True)
class FalcoMessage:
    """One error or warning Falco printed about its configuration or a rules file."""

    severity: str  # "error" | "warning"
    message: str  # Falco's wording
    file: str | None = None  # node path of the file it is about
    line: int | None = None
    item: str | None = None  # "rule 'Terminal shell in container'", "macro 'container'"
    code: str | None = None  # Falco's code: LOAD_ERR_COMPILE_CONDITION, LOAD_UNKNOWN_KEY, ...

    def __str__(self) -> str:
        where = self.file or ""
        if where and self.line is not None:
            where += f":{self.line}"
        parts = [p for p in (where, self.item) if p]
        text = f"{self.code}: {self.message}" if self.code else self.message
        return ": ".join([*parts, text])


@dataclass
class FalcoRulesFile:
    """A rules file Falco read at start-up, in load order."""

    path: str  # on the node
    status: str  # "Ok" | "Ok, with warnings" | "Invalid" | "Not loaded" (after an invalid one)
    messages: list[FalcoMessage] = field(default_factory=list)


@dataclass(frozen=True)
class FalcoRule:
    """A rule Falco loaded, as `falco -L` lists it; checks explain near misses from these."""

    name: str
    priority: str  # as Falco prints it: "Notice", "Warning", ...
    enabled: bool = True
    output: str = ""
    file: str | None = None  # the rules file that last defined it
    tags: tuple[str, ...] = ()


@dataclass
class FalcoNode:
    """Falco on one node (it runs on every node, as a DaemonSet)."""

    node: str
    running: bool
    error: str | None = None  # why it is not running (what `kubectl logs` of the pod ends with)
    installed: bool = True  # False: no Falco on this node at all (no configuration)
    config_file: str = "/etc/falco/falco.yaml"
    rules_files: list[FalcoRulesFile] = field(default_factory=list)
    min_priority: str = "Debug"  # falco.yaml `priority`
    rule_matching: str = "first"
    json_output: bool = False
    outputs: list[str] = field(default_factory=list)  # "stdout", "file /var/log/falco.log"
    rules: list[FalcoRule] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # non-fatal facts worth telling

    def rule(self, name: str) -> FalcoRule | None:
        return next((r for r in self.rules if r.name == name), None)


@dataclass(frozen=True)
class FalcoSuppressed:
    """An alert Falco did not raise although the rule matched: a filter dropped it."""

    alert: dict[str, Any]  # json_output shape
    reason: str  # "priority": below falco.yaml's `priority`; "first-match": another rule won
    by_rule: str | None = None  # with "first-match": the rule that matched the event first


@dataclass
class FalcoEvidence:
    nodes: dict[str, FalcoNode] = field(default_factory=dict)  # node -> its Falco
    step_nodes: dict[str, str] = field(default_factory=dict)  # step id -> node that saw it
    alerts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # step id -> alerts
    # Optional facts a backend may not have (the kind backend only sees alerts):
    suppressed: dict[str, list[FalcoSuppressed]] = field(default_factory=dict)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # step id -> events

    def node_of(self, step: str) -> FalcoNode | None:
        node = self.step_nodes.get(step)
        return self.nodes.get(node) if node else None


# --- files the learner writes (answers) -----------------------------------------


@dataclass(frozen=True)
class FileFact:
    exists: bool
    text: str | None = None  # the content, when it is a readable text file
    error: str | None = None  # why it could not be read: a folder, too large, not UTF-8


class NodeFiles(Protocol):
    """Reads a file on a node as the learner left it (sim: the node tree; kind: docker exec)."""

    def read(self, node: str, path: str) -> FileFact: ...


@dataclass
class Evidence:
    run_id: str
    backend: str
    audit: AuditEvidence | None = None
    falco: FalcoEvidence | None = None
    files: NodeFiles | None = None
