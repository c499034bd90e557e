"""Does an alert's output have a given format ("%evt.time,%user.name,%proc.name")?

Backend-neutral: only the alert's output line, its time and its output_fields are
read. The alert's message (the output line after Falco's "time: Priority" prefix)
must be exactly what the format writes for this alert: the format's text as
written, each %field with the value output_fields gives it, and each time field
(%evt.time, ...) with the alert's own time as Falco prints it. So text or fields
the format does not have, before, between or after, are a difference, and a field
typed in as fixed text is not the field.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

_FIELD = re.compile(r"%([a-z0-9]+\([A-Za-z0-9_.\[\]]+\)|[A-Za-z0-9_.]+(?:\[[^\]]*\])?)")
_PREFIX = re.compile(
    r"^(\S+): (Emergency|Alert|Critical|Error|Warning|Notice|Informational|Debug) "
)
# The prefix's time: "10:00:00.123456789", or with time_format_iso_8601
# "2026-11-27T10:00:00.123456789+0000". Falco prints %evt.time as the first does.
_CLOCK = re.compile(r"^\d\d:\d\d:\d\d\.\d{9}$")
_ISO = re.compile(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d\.\d{9})([+-]\d{4})$")
_RFC3339 = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z$")
# Fields whose output_fields value is the raw time (ns), not the text the output shows.
TIME_FIELDS = frozenset({
    "evt.time", "evt.time.s", "evt.time.iso8601", "evt.datetime", "evt.datetime.s",
    "evt.rawtime", "evt.rawtime.s", "evt.rawtime.ns",
})  # fmt: skip
APPEND_HINT = (
    "if you changed a rule's output with `override: {output: append}`, its old output is "
    "still in front: `replace` replaces it"
)

Token = tuple[str, str]  # ("text", literal) or ("field", name)


def tokens(fmt: str) -> list[Token]:
    out: list[Token] = []
    pos = 0
    body = fmt.lstrip("*")
    for m in _FIELD.finditer(body):
        if m.start() > pos:
            out.append(("text", body[pos : m.start()]))
        out.append(("field", m.group(1)))
        pos = m.end()
    rest = body[pos:]
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


def _ns(alert: dict[str, Any]) -> int | None:
    """The alert's time in ns since the epoch: output_fields' evt.time, or its "time"."""
    raw = (alert.get("output_fields") or {}).get("evt.time")
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    m = _RFC3339.match(str(alert.get("time", "")))
    if m is None:
        return None
    y, mo, d, h, mi, s, frac = m.groups()
    when = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=UTC)
    return int(when.timestamp()) * 10**9 + int((frac or "0").ljust(9, "0"))


def time_texts(alert: dict[str, Any], printed: str) -> dict[str, str]:
    """The time fields as Falco prints them for this alert, from the prefix's time
    (Falco prints both in the node's time zone) and the alert's time."""
    ns = _ns(alert)
    date = clock = None
    offset = "+0000"
    if m := _ISO.match(printed):
        date, clock, offset = m.groups()
    elif _CLOCK.match(printed):
        clock = printed
    if ns is not None:
        utc = datetime.fromtimestamp(ns // 10**9, UTC)
        date = date or f"{utc:%Y-%m-%d}"
        clock = clock or f"{utc:%H:%M:%S}.{ns % 10**9:09d}"
    out: dict[str, str] = {}
    if clock is not None:
        out["evt.time"], out["evt.time.s"] = clock, clock[:8]
    if clock is not None and date is not None:
        out["evt.datetime"], out["evt.datetime.s"] = f"{date} {clock}", f"{date} {clock[:8]}"
        out["evt.time.iso8601"] = f"{date}T{clock}{offset}"
    if ns is not None:
        out["evt.rawtime"] = str(ns)
        out["evt.rawtime.s"], out["evt.rawtime.ns"] = str(ns // 10**9), str(ns % 10**9)
    return out


def _pattern(toks: list[Token], values: dict[str, str | None]) -> str:
    """A regex of what the format writes; a value that cannot be known matches anything."""
    parts = []
    for kind, text in toks:
        value = text if kind == "text" else values.get(text)
        parts.append(".*?" if value is None else re.escape(value))
    return "".join(parts)


def _misplaced(toks: list[Token], values: dict[str, str | None], message: str) -> str | None:
    """Where the message has the format's text but a field shows another value."""
    pattern = "".join(re.escape(t) if k == "text" else "(.*?)" for k, t in toks)
    m = re.fullmatch(pattern, message, re.S)
    if m is None:
        return None
    names = [t for k, t in toks if k == "field"]
    for name, got in zip(names, m.groups(), strict=True):
        want = values.get(name)
        if want is None or got == want:
            continue
        if name in TIME_FIELDS:
            return f"where the format has %{name} it writes {got!r}, not the alert's time {want!r}"
        other = next((n for n in names if n != name and values.get(n) == got), None)
        if other is not None:
            return (
                f"the fields are in another order: where the format has %{name} ({want!r}) "
                f"it writes %{other} ({got!r})"
            )
        return (
            f"where the format has %{name} it writes {got!r}, but %{name} is {want!r} "
            "(is it typed in as fixed text?)"
        )
    return None


def _difference(
    toks: list[Token], values: dict[str, str | None], message: str, expected: str
) -> str:
    if message.endswith(expected):
        return (
            f"it writes {message[: -len(expected)]!r} before what the format writes ({APPEND_HINT})"
        )
    if message.startswith(expected):
        return f"it writes {message[len(expected) :]!r} after what the format writes"
    return _misplaced(toks, values, message) or (
        "the order of the fields or the text between them differs"
    )


def compare_format(alert: dict[str, Any], fmt: str) -> str | None:
    """None when the alert's output has the format; else what differs, for a learner."""
    toks = tokens(fmt)
    wanted = [t for k, t in toks if k == "field"]
    fields: dict[str, Any] = alert.get("output_fields") or {}
    printed, message = _split(str(alert.get("output", "")))
    times = time_texts(alert, printed)
    values: dict[str, str | None] = {
        name: times.get(name) if name in TIME_FIELDS else _shown(fields[name])
        for name in wanted
        if name in TIME_FIELDS or name in fields
    }

    def missing(name: str) -> bool:
        # evt.time is in every alert's output_fields (Falco's prefix has it): whether the
        # rule's own output has it shows in its text.
        if name == "evt.time":
            return name in times and times[name] not in message
        return name not in fields

    absent = [f for f in dict.fromkeys(wanted) if missing(f)]
    if not absent and re.fullmatch(_pattern(toks, values), message, re.S):
        return None
    expected = "".join(
        t if k == "text" else (f"%{t}" if values.get(t) is None else str(values[t]))
        for k, t in toks
    )
    why = []
    if absent:
        why.append("its output has no " + ", ".join(f"%{f}" for f in absent))
    extra = [f for f in fields if f not in wanted and f != "evt.time"]
    if extra:
        why.append("it also prints " + ", ".join(f"%{f}" for f in extra))
    if not absent:
        why.append(_difference(toks, values, message, expected))
    return f"writes {message!r}; the format `{fmt}` would write {expected!r}: " + "; ".join(why)
