"""Replay a scenario's API requests through the audit engine, as a kind control
plane would log them, then read the log back from the node like any backend."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lab.engines.audit.checker import compile_policy
from lab.engines.audit.events import (
    AuditLogError,
    append_events,
    build_events,
    format_line,
    read_events,
)
from lab.engines.audit.manifest import ApiserverState, analyse_apiserver, apply_host_changes
from lab.evidence import ApiserverStatus, AuditEvidence, MountInfo
from lab.scenarios.requests import ApiCall

# The address a kind node sees for requests from the host (docker's bridge gateway).
SOURCE_IP = "172.18.0.1"
USER_AGENT = "cks-lab-attack/1 (run={run}; step={step})"


def user_agent(run_id: str, step_id: str) -> str:
    return USER_AGENT.format(run=run_id, step=step_id)


def _status(state: ApiserverState) -> ApiserverStatus:
    error = None
    if not state.running:
        err = state.lab_error()
        error = str(err) if err else "kube-apiserver is not running"
    return ApiserverStatus(
        running=state.running,
        error=error,
        flags={f"--{k}": v for k, v in state.flags.items()},
        mounts=[MountInfo(m.name, m.mount_path, m.host_path, m.read_only) for m in state.mounts],
        notes=list(state.notes) + _policy_warnings(state),
    )


def _policy_warnings(state: ApiserverState) -> list[str]:
    # kube-apiserver only logs these and decodes leniently: a misspelt field is
    # dropped, so the rule matches more than the learner meant.
    if state.policy is None:
        return []
    return [
        f"kube-apiserver ignores a field of your audit policy: {w} "
        "(it logs \"Audit policy contains errors, falling back to lenient decoding\")"
        for w in state.policy.warnings
    ]


def _policy_text(state: ApiserverState) -> str | None:
    # The file the apiserver loaded, read from the node as the kind backend would.
    if state.policy is None or state.policy_host_path is None:
        return None
    return state.policy_host_path.read_text(encoding="utf-8", errors="replace")


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
            long_running=call.long_running,
        )
        lines.extend(format_line(e, state.log.format) for e in events)
    return lines


def collect(log_file: Path, fmt: str, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """This run's events from the log on the node, by attack step (via the user agent)."""
    marker = f"(run={run_id}; step="
    by_step: dict[str, list[dict[str, Any]]] = {}
    for event in read_events(log_file, fmt):
        ua = str(event.get("userAgent", ""))
        if marker in ua:
            step = ua.split(marker, 1)[1].rstrip(")")
            by_step.setdefault(step, []).append(event)
    return by_step


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
    stdout_log.parent.mkdir(parents=True, exist_ok=True)
    if not state.running:
        stdout_log.write_text((state.log_line or status.error or "") + "\n")
        return AuditEvidence(apiserver=status)
    log = state.log
    ev = AuditEvidence(
        apiserver=status,
        policy_file=state.policy_file,
        policy_text=_policy_text(state),
        log_path=log.path if log else None,
        log_on_node=log.node_path if log else None,
    )
    stdout_log.write_text("")
    if not state.auditing or log is None:
        return ev
    lines = _log_events(state, calls, run_id, now)
    if log.to_stdout:
        stdout_log.write_text("".join(lines))  # format_line ends each line
        return ev
    if log.host_path is None:
        return ev  # written inside the container only: nothing reaches the node
    try:
        append_events(
            log.host_path,
            lines,
            create_parents=True,
            max_size_mb=log.maxsize,
            max_backups=log.maxbackup or 0,
        )
        ev.events = collect(log.host_path, log.format, run_id)
    except AuditLogError as e:
        ev.log_error = e.message
    return ev
