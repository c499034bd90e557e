"""The real apparmor_parser: its verdict on every case of the lab's own tables, and the
wrapper that runs it (error lines, timeouts, absence).

The table comparison runs when apparmor_parser is installed (.ci/run installs Debian's
`apparmor` package); the wrapper's own behaviour is tested everywhere.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.engines.apparmor import (
    BUNDLED_DIR,
    REAL_COMPILER_MISSING,
    compile_real,
    find_apparmor_parser,
    validate_profile,
)
from lab.engines.apparmor import compiler as compiler_mod
from lab.engines.apparmor.compiler import parse_stderr

CASES_DIR = Path(__file__).parent / "cases"
TABLES = ("parse_syntax.yaml", "parse_rules.yaml", "xconflicts.yaml")
REAL = find_apparmor_parser()
needs_real = pytest.mark.skipif(REAL is None, reason="apparmor_parser is not installed")


def table_cases() -> list[Any]:
    out = []
    for table in TABLES:
        for case in yaml.safe_load((CASES_DIR / table).read_text()):
            out.append(pytest.param(case, id=f"{table[:-5]}: {case['name']}"))
    return out


@needs_real
@pytest.mark.parametrize("case", table_cases())
def test_real_compiler_agrees_with_table(case: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "t.sd"
    path.write_text(case["profile"])
    result = compile_real(path, [BUNDLED_DIR])
    assert result is not None
    assert result.ok is (case["expect"] == "accept"), result.message


@needs_real
def test_real_compiler_reports_located_errors(tmp_path: Path) -> None:
    path = tmp_path / "p.sd"
    path.write_text("profile t {\n  /a r,\n  /b rx,\n}\n")
    result = compile_real(path)
    assert result is not None and not result.ok
    err = result.errors[0]
    assert (err.file, err.line) == (str(path), 3)
    assert "'x' must be preceded by exec qualifier" in err.message
    assert not any("Cache read/write" in str(e) for e in result.errors)


@needs_real
def test_real_compiler_accepts_with_lab_includes(tmp_path: Path) -> None:
    path = tmp_path / "p.sd"
    path.write_text("#include <tunables/global>\nprofile t {\n  #include <abstractions/base>\n"
                    "  @{HOME}/** r,\n}\n")
    result = compile_real(path, [BUNDLED_DIR])
    assert result is not None and result.ok, result.message
    assert result.command[:3] == (REAL, "-Q", "-K")
    assert "-I" in result.command and str(BUNDLED_DIR) in result.command


def test_stderr_lines_become_located_errors() -> None:
    stderr = (
        "Cache read/write disabled: interface file missing. (Kernel needs AppArmor 2.4 "
        "compatibility patch.)\n"
        "AppArmor parser error for /w/p.sd in profile /w/abstractions/x at line 7: "
        "syntax error, unexpected TOK_ID, expecting TOK_MODE\n")
    errors, warnings = parse_stderr(stderr, "/w/p.sd")
    assert warnings == []
    assert [(e.file, e.line, e.message) for e in errors] == [
        ("/w/abstractions/x", 7, "syntax error, unexpected TOK_ID, expecting TOK_MODE")]
    errors, _ = parse_stderr(
        "profile t: has merged rule /bin/cat with conflicting x modifiers\n"
        "ERROR merging rules for profile t, failed to load\n", "/w/p.sd")
    assert [e.message for e in errors] == [
        "profile t: has merged rule /bin/cat with conflicting x modifiers",
        "ERROR merging rules for profile t, failed to load"]
    errors, _ = parse_stderr("AppArmor parser error at line 3: Invalid capability x.\n", "-")
    assert (errors[0].line, errors[0].message) == (3, "Invalid capability x.")


def test_missing_compiler_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(compiler_mod, "find_apparmor_parser", lambda: None)
    assert compile_real(tmp_path / "p.sd") is None
    assert "apparmor_parser is not installed" in compiler_mod.REAL_COMPILER_MISSING


def _fake_parser(tmp_path: Path, body: str) -> str:
    fake = tmp_path / "fake_parser"
    fake.write_text("#!/bin/sh\n" + body)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return str(fake)


def test_compiler_timeout_is_an_error(tmp_path: Path) -> None:
    fake = _fake_parser(tmp_path, "sleep 5\n")
    result = compile_real(tmp_path / "p.sd", parser=fake, timeout=0.2)
    assert result is not None and not result.ok
    assert "did not finish within 0.2s" in result.errors[0].message


def test_compiler_exit_code_decides(tmp_path: Path) -> None:
    ok = compile_real(tmp_path / "p.sd", parser=_fake_parser(tmp_path, "echo warn >&2\n"))
    assert ok is not None and ok.ok and ok.errors == ()
    bad = compile_real(tmp_path / "p.sd", parser=_fake_parser(tmp_path, "exit 3\n"))
    assert bad is not None and not bad.ok
    assert bad.errors[0].message == "apparmor_parser failed (exit 3)"


def test_validate_with_the_builtin_parser(tmp_path: Path) -> None:
    path = tmp_path / "p.sd"
    path.write_text("profile t {\n  /a rx,\n}\n")
    v = validate_profile(path, [BUNDLED_DIR], builtin=True)
    assert (v.ok, v.compiler, v.note) == (False, "builtin", None)
    assert (v.errors[0].file, v.errors[0].line) == (str(path), 2)


def test_validate_says_when_the_real_compiler_is_missing(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(compiler_mod, "find_apparmor_parser", lambda: None)
    path = tmp_path / "p.sd"
    path.write_text("profile t {\n  /a r,\n}\n")
    v = validate_profile(path, [BUNDLED_DIR])
    assert (v.ok, v.compiler, v.note) == (True, "builtin", REAL_COMPILER_MISSING)
    assert v.profiles is not None and v.profiles.profile().name == "t"


@needs_real
def test_validate_uses_the_real_compiler(tmp_path: Path) -> None:
    path = tmp_path / "p.sd"
    path.write_text("profile t {\n  /bin/* px,\n  /bin/** ix,\n}\n")
    v = validate_profile(path, [BUNDLED_DIR])
    assert (v.ok, v.compiler, v.note) == (False, "apparmor_parser", None)
    assert "conflicting x modifiers" in v.errors[0].message


def test_parser_name_prefix_is_dropped_even_as_a_path() -> None:
    errors, _ = parse_stderr("/usr/sbin/apparmor_parser: Regex grouping error: x\n", "/w/p.sd")
    assert [e.message for e in errors] == ["Regex grouping error: x"]


@needs_real
def test_real_compiler_survives_non_utf8_profiles(tmp_path: Path) -> None:
    # apparmor_parser quotes the offending bytes back; a Latin-1 byte must not crash us.
    path = tmp_path / "p.sd"
    path.write_bytes(b"profile t {\n  /caf\xe9 rz,\n}\n")
    result = compile_real(path)
    assert result is not None and not result.ok
    assert result.errors


@needs_real
def test_given_include_folders_the_host_policy_does_not_fill_in(tmp_path: Path) -> None:
    """With -I folders, an include they lack fails, as it does in the lab's own parser,
    even when the host's /etc/apparmor.d has it; the ABI files are still the parser's."""
    empty = tmp_path / "inc"
    empty.mkdir()
    path = tmp_path / "p.sd"
    path.write_text("#include <tunables/global>\nprofile t {\n  /srv/** r,\n}\n")
    result = compile_real(path, [empty])
    assert result is not None and not result.ok
    assert "Could not open 'tunables/global'" in result.message
    assert "-b" in result.command
    ok = compile_real(path, [BUNDLED_DIR])
    assert ok is not None and ok.ok, ok.message
    abi = tmp_path / "abi.sd"
    abi.write_text("abi <abi/3.0>,\nprofile t {\n  /srv/** r,\n}\n")
    with_abi = compile_real(abi, [empty])
    assert with_abi is not None and with_abi.ok, with_abi.message


def test_without_include_folders_the_base_is_the_parser_default(tmp_path: Path) -> None:
    fake = _fake_parser(tmp_path, "exit 0\n")
    result = compile_real(tmp_path / "p.sd", parser=fake)
    assert result is not None and "-b" not in result.command
    result = compile_real(tmp_path / "p.sd", [tmp_path], parser=fake)
    assert result is not None and "-b" in result.command
