"""The audit policy checker against upstream's checker_test.go (as data) and lab cases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from audit_rules import rule_from
from hypothesis import given, settings
from hypothesis import strategies as st

from lab.engines.audit.checker import (
    CompiledPolicy,
    RequestAttributes,
    RuleEvaluation,
    UserInfo,
    compile_policy,
    evaluate,
)
from lab.engines.audit.policy import GroupResources, Policy, PolicyRule, load_policy

TABLE = yaml.safe_load((Path(__file__).parent / "cases" / "checker.yaml").read_text())
UP = TABLE["upstream"]


def policy_from(d: dict[str, Any]) -> Policy:
    return Policy(tuple(rule_from(r) for r in d["rules"]), tuple(d.get("omitStages") or ()),
                  bool(d.get("omitManagedFields", False)))


def attrs_from(d: dict[str, Any]) -> RequestAttributes:
    d = dict(d)
    user = d.pop("user")
    return RequestAttributes(
        user=None if user is None else UserInfo(user["username"], tuple(user.get("groups", ()))),
        **d)


def upstream_policy(rule_names: list[str], stages: list[str] | None) -> Policy:
    return Policy(tuple(rule_from(UP["rules"][n]) for n in rule_names), tuple(stages or ()))


AUDIT_LEVEL = [
    pytest.param(req, level, names, stages, id=f"{req}-{'+'.join(names)}-stages{len(stages)}")
    for stages in UP["stage_sets"]
    for req, level, names in UP["audit_level"]
]


@pytest.mark.parametrize("request_name, level, rule_names, stages", AUDIT_LEVEL)
def test_upstream_audit_level(request_name: str, level: str, rule_names: list[str],
                              stages: list[str]) -> None:
    attrs = attrs_from(UP["attributes"][request_name])
    result = evaluate(upstream_policy(rule_names, stages), attrs)
    assert result.level == level
    assert result.omit_stages == tuple(sorted(stages))
    if level == "None":  # no upstream rule here has level None: None means nothing matched
        assert result.rule_index is None


@pytest.mark.parametrize("case", UP["omit_stages"], ids=lambda c: f"{c['request']}-{c['rules'][0]}")
def test_upstream_omit_stages(case: dict[str, Any]) -> None:
    result = evaluate(upstream_policy(case["rules"], case["policy_stages"]),
                      attrs_from(UP["attributes"][case["request"]]))
    assert result.level == case["level"]
    assert result.omit_stages == tuple(sorted(case["omit_stages"]))


@pytest.mark.parametrize("case", UP["union_stages"])
def test_upstream_union_stages(case: dict[str, Any]) -> None:
    policy = Policy((PolicyRule("Metadata", omit_stages=tuple(case["b"])),),
                    tuple(case["a"] or ()))
    result = evaluate(policy, RequestAttributes(None, "get", "/", False))
    assert result.omit_stages == tuple(sorted(case["expected"]))


@pytest.mark.parametrize("case", UP["omit_managed_fields"], ids=lambda c: c["name"])
def test_upstream_omit_managed_fields(case: dict[str, Any]) -> None:
    rule = PolicyRule("RequestResponse", verbs=("get",), omit_managed_fields=case["rule"])
    result = evaluate(Policy((rule,), omit_managed_fields=case["policy"]),
                      RequestAttributes(None, "get", "", False))
    assert result.omit_managed_fields is case["expected"]


@pytest.mark.parametrize("case", TABLE["lab"], ids=lambda c: c["name"])
def test_lab_cases(case: dict[str, Any]) -> None:
    result = evaluate(policy_from(case["policy"]), attrs_from(case["request"]))
    expect = case["expect"]
    assert result == RuleEvaluation(expect["level"], tuple(expect["omitStages"]),
                                    expect["omitManagedFields"], expect["rule"])


def test_compiled_policy_is_reused_and_accepted_directly() -> None:
    policy = Policy((PolicyRule("Request"),))
    compiled = compile_policy(policy)
    assert compile_policy(policy) is compiled
    assert isinstance(compiled, CompiledPolicy) and compiled.policy is policy
    attrs = RequestAttributes(None, "get", "/x", False)
    assert evaluate(compiled, attrs) == evaluate(policy, attrs)


def test_loaded_policy_evaluates_with_rule_index() -> None:
    policy = load_policy(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n"
        "- level: None\n  nonResourceURLs: [/healthz*]\n"
        "- level: Metadata\n  resources: [{group: '', resources: [secrets]}]\n"
        "- level: Request\n")
    secret = RequestAttributes(UserInfo("bob"), "get", "/api/v1/namespaces/a/secrets/s", True,
                               resource="secrets", namespace="a", name="s")
    assert evaluate(policy, secret).rule_index == 1
    assert evaluate(policy, RequestAttributes(None, "get", "/healthz", False)).rule_index == 0


# ---------------------------------------------------------------------------------------
# Property: the compiled matcher agrees with a line-by-line port of upstream ruleMatches.


def reference_matches(r: PolicyRule, a: RequestAttributes) -> bool:
    user = a.user
    if r.users and (user is None or user.username not in r.users):
        return False
    if r.user_groups:
        if user is None or not any(g in r.user_groups for g in user.groups):
            return False
    if r.verbs and a.verb not in r.verbs:
        return False
    if r.namespaces or r.resources:
        if not a.is_resource_request:
            return False
        if r.namespaces and a.namespace not in r.namespaces:
            return False
        if not r.resources:
            return True
        combined = a.resource + "/" + a.subresource if a.subresource else a.resource
        for gr in r.resources:
            if gr.group != a.api_group:
                continue
            if not gr.resources:
                return True
            for res in gr.resources:
                if not gr.resource_names or a.name in gr.resource_names:
                    if res in (combined, "*"):
                        return True
                    if a.subresource and res.startswith("*/") and a.subresource == res[2:]:
                        return True
                    if res.endswith("/*") and a.resource == res[:-2]:
                        return True
        return False
    if r.non_resource_urls:
        if a.is_resource_request:
            return False
        return any(spec == "*" or spec == a.path
                   or (spec.endswith("*") and a.path.startswith(spec.rstrip("*")))
                   for spec in r.non_resource_urls)
    return True


WORDS = st.sampled_from(["", "a", "b", "pods", "log", "*"])
SPECS = st.sampled_from(["*", "pods", "pods/log", "pods/*", "*/log", "*/*", "/*", "a", "a/b"])
URLS = st.sampled_from(["*", "/a", "/a*", "/a/*", "/", "/b**", ""])
NAMES = st.lists(st.sampled_from(["", "a", "b", "u1"]), max_size=2).map(tuple)


@st.composite
def rules(draw: st.DrawFn) -> PolicyRule:
    grs = draw(st.lists(st.builds(GroupResources, st.sampled_from(["", "apps", "*"]),
                                  st.lists(SPECS, max_size=3).map(tuple), NAMES), max_size=2))
    return PolicyRule("Metadata", users=draw(NAMES), user_groups=draw(NAMES),
                      verbs=draw(st.lists(st.sampled_from(["get", "list"]), max_size=1).map(tuple)),
                      resources=tuple(grs), namespaces=draw(NAMES),
                      non_resource_urls=draw(st.lists(URLS, max_size=2).map(tuple)))


@st.composite
def requests(draw: st.DrawFn) -> RequestAttributes:
    user = draw(st.none() | st.builds(UserInfo, st.sampled_from(["u1", "a"]), NAMES))
    return RequestAttributes(user, draw(st.sampled_from(["get", "list"])),
                             draw(st.sampled_from(["/a", "/a/x", "/b", "/bb", "", "/"])),
                             draw(st.booleans()), draw(st.sampled_from(["", "apps"])), "v1",
                             draw(WORDS), draw(WORDS), draw(st.sampled_from(["", "a"])),
                             draw(st.sampled_from(["", "a", "b"])))


@settings(max_examples=300, deadline=None)
@given(st.lists(rules(), min_size=1, max_size=3), requests())
def test_compiled_matches_reference(rule_list: list[PolicyRule], attrs: RequestAttributes) -> None:
    expected = next((i for i, r in enumerate(rule_list) if reference_matches(r, attrs)), None)
    assert evaluate(Policy(tuple(rule_list)), attrs).rule_index == expected
