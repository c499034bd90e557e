"""Learner/CI tools over the policy engine; the CLI wraps these thinly."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from os import PathLike
from typing import Any

from lab.engines.audit.checker import (
    CompiledPolicy,
    RequestAttributes,
    UserInfo,
    compile_policy,
)
from lab.engines.audit.policy import Policy, PolicyError, load_policy_file
from lab.errors import LabError

_OBJECT_REF_FIELDS = ("apiGroup", "apiVersion", "resource", "subresource", "namespace", "name")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _string(obj: dict[str, Any], key: str, item: str, default: str = "") -> str:
    value = obj.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise LabError(f"must be a string, got {_kind(value)}", item=item)
    return value


def attributes_from_event(obj: dict[str, Any]) -> RequestAttributes:
    """Request attributes from an audit-Event-shaped object (a real audit.log line works).

    No ``user`` means unauthenticated; no ``objectRef`` means a non-resource request
    whose path is ``requestURI`` without its query string.
    """
    if not isinstance(obj, dict):
        raise LabError(f"expected a JSON object shaped like an audit Event, got {_kind(obj)}",
                       item="event")
    if "verb" not in obj:
        raise LabError("missing: every audit Event has a verb", item="verb")
    verb = _string(obj, "verb", "verb")
    user = None
    raw_user = obj.get("user")
    if raw_user is not None:
        if not isinstance(raw_user, dict):
            raise LabError(f"must be an object, got {_kind(raw_user)}", item="user")
        groups = raw_user.get("groups") or []
        if not isinstance(groups, list):
            raise LabError(f"must be an array of strings, got {_kind(groups)}",
                           item="user.groups")
        for i, group in enumerate(groups):
            if not isinstance(group, str):
                raise LabError(f"must be a string, got {_kind(group)}", item=f"user.groups[{i}]")
        user = UserInfo(_string(raw_user, "username", "user.username"), tuple(groups))
    uri = _string(obj, "requestURI", "requestURI")
    path = uri.split("?", 1)[0]
    ref = obj.get("objectRef")
    if ref is None:
        if "requestURI" not in obj:
            raise LabError("missing: a non-resource request (no objectRef) needs its URI",
                           item="requestURI")
        return RequestAttributes(user, verb, path, False, api_version="")
    if not isinstance(ref, dict):
        raise LabError(f"must be an object, got {_kind(ref)}", item="objectRef")
    f = {k: _string(ref, k, f"objectRef.{k}") for k in _OBJECT_REF_FIELDS}
    return RequestAttributes(user, verb, path, True, f["apiGroup"], f["apiVersion"],
                             f["resource"], f["subresource"], f["namespace"], f["name"])


def eval_lines(policy: Policy | CompiledPolicy, lines: Iterable[str],
               source: str = "<stdin>") -> Iterator[dict[str, Any]]:
    """Evaluate one JSON event per line; yields level, omitStages, omitManagedFields, rule."""
    compiled = policy if isinstance(policy, CompiledPolicy) else compile_policy(policy)
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise LabError(f"not valid JSON: {msg}", file=source, line=number) from None
        try:
            attrs = attributes_from_event(obj)
        except LabError as exc:
            raise LabError(exc.message, file=source, line=number, item=exc.item) from None
        result = compiled.evaluate(attrs)
        yield {
            "level": result.level,
            "omitStages": list(result.omit_stages),
            "omitManagedFields": result.omit_managed_fields,
            "rule": result.rule_index,
        }


def validate_file(path: str | PathLike[str]) -> tuple[list[str], list[str]]:
    """Error and warning lines for a policy file, as ``file:line: message``.

    No errors means kube-apiserver loads it. Warnings are what it only logs
    (unknown or duplicate fields, then lenient decoding): the file loads, but a
    misspelt field is ignored, which usually makes a rule match more than meant.
    """
    try:
        policy = load_policy_file(path)
    except PolicyError as exc:
        return [
            f"{exc.file}:{line}: {err}" if line else f"{exc.file}: {err}"
            for err, line in zip(exc.errors, exc.lines, strict=True)
        ], []
    return [], [f"{policy.source}: {w} (ignored by kube-apiserver)" for w in policy.warnings]
