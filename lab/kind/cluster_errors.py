"""What the cluster modules raise, and how they word a kind/docker query that failed.

Apart from lab.kind.cluster so that readiness and host config raise the same
errors the lifecycle does without importing it; lab.kind.cluster re-exports them.
"""

from __future__ import annotations

from lab.errors import LabError
from lab.kind.cluster_state import ClusterStatus
from lab.kind.runner import CommandResult

QUERY_TIMEOUT = 30.0  # a kind/docker query that takes longer has failed


class ClusterCancelled(LabError):
    """`up` was cancelled while kind created the cluster."""


class ClusterCreateError(LabError):
    """kind failed; `kind_lines` is what it said (its failed step, ERROR, output)."""

    def __init__(self, message: str, kind_lines: list[str]) -> None:
        super().__init__(message)
        self.kind_lines = kind_lines


class ConfigChanged(LabError):
    """The cluster exists but was made from another config: recreate it to change."""


class ClusterNotReady(LabError):
    """The cluster exists but its nodes are not Ready (yet); `status` says how it is."""

    def __init__(self, message: str, status: ClusterStatus) -> None:
        super().__init__(message)
        self.status = status


def failure(res: CommandResult) -> str:
    """The line of a failed command's output a message quotes: its last one."""
    lines = [ln.strip() for ln in res.lines if ln.strip()]
    return lines[-1] if lines else f"exit status {res.code}"
