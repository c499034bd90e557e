"""Learner/CI tools over the policy engine; the CLI wraps these thinly."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from os import PathLike
from typing import Any

from lab.engines.audit.checker import (
    CompiledPolicy,
    RequestAttributes,
    RuleEvaluation,
    UserInfo,
    compile_policy,
)
from lab.engines.audit.policy import Policy, PolicyError, load_policy_file
from lab.errors import LabError
from lab.jsonkind import json_kind

_OBJECT_REF_FIELDS = ("apiGroup", "apiVersion", "resource", "subresource", "namespace", "name")


def _bad(value: Any, item: str, want: str = "a string") -> LabError:
    return LabError(f"must be {want}, got {json_kind(value)}", item=item)


def attributes_from_event(obj: dict[str, Any]) -> RequestAttributes:
    """Request attributes from an audit-Event-shaped object (a real audit.log line works).

    No ``user`` means unauthenticated; no ``objectRef`` means a non-resource request
    whose path is ``requestURI`` without its query string.
    """
    return _attributes(_request_fields(obj))


# (username, groups, verb, path, is_resource_request, apiGroup, apiVersion,
#  resource, subresource, namespace, name); username None = unauthenticated.
_Fields = tuple[Any, ...]


def _attributes(f: _Fields) -> RequestAttributes:
    user = None if f[0] is None else UserInfo(f[0], f[1])
    return RequestAttributes(user, *f[2:])


def _request_fields(obj: dict[str, Any]) -> _Fields:
    """The request attributes as a plain tuple: hashable, and cheap to build."""
    # Plain `type(x) is str` checks: this runs once per line of a large log.
    if type(obj) is not dict:
        raise LabError(f"expected a JSON object shaped like an audit Event, got {json_kind(obj)}",
                       item="event")
    if "verb" not in obj:
        raise LabError("missing: every audit Event has a verb", item="verb")
    verb = obj["verb"]
    if type(verb) is not str:
        raise _bad(verb, "verb")
    uri = obj.get("requestURI")
    if type(uri) is not str:
        if uri is not None:
            raise _bad(uri, "requestURI")
        uri = ""
    name = None
    groups: Any = ()
    raw_user = obj.get("user")
    if raw_user is not None:
        if type(raw_user) is not dict:
            raise _bad(raw_user, "user", "an object")
        name = raw_user.get("username")
        if type(name) is not str:
            if name is not None:
                raise _bad(name, "user.username")
            name = ""
        groups = raw_user.get("groups")
        if type(groups) is not list:
            if groups is not None:
                raise _bad(groups, "user.groups", "an array of strings")
            groups = []
        for i, group in enumerate(groups):
            if type(group) is not str:
                raise _bad(group, f"user.groups[{i}]")
        groups = tuple(groups)
    path = uri.partition("?")[0]
    ref = obj.get("objectRef")
    if ref is None:
        if "requestURI" not in obj:
            raise LabError("missing: a non-resource request (no objectRef) needs its URI",
                           item="requestURI")
        return (name, groups, verb, path, False, "", "", "", "", "", "")
    if type(ref) is not dict:
        raise _bad(ref, "objectRef", "an object")
    f = [ref.get(k) for k in _OBJECT_REF_FIELDS]
    for i, value in enumerate(f):
        if type(value) is not str:
            if value is not None:
                raise _bad(value, f"objectRef.{_OBJECT_REF_FIELDS[i]}")
            f[i] = ""
    return (name, groups, verb, path, True, *f)


def _evaluations(policy: Policy | CompiledPolicy, lines: Iterable[str],
                 source: str) -> Iterator[RuleEvaluation]:
    compiled = policy if isinstance(policy, CompiledPolicy) else compile_policy(policy)
    # Logs repeat the same requests over and over (controllers polling); the
    # decision is a pure function of the attributes, so remember it.
    memo: dict[_Fields, RuleEvaluation] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise LabError(f"not valid JSON: {msg}", file=source, line=number) from None
        try:
            key = _request_fields(obj)
        except LabError as exc:
            raise LabError(exc.message, file=source, line=number, item=exc.item) from None
        result = memo.get(key)
        if result is None:
            if len(memo) >= _MEMO_SIZE:
                memo.clear()
            result = memo[key] = compiled.evaluate(_attributes(key))
        yield result


_MEMO_SIZE = 65536


def _as_dict(result: RuleEvaluation) -> dict[str, Any]:
    return {
        "level": result.level,
        "omitStages": list(result.omit_stages),
        "omitManagedFields": result.omit_managed_fields,
        "rule": result.rule_index,
    }


def eval_lines(policy: Policy | CompiledPolicy, lines: Iterable[str],
               source: str = "<stdin>") -> Iterator[dict[str, Any]]:
    """Evaluate one JSON event per line; yields level, omitStages, omitManagedFields, rule."""
    for result in _evaluations(policy, lines, source):
        yield _as_dict(result)


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


def eval_jsonl(policy: Policy | CompiledPolicy, lines: Iterable[str],
               source: str = "<stdin>", batch: int = 2048) -> Iterator[str]:
    """eval_lines as JSON text, in chunks of up to `batch` lines.

    A result depends only on the rule that matched, so each distinct one is
    serialised once; chunks keep writes few even on an unbuffered stdout.
    """
    cache: dict[int | None, str] = {}
    chunk: list[str] = []
    for result in _evaluations(policy, lines, source):
        out = cache.get(result.rule_index)
        if out is None:
            out = json.dumps(_as_dict(result), separators=(",", ":")) + "\n"
            cache[result.rule_index] = out
        chunk.append(out)
        if len(chunk) >= batch:
            yield "".join(chunk)
            chunk.clear()
    if chunk:
        yield "".join(chunk)
