"""Real captures -> traces: `sysdig -r CAPTURE.scap -j -p '*%evt.num %evt.type ...'`.

sysdig (Debian's package) reads the capture with the same libs Falco uses and
prints one JSON object per event, keyed by field name; that is the trace format
`cks-lab falco replay` reads. We run it without a shell, keep exit events only
(Falco >= 0.42 skips enter events), check every line is an event, and write the
trace whole or not at all.

Fields: TRACE_FIELDS, the ones Falco rules and outputs use (the official ruleset's
and the lab's), less those the installed sysdig does not know (`sysdig --list`,
and its startup error for an unknown argument name): a field left out is "not
available" to every rule, as it would be on a Falco without it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from lab.errors import LabError

TRACE_FIELDS: tuple[str, ...] = (
    # the event
    "evt.num", "evt.time", "evt.rawtime", "evt.type", "evt.dir", "evt.res", "evt.rawres",
    "evt.failed", "evt.args", "evt.is_open_read", "evt.is_open_write", "evt.is_open_exec",
    "evt.is_open_create", "evt.hostname", "evt.source", "syscall.type",
    # its arguments, by the names rules use
    "evt.arg.flags", "evt.arg.name", "evt.arg.path", "evt.arg.pathname", "evt.arg.filename",
    "evt.arg.oldpath", "evt.arg.newpath", "evt.arg.target", "evt.arg.linkpath", "evt.arg.fd",
    "evt.arg.dirfd", "evt.arg.res", "evt.arg.uid", "evt.arg.gid", "evt.arg.mode",
    "evt.arg.request", "evt.arg.cmd", "evt.arg.domain", "evt.arg.type", "evt.arg.pid",
    "evt.arg.sig", "evt.arg.tuple", "evt.arg.exe", "evt.arg.args", "evt.arg.cwd",
    # the process and its ancestors
    "proc.pid", "proc.ppid", "proc.vpid", "proc.sid", "proc.vpgid", "proc.name", "proc.exe",
    "proc.exepath", "proc.cmdline", "proc.args", "proc.cwd", "proc.tty", "proc.env",
    "proc.pname", "proc.pexe", "proc.pexepath", "proc.pcmdline", "proc.sname",
    "proc.aname[2]", "proc.aname[3]", "proc.aname[4]", "proc.aname[5]", "proc.aname[6]",
    "proc.aname[7]", "proc.aexepath[2]", "proc.loginshellid", "proc.is_sid_leader",
    "proc.is_vpgid_leader", "proc.is_exe_writable", "proc.is_exe_upper_layer",
    "proc.is_exe_from_memfd", "proc.is_container_healthcheck",
    "proc.is_container_liveness_probe", "proc.is_container_readiness_probe",
    "thread.tid", "thread.vtid", "thread.cap_permitted", "thread.cap_effective",
    # who
    "user.uid", "user.name", "user.loginuid", "user.loginname", "group.gid", "group.name",
    # the file descriptor
    "fd.num", "fd.type", "fd.typechar", "fd.name", "fd.nameraw", "fd.directory", "fd.filename",
    "fd.cip", "fd.sip", "fd.lip", "fd.rip", "fd.cport", "fd.sport", "fd.lport", "fd.rport",
    "fd.l4proto", "fd.sockfamily", "fd.is_server", "fd.connected", "fd.name_changed",
    "fs.path.name", "fs.path.source", "fs.path.target",
    # where: container and Kubernetes
    "container.id", "container.name", "container.image", "container.image.id",
    "container.image.repository", "container.image.tag", "container.type",
    "container.privileged", "container.start_ts",
    "k8s.ns.name", "k8s.pod.name", "k8s.pod.uid", "k8s.pod.labels",
)

# What sysdig says at startup about a field it cannot print; group 1 is the token.
_FIELD_REFUSALS = (
    re.compile(r"unknown event argument (\S+)"),
    re.compile(r"invalid formatting token (\S+)"),
    re.compile(r"(\S+) is filter only"),
)
_NAME = re.compile(r"([a-z][a-z0-9_]*(?:\.[a-zA-Z0-9_]+)+)(?=\s|\[|$)")
_FIELD = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-zA-Z0-9_]+)+(?:\[[^\]\s%]+\])?")

INSTALL_HINT = "install it (Debian, Ubuntu: apt install sysdig)"
_EXIT_AND = "evt.dir=< and ("  # the user's --filter goes after this, then ")"


@dataclass
class ImportResult:
    events: int  # exit events written
    fields: list[str]  # the fields each line has
    dropped: list[str] = field(default_factory=list)  # asked for, unknown to this sysdig
    replaced: int = 0  # lines where bytes that were not UTF-8 became U+FFFD


def find_sysdig() -> str:
    exe = shutil.which("sysdig")
    if exe is None:
        raise LabError(f"sysdig is not installed: `cks-lab falco import` runs it to read the "
                       f"capture; {INSTALL_HINT}")
    return exe


def sysdig_command(
    sysdig: str, capture: str, fields: Sequence[str], condition: str | None = None
) -> list[str]:
    """The argv (never a shell line) that prints the capture's exit events as JSON lines.

    "*" prints an event even when some fields are not available for it (as null).
    """
    fmt = "*" + " ".join(f"%{f}" for f in fields)
    keep = "evt.dir=<" if not condition else f"{_EXIT_AND}{condition})"
    return [sysdig, "-r", capture, "-j", "-p", fmt, keep]


def filter_error(stderr: str) -> str | None:
    """sysdig's complaint about the user's --filter, positions counted in it, or None."""
    line = _last_line(stderr, 1)
    if "filter error" not in line and "Please use brackets" not in line:
        return None
    return re.sub(r"(at pos(?:ition)? )(\d+)",
                  lambda m: f"{m.group(1)}{max(int(m.group(2)) - len(_EXIT_AND), 0)}", line)


def listed_fields(list_output: str) -> tuple[set[str], set[str]]:
    """(printable, filter-only) field names in `sysdig --list` output."""
    printable: set[str] = set()
    filter_only: set[str] = set()
    for line in list_output.splitlines():
        m = _NAME.match(line)
        if m:
            rest = line[m.end():]
            (filter_only if "(FILTER ONLY)" in rest else printable).add(m.group(1))
    return printable, filter_only


def _base(name: str) -> str:
    """The name `sysdig --list` shows a field by: no [argument], evt.arg.X -> evt.arg."""
    base = name.split("[", 1)[0]
    return "evt.arg" if base.startswith("evt.arg.") else base


def plan_fields(wanted: Iterable[str], printable: set[str]) -> tuple[list[str], list[str]]:
    """(kept, dropped): a field is kept when sysdig lists it; evt.arg.X when it lists
    evt.arg (the argument's name is only checked when sysdig starts)."""
    kept: list[str] = []
    dropped: list[str] = []
    for f in dict.fromkeys(wanted):
        (kept if _base(f) in printable else dropped).append(f)
    return kept, dropped


def refused_field(stderr: str) -> str | None:
    """The field sysdig refused at startup, if that is why it failed."""
    for pattern in _FIELD_REFUSALS:
        m = pattern.search(stderr)
        if m:
            # sysdig names an unknown argument without its "evt.arg." prefix
            return ("evt.arg." if pattern is _FIELD_REFUSALS[0] else "") + m.group(1)
    return None


def check_field_names(names: Iterable[str]) -> None:
    for name in names:
        if not _FIELD.fullmatch(name):
            raise LabError(f"not a field name: {name!r} (e.g. proc.name, proc.aname[2], "
                           "evt.arg.flags)", item="--field")


Runner = Callable[[list[str], IO[bytes], IO[bytes]], int]


def _run(argv: list[str], stdout: IO[bytes], stderr: IO[bytes]) -> int:
    # No shell, no stdin; TZ=UTC so evt.time reads the same wherever it is converted.
    env = {**os.environ, "TZ": "UTC"}
    return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                          env=env, check=False).returncode


def import_capture(
    capture: str | os.PathLike[str],
    out: str | os.PathLike[str] | None,
    *,
    extra_fields: Sequence[str] = (),
    condition: str | None = None,
    sysdig: str | None = None,
    write_stdout: Callable[[bytes], object] | None = None,
    runner: Runner = _run,
) -> ImportResult:
    """Convert a capture to a trace at `out` (written whole or not at all).

    `out` None writes to `write_stdout` instead. `extra_fields` are printed too
    and must be known to sysdig (an error otherwise); of TRACE_FIELDS, those
    this sysdig does not know are dropped and reported.
    """
    check_field_names(extra_fields)
    capture_name = os.fspath(capture)
    if not os.path.isfile(capture):
        if not os.path.exists(capture):
            raise LabError("no such file", file=capture_name)
        raise LabError("is not a regular file", file=capture_name)
    if out is not None and not Path(out).resolve().parent.is_dir():
        raise LabError("no such folder to write the trace in", file=os.fspath(out))
    exe = sysdig or find_sysdig()
    printable = _printable_fields(exe, runner)
    if printable is not None:
        fields, dropped = plan_fields(TRACE_FIELDS, printable)
        unknown = [f for f in extra_fields if _base(f) not in printable]
        if unknown:
            raise LabError(f"sysdig does not know the field {unknown[0]!r} (`sysdig --list` "
                           "lists the fields it knows)", item="--field")
    else:
        fields, dropped = list(TRACE_FIELDS), []
    fields = list(dict.fromkeys([*fields, *extra_fields]))
    # sysdig names one field it cannot print per start: drop it and start again
    # (only ours: a field the user asked for is an error).
    for _ in range(len(fields) + 1):
        argv = sysdig_command(exe, _argv_path(capture_name), fields, condition)
        with tempfile.TemporaryFile() as raw, tempfile.TemporaryFile() as err:
            code = runner(argv, raw, err)
            err.seek(0)
            stderr = err.read(64 * 1024).decode("utf-8", "replace")
            if code != 0:
                bad = refused_field(stderr)
                if bad in fields and bad not in extra_fields:
                    fields.remove(bad)
                    dropped.append(bad)
                    continue
                bad_filter = filter_error(stderr) if condition else None
                if bad_filter:
                    raise LabError(f"sysdig refused the filter: {bad_filter}", item="--filter")
                raise LabError(f"sysdig could not read it: {_last_line(stderr, code)}",
                               file=capture_name)
            raw.seek(0)
            result = ImportResult(0, fields, dropped)
            if out is None:
                assert write_stdout is not None
                _convert(raw, write_stdout, result)
            else:
                _write_atomically(Path(out), raw, result)
            return result
    raise LabError("sysdig refused every field", file=capture_name)  # pragma: no cover


def _argv_path(path: str) -> str:
    # A path sysdig could read as an option is made unambiguous.
    return f"./{path}" if path.startswith("-") else path


def _printable_fields(exe: str, runner: Runner) -> set[str] | None:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        if runner([exe, "--list"], out, err) != 0:
            return None
        out.seek(0)
        printable, _ = listed_fields(out.read().decode("utf-8", "replace"))
    return printable or None


def _last_line(stderr: str, code: int) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    return lines[-1] if lines else f"exit status {code}, nothing on stderr"


def _convert(raw: IO[bytes], write: Callable[[bytes], object], result: ImportResult) -> None:
    """sysdig's lines -> trace lines: each one a JSON object, exit events only."""
    batch: list[bytes] = []
    for number, line in enumerate(raw, 1):
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            # sysdig copies a file name's bytes as they are; JSON wants UTF-8
            text = line.decode("utf-8", "replace")
            line = text.encode("utf-8")
            result.replaced += 1
        try:
            event = json.loads(text)
        except ValueError:
            raise LabError(f"sysdig printed something that is not a JSON event on its output "
                           f"line {number}: {text[:80].rstrip()!r}") from None
        if type(event) is not dict:
            raise LabError(f"sysdig printed a JSON {type(event).__name__}, not an event, on "
                           f"its output line {number}")
        if event.get("evt.dir") == ">":
            continue
        batch.append(line if line.endswith(b"\n") else line + b"\n")
        result.events += 1
        if len(batch) >= 4096:
            write(b"".join(batch))
            batch.clear()
    if batch:
        write(b"".join(batch))


def _write_atomically(path: Path, raw: IO[bytes], result: ImportResult) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            _convert(raw, fh.write, result)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
