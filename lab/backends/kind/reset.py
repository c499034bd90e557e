"""What a scenario switch undoes on a warm kind cluster, and the record that makes it
possible: a JSON file in the cluster's folder (deleted with the cluster by `down`).

Undone: the objects and namespaces the lab applied, the files it put on nodes, the
AppArmor profiles of files that were not in the node's /etc/apparmor.d right after
the lab installed AppArmor there (unloaded with apparmor_parser -R, then removed),
and the kube-apiserver manifest, put back as it was when the lab first saw it (a
copy kept on the control-plane node under /var/lib/cks-lab/pristine/).

Only nodes of the current scenario are touched: what the record holds for another
node stays in it until a scenario with that node comes.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.backends.kind.audit import MANIFEST
from lab.backends.kind.steps import list_files, read_text
from lab.errors import LabError
from lab.fsutil import atomic_write_json
from lab.work import Progress, ProgressEvent

if TYPE_CHECKING:
    from lab.kind.kube import Kube
    from lab.kind.nodes import LabNodes

STATE_FILE = "lab-state.json"
PRISTINE_DIR = "/var/lib/cks-lab/pristine"
PRISTINE_MANIFEST = posixpath.join(PRISTINE_DIR, posixpath.basename(MANIFEST))
PROFILE_DIR = "/etc/apparmor.d"
# Never deleted: the cluster's own namespaces, and the lab's Falco.
KEEP_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease",
                             "local-path-storage", "cks-lab-falco"})  # fmt: skip
# Files the lab writes but never removes: restoring the manifest puts it back instead.
KEEP_FILE_PREFIXES = ("/etc/kubernetes/manifests/",)
DELETE_WAIT = 90.0


@dataclass
class LabState:
    """What the lab did to the cluster, by kind node container name."""

    scenario: str | None = None
    namespaces: list[str] = field(default_factory=list)
    objects: list[list[str]] = field(default_factory=list)  # [kind, namespace, name]
    files: list[list[str]] = field(default_factory=list)  # [container, path]
    # container -> the files in /etc/apparmor.d right after AppArmor was installed
    apparmor: dict[str, list[str]] = field(default_factory=dict)
    apiserver: str | None = None  # the kube-apiserver container after the last setup
    workspace: str | None = None  # the workspace whose scenario the cluster holds, once set up


def load_state(cluster_dir: Path) -> LabState:
    path = cluster_dir / STATE_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return LabState()
    except (OSError, ValueError) as e:
        raise LabError(
            f"cannot read the lab's record of the cluster: {e}", file=str(path)
        ) from None
    if not isinstance(raw, dict):
        raise LabError("the lab's record of the cluster is not a JSON object", file=str(path))
    known = {k: v for k, v in raw.items() if k in LabState.__dataclass_fields__}
    try:
        return LabState(**known)
    except TypeError as e:
        raise LabError(f"the lab's record of the cluster is damaged: {e}", file=str(path)) from None


def save_state(cluster_dir: Path, state: LabState) -> None:
    atomic_write_json(cluster_dir / STATE_FILE, asdict(state))


# --- what setup records -------------------------------------------------------------------


def record_docs(state: LabState, docs: Iterable[Any]) -> None:
    """Note the namespaces and objects a setup manifest makes, before applying it."""
    docs = [d for d in docs if isinstance(d, dict)]
    for d in docs:
        meta = d.get("metadata") or {}
        if d.get("kind") == "Namespace" and isinstance(meta.get("name"), str):
            _add(state.namespaces, meta["name"])
    for d in docs:
        meta = d.get("metadata") or {}
        kind, name, ns = d.get("kind"), meta.get("name"), meta.get("namespace")
        if not isinstance(kind, str) or not isinstance(name, str) or kind == "Namespace":
            continue
        if isinstance(ns, str) and ns in state.namespaces:
            continue  # goes with its namespace
        if isinstance(ns, str) and ns not in KEEP_NAMESPACES:
            _add(state.namespaces, ns)
            continue
        entry = [kind, ns if isinstance(ns, str) else ("default" if _namespaced(kind) else ""),
                 name]  # fmt: skip
        if entry not in state.objects:
            state.objects.append(entry)


_CLUSTER_SCOPED = {"Namespace", "Node", "ClusterRole", "ClusterRoleBinding", "PersistentVolume",
                   "StorageClass", "CustomResourceDefinition", "RuntimeClass", "PriorityClass",
                   "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"}  # fmt: skip


def _namespaced(kind: str) -> bool:
    return kind not in _CLUSTER_SCOPED


def _add(items: list[str], value: str) -> None:
    if value not in items and value not in KEEP_NAMESPACES:
        items.append(value)


def record_file(state: LabState, container: str, path: str) -> None:
    if path.startswith(KEEP_FILE_PREFIXES):
        return
    if [container, path] not in state.files:
        state.files.append([container, path])


def save_pristine(nodes: LabNodes, cp: str) -> None:
    """Keep the manifest as it is now, unless a copy is kept already (the first one wins)."""
    if read_text(nodes, cp, PRISTINE_MANIFEST) is not None:
        return
    text = read_text(nodes, cp, MANIFEST)
    if text is not None:
        nodes.put_file(cp, PRISTINE_MANIFEST, text.encode(), 0o600)


# --- the reset ----------------------------------------------------------------------------


def _event(message: str, done: int | None = None, total: int | None = None) -> ProgressEvent:
    return ProgressEvent(message, phase="reset", done=done, total=total)


def unload_lab_profiles(nodes: LabNodes, node: str, baseline: Iterable[str]) -> list[str]:
    """Unload and remove the profile files the package did not ship; the files removed."""
    keep = set(baseline)
    removed = []
    for path in list_files(nodes, node, PROFILE_DIR):
        if path in keep:
            continue
        # -R takes the profiles the file defines out of the (shared host) kernel by name
        nodes.exec(node, ["apparmor_parser", "-R", path])
        nodes.remove(node, path)
        removed.append(path)
    return removed


def release_host_profiles(
    cluster_dir: Path, cluster: str, progress: Progress, nodes: LabNodes | None = None
) -> list[str]:
    """Before the cluster goes: unload the profiles the lab and the learner loaded.
    The nodes share the host's kernel, so deleting the containers would leave them
    loaded on the host until it reboots. The profiles unloaded ("node:path")."""
    state = load_state(cluster_dir)
    if not state.apparmor:
        return []
    if nodes is None:
        from lab.kind.nodes import LabNodes

        nodes = LabNodes(cluster)  # node names are the containers' here
    done: list[str] = []
    for container, baseline in sorted(state.apparmor.items()):
        try:
            done += [f"{container}:{p}" for p in unload_lab_profiles(nodes, container, baseline)]
        except LabError as e:  # the node is gone or stopped: nothing of it to unload
            progress(_event(f"could not unload AppArmor profiles on {container}: {e.message}"))
    if done:
        progress(_event(f"unloaded {len(done)} AppArmor profile file(s) from the host kernel"))
    return done


def reset(
    nodes: LabNodes,
    kube: Kube,
    state: LabState,
    names: Mapping[str, str],
    cp: str,
    progress: Progress,
    *,
    restore_manifest: bool = True,
) -> bool:
    """Undo the earlier scenario's setup on the current scenario's nodes; True when the
    apiserver manifest was put back (the apiserver restarts)."""
    by_container = {c: n for n, c in names.items()}
    total = len(state.objects) + len(state.namespaces)
    done = 0
    for kind, ns, name in list(state.objects):
        progress(_event(f"deleting {kind.lower()} {name}", done, total))
        kube.delete(kind, ns, name, wait=DELETE_WAIT)
        state.objects.remove([kind, ns, name])
        done += 1
    for ns in list(state.namespaces):
        progress(_event(f"deleting namespace {ns}", done, total))
        kube.delete("Namespace", "", ns, wait=DELETE_WAIT)
        state.namespaces.remove(ns)
        done += 1
    for container, baseline in state.apparmor.items():
        node = by_container.get(container)
        if node is not None:
            for path in unload_lab_profiles(nodes, node, baseline):
                progress(_event(f"unloaded the AppArmor profiles of {path} on node {node}"))
    for entry in list(state.files):
        container, path = entry
        node = by_container.get(container)
        if node is None:
            continue  # not a node of this scenario: left for a later one
        nodes.remove(node, path)
        state.files.remove(entry)
    if total or state.files:
        progress(_event("removed what the earlier scenario left", total, total))
    if not restore_manifest:
        return False
    pristine = read_text(nodes, cp, PRISTINE_MANIFEST)
    if pristine is None or read_text(nodes, cp, MANIFEST) == pristine:
        return False
    progress(_event("putting back the original kube-apiserver manifest"))
    nodes.put_file(cp, MANIFEST, pristine.encode(), 0o600)
    return True
