"""What both backends report of kube-apiserver's manifest, read by the audit engine:
its mounts as the checks see them, the node path behind a container path, and the
policy fields kube-apiserver ignores. Only `running` differs: the sim takes it from
the engine, the kind backend from the node's container runtime.
"""

from __future__ import annotations

import posixpath

from lab.engines.audit.hostpath import locate
from lab.engines.audit.manifest import ApiserverState, Mount
from lab.evidence import MountInfo


def mount_info(m: Mount) -> MountInfo:
    # With subPath, the container path shows that entry of the volume, not its root.
    host = m.host_path
    if host is not None and m.sub_path:
        host = posixpath.join(host, m.sub_path)
    return MountInfo(m.name, m.mount_path, host, m.read_only)


def on_node(state: ApiserverState, path: str) -> str | None:
    """The node path behind a path in the apiserver container; None off any hostPath."""
    return locate(state.mounts, path)[1]


def policy_warnings(state: ApiserverState) -> list[str]:
    # kube-apiserver only logs these and decodes leniently: a misspelt field is
    # dropped, so the rule matches more than the learner meant.
    if state.policy is None:
        return []
    return [
        f"kube-apiserver ignores a field of your audit policy: {w} "
        '(it logs "Audit policy contains errors, falling back to lenient decoding")'
        for w in state.policy.warnings
    ]
