"""Replay a scenario's API requests through the audit engine, as a kind control
plane would log them, then read the log back from the node like any backend."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lab.backends.apiserver_facts import mount_info, policy_warnings
from lab.backends.auditlog import collect, user_agent
from lab.engines.audit.checker import compile_policy
from lab.engines.audit.events import AuditLogError, append_events, build_events, format_line
from lab.engines.audit.manifest import (
    ApiserverState,
    analyse_apiserver,
    apply_host_changes,
)
from lab.engines.audit.policy import MAX_POLICY_BYTES
from lab.evidence import ApiserverStatus, AuditEvidence
from lab.fsutil import atomic_write_bytes
from lab.nodefs import NotRegularFile, read_regular
from lab.scenarios.requests import ApiCall

# The address a kind node sees for requests from the host (docker's bridge gateway).
SOURCE_IP = "172.18.0.1"


def _status(state: ApiserverState) -> ApiserverStatus:
    error = None
    if not state.running:
        err = state.lab_error()
        error = str(err) if err else "kube-apiserver is not running"
    return ApiserverStatus(
        running=state.running,
        error=error,
        flags={f"--{k}": v for k, v in state.flags.items()},
        mounts=[mount_info(m) for m in state.mounts],
        notes=list(state.notes) + policy_warnings(state),
    )


def _policy_text(state: ApiserverState) -> str | None:
    # The file the apiserver loaded, read from the node as the kind backend would.
    if state.policy is None or state.policy_host_path is None:
        return None
    try:
        raw = read_regular(state.policy_host_path, MAX_POLICY_BYTES)
    except (OSError, NotRegularFile):
        return None  # replaced since the apiserver loaded it: nothing to explain from
    return raw.decode("utf-8", errors="replace")


def _log_events(
    state: ApiserverState, calls: list[ApiCall], run_id: str, now: datetime
) -> list[str]:
    assert state.policy is not None and state.log is not None
    compiled = compile_policy(state.policy)
    lines: list[str] = []
    for i, call in enumerate(calls):
        events = build_events(
            attrs=call.attrs,
            evaluation=compiled.evaluate(call.attrs),
            audit_id=str(uuid.uuid4()),
            received=now + timedelta(milliseconds=50 * i),
            user_agent=user_agent(run_id, call.step_id),
            source_ips=[SOURCE_IP],
            request_uri=call.uri,
            response_code=call.response_code,
            request_object=call.body,
        )
        lines.extend(format_line(e, state.log.format) for e in events)
    return lines


def replay_audit(
    node_root: Path,
    calls: list[ApiCall],
    run_id: str,
    stdout_log: Path,
    now: datetime | None = None,
) -> AuditEvidence:
    """Restart the control plane from its manifest, send the calls, read the evidence."""
    now = now or datetime.now(UTC)
    state = analyse_apiserver(node_root)
    # kubelet and the runtime really create hostPath dirs/files, even for a pod
    # that then crashes; the learner sees them on the node.
    apply_host_changes(node_root, state)
    status = _status(state)
    if not state.running:
        _write(stdout_log, (state.log_line or status.error or "") + "\n")
        return AuditEvidence(apiserver=status)
    log = state.log
    ev = AuditEvidence(
        apiserver=status,
        policy_file=state.policy_file,
        policy_text=_policy_text(state),
        log_path=log.path if log else None,
        log_on_node=log.node_path if log else None,
        log_format=log.format if log else "json",
    )
    _write(stdout_log, "")
    if not state.auditing or log is None:
        return ev
    lines = _log_events(state, calls, run_id, now)
    if log.to_stdout:
        _write(stdout_log, "".join(lines))  # format_line ends each line
        return ev
    if log.host_path is None:
        return ev  # written inside the container only: nothing reaches the node
    target = log.host_path
    if target.exists() and not target.is_file():
        # A FIFO or device would block or swallow the writes; say so instead.
        ev.log_error = f"{log.node_path} is not a regular file"
        return ev
    try:
        rotated = append_events(
            target,
            lines,
            create_parents=True,
            lumberjack_max_size_mb=log.maxsize,
            max_backups=log.maxbackup or 0,
        )
        # Files rotated away during this run hold its first events.
        ev.events = {}
        for part in [*(p for p in rotated if p.is_file()), target]:
            with part.open(encoding="utf-8", errors="replace") as fh:
                for step, events in collect(fh, run_id).items():
                    ev.events.setdefault(step, []).extend(events)
    except AuditLogError as e:
        ev.log_error = e.message
    except OSError as e:
        ev.log_error = f"{log.node_path}: {e.strerror or e}"
    return ev


def _write(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())
