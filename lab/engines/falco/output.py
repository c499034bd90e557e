"""Rule outputs: compile a format once, render it per alert (libsinsp eventformatter.cpp,
Falco formats.cpp).

Format syntax, as libsinsp reads it:
- `%field`, `%field[arg]`, `%transformer(field)` (nested transformers too);
- `%<N>field` pads or cuts the value to N characters;
- a token is the *longest* prefix that is a known field: `%proc.nameand` is
  `%proc.name` followed by "and"; no prefix at all is an "unknown filter:" error;
- there is no escape for '%': a '%' must start a field.
A value that is not available prints `<NA>` (Falco always formats with a leading
'*', which allows missing values).

`output_fields` of a JSON alert hold every plain field of the output (fields under a
transformer included, the transformed values not: Falco leaves libsinsp's
resolve_transformed_fields off), plus `evt.time` from the "time: Priority" prefix.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from lab.engines.falco.condition.ast import FieldRef, Operand, Transformer
from lab.errors import LabError

NA = "<NA>"

# libsinsp's field-name and bare field-argument tokens.
_FIELD_NAME = re.compile(r"[a-zA-Z]+[a-zA-Z0-9_]*(?:\.[a-zA-Z]+[a-zA-Z0-9_]*)+")
_FIELD_ARG_BARE = re.compile(r"[^\[\]\"' \t\n\v\f\r]+")
_QUOTED = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'")
_TRANSFORMER = re.compile(r"(tolower|toupper|b64|basename|len)\(")
_BLANKS = " \t\b\r\n"


class OutputError(LabError):
    """An output format libsinsp would refuse; `message` is its wording."""


# What the field catalog gives for an operand: read its value from an event (None
# when not available), and render a value as text.
Reader = Callable[[Mapping[str, Any]], Any]
Render = Callable[[Any], str]
OperandCompiler = Callable[[Operand], tuple[Reader, Render]]


def operand_key(op: Operand) -> str:
    """The name libsinsp gives a token: `proc.aname[2]`, `tolower(proc.name)`."""
    if isinstance(op, Transformer):
        return f"{op.name}({operand_key(op.arg)})"
    return op.name if op.arg is None else f"{op.name}[{op.arg}]"


def innermost(op: Operand) -> FieldRef:
    while isinstance(op, Transformer):
        op = op.arg
    return op


class _Syntax(Exception):
    pass


def _parse_operand(text: str, pos: int = 0) -> tuple[Operand, int]:
    """A field or transformer at `pos` of `text` (no blank before it); returns the end."""
    m = _FIELD_NAME.match(text, pos)
    if m:
        name, end = m.group(0), m.end()
        if end < len(text) and text[end] == "[":
            q = _QUOTED.match(text, end + 1) or _FIELD_ARG_BARE.match(text, end + 1)
            if q is None:
                raise _Syntax("expected a valid field argument: a quoted string or a bare string")
            arg = q.group(0)
            if arg[:1] in "\"'":
                arg = arg[1:-1]
            end = q.end()
            if end >= len(text) or text[end] != "]":
                raise _Syntax("expected a ']' token")
            return FieldRef(name, arg, pos), end + 1
        return FieldRef(name, None, pos), end
    t = _TRANSFORMER.match(text, pos)
    if t:
        end = t.end()
        while end < len(text) and text[end] in _BLANKS:
            end += 1
        inner, end = _parse_operand(text, end)
        while end < len(text) and text[end] in _BLANKS:
            end += 1
        if end >= len(text) or text[end] != ")":
            raise _Syntax("expected a ')' token closing the transformer")
        return Transformer(t.group(1), inner, pos), end + 1
    raise _Syntax("unexpected token after '")


@dataclass(frozen=True)
class _Token:
    key: str
    read: Reader
    render: Render
    width: int  # 0: as is


# Time fields come from the event's timestamp, not from an event key: their text as
# libsinsp prints it, and their output_fields value (libs' extract_as_js: the ns
# timestamp for the formatted ones).
def _hms(ts: int) -> str:
    return datetime.fromtimestamp(ts // 1_000_000_000, UTC).strftime("%H:%M:%S")


def _ymd_hms(ts: int) -> str:
    return datetime.fromtimestamp(ts // 1_000_000_000, UTC).strftime("%Y-%m-%d %H:%M:%S")


TIME_FIELDS: dict[str, tuple[Callable[[int], str], Callable[[int], int]]] = {
    "evt.time": (lambda ts: format_evt_time(ts), lambda ts: ts),
    "evt.time.s": (_hms, lambda ts: ts),
    "evt.time.iso8601": (lambda ts: format_iso8601_offset(ts), lambda ts: ts),
    "evt.datetime": (lambda ts: f"{_ymd_hms(ts)}.{ts % 1_000_000_000:09d}", lambda ts: ts),
    "evt.datetime.s": (_ymd_hms, lambda ts: ts),
    "evt.rawtime": (str, lambda ts: ts),
    "evt.rawtime.s": (lambda ts: str(ts // 1_000_000_000), lambda ts: ts // 1_000_000_000),
    "evt.rawtime.ns": (lambda ts: str(ts % 1_000_000_000), lambda ts: ts % 1_000_000_000),
}


@dataclass(frozen=True)
class _TimeToken:
    key: str
    width: int


@dataclass(frozen=True)
class OutputFormat:
    """A compiled output: literal text and field tokens, plus the JSON output fields."""

    text: str
    parts: tuple[str | _Token | _TimeToken, ...]
    fields: tuple[tuple[str, Reader | None], ...]  # (key, reader; None: a time field)

    def __post_init__(self) -> None:
        # What rendering does per part, unpacked once: (literal, key of the part's value
        # in output_fields when it is a plain field, reader, to text, width); a time
        # token has no reader.
        plain = {key for key, read in self.fields if read is not None}
        steps: list[tuple[str | None, str | None, Reader | None, Callable[[Any], str] | None,
                          int]] = []
        for part in self.parts:
            if isinstance(part, str):
                steps.append((part, None, None, None, 0))
            elif isinstance(part, _TimeToken):
                steps.append((None, None, None, TIME_FIELDS[part.key][0], part.width))
            else:
                key = part.key if part.key in plain else None
                steps.append((None, key, part.read, part.render, part.width))
        object.__setattr__(self, "_steps", tuple(steps))
        with_time = dict(self.fields)
        with_time.setdefault("evt.time", None)
        object.__setattr__(self, "_alert_fields", tuple(sorted(with_time.items())))

    def render(self, event: Mapping[str, Any], ts: int = 0) -> str:
        """The output line for an event whose timestamp is `ts` (ns)."""
        return self._text(event, ts, None)

    def values(self, event: Mapping[str, Any], ts: int = 0) -> dict[str, Any]:
        """The JSON output_fields of the output, sorted by key."""
        return {key: TIME_FIELDS[key][1](ts) if read is None else read(event)
                for key, read in self.fields}

    def alert(self, event: Mapping[str, Any], ts: int = 0) -> tuple[str, dict[str, Any]]:
        """render() and the alert's output_fields: values() with evt.time (the alert's
        own time, which Falco adds), sorted by key. Each field is read once."""
        fields = {key: TIME_FIELDS[key][1](ts) if read is None else read(event)
                  for key, read in self._alert_fields}  # type: ignore[attr-defined]
        return self._text(event, ts, fields), fields

    def _text(self, event: Mapping[str, Any], ts: int, fields: dict[str, Any] | None) -> str:
        out: list[str] = []
        for literal, key, read, show, width in self._steps:  # type: ignore[attr-defined]
            if literal is not None:
                out.append(literal)
                continue
            if read is None:
                s = show(ts)
            else:
                value = fields[key] if fields is not None and key is not None else read(event)
                s = NA if value is None else show(value)
            if width:
                s = s[:width].ljust(width)
            out.append(s)
        return "".join(out)


def compile_output(fmt: str, compile_operand: OperandCompiler) -> OutputFormat:
    """Compile a rule's output as libsinsp's formatter does, or raise OutputError."""
    if fmt == "":
        raise OutputError("empty formatting token")
    text = fmt[1:] if fmt.startswith("*") else fmt
    parts: list[str | _Token | _TimeToken] = []
    fields: dict[str, Reader | None] = {}
    literal_start = 0
    j = 0
    n = len(text)
    while j < n:
        if text[j] != "%":
            j += 1
            continue
        if literal_start != j:
            parts.append(text[literal_start:j])
        if j == n - 1:
            raise OutputError("invalid formatting syntax: formatting cannot end with a %")
        width = 0
        if text[j + 1].isdigit():
            m = re.match(r"\d+", text[j + 1:])
            assert m is not None
            width = int(m.group(0))
            j += len(m.group(0))
            if j == n - 1:
                raise OutputError(
                    "invalid formatting syntax: formatting cannot end with a number")
        op, size, read, render = _longest_token(text[j + 1:], compile_operand)
        field = innermost(op)
        key = operand_key(field)
        is_time = field.arg is None and field.name in TIME_FIELDS
        if key not in fields:
            fields[key] = None if is_time else read if field is op else compile_operand(field)[0]
        if is_time and field is op:
            parts.append(_TimeToken(key, width))
        else:
            parts.append(_Token(operand_key(op), read, render, width))
        j += size
        literal_start = j + 1
        j += 1
    if literal_start < n:
        parts.append(text[literal_start:])
    return OutputFormat(fmt, tuple(parts), tuple(sorted(fields.items())))


def _longest_token(rest: str, compile_operand: OperandCompiler
                   ) -> tuple[Operand, int, Reader, Render]:
    """Try ever shorter prefixes of `rest` until one is a known field (libsinsp's loop)."""
    size = len(rest)
    last = ""
    while True:
        try:
            op, consumed = _parse_operand(rest[:size])
            read, render = compile_operand(op)
            return op, consumed, read, render
        except (_Syntax, LabError) as exc:
            last = str(exc.message if isinstance(exc, LabError) else exc)
            size -= 1
            if size <= 0:
                # libsinsp's words name no token; the place is what a learner needs.
                token = re.match(r"\S{0,40}", rest).group(0)  # type: ignore[union-attr]
                raise OutputError(f"unknown filter: {last} (at '%{token}')") from None


# --- the alert prefix ---------------------------------------------------------------


@lru_cache(maxsize=4096)
def _utc(secs: int) -> tuple[str, str]:
    """("YYYY-MM-DD", "HH:MM:SS") of a Unix time: an alert formats its time twice, and
    the alerts of a trace come from a few seconds."""
    day, _, clock = datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%d %H:%M:%S").partition(" ")
    return day, clock


def format_evt_time(ts_ns: int) -> str:
    """`%evt.time`: HH:MM:SS.nnnnnnnnn (UTC here; Falco uses the node's local time)."""
    secs, ns = divmod(ts_ns, 1_000_000_000)
    return f"{_utc(secs)[1]}.{ns:09d}"


def format_iso8601_offset(ts_ns: int) -> str:
    """`%evt.time.iso8601`: 2026-11-27T10:00:00.000000000+0000."""
    secs, ns = divmod(ts_ns, 1_000_000_000)
    day, clock = _utc(secs)
    return f"{day}T{clock}.{ns:09d}+0000"


def format_iso8601(ts_ns: int) -> str:
    """The JSON alert's "time": 2026-11-27T10:00:00.000000000Z."""
    secs, ns = divmod(ts_ns, 1_000_000_000)
    day, clock = _utc(secs)
    return f"{day}T{clock}.{ns:09d}Z"


_MAX_TIME = 2**64  # Falco keeps times as unsigned 64-bit nanoseconds


def parse_time(value: Any) -> int | None:
    """An event time as nanoseconds: an int (ns) or an RFC 3339 string.

    None when it is no time Falco could hold (negative, past 2**64 ns, not a date):
    the caller then falls back, as for a missing time.
    """
    try:
        ts = _parse_time(value)
    except (ValueError, OverflowError):
        return None
    return ts if ts is not None and 0 <= ts < _MAX_TIME else None


def _parse_time(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        m = re.fullmatch(
            r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?",
            value.strip(),
        )
        if m is None:
            return int(value) if value.strip().isdigit() else None
        tz = m.group(4) or "Z"
        base = datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}{'+00:00' if tz == 'Z' else tz}")
        frac = (m.group(3) or "").ljust(9, "0")
        return int(base.timestamp()) * 1_000_000_000 + int(frac)
    return None
