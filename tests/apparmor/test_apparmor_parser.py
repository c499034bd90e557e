"""The profile parser: the accept/reject tables in cases/ and what the model keeps.

cases/parse_syntax.yaml, parse_rules.yaml and xconflicts.yaml hold profiles with the
verdict apparmor_parser 3.0 gives them (test_apparmor_compiler.py holds the real
compiler to the same tables).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.engines.apparmor import (
    BUNDLED_DIR,
    ProfileError,
    default_search_path,
    parse_profile_file,
    parse_profile_text,
)
from lab.engines.apparmor.model import (
    CapabilityRule,
    ChangeProfileRule,
    FileRule,
    MountRule,
    NetworkRule,
    SignalRule,
)

CASES_DIR = Path(__file__).parent / "cases"
TABLES = ("parse_syntax.yaml", "parse_rules.yaml", "xconflicts.yaml")


def load_cases() -> list[Any]:
    out = []
    for table in TABLES:
        for case in yaml.safe_load((CASES_DIR / table).read_text()):
            out.append(pytest.param(case, id=f"{table[:-5]}: {case['name']}"))
    return out


@pytest.mark.parametrize("case", load_cases())
def test_table(case: dict[str, Any]) -> None:
    text = case["profile"]
    if case["expect"] == "accept":
        parse_profile_text(text, name="t.sd")
        return
    with pytest.raises(ProfileError) as exc:
        parse_profile_text(text, name="t.sd")
    err = exc.value
    if "error" in case:
        assert case["error"] in err.message
    if "line" in case:
        assert err.line == case["line"], str(err)


def test_rules_keep_their_text_and_line() -> None:
    pset = parse_profile_text(
        "profile t /usr/bin/t {\n"
        "  # reads\n"
        "  audit deny owner /etc/shadow   r ,\n"
        "  /bin/sh Px -> other,\n"
        "  capability net_raw,\n"
        "}\n", name="t.sd")
    rules = pset.profile("t").rules
    assert [(r.line, r.text) for r in rules] == [
        (3, "audit deny owner /etc/shadow r ,"),
        (4, "/bin/sh Px -> other,"),
        (5, "capability net_raw,"),
    ]
    shadow, sh, cap = rules
    assert isinstance(shadow, FileRule) and shadow.deny and shadow.audit
    assert shadow.owner == "owner" and shadow.perms == frozenset("r")
    assert isinstance(sh, FileRule) and sh.exec_mode == "Px" and sh.target == "other"
    assert isinstance(cap, CapabilityRule) and cap.caps == frozenset({"net_raw"})


def test_rule_kinds_are_modelled() -> None:
    prof = parse_profile_text(
        "profile t {\n"
        "  network inet tcp,\n"
        "  mount fstype=tmpfs options=(rw,nosuid) tmpfs -> /tmp/,\n"
        "  signal (send) set=(term kill) peer=child,\n"
        "  change_profile /usr/bin/x -> x,\n"
        "  file,\n"
        "}\n").profile()
    net, mnt, sig, cp, bare = prof.rules
    assert isinstance(net, NetworkRule) and (net.family, net.protocol) == ("inet", "tcp")
    assert isinstance(mnt, MountRule)
    assert (mnt.fstypes, mnt.options, mnt.source, mnt.mountpoint) == (
        ("tmpfs",), ("rw", "nosuid"), "tmpfs", "/tmp/")
    assert isinstance(sig, SignalRule) and sig.signals == frozenset({"term", "kill"})
    assert isinstance(cp, ChangeProfileRule) and cp.exec_cond == "/usr/bin/x"
    assert isinstance(bare, FileRule) and bare.bare and bare.exec_mode == "ix"


def test_modes_flags_hats_and_children() -> None:
    pset = parse_profile_text(
        "profile t flags=(complain, attach_disconnected) {\n"
        "  ^hat {\n  }\n"
        "  profile child flags=(enforce) {\n  }\n"
        "}\n"
        "profile k flags=(kill) {\n}\n")
    t = pset.profile("t")
    assert (t.mode, t.flags) == ("complain", ("attach_disconnected",))
    assert pset.names() == ["t", "t//hat", "t//child", "k"]
    assert pset.profile("t//hat").is_hat
    assert pset.profile("t//child").mode == "enforce"
    assert pset.profile("k").mode == "kill"


def test_profile_lookup_errors() -> None:
    pset = parse_profile_text("profile a {\n}\nprofile b {\n}\n", name="two.sd")
    with pytest.raises(ProfileError, match="defines 2 profiles"):
        pset.profile()
    with pytest.raises(ProfileError, match="no profile named 'c'"):
        pset.profile("c")


def test_variables_expand_with_slashes_merged() -> None:
    prof = parse_profile_text(
        "#include <tunables/global>\n"
        "@{DIRS} = /srv/ /opt/app/\n"
        "profile t {\n"
        "  @{HOME}/.ssh/** r,\n"
        "  @{DIRS}/data r,\n"
        "  /usr/bin/@{profile_name} r,\n"
        "}\n").profile()
    paths = [r.path for r in prof.rules if isinstance(r, FileRule)]
    assert paths == ["{/home/*,/root}/.ssh/**", "{/opt/app,/srv}/data", "/usr/bin/t"]


def test_node_tree_includes_come_first(tmp_path: Path) -> None:
    apparmor_d = tmp_path / "etc" / "apparmor.d"
    (apparmor_d / "abstractions").mkdir(parents=True)
    (apparmor_d / "abstractions" / "base").write_text("  /node/only r,\n")
    prof = parse_profile_text(
        "#include <tunables/global>\n"
        "profile t {\n  #include <abstractions/base>\n  #include <abstractions/bash>\n}\n",
        include_path=default_search_path(tmp_path)).profile()
    files = {r.src.file for r in prof.rules}
    assert files == {"abstractions/base", "abstractions/bash"}
    assert [r.text for r in prof.rules if r.src.file == "abstractions/base"] == [
        "/node/only r,"]


def test_directory_include_skips_leftovers(tmp_path: Path) -> None:
    d = tmp_path / "local"
    d.mkdir()
    (d / "a").write_text("/a r,\n")
    (d / "b.dpkg-old").write_text("this is not a rule\n")
    (d / "c~").write_text("nor this\n")
    prof = parse_profile_text("profile t {\n  include <local>\n}\n",
                              include_path=[tmp_path]).profile()
    assert [r.text for r in prof.rules] == ["/a r,"]


def test_errors_in_included_files_name_that_file(tmp_path: Path) -> None:
    (tmp_path / "abstractions").mkdir()
    (tmp_path / "abstractions" / "bad").write_text("  /ok r,\n  /oops rx,\n")
    with pytest.raises(ProfileError) as exc:
        parse_profile_text("profile t {\n  #include <abstractions/bad>\n}\n",
                           include_path=[tmp_path], name="main.sd")
    assert (exc.value.file, exc.value.line) == ("abstractions/bad", 2)


def test_repeated_include_is_read_once() -> None:
    prof = parse_profile_text(
        "profile t {\n  #include <abstractions/consoles>\n"
        "  #include <abstractions/consoles>\n}\n").profile()
    texts = [r.text for r in prof.rules]
    assert len(texts) == len(set(texts))


def test_quoted_include_relative_to_the_profile(tmp_path: Path) -> None:
    (tmp_path / "extra.inc").write_text("/extra r,\n")
    main = tmp_path / "main.sd"
    main.write_text('profile t {\n  include "extra.inc"\n}\n')
    prof = parse_profile_file(main, include_path=[BUNDLED_DIR]).profile()
    assert [r.text for r in prof.rules] == ["/extra r,"]


def test_binary_and_huge_files_are_refused(tmp_path: Path) -> None:
    binary = tmp_path / "bin.sd"
    binary.write_bytes(b"profile t {\x00\x01}\n")
    with pytest.raises(ProfileError, match="binary file"):
        parse_profile_file(binary)
    huge = tmp_path / "huge.sd"
    huge.write_text("#" * 2_000_000 + "\n")
    with pytest.raises(ProfileError, match="too large"):
        parse_profile_file(huge)
    with pytest.raises(ProfileError, match="Could not open"):
        parse_profile_file(tmp_path / "missing.sd")


def test_errors_are_values_with_a_place() -> None:
    with pytest.raises(ProfileError) as exc:
        parse_profile_text("profile t {\n  /a r,\n  /b rx,\n}\n", name="p.sd")
    assert str(exc.value) == (
        "p.sd:3: Invalid mode, 'x' must be preceded by exec qualifier 'i', 'p', 'c', or 'u'")
