"""`cks-lab apparmor validate | eval` as a learner and a CI job run them: real profile
files, both compilers, exit codes, what goes to stdout and to stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from lab.cli import main
from lab.engines.apparmor import REAL_COMPILER_MISSING, CompileResult, ProfileError
from lab.engines.apparmor.compiler import find_apparmor_parser

REAL = find_apparmor_parser()
needs_real = pytest.mark.skipif(REAL is None, reason="apparmor_parser is not installed")

DENY_WRITE = """\
#include <tunables/global>

profile k8s-deny-write flags=(attach_disconnected) {
  #include <abstractions/base>

  file,

  # Deny all file writes.
  deny /** w,
}
"""

# Two profiles; line numbers matter to the expected output below.
WEB = """\
#include <tunables/global>

profile web /usr/sbin/nginx {
  #include <abstractions/base>
  capability net_bind_service,
  network inet tcp,
  /usr/sbin/nginx mr,
  /etc/nginx/** r,
  /var/cache/nginx/** rw,
  deny /etc/** w,
  /bin/dash ix,
  owner /tmp/** rw,
  /srv/** r,
  /srv/upload/ w,
  /srv/upload/* w,

  profile helper {
    /etc/hostname r,
  }
}

profile learning flags=(complain) {
  /etc/hostname r,
  deny /etc/shadow r,
}
"""

X_WITHOUT_QUALIFIER = "profile bad {\n  /etc/** r,\n  /bin/sh x,\n}\n"
EXEC_CONFLICT = "profile clash {\n  /usr/bin/* ix,\n  /usr/bin/* px,\n}\n"


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, ["apparmor", *args])
    if r.exception and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    Path("k8s-deny-write").write_text(DENY_WRITE)
    Path("web").write_text(WEB)
    Path("bad").write_text(X_WITHOUT_QUALIFIER)
    Path("clash").write_text(EXEC_CONFLICT)
    return tmp_path


@pytest.fixture
def no_real(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without apparmor_parser."""
    monkeypatch.setattr("lab.engines.apparmor.compiler.find_apparmor_parser", lambda: None)


def fake_real(monkeypatch: pytest.MonkeyPatch, result: CompileResult) -> None:
    monkeypatch.setattr("lab.engines.apparmor.tools.compile_real",
                        lambda path, dirs: result)


# -- validate ------------------------------------------------------------------------


def test_validate_builtin_valid_names_the_profiles(files: Path) -> None:
    assert run("validate", "--builtin", "k8s-deny-write") == (0, (
        "k8s-deny-write: valid, checked by the lab's own parser (--builtin)\n"
        "k8s-deny-write: defines profile k8s-deny-write (enforce mode)\n"), "")
    code, out, _ = run("validate", "--builtin", "web")
    assert code == 0 and out.splitlines()[1] == (
        "web: defines profiles web (enforce mode), web//helper (enforce mode), "
        "learning (complain mode)")


def test_validate_builtin_invalid_is_located_exit_1(files: Path) -> None:
    assert run("validate", "--builtin", "bad") == (1, (
        "bad: invalid, checked by the lab's own parser (--builtin)\n"
        "bad:3: Invalid mode, 'x' must be preceded by exec qualifier 'i', 'p', 'c', or 'u'\n"),
        "")


def test_validate_without_apparmor_parser_says_so(files: Path, no_real: None) -> None:
    code, out, err = run("validate", "bad")
    assert (code, err) == (1, "")
    assert out.splitlines() == [
        "bad: invalid, checked by the lab's own parser",
        "bad:3: Invalid mode, 'x' must be preceded by exec qualifier 'i', 'p', 'c', or 'u'",
        f"note: {REAL_COMPILER_MISSING}",
    ]
    code, out, _ = run("validate", "k8s-deny-write")
    assert code == 0
    assert out.splitlines()[0] == "k8s-deny-write: valid, checked by the lab's own parser"


@needs_real
def test_validate_with_apparmor_parser(files: Path) -> None:
    code, out, err = run("validate", "k8s-deny-write")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"k8s-deny-write: valid, checked by apparmor_parser ({REAL})",
        "k8s-deny-write: defines profile k8s-deny-write (enforce mode)",
    ]
    code, out, _ = run("validate", "bad")
    assert code == 1 and out.splitlines() == [
        f"bad: invalid, checked by apparmor_parser ({REAL})",
        "bad:3: Invalid mode, 'x' must be preceded by exec qualifier 'i', 'p', 'c', or 'u'",
    ]


@needs_real
def test_validate_adds_the_lab_line_when_apparmor_parser_gives_none(files: Path) -> None:
    # apparmor_parser reports exec conflicts without a line; the lab's parser has one
    code, out, _ = run("validate", "clash")
    lines = out.splitlines()
    assert code == 1 and lines[0].startswith("clash: invalid, checked by apparmor_parser")
    assert "clash: profile clash: has merged rule /usr/bin/* with conflicting x modifiers" in lines
    assert lines[-1] == ("note: the lab's own parser places the error: clash:3: clash: profile "
                         "clash: has merged rule /usr/bin/* with conflicting x modifiers")


@needs_real
def test_validate_both_compilers_read_the_same_includes(files: Path) -> None:
    # <tunables/global> from an -I folder, for apparmor_parser as for the lab
    Path("inc/tunables").mkdir(parents=True)
    Path("inc/tunables/global").write_text("@{WEBROOT}=/srv/www\n")
    Path("p").write_text("#include <tunables/global>\nprofile p {\n  @{WEBROOT}/** r,\n}\n")
    assert run("validate", "-I", "inc", "p")[0] == 0
    assert run("validate", "--builtin", "-I", "inc", "p")[0] == 0
    # without it the lab's own copy is found, which does not define @{WEBROOT}
    code, out, _ = run("validate", "p")
    assert code == 1 and "WEBROOT" in out and "disagrees" not in out


def test_validate_real_rejects_what_the_lab_accepts(files: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    err = ProfileError("syntax error, unexpected TOK_ID", file="k8s-deny-write", line=9)
    fake_real(monkeypatch, CompileResult(False, 1, (err,), (), ("/sbin/apparmor_parser",)))
    code, out, _ = run("validate", "k8s-deny-write")
    assert code == 1 and out.splitlines() == [
        "k8s-deny-write: invalid, checked by apparmor_parser (/sbin/apparmor_parser)",
        "k8s-deny-write:9: syntax error, unexpected TOK_ID",
        "note: the lab's own parser disagrees: it accepts this profile; apparmor_parser decides",
    ]


def test_validate_real_accepts_what_the_lab_rejects(files: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    fake_real(monkeypatch, CompileResult(True, 0, (), (), ("/sbin/apparmor_parser",)))
    code, out, _ = run("validate", "bad")
    assert code == 0 and out.splitlines() == [
        "bad: valid, checked by apparmor_parser (/sbin/apparmor_parser)",
        "note: the lab's own parser disagrees: it reports bad:3: Invalid mode, 'x' must be "
        "preceded by exec qualifier 'i', 'p', 'c', or 'u'; apparmor_parser decides",
    ]


def test_validate_apparmor_parser_that_cannot_run_is_exit_2(
        files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    err = ProfileError("apparmor_parser did not finish within 20s", file="web")
    fake_real(monkeypatch, CompileResult(False, None, (err,), (), ("apparmor_parser",)))
    assert run("validate", "web") == (
        2, "", "cks-lab: error: web: apparmor_parser did not finish within 20s\n")


def test_validate_finds_includes_in_the_node_tree(files: Path, no_real: None) -> None:
    # a workspace node's /etc/apparmor.d comes before the lab's own copies
    etc = Path("ws/nodes/node01/etc/apparmor.d")
    (etc / "tunables").mkdir(parents=True)
    (etc / "tunables/global").write_text("@{WEBROOT}=/srv/www\n")
    (etc / "local").mkdir()
    (etc / "local/web").write_text("@{WEBROOT}/** r,\n")
    (etc / "web").write_text('#include <tunables/global>\nprofile web {\n'
                             '  include "/etc/apparmor.d/local/web"\n}\n')
    assert run("validate", str(etc / "web"))[0] == 0
    # outside a node tree, "/etc/apparmor.d/..." is the host's (which has no local/web)
    Path("web2").write_text((etc / "web").read_text())
    code, out, _ = run("validate", "web2")
    assert code == 1 and out.splitlines()[1] == "web2:3: Could not open '/etc/apparmor.d/local/web'"


def test_quoted_relative_includes_are_found_from_the_working_folder(
        files: Path, no_real: None) -> None:
    # as apparmor_parser finds them: not from the profile's own folder
    Path("sub").mkdir()
    Path("sub/extra").write_text("/srv/** r,\n")
    Path("sub/p").write_text('profile p {\n  include "extra"\n}\n')
    assert run("validate", "sub/p")[1].splitlines()[1] == "sub/p:2: Could not open 'extra'"
    Path("sub/p").write_text('profile p {\n  include "sub/extra"\n}\n')
    assert run("validate", "sub/p")[0] == 0
    assert run("eval", "sub/p", "-a", "r /srv/a")[1].startswith("ALLOW ")


@needs_real
def test_apparmor_parser_message_that_is_not_utf8(files: Path) -> None:
    # apparmor_parser quotes the stray byte of a Latin-1 file in its message
    Path("latin1").write_bytes(b"profile l {\n  /tmp/x r,\n  \xe9\n}\n")
    code, out, err = run("validate", "latin1")
    assert (code, err) == (1, "")
    assert out.splitlines()[1].startswith("latin1:3: Lexer found unexpected character")


# -- bad input: one line on stderr, exit 2, nothing on stdout -----------------------


@pytest.mark.parametrize("command", [["validate"], ["eval", "-a", "r /etc/shadow"]])
@pytest.mark.parametrize(("name", "content", "message"), [
    ("nope", None, "nope: No such file or directory"),
    ("folder", "dir", "folder: is a folder, not a profile file (name one file in it)"),
    ("bin", b"\x7fELF\x02\x01\x01\x00\x00", "bin: binary file, not an AppArmor profile"),
    ("big", b"#" * 1_000_001,
     "big: file is too large for a profile (1000001 bytes, limit 1000000)"),
])
def test_unreadable_profile_is_exit_2(files: Path, command: list[str], name: str,
                                      content: bytes | str | None, message: str) -> None:
    if content == "dir":
        Path(name).mkdir()
    elif isinstance(content, bytes):
        Path(name).write_bytes(content)
    assert run(*command, name) == (2, "", f"cks-lab: error: {message}\n")


def test_special_file_is_refused(files: Path) -> None:
    assert run("validate", "/dev/null") == (
        2, "", "cks-lab: error: /dev/null: is not a regular file\n")


@pytest.mark.parametrize("command", [["validate"], ["eval", "-a", "r /x", "-n", "web"]])
def test_missing_include_folder_is_exit_2(files: Path, command: list[str]) -> None:
    assert run(*command, "-I", "nowhere", "web") == (
        2, "", "cks-lab: error: nowhere: no such folder (given with -I)\n")


# -- eval ----------------------------------------------------------------------------


def test_eval_text(files: Path) -> None:
    code, out, err = run(
        "eval", "web", "--profile-name", "web",
        "-a", "r /etc/nginx/nginx.conf", "-a", "w /etc/passwd", "-a", "r /etc/shadow",
        "-a", "rw /var/cache/nginx/x", "-a", "a /var/cache/nginx/x", "-a", "x /bin/dash",
        "-a", "x /bin/sh", "-a", "capability net_bind_service", "-a", "capability sys_admin",
        "-a", "network inet tcp", "-a", "network inet raw", "-a", "owner w /tmp/a",
        "-a", "w /tmp/a", "-a", "r /etc/ld.so.cache", "-a", "rw /srv/upload/f",
        "-a", "w /srv/upload", "-a", "x /srv/x")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "ALLOW     r /etc/nginx/nginx.conf      line 8: /etc/nginx/** r,",
        "DENY      w /etc/passwd                line 10: deny /etc/** w,",
        "DENY      r /etc/shadow                no rule allows read on /etc/shadow",
        "ALLOW     rw /var/cache/nginx/x        line 9: /var/cache/nginx/** rw,",
        "ALLOW     a /var/cache/nginx/x         line 9: /var/cache/nginx/** rw,",
        "ALLOW     x /bin/dash                  line 11: /bin/dash ix,",
        "DENY      x /bin/sh                    no rule allows exec on /bin/sh",
        "ALLOW     capability net_bind_service  line 5: capability net_bind_service,",
        "DENY      capability sys_admin         no rule allows capability sys_admin",
        "ALLOW     network inet tcp             line 6: network inet tcp,",
        "DENY      network inet raw             no rule allows network inet raw",
        "ALLOW     owner w /tmp/a               line 12: owner /tmp/** rw,",
        "DENY      w /tmp/a                     no rule allows write on /tmp/a",
        "                                       line 12 `owner /tmp/** rw,` matches but applies "
        "only to files the task owns",
        "ALLOW     r /etc/ld.so.cache           abstractions/base line 9: /etc/ld.so.cache r,",
        "ALLOW     rw /srv/upload/f             line 13: /srv/** r,  (allows read)",
        "                                       line 15: /srv/upload/* w,  (allows write)",
        "DENY      w /srv/upload                no rule allows write on /srv/upload",
        "                                       line 13 `/srv/** r,` matches but allows "
        "only read",
        "DENY      x /srv/x                     no rule allows exec on /srv/x",
        "                                       line 13 `/srv/** r,` matches but allows "
        "only read",
    ]


def test_eval_complain_mode(files: Path) -> None:
    code, out, _ = run("eval", "web", "-n", "learning", "-a", "w /etc/passwd",
                       "-a", "r /etc/hostname", "-a", "r /etc/shadow")
    assert code == 0 and out.splitlines() == [
        "COMPLAIN  w /etc/passwd    no rule allows write on /etc/passwd",
        "                           profile learning is in complain mode, so it is allowed "
        "and logged",
        "ALLOW     r /etc/hostname  line 23: /etc/hostname r,",
        "DENY      r /etc/shadow    line 24: deny /etc/shadow r,",
    ]


def test_eval_child_profile(files: Path) -> None:
    code, out, _ = run("eval", "web", "-n", "web//helper", "-a", "r /etc/hostname")
    assert (code, out) == (0, "ALLOW     r /etc/hostname  line 18: /etc/hostname r,\n")


def test_eval_json_one_object_per_access_in_order(files: Path) -> None:
    code, out, _ = run("eval", "k8s-deny-write", "--json", "-a", "w /tmp/x", "-a", "r /etc/shadow",
                       "-a", "network inet raw")
    objs = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [(o["access"], o["decision"]) for o in objs] == [
        ("w /tmp/x", "DENY"), ("r /etc/shadow", "ALLOW"), ("network inet raw", "DENY")]
    assert objs[0]["rules"] == [{"line": 9, "text": "deny /** w,", "role": "denies write",
                                 "file": "k8s-deny-write"}]
    assert objs[1]["rules"] == [{"line": 6, "text": "file,", "role": "allows read",
                                 "file": "k8s-deny-write"}]
    assert objs[2]["rules"] == [] and objs[2]["reason"].startswith("no rule allows network")
    assert {o["profile"] for o in objs} == {"k8s-deny-write"}


@pytest.mark.parametrize(("args", "message"), [
    (["web"], "web: defines 2 profiles (web, web//helper, learning): say which one with "
              "--profile-name NAME"),
    (["web", "-n", "nginx"],
     "web: no profile named 'nginx' in the file (it defines: web, web//helper, learning)"),
    (["k8s-deny-write", "-a", "r etc/shadow"],
     "--access #2: 'r etc/shadow': expected 'PERMS /path' (perms of r w a l k m x), "
     "'capability NAME' or 'network FAMILY TYPE'"),
    (["k8s-deny-write", "-a", "capability fly"], "--access #2: 'capability fly': unknown "
                                                 "capability 'fly'"),
    (["bad"], "bad:3: Invalid mode, 'x' must be preceded by exec qualifier 'i', 'p', 'c', or "
              "'u' (the profile does not compile; nothing was evaluated)"),
])
def test_eval_errors_print_nothing_else(files: Path, args: list[str], message: str) -> None:
    profile, *rest = args
    assert run("eval", profile, "-a", "r /etc/hostname", *rest) == (
        2, "", f"cks-lab: error: {message}\n")


def test_eval_file_without_profiles(files: Path) -> None:
    Path("vars").write_text("@{HOME}=/home/*/\n")
    assert run("eval", "vars", "-a", "r /x") == (
        2, "", "cks-lab: error: vars: defines no profile to evaluate\n")


def test_eval_needs_an_access(files: Path) -> None:
    code, out, err = run("eval", "web", "-n", "web")
    assert (code, out) == (2, "") and "Missing option '--access'" in err


def test_eval_escapes_control_characters(files: Path) -> None:
    Path("esc").write_text('profile esc {\n  "/tmp/a\x1bb" r,\n}\n')
    code, out, _ = run("eval", "esc", "-a", "r /tmp/a\x1bb")
    assert code == 0 and "\x1b" not in out and "\\x1bb" in out
    code, out, _ = run("eval", "esc", "--json", "-a", "r /tmp/a\x1bb")
    assert code == 0 and "\x1b" not in out and json.loads(out)["decision"] == "ALLOW"


def test_help_does_not_load_the_engine() -> None:
    code = ("import sys; from click.testing import CliRunner; from lab.cli import main; "
            "r = CliRunner().invoke(main, ['apparmor', 'eval', '--help']); "
            "assert r.exit_code == 0, r.output; "
            "print('lab.engines.apparmor' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
