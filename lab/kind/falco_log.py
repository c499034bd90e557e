"""Falco's evidence in a kind cluster: its pod log.

With ``json_output`` Falco 0.44 prints each alert as one JSON object per line on
stdout (keys hostname, output, output_fields, priority, rule, source, tags,
time); its own log goes to stderr as ``<time>: <message>`` lines, and a fatal
error as ``Error: <message>`` without a time. ``kubectl logs`` interleaves both.

A rules change picked up by ``watch_config_files`` is first dry-run; when that
fails Falco keeps the old rules and emits an internal alert (source "internal",
rule "Falco internal: hot restart failure", priority Critical, empty
output_fields, output "<rule>: <error>"), the error being the verbose load
result of the first invalid file (``parse_load_text`` reads it).

The ``falco -V`` and load-result parsers live in lab.kind.falco_validate and are
re-exported here (callers import them from this module).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lab.evidence import FalcoMessage, FalcoRulesFile
from lab.kind.falco_validate import (
    RULES_STATUS_RE,
    json_object,
    parse_load_text,
    parse_validate_json,
)

__all__ = [  # the log parser, and the falco_validate names callers import from here
    "HOT_RESTART_FAILURE",
    "INTERNAL_SOURCE",
    "EngineTimes",
    "FalcoLog",
    "FalcoMessage",
    "FalcoRulesFile",
    "alert_time",
    "assign_alerts",
    "engine_times",
    "kube_time",
    "parse_falco_log",
    "parse_load_text",
    "parse_validate_json",
    "reload_failure_reason",
    "rules_state",
]

HOT_RESTART_FAILURE = "Falco internal: hot restart failure"
INTERNAL_SOURCE = "internal"

# Falco's log time: "Thu Nov 27 10:00:00 2025: " (asctime-like, day zero- or
# space-padded), or ISO 8601 with time_format_iso_8601: "2025-11-27T10:00:00+0000: ".
_LOG_TIME_RE = re.compile(
    r"^(?:[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}"
    r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}): "
)
# `kubectl logs --timestamps` puts the kubelet's RFC 3339 time in front of each line.
_KUBE_TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z ")
_OPENED_RE = re.compile(r"^Opening '[^']+' source with ")


@dataclass
class FalcoLog:
    alerts: list[dict[str, Any]] = field(default_factory=list)  # rule alerts, in log order
    reload_failures: list[dict[str, Any]] = field(default_factory=list)  # hot restart failures
    errors: list[str] = field(default_factory=list)  # fatal errors, each with its lines
    started: bool = False  # the last (re)start opened an event source and nothing failed after
    rule_load_lines: list[str] = field(default_factory=list)  # what it said loading rules
    internal: list[dict[str, Any]] = field(default_factory=list)  # other internal alerts


def parse_falco_log(text: str) -> FalcoLog:
    """Sort a Falco pod log into alerts, reload failures, fatal errors and rule loading.

    Lines without a time stamp continue the block before them: the verbose load
    result after ``Error: `` or after a rules file's "Ok, with warnings".
    """
    log = FalcoLog()
    block: list[str] | None = None  # rule loading lines that continue
    error_open = False  # the last "Error: " still takes continuation lines
    rules_section = False
    for raw in text.splitlines():
        line = _KUBE_TIME_RE.sub("", raw.rstrip("\r"), count=1)
        obj = json_object(line.strip())
        if obj is not None and "rule" in obj:
            block, error_open = None, False
            if obj.get("source") != INTERNAL_SOURCE:
                log.alerts.append(obj)
            elif obj.get("rule") == HOT_RESTART_FAILURE:
                log.reload_failures.append(obj)
            else:
                log.internal.append(obj)
            continue
        stamp = _LOG_TIME_RE.match(line)
        if stamp is None:
            if line.startswith("Error: "):
                log.errors.append(line)
                log.started = False
                block, error_open = None, True
            elif not line.strip():
                continue
            elif error_open:
                log.errors[-1] += "\n" + line
            elif block is not None:
                block.append(line)
            continue
        message = line[stamp.end() :]
        block, error_open = None, False
        # "<file> | schema validation: ok" lines list config files too: only those
        # after "Loading rules from" are rules files.
        rules_section = message.startswith("Loading rules from") or (
            rules_section
            and (" | schema validation: " in message or bool(RULES_STATUS_RE.match(message)))
        )
        if _OPENED_RE.match(message):
            log.started = True
        elif message.startswith("Runtime error: "):
            log.errors.append(message)
            log.started = False
        elif rules_section:
            log.rule_load_lines.append(message)
            block = log.rule_load_lines
    return log


def reload_failure_reason(alert: Mapping[str, Any]) -> str:
    """What a hot restart failure alert says went wrong (its output without the rule name)."""
    output = str(alert.get("output", ""))
    prefix = f"{HOT_RESTART_FAILURE}: "
    return output[len(prefix) :] if output.startswith(prefix) else output


# --- when Falco loaded its rules (a log read with the kubelet's time stamps) ------------


@dataclass
class EngineTimes:
    """When Falco (re)started its engine and when a reload was refused, by the
    kubelet's clock (the node's, as the files' change times are)."""

    # each (re)start that opened its event source: when it began loading the rules
    starts: list[datetime] = field(default_factory=list)
    failures: list[datetime] = field(default_factory=list)  # hot restart failures
    stamped: bool = False  # the log had the kubelet's time stamps at all


def kube_time(line: str) -> tuple[datetime | None, str]:
    """(the kubelet's time stamp, the line after it) of a `kubectl logs --timestamps`
    line: RFC 3339 in UTC with up to nine fractional digits; (None, line) without one."""
    m = _KUBE_TIME_RE.match(line)
    if m is None:
        return None, line
    stamp = m.group(0).strip()[:-1]  # without the "Z"
    whole, _, frac = stamp.partition(".")
    try:
        t = datetime.fromisoformat(whole).replace(tzinfo=UTC)
    except ValueError:
        return None, line
    return t + timedelta(microseconds=int(frac.ljust(6, "0")[:6] or 0)), line[m.end() :]


def engine_times(text: str) -> EngineTimes:
    """Falco's (re)starts and refused reloads in a pod log read with time stamps.

    A start is the "Opening '<source>' source with ..." line that follows the
    loading of the configuration and rules; its time is that of the "Loading rules
    from" line before it (a file changed after that line is not in the engine,
    even if it changed before the source opened). A hot reload's dry run prints
    "Loading rules from" too but opens no source, so the last one before the
    opening line is the start's own.
    """
    out = EngineTimes()
    loading: datetime | None = None
    for raw in text.splitlines():
        t, line = kube_time(raw.rstrip("\r"))
        if t is None:
            continue
        out.stamped = True
        obj = json_object(line.strip())
        if obj is not None:
            if obj.get("source") == INTERNAL_SOURCE and obj.get("rule") == HOT_RESTART_FAILURE:
                out.failures.append(t)
            continue
        stamp = _LOG_TIME_RE.match(line)
        message = line[stamp.end() :] if stamp else line
        if message.startswith("Loading rules from"):
            loading = t
        elif _OPENED_RE.match(message):
            out.starts.append(loading or t)
            loading = None
    return out


def rules_state(times: EngineTimes, changed: datetime) -> str:
    """Whether Falco's engine has the files as they have been since ``changed`` (the
    newest change under /etc/falco):

    - "current": it (re)started after the change;
    - "rejected": it tried after the change and refused them (the hot reload's dry run
      failed): it runs its old rules, the current files are what is wrong;
    - "stuck": not reloaded since the change, and a reload failed after its last start:
      Falco watches its files by inode, and a failed dry run leaves the watch of a file
      replaced by a new one gone, so it will not see the change;
    - "pending": not yet (a hot restart takes seconds), or never (it missed the change).
    """
    changed = _aware(changed)
    if any(s >= changed for s in times.starts):
        return "current"
    if any(f >= changed for f in times.failures):
        return "rejected"
    last_start = max(times.starts, default=None)
    if any(last_start is None or f > last_start for f in times.failures):
        return "stuck"
    return "pending"


def alert_time(alert: Mapping[str, Any]) -> datetime | None:
    """An alert's event time, UTC (Falco's ``time``: RFC 3339 with nanoseconds).

    Python keeps microseconds; without ``time`` the ``evt.time`` output field (ns)
    is used.
    """
    value = alert.get("time")
    if isinstance(value, str):
        m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)", value)
        if m:
            micro = (m.group(2) or "").ljust(6, "0")[:6]
            zone = "+00:00" if m.group(3) == "Z" else m.group(3)
            try:
                return datetime.fromisoformat(f"{m.group(1)}.{micro}{zone}").astimezone(UTC)
            except ValueError:
                return None
    fields = alert.get("output_fields")
    ns = fields.get("evt.time") if isinstance(fields, Mapping) else None
    if isinstance(ns, int) and not isinstance(ns, bool):
        return datetime.fromtimestamp(ns // 1_000_000_000, UTC) + timedelta(
            microseconds=(ns % 1_000_000_000) // 1000
        )
    return None


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _pod_of(alert: Mapping[str, Any]) -> tuple[str | None, str | None]:
    fields = alert.get("output_fields")
    if not isinstance(fields, Mapping):
        return None, None
    ns, pod = fields.get("k8s.ns.name"), fields.get("k8s.pod.name")
    ns = ns if isinstance(ns, str) and ns else None
    pod = pod if isinstance(pod, str) and pod else None
    return ns, pod


def _same_pod(alert: Mapping[str, Any], want: tuple[str, str] | None) -> bool:
    if want is None:
        return True
    ns, pod = _pod_of(alert)
    # An alert without pod fields (a host event, or fields not in the rule's
    # output) is judged by its time alone.
    return (ns is None or ns == want[0]) and (pod is None or pod == want[1])


def assign_alerts(
    alerts: Sequence[Mapping[str, Any]],
    windows: Sequence[tuple[str, datetime, datetime]],
    pods: Mapping[str, tuple[str, str]] | None = None,
    *,
    grace: timedelta = timedelta(seconds=1),
) -> dict[str, list[dict[str, Any]]]:
    """Step id -> the alerts whose event time falls in the step's window.

    ``windows``: (step id, start, end) in step order; a window reaches ``grace``
    past its end (the event and the lab's clock are the same host kernel's, so
    only rounding needs room). An alert inside one step's [start, end] goes to
    that step; one only in a grace period goes to the step that ended last before
    it. ``pods``: step id -> (namespace, pod) the step ran in; an alert whose
    k8s.ns.name / k8s.pod.name name another pod is not that step's. Every step id
    has a key; alerts outside every window (or without a time) are listed under
    the key "" — only when there are any — so a caller can tell "Falco alerted,
    but not during any step" from silence.
    """
    out: dict[str, list[dict[str, Any]]] = {step: [] for step, _, _ in windows}
    spans = [(step, _aware(a), _aware(b)) for step, a, b in windows]
    for alert in alerts:
        t = alert_time(alert)
        chosen: str | None = None
        if t is not None:
            fits = [
                (step, a, b)
                for step, a, b in spans
                if a <= t <= b + grace and _same_pod(alert, (pods or {}).get(step))
            ]
            inside = [w for w in fits if w[1] <= t <= w[2]]
            if inside:
                chosen = max(inside, key=lambda w: w[1])[0]
            elif fits:
                chosen = max(fits, key=lambda w: w[2])[0]
        out.setdefault(chosen or "", []).append(dict(alert))
    return out
