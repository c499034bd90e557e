"""A pod's facts as Falco's container.*, k8s.* and user.* fields.

Container ids, pod IPs and uids follow from the pod (namespace, name, container),
so they are the same at every run, as for a pod that keeps running.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from lab.scenarios.model import Container, Pod, Scenario

Event = dict[str, Any]


def digest(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


def split_image(image: str) -> tuple[str, str]:
    """(repository, tag) as containerd names them: "nginx" -> docker.io/library/nginx, latest."""
    name, _, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = ""
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    elif not digest:
        tag = "latest"
    first, _, rest = name.partition("/")
    if not rest:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    return name, tag


def pod_ip(sc: Scenario, pod: Pod) -> str:
    nodes = [n.name for n in sc.cluster.nodes]
    subnet = nodes.index(pod.node) + 1 if pod.node in nodes else 0
    return f"10.244.{subnet}.{2 + int(digest(pod.namespace, pod.name), 16) % 250}"


def pod_fields(sc: Scenario, pod: Pod, c: Container) -> Event:
    """The container.* and k8s.* fields of every event in this container."""
    full_id = digest(pod.namespace, pod.name, c.name)
    repo, tag = split_image(c.image)
    fields: Event = {
        "container.id": full_id[:12],
        "container.full_id": full_id,
        "container.name": c.name,
        "container.image": f"{repo}:{tag}" if tag else repo,
        "container.image.repository": repo,
        "container.image.tag": tag,
        "container.privileged": c.privileged,
        "container.type": "containerd",
        "k8s.ns.name": pod.namespace,
        "k8s.pod.name": pod.name,
        "k8s.pod.uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"pod/{pod.namespace}/{pod.name}")),
        "k8s.pod.ip": pod_ip(sc, pod),
        "k8s.pod.labels": ",".join(f"{k}:{v}" for k, v in sorted(pod.labels.items())),
    }
    for key, value in pod.labels.items():
        fields[f"k8s.pod.label[{key}]"] = value
    return fields


def user_fields(c: Container) -> Event:
    uid = c.run_as_user
    return {
        "user.uid": uid,
        "user.name": "root" if uid == 0 else None,
        "user.loginuid": -1,  # processes started by a runtime have no login session
        "user.loginname": None,
        "group.gid": uid,
        "group.name": "root" if uid == 0 else None,
        # Image binaries are root's: writable by root only; they come from the image's layers.
        "proc.is_exe_writable": uid == 0,
    }
