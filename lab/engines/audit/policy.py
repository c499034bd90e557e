"""Audit policy model and loader with kube-apiserver's exact decoding behaviour.

The loader retraces k8s.io/apiserver ``LoadPolicyFromBytes``: YAML becomes
JSON as sigs.k8s.io/yaml makes it (goyaml), the apiVersion/kind are looked up
as apimachinery's codec does, fields are type-checked as encoding/json decodes
them into ``audit/v1.Policy`` (gojson; unknown fields are only warnings, since
upstream falls back to lenient decoding), then the policy is validated and must
have rules. Every error keeps upstream's wording.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from os import PathLike
from pathlib import Path
from typing import Any

from lab.engines.audit.gojson import DecodeError, StructDecoder, interpret
from lab.engines.audit.gotext import EISDIR, go_aggregate, go_quote, os_error_text, path_error
from lab.engines.audit.goyaml import GoYAMLError, Located, yaml_to_json
from lab.engines.audit.validation import validate_policy_located
from lab.errors import LabError
from lab.nodefs import NotRegularFile, read_regular

MAX_POLICY_BYTES = 1 << 20  # lab limit: kube-apiserver has none, a learner's file never needs it
GROUP = "audit.k8s.io"
_SCHEME = "pkg/audit/scheme.go:30"  # name apimachinery gives audit.Scheme (seen in real logs)
_KINDS = frozenset({"Policy", "PolicyList", "Event", "EventList"})  # kinds audit.Scheme knows


@dataclass(frozen=True)
class GroupResources:
    group: str = ""
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicyRule:
    level: str
    users: tuple[str, ...] = ()
    user_groups: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    resources: tuple[GroupResources, ...] = ()
    namespaces: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    omit_stages: tuple[str, ...] = ()
    omit_managed_fields: bool | None = None
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Policy:
    rules: tuple[PolicyRule, ...]
    omit_stages: tuple[str, ...] = ()
    omit_managed_fields: bool = False
    source: str = "<policy>"
    # Upstream strict-decoding complaints (unknown or duplicate fields). The apiserver
    # only logs them ("Audit policy contains errors, falling back to lenient decoding").
    warnings: tuple[str, ...] = field(default=(), compare=False)
    # The unknown fields among them, as data: (rule index, path inside that rule), or
    # (None, path from the top) outside the rules. 'unknown field "rules[2].usergroups"'
    # is (2, "usergroups"); "rules[0].resources[1].resource" is (0, "resources[1].resource").
    ignored_fields: tuple[tuple[int | None, str], ...] = field(default=(), compare=False)

    def ignored_in_rule(self, index: int) -> tuple[str, ...]:
        """The fields kube-apiserver dropped from rule ``index`` (paths inside the rule)."""
        return tuple(path for i, path in self.ignored_fields if i == index)


class PolicyError(LabError):
    """A policy kube-apiserver would refuse; ``errors`` holds upstream's messages."""

    def __init__(
        self,
        errors: list[str],
        *,
        file: str,
        lines: list[int | None] | None = None,
        upstream: str | None = None,
        summary: str | None = None,
    ) -> None:
        self.errors = errors
        self.lines = lines if lines is not None else [None] * len(errors)
        # Exact text of LoadPolicyFromFile's error (what follows the apiserver's prefix).
        self.upstream = upstream or f"{go_aggregate(errors)}: from file {file}"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(summary or errors[0] + more, file=file, line=self.lines[0])


def apiserver_policy_error(err: PolicyError) -> str:
    """The message kube-apiserver exits with when this policy fails at startup."""
    return f"loading audit policy file: {err.upstream}"


# ------------------------------------------- JSON values -> audit/v1.Policy (its schema)


_RULE_LISTS = {"users": "users", "userGroups": "user_groups", "verbs": "verbs",
               "namespaces": "namespaces", "nonResourceURLs": "non_resource_urls"}


class _PolicyDecoder(StructDecoder):
    """The fields of audit/v1.Policy and their Go types."""

    def __init__(self, ordered: bool) -> None:
        super().__init__(ordered)
        self.ignored: list[tuple[int | None, str]] = []

    def ignore(self, rule: int | None, path: str) -> None:
        """An unknown field: the strict decoder's complaint, and where it was."""
        self.unknown_field(path if rule is None else f"rules[{rule}].{path}")
        self.ignored.append((rule, path))

    def policy(self, top: Located, source: str) -> Policy:
        rules: tuple[PolicyRule, ...] = ()
        stages: tuple[str, ...] = ()
        omit = False
        for key, v in self.items(top.value or {}):
            if key in ("apiVersion", "kind"):
                self.string(v, "string", "Policy", key)
            elif key == "metadata":
                self.metadata(v)
            elif key == "rules":
                items = self.array(v, "[]v1.PolicyRule", "Policy", "rules")
                rules = tuple(self.rule(r, i) for i, r in enumerate(items))
            elif key == "omitStages":
                stages = self.strings(v, "v1.Stage", "Policy", key)
            elif key == "omitManagedFields":
                omit = bool(self.boolean(v, "Policy", key))
            else:
                self.ignore(None, key)
        return Policy(rules, stages, omit, source)

    def metadata(self, v: Located) -> None:
        for key, item in self.items(self.object(v, "v1.ObjectMeta", "Policy", "metadata") or {}):
            stack = f"metadata.{key}"
            if key in ("name", "namespace", "generateName"):
                self.string(item, "string", "ObjectMeta", stack)
            elif key in ("labels", "annotations"):
                for _, text in self.items(
                        self.object(item, "map[string]string", "ObjectMeta", stack) or {}):
                    self.string(text, "string", "ObjectMeta", stack)

    def rule(self, v: Located, i: int) -> PolicyRule:
        fields = self.object(v, "v1.PolicyRule", "Policy", "rules")
        got: dict[str, Any] = {}
        for key, fv in self.items(fields or {}):
            stack = f"rules.{key}"
            if key == "level":
                got["level"] = self.string(fv, "v1.Level", "PolicyRule", stack)
            elif key in _RULE_LISTS:
                got[_RULE_LISTS[key]] = self.strings(fv, "string", "PolicyRule", stack)
            elif key == "omitStages":
                got["omit_stages"] = self.strings(fv, "v1.Stage", "PolicyRule", stack)
            elif key == "omitManagedFields":
                got["omit_managed_fields"] = self.boolean(fv, "PolicyRule", stack)
            elif key == "resources":
                items = self.array(fv, "[]v1.GroupResources", "PolicyRule", stack)
                got["resources"] = tuple(self.group_resources(g, i, f"resources[{j}]")
                                         for j, g in enumerate(items))
            else:
                self.ignore(i, key)
        return PolicyRule(level=got.pop("level", ""), line=v.line, **got)

    def group_resources(self, v: Located, rule: int, where: str) -> GroupResources:
        fields = self.object(v, "v1.GroupResources", "PolicyRule", "rules.resources")
        got: dict[str, Any] = {}
        for key, fv in self.items(fields or {}):
            stack = f"rules.resources.{key}"
            if key == "group":
                got["group"] = self.string(fv, "string", "GroupResources", stack)
            elif key in ("resources", "resourceNames"):
                name = "resources" if key == "resources" else "resource_names"
                got[name] = self.strings(fv, "string", "GroupResources", stack)
            else:
                self.ignore(rule, f"{where}.{key}")
        return GroupResources(**got)


# ----------------------------------------------------------- LoadPolicyFromBytes


def _decode(data: bytes, source: str) -> tuple[Policy, int | None]:
    """LoadPolicyFromBytes up to (not including) validation; also the omitStages line.

    Raises what the codec refuses (GoYAMLError, DecodeError: "failed decoding")
    or, for reader.go's own group/version check, the PolicyError itself.
    """
    # apimachinery decodes a '{'-led document as JSON: document key order, no YAML layer.
    ordered = data.lstrip()[:1] == b"{"
    top, duplicates = yaml_to_json(data)
    top = top or Located(None, 1)
    group, version, kind, line = interpret(top, ordered)
    kind = kind or "Policy"  # the decode target supplies missing kind/group/version
    if not group and not version or not version and group == GROUP:
        group, version = GROUP, "__internal"
    if group != GROUP or version not in ("v1", "__internal") or kind not in _KINDS:
        where = (f"the internal version of group {go_quote(group)}" if version == "__internal"
                 else f"version {go_quote(f'{group}/{version}' if group else version)}")
        raise DecodeError(f"no kind {go_quote(kind)} is registered for {where} in scheme "
                          f"{go_quote(_SCHEME)}", line)
    if kind != "Policy":
        pkg = "k8s.io/apiserver/pkg/apis/audit"
        src_pkg = pkg + "/v1" if version == "v1" else pkg
        raise DecodeError(f"converting ({src_pkg}) {kind} to ({pkg}) Policy: unknown conversion",
                          line)
    if version == "__internal":
        # reader.go checks the decoded group/version itself: no "failed decoding: " prefix.
        raise PolicyError([f"unknown group version field {GROUP}/__internal, Kind=Policy "
                           "in policy"], file=source, lines=[line])
    decoder = _PolicyDecoder(ordered)
    policy = decoder.policy(top, source)
    strict = []
    if duplicates and not ordered:
        strict.append("yaml: unmarshal errors:\n  " + "\n  ".join(duplicates))
    strict += decoder.unknown
    if strict:
        policy = replace(policy, warnings=tuple(strict), ignored_fields=tuple(decoder.ignored))
    stages = top.value.get("omitStages") if isinstance(top.value, dict) else None
    return policy, stages.line if stages is not None else None


# ------------------------------------------------------------------------ public API


def load_policy(data: str | bytes, source: str = "<policy>") -> Policy:
    """Parse and validate an audit policy exactly as kube-apiserver would."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    if len(raw) > MAX_POLICY_BYTES:
        raise _too_large(source, f"{len(raw)} bytes")
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise PolicyError(
            ["failed decoding: yaml: control characters are not allowed"], file=source,
            lines=[raw[:nul].count(b"\n") + 1],
            summary=f"binary data (NUL byte at offset {nul}); an audit policy is YAML text")
    try:
        policy, stages_line = _decode(raw, source)
    except (GoYAMLError, DecodeError) as exc:  # reader.go: "failed decoding: %v"
        raise PolicyError([f"failed decoding: {exc.message}"], file=source,
                          lines=[exc.line]) from None
    seen: dict[str, int | None] = {}
    for msg, idx in validate_policy_located(policy):  # ToAggregate drops repeated messages
        seen.setdefault(msg, stages_line if idx is None else policy.rules[idx].line)
    if seen:
        raise PolicyError(list(seen), file=source, lines=list(seen.values()))
    if not policy.rules:
        raise PolicyError(["loaded illegal policy with 0 rules"], file=source, lines=[None])
    return policy


def load_policy_file(path: str | PathLike[str]) -> Policy:
    """Read (at most 1 MiB of) a policy file and load it.

    Only a regular file is read: a FIFO or device would make os.ReadFile hang
    or run forever, so the lab refuses it instead of blocking.
    """
    name = str(path)
    try:
        raw = read_regular(Path(path), MAX_POLICY_BYTES)
    except NotRegularFile as exc:
        if exc.kind == "directory":  # os.ReadFile opens it, then read(2) fails
            error = path_error("read", name, EISDIR)
        else:
            msg = refused_non_regular(name, exc.kind)
            raise PolicyError([msg], file=name, upstream=msg) from None
    except OSError as exc:
        error = path_error("open", name, os_error_text(exc))
    else:
        return load_policy_head(raw, name)
    # Go's os.ReadFile error, as LoadPolicyFromFile wraps it.
    upstream = f"failed to read file path {go_quote(name)}: {error}"
    raise PolicyError([upstream], file=name, upstream=upstream)


def refused_non_regular(name: str, kind: str) -> str:
    """Why the lab does not read a policy file that is a FIFO, device, ... (``kind``)."""
    return (f"{name} is a {kind}, not a regular file "
            "(kube-apiserver would block reading it; the lab refuses to)")


def load_policy_head(head: bytes, source: str) -> Policy:
    """Load a policy from the first ``MAX_POLICY_BYTES + 1`` bytes read of a file.

    More than the limit means the file is larger, by how much is unknown.
    """
    if len(head) > MAX_POLICY_BYTES:
        raise _too_large(source, f"more than {MAX_POLICY_BYTES} bytes")
    return load_policy(head, source)


def _too_large(source: str, size: str) -> PolicyError:
    msg = (f"file is too large ({size}); the lab refuses audit policies over "
           f"{MAX_POLICY_BYTES} bytes (1 MiB)")
    return PolicyError([msg], file=source, upstream=msg)
