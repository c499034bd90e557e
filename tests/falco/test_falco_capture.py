"""`cks-lab falco import`: the sysdig command we build, how its output becomes a trace,
and its failures. sysdig itself is stood in for by a runner that prints what sysdig
prints (samples written here, in sysdig -j's shape); the real conversion runs when
sysdig is installed and a capture is at hand."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path
from typing import IO

import pytest

from lab.engines.falco import capture
from lab.engines.falco.capture import (
    TRACE_FIELDS,
    import_capture,
    listed_fields,
    plan_fields,
    refused_field,
    sysdig_command,
)
from lab.errors import LabError

# The shape of `sysdig --list`: a class header, then "name   description" lines,
# descriptions wrapped onto indented lines.
LIST_SAMPLE = """\
-------------------------------
Field Class:                  evt (All event types)
Description:                  Fields for every event.

evt.num                       event number.
evt.type                      The name of the event (e.g. 'open').
evt.dir                       event direction, '>' enter or '<' exit.
evt.arg                       one of the event arguments specified by name or by number. Some
                              events have many.
-------------------------------
Field Class:                  fd (File Descriptors)

fd.name                       FD full name.
fd.net                        (FILTER ONLY) matches the IP network of the fd.
proc.aname                    the name of one of the process ancestors.
"""

# sysdig -j -p '*%evt.num %evt.type %evt.dir %fd.name' on three syscalls: keys sorted,
# compact, null where a field is not available.
SYSDIG_OUT = (
    b'{"evt.dir":">","evt.num":10,"evt.type":"openat","fd.name":null}\n'
    b'{"evt.dir":"<","evt.num":11,"evt.type":"openat","fd.name":"/etc/shadow"}\n'
    b'{"evt.dir":"<","evt.num":12,"evt.type":"execve","fd.name":null}\n'
)


class FakeSysdig:
    """A runner: `--list` prints LIST_SAMPLE, a read prints `out` (or fails)."""

    def __init__(self, out: bytes = SYSDIG_OUT, code: int = 0, err: bytes = b"",
                 refuse: tuple[str, ...] = (), list_out: str | None = LIST_SAMPLE) -> None:
        self.out, self.code, self.err = out, code, err
        self.refuse = list(refuse)  # fields it rejects at startup, one per run
        self.list_out = list_out
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str], stdout: IO[bytes], stderr: IO[bytes]) -> int:
        self.calls.append(argv)
        if argv[1] == "--list":
            if self.list_out is None:
                return 1
            stdout.write(self.list_out.encode())
            return 0
        fmt = argv[argv.index("-p") + 1]
        for f in self.refuse:
            if f"%{f} " in fmt + " ":
                stderr.write(f"unknown event argument {f.removeprefix('evt.arg.')}\n".encode()
                             if f.startswith("evt.arg.") else
                             f"invalid formatting token {f}\n".encode())
                return 1
        stdout.write(self.out)
        stderr.write(self.err)
        return self.code


@pytest.fixture
def scap(tmp_path: Path) -> Path:
    f = tmp_path / "attack.scap"
    f.write_bytes(b"\x1f\x8b stand-in")  # never read: the runner is fake
    return f


def test_command_is_an_argv_with_exit_events_only() -> None:
    argv = sysdig_command("/usr/bin/sysdig", "a b.scap", ["evt.num", "proc.aname[2]"])
    assert argv == ["/usr/bin/sysdig", "-r", "a b.scap", "-j", "-p",
                    "*%evt.num %proc.aname[2]", "evt.dir=<"]
    with_filter = sysdig_command("sysdig", "x.scap", ["evt.num"], "proc.name=cat or fd.num=3")
    assert with_filter[-1] == "evt.dir=< and (proc.name=cat or fd.num=3)"


def test_list_parsing_separates_filter_only_fields() -> None:
    printable, filter_only = listed_fields(LIST_SAMPLE)
    assert printable == {"evt.num", "evt.type", "evt.dir", "evt.arg", "fd.name", "proc.aname"}
    assert filter_only == {"fd.net"}


def test_plan_keeps_listed_fields_arguments_and_evt_args() -> None:
    printable, _ = listed_fields(LIST_SAMPLE)
    kept, dropped = plan_fields(
        ["evt.num", "proc.aname[3]", "evt.arg.flags", "fd.net", "fs.path.name", "evt.num"],
        printable)
    assert kept == ["evt.num", "proc.aname[3]", "evt.arg.flags"]
    assert dropped == ["fd.net", "fs.path.name"]


@pytest.mark.parametrize("stderr, field", [
    ("unknown event argument bogus\n", "evt.arg.bogus"),
    ("invalid formatting token fs.path.name\n", "fs.path.name"),
    ("fd.net is filter only and cannot be used as a display field\n", "fd.net"),
    ("can't open file x.scap\n", None),
])
def test_refused_field(stderr: str, field: str | None) -> None:
    assert refused_field(stderr) == field


@pytest.mark.parametrize("stderr, message", [
    # positions are counted in the user's filter, not in the one sysdig was given
    ("filter error at position 23: filter error: unrecognized field proc.nme at pos 15\n",
     "filter error at position 8: filter error: unrecognized field proc.nme at pos 0"),
    ("filter error at position 58: expression mixes 'and' and 'or' in an ambiguous way. "
     "Please use brackets.\n", "filter error at position 43: expression mixes 'and' and 'or' "
     "in an ambiguous way. Please use brackets."),
    ("can't open file x.scap\n", None),
])
def test_filter_error(stderr: str, message: str | None) -> None:
    assert capture.filter_error(stderr) == message


def test_trace_fields_are_field_names() -> None:
    capture.check_field_names(TRACE_FIELDS)
    assert len(set(TRACE_FIELDS)) == len(TRACE_FIELDS)
    for needed in ("evt.type", "evt.dir", "proc.name", "proc.aname[2]", "fd.name",
                   "evt.arg.flags", "container.id", "k8s.pod.name", "evt.time", "proc.tty"):
        assert needed in TRACE_FIELDS


def test_import_writes_exit_events_as_sysdig_printed_them(scap: Path, tmp_path: Path) -> None:
    runner = FakeSysdig()
    out = tmp_path / "trace.jsonl"
    result = import_capture(scap, out, sysdig="sysdig", runner=runner)
    assert out.read_bytes() == SYSDIG_OUT.split(b"\n", 1)[1]  # the enter event is gone
    assert result.events == 2 and result.replaced == 0
    # only fields `sysdig --list` knows (and evt.arg.*) are asked for; the rest reported
    read = runner.calls[-1]
    fmt = read[read.index("-p") + 1]
    assert fmt.startswith("*%evt.num %evt.type %evt.dir ")
    assert "%evt.arg.flags" in fmt and "%proc.aname[2]" in fmt and "%proc.name" not in fmt
    assert "proc.name" in result.dropped and "evt.num" not in result.dropped
    assert read[-1] == "evt.dir=<" and read[1:3] == ["-r", str(scap)]
    assert oct(out.stat().st_mode & 0o777) == "0o644"


def test_refused_argument_is_dropped_and_sysdig_rerun(scap: Path, tmp_path: Path) -> None:
    runner = FakeSysdig(refuse=("evt.arg.cwd", "evt.arg.exe"))
    result = import_capture(scap, tmp_path / "t.jsonl", sysdig="sysdig", runner=runner)
    assert result.events == 2
    assert {"evt.arg.cwd", "evt.arg.exe"} <= set(result.dropped)
    assert "evt.arg.cwd" not in result.fields
    assert len(runner.calls) == 4  # --list, two refusals, the run that worked


def test_a_field_the_user_asked_for_is_never_dropped(scap: Path, tmp_path: Path) -> None:
    with pytest.raises(LabError) as info:
        import_capture(scap, tmp_path / "t.jsonl", extra_fields=["thread.nope"],
                       sysdig="sysdig", runner=FakeSysdig())
    assert info.value.item == "--field" and "'thread.nope'" in info.value.message
    # without a --list to check against, sysdig's own refusal is the error
    with pytest.raises(LabError) as info:
        import_capture(scap, tmp_path / "t.jsonl", extra_fields=["evt.arg.nope"],
                       sysdig="sysdig", runner=FakeSysdig(list_out=None,
                                                          refuse=("evt.arg.nope",)))
    assert "unknown event argument nope" in str(info.value)
    assert not (tmp_path / "t.jsonl").exists()


@pytest.mark.parametrize("name", ["proc.name; rm -rf /", "%proc.name", "proc.aname[2", ""])
def test_field_names_are_checked_before_sysdig_sees_them(scap: Path, name: str) -> None:
    runner = FakeSysdig()
    with pytest.raises(LabError, match="not a field name"):
        import_capture(scap, None, extra_fields=[name], sysdig="sysdig", runner=runner,
                       write_stdout=lambda b: None)
    assert runner.calls == []


def test_sysdig_failure_writes_nothing(scap: Path, tmp_path: Path) -> None:
    out = tmp_path / "trace.jsonl"
    out.write_text("the previous trace\n")
    runner = FakeSysdig(out=SYSDIG_OUT, code=1, err=b"Could not initialize reader: expecting "
                        b"93 bytes, read 78. Is the file truncated?\n")
    with pytest.raises(LabError) as info:
        import_capture(scap, out, sysdig="sysdig", runner=runner)
    assert str(info.value) == (f"{scap}: sysdig could not read it: Could not initialize reader: "
                               "expecting 93 bytes, read 78. Is the file truncated?")
    assert out.read_text() == "the previous trace\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_sysdig_printing_non_json_is_an_error_and_no_file(scap: Path, tmp_path: Path) -> None:
    out = tmp_path / "trace.jsonl"
    runner = FakeSysdig(out=SYSDIG_OUT + b"Events dropped: 3\n")
    with pytest.raises(LabError, match="output line 4"):
        import_capture(scap, out, sysdig="sysdig", runner=runner)
    assert not out.exists() and list(tmp_path.iterdir()) == [scap]


def test_bytes_that_are_not_utf8_become_replacement_characters(scap: Path,
                                                                 tmp_path: Path) -> None:
    raw = b'{"evt.dir":"<","evt.num":5,"evt.type":"openat","fd.name":"/tmp/caf\xe9"}\n'
    out = tmp_path / "t.jsonl"
    result = import_capture(scap, out, sysdig="sysdig", runner=FakeSysdig(out=raw))
    assert result.replaced == 1
    assert json.loads(out.read_text(encoding="utf-8"))["fd.name"] == "/tmp/caf\ufffd"


def test_output_folder_must_exist(scap: Path, tmp_path: Path) -> None:
    runner = FakeSysdig()
    with pytest.raises(LabError) as info:
        import_capture(scap, tmp_path / "no" / "t.jsonl", sysdig="sysdig", runner=runner)
    assert str(info.value) == f"{tmp_path / 'no' / 't.jsonl'}: no such folder to write the trace in"
    assert runner.calls == []


def test_stdout_output(scap: Path) -> None:
    chunks: list[bytes] = []
    result = import_capture(scap, None, sysdig="sysdig", runner=FakeSysdig(),
                            write_stdout=chunks.append)
    assert b"".join(chunks).count(b"\n") == result.events == 2


def test_missing_capture_and_missing_sysdig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            scap: Path) -> None:
    with pytest.raises(LabError) as info:
        import_capture(tmp_path / "nope.scap", tmp_path / "t.jsonl", sysdig="sysdig",
                       runner=FakeSysdig())
    assert str(info.value) == f"{tmp_path / 'nope.scap'}: no such file"
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LabError) as info:
        import_capture(scap, tmp_path / "t.jsonl", runner=FakeSysdig())
    assert str(info.value).startswith("sysdig is not installed")
    assert "apt install sysdig" in str(info.value)


def test_a_capture_named_like_an_option_stays_a_file(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    runner = FakeSysdig()
    monkeypatch.chdir(tmp_path)
    Path("-w.scap").write_bytes(b"x")
    import_capture("-w.scap", tmp_path / "t.jsonl", sysdig="sysdig", runner=runner)
    assert runner.calls[-1][1:3] == ["-r", "./-w.scap"]


# -- the real sysdig -----------------------------------------------------------------

SYSDIG = shutil.which("sysdig")
needs_sysdig = pytest.mark.skipif(SYSDIG is None, reason="sysdig is not installed")


def tiny_capture(path: Path) -> None:
    """A three-event capture in the scap file format, written here (sysdig cannot record
    one without its kernel driver): `cat /etc/shadow` run in a container.

    The format: a section header block, then one block per event. A block is
    type (u32), total length (u32), body padded to 4 bytes, total length again. An
    event block (0x204) holds the cpu (u16), then the event header - timestamp (u64),
    thread id (u64), length (u32), type (u16) - then each parameter's length (u16),
    then the parameters. Types: 231 execve exit (16 parameters, the oldest layout
    libscap still reads), 2 open enter (none), 3 open exit (fd, name, flags, mode).
    """

    def block(kind: int, body: bytes) -> bytes:
        body += bytes(-len(body) % 4)
        return struct.pack("<II", kind, len(body) + 12) + body + struct.pack("<I", len(body) + 12)

    def event(ts: int, tid: int, kind: int, params: list[bytes]) -> bytes:
        lengths = b"".join(struct.pack("<H", len(p)) for p in params)
        size = 22 + len(lengths) + sum(map(len, params))
        return block(0x204, struct.pack("<HQQIH", 0, ts, tid, size, kind) + lengths
                     + b"".join(params))

    def i64(v: int) -> bytes:
        return struct.pack("<q", v)

    def u32(v: int) -> bytes:
        return struct.pack("<I", v)

    def strs(*values: str) -> bytes:
        return b"".join(v.encode() + b"\0" for v in values)

    cgroup = "/docker/3ad7b26ded6d" + "0" * 52
    execve = [i64(0), strs("cat"), strs("/etc/shadow"), i64(4242), i64(4242), i64(100),
              strs("/root"), i64(1024), i64(0), i64(0), u32(100), u32(4), u32(0), strs("cat"),
              strs(f"cpuset={cgroup}", f"cpu={cgroup}"), strs("HOME=/root", "TERM=xterm")]
    t0 = 1_700_000_000_000_000_000
    path.write_bytes(
        block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 1, -1))
        + event(t0, 4242, 231, execve)
        + event(t0 + 1000, 4242, 2, [])
        + event(t0 + 2000, 4242, 3, [i64(3), strs("/etc/shadow"), u32(1), u32(0)])
    )


@needs_sysdig
def test_real_sysdig_lists_every_trace_field_it_is_asked_for() -> None:
    out = subprocess.run([str(SYSDIG), "--list"], capture_output=True, text=True, check=True)
    printable, filter_only = listed_fields(out.stdout)
    assert {"evt.num", "evt.type", "proc.name", "fd.name", "evt.arg", "proc.aname"} <= printable
    assert "fd.net" in filter_only
    kept, _ = plan_fields(TRACE_FIELDS, printable)
    assert len(kept) > 60


@needs_sysdig
def test_real_capture_converts(tmp_path: Path) -> None:
    scap, out = tmp_path / "cat.scap", tmp_path / "trace.jsonl"
    tiny_capture(scap)
    result = import_capture(scap, out)
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert result.events == len(events) == 2  # the open enter event is dropped
    assert all(set(e) == set(result.fields) for e in events)
    execve, opened = events
    assert (execve["evt.type"], execve["evt.dir"], execve["proc.name"], execve["proc.cmdline"],
            execve["proc.ppid"], execve["container.id"]) == (
        "execve", "<", "cat", "cat /etc/shadow", 100, "3ad7b26ded6d")
    assert (opened["evt.type"], opened["fd.name"], opened["evt.arg.flags"],
            opened["evt.is_open_read"], opened["proc.name"], opened["evt.rawtime"]) == (
        "open", "/etc/shadow", "O_RDONLY", True, "cat", 1_700_000_000_000_002_000)
    assert opened["proc.aname[2]"] is None  # not available: null, as sysdig prints it


@needs_sysdig
def test_real_sysdig_filter_and_truncated_capture(tmp_path: Path) -> None:
    scap = tmp_path / "cat.scap"
    tiny_capture(scap)
    chunks: list[bytes] = []
    result = import_capture(scap, None, condition="evt.type=open", write_stdout=chunks.append)
    assert result.events == 1 and b'"fd.name":"/etc/shadow"' in b"".join(chunks)
    with pytest.raises(LabError) as info:
        import_capture(scap, None, condition="proc.nme=cat", write_stdout=chunks.append)
    assert info.value.item == "--filter"
    assert info.value.message.startswith("sysdig refused the filter: filter error at position ")
    assert info.value.message.endswith("unrecognized field proc.nme at pos 0")
    scap.write_bytes(scap.read_bytes()[:-10])
    with pytest.raises(LabError, match="sysdig could not read it: .*"):
        import_capture(scap, tmp_path / "t.jsonl")
    assert not (tmp_path / "t.jsonl").exists()


@needs_sysdig
def test_real_capture_imported_then_replayed_by_the_cli(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from lab.cli import main

    monkeypatch.chdir(tmp_path)
    tiny_capture(tmp_path / "cat.scap")
    (tmp_path / "rules.yaml").write_text(
        "- rule: Shadow read in container\n  desc: d\n"
        "  condition: evt.type in (open, openat) and fd.name = /etc/shadow and "
        "container.id != host\n"
        "  output: shadow read (proc=%proc.name cmd=%proc.cmdline container=%container.id)\n"
        "  priority: WARNING\n")
    r = CliRunner().invoke(main, ["falco", "import", "cat.scap", "-o", "cat.jsonl"])
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "" and r.stderr.splitlines()[-1].startswith("cat.jsonl: 2 events, ")
    r = CliRunner().invoke(main, ["falco", "replay", "-r", "rules.yaml", "cat.jsonl", "-q"])
    assert (r.exit_code, r.stdout) == (0, "22:13:20.000002000: Warning shadow read (proc=cat "
                                          "cmd=cat /etc/shadow container=3ad7b26ded6d)\n")
