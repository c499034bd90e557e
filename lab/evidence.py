"""What a backend hands to the checks: facts observed, not how they were observed.

The kind backend fills these from a real cluster, the sim backend from its
engines; checks read only these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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


@dataclass
class Evidence:
    run_id: str
    backend: str
    audit: AuditEvidence | None = None
