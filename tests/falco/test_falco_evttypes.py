"""Event types a condition can match (cases/evttypes.yaml), and the known names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.engines.falco.condition.event_table import SYSCALL_EVENT_NAMES
from lab.engines.falco.condition.evttypes import (
    ALL_EVENT_TYPES,
    code_count,
    evttypes,
    is_known_event_type,
    too_many_evttypes,
)
from lab.engines.falco.condition.filter import compile_filter
from lab.engines.falco.condition.parser import parse

CASES = yaml.safe_load((Path(__file__).parent / "cases" / "evttypes.yaml").read_text())


def expected(case: dict[str, Any]) -> frozenset[str] | None:
    if "all_but" in case:
        return ALL_EVENT_TYPES - frozenset(case["all_but"])
    return None if case["types"] == "all" else frozenset(case["types"])


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["cond"].strip()[:60])
def test_evttypes(case: dict[str, Any]) -> None:
    expr = parse(case["cond"])
    assert evttypes(expr) == expected(case)
    assert compile_filter(expr).evttypes == expected(case)


@pytest.mark.parametrize("name, known", [
    ("open", True), ("openat2", True), ("execve", True), ("connect", True),
    ("container", True), ("procexit", True), ("getpid", True), ("pread64", True),
    ("mknodat", True), ("notasyscall", False), ("OPEN", False), ("", False),
])
def test_known_event_types(name: str, known: bool) -> None:
    assert is_known_event_type(name) is known


def test_too_many_evttypes_counts_codes_like_libs() -> None:
    assert too_many_evttypes(None)  # no evt.type restriction
    assert too_many_evttypes(frozenset())  # matches nothing
    assert not too_many_evttypes(frozenset({"open", "openat", "openat2"}))
    assert code_count(frozenset({"open", "openat"})) == 4  # enter + exit codes
    # generic syscalls share the two codes of the generic event
    assert code_count(frozenset({"getpid", "uname", "open"})) == 4
    assert too_many_evttypes(ALL_EVENT_TYPES - {"open"})
    many = frozenset(SYSCALL_EVENT_NAMES[:51])  # syscalls with their own events
    assert code_count(many) > 100 and too_many_evttypes(many)
