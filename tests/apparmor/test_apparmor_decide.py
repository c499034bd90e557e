"""Access decisions, from cases/decide.yaml, and the access request syntax."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.engines.apparmor import (
    AccessError,
    Decision,
    decide,
    parse_access,
    parse_profile_text,
)

CASES = yaml.safe_load((Path(__file__).parent / "cases" / "decide.yaml").read_text())


def params() -> list[Any]:
    out = []
    for case in CASES:
        for check in case["checks"]:
            out.append(pytest.param(case, check, id=f"{case['name']}: {check['access']}"))
    return out


@pytest.mark.parametrize(("case", "check"), params())
def test_decision(case: dict[str, Any], check: dict[str, Any]) -> None:
    pset = parse_profile_text(case["profile"], name="t.sd")
    prof = pset.profile(case.get("profile_name"))
    d = decide(prof, check["access"])
    assert d.verdict == check["verdict"], d.reason
    if "rules" in check:
        assert [r.line for r in d.rules] == check["rules"], d.reason
    if "exec_mode" in check:
        assert d.exec_mode == check["exec_mode"], d.reason


def test_reason_names_rule_and_line() -> None:
    prof = parse_profile_text("profile t {\n  /etc/** r,\n  deny /etc/shadow w,\n}\n",
                              name="t.sd").profile()
    d = decide(prof, "r /etc/shadow")
    assert d.reason == "allowed: line 2 `/etc/** r,` allows read"
    d = decide(prof, "w /etc/shadow")
    assert d.reason.startswith("denied: line 3 `deny /etc/shadow w,` denies write")
    d = decide(prof, "w /etc/hosts")
    assert d.verdict == "DENY"
    assert "no rule allows write on /etc/hosts" in d.reason
    assert d.as_dict() == {"access": "w /etc/hosts", "decision": "DENY", "rules": [],
                           "reason": d.reason, "profile": "t"}


def test_rules_from_includes_name_their_file() -> None:
    prof = parse_profile_text(
        "profile t {\n  #include <abstractions/nameservice>\n}\n", name="t.sd").profile()
    d = decide(prof, "r /etc/hosts")
    assert d.verdict == "ALLOW"
    assert d.rules[0].file == "abstractions/nameservice"
    assert "abstractions/nameservice line" in d.reason


def test_repeated_decisions_agree() -> None:
    prof = parse_profile_text("profile t {\n  /a r,\n}\n").profile()
    first = decide(prof, "r /a")
    assert decide(prof, parse_access("r /a")) == first
    assert decide(prof, "w /a").verdict == "DENY"
    assert isinstance(first, Decision) and first.allowed


@pytest.mark.parametrize(("text", "expected"), [
    ("r /etc/shadow", ("file", frozenset("r"), "/etc/shadow", False)),
    ("rw /tmp/x", ("file", frozenset("rw"), "/tmp/x", False)),
    ("owner w /tmp/x", ("file", frozenset("w"), "/tmp/x", True)),
    ("x /bin/sh", ("file", frozenset("x"), "/bin/sh", False)),
])
def test_parse_file_access(text: str, expected: tuple[Any, ...]) -> None:
    a = parse_access(text)
    assert (a.kind, a.perms, a.path, a.owner) == expected


def test_parse_other_accesses() -> None:
    assert parse_access("capability CAP_NET_RAW").capability == "net_raw"
    net = parse_access("network inet tcp")
    assert (net.kind, net.family, net.sock_type) == ("network", "inet", "stream")
    assert parse_access("network inet6 raw").sock_type == "raw"


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty access request"),
    ("read /etc/shadow", "expected 'PERMS /path'"),
    ("r etc/shadow", "expected 'PERMS /path'"),
    ("capability", "say one capability"),
    ("capability fly", "unknown capability 'fly'"),
    ("network", "expected 'network FAMILY TYPE'"),
    ("network inet", "say the socket type"),
    ("network inet6 icmp", "icmp is not a protocol of inet6"),
    ("network inet carrier-pigeon", "unknown socket type or protocol"),
])
def test_bad_access_requests(text: str, message: str) -> None:
    with pytest.raises(AccessError, match=None) as exc:
        parse_access(text)
    assert message in exc.value.message
