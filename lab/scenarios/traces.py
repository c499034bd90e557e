"""Recorded Falco traces: JSON lines, one event per line, keys are Falco field names.

This is what `sysdig -r capture.scap -j -p '*%evt.num %evt.type ...'` prints, so a
real capture can be attached to an attack step and replayed as it is.
"""

from __future__ import annotations

import json
from typing import Any

from lab.errors import LabError


def parse_trace(raw: bytes, source: str) -> list[dict[str, Any]]:
    """The events of a trace; a LabError naming the line of the first bad one."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise LabError(f"a trace must be UTF-8 text (byte {e.start})", file=source) from None
    events: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError as e:
            raise LabError(f"not a JSON object: {e}", file=source, line=number) from None
        if not isinstance(event, dict):
            raise LabError(
                "each line must be a JSON object of Falco fields", file=source, line=number
            )
        events.append(event)
    if not events:
        raise LabError("the trace holds no event", file=source)
    return events
