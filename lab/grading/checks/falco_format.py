"""Does an alert's output have a given format ("%evt.time,%user.name,%proc.name")?

Backend-neutral: only the alert's output line and output_fields are read. The
format's literal text must appear as written, and each %field where it stands,
with the value the alert's output_fields give it (a field typed in as fixed text
is not the field).
"""

from __future__ import annotations

import re
from typing import Any

_FIELD = re.compile(r"%([a-z0-9]+\([A-Za-z0-9_.\[\]]+\)|[A-Za-z0-9_.]+(?:\[[^\]]*\])?)")
_PREFIX = re.compile(
    r"^(\S+): (Emergency|Alert|Critical|Error|Warning|Notice|Informational|Debug) "
)
# Fields whose value in output_fields is raw (ns), not the text the output shows.
_TIMES = ("evt.time", "evt.rawtime", "evt.datetime", "evt.time.s", "evt.time.iso8601")

Token = tuple[str, str]  # ("text", literal) or ("field", name)


def tokens(fmt: str) -> list[Token]:
    out: list[Token] = []
    pos = 0
    for m in _FIELD.finditer(fmt.lstrip("*")):
        if m.start() > pos:
            out.append(("text", fmt.lstrip("*")[pos : m.start()]))
        out.append(("field", m.group(1)))
        pos = m.end()
    rest = fmt.lstrip("*")[pos:]
    return out + ([("text", rest)] if rest else [])


def _shown(value: Any) -> str:
    if value is None:
        return "<NA>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _split(output: str) -> tuple[str, str]:
    """(time as printed, message) of an output line."""
    m = _PREFIX.match(output)
    return (m.group(1), output[m.end() :]) if m else ("", output)


def _expected(toks: list[Token], fields: dict[str, Any], time: str) -> str:
    parts = []
    for kind, text in toks:
        if kind == "text":
            parts.append(text)
        elif text == "evt.time" and time:
            parts.append(time)
        elif text in fields:
            parts.append(_shown(fields[text]))
        else:
            parts.append(f"%{text}")
    return "".join(parts)


def compare_format(alert: dict[str, Any], fmt: str) -> str | None:
    """None when the alert's output has the format; else what differs, for a learner."""
    toks = tokens(fmt)
    wanted = [t for k, t in toks if k == "field"]
    fields: dict[str, Any] = alert.get("output_fields") or {}
    time, message = _split(str(alert.get("output", "")))

    def present(name: str) -> bool:
        # evt.time is in every alert's output_fields (Falco's prefix has it): whether
        # the rule's own output has it shows in its text.
        if name == "evt.time":
            return bool(time) and time in message
        return name in fields

    missing = [f for f in wanted if not present(f)]
    pattern = "".join(re.escape(t) if k == "text" else "(.*?)" for k, t in toks)
    m = re.fullmatch(pattern, message, re.S)
    if m and not missing:
        for name, got in zip(wanted, m.groups(), strict=True):
            if name not in _TIMES and got != _shown(fields[name]):
                return (
                    f"writes {message!r}: where the format has %{name} it shows {got!r}, "
                    f"but %{name} is {_shown(fields[name])!r} (is it typed in as fixed text?)"
                )
        return None
    why = []
    if missing:
        why.append("its output has no " + ", ".join(f"%{f}" for f in missing))
    extra = [f for f in fields if f not in wanted and f != "evt.time"]
    if extra:
        why.append("it also prints " + ", ".join(f"%{f}" for f in extra))
    if not why:
        why.append("the order of the fields or the text between them differs")
    expected = _expected(toks, fields, time)
    return (
        f"writes {message!r}; the format `{fmt}` would write {expected!r}: " + "; ".join(why)
    )
