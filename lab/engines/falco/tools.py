"""Learner/CI tools over the Falco engine: validate rules files, replay a trace.

A trace is JSON lines, one event per line, keyed by Falco field names, as
`sysdig -r capture.scap -j -p '*%evt.num %evt.type ...'` prints it. Traces are
streamed: a line is read, run through the rules and forgotten, so a trace of
any length replays in constant memory. Every bad input is a LabError located
at its file and line; the CLI wraps these functions thinly.
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import IO, Any

from lab.engines.falco.engine import Alert, LoadResult, Ruleset, load_rules
from lab.errors import LabError
from lab.jsonkind import json_kind

# The official rules files are ~65 KB each; a rules file a hundred times that is
# not a rules file (and YAML parsing it would take a long while).
MAX_RULES_BYTES = 4 * 1024 * 1024
# A sysdig event line is a few KB even with every field; a longer line is not an
# event, and refusing it keeps memory bounded on a file with no newlines.
MAX_LINE_BYTES = 1024 * 1024
_BLOCK = 1 << 18

_GZIP = b"\x1f\x8b"
_SCAP = b"\x0a\x0d\x0d\x0a"  # a pcapng-style section header: an uncompressed .scap
_IMPORT_HINT = "convert a capture with `cks-lab falco import CAPTURE.scap -o TRACE.jsonl`"


# -- rules files ---------------------------------------------------------------------


def read_rules_file(path: str | os.PathLike[str]) -> tuple[str, str]:
    """(name, text) of a rules file, as load_rules takes it; name is the path as given.

    Refuses what is not a rules file with a clear LabError: a special file, a
    file over MAX_RULES_BYTES, binary data (a NUL byte), text that is not UTF-8.
    """
    name = os.fspath(path)
    with open(path, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise LabError("is not a regular file", file=name)
        data = fh.read(MAX_RULES_BYTES + 1)
    if len(data) > MAX_RULES_BYTES:
        raise LabError(
            f"is larger than {MAX_RULES_BYTES // (1024 * 1024)} MiB: not a rules file", file=name
        )
    nul = data.find(b"\0")
    if nul >= 0 or data.startswith(_GZIP):
        at = data.count(b"\n", 0, max(nul, 0)) + 1
        raise LabError("is a binary file, not a YAML rules file", file=name, line=at)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise LabError("is not UTF-8 text", file=name, line=line) from None
    return name, text


def read_rules_files(paths: Iterable[str | os.PathLike[str]]) -> list[tuple[str, str]]:
    return [read_rules_file(p) for p in paths]


def report_lines(result: LoadResult) -> list[str]:
    """What `falco -V` says per file: "<file>: <status>", then each problem, located."""
    lines: list[str] = []
    for report in result.reports:
        lines.append(f"{report.name}: {report.status}")
        lines.extend(str(p) for p in report.problems)
    return lines


def validate_files(paths: Sequence[str | os.PathLike[str]]) -> tuple[list[str], bool]:
    """Load the files in order into one engine; (report lines, whether all load)."""
    sources = read_rules_files(paths)
    result = load_rules(sources)
    lines = report_lines(result)
    for (name, text), report in zip(sources, result.reports, strict=False):
        if report.status == "Invalid" and _yaml_root_is_mapping(text):
            lines.append(
                f"{name}: hint: a rules file is a YAML list of rule, macro and list items; "
                "this one is a mapping (a falco.yaml? its rules_files are the files to validate)"
            )
    return lines, result.ok


def _yaml_root_is_mapping(text: str) -> bool:
    import yaml

    try:
        return any(isinstance(doc, dict) for doc in yaml.safe_load_all(text))
    except yaml.YAMLError:
        return False


class RulesLoadError(LabError):
    """The rules do not load: nothing may be replayed. `lines` say why, located."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("the rules do not load (errors above); nothing was replayed")
        self.lines = lines


def load_ruleset(
    paths: Sequence[str | os.PathLike[str]],
    *,
    min_priority: str = "debug",
    rule_matching: str = "first",
) -> tuple[Ruleset, list[str]]:
    """The ruleset of these files and the lines of any warnings; RulesLoadError if any fails."""
    result = load_rules(
        read_rules_files(paths),
        min_priority=min_priority,
        rule_matching="all" if rule_matching == "all" else "first",
    )
    if result.ruleset is None:
        raise RulesLoadError(report_lines(result))
    warnings = [str(p) for r in result.reports for p in r.problems]
    return result.ruleset, warnings


# -- traces --------------------------------------------------------------------------


def trace_blocks(
    stream: IO[bytes], source: str, *, max_line: int = MAX_LINE_BYTES, block: int = _BLOCK
) -> Iterator[tuple[int, list[str]]]:
    """The trace's lines in blocks: (number of the block's first line, lines without "\\n").

    Raises a located LabError for binary data, text that is not UTF-8, and a
    line longer than `max_line` bytes, before handing out any line of the block
    it is in. Reads with read1 where it can, so a pipe's lines come as they are
    written rather than a block later.
    """
    read = getattr(stream, "read1", stream.read)
    carry = b""
    number = 1  # the number of the next line to hand out
    first = True
    while True:
        chunk = read(block)
        if first and chunk:
            _refuse_binary(chunk, source)
            first = False
        if not chunk:
            break
        data = carry + chunk if carry else chunk
        end = data.rfind(b"\n")
        if end < 0:
            if len(data) > max_line:
                raise LabError(f"line is longer than {max_line} bytes: not an event", file=source,
                               line=number)
            carry = data
            continue
        body, carry = data[: end + 1], data[end + 1 :]
        lines = _decode(body, source, number, max_line).split("\n")
        lines.pop()  # the "" after the last "\n"
        if number == 1 and lines and lines[0].startswith("\ufeff"):
            lines[0] = lines[0][1:]
        yield number, lines
        number += len(lines)
        if len(carry) > max_line:
            raise LabError(f"line is longer than {max_line} bytes: not an event", file=source,
                           line=number)
    if carry:
        last = _decode(carry, source, number, max_line)
        if number == 1 and last.startswith("\ufeff"):
            last = last[1:]
        yield number, [last]


def _refuse_binary(head: bytes, source: str) -> None:
    if head.startswith((_GZIP, _SCAP)):
        raise LabError(f"is a binary file (a capture?), not a JSON-lines trace: {_IMPORT_HINT}",
                       file=source)


def _decode(data: bytes, source: str, number: int, max_line: int) -> str:
    """`data` (whole lines) as text; a located error for binary, non-UTF-8, too long."""
    nul = data.find(b"\0")
    if nul >= 0:
        line = number + data.count(b"\n", 0, nul)
        raise LabError(f"binary data (a NUL byte), not JSON lines: {_IMPORT_HINT}", file=source,
                       line=line)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = number + data.count(b"\n", 0, e.start)
        raise LabError("not UTF-8 text", file=source, line=line) from None
    if len(data) > max_line:  # only then can one of these lines be too long
        for i, piece in enumerate(data.split(b"\n")):
            if len(piece) > max_line:
                raise LabError(f"line is longer than {max_line} bytes: not an event",
                               file=source, line=number + i)
    return text


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    # json reads 1e400 as infinity; no Falco field holds that.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range for a number")
    return value


class _EventDecoder:
    """JSON decoding for event lines that also counts the objects a line holds.

    An event is one flat object: a value that is an object (even inside an
    array) is a mistake, and the count shows it at the cost of one call per
    object instead of a look at every value of every event.
    """

    def __init__(self) -> None:
        self.objects = 0
        decoder = json.JSONDecoder(
            parse_constant=_no_constants, parse_float=_finite_float, object_hook=self._count
        )
        self.decode = decoder.decode
        # The C scanner behind decode(), without its per-call wrapping: a third
        # faster on an event line. A line it does not take whole goes to decode().
        self.scan: Callable[[str, int], tuple[Any, int]] = decoder.scan_once  # type: ignore[attr-defined]

    def _count(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.objects += 1
        return obj


def parse_event(line: str, source: str, number: int,
                decoder: _EventDecoder | None = None) -> dict[str, Any] | None:
    """One trace line as an event (None for a blank line); a located LabError if it is not."""
    d = decoder or _EventDecoder()
    d.objects = 0
    try:
        event = d.decode(line)
    except ValueError as e:
        if not line.strip():
            return None
        raise _json_error(e, source, number) from None
    if type(event) is not dict:
        raise LabError(f"expected a JSON object (one event: Falco field -> value), "
                       f"got {json_kind(event)}", file=source, line=number)
    if d.objects != 1:
        _check_values(event, source, number)
    return event


def _json_error(e: ValueError, source: str, number: int) -> LabError:
    if isinstance(e, json.JSONDecodeError):
        return LabError(f"not valid JSON: {e.msg} (column {e.colno})", file=source, line=number)
    return LabError(f"not valid JSON: {e}", file=source, line=number)


def _holds_object(value: Any) -> bool:
    return type(value) is dict or (type(value) is list and any(map(_holds_object, value)))


def _check_values(event: dict[str, Any], source: str, number: int) -> None:
    for key, value in event.items():
        if _holds_object(value):
            raise LabError(f"a field's value is a string, number, boolean, null or a list of "
                           f"those, got {json_kind(value)}", file=source, line=number, item=key)


def trace_events(stream: IO[bytes], source: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, event) for every event of a trace; blank lines are skipped."""
    decoder = _EventDecoder()
    for first, lines in trace_blocks(stream, source):
        for number, line in enumerate(lines, first):
            event = parse_event(line, source, number, decoder)
            if event is not None:
                yield number, event


# -- replay --------------------------------------------------------------------------


@dataclass
class ReplayStats:
    events: int = 0
    enter_events: int = 0  # skipped, as Falco >= 0.42 skips them
    alerts: int = 0
    by_rule: Counter[str] = field(default_factory=Counter)

    def summary(self, source: str) -> str:
        """One line for stderr: what was read, what fired."""
        enter = f" ({self.enter_events} enter events skipped)" if self.enter_events else ""
        head = f"{source}: {self.events} events{enter}, "
        if not self.alerts:
            return head + "no alerts"
        rules = ", ".join(f"{rule}: {n}" for rule, n in self.by_rule.most_common())
        return head + f"{self.alerts} alert{'s' if self.alerts != 1 else ''} ({rules})"


def alert_json(alert: Alert) -> str:
    """An alert as Falco's json_output line: compact, keys sorted as nlohmann sorts them."""
    return _ALERT_JSON(alert.to_json())


# json.dumps with options makes an encoder per call: a tenth of an alert's cost
_ALERT_JSON = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode


def alert_text(alert: Alert) -> str:
    return alert.to_text()


def replay(
    ruleset: Ruleset,
    stream: IO[bytes],
    source: str,
    write: Callable[[bytes], Any],
    *,
    as_json: bool = False,
    hostname: str | None = None,
) -> ReplayStats:
    """Run every event of the trace through the rules, writing one line per alert.

    Output is written per block of input (whole lines only), so a bad line
    further on stops the replay with the alerts before it already out, and
    never a partial line.

    A line whose evt.type no rule watches is counted but not parsed: Falco's
    evt.type index never shows such an event to a rule, and most of a real
    trace is such events (reads, writes, futexes). It only has to look like
    one JSON object ({...}); every other line is parsed and checked in full.
    """
    render = alert_json if as_json else alert_text
    process = ruleset.process if hostname is None else partial(ruleset.process,
                                                               hostname=hostname)
    rules_for = ruleset.rules_for
    stats = ReplayStats()
    by_rule = stats.by_rule
    decoder = _EventDecoder()
    scan = decoder.scan
    fast = _orjson_event()
    watched: dict[str, bool] = {}
    for first, lines in trace_blocks(stream, source):
        out: list[str] = []
        number = first - 1
        try:
            for line in lines:
                number += 1
                # The last evt.type key is the one JSON keeps; an escape in the
                # value (or no closing quote) sends the line the slow way.
                i = line.rfind(_TYPE_KEY)
                if i >= 0 and line[:1] == "{" and line[-1:] == "}":
                    j = line.find('"', i + _TYPE_KEY_LEN)
                    if j >= 0:
                        etype = line[i + _TYPE_KEY_LEN : j]
                        w = watched.get(etype)
                        if w is None:
                            if len(watched) > 4096:
                                watched.clear()
                            w = watched[etype] = "\\" in etype or bool(rules_for(etype))
                        if not w:
                            stats.events += 1
                            if ">" in line:  # else it cannot be an enter event: no search
                                k = line.rfind(_DIR_KEY)
                                if k >= 0 and line[k + _DIR_KEY_LEN : k + _DIR_KEY_LEN + 1] == ">":
                                    stats.enter_events += 1
                            continue
                event = fast(line) if fast is not None else None
                if event is None:
                    decoder.objects = 0
                    try:
                        event, end = scan(line, 0)
                        if end != len(line):
                            raise ValueError("more after the object")
                    except (ValueError, StopIteration):
                        event = None
                    if decoder.objects != 1 or type(event) is not dict:
                        # not one flat object: the located error (or a blank line)
                        event = parse_event(line, source, number, decoder)
                        if event is None:
                            continue
                stats.events += 1
                if event.get("evt.dir") == ">":
                    stats.enter_events += 1
                    continue
                alerts = process(event)
                if alerts:
                    for alert in alerts:
                        by_rule[alert.rule] += 1
                        out.append(render(alert))
        finally:
            _flush(write, out)  # the alerts of the lines before a bad one, too
    stats.alerts = sum(by_rule.values())
    return stats


def _orjson_event() -> Callable[[str], dict[str, Any] | None] | None:
    """With CKS_LAB_JSON=orjson and orjson installed, a decoder for event lines five
    times faster than json's (a line it is not sure of is left to json: None).

    It is sure of a line with no '{' after the first (so no nested object), that
    it parses into an object whose values are strings, integers, booleans or null:
    orjson and json agree on every such line (fuzzed), except that orjson turns
    integers beyond 64 bits into floats, which a float value catches. Not the
    default: the lab depends on the standard library only.
    """
    if os.environ.get("CKS_LAB_JSON") != "orjson":
        return None
    try:
        import orjson  # type: ignore[import-not-found]
    except ImportError:
        return None
    loads = orjson.loads
    plain = frozenset({str, int, bool, type(None)})

    def event(line: str) -> dict[str, Any] | None:
        if line.find("{", 1) >= 0:
            return None
        try:
            value = loads(line)
        except ValueError:  # orjson.JSONDecodeError is one
            return None
        if type(value) is not dict or not plain.issuperset(map(type, value.values())):
            return None
        return value

    return event


_TYPE_KEY = '"evt.type":"'
_TYPE_KEY_LEN = len(_TYPE_KEY)
_DIR_KEY = '"evt.dir":"'
_DIR_KEY_LEN = len(_DIR_KEY)


def _flush(write: Callable[[bytes], Any], out: list[str]) -> None:
    if out:
        write(("\n".join(out) + "\n").encode("utf-8", "replace"))
        out.clear()


# -- fields --------------------------------------------------------------------------


def render_fields(*, names_only: bool = False) -> str:
    """The field catalog as `falco --list` shows it: class by class, name, type, tags
    ([ARG_REQUIRED], [FILTER_ONLY] ...), description. Hidden fields are left out."""
    from lab.engines.falco.fields import field_classes

    out: list[str] = []
    for name, short, desc, fields in field_classes():
        shown = [f for f in fields if "hidden" not in f.flags]
        if names_only:
            out.extend(f.name for f in shown)
            continue
        title = f"{name} ({short})" if short else name
        out += ["-" * 31, f"{'Field Class:':<30}{title}", f"{'Description:':<30}{desc}", ""]
        for f in shown:
            tags = "".join(f"[{t}] " for t in f.tags)
            out.append(f"{f.name:<29} {f.type:<12} {tags}{f.desc}".rstrip())
        out.append("")
    return "\n".join(out) + "\n"
