"""Lab cluster names: what the lab may create or touch (cks-lab, cks-lab-<suffix>).

Apart from the config rendering so that the callers that only check a name (the
TUI's start-up, through the recorded cluster state) do not load PyYAML.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from lab.errors import LabError

# kind's labels on every node container: the cluster it belongs to, and the node's role.
KIND_CLUSTER_LABEL = "io.x-k8s.kind.cluster"
KIND_ROLE_LABEL = "io.x-k8s.kind.role"

CLUSTER_NAME_RE = re.compile(r"^cks-lab(-[a-z0-9-]+)?$")
# kind names the node containers "<name>-control-plane" / "<name>-worker2"; they
# become hostnames, which stop at 63 characters.
MAX_CLUSTER_NAME = 63 - len("-control-plane")


def check_cluster_name(name: str) -> None:
    """Refuse a name that is not a lab cluster name or that kind would reject."""
    if not CLUSTER_NAME_RE.match(name):
        raise LabError(
            f"cluster name {name!r} is not a lab cluster name: use 'cks-lab' or "
            "'cks-lab-<suffix>' (lowercase letters, digits, '-')"
        )
    if name.endswith("-") or "--" in name:
        raise LabError(
            f"cluster name {name!r}: kind node names are hostnames, which cannot end "
            "with '-' or contain '--'"
        )
    if len(name) > MAX_CLUSTER_NAME:
        raise LabError(
            f"cluster name {name!r} is {len(name)} characters; kind node hostnames "
            f"need it to be at most {MAX_CLUSTER_NAME}"
        )


def kind_node_role(labels: Mapping[str, str], cluster: str) -> str | None:
    """A node container's role ("" when unlabelled) when its labels make it a node of
    ``cluster``; None for any other container, whatever a docker filter let through."""
    if labels.get(KIND_CLUSTER_LABEL) != cluster:
        return None
    return labels.get(KIND_ROLE_LABEL, "")
