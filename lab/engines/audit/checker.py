"""Which audit level a request gets: k8s.io/apiserver's policy checker, literally.

First matching rule wins; no match means level None. Matching follows
``ruleMatches`` in pkg/audit/policy/checker.go, including its quirks (a rule
with namespaces or resources never matches a non-resource request, ``pods/*``
also matches plain ``pods``). Rules are compiled once into closures over
frozensets so evaluation is a handful of set lookups per rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lab.engines.audit.policy import GroupResources, Policy, PolicyRule
from lab.engines.audit.stages import LEVEL_NONE


@dataclass(frozen=True, slots=True)
class UserInfo:
    username: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RequestAttributes:
    user: UserInfo | None  # None: unauthenticated, never matches users/userGroups rules
    verb: str
    path: str
    is_resource_request: bool
    api_group: str = ""
    api_version: str = "v1"
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""


@dataclass(frozen=True, slots=True)
class RuleEvaluation:
    level: str
    omit_stages: tuple[str, ...]  # sorted, policy-wide stages included
    omit_managed_fields: bool
    rule_index: int | None  # None: no rule matched


_Matcher = Callable[[RequestAttributes], bool]


class _Group:
    """One GroupResources entry, pre-split by the kind of match each resource allows."""

    __slots__ = ("any_resource", "names", "exact", "star", "sub_wild", "res_wild")

    def __init__(self, gr: GroupResources) -> None:
        self.any_resource = not gr.resources
        self.names = frozenset(gr.resource_names) or None
        self.exact = frozenset(gr.resources)
        self.star = "*" in gr.resources
        self.sub_wild = frozenset(r[2:] for r in gr.resources if r.startswith("*/"))
        self.res_wild = frozenset(r[:-2] for r in gr.resources if r.endswith("/*"))

    def matches(self, resource: str, subresource: str, combined: str, name: str) -> bool:
        if self.any_resource:
            return True
        if self.names is not None and name not in self.names:
            return False
        return (self.star or combined in self.exact
                or (subresource != "" and subresource in self.sub_wild)
                or resource in self.res_wild)  # "pods/*" also matches "pods": upstream does too


def _compile_rule(rule: PolicyRule) -> _Matcher:
    users = frozenset(rule.users) or None
    groups = frozenset(rule.user_groups) or None
    verbs = frozenset(rule.verbs) or None
    namespaces = frozenset(rule.namespaces) or None
    resource_rule = bool(rule.namespaces or rule.resources)
    by_group: dict[str, list[_Group]] = {}  # a boolean "any", so grouping keeps semantics
    for gr in rule.resources:
        by_group.setdefault(gr.group, []).append(_Group(gr))
    has_entries = bool(rule.resources)
    urls = rule.non_resource_urls
    exact_urls = frozenset(urls)
    # "*" trims to "" and so prefixes every path, as upstream's TrimRight does.
    url_prefixes = tuple(u.rstrip("*") for u in urls if u.endswith("*"))

    def matches(a: RequestAttributes) -> bool:
        if users is not None and (a.user is None or a.user.username not in users):
            return False
        if groups is not None and (a.user is None or groups.isdisjoint(a.user.groups)):
            return False
        if verbs is not None and a.verb not in verbs:
            return False
        if resource_rule:
            if not a.is_resource_request:
                return False
            if namespaces is not None and a.namespace not in namespaces:
                return False  # cluster-scoped requests have namespace "", matched by [""]
            if not has_entries:
                return True
            candidates = by_group.get(a.api_group)
            if candidates is None:
                return False
            sub = a.subresource
            combined = f"{a.resource}/{sub}" if sub else a.resource
            for entry in candidates:
                if entry.matches(a.resource, sub, combined, a.name):
                    return True
            return False
        if urls:
            if a.is_resource_request:
                return False
            return a.path in exact_urls or a.path.startswith(url_prefixes)
        return True

    return matches


class CompiledPolicy:
    """A policy ready for fast, repeated evaluation."""

    __slots__ = ("policy", "_rules", "_default")

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        # Like NewPolicyRuleEvaluator: each rule omits the union of its and the policy's stages.
        self._rules = tuple(
            (_compile_rule(rule), RuleEvaluation(
                rule.level,
                tuple(sorted(set(policy.omit_stages) | set(rule.omit_stages))),
                policy.omit_managed_fields if rule.omit_managed_fields is None
                else rule.omit_managed_fields,
                i,
            ))
            for i, rule in enumerate(policy.rules)
        )
        self._default = RuleEvaluation(
            LEVEL_NONE, tuple(sorted(set(policy.omit_stages))), policy.omit_managed_fields, None)

    def evaluate(self, attrs: RequestAttributes) -> RuleEvaluation:
        for matches, result in self._rules:
            if matches(attrs):
                return result
        return self._default


_cache: dict[int, tuple[Policy, CompiledPolicy]] = {}


def compile_policy(policy: Policy) -> CompiledPolicy:
    """Compile (memoised for the last few policies, keyed by identity)."""
    hit = _cache.get(id(policy))
    if hit is not None and hit[0] is policy:
        return hit[1]
    compiled = CompiledPolicy(policy)
    if len(_cache) >= 16:
        _cache.pop(next(iter(_cache)))
    _cache[id(policy)] = (policy, compiled)
    return compiled


def evaluate(policy: Policy | CompiledPolicy, attrs: RequestAttributes) -> RuleEvaluation:
    """The level, omitted stages and managed-fields choice kube-apiserver would use."""
    compiled = policy if isinstance(policy, CompiledPolicy) else compile_policy(policy)
    return compiled.evaluate(attrs)
