"""Alerts as Falco writes them: JSON lines (json_output) or text lines, and its start-up log.

Falco's output is "<time>: <Priority> <message>"; in JSON, that whole line is the
"output" property, keys are sorted (nlohmann::json), and the json_include_*
options drop or add properties.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from lab.backends.sim.falco_config import FalcoConfig

FALCO_VERSION = "0.44.0"
# The classic prefix, "10:00:00.123456789: Notice ", or its ISO 8601 form.
_PREFIX = re.compile(
    r"^(\d\d:\d\d:\d\d\.\d{9}|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}[+-]\d{4}): "
    r"(Emergency|Alert|Critical|Error|Warning|Notice|Informational|Debug) "
)
_TIME = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z$")


def message_of(output: str) -> str:
    """The rule's rendered output without the time and priority prefix."""
    return _PREFIX.sub("", output, count=1)


def _time_parts(time: str) -> tuple[datetime, int]:
    m = _TIME.match(time)
    if not m:
        return datetime(1970, 1, 1, tzinfo=UTC), 0
    y, mo, d, h, mi, s, frac = m.groups()
    when = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=UTC)
    return when, int((frac or "0").ljust(9, "0"))


def prefix(time: str, priority: str, iso_8601: bool) -> str:
    """ "10:00:00.123456789: Notice" (or "2026-...T10:00:00.123456789+0000: Notice")."""
    when, ns = _time_parts(time)
    stamp = f"{when:%Y-%m-%dT%H:%M:%S}.{ns:09d}+0000" if iso_8601 else f"{when:%H:%M:%S}.{ns:09d}"
    return f"{stamp}: {priority}"


def alert_record(alert: Mapping[str, Any], cfg: FalcoConfig) -> dict[str, Any]:
    """The alert in Falco's json_output shape, its output line prefixed as configured."""
    record = dict(alert)
    message = message_of(str(alert.get("output", "")))
    head = prefix(str(alert["time"]), str(alert["priority"]), cfg.time_format_iso_8601)
    record["output"] = f"{head} {message}"
    return record


def alert_line(record: Mapping[str, Any], cfg: FalcoConfig) -> str:
    """One line of Falco's output for this alert (no newline)."""
    if not cfg.json_output:
        return str(record["output"])
    out = dict(record)
    if not cfg.json_include_output_property:
        out.pop("output", None)
    if not cfg.json_include_tags_property:
        out.pop("tags", None)
    if cfg.json_include_message_property:
        out["message"] = message_of(str(record.get("output", "")))
    if not cfg.json_include_output_fields_property:
        out.pop("output_fields", None)
    return json.dumps(out, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def log_time(when: datetime) -> str:
    """Falco's own log lines start with ctime: "Thu Nov 27 10:00:00 2026"."""
    return when.astimezone(UTC).strftime("%a %b %d %H:%M:%S %Y")


def startup_lines(when: datetime, config_file: str, rules_files: list[str]) -> list[str]:
    t = log_time(when)
    lines = [
        f"{t}: Falco version: {FALCO_VERSION} (x86_64)",
        f"{t}: Falco initialized with configuration files:",
        f"{t}:    {config_file}",
        f"{t}: Loading rules from:",
    ]
    return lines + [f"{t}:    {path}" for path in rules_files]


def running_lines(when: datetime) -> list[str]:
    t = log_time(when)
    return [
        f"{t}: Loaded event sources: syscall",
        f"{t}: Enabled event sources: syscall",
        f"{t}: Opening 'syscall' source with modern BPF probe.",
    ]
