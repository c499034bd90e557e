"""near_misses(): the near-miss table, and soundness against upstream's matching."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from audit_rules import rule_from
from hypothesis import given, settings
from hypothesis import strategies as st
from test_checker import reference_matches, requests, rules

from lab.engines.audit.checker import (
    NearMiss,
    RequestAttributes,
    UserInfo,
    compile_policy,
    evaluate,
    near_misses,
)
from lab.engines.audit.policy import GroupResources, Policy, PolicyRule, load_policy

TABLE = yaml.safe_load((Path(__file__).parent / "cases" / "near_misses.yaml").read_text())


def attrs_from(d: dict[str, Any]) -> RequestAttributes:
    d = dict(d)
    user = d.pop("user")
    return RequestAttributes(
        user=None if user is None else UserInfo(user["username"], tuple(user.get("groups", ()))),
        **d)


@pytest.mark.parametrize("case", TABLE["cases"], ids=lambda c: c["name"])
def test_near_miss_table(case: dict[str, Any]) -> None:
    policy = Policy(tuple(rule_from(r) for r in case["rules"]))
    got = near_misses(policy, attrs_from(case["request"]))
    assert got == [NearMiss(e["rule"], e["field"], e["detail"], e.get("entry"))
                   for e in case["expect"]]


def test_accepts_a_compiled_policy() -> None:
    policy = load_policy("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n"
                         "- level: None\n  verbs: [watch]\n- level: Metadata\n")
    attrs = RequestAttributes(UserInfo("bob"), "get", "/api/v1/pods", True, resource="pods")
    assert near_misses(compile_policy(policy), attrs) == near_misses(policy, attrs)
    assert [m.field for m in near_misses(policy, attrs)] == ["verbs"]


def _fixed(rule: PolicyRule, miss: NearMiss, a: RequestAttributes) -> PolicyRule:
    """The rule with the one reported condition relaxed."""
    if miss.field == "users":
        return replace(rule, users=())
    if miss.field == "verbs":
        return replace(rule, verbs=())
    if miss.field == "namespaces":  # not (): that could turn it into a non-resource rule
        return replace(rule, namespaces=(a.namespace,))
    if miss.field == "userGroups":
        return replace(rule, user_groups=())
    if miss.field == "nonResourceURLs":
        return replace(rule, non_resource_urls=("*",))
    if miss.field == "kind":
        return replace(rule, namespaces=(), resources=(), non_resource_urls=())
    assert miss.entry is not None
    entries = list(rule.resources)
    gr = entries[miss.entry]
    entries[miss.entry] = {
        "resources.group": GroupResources(a.api_group, gr.resources, gr.resource_names),
        "resources.resources": GroupResources(gr.group, ("*",), gr.resource_names),
        "resources.resourceNames": GroupResources(gr.group, gr.resources),
    }[miss.field]
    return replace(rule, resources=tuple(entries))


@settings(max_examples=400, deadline=None)
@given(st.lists(rules(), min_size=1, max_size=4), requests())
def test_a_near_miss_is_one_fix_away(rule_list: list[PolicyRule],
                                     attrs: RequestAttributes) -> None:
    policy = Policy(tuple(rule_list))
    matched = evaluate(policy, attrs).rule_index
    for miss in near_misses(policy, attrs):
        rule = rule_list[miss.rule_index]
        assert matched is None or miss.rule_index < matched
        assert not reference_matches(rule, attrs)
        assert reference_matches(_fixed(rule, miss, attrs), attrs), miss
        assert miss.detail
