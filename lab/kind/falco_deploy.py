"""Falco in a lab kind cluster: the manifest (lab/kind/manifests/falco.yaml), its
rollout, finding a node's Falco pod, and the command that validates rules files."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.kind.kube import Kube, KubeApiError
from lab.work import Progress, ProgressEvent
from lab.yamlsafe import parse_all, read_bytes

MANIFEST = Path(__file__).parent / "manifests" / "falco.yaml"
FALCO_NAMESPACE = "cks-lab-falco"
FALCO_DAEMONSET = "falco"
FALCO_CONTAINER = "falco"
FALCO_SELECTOR = "app.kubernetes.io/name=falco"
FALCO_NODE_LABEL = "cks-lab.io/falco"  # the DaemonSet's nodeSelector: "true" where it runs
# The newest Falco 0.44 patch release; the manifest pins the same tag (tested).
FALCO_IMAGE = "docker.io/falcosecurity/falco:0.44.1"
FALCO_BINARY = "/usr/bin/falco"
FALCO_CONFIG = "/etc/falco/falco.yaml"


def falco_docs() -> list[dict[str, Any]]:
    """The manifest's objects, read like any other lab YAML."""
    source = str(MANIFEST)
    docs = [d.data for d in parse_all(read_bytes(MANIFEST), source) if d.data is not None]
    for doc in docs:
        if not isinstance(doc, dict):
            raise LabError("every document must be a mapping", file=source)
    return docs


def falco_container(docs: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The Falco container of the manifest's DaemonSet."""
    for doc in falco_docs() if docs is None else docs:
        if doc.get("kind") == "DaemonSet" and doc["metadata"]["name"] == FALCO_DAEMONSET:
            for container in doc["spec"]["template"]["spec"]["containers"]:
                if container.get("name") == FALCO_CONTAINER:
                    return dict(container)
    raise LabError(
        f"no DaemonSet {FALCO_DAEMONSET} with a container {FALCO_CONTAINER}", file=str(MANIFEST)
    )


def _plugin_options(args: Sequence[str]) -> list[str]:
    """The manifest's `-o` options that load the container plugin."""
    out: list[str] = []
    for flag, value in zip(args, args[1:], strict=False):
        if flag == "-o" and value.split("=", 1)[0] in ("plugins[]", "load_plugins[]"):
            out += [flag, value]
    return out


def validate_argv(files: Sequence[str]) -> list[str]:
    """``falco -V`` over ``files`` (in load order, so the local file sees the default
    rules' macros and lists) with the running pod's configuration and plugins — rules
    that use container fields validate only with the container plugin loaded — and a
    JSON result."""
    if not files:
        raise LabError("nothing to validate: no rules files given")
    argv = [FALCO_BINARY, "-c", FALCO_CONFIG]
    argv += _plugin_options(falco_container().get("args") or [])
    argv += ["-o", "json_output=true"]
    for path in files:
        argv += ["-V", path]
    return argv


def _rollout(kube: Kube) -> tuple[bool, int, int]:
    """(rolled out, ready pods, desired pods) of the DaemonSet."""
    status, data = kube.request(
        "GET", f"/apis/apps/v1/namespaces/{FALCO_NAMESPACE}/daemonsets/{FALCO_DAEMONSET}"
    )
    if status != 200 or not isinstance(data, dict):
        return False, 0, 0
    meta, st = data.get("metadata") or {}, data.get("status") or {}
    desired = int(st.get("desiredNumberScheduled") or 0)
    ready = int(st.get("numberReady") or 0)
    updated = int(st.get("updatedNumberScheduled") or 0)
    observed = int(st.get("observedGeneration") or 0) >= int(meta.get("generation") or 0)
    done = observed and desired > 0 and updated == desired and ready == desired
    return done, ready, desired


def _why_not_ready(kube: Kube) -> str:
    try:
        pods = kube.pods(FALCO_NAMESPACE, FALCO_SELECTOR)
    except LabError as err:
        return str(err)
    if not pods:
        return "no Falco pods were created"
    lines = []
    for pod in pods:
        if pod.running:
            continue
        lines.append(pod.describe())
        reasons = {c.reason for c in pod.containers}
        if reasons & {"ErrImagePull", "ImagePullBackOff"}:
            lines.append(
                f"the node cannot pull {FALCO_IMAGE}; with no registry access, load it "
                f"into the cluster first (`kind load docker-image {FALCO_IMAGE}`)"
            )
        elif pod.containers and any(c.reason == "CrashLoopBackOff" for c in pod.containers):
            try:
                tail = kube.logs(pod.namespace, pod.name).strip().splitlines()[-5:]
            except LabError:
                tail = []
            if tail:
                lines.append("Falco's last lines: " + " | ".join(tail))
    return "; ".join(lines) or "the pods run but the DaemonSet is not rolled out yet"


def deploy(kube: Kube, progress: Progress, timeout: float = 180.0, *, poll: float = 2.0) -> None:
    """Apply the manifest and wait until a Falco pod runs on every node."""
    progress(ProgressEvent("deploying Falco", phase="falco"))
    for line in kube.apply(falco_docs(), source=str(MANIFEST)):
        progress(ProgressEvent(line, phase="falco"))
    deadline = time.monotonic() + timeout
    last = (-1, -1)
    while True:
        done, ready, desired = _rollout(kube)
        if (ready, desired) != last:
            total = desired or None
            progress(
                ProgressEvent(
                    f"Falco running on {ready}/{desired or '?'} nodes",
                    phase="falco",
                    done=ready,
                    total=total,
                )
            )
            last = (ready, desired)
        if done:
            return
        if time.monotonic() >= deadline:
            raise LabError(f"Falco did not start within {timeout:g}s: {_why_not_ready(kube)}")
        time.sleep(min(poll, max(0.0, deadline - time.monotonic())))


def place(kube: Kube, nodes: dict[str, bool]) -> None:
    """Label the nodes (kind names them after their containers) Falco runs on, and
    unlabel the others, so the DaemonSet's pods follow the scenario's nodes."""
    for node, on in sorted(nodes.items()):
        labels = {FALCO_NODE_LABEL: "true" if on else None}  # null removes it (merge patch)
        status, answer = kube.request(
            "PATCH", f"/api/v1/nodes/{node}", body={"metadata": {"labels": labels}}
        )
        if not 200 <= status < 300:
            raise LabError(f"cannot label node {node} for Falco: {answer}")


def falco_pod(kube: Kube, node_container_name: str) -> str | None:
    """The Falco pod on a node (kind names nodes after their containers), a running
    one when there are several (during a rollout); None when there is none."""
    try:
        pods = kube.pods(FALCO_NAMESPACE, FALCO_SELECTOR)
    except KubeApiError as err:
        if err.status == 404:
            return None
        raise
    mine = [p for p in pods if p.node == node_container_name]
    mine.sort(key=lambda p: not p.running)
    return mine[0].name if mine else None
