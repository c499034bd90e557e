"""A lab kind cluster's handle, folder and state.json, and the status record of it.

The bottom layer of the cluster modules (lock, status, readiness, host config,
lifecycle): what they all name a cluster by and read or record about it, so none
of them has to import another for it. lab.kind.cluster re-exports the public names.

state.json "phase": creating (kind is, or was when interrupted), created (made,
nodes not yet seen Ready), ready, failed; "apparmor": whether the nodes got the
host's AppArmor interface.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.fsutil import atomic_write_json
from lab.kind import kind_cli
from lab.kind.kind_cli import NodeState
from lab.kind.names import check_cluster_name

DEFAULT_NAME = "cks-lab"
CONFIG_FILE = "kind-config.yaml"
# the learner's files saved from a setup that never finished (lab.backends.kind.snapshot
# CLUSTER_SAVED_DIR): `down` moves them to data_dir()/KEPT_SAVED_DIR/<cluster>
SAVED_DIR = "saved"
KEPT_SAVED_DIR = "kind-saved"

# what `status` says; "unknown": kind or docker failed to answer (an error, a timeout,
# the daemon down), so nothing about the cluster can be told from them
PHASES = ("absent", "creating", "created", "ready", "broken", "unknown")
UNKNOWN = "unknown"
CREATING, CREATED, READY, FAILED = "creating", "created", "ready", "failed"  # state.json


@dataclass(frozen=True)
class ClusterHandle:
    name: str
    dir: Path

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    @property
    def state_file(self) -> Path:
        return self.dir / "state.json"

    @property
    def config_file(self) -> Path:
        return self.dir / CONFIG_FILE

    @property
    def audit_policy_dir(self) -> Path:
        return self.dir / "audit-policy"

    @property
    def audit_log_dir(self) -> Path:
        return self.dir / "audit-log"

    @property
    def saved_dir(self) -> Path:
        return self.dir / SAVED_DIR


def kept_saved_dir(handle: ClusterHandle) -> Path:
    """Where `down` keeps the cluster's saved/ (the folder itself goes)."""
    return clusters_dir().parent / KEPT_SAVED_DIR / handle.name


def clusters_dir() -> Path:
    from lab.paths import data_dir

    return data_dir().resolve() / "kind"


def cluster_handle(name: str = DEFAULT_NAME) -> ClusterHandle:
    """The cluster `name` (checked: a lab cluster name) and its folder."""
    check_cluster_name(name)
    return ClusterHandle(name, clusters_dir() / name)


def known_clusters() -> list[ClusterHandle]:
    """The clusters this lab has a folder for (made, or being made, by `up`)."""
    root = clusters_dir()
    if not root.is_dir():
        return []
    out = []
    for d in sorted(root.iterdir()):
        if d.is_dir() and kind_cli_name_ok(d.name):
            out.append(ClusterHandle(d.name, d))
    return out


def kind_cli_name_ok(name: str) -> bool:
    try:
        check_cluster_name(name)
    except LabError:
        return False
    return True


@dataclass
class ClusterStatus:
    name: str
    exists: bool  # kind lists it
    nodes: list[NodeState]
    phase: str  # one of PHASES
    ready: bool
    detail: list[str] = field(default_factory=list)
    kubeconfig: Path | None = None  # when the lab's kubeconfig file is there
    created: str | None = None  # when `up` created it (UTC, ISO 8601)
    config_digest: str | None = None
    missing: list[str] = field(default_factory=list)  # kind/docker not installed
    # kind/docker answered with an error, did not finish in time, or could not be run
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "phase": self.phase,
            "ready": self.ready,
            "exists": self.exists,
            "nodes": [
                {"name": n.name, "role": n.role, "state": n.state, "status": n.status, "id": n.id}
                for n in self.nodes
            ],
            "kubeconfig": str(self.kubeconfig) if self.kubeconfig else None,
            "created": self.created,
            "config_digest": self.config_digest,
            "detail": list(self.detail),
        }


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_state(handle: ClusterHandle) -> dict[str, Any]:
    try:
        data = json.loads(handle.state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_state(handle: ClusterHandle, **values: Any) -> None:
    state = read_state(handle)
    state.update(values, name=handle.name)
    atomic_write_json(handle.state_file, state)


def config_digest(config_text: str, image: str = kind_cli.NODE_IMAGE) -> str:
    """What the cluster is made from: the rendered config and the node image."""
    return hashlib.sha256(f"{image}\n{config_text}".encode()).hexdigest()


def cluster_has_apparmor(handle: ClusterHandle) -> bool | None:
    """Whether `up` gave the cluster's nodes the host's AppArmor interface (the Docker
    daemon confines with AppArmor); None when not recorded (no cluster, or an older lab).
    Without it the AppArmor scenarios run on the sim backend."""
    value = read_state(handle).get("apparmor")
    return value if isinstance(value, bool) else None
