"""Lab cluster names: what the lab may create or touch (cks-lab, cks-lab-<suffix>).

Apart from the config rendering so that the callers that only check a name (the
TUI's start-up, through the recorded cluster state) do not load PyYAML.
"""

from __future__ import annotations

import re

from lab.errors import LabError

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
