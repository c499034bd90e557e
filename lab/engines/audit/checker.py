"""Which audit level a request gets: k8s.io/apiserver's policy checker, literally.

First matching rule wins; no match means level None. Matching follows
``ruleMatches`` in pkg/audit/policy/checker.go, including its quirks (a rule
with namespaces or resources never matches a non-resource request, ``pods/*``
also matches plain ``pods``). Rules are compiled once into one function each,
over frozensets, so evaluation is a handful of set lookups per rule.

:func:`near_misses` explains a result: the rules that fail on one condition
only, tested with the same per-field conditions the matcher is built from.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lab.engines.audit.gotext import go_quote
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


_Check = Callable[[RequestAttributes], bool]

# The conditions of a rule, named as the policy spells its fields. "kind" is the
# implicit one: a rule with namespaces or resources only matches resource
# requests, one with nonResourceURLs only non-resource requests.
USERS = "users"
USER_GROUPS = "userGroups"
VERBS = "verbs"
KIND = "kind"
NAMESPACES = "namespaces"
RESOURCES = "resources"
NON_RESOURCE_URLS = "nonResourceURLs"


class _Group:
    """One GroupResources entry, pre-split by the kind of match each resource allows.

    Its two parts, :meth:`covers` (resources) and :meth:`names_ok` (resourceNames),
    are what :meth:`matches` combines; the group itself is matched by lookup.
    """

    __slots__ = ("group", "any_resource", "names", "exact", "star", "sub_wild", "res_wild")

    def __init__(self, gr: GroupResources) -> None:
        self.group = gr.group
        self.any_resource = not gr.resources  # upstream: no resources, any name too
        self.names = None if self.any_resource else frozenset(gr.resource_names) or None
        self.exact = frozenset(gr.resources)
        self.star = "*" in gr.resources
        self.sub_wild = frozenset(r[2:] for r in gr.resources if r.startswith("*/"))
        self.res_wild = frozenset(r[:-2] for r in gr.resources if r.endswith("/*"))

    def covers(self, resource: str, subresource: str, combined: str) -> bool:
        return (self.any_resource or self.star or combined in self.exact
                or (subresource != "" and subresource in self.sub_wild)
                or resource in self.res_wild)  # "pods/*" also matches "pods": upstream does too

    def names_ok(self, name: str) -> bool:
        return self.names is None or name in self.names

    def matches(self, resource: str, subresource: str, combined: str, name: str) -> bool:
        names = self.names
        if names is not None and name not in names:  # names_ok, inlined: the hot path
            return False
        return self.covers(resource, subresource, combined)


# ------------------------------------------------ per-field conditions (ruleMatches)
#
# Each condition is written once, as a block of Python that returns False when the
# request ``a`` fails it. A rule's matcher is its blocks in upstream's order, compiled
# into one function (as fast as a hand-inlined matcher: one call per rule); each
# condition alone compiles into the predicate near_misses() asks. Both run the same
# text over the same values, so what matches has one source of truth. The blocks
# name only their own values (listed in _NEEDS), never policy text: nothing from a
# policy file is ever compiled.

_BLOCKS = {
    USERS: """
        user = a.user  # unauthenticated never matches
        if user is None or user.username not in users:
            return False""",
    USER_GROUPS: """
        user = a.user
        if user is None or user_groups.isdisjoint(user.groups):
            return False""",
    VERBS: """
        if a.verb not in verbs:
            return False""",
    "kind:resource": """
        if not a.is_resource_request:
            return False""",
    "kind:non-resource": """
        if a.is_resource_request:
            return False""",
    NAMESPACES: """
        if a.namespace not in namespaces:  # cluster-scoped requests have "", matched by [""]
            return False""",
    RESOURCES: """
        candidates = by_group.get(a.api_group)
        if candidates is None:
            return False
        sub = a.subresource
        combined = a.resource + "/" + sub if sub else a.resource
        for entry in candidates:
            if entry.matches(a.resource, sub, combined, a.name):
                break
        else:
            return False""",
    NON_RESOURCE_URLS: """
        path = a.path  # "*" trims to "" and so prefixes every path, as upstream's TrimRight
        if path not in urls and not path.startswith(url_prefixes):
            return False""",
}
_NEEDS = {
    USERS: ("users",), USER_GROUPS: ("user_groups",), VERBS: ("verbs",),
    "kind:resource": (), "kind:non-resource": (), NAMESPACES: ("namespaces",),
    RESOURCES: ("by_group",), NON_RESOURCE_URLS: ("urls", "url_prefixes"),
}


@functools.cache
def _factory(blocks: tuple[str, ...]) -> Callable[..., _Check]:
    """The compiled ``_make(values...) -> matches`` for this sequence of blocks."""
    names = sorted({n for b in blocks for n in _NEEDS[b]})
    body = "".join(_BLOCKS[b] for b in blocks)
    src = (f"def _make({', '.join(names)}):\n"
           f"    def matches(a):{body}\n"
           "        return True\n"
           "    return matches\n")
    scope: dict[str, Any] = {}
    exec(compile(src, "<audit rule>", "exec"), scope)  # fixed text from _BLOCKS, see above
    make: Callable[..., _Check] = scope["_make"]
    return make


def _compile_blocks(blocks: tuple[str, ...], values: dict[str, object]) -> _Check:
    """One function testing ``blocks`` in order over ``values`` (its closure cells)."""
    return _factory(blocks)(**{n: values[n] for b in blocks for n in _NEEDS[b]})


class _Conditions:
    """A rule as its conditions, in the order upstream's ruleMatches tests them.

    ``subject`` (users, userGroups, verbs) apply to every request; ``kind`` then
    says which requests the rule can match at all, and ``target`` (namespaces
    and resources, or nonResourceURLs) only mean anything for those.
    """

    __slots__ = ("rule", "subject", "kind", "target", "entries", "matches", "_values",
                 "_checks")

    def __init__(self, rule: PolicyRule) -> None:
        self.rule = rule
        self.entries = tuple(_Group(gr) for gr in rule.resources)
        by_group: dict[str, list[_Group]] = {}  # "any entry", so grouping keeps it
        for entry in self.entries:
            by_group.setdefault(entry.group, []).append(entry)
        self._values: dict[str, object] = {
            "users": frozenset(rule.users), "user_groups": frozenset(rule.user_groups),
            "verbs": frozenset(rule.verbs), "namespaces": frozenset(rule.namespaces),
            "by_group": {g: tuple(es) for g, es in by_group.items()},
            "urls": frozenset(rule.non_resource_urls),
            "url_prefixes": tuple(u.rstrip("*") for u in rule.non_resource_urls
                                  if u.endswith("*")),
        }
        self.subject = tuple(name for name, present in (
            (USERS, rule.users), (USER_GROUPS, rule.user_groups), (VERBS, rule.verbs))
            if present)
        self.kind: str | None = None
        self.target: tuple[str, ...] = ()
        if rule.namespaces or rule.resources:  # ruleMatchesResource
            self.kind = "kind:resource"
            self.target = tuple(name for name, present in (
                (NAMESPACES, rule.namespaces), (RESOURCES, rule.resources)) if present)
        elif rule.non_resource_urls:  # ruleMatchesNonResource
            self.kind = "kind:non-resource"
            self.target = (NON_RESOURCE_URLS,)
        kind = [self.kind] if self.kind else []
        self.matches = _compile_blocks((*self.subject, *kind, *self.target), self._values)
        self._checks: dict[str, _Check] = {}

    def check(self, condition: str, a: RequestAttributes) -> bool:
        """Whether ``a`` passes one condition of this rule (compiled on first use)."""
        check = self._checks.get(condition)
        if check is None:
            check = self._checks[condition] = _compile_blocks((condition,), self._values)
        return check(a)

    def failing(self, a: RequestAttributes) -> list[str]:
        """The conditions ``a`` fails, each tested alone; target ones only if the kind holds."""
        failed = [c for c in self.subject if not self.check(c, a)]
        if self.kind is not None and not self.check(self.kind, a):
            return [*failed, KIND]
        return failed + [c for c in self.target if not self.check(c, a)]


class CompiledPolicy:
    """A policy ready for fast, repeated evaluation."""

    __slots__ = ("policy", "conditions", "_rules", "_default")

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.conditions = tuple(_Conditions(rule) for rule in policy.rules)
        # Like NewPolicyRuleEvaluator: each rule omits the union of its and the policy's stages.
        self._rules = tuple(
            (cond.matches, RuleEvaluation(
                rule.level,
                tuple(sorted(set(policy.omit_stages) | set(rule.omit_stages))),
                policy.omit_managed_fields if rule.omit_managed_fields is None
                else rule.omit_managed_fields,
                i,
            ))
            for i, (rule, cond) in enumerate(zip(policy.rules, self.conditions, strict=True))
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


# ------------------------------------------------------------------ near misses


@dataclass(frozen=True, slots=True)
class NearMiss:
    """A rule that would have matched but for one condition, and why it did not.

    ``field`` is the condition: users, userGroups, verbs, namespaces,
    nonResourceURLs, kind (resource rule vs non-resource request or back), or a
    part of one ``resources`` entry: resources.group, resources.resources,
    resources.resourceNames (``entry`` is then that entry's index).
    """

    rule_index: int
    field: str
    detail: str
    entry: int | None = None


GROUP_FIELD = "resources.group"
RESOURCE_FIELD = "resources.resources"
NAMES_FIELD = "resources.resourceNames"


def near_misses(policy: Policy | CompiledPolicy, attrs: RequestAttributes) -> list[NearMiss]:
    """Rules before the one that matched (all, if none did) that fail on exactly one condition.

    A condition is one field of the rule, each tested alone with the matcher's own
    predicates; a ``resources`` list fails on one condition when one of its
    entries fails only on its group, only on its resources, or only on its
    resourceNames. The detail says what about the request the field missed.
    """
    compiled = policy if isinstance(policy, CompiledPolicy) else compile_policy(policy)
    stop = compiled.evaluate(attrs).rule_index
    found: list[NearMiss] = []
    for i, cond in enumerate(compiled.conditions[:stop]):
        failed = cond.failing(attrs)
        if len(failed) != 1:
            continue
        field = failed[0]
        if field == RESOURCES:
            miss = _entry_miss(cond, attrs)
            if miss is not None:
                found.append(NearMiss(i, miss[0], miss[1], miss[2]))
        else:
            found.append(NearMiss(i, field, _explain(field, cond.rule, attrs)))
    return found


def _entry_miss(cond: _Conditions, a: RequestAttributes) -> tuple[str, str, int] | None:
    """The first resources entry that fails on one part only: (field, detail, entry index)."""
    sub = a.subresource
    combined = f"{a.resource}/{sub}" if sub else a.resource
    for j, (entry, gr) in enumerate(zip(cond.entries, cond.rule.resources, strict=True)):
        parts = [(GROUP_FIELD, entry.group == a.api_group),
                 (RESOURCE_FIELD, entry.covers(a.resource, sub, combined)),
                 (NAMES_FIELD, entry.names_ok(a.name))]
        failed = [name for name, ok in parts if not ok]
        if len(failed) == 1:
            return failed[0], _explain_entry(failed[0], gr, a, combined), j
    return None


_q = go_quote


def _list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(_q(v) for v in values) + "]"


def _no_wildcard(field: str, every: str) -> str:
    return (f'{field} take no "*" wildcard in an audit policy ("*" only matches the literal '
            f'string "*"): leave {field} out to match every {every}')


_WILDCARD_EVERY = {USERS: "user", USER_GROUPS: "group", VERBS: "verb", NAMESPACES: "namespace"}
_K8S_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
_HTTP_METHODS = frozenset({"get", "head", "post", "put", "patch", "delete", "options"})
_STREAMING = ("exec", "attach")  # remote command: GET over WebSockets, POST over SPDY


def _explain(field: str, rule: PolicyRule, a: RequestAttributes) -> str:
    listed = {USERS: rule.users, USER_GROUPS: rule.user_groups, VERBS: rule.verbs,
              NAMESPACES: rule.namespaces}.get(field, ())
    if "*" in listed:
        return _no_wildcard(field, _WILDCARD_EVERY[field])
    globbed = [v for v in listed if "*" in v]
    if globbed:
        # "system:node:*" is a common guess; these fields compare whole strings.
        return (f'{field} compare whole strings: {_q(globbed[0])} is no pattern and only '
                f'matches itself literally; list the exact names, or use userGroups '
                f'(e.g. "system:nodes" for every node)' if field == USERS else
                f'{field} compare whole strings: {_q(globbed[0])} is no pattern and only '
                f'matches itself literally')
    user = a.user
    if field in (USERS, USER_GROUPS) and user is None:
        return f"the request is unauthenticated (it has no user), and {field} never match that"
    if field == USERS:
        assert user is not None
        name = user.username
        if name.startswith("system:serviceaccount:"):
            short = [u for u in rule.users if name.endswith(":" + u)]
            if short:
                return (f"the request's user is {_q(name)}: a service account authenticates "
                        f"as system:serviceaccount:<namespace>:<name>, not {_q(short[0])}")
        return f"the request's user is {_q(name)}, not one of {_list(rule.users)}"
    if field == USER_GROUPS:
        assert user is not None
        return (f"the request's user {_q(user.username)} is in the groups "
                f"{_list(user.groups)}, none of {_list(rule.user_groups)}")
    if field == VERBS:
        return _explain_verb(rule, a)
    if field == NAMESPACES:
        if a.namespace == "":
            return (f"the request is cluster-scoped ({_q(a.resource)} has no namespace): "
                    'only "" in namespaces matches cluster-scoped requests')
        return f"the request's namespace is {_q(a.namespace)}, not one of {_list(rule.namespaces)}"
    if field == KIND:
        if a.is_resource_request:
            group = _q(a.api_group)
            res = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
            return (f"the request is for a resource ({_q(res)} in group {group}), and "
                    "nonResourceURLs only match non-resource paths such as /healthz: "
                    f"use resources: [{{group: {group}, resources: [{_q(res)}]}}]")
        what = "namespaces" if rule.namespaces and not rule.resources else "resources"
        return (f"{_q(a.path)} is a non-resource URL, and a rule with {what} only matches "
                "resource requests: use nonResourceURLs")
    return _explain_urls(rule, a)


def _explain_verb(rule: PolicyRule, a: RequestAttributes) -> str:
    verb = a.verb
    said = f"the request's verb is {_q(verb)}"
    if a.is_resource_request and a.subresource in _STREAMING:
        what = f"{a.resource}/{a.subresource}"
        if verb == "get":
            said += f" (kubectl >= 1.30 execs over WebSockets: {what} is a get)"
        elif verb == "create":
            said += f" (kubectl before 1.30 execs over SPDY, a POST: {what} is a create)"
    said += f", not one of {_list(rule.verbs)}"
    http = [v for v in rule.verbs if v.lower() in _HTTP_METHODS and v not in _K8S_VERBS]
    if http:
        said += (f"; {_list(tuple(http))} are HTTP methods, and audit rules use the "
                 f"request's verb ({', '.join(_K8S_VERBS)})")
    return said


def _explain_urls(rule: PolicyRule, a: RequestAttributes) -> str:
    path = a.path
    for spec in rule.non_resource_urls:
        if not spec.endswith("*") and path.startswith(spec.rstrip("/") + "/"):
            return (f"{_q(spec)} matches only that exact path: write {_q(spec + '*')} to "
                    f"match {_q(path)} too")
    for spec in rule.non_resource_urls:
        if "*" in spec.rstrip("*"):
            return (f"{_q(spec)} has a \"*\" before its end, where it is no wildcard: "
                    f"only a trailing \"*\" matches a prefix")
    return f"the request's path is {_q(path)}, matched by none of {_list(rule.non_resource_urls)}"


_VERSION = re.compile(r"v[0-9]+((alpha|beta)[0-9]+)?")


def _explain_entry(field: str, gr: GroupResources, a: RequestAttributes, combined: str) -> str:
    if field == GROUP_FIELD:
        group, want = gr.group, a.api_group
        core = 'the core group is ""' if want == "" else f"{_q(a.resource)} is in {_q(want)}"
        if _VERSION.fullmatch(group):
            return f'{_q(group)} is a version, not a group: {core}'
        if group == "core" and want == "":
            return '"core" is not the group\'s name in an audit policy: the core group is ""'
        if "/" in group and group.split("/", 1)[0] == want:
            return f"{_q(group)} is a group/version: write the group alone, {_q(want)}"
        hint = " (the core group)" if want == "" else ""
        return f"the request's group is {_q(want)}{hint}, not {_q(group)}"
    if field == RESOURCE_FIELD:
        res, sub = a.resource, a.subresource
        if sub and res in gr.resources:
            return (f"{_q(res)} does not cover the subresource {_q(combined)}: "
                    f"list {_q(combined)} or {_q(res + '/*')}")
        partial = [r for r in gr.resources if not sub and r.startswith(res + "/")]
        if partial:
            return f"{_q(partial[0])} only matches that subresource, not {_q(res)} itself"
        typo = [r for r in gr.resources
                if r != combined and r.lower() in (combined, combined.removesuffix("s"))]
        if typo:
            return (f"resources are lowercase plurals as in the URL: {_q(combined)}, "
                    f"not {_q(typo[0])}")
        return f"the request's resource is {_q(combined)}, not one of {_list(gr.resources)}"
    if a.name == "":
        return (f"the request names no object ({_q(a.verb)} on {_q(combined)}: a create or a "
                f"list has no name), so resourceNames {_list(gr.resource_names)} never match it")
    return f"the request's name is {_q(a.name)}, not one of {_list(gr.resource_names)}"
