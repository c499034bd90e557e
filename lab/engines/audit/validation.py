"""Audit policy validation, worded exactly like k8s.io/apiserver's ValidatePolicy.

Also apimachinery's RFC 1123 name checks, which pod validation shares.

Each error is one ``field.Error`` string (``path: Type: value: detail``) in the
order upstream appends them. Level and stage names come from :mod:`stages`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from lab.engines.audit.gotext import go_quote
from lab.engines.audit.stages import LEVELS, STAGES

if TYPE_CHECKING:
    from lab.engines.audit.policy import GroupResources, Policy, PolicyRule

# apimachinery pkg/util/validation: the RFC 1123 name checks and their messages.
_DNS_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = _DNS_LABEL + "(\\." + _DNS_LABEL + ")*"
_DNS_LABEL_RE = re.compile(_DNS_LABEL)
_DNS_SUBDOMAIN_RE = re.compile(_DNS_SUBDOMAIN)
_DNS_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character"
)


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    """validation.RegexError, spacing quirk included ("'a',  or 'b', regex ...")."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def is_dns1123_label(value: str) -> list[str]:
    """validation.IsDNS1123Label: why ``value`` is not an RFC 1123 label ([] if it is)."""
    errs = []
    if len(value.encode()) > 63:  # Go's len() counts bytes
        errs.append("must be no more than 63 characters")
    if not _DNS_LABEL_RE.fullmatch(value):
        if _DNS_SUBDOMAIN_RE.fullmatch(value):
            errs.append("must not contain dots")  # a valid subdomain: only the dots are wrong
        else:
            errs.append(_regex_error(_DNS_LABEL_MSG, _DNS_LABEL, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    """validation.IsDNS1123Subdomain: why ``value`` is not an RFC 1123 subdomain."""
    errs = []
    if len(value.encode()) > 253:
        errs.append("must be no more than 253 characters")
    if not _DNS_SUBDOMAIN_RE.fullmatch(value):
        errs.append(_regex_error(_DNS_SUBDOMAIN_MSG, _DNS_SUBDOMAIN, "example.com"))
    return errs


def go_string_slice(values: Iterable[str]) -> str:
    """Go's %#v of a []string, e.g. []string{"a", "b"}."""
    return "[]string{" + ", ".join(go_quote(v) for v in values) + "}"


def _invalid(path: str, shown: str, detail: str) -> str:
    return f"{path}: Invalid value: {shown}: {detail}"


def _level(level: str, path: str) -> list[str]:
    if level in LEVELS:
        return []
    if level == "":
        return [f"{path}: Required value"]
    supported = ", ".join(go_quote(v) for v in LEVELS)
    # audit.Level is a named string type, so upstream prints it with %#v (quoted).
    return [f"{path}: Unsupported value: {go_quote(level)}: supported values: {supported}"]


def _non_resource_urls(urls: tuple[str, ...], path: str) -> list[str]:
    errs = []
    for i, url in enumerate(urls):
        if url == "*":
            continue
        if not url.startswith("/"):
            errs.append(_invalid(f"{path}[{i}]", go_quote(url),
                                 "non-resource URL rules must begin with a '/' character"))
        if url and "*" in url[:-1]:
            errs.append(_invalid(f"{path}[{i}]", go_quote(url),
                                 "non-resource URL wildcards '*' must be the final character"
                                 " of the rule"))
    return errs


def _resources(groups: tuple[GroupResources, ...], path: str) -> list[str]:
    # Upstream uses fldPath.Child("group"), not an indexed path, so two bad
    # entries print the same path (and the aggregate later de-duplicates them).
    errs = []
    for gr in groups:
        if gr.group:
            msgs = is_dns1123_subdomain(gr.group)
            if msgs:
                errs.append(_invalid(f"{path}.group", go_quote(gr.group), ",".join(msgs)))
        if gr.resource_names and not gr.resources:
            errs.append(_invalid(f"{path}.resourceNames", go_string_slice(gr.resource_names),
                                 "using resourceNames requires at least one resource"))
    return errs


def _omit_stages(stages: tuple[str, ...], path: str) -> list[str]:
    allowed = "allowed stages are " + ",".join(STAGES)
    return [_invalid(f"{path}[{i}]", go_quote(s), allowed)
            for i, s in enumerate(stages) if s not in STAGES]


def _rule(rule: PolicyRule, path: str) -> list[str]:
    errs = _level(rule.level, f"{path}.level")
    errs += _non_resource_urls(rule.non_resource_urls, f"{path}.nonResourceURLs")
    errs += _resources(rule.resources, f"{path}.resources")
    errs += _omit_stages(rule.omit_stages, f"{path}.omitStages")
    if rule.non_resource_urls and (rule.resources or rule.namespaces):
        errs.append(_invalid(f"{path}.nonResourceURLs", go_string_slice(rule.non_resource_urls),
                             "rules cannot apply to both regular resources and non-resource URLs"))
    return errs


def validate_policy_located(policy: Policy) -> list[tuple[str, int | None]]:
    """Like validate_policy, with the index of the rule each error belongs to."""
    located: list[tuple[str, int | None]] = [
        (e, None) for e in _omit_stages(policy.omit_stages, "omitStages")
    ]
    for i, rule in enumerate(policy.rules):
        located += [(e, i) for e in _rule(rule, f"rules[{i}]")]
    return located


def validate_policy(policy: Policy) -> list[str]:
    """Upstream's field.ErrorList for the policy, as strings ([] = valid).

    Not de-duplicated: upstream's ToAggregate does that later (load_policy too).
    """
    return [e for e, _ in validate_policy_located(policy)]
