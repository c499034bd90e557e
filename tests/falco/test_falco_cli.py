"""`cks-lab falco validate | replay | fields | import` as a learner and a CI job run them:
real rules files, real traces, exit codes, what goes to stdout and to stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from lab.cli import main

RULES = """\
- list: shell_binaries
  items: [bash, sh]

- macro: container
  condition: container.id != host

- rule: Shell in container
  desc: A shell started in a container.
  condition: evt.type = execve and container and proc.name in (shell_binaries)
  output: Shell in container (user=%user.name container=%container.id cmd=%proc.cmdline)
  priority: WARNING
  tags: [shell, container]

- rule: Shadow read
  desc: Someone read the password hashes.
  condition: evt.type in (open, openat) and fd.name = /etc/shadow
  output: Shadow read (proc=%proc.name file=%fd.name)
  priority: ERROR
  tags: [filesystem]

- rule: Opened by cat
  desc: Anything cat opens.
  condition: evt.type in (open, openat) and proc.name = cat
  output: cat opened %fd.name
  priority: NOTICE
"""

# Exit events as `sysdig -j` prints them, and one enter event.
EVENTS = [
    {"container.id": "3ad7b26ded6d", "evt.dir": "<", "evt.num": 10, "evt.rawtime":
     1700000000000000000, "evt.type": "execve", "proc.cmdline": "bash", "proc.name": "bash",
     "user.name": "root"},
    {"container.id": "host", "evt.dir": "<", "evt.num": 12, "evt.type": "execve",
     "proc.cmdline": "bash -l", "proc.name": "bash", "user.name": "me"},
    {"evt.dir": ">", "evt.num": 13, "evt.type": "openat", "proc.name": "cat"},
    {"container.id": "3ad7b26ded6d", "evt.dir": "<", "evt.num": 14, "evt.rawtime":
     1700000000000002000, "evt.type": "openat", "fd.name": "/etc/shadow", "proc.name": "cat"},
    {"container.id": "3ad7b26ded6d", "evt.dir": "<", "evt.num": 15, "evt.type": "read",
     "fd.name": "/etc/shadow", "proc.name": "cat"},
]


def run(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args), input=stdin)
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    Path("rules.yaml").write_text(RULES)
    Path("trace.jsonl").write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    return tmp_path


# -- validate ------------------------------------------------------------------------


def test_validate_ok(files: Path) -> None:
    assert run("falco", "validate", "rules.yaml") == (0, "rules.yaml: Ok\n", "")


def test_validate_loads_files_in_order_into_one_engine(files: Path) -> None:
    # the second file uses the first's macro: fine in this order, an error alone
    Path("local.yaml").write_text(
        "- rule: Shell on host\n  desc: d\n  condition: evt.type = execve and not container\n"
        "  output: o\n  priority: INFO\n")
    code, out, _ = run("falco", "validate", "rules.yaml", "local.yaml")
    assert (code, out) == (0, "rules.yaml: Ok\nlocal.yaml: Ok\n")
    code, out, _ = run("falco", "validate", "local.yaml")
    lines = out.splitlines()
    assert code == 1 and lines[0] == "local.yaml: Invalid"
    assert lines[1].startswith("local.yaml:") and " rule 'Shell on host': LOAD_ERR_" in lines[1]
    assert lines[1].endswith(": Undefined macro 'container' used in filter.")


def test_validate_warnings_still_load(files: Path) -> None:
    Path("warn.yaml").write_text(RULES.replace("  tags: [filesystem]\n",
                                               "  tags: [filesystem]\n  severity: high\n"))
    code, out, _ = run("falco", "validate", "warn.yaml")
    lines = out.splitlines()
    assert code == 0 and lines[0] == "warn.yaml: Ok, with warnings"
    assert len(lines) == 2 and lines[1].startswith("warn.yaml:")
    assert "LOAD_UNKNOWN_KEY" in lines[1] and "severity" in lines[1]


def test_validate_a_falco_yaml_gets_a_hint(files: Path) -> None:
    Path("falco.yaml").write_text("rules_files:\n  - /etc/falco/falco_rules.yaml\n"
                                  "json_output: true\n")
    code, out, _ = run("falco", "validate", "falco.yaml")
    assert code == 1 and out.startswith("falco.yaml: Invalid\n")
    assert out.splitlines()[-1].startswith("falco.yaml: hint: a rules file is a YAML list")


@pytest.mark.parametrize("content, message", [
    (None, "nope.yaml: No such file or directory"),
    (b"\x7fELF\x02\x01\x01\x00\x00", "bin.yaml:1: is a binary file, not a YAML rules file"),
    (b"- list: l\n  items: [caf\xe9]\n", "bin.yaml:2: is not UTF-8 text"),
])
def test_validate_unreadable_file_is_exit_2(files: Path, content: bytes | None,
                                            message: str) -> None:
    name = "nope.yaml" if content is None else "bin.yaml"
    if content is not None:
        Path(name).write_bytes(content)
    code, out, err = run("falco", "validate", "rules.yaml", name)
    assert (code, out, err) == (2, "", f"cks-lab: error: {message}\n")


def test_validate_needs_a_file() -> None:
    code, _, err = run("falco", "validate")
    assert code == 2 and "Missing argument 'RULES...'" in err


# -- replay --------------------------------------------------------------------------


def test_replay_text(files: Path) -> None:
    code, out, err = run("falco", "replay", "--rules", "rules.yaml", "trace.jsonl")
    assert code == 0
    assert out.splitlines() == [
        "22:13:20.000000000: Warning Shell in container (user=root container=3ad7b26ded6d "
        "cmd=bash)",
        "22:13:20.000002000: Error Shadow read (proc=cat file=/etc/shadow)",
    ]
    assert err == ("trace.jsonl: 5 events (1 enter events skipped), 2 alerts "
                   "(Shell in container: 1, Shadow read: 1)\n")


def test_replay_json_is_falco_json_output(files: Path) -> None:
    code, out, _ = run("falco", "replay", "-r", "rules.yaml", "trace.jsonl", "--json", "-q",
                       "--hostname", "node-1")
    alerts = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(alerts) == 2
    first = alerts[0]
    assert list(first) == ["hostname", "output", "output_fields", "priority", "rule", "source",
                           "tags", "time"]
    assert first["output_fields"] == {"container.id": "3ad7b26ded6d", "evt.time":
                                      1700000000000000000, "proc.cmdline": "bash",
                                      "user.name": "root"}
    assert (first["rule"], first["priority"], first["source"], first["hostname"],
            first["tags"], first["time"]) == (
        "Shell in container", "Warning", "syscall", "node-1", ["container", "shell"],
        "2023-11-14T22:13:20.000000000Z")
    assert out.splitlines()[0].startswith('{"hostname":"node-1","output":"22:13:20.000000000: ')


def test_replay_all_matches_and_min_priority(files: Path) -> None:
    _, out, err = run("falco", "replay", "-r", "rules.yaml", "trace.jsonl", "--all-matches")
    assert [line.split(" ", 2)[1] for line in out.splitlines()] == ["Warning", "Error", "Notice"]
    assert "3 alerts (Shell in container: 1, Shadow read: 1, Opened by cat: 1)" in err
    _, out, _ = run("falco", "replay", "-r", "rules.yaml", "trace.jsonl", "--all-matches",
                    "--min-priority", "ERROR")
    assert [line.split(" ", 2)[1] for line in out.splitlines()] == ["Error"]


def test_replay_later_rules_files_change_earlier_ones(files: Path) -> None:
    Path("local.yaml").write_text("- list: shell_binaries\n  items: [zsh]\n  override:\n"
                                  "    items: replace\n")
    _, out, _ = run("falco", "replay", "-r", "rules.yaml", "-r", "local.yaml", "trace.jsonl")
    assert [line.split(" ")[2] for line in out.splitlines()] == ["Shadow"]


def test_replay_reads_stdin(files: Path) -> None:
    code, out, err = run("falco", "replay", "-r", "rules.yaml", "-",
                         stdin=Path("trace.jsonl").read_bytes())
    assert code == 0 and len(out.splitlines()) == 2
    assert err.startswith("<stdin>: 5 events")


def test_replay_rules_that_do_not_load_replay_nothing(files: Path) -> None:
    Path("bad.yaml").write_text(RULES.replace("fd.name = /etc/shadow", "fd.nme = /etc/shadow"))
    code, out, err = run("falco", "replay", "-r", "bad.yaml", "trace.jsonl")
    lines = err.splitlines()
    assert (code, out) == (2, "")
    assert lines[0] == "bad.yaml: Invalid"
    assert lines[1].startswith("bad.yaml:") and "rule 'Shadow read'" in lines[1]
    assert "fd.nme" in lines[1]
    assert lines[-1] == ("cks-lab: error: the rules do not load (errors above); "
                         "nothing was replayed")


def test_replay_bad_trace_line_is_located_after_the_alerts_before_it(files: Path) -> None:
    with open("trace.jsonl", "a") as fh:
        fh.write('{"evt.type": "execve", "proc.name": bash}\n')
        fh.write(json.dumps(EVENTS[0]) + "\n")
    code, out, err = run("falco", "replay", "-r", "rules.yaml", "trace.jsonl")
    assert code == 2
    assert len(out.splitlines()) == 2  # the alerts of lines 1-5; line 7 never ran
    assert err == ("cks-lab: error: trace.jsonl:6: not valid JSON: Expecting value "
                   "(column 37)\n")


def test_replay_warns_once_about_rules_warnings(files: Path) -> None:
    Path("warn.yaml").write_text(RULES + "- unknown_item: 1\n")
    code, _, err = run("falco", "replay", "-r", "warn.yaml", "trace.jsonl")
    assert code == 0
    assert err.splitlines()[0] == ("cks-lab: warning: the rules load with 1 warning(s); "
                                   "`cks-lab falco validate` shows them")


@pytest.mark.parametrize("trace, message", [
    ("missing.jsonl", "missing.jsonl: No such file or directory"),
    (".", ".: Is a directory"),
])
def test_replay_unreadable_trace(files: Path, trace: str, message: str) -> None:
    assert run("falco", "replay", "-r", "rules.yaml", trace) == (
        2, "", f"cks-lab: error: {message}\n")


def test_replay_a_capture_says_how_to_convert_it(files: Path) -> None:
    Path("attack.scap").write_bytes(b"\x1f\x8b\x08\x00" + bytes(64))
    code, _, err = run("falco", "replay", "-r", "rules.yaml", "attack.scap")
    assert code == 2
    assert err == ("cks-lab: error: attack.scap: is a binary file (a capture?), not a "
                   "JSON-lines trace: convert a capture with `cks-lab falco import "
                   "CAPTURE.scap -o TRACE.jsonl`\n")


# -- fields and import ---------------------------------------------------------------


def test_fields(files: Path) -> None:
    code, out, _ = run("falco", "fields")
    assert code == 0
    lines = out.splitlines()
    aname = next(line for line in lines if line.startswith("proc.aname "))
    assert aname.split()[1:3] == ["CHARBUF", "[ARG_ALLOWED]"]
    assert any(line.startswith("Field Class:") and "fd" in line for line in lines)
    code, out, _ = run("falco", "fields", "--names")
    names = out.splitlines()
    assert code == 0 and {"proc.name", "fd.sip", "evt.arg", "k8s.pod.name"} <= set(names)
    assert all(" " not in n for n in names)


def test_import_without_sysdig(files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Path("x.scap").write_bytes(b"\x1f\x8b")
    monkeypatch.setenv("PATH", str(files))
    code, out, err = run("falco", "import", "x.scap", "-o", "t.jsonl")
    assert (code, out) == (2, "")
    assert err.startswith("cks-lab: error: sysdig is not installed")
    assert not Path("t.jsonl").exists()


def test_import_missing_capture(files: Path) -> None:
    assert run("falco", "import", "none.scap", "-o", "t.jsonl") == (
        2, "", "cks-lab: error: none.scap: no such file\n")
