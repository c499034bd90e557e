"""Find one attack run's events in an audit log, whichever backend wrote it.

Every attack request carries a user agent naming the run and the step, so the
events of this run are found among anything else the log holds (earlier runs,
other formats, the cluster's own traffic) without parsing those lines.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from lab.engines.audit.events import parse_legacy_line

USER_AGENT = "cks-lab-attack/1 (run={run}; step={step})"


def user_agent(run_id: str, step_id: str) -> str:
    return USER_AGENT.format(run=run_id, step=step_id)


def _marker(run_id: str) -> str:
    return f"(run={run_id}; step="


def _step_of(ua: str, marker: str) -> str | None:
    if marker not in ua:
        return None
    return ua.split(marker, 1)[1].split(")", 1)[0]


def _legacy_event(line: str) -> dict[str, Any] | None:
    try:
        f = parse_legacy_line(line)
    except ValueError:
        return None
    # The legacy format has no level: `level` stays absent on purpose.
    return {"auditID": f["id"], "stage": f["stage"], "userAgent": f["user-agent"],
            "requestURI": f["uri"], "format": "legacy"}  # fmt: skip


def collect(lines: Iterable[str], run_id: str) -> dict[str, list[dict[str, Any]]]:
    """This run's events by attack step; lines of other runs are never parsed."""
    marker = _marker(run_id)
    by_step: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        if marker not in line:
            continue
        event: dict[str, Any] | None
        if line.lstrip().startswith("{"):
            try:
                event = json.loads(line)
            except (ValueError, RecursionError):
                event = None  # a torn last line while the apiserver writes
        else:
            event = _legacy_event(line)
        if not isinstance(event, dict):
            continue
        step = _step_of(str(event.get("userAgent", "")), marker)
        if step is not None:
            by_step.setdefault(step, []).append(event)
    return by_step
