"""The tools under `cks-lab falco`: rules files read safely, traces read line by line
with located errors, the replay loop (here on a stand-in ruleset: the engine's own
behaviour is tested with the engine)."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lab.engines.falco import tools
from lab.engines.falco.tools import (
    ReplayStats,
    parse_event,
    read_rules_file,
    replay,
    trace_blocks,
    trace_events,
)
from lab.errors import LabError

# Two events as sysdig -j prints them (keys sorted, compact), an enter and an exit.
OPEN_ENTER = {"evt.dir": ">", "evt.num": 179, "evt.type": "openat", "proc.name": "cat"}
OPEN_EXIT = {"evt.dir": "<", "evt.num": 180, "evt.type": "openat", "fd.name": "/etc/shadow",
             "evt.arg.flags": "O_RDONLY", "proc.aname[2]": None, "proc.name": "cat",
             "user.uid": 0}
EXECVE = {"evt.dir": "<", "evt.num": 181, "evt.type": "execve", "proc.name": "bash",
          "proc.tty": 34816, "container.id": "3ad7b26ded6d"}


def jsonl(*events: Any) -> bytes:
    return "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events).encode()


def located(fn: Any, *args: Any, **kwargs: Any) -> LabError:
    with pytest.raises(LabError) as info:
        fn(*args, **kwargs)
    return info.value


# -- rules files ---------------------------------------------------------------------


def test_rules_file_is_read_as_given(tmp_path: Path) -> None:
    f = tmp_path / "rules.yaml"
    f.write_text("- list: shells\n  items: [bash, sh]\n")
    assert read_rules_file(f) == (str(f), "- list: shells\n  items: [bash, sh]\n")


@pytest.mark.parametrize("data, message, line", [
    (b"- rule: a\n  desc: \x00\x01\n", "is a binary file, not a YAML rules file", 2),
    (b"\x1f\x8b\x08\x00gzip", "is a binary file, not a YAML rules file", 1),
    (b"- macro: m\n- list: l\n  items: [caf\xe9]\n", "is not UTF-8 text", 3),
])
def test_rules_file_that_is_not_text(tmp_path: Path, data: bytes, message: str,
                                     line: int) -> None:
    f = tmp_path / "rules.yaml"
    f.write_bytes(data)
    err = located(read_rules_file, f)
    assert (err.file, err.line, err.message) == (str(f), line, message)


def test_rules_file_size_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tools, "MAX_RULES_BYTES", 1024 * 1024)
    f = tmp_path / "big.yaml"
    f.write_bytes(b"#" * (1024 * 1024 + 1))
    assert located(read_rules_file, f).message == "is larger than 1 MiB: not a rules file"
    f.write_bytes(b"#" * (1024 * 1024))
    assert read_rules_file(f)[1] == "#" * (1024 * 1024)


def test_rules_file_must_be_a_regular_file(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):  # an OSError naming the file: one CLI line
        read_rules_file(tmp_path)
    assert located(read_rules_file, "/dev/null").message == "is not a regular file"


# -- trace lines ---------------------------------------------------------------------


def lines_of(data: bytes, **kw: Any) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for first, lines in trace_blocks(io.BytesIO(data), "t.jsonl", **kw):
        out.extend(enumerate(lines, first))
    return out


def test_line_numbers_across_small_blocks() -> None:
    data = b'{"a":1}\n\n{"b":2}\n{"c":3}'  # no final newline
    assert lines_of(data, block=5) == [(1, '{"a":1}'), (2, ""), (3, '{"b":2}'), (4, '{"c":3}')]
    assert lines_of(data) == lines_of(data, block=3)


def test_utf8_bom_and_crlf_are_accepted() -> None:
    data = b'\xef\xbb\xbf{"evt.type":"open"}\r\n{"evt.type":"close"}\r\n'
    assert [e for _, e in trace_events(io.BytesIO(data), "t")] == [
        {"evt.type": "open"}, {"evt.type": "close"}]


@pytest.mark.parametrize("data, line, message", [
    (b'{"a":1}\n{"a":2,}\n', 2, "not valid JSON: Expecting property name enclosed in double "
                               "quotes (column 8)"),
    (b'{"a":1}\n\n[1,2]\n', 3, "expected a JSON object (one event: Falco field -> value), "
                               "got an array"),
    (b'"open"\n', 1, "expected a JSON object (one event: Falco field -> value), got a string"),
    (b'{"proc.pid":NaN}\n', 1, "not valid JSON: NaN is not valid JSON"),
    (b'{"proc.pid":1e400}\n', 1, "not valid JSON: 1e400 is out of range for a number"),
    (b'{"a":1}\n{"a":2\n', 2, "not valid JSON: Expecting ',' delimiter (column 7)"),
    (b'{"a":1}\n{"evt.type":"op\xffen"}\n', 2, "not UTF-8 text"),
    (b'{"a":1}\n{"a":2}\n{"a":"\x00"}\n', 3, "binary data (a NUL byte), not JSON lines: "
     "convert a capture with `cks-lab falco import CAPTURE.scap -o TRACE.jsonl`"),
])
def test_bad_trace_lines_are_located(data: bytes, line: int, message: str) -> None:
    err = located(list, trace_events(io.BytesIO(data), "t.jsonl"))
    assert (err.file, err.line, err.message) == ("t.jsonl", line, message)
    assert str(err) == f"t.jsonl:{line}: {message}"


def test_nested_object_value_names_the_field() -> None:
    err = located(parse_event, '{"proc.name":"cat","fd.name":{"path":"/etc"}}', "t", 9)
    assert (err.line, err.item) == (9, "fd.name")
    assert "got an object" in err.message
    assert located(parse_event, '{"fd.types":["file",{"x":1}]}', "t", 1).item == "fd.types"
    # a list of scalars is a list field's value; braces inside strings are fine
    assert parse_event('{"a":["x",1],"proc.cmdline":"sh -c {x}"}', "t", 1) == {
        "a": ["x", 1], "proc.cmdline": "sh -c {x}"}
    assert parse_event("   ", "t", 1) is None


@pytest.mark.parametrize("head", [b"\x1f\x8b\x08\x00\x00\x00", b"\x0a\x0d\x0d\x0a\x00\x01"])
def test_a_capture_is_not_a_trace(head: bytes) -> None:
    err = located(list, trace_events(io.BytesIO(head + b"rest"), "c.scap"))
    assert err.message.startswith("is a binary file (a capture?), not a JSON-lines trace")
    assert "cks-lab falco import" in err.message and err.line is None


def test_huge_line_is_refused_without_reading_it_whole() -> None:
    class Endless(io.RawIOBase):
        """A stream of one line that never ends; reading it all would never finish."""

        read_bytes = 0

        def readable(self) -> bool:
            return True

        def readinto(self, b: Any) -> int:
            b[:] = b"x" * len(b)
            self.read_bytes += len(b)
            return len(b)

    stream = Endless()
    pre = b'{"a":1}\n' * 3
    data = io.BufferedReader(_Chain(pre, stream))  # type: ignore[arg-type]
    err = located(list, trace_events(data, "big.jsonl"))
    assert (err.line, err.message) == (4, f"line is longer than {tools.MAX_LINE_BYTES} bytes: "
                                          "not an event")
    assert stream.read_bytes < 4 * tools.MAX_LINE_BYTES


class _Chain(io.RawIOBase):
    def __init__(self, head: bytes, tail: io.RawIOBase) -> None:
        self.head, self.tail = head, tail

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self.head:
            n = min(len(b), len(self.head))
            b[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        return self.tail.readinto(b)


def test_long_line_inside_a_block_is_found_too() -> None:
    data = b'{"a":1}\n' + b'{"b":"' + b"y" * 100 + b'"}\n{"c":3}\n'
    err = located(lines_of, data, max_line=50, block=1 << 16)
    assert err.line == 2


# -- replay --------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeAlert:
    rule: str
    priority: str
    output: str

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "priority": self.priority, "output": self.output,
                "output_fields": {"proc.name": "cat", "fd.name": None}, "tags": []}

    def to_text(self) -> str:
        return f"00:00:00.000000000: {self.priority} {self.output}"


class FakeRuleset:
    """Watches openat and execve; alerts when proc.name is cat (twice for /etc/shadow,
    as with rule_matching all)."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.hostnames: set[str] = set()

    def rules_for(self, evt_type: str) -> list[str]:
        return ["Cat anything", "Read shadow"] if evt_type in ("openat", "execve") else []

    def process(self, event: dict[str, Any], *, hostname: str = "localhost",
                default_time: str | None = None) -> list[FakeAlert]:
        self.seen.append(event)
        self.hostnames.add(hostname)
        if event.get("proc.name") != "cat":
            return []
        alerts = [FakeAlert("Cat anything", "Notice", f"cat ran ({event['evt.num']})")]
        if event.get("fd.name") == "/etc/shadow":
            alerts.append(FakeAlert("Read shadow", "Warning", "shadow read"))
        return alerts


def run_replay(data: bytes, **kw: Any) -> tuple[ReplayStats, str, FakeRuleset]:
    rs = FakeRuleset()
    out = io.BytesIO()
    stats = replay(rs, io.BytesIO(data), "t.jsonl", out.write, **kw)  # type: ignore[arg-type]
    return stats, out.getvalue().decode(), rs


def test_replay_text_skips_enter_events_and_counts_by_rule() -> None:
    stats, out, rs = run_replay(jsonl(OPEN_ENTER, OPEN_EXIT, EXECVE) + b"\n")
    assert out == ("00:00:00.000000000: Notice cat ran (180)\n"
                   "00:00:00.000000000: Warning shadow read\n")
    assert [e["evt.num"] for e in rs.seen] == [180, 181]  # the enter event never reaches rules
    assert (stats.events, stats.enter_events, stats.alerts) == (3, 1, 2)
    assert stats.summary("t.jsonl") == (
        "t.jsonl: 3 events (1 enter events skipped), 2 alerts (Cat anything: 1, Read shadow: 1)")


def test_replay_json_is_compact_sorted_falco_json() -> None:
    _, out, rs = run_replay(jsonl(OPEN_EXIT), as_json=True, hostname="node-1")
    first = out.splitlines()[0]
    assert first == ('{"output":"cat ran (180)","output_fields":{"fd.name":null,'
                     '"proc.name":"cat"},"priority":"Notice","rule":"Cat anything","tags":[]}')
    assert rs.hostnames == {"node-1"}


def test_replay_no_alerts_summary() -> None:
    stats, out, _ = run_replay(jsonl(EXECVE, EXECVE))
    assert out == "" and stats.summary("x") == "x: 2 events, no alerts"
    assert ReplayStats(1, 0, 1, __import__("collections").Counter({"r": 1})).summary("x") == (
        "x: 1 events, 1 alert (r: 1)")


def test_replay_stops_at_a_bad_line_with_earlier_alerts_out() -> None:
    rs = FakeRuleset()
    out = io.BytesIO()
    data = jsonl(OPEN_EXIT, EXECVE) + b'{"evt.type": oops}\n' + jsonl(OPEN_EXIT)
    with pytest.raises(LabError) as info:
        replay(rs, io.BytesIO(data), "t.jsonl", out.write)  # type: ignore[arg-type]
    assert str(info.value).startswith("t.jsonl:3: not valid JSON")
    # the alerts of lines 1-2 are out, whole lines only; line 4 was never run
    assert out.getvalue().decode().splitlines() == [
        "00:00:00.000000000: Notice cat ran (180)", "00:00:00.000000000: Warning shadow read"]
    assert len(rs.seen) == 2


def test_replay_non_object_and_nested_value_are_located() -> None:
    for bad, item in ((b"[1]\n", None), (b'{"fd.name":{"x":1}}\n', "fd.name")):
        with pytest.raises(LabError) as info:
            run_replay(jsonl(EXECVE) + bad)
        assert (info.value.line, info.value.item) == (2, item)


def test_replay_streams_a_pipe_as_lines_arrive() -> None:
    """read1: each write of the producer is replayed at once, not a 256 KiB block later."""

    class Pipe(io.RawIOBase):
        def __init__(self, chunks: list[bytes]) -> None:
            self.chunks = chunks
            self.reads = 0

        def readable(self) -> bool:
            return True

        def readinto(self, b: Any) -> int:
            if not self.chunks:
                return 0
            c = self.chunks.pop(0)
            b[: len(c)] = c
            self.reads += 1
            return len(c)

    pipe = Pipe([jsonl(OPEN_EXIT), jsonl(EXECVE), jsonl(OPEN_EXIT)])
    writes: list[bytes] = []
    stats = replay(FakeRuleset(), io.BufferedReader(pipe), "-",  # type: ignore[arg-type]
                   writes.append)
    assert stats.events == 3
    assert len(writes) == 2  # one write per chunk that raised alerts


def test_output_that_is_not_utf8_safe_never_crashes() -> None:
    # a lone surrogate escape is valid JSON but cannot be written as UTF-8
    class Echo(FakeRuleset):
        def process(self, event: dict[str, Any], **kw: Any) -> list[FakeAlert]:
            return [FakeAlert("r", "Notice", event["proc.name"])]

    out = io.BytesIO()
    line = b'{"evt.type":"execve","proc.name":"a\\ud800b"}\n'
    replay(Echo(), io.BytesIO(line), "t",  # type: ignore[arg-type]
           out.write)
    assert out.getvalue() == b"00:00:00.000000000: Notice a?b\n"


def test_events_no_rule_watches_are_counted_not_run() -> None:
    read_by_cat = {"evt.dir": "<", "evt.type": "read", "proc.name": "cat", "fd.num": 3}
    enter = {"evt.dir": ">", "evt.type": "close", "fd.num": 3}
    stats, out, rs = run_replay(jsonl(read_by_cat, enter, OPEN_EXIT, {**OPEN_ENTER}))
    assert [e["evt.num"] for e in rs.seen] == [180]
    assert (stats.events, stats.enter_events, stats.alerts) == (4, 2, 2)


@pytest.mark.parametrize("line, outcome", [
    # only the type is read from a line of a type no rule watches: it must look like an object
    (b'{"evt.type":"read","fd.num":3,,}', "skipped"),
    (b'[{"evt.type":"read"}]', "error"),
    (b'{"evt.type":"read"} x', "error"),
    (b'{"evt.type":"read","fd.num":3', "error"),
    # the last key wins, as in JSON; an escape in the type means a full parse
    (b'{"evt.type":"read","evt.type":"openat","proc.name":"cat","evt.num":1}', "run"),
    (b'{"evt.type":"op\\u0065nat","proc.name":"cat","evt.num":1}', "run"),
])
def test_fast_path_boundaries(line: bytes, outcome: str) -> None:
    if outcome == "error":
        assert located(run_replay, line + b"\n").line == 1
        return
    stats, _, rs = run_replay(line + b"\n")
    assert stats.events == 1
    assert [e["evt.type"] for e in rs.seen] == ([] if outcome == "skipped" else ["openat"])


def test_process_sees_the_parsed_event_whole() -> None:
    _, _, rs = run_replay(jsonl(EXECVE))
    assert rs.seen == [EXECVE]
