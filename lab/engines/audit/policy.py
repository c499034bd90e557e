"""Audit policy model and loader with kube-apiserver's exact decoding behaviour.

The loader retraces k8s.io/apiserver ``LoadPolicyFromBytes``: YAML is read the
way sigs.k8s.io/yaml (goyaml.v2) reads it, turned into JSON-like values, the
apiVersion/kind are interpreted like apimachinery's serializer, fields are
type-checked like Go's json decoder into ``audit/v1.Policy`` (unknown fields
are only warnings: upstream falls back to lenient decoding), then the policy
is validated and must have rules. Every error keeps upstream's wording.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, NoReturn

import yaml

from lab.engines.audit.gotext import (
    go_aggregate,
    go_parse_int,
    go_parse_uint,
    go_quote,
    json_type,
)
from lab.engines.audit.validation import validate_policy_located
from lab.errors import LabError
from lab.nodefs import NotRegularFile, read_regular

MAX_POLICY_BYTES = 1 << 20  # lab limit: kube-apiserver has none, a learner's file never needs it
MAX_DEPTH = 200  # nesting guard so hostile YAML cannot exhaust Python's stack
MAX_NODES = 1_000_000  # expansion cap: more than any 1 MiB file holds without aliases
GROUP = "audit.k8s.io"
_SCHEME = "pkg/audit/scheme.go:30"  # name apimachinery gives audit.Scheme (seen in real logs)
_KINDS = frozenset({"Policy", "PolicyList", "Event", "EventList"})  # kinds audit.Scheme knows
_LIBYAML = hasattr(yaml, "CSafeLoader")  # libyaml is what goyaml was ported from: same messages


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


class _Fail(Exception):
    """One upstream load error and its real line.

    ``text`` is what the decoder said; LoadPolicyFromBytes returns it as
    "failed decoding: <text>" unless ``decoded`` (the document decoded and a
    later check of LoadPolicyFromBytes itself failed, which it returns bare).
    """

    def __init__(self, text: str, line: int | None = None, *, decoded: bool = False) -> None:
        super().__init__(text)
        self.text = text
        self.line = line
        self.decoded = decoded

    @property
    def message(self) -> str:
        return self.text if self.decoded else f"failed decoding: {self.text}"


# ---------------------------------------------------------------- YAML events -> nodes


class _Node:
    __slots__ = ("kind", "value", "tag", "plain", "line", "target", "anchor")

    def __init__(self, kind: str, value: Any, line: int, tag: str | None = None,
                 plain: bool = False, target: _Node | None = None, anchor: str = "") -> None:
        self.kind, self.value, self.line, self.tag = kind, value, line, tag
        self.plain, self.target, self.anchor = plain, target, anchor


def _compose(data: bytes) -> _Node | None:
    # Upstream decodes only the first YAML document; anchors may be redefined.
    loader = (yaml.CSafeLoader if _LIBYAML else yaml.SafeLoader)(data)
    try:
        loader.get_event()
        if loader.check_event(yaml.StreamEndEvent):
            return None
        loader.get_event()
        node = _compose_node(loader, {}, 0)
        loader.get_event()
        return node
    except yaml.YAMLError as exc:
        raise _yaml_fail(exc, data) from None
    finally:
        loader.dispose()


def _compose_node(loader: Any, anchors: dict[str, _Node], depth: int) -> _Node:
    event = loader.get_event()
    line = event.start_mark.line + 1
    if depth > MAX_DEPTH:
        raise _Fail(f"yaml: nesting deeper than {MAX_DEPTH} levels (refused by the lab)", line)
    if isinstance(event, yaml.AliasEvent):
        name = event.anchor or ""
        target = anchors.get(name)
        if target is None:
            raise _Fail(f"yaml: unknown anchor '{name}' referenced", line)
        return _Node("alias", None, line, target=target, anchor=name)
    if isinstance(event, yaml.ScalarEvent):
        node = _Node("scalar", event.value, line, event.tag, event.style in (None, ""))
    else:
        kind, end = ("seq", yaml.SequenceEndEvent) if isinstance(
            event, yaml.SequenceStartEvent) else ("map", yaml.MappingEndEvent)
        node = _Node(kind, [], line, event.tag)
    if event.anchor:
        anchors[event.anchor] = node  # before children, so self-references resolve
    if node.kind != "scalar":
        while not loader.check_event(end):
            node.value.append(_compose_node(loader, anchors, depth + 1))
        loader.get_event()
    return node


# PyYAML's pure-Python wording -> libyaml's (used only when libyaml is missing).
_PY_PROBLEMS = (
    (r"found character .* that cannot start any token",
     "found character that cannot start any token"),
    (r"mapping values are not allowed here", "mapping values are not allowed in this context"),
    (r"sequence entries are not allowed here",
     "block sequence entries are not allowed in this context"),
    (r"expected ',' or '\]'", "did not find expected ',' or ']'"),
    (r"expected ',' or '\}'", "did not find expected ',' or '}'"),
    (r"expected the node content", "did not find expected node content"),
    (r"expected '<document start>'", "did not find expected <document start>"),
)


def _yaml_fail(exc: yaml.YAMLError, data: bytes) -> _Fail:
    if isinstance(exc, yaml.reader.ReaderError):
        line = data[: max(exc.position, 0)].count(b"\n") + 1
        reason = exc.reason if _LIBYAML else (
            "control characters are not allowed" if "special characters" in exc.reason
            else "invalid leading UTF-8 octet")
        return _Fail(f"yaml: {reason}", line)
    assert isinstance(exc, yaml.MarkedYAMLError)
    problem, context = exc.problem or "", exc.context or ""
    if not _LIBYAML:
        for pattern, libyaml in _PY_PROBLEMS:
            if re.match(pattern, problem):
                problem = libyaml
                break
        else:
            if problem.startswith("expected <block end>"):
                problem = ("did not find expected key" if "mapping" in context
                           else "did not find expected '-' indicator")
    pmark, cmark = exc.problem_mark, exc.context_mark
    # goyaml's parser.fail(): a parser error reports the 0-based line of the problem
    # mark (so usually one line early); only scanner errors add one.
    shown = 0
    if pmark is not None and pmark.line:
        shown = pmark.line + (1 if isinstance(exc, yaml.scanner.ScannerError) else 0)
    elif cmark is not None and cmark.line:
        shown = cmark.line
    where = f"line {shown}: " if shown else ""
    mark = pmark or cmark
    real = mark.line + 1 if mark is not None else None
    return _Fail(f"yaml: {where}{problem or 'unknown problem parsing YAML content'}", real)


# ------------------------------------------------- nodes -> JSON-like values (goyaml.v2)


class _V:
    """A JSON-like value and the 1-based line it came from."""

    __slots__ = ("value", "line")

    def __init__(self, value: Any, line: int) -> None:
        self.value, self.line = value, line


_BOOL_NULL = {
    **dict.fromkeys("y Y yes Yes YES true True TRUE on On ON".split(), True),
    **dict.fromkeys("n N no No NO false False FALSE off Off OFF".split(), False),
    **dict.fromkeys(["", "~", "null", "Null", "NULL"], None),
    **dict.fromkeys([".nan", ".NaN", ".NAN"], math.nan),
    **dict.fromkeys(".inf .Inf .INF +.inf +.Inf +.INF".split(), math.inf),
    **dict.fromkeys("-.inf -.Inf -.INF".split(), -math.inf),
}
_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_TAG = "tag:yaml.org,2002:"


def _go_int(plain: str) -> int | None:
    """strconv.ParseInt(s, 0, 64), falling back to ParseUint, as goyaml.v2 tries them."""
    for parse in (go_parse_int, go_parse_uint):
        try:
            return parse(plain)
        except ValueError:
            continue
    return None


def _resolve_plain(text: str) -> Any:
    # goyaml.v2 resolve(): YAML 1.1 booleans (y/n/on/off too), ints via Go's ParseInt,
    # timestamps stay strings when decoded into interface{}.
    if text in _BOOL_NULL:
        return _BOOL_NULL[text]
    if text and text[0] in "+-0123456789":
        plain = text.replace("_", "")
        number = _go_int(plain)
        if number is not None:
            return number
        if _YAML_FLOAT.fullmatch(plain):
            return float(plain)
    elif text.startswith(".") and _YAML_FLOAT.fullmatch(text):
        return float(text)
    return text


_RESOLVABLE = ("bool", "int", "float", "null", "timestamp")  # goyaml.v2 resolvableTag
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ].*)?")


def _scalar(node: _Node) -> Any:
    tag = node.tag
    if tag is None:
        return _resolve_plain(node.value) if node.plain else node.value
    want = tag[len(_TAG):] if tag.startswith(_TAG) else ""
    if want not in _RESOLVABLE:  # !!str, !!binary, custom and unknown tags: the raw text
        return node.value
    value = _resolve_plain(node.value)
    got = {bool: "bool", int: "int", float: "float", type(None): "null"}.get(type(value), "str")
    if got == "str" and _TIMESTAMP.fullmatch(node.value):
        got = "timestamp"  # decoded into interface{}, a timestamp stays a string
    if want == got or (want == "float" and got == "int"):
        return float(value) if want == "float" else value
    raise _Fail(f"yaml: cannot decode !!{got} `{node.value}` as a !!{want}", node.line)


def _allowed_alias_ratio(decodes: int) -> float:
    # goyaml.v2's billion-laughs guard, copied number for number.
    if decodes <= 400_000:
        return 0.99
    if decodes >= 4_000_000:
        return 0.10
    return 0.99 - 0.89 * (decodes - 400_000) / 3_600_000


def _json_key(key: Any, line: int) -> str:
    # sigs.k8s.io/yaml turns non-string map keys into strings before json.Marshal.
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, str | int):
        return str(key)
    if isinstance(key, float):
        return {math.inf: ".inf", -math.inf: "-.inf"}.get(key, ".nan" if key != key else f"{key:g}")
    raise _Fail(f"unsupported map key of type: %!s(<nil>), key: <nil>, value: {key!r}", line)


class _Decoder:
    """goyaml.v2 Unmarshal into interface{}, with its alias accounting."""

    def __init__(self) -> None:
        self.decodes = self.aliases = self.alias_depth = self.depth = 0
        self.active: set[int] = set()
        self.duplicates: list[str] = []

    def value(self, n: _Node) -> _V:
        self.decodes += 1
        if self.alias_depth:
            self.aliases += 1
        if (self.aliases > 100 and self.decodes > 1000
                and self.aliases / self.decodes > _allowed_alias_ratio(self.decodes)):
            raise _Fail("yaml: document contains excessive aliasing", n.line)
        if self.decodes > MAX_NODES:  # goyaml would go on to ~4M nodes; the lab stops earlier
            raise _Fail(f"yaml: document expands to more than {MAX_NODES} nodes "
                        "(refused by the lab)", n.line)
        if n.kind == "alias":
            assert n.target is not None
            if id(n) in self.active:
                raise _Fail(f"yaml: anchor '{n.anchor}' value contains itself", n.line)
            if self.depth > MAX_DEPTH:
                raise _Fail(f"yaml: aliases nest deeper than {MAX_DEPTH} levels "
                            "(refused by the lab)", n.line)
            self.active.add(id(n))
            self.alias_depth += 1
            self.depth += 1
            try:
                return self.value(n.target)
            finally:
                self.active.discard(id(n))
                self.alias_depth -= 1
                self.depth -= 1
        if n.kind == "scalar":
            return _V(_scalar(n), n.line)
        if n.kind == "seq":
            return _V([self.value(c) for c in n.value], n.line)
        out: dict[tuple[type, Any], tuple[str, _V]] = {}
        for k, v in zip(n.value[::2], n.value[1::2], strict=True):
            if k.kind == "scalar" and k.value == "<<" and (
                    (k.plain and k.tag is None) or k.tag == _TAG + "merge"):
                self._merge(v, out)
                continue
            key = self.value(k)
            if isinstance(key.value, list | dict):
                raise _Fail(f"yaml: invalid map key: {key.value!r}", k.line)
            self._set(out, key.value, self.value(v), v.line)
        return _V(dict(out.values()), n.line)

    def _set(self, out: dict[tuple[type, Any], tuple[str, _V]], key: Any, val: _V,
             line: int) -> None:
        slot = (type(key), key)
        if slot in out:  # the strict pass (YAMLToJSONStrict) reports; lenient keeps the last
            self.duplicates.append(f"line {line}: key {_go_value(key)} already set in map")
        out[slot] = (_json_key(key, line), val)

    def _merge(self, v: _Node, out: dict[tuple[type, Any], tuple[str, _V]]) -> None:
        def is_map(n: _Node) -> bool:
            return n.kind == "map" or (n.kind == "alias" and n.target is not None
                                       and n.target.kind == "map")
        sources = [v] if is_map(v) else v.value[::-1] if v.kind == "seq" else None
        if not sources or not all(is_map(s) for s in sources):
            raise _Fail("yaml: map merge requires map or sequence of maps as the value", v.line)
        for src in sources:
            for key, val in self.value(src).value.items():
                self._set(out, key, val, val.line)


def _go_value(key: Any) -> str:
    return go_quote(key) if isinstance(key, str) else str(key).lower() if isinstance(
        key, bool) else "<nil>" if key is None else str(key)


def _check_marshal(v: _V) -> None:
    # json.Marshal refuses NaN and infinities anywhere in the document.
    val = v.value
    if isinstance(val, float) and not math.isfinite(val):
        shown = "NaN" if val != val else "+Inf" if val > 0 else "-Inf"
        raise _Fail(f"json: unsupported value: {shown}", v.line)
    if isinstance(val, dict):
        for key in sorted(val):
            _check_marshal(val[key])
    elif isinstance(val, list):
        for item in val:
            _check_marshal(item)


# ------------------------------------------- JSON values -> Policy (Go json semantics)


_FIND_KIND = ('struct { APIVersion string "json:\\"apiVersion,omitempty\\""; '
              'Kind string "json:\\"kind,omitempty\\"" }')


def _interpret(top: _V, ordered: bool) -> tuple[str, str, str, int | None]:
    """apimachinery SimpleMetaFactory.Interpret + ParseGroupVersion."""
    found: dict[str, _V] = {}
    if top.value is not None:
        if not isinstance(top.value, dict):
            raise _Fail("couldn't get version/kind; json parse error: json: cannot unmarshal "
                        f"{json_type(top.value)} into Go value of type {_FIND_KIND}", top.line)
        items = top.value.items() if ordered else sorted(top.value.items())
        for key, v in items:  # encoding/json matches field names case-insensitively
            name = {"apiversion": "apiVersion", "kind": "kind"}.get(key.casefold())
            if name is None or v.value is None:
                continue
            if not isinstance(v.value, str):
                raise _Fail("couldn't get version/kind; json parse error: json: cannot unmarshal "
                            f"{json_type(v.value)} into Go struct field .{name} of type string",
                            v.line)
            found[name] = v
    api_version = found["apiVersion"].value if "apiVersion" in found else ""
    kind = found["kind"].value if "kind" in found else ""
    line = (found.get("kind") or found.get("apiVersion") or top).line
    if api_version in ("", "/"):
        group, version = "", ""
    elif api_version.count("/") == 0:
        group, version = "", api_version
    elif api_version.count("/") == 1:
        group, version = api_version.split("/")
    else:
        raise _Fail(f"unexpected GroupVersion string: {api_version}", found["apiVersion"].line)
    return group, version, kind, line


class _Typed:
    """Go's json decoder into audit/v1.Policy: first type error wins, unknown keys warn."""

    def __init__(self, ordered: bool) -> None:
        self.ordered = ordered
        self.unknown: list[str] = []

    def items(self, d: dict[str, _V]) -> list[tuple[str, _V]]:
        return list(d.items()) if self.ordered else sorted(d.items())

    @staticmethod
    def fail(v: _V, go_type: str, struct: str, stack: str) -> NoReturn:
        raise _Fail(f"json: cannot unmarshal {json_type(v.value)} into Go struct field "
                    f"{struct}.{stack} of type {go_type}", v.line)

    def string(self, v: _V, go_type: str, struct: str, stack: str) -> str:
        if v.value is None or isinstance(v.value, str):
            return v.value or ""
        self.fail(v, go_type, struct, stack)

    def strings(self, v: _V, elem: str, struct: str, stack: str) -> tuple[str, ...]:
        if v.value is None:
            return ()
        if not isinstance(v.value, list):
            self.fail(v, "[]" + elem, struct, stack)
        return tuple(self.string(item, elem, struct, stack) for item in v.value)

    def boolean(self, v: _V, struct: str, stack: str) -> bool | None:
        if v.value is None or isinstance(v.value, bool):
            return v.value
        self.fail(v, "bool", struct, stack)

    def policy(self, top: _V, source: str) -> Policy:
        rules: tuple[PolicyRule, ...] = ()
        stages: tuple[str, ...] = ()
        omit = False
        for key, v in self.items(top.value or {}):
            if key in ("apiVersion", "kind"):
                self.string(v, "string", "Policy", key)
            elif key == "metadata":
                self.metadata(v)
            elif key == "rules":
                if v.value is not None and not isinstance(v.value, list):
                    self.fail(v, "[]v1.PolicyRule", "Policy", "rules")
                rules = tuple(self.rule(r, i) for i, r in enumerate(v.value or ()))
            elif key == "omitStages":
                stages = self.strings(v, "v1.Stage", "Policy", key)
            elif key == "omitManagedFields":
                omit = bool(self.boolean(v, "Policy", key))
            else:
                self.unknown.append(f"unknown field {go_quote(key)}")
        return Policy(rules, stages, omit, source)

    def metadata(self, v: _V) -> None:
        if v.value is None:
            return
        if not isinstance(v.value, dict):
            self.fail(v, "v1.ObjectMeta", "Policy", "metadata")
        for key, item in self.items(v.value):
            if key in ("name", "namespace", "generateName"):
                self.string(item, "string", "ObjectMeta", f"metadata.{key}")
            elif key in ("labels", "annotations") and item.value is not None:
                if not isinstance(item.value, dict):
                    self.fail(item, "map[string]string", "ObjectMeta", f"metadata.{key}")
                for _, text in self.items(item.value):
                    self.string(text, "string", "ObjectMeta", f"metadata.{key}")

    def rule(self, v: _V, i: int) -> PolicyRule:
        if v.value is None:
            return PolicyRule(level="", line=v.line)
        if not isinstance(v.value, dict):
            self.fail(v, "v1.PolicyRule", "Policy", "rules")
        got: dict[str, Any] = {}
        for key, fv in self.items(v.value):
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
                if fv.value is not None and not isinstance(fv.value, list):
                    self.fail(fv, "[]v1.GroupResources", "PolicyRule", stack)
                got["resources"] = tuple(self.group_resources(g, f"rules[{i}].resources[{j}]")
                                         for j, g in enumerate(fv.value or ()))
            else:
                self.unknown.append(f"unknown field {go_quote(f'rules[{i}].{key}')}")
        return PolicyRule(level=got.pop("level", ""), line=v.line, **got)

    def group_resources(self, v: _V, where: str) -> GroupResources:
        if v.value is None:
            return GroupResources()
        if not isinstance(v.value, dict):
            self.fail(v, "v1.GroupResources", "PolicyRule", "rules.resources")
        got: dict[str, Any] = {}
        for key, fv in self.items(v.value):
            stack = f"rules.resources.{key}"
            if key == "group":
                got["group"] = self.string(fv, "string", "GroupResources", stack)
            elif key in ("resources", "resourceNames"):
                name = "resources" if key == "resources" else "resource_names"
                got[name] = self.strings(fv, "string", "GroupResources", stack)
            else:
                self.unknown.append(f"unknown field {go_quote(f'{where}.{key}')}")
        return GroupResources(**got)


_RULE_LISTS = {"users": "users", "userGroups": "user_groups", "verbs": "verbs",
               "namespaces": "namespaces", "nonResourceURLs": "non_resource_urls"}


def _decode(data: bytes, source: str) -> tuple[Policy, int | None]:
    """LoadPolicyFromBytes up to (not including) validation; also the omitStages line."""
    # apimachinery decodes a '{'-led document as JSON: document key order, no YAML layer.
    ordered = data.lstrip()[:1] == b"{"
    root = _compose(data)
    decoder = _Decoder()
    top = decoder.value(root) if root is not None else _V(None, 1)
    _check_marshal(top)
    group, version, kind, line = _interpret(top, ordered)
    kind = kind or "Policy"  # the decode target supplies missing kind/group/version
    if not group and not version or not version and group == GROUP:
        group, version = GROUP, "__internal"
    if group != GROUP or version not in ("v1", "__internal") or kind not in _KINDS:
        where = (f"the internal version of group {go_quote(group)}" if version == "__internal"
                 else f"version {go_quote(f'{group}/{version}' if group else version)}")
        raise _Fail(f"no kind {go_quote(kind)} is registered for {where} in scheme "
                    f"{go_quote(_SCHEME)}", line)
    if kind != "Policy":
        pkg = "k8s.io/apiserver/pkg/apis/audit"
        src_pkg = pkg + "/v1" if version == "v1" else pkg
        raise _Fail(f"converting ({src_pkg}) {kind} to ({pkg}) Policy: unknown conversion", line)
    if version == "__internal":
        # reader.go checks the decoded group/version itself: no "failed decoding: " prefix.
        raise _Fail(f"unknown group version field {GROUP}/__internal, Kind=Policy in policy",
                    line, decoded=True)
    typed = _Typed(ordered)
    policy = typed.policy(top, source)
    strict = []
    if decoder.duplicates and not ordered:
        strict.append("yaml: unmarshal errors:\n  " + "\n  ".join(decoder.duplicates))
    strict += typed.unknown
    if strict:
        policy = Policy(policy.rules, policy.omit_stages, policy.omit_managed_fields, source,
                        tuple(strict))
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
    except _Fail as fail:
        raise PolicyError([fail.message], file=source,
                          lines=[fail.line]) from None
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
            reason, op = "is a directory", "read"
        else:
            msg = (f"{name} is a {exc.kind}, not a regular file "
                   "(kube-apiserver would block reading it; the lab refuses to)")
            raise PolicyError([msg], file=name, upstream=msg) from None
        upstream = f"failed to read file path {go_quote(name)}: {op} {name}: {reason}"
        raise PolicyError([upstream], file=name, upstream=upstream) from None
    except OSError as exc:
        # Go's os.ReadFile error, as LoadPolicyFromFile wraps it.
        reason = (exc.strerror or str(exc)).lower()
        upstream = f"failed to read file path {go_quote(name)}: open {name}: {reason}"
        raise PolicyError([upstream], file=name, upstream=upstream) from None
    return load_policy_head(raw, name)


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
