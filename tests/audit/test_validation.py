"""Audit policy validation against upstream's validation_test.go (as data) and lab cases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from audit_rules import rule_from

from lab.engines.audit.policy import GroupResources, Policy, PolicyRule
from lab.engines.audit.validation import (
    go_quote,
    go_string_slice,
    is_dns1123_label,
    validate_policy,
    validate_policy_located,
)

TABLE = yaml.safe_load((Path(__file__).parent / "cases" / "validation.yaml").read_text())
CASES = [pytest.param(c, id=f"{section}: {c['name']}")
         for section in ("upstream", "lab") for c in TABLE[section]]


@pytest.mark.parametrize("case", CASES)
def test_validation_table(case: dict[str, Any]) -> None:
    policy = Policy(tuple(rule_from(r) for r in case["policy"]["rules"]),
                    tuple(case["policy"].get("omitStages", ())))
    # An expected error written as a list is concatenated (the long DNS detail is shared).
    expected = ["".join(e) if isinstance(e, list) else e for e in case["errors"]]
    assert validate_policy(policy) == expected


def test_located_errors_name_their_rule() -> None:
    policy = Policy((PolicyRule("Metadata"), PolicyRule("Loud")), ("Nope",))
    assert [i for _, i in validate_policy_located(policy)] == [None, 1]


def test_group_longer_than_253_bytes() -> None:
    group = "a" * 254  # matches the regex, so only the length message
    errors = validate_policy(Policy((PolicyRule("Metadata", resources=(GroupResources(group),)),)))
    assert errors == [f'rules[0].resources.group: Invalid value: "{group}": '
                      "must be no more than 253 characters"]


@pytest.mark.parametrize("text, quoted", [
    ("plain", '"plain"'),
    ('a"b\\c', '"a\\"b\\\\c"'),
    ("tab\tnl\n", '"tab\\tnl\\n"'),
    ("\x01\x7f", '"\\x01\\x7f"'),
    ("é☃", '"é☃"'),
    ("\u200b", '"\\u200b"'),
    ("\U000e0001", '"\\U000e0001"'),
])
def test_go_quote_matches_strconv_quote(text: str, quoted: str) -> None:
    assert go_quote(text) == quoted


def test_go_string_slice() -> None:
    assert go_string_slice(["/a", 'b"']) == '[]string{"/a", "b\\""}'
    assert go_string_slice([]) == "[]string{}"


_LABEL_REGEX_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)


@pytest.mark.parametrize(
    ("value", "errors"),
    [
        ("audit-policy", []),
        ("0abc", []),
        ("a" * 63, []),
        ("a" * 64, ["must be no more than 63 characters"]),
        ("audit_policy", [_LABEL_REGEX_MSG]),
        ("Audit", [_LABEL_REGEX_MSG]),
        ("-audit", [_LABEL_REGEX_MSG]),
        ("audit.policy", ["must not contain dots"]),
        ("", [_LABEL_REGEX_MSG]),
    ],
)
def test_is_dns1123_label_like_apimachinery(value: str, errors: list[str]) -> None:
    assert is_dns1123_label(value) == errors
