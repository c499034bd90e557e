"""Audit evidence from a kind control plane: is the real kube-apiserver running
(crictl), what its manifest asks for (the audit engine reads a copy of it), and
the run's events in the audit log on the node.

`running` and the start-up error come from the node's container runtime, never
from the engine: the engine only reads the manifest's flags and mounts, the policy
it names and where the log lands, from a temporary copy laid out as a node root.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.backends.apiserver_facts import mount_info, on_node, policy_warnings
from lab.backends.auditlog import collect
from lab.backends.kind.steps import Clock, list_files, node_stat, path_kind, read_text
from lab.errors import LabError
from lab.evidence import ApiserverStatus, AuditEvidence
from lab.fsutil import atomic_write_json

if TYPE_CHECKING:
    from lab.engines.audit.manifest import ApiserverState
    from lab.kind.crictl import ApiserverRun
    from lab.kind.kube import Kube
    from lab.kind.nodes import LabNodes

MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
MANIFEST_DIR = "/etc/kubernetes/manifests"
PS_ARGV = ["crictl", "ps", "-a", "--name", "kube-apiserver", "-o", "json"]
COPY_LIMIT = 1 << 20  # manifests and policies are small; kubelet's own limit is 10 MiB
LOG_TAIL = "60"
POLL = 2.0


@dataclass
class ApiserverSeen:
    """The real apiserver after the learner's change settled (or the wait gave up)."""

    running: bool
    error: str | None = None
    container_id: str | None = None
    crash_looping: bool = False
    lines: list[str] = field(default_factory=list)


# --- the running apiserver ------------------------------------------------------------


def _changed(nodes: LabNodes, node: str, path: str) -> float | None:
    """When a file last changed (its ctime): all the lab needs is whether it changed
    since a container started, and an mtime can be set to anything (kubelet itself
    reacts to the content)."""
    st = node_stat(nodes, node, path)
    return st.ctime if st is not None else None


def _observe(nodes: LabNodes, cp: str, before: str | None) -> ApiserverRun:
    from lab.kind.crictl import apiserver_run, newest, parse_ps_json

    ps = nodes.exec(cp, PS_ARGV)
    latest = newest(parse_ps_json(ps.stdout), "kube-apiserver") if ps.code == 0 else None
    logs = None
    if latest is not None and latest.state.lower() not in ("container_running", "running"):
        # crictl logs prints the container's stderr on its own stderr
        r = nodes.exec(cp, ["crictl", "logs", "--tail", LOG_TAIL, latest.id])
        logs = r.stdout + r.stderr
    return apiserver_run(before, ps.stdout if ps.code == 0 else "[]", logs)


def watch_apiserver(
    nodes: LabNodes,
    kube: Kube,
    cp: str,
    *,
    before: str | None,
    clock: Clock,
    sleep: Callable[[float], None],
    timeout: float,
    progress: Callable[[str], None],
    newer_than: float | None = None,
    record: Path | None = None,
) -> ApiserverSeen:
    """Wait until kubelet has run the current manifest: a container created after the
    file's last change (and after `newer_than`, when the lab restarted it for a new
    policy) that is up and ready (/readyz), or that exited.

    kubelet restarts a static pod only when its spec changes: a manifest saved with
    no change in it keeps the running container. `record` (a file in the cluster's
    folder) remembers which container ran which spec, so that case is not waited out.
    """
    changed = max((t for t in (_changed(nodes, cp, MANIFEST), newer_than) if t is not None),
                  default=None)  # fmt: skip
    spec = manifest_spec(nodes, cp)
    known = _ran_spec(record, spec) if newer_than is None else None
    deadline = clock().timestamp() + timeout
    while True:
        run = _observe(nodes, cp, before)
        c = run.container
        fresh = c is not None and (changed is None or c.created_at >= int(changed * 1e9))
        fresh = fresh or (c is not None and c.id == known)  # that spec runs in it already
        if run.running and fresh and kube.readyz():
            _remember(record, c.id if c else None, spec)
            return ApiserverSeen(True, container_id=c.id if c else None)
        if not run.running and fresh:
            break  # it tried the current manifest and exited
        if clock().timestamp() >= deadline:
            break
        progress("waiting for kube-apiserver to come back with the manifest")
        sleep(POLL)
    if run.running and kube.readyz():
        return ApiserverSeen(True, container_id=c.id if c else None)
    seen = ApiserverSeen(False, container_id=c.id if c else None,
                         crash_looping=run.crash_looping, lines=list(run.error_lines))  # fmt: skip
    if run.running:
        seen.error = "kube-apiserver's container runs but does not answer /readyz"
    elif run.error_lines:
        seen.error = "; ".join(run.error_lines[-3:])
    elif c is not None and not fresh:
        seen.error = ("kubelet has not started kube-apiserver from your manifest (no container "
                      "since your last change; `crictl ps -a` shows only older ones)")  # fmt: skip
    else:
        seen.error = "kube-apiserver is not running (crictl ps -a shows no running container)"
    return seen


def restart_for_new_policy(nodes: LabNodes, cp: str, state: ApiserverState) -> float | None:
    """kube-apiserver reads its audit policy only when it starts: a policy file changed
    since the running container started would not be in force. As on the exam (and as
    the sim does at every check), restart it: crictl stop, and kubelet starts the static
    pod's container again. Returns the policy's change time when it did, else None."""
    from lab.kind.crictl import newest, parse_ps_json

    policy = state.flags.get("audit-policy-file")
    host = on_node(state, policy) if policy else None
    changed = _changed(nodes, cp, host) if host else None
    ps = nodes.exec(cp, PS_ARGV)
    running = newest(parse_ps_json(ps.stdout), "kube-apiserver") if ps.code == 0 else None
    if changed is None or running is None or not running.running:
        return None  # not running: kubelet is restarting it anyway
    if running.created_at >= int(changed * 1e9):
        return None
    nodes.exec(cp, ["crictl", "stop", running.id])
    return changed


def manifest_spec(nodes: LabNodes, cp: str) -> str | None:
    """A digest of the manifest's content as kubelet compares it (parsed, so comments,
    key order and spacing do not count); None when it cannot be read."""
    from lab.yamlsafe import parse_all

    raw = read_text(nodes, cp, MANIFEST, COPY_LIMIT)
    if raw is None:
        return None
    try:
        docs: Any = [d.data for d in parse_all(raw, MANIFEST)]
    except LabError:
        docs = raw  # not YAML kubelet could read: any change of it counts
    text = json.dumps(docs, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _ran_spec(record: Path | None, spec: str | None) -> str | None:
    """The container recorded as running this very spec, if any."""
    if record is None or spec is None:
        return None
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and data.get("spec") == spec:
        container = data.get("container")
        return container if isinstance(container, str) else None
    return None


def _remember(record: Path | None, container: str | None, spec: str | None) -> None:
    if record is not None and container and spec:
        atomic_write_json(record, {"container": container, "spec": spec})


# --- what the manifest asks for ---------------------------------------------------------


def _write(root: Path, node_path: str, data: bytes | None) -> None:
    target = root / node_path.lstrip("/")
    if data is None:
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def read_manifest(nodes: LabNodes, cp: str) -> ApiserverState:
    """The audit engine's reading of the node's static pod manifests: a copy of the
    manifests folder, the hostPath volumes as folders or files, and the policy file."""
    from lab.engines.audit.manifest import analyse_apiserver

    with tempfile.TemporaryDirectory(prefix="cks-lab-kind-") as tmp:
        root = Path(tmp)
        _write(root, MANIFEST_DIR, None)
        for path in list_files(nodes, cp, MANIFEST_DIR):
            text = read_text(nodes, cp, path, COPY_LIMIT)
            if text is not None:
                _write(root, path, text.encode())
        first = analyse_apiserver(root)
        for m in map(mount_info, first.mounts):
            if m.host_path is None or (root / m.host_path.lstrip("/")).exists():
                continue
            kind = path_kind(nodes, cp, m.host_path)
            if kind == "dir":
                _write(root, m.host_path, None)
            elif kind == "file":
                _write(root, m.host_path, b"")  # its content is read below if it matters
        policy = first.flags.get("audit-policy-file")
        host = on_node(first, policy) if policy else None
        if host is not None and path_kind(nodes, cp, host) == "file":
            text = read_text(nodes, cp, host, COPY_LIMIT)
            _write(root, host, (text or "").encode())
        return analyse_apiserver(root)


# --- the log ----------------------------------------------------------------------------


def _log_files(nodes: LabNodes, cp: str, log: str) -> list[str]:
    """The log and the backups rotation made of it (name-TIMESTAMP.ext), oldest first."""
    folder, name = posixpath.split(log)
    stem, ext = posixpath.splitext(name)
    backups = [
        p for p in list_files(nodes, cp, folder)
        if posixpath.basename(p).startswith(stem + "-") and p.endswith(ext)
    ]  # fmt: skip
    return [*sorted(backups), log]


def read_events(
    nodes: LabNodes, cp: str, log: str, run_id: str
) -> tuple[dict[str, list[dict[str, Any]]], str | None]:
    """This run's events by step, grepped on the node (the log can be large); or why not."""
    kind = path_kind(nodes, cp, log)
    if kind is None:
        return {}, None  # nothing written yet: no event of the run
    if kind != "file":
        return {}, f"{log} is not a regular file"
    marker = f"(run={run_id}; step="
    r = nodes.exec(cp, ["grep", "-hF", "-e", marker, "--", *_log_files(nodes, cp, log)])
    if r.code not in (0, 1):  # 1: no line matched
        return {}, (r.stderr.strip() or f"grep exited with {r.code}")
    return collect(r.stdout.splitlines(), run_id), None


# --- evidence -----------------------------------------------------------------------------


def audit_evidence(
    nodes: LabNodes, cp: str, seen: ApiserverSeen, state: ApiserverState
) -> AuditEvidence:
    """The apiserver as crictl saw it, with the manifest's flags, mounts, policy and log."""
    notes = [n for n in state.notes if "not simulated" not in n] + policy_warnings(state)
    error = seen.error
    if not seen.running and state.error and not seen.lines:
        # no log of its own to show: what kubelet or the apiserver makes of the manifest
        error = f"{error}; reading your manifest: {state.error}"
    status = ApiserverStatus(
        running=seen.running,
        error=None if seen.running else error,
        flags={f"--{k}": v for k, v in state.flags.items()},
        mounts=[mount_info(m) for m in state.mounts],
        notes=notes,
    )
    ev = AuditEvidence(apiserver=status)
    if not seen.running:
        return ev
    flags = state.flags
    policy = flags.get("audit-policy-file") or None
    if policy:
        ev.policy_file = posixpath.normpath(policy)
        host = on_node(state, ev.policy_file)
        ev.policy_text = read_text(nodes, cp, host, COPY_LIMIT) if host else None
    log = flags.get("audit-log-path") or None
    ev.log_format = flags.get("audit-log-format", "json")
    if log:
        ev.log_path = log if log == "-" else posixpath.normpath(log)
        if log != "-":
            log_node = state.log.node_path if state.log and state.log.node_path else None
            ev.log_on_node = log_node or on_node(state, ev.log_path)
    return ev


def add_events(nodes: LabNodes, cp: str, ev: AuditEvidence, run_id: str) -> None:
    """The run's events from the log on the node, when requests can reach it."""
    if not ev.apiserver.running or ev.log_on_node is None or ev.policy_text is None:
        return
    ev.events, ev.log_error = read_events(nodes, cp, ev.log_on_node, run_id)
