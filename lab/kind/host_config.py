"""The kind config as this host runs it: rendered, checked, fitted to the Docker
daemon's AppArmor, and the host files and folders its mounts need made first.

Everything `up` does to the config before kind sees it, apart from the lifecycle so
that reads as steps; lab.kind.config knows configs, this knows this host.
"""

from __future__ import annotations

from pathlib import Path

from lab.errors import LabError
from lab.fsutil import atomic_write_bytes
from lab.kind import kind_cli
from lab.kind.cluster_errors import QUERY_TIMEOUT, failure
from lab.kind.cluster_state import ClusterHandle
from lab.kind.config import SECURITYFS, check_config, drop_mounts, file_volumes, render_config
from lab.kind.runner import Runner

# Written before `kind create` when the config's API server reads a policy file
# from the audit-policy folder (kubeadm fails on a missing File volume).
DEFAULT_AUDIT_POLICY = """\
# cks-lab's starting audit policy: the API server of this cluster reads a policy
# file at start-up. Scenarios replace it; edit it as a scenario asks.
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: Metadata
"""


def check(text: str, source: str) -> str:
    problems = check_config(text)
    if problems:
        raise LabError(
            f"the kind config is not what kind v0.32 needs: {'; '.join(problems)}",
            file=source,
        )
    return text


def render(handle: ClusterHandle, template: Path) -> str:
    return check(render_config(template, handle.dir, handle.name), str(template))


def for_host(text: str, apparmor: bool) -> str:
    """The rendered config as this host can run it: without the Docker daemon's
    AppArmor, no node gets the host's /sys/kernel/security. (docker would have to
    create it as a mount source, which fails under sysfs, and the mount would hand
    any privileged pod the host's AppArmor interface for nothing.)"""
    if apparmor:
        return text
    return drop_mounts(
        text,
        SECURITYFS,
        "Rendered by cks-lab for a Docker daemon without AppArmor: the nodes do not get\n"
        f"the host's {SECURITYFS}, so the AppArmor scenarios run on the sim backend.",
    )


def docker_has_apparmor(run: Runner) -> bool:
    """Whether the Docker daemon confines containers with AppArmor (`docker info`)."""
    res = run.run(kind_cli.docker_security_argv(), timeout=QUERY_TIMEOUT)
    if res.code != 0:
        raise LabError(
            f"`docker info` failed: {failure(res)}; `cks-lab doctor` checks docker and kind"
        )
    return kind_cli.has_apparmor(kind_cli.parse_security_options(res.stdout))


def prepare_host(handle: ClusterHandle, text: str) -> None:
    """The host side of the config's mounts, before kind runs: the folders, and the
    files kubeadm mounts with pathType File (it refuses to start without them)."""
    for d in (handle.dir, handle.audit_policy_dir, handle.audit_log_dir):
        d.mkdir(parents=True, exist_ok=True)
    policy = handle.audit_policy_dir / "policy.yaml"
    for node_path, host in file_volumes(text):
        if host is None:
            continue  # the node image's own file
        if Path(host) == policy and not policy.exists():
            atomic_write_bytes(policy, DEFAULT_AUDIT_POLICY.encode())
        elif not Path(host).is_file():
            raise LabError(
                f"the kind config has kubeadm mount {node_path} (pathType File) from {host} "
                "on this host, which is not a file: kubeadm would fail to start the "
                "control plane; create it first"
            )
