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
class FalcoUpgrade:
    """A package_upgrade attack step: the files it put back and Falco after its restart.

    The sim fills it from the setup files; a real backend by upgrading the package,
    comparing the files before and after, and putting the learner's back afterwards.
    """

    step: str  # the upgrade's step id
    node: str
    package: str
    restored: list[str]  # node paths it put back as the package ships them
    changed: list[str]  # those of them the learner had changed: their change is lost
    falco: FalcoNode  # Falco restarted after the upgrade: it sees the later steps


@dataclass
class FalcoEvidence:
    nodes: dict[str, FalcoNode] = field(default_factory=dict)  # node -> its Falco
    step_nodes: dict[str, str] = field(default_factory=dict)  # step id -> node that saw it
    alerts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # step id -> alerts
    # Optional facts a backend may not have (the kind backend only sees alerts):
    suppressed: dict[str, list[FalcoSuppressed]] = field(default_factory=dict)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # step id -> events
    upgrades: dict[str, FalcoUpgrade] = field(default_factory=dict)  # upgrade step id -> it
    # step id -> the latest earlier upgrade on its node, whose restarted Falco saw it
    after_upgrade: dict[str, str] = field(default_factory=dict)

    def upgrade_before(self, step: str) -> FalcoUpgrade | None:
        return self.upgrades.get(self.after_upgrade.get(step, ""))

    def node_of(self, step: str) -> FalcoNode | None:
        """The Falco that saw the step: the node's, or the one restarted by an upgrade."""
        upgrade = self.upgrade_before(step)
        if upgrade is not None:
            return upgrade.falco
        node = self.step_nodes.get(step)
        return self.nodes.get(node) if node else None


# --- AppArmor ------------------------------------------------------------------


@dataclass(frozen=True)
class AppArmorProfileState:
    """A profile loaded in a node's kernel (what aa-status lists)."""

    name: str
    mode: str  # enforce | complain | kill | unconfined
    file: str | None = None  # the file it was loaded from, when known
    stale: bool = False  # the file changed since it was loaded: the kernel still has the old one


@dataclass(frozen=True)
class AppArmorBrokenFile:
    """A profile file in /etc/apparmor.d that does not compile (so nothing of it can load)."""

    file: str
    error: str  # located, as apparmor_parser prints it
    names: tuple[str, ...] = ()  # the profiles its text seems to define


@dataclass
class AppArmorNode:
    node: str
    enabled: bool = True  # the kernel has AppArmor
    loaded: list[AppArmorProfileState] = field(default_factory=list)
    # profiles the files in /etc/apparmor.d define, loaded or not: name -> file
    defined: dict[str, str] = field(default_factory=dict)
    broken: list[AppArmorBrokenFile] = field(default_factory=list)

    def profile(self, name: str) -> AppArmorProfileState | None:
        return next((p for p in self.loaded if p.name == name), None)


@dataclass
class AppArmorContainer:
    """A container of a pod after its manifest was applied: running (and under which
    profile), or why not."""

    namespace: str
    pod: str
    container: str
    node: str | None = None  # where it runs; None when it was never scheduled
    # running | waiting (CreateContainerError) | rejected (kubelet admission) |
    # invalid (the API server refused the object) | pending (not scheduled) | missing
    state: str = "running"
    reason: str = ""  # CreateContainerError, AppArmor, Invalid, ...
    message: str = ""  # the words kubectl describe / kubectl apply show
    profile: str | None = None  # the AppArmor label it runs under; None: unconfined
    mode: str = "unconfined"  # enforce | complain | kill | unconfined
    requested: str = ""  # what its spec asks for, in words, with the field that says it
    localhost: str | None = None  # the localhostProfile it asks for, if any
    manifest: str | None = None  # where the spec came from ("controlplane:/root/pod.yaml")

    @property
    def running(self) -> bool:
        return self.state == "running"


@dataclass(frozen=True)
class AppArmorRule:
    """A rule that took part in a decision (the sim knows them; the kind backend does not)."""

    line: int
    text: str
    role: str  # "allows read", "denies write"
    file: str = ""


@dataclass(frozen=True)
class AppArmorAccess:
    """One access a step made, and whether AppArmor let it happen."""

    access: str  # as the kernel sees it: "r /etc/shadow", "x /usr/bin/dash", "network inet raw"
    outcome: str  # "ALLOWED" | "DENIED" | "COMPLAIN" (allowed, and logged: complain mode)
    by: str = ""  # the process that made it
    aliases: tuple[str, ...] = ()  # the same access as the step wrote it ("x /bin/sh")
    profile: str | None = None  # the profile that decided; None: unconfined
    rules: tuple[AppArmorRule, ...] = ()
    reason: str = ""  # why, in words
    # the program or path as the step wrote it, when AppArmor sees another one
    # ("sh" run as /usr/bin/dash, /var/run/nginx.pid written as /run/nginx.pid)
    written: str = ""

    @property
    def allowed(self) -> bool:
        return self.outcome != "DENIED"


@dataclass
class AppArmorStep:
    """What an exec or workload step tried, in its container."""

    step: str
    namespace: str
    pod: str
    container: str
    ran: bool = True  # False: the container is not running, so nothing was tried
    accesses: list[AppArmorAccess] = field(default_factory=list)


@dataclass
class AppArmorEvidence:
    nodes: dict[str, AppArmorNode] = field(default_factory=dict)
    containers: list[AppArmorContainer] = field(default_factory=list)
    steps: dict[str, AppArmorStep] = field(default_factory=dict)

    def container(self, namespace: str, pod: str, name: str | None) -> AppArmorContainer | None:
        """A pod's container; without a name, its first."""
        mine = [c for c in self.containers if (c.namespace, c.pod) == (namespace, pod)]
        if name is None:
            return mine[0] if mine else None
        return next((c for c in mine if c.container == name), None)


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
    apparmor: AppArmorEvidence | None = None
