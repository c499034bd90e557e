"""What the lab asks kind (and docker, about kind's node containers), and what it answers.

Argument lists are built here, and kind's output parsed here, so the lifecycle in
lab.kind.cluster reads as steps. kind v0.32 logs on stderr; piped (never a TTY
for the lab), each create step prints a start line and an end line:

    " • Preparing nodes 📦 📦   ..."      a step starts
    " ✓ Preparing nodes 📦 📦 "           it succeeded
    "✗ Starting control-plane 🕹️"        it failed (in a terminal: " ✗ ...")
    " • Ready after 38s 💚"               a note, no step
    "ERROR: failed to create cluster: ..." why kind gave up (then "Command Output: ...")

Older releases coloured the marks (" \\x1b[32m✓\\x1b[0m ...") and terminal
transcripts show only the end lines; both parse the same.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from lab.errors import LabError
from lab.kind.names import KIND_CLUSTER_LABEL, check_cluster_name, kind_node_role
from lab.work import ProgressEvent

KIND = "kind"
DOCKER = "docker"

# kind v0.32.0's release notes: "The default node image is now
# kindest/node:v1.36.1@sha256:3489c767…" — Kubernetes 1.36 as kind v0.32 ships it
# (there is no v1.36.0 node image). The digest pins the build for that release.
NODE_IMAGE = (
    "kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5"
)
WAIT = "120s"  # kind's --wait: control plane Ready before create returns

CREATE_PHASE = "create"
# kind's create actions in the order it runs them (pkg/cluster/internal/create):
# the text each step's status line starts with.
CREATE_STEPS = (
    "Ensuring node image",
    "Preparing nodes",
    "Writing configuration",
    "Starting control-plane",
    "Installing CNI",
    "Installing StorageClass",
    "Joining worker nodes",
    "Waiting ",  # "Waiting ≤ 2m0s for control-plane = Ready ⏳"
)

ALREADY_EXISTS = "node(s) already exist for a cluster with the name"
NO_CLUSTERS = "No kind clusters found."
# kind's waitforready action: when --wait runs out it ends the step "✗", prints
# " • WARNING: Timed out waiting for Ready ⚠️" (on stdout) and still exits 0.
WAIT_STEP = CREATE_STEPS[-1]
WAIT_TIMED_OUT = "WARNING: Timed out waiting for Ready"
# kind's nodes carry kubectl and the admin kubeconfig (kind checks readiness with them)
NODE_ADMIN_KUBECONFIG = "/etc/kubernetes/admin.conf"

_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_STATUS_RE = re.compile(r"^\s*(?P<mark>[✓✗•])\s+(?P<text>.*?)(?P<dots>\s+\.\.\.)?\s*$")
_HAS_WORD_RE = re.compile(r"[A-Za-z0-9)\]]")


def create_argv(
    name: str, config: Path, kubeconfig: Path, *, image: str = NODE_IMAGE, wait: str = WAIT
) -> list[str]:
    """`kind create cluster`, writing the kubeconfig to the lab's own file: the
    user's ~/.kube/config (or $KUBECONFIG) is never touched."""
    check_cluster_name(name)
    return [
        KIND, "create", "cluster",
        "--name", name,
        "--config", str(config),
        "--kubeconfig", str(kubeconfig),
        "--image", image,
        "--wait", wait,
    ]  # fmt: skip


def delete_argv(name: str, kubeconfig: Path) -> list[str]:
    """`kind delete cluster`; --kubeconfig so kind edits the lab's file, not the user's."""
    check_cluster_name(name)
    return [KIND, "delete", "cluster", "--name", name, "--kubeconfig", str(kubeconfig)]


def get_clusters_argv() -> list[str]:
    return [KIND, "get", "clusters"]


def get_kubeconfig_argv(name: str) -> list[str]:
    """Prints the kubeconfig on stdout (writes nothing)."""
    check_cluster_name(name)
    return [KIND, "get", "kubeconfig", "--name", name]


def export_logs_argv(name: str, dest: Path) -> list[str]:
    check_cluster_name(name)
    return [KIND, "export", "logs", str(dest), "--name", name]


def node_ps_argv(name: str) -> list[str]:
    """Every node container of the cluster, stopped ones too, one JSON object a line.
    `{{json .}}` rather than `--format json`: the same output, and older docker CLIs
    (20.10) understand it too."""
    check_cluster_name(name)
    return [
        DOCKER,
        "ps",
        "-a",
        "--filter",
        f"label={KIND_CLUSTER_LABEL}={name}",
        "--format",
        "{{json .}}",
    ]


def docker_security_argv() -> list[str]:
    """The Docker daemon's security options as one JSON list of strings."""
    return [DOCKER, "info", "--format", "{{json .SecurityOptions}}"]


def docker_start_argv(container_id: str) -> list[str]:
    """Start one stopped node container, by the ID `docker ps` gave for the cluster's label."""
    return [DOCKER, "start", _container_id(container_id)]


def node_get_nodes_argv(container_id: str) -> list[str]:
    """The cluster's Node objects as the control-plane node's own kubectl sees them:
    no kubeconfig of the host, no port forwarding involved."""
    return [
        DOCKER, "exec", _container_id(container_id),
        "kubectl", f"--kubeconfig={NODE_ADMIN_KUBECONFIG}", "get", "nodes", "-o", "json",
    ]  # fmt: skip


_ID_RE = re.compile(r"^[0-9a-f]{12,64}$")


def _container_id(container_id: str) -> str:
    # an ID from parse_node_ps, never a name or an option
    if not _ID_RE.match(container_id):
        raise LabError(f"not a docker container ID: {container_id!r}")
    return container_id


def parse_security_options(stdout: str) -> list[str]:
    """`docker info --format '{{json .SecurityOptions}}'` -> its entries
    ("name=apparmor", "name=seccomp,profile=builtin", ...); [] for anything else."""
    try:
        data = json.loads(stdout.strip() or "null")
    except ValueError:
        return []
    return [str(x) for x in data] if isinstance(data, list) else []


def has_apparmor(options: list[str]) -> bool:
    """Whether the daemon confines containers with AppArmor ("name=apparmor")."""
    return any("name=apparmor" in opt.split(",") for opt in options)


def parse_nodes_ready(stdout: str) -> dict[str, bool]:
    """`kubectl get nodes -o json` -> node name: whether its Ready condition is True."""
    try:
        data = json.loads(stdout)
    except ValueError:
        return {}
    items = data.get("items") if isinstance(data, dict) else None
    out: dict[str, bool] = {}
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        name = str((item.get("metadata") or {}).get("name") or "")
        conditions = (item.get("status") or {}).get("conditions") or []
        out[name] = any(
            isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True"
            for c in conditions
        )
    return out


def wait_timed_out(lines: list[str]) -> bool:
    """Whether kind's final "Waiting ≤ … for control-plane = Ready" step failed: kind
    then exits 0 with nodes that are not Ready (yet)."""
    for line in lines:
        clean = _ANSI_RE.sub("", line).replace("\r", "").strip()
        if WAIT_TIMED_OUT in clean:
            return True
        m = _STATUS_RE.match(clean)
        if m and m["mark"] == "✗" and _plain(m["text"]).startswith(WAIT_STEP):
            return True
    return False


def parse_get_clusters(stdout: str) -> list[str]:
    """`kind get clusters`: one name a line on stdout ("No kind clusters found." is on stderr)."""
    return [ln.strip() for ln in stdout.splitlines() if ln.strip() and ln.strip() != NO_CLUSTERS]


@dataclass(frozen=True)
class NodeState:
    """A node container as `docker ps` sees it."""

    name: str
    role: str  # "control-plane" | "worker" | "" when unlabelled
    id: str
    state: str  # docker's State: "running", "exited", "created", ...
    status: str = ""  # docker's Status: "Up 5 minutes", "Exited (137) 2 hours ago"

    @property
    def running(self) -> bool:
        return self.state == "running"


def _labels(text: str) -> dict[str, str]:
    out = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def parse_node_ps(text: str, cluster: str) -> list[NodeState]:
    """`docker ps -a --format '{{json .}}'` lines -> the nodes of `cluster`, by name.

    A container whose labels do not name this cluster is left out, whatever the
    filter let through: the lab reports only its own containers."""
    nodes = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if not isinstance(row, dict):
            continue
        role = kind_node_role(_labels(str(row.get("Labels") or "")), cluster)
        if role is None:
            continue
        status = str(row.get("Status") or "")
        # "State" is missing from the oldest CLIs' JSON: "Up …" means running
        state = str(row.get("State") or ("running" if status.startswith("Up") else "unknown"))
        name = str(row.get("Names") or "").split(",")[0]
        nodes.append(NodeState(name, role, str(row.get("ID") or ""), state, status))
    return sorted(nodes, key=lambda n: (n.role != "control-plane", n.name))


def _plain(text: str) -> str:
    """kind's step text without its trailing emoji ("Installing CNI 🔌" -> "Installing CNI")."""
    words = text.split()
    while words and not _HAS_WORD_RE.search(words[-1]):
        words.pop()
    return " ".join(words)


def _step(text: str) -> int | None:
    for i, prefix in enumerate(CREATE_STEPS, start=1):
        if text.startswith(prefix):
            return i
    return None


def parse_kind_line(line: str) -> ProgressEvent | None:
    """One line of `kind create cluster` output as a progress event, or None for a
    line that is not progress (ERROR lines, usage hints, blank lines).

    A step's start has done = the steps before it; its end, done = its number;
    total is the number of create steps (CREATE_STEPS)."""
    line = _ANSI_RE.sub("", line).replace("\r", "").rstrip("\n")
    total = len(CREATE_STEPS)
    if line.startswith("Creating cluster "):
        name = line[len("Creating cluster ") :].rstrip(" .")
        return ProgressEvent(f"Creating cluster {name}", CREATE_PHASE, 0, total)
    m = _STATUS_RE.match(line)
    if not m:
        return None
    text = _plain(m["text"])
    if not text:
        return None
    step = _step(text)
    mark = m["mark"]
    if mark == "•":
        if m["dots"] and step is not None:
            return ProgressEvent(text, CREATE_PHASE, step - 1, total)
        return ProgressEvent(text, CREATE_PHASE)  # a note: "Ready after 38s"
    if step is None:
        return ProgressEvent(f"{text} {'done' if mark == '✓' else 'failed'}", CREATE_PHASE)
    if mark == "✓":
        return ProgressEvent(f"{text} ✓", CREATE_PHASE, step, total)
    return ProgressEvent(f"{text} failed", CREATE_PHASE, step - 1, total)


def error_lines(lines: list[str], limit: int = 12) -> list[str]:
    """Why kind failed: its failed step, its ERROR line and what follows (kubeadm's
    "Command Output"), at most `limit` lines, colour codes removed."""
    clean = [_ANSI_RE.sub("", ln).replace("\r", "").rstrip() for ln in lines]
    start = next((i for i, ln in enumerate(clean) if ln.startswith("ERROR:")), None)
    failed = [ln.strip() for ln in clean if _STATUS_RE.match(ln) and ln.strip().startswith("✗")]
    if start is None:
        tail = [ln for ln in clean if ln.strip()][-limit:]
        return failed + [ln for ln in tail if ln.strip() not in failed]
    body = [ln for ln in clean[start:] if ln.strip()]
    return (failed + body)[:limit]
