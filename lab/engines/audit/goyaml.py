"""YAML as kube-apiserver and kubelet read it: sigs.k8s.io/yaml on goyaml.v2.

Both turn a file into JSON with sigs.k8s.io/yaml ``YAMLToJSON``: goyaml.v2
decodes the first document into interface{} (YAML 1.1 scalars, ``<<`` merge
keys, its alias-expansion guard), map keys become strings and the value goes
through json.Marshal. PyYAML reads the syntax (see goyamlsyntax); decoding is
done here so that values, messages and limits are goyaml's, or say that the
lab refused.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from typing import Any

from lab.engines.audit.gotext import go_parse_int, go_parse_uint, go_quote
from lab.engines.audit.goyamlsyntax import MAX_DEPTH, GoYAMLError, Node, compose

__all__ = ["MAX_DEPTH", "MAX_NODES", "GoYAMLError", "Lines", "Located", "load_document",
           "yaml_to_json"]

# goyaml's alias ratio lets up to ~4M nodes through; the lab stops sooner to bound its work.
MAX_NODES = 1_000_000


class Located:
    """A decoded value with the 1-based line of its node and, in a map, of its key."""

    __slots__ = ("value", "line", "key_line")

    def __init__(self, value: Any, line: int) -> None:
        self.value, self.line, self.key_line = value, line, line


def yaml_to_json(data: bytes) -> tuple[Located | None, list[str]]:
    """YAMLToJSON's value for ``data`` (None: no document), and what strict mode refuses.

    The value is the lenient decoding (a repeated key keeps its last value);
    the strict complaints (YAMLToJSONStrict's duplicate keys) are returned, not
    raised, since their callers fall back to lenient decoding or never use strict.
    """
    root = compose(data)
    if root is None:
        return None, []
    decoder = _Decoder()
    top = decoder.value(root, 0)
    if decoder.null_key is not None:  # convertToJSONableObject runs after goyaml is done
        raise GoYAMLError("unsupported map key of type: %!s(<nil>), key: <nil>, "
                          f"value: {_go_syntax(decoder.null_key.value)}",
                          decoder.null_key.key_line)
    _check_marshal(top)
    return top, decoder.duplicates


class Lines:
    """Line numbers (1-based) of nodes in a decoded YAML document, by path."""

    def __init__(self) -> None:
        self.map: dict[tuple[Any, ...], int] = {}

    def of(self, *path: Any) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self.map:
                return self.map[p]
            p = p[:-1]
        return self.map.get(())


def load_document(text: str) -> tuple[Any, Lines]:
    """The document as kubelet's ToJSON sees it, as plain values, and the lines of its paths.

    A map entry's path has its key's line; the root and list items their node's.
    Raises :class:`GoYAMLError`.
    """
    try:
        top, _ = yaml_to_json(text.encode("utf-8", "replace"))
    except GoYAMLError as exc:
        if exc.char is None:
            raise
        # goyaml does not say which character; the learner needs to know.
        raise GoYAMLError(f"{exc.message} (unacceptable character #x{exc.char:04x})",
                          exc.line, exc.char) from None
    lines = Lines()
    return (None if top is None else _plain(top, (), lines)), lines


def _plain(v: Located, path: tuple[Any, ...], lines: Lines) -> Any:
    lines.map[path] = v.line
    if isinstance(v.value, dict):
        out = {}
        for key, item in v.value.items():
            out[key] = _plain(item, (*path, key), lines)
            lines.map[(*path, key)] = item.key_line
        return out
    if isinstance(v.value, list):
        return [_plain(item, (*path, i), lines) for i, item in enumerate(v.value)]
    return v.value


# ------------------------------------------------------------- scalars (resolve.go)


_BOOL_NULL = {
    **dict.fromkeys("y Y yes Yes YES true True TRUE on On ON".split(), True),
    **dict.fromkeys("n N no No NO false False FALSE off Off OFF".split(), False),
    **dict.fromkeys(["", "~", "null", "Null", "NULL"], None),
    **dict.fromkeys([".nan", ".NaN", ".NAN"], math.nan),
    **dict.fromkeys(".inf .Inf .INF +.inf +.Inf +.INF".split(), math.inf),
    **dict.fromkeys("-.inf -.Inf -.INF".split(), -math.inf),
}
_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ].*)?")
_TAG = "tag:yaml.org,2002:"
_RESOLVABLE = ("bool", "int", "float", "null", "timestamp")  # resolvableTag, less !!str


def go_int(plain: str) -> int | None:
    """strconv.ParseInt(s, 0, 64), falling back to ParseUint, as goyaml.v2 tries them."""
    for parse in (go_parse_int, go_parse_uint):
        try:
            return parse(plain)
        except ValueError:
            continue
    return None


def resolve_plain(text: str) -> Any:
    """A plain scalar's value: YAML 1.1 booleans (y/n/on/off too), Go's integer syntax.

    Timestamps stay strings: decoded into interface{}, goyaml.v2 keeps their text.
    """
    if text in _BOOL_NULL:
        return _BOOL_NULL[text]
    if text.startswith("."):
        plain = text  # goyaml hands these to ParseFloat as written
    elif text[:1] and text[:1] in "+-0123456789":
        plain = text.replace("_", "")
        number = go_int(plain)
        if number is not None:
            return number
    else:
        return text
    if _YAML_FLOAT.fullmatch(plain):
        value = float(plain)
        if not math.isinf(value):  # ParseFloat's ErrRange: not a float, so a string
            return value
    return text


def _scalar(node: Node) -> Any:
    tag = node.tag
    if tag is None:
        return resolve_plain(node.value) if node.plain else node.value
    want = tag[len(_TAG):] if tag.startswith(_TAG) else ""
    if want == "binary":
        try:  # Go's StdEncoding skips only line breaks
            data = base64.b64decode(re.sub("[\r\n]", "", node.value), validate=True)
            return data.decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            raise GoYAMLError("yaml: !!binary value contains invalid base64 data",
                              node.line) from None
    if want not in _RESOLVABLE:  # !!str, custom and unknown tags: the text as it is
        return node.value
    value = resolve_plain(node.value)
    got = {bool: "bool", int: "int", float: "float", type(None): "null"}.get(type(value), "str")
    if got == "str" and want == "timestamp" and _TIMESTAMP.fullmatch(node.value):
        return node.value  # decoded into interface{}, a timestamp stays a string
    if want == got or (want == "float" and got == "int"):
        return float(value) if want == "float" else value
    raise GoYAMLError(f"yaml: cannot decode !!{got} `{node.value}` as a !!{want}", node.line)


# ---------------------------------------------------- nodes -> values (decode.go)


def _allowed_alias_ratio(decodes: int) -> float:
    # goyaml.v2's billion-laughs guard, number for number.
    if decodes <= 400_000:
        return 0.99
    if decodes >= 4_000_000:
        return 0.10
    return 0.99 - 0.89 * (decodes - 400_000) / 3_600_000


_Entries = dict[tuple[type, Any], tuple[str, Located]]


class _Decoder:
    """goyaml.v2 Unmarshal into interface{}, with its alias accounting."""

    def __init__(self) -> None:
        self.decodes = 1  # goyaml counts the document node too
        self.aliases = self.alias_depth = 0
        self.active: set[int] = set()
        self.duplicates: list[str] = []
        self.null_key: Located | None = None  # the value of the first null key: not JSON-able

    def value(self, n: Node, depth: int) -> Located:
        self.decodes += 1
        if self.alias_depth:
            self.aliases += 1
        if (self.aliases > 100 and self.decodes > 1000
                and self.aliases / self.decodes > _allowed_alias_ratio(self.decodes)):
            raise GoYAMLError("yaml: document contains excessive aliasing", n.line)
        if self.decodes > MAX_NODES:
            raise GoYAMLError(f"yaml: document expands to more than {MAX_NODES} nodes "
                              "(refused by the lab)", n.line)
        if depth > MAX_DEPTH:  # the composer bounds the text; an alias nests a whole anchor
            raise GoYAMLError(f"yaml: nesting deeper than {MAX_DEPTH} levels "
                              "(refused by the lab)", n.line)
        if n.kind == "alias":
            assert n.target is not None
            if id(n) in self.active:
                raise GoYAMLError(f"yaml: anchor '{n.anchor}' value contains itself", n.line)
            self.active.add(id(n))
            self.alias_depth += 1
            try:
                return self.value(n.target, depth)
            finally:
                self.active.discard(id(n))
                self.alias_depth -= 1
        if n.kind == "scalar":
            return Located(_scalar(n), n.line)
        if n.kind == "seq":
            return Located([self.value(c, depth + 1) for c in n.value], n.line)
        out: _Entries = {}
        for k, v in zip(n.value[::2], n.value[1::2], strict=True):
            if k.kind == "scalar" and k.value == "<<" and (
                    (k.plain and k.tag is None) or k.tag == _TAG + "merge"):
                self._merge(v, out, depth)
                continue
            key = self.value(k, depth + 1)
            if isinstance(key.value, list | dict):
                raise GoYAMLError(f"yaml: invalid map key: {_go_syntax(key.value)}", k.line)
            val = self.value(v, depth + 1)
            val.key_line = k.line
            self._set(out, key.value, val)
        return Located(dict(out.values()), n.line)

    def _set(self, out: _Entries, key: Any, val: Located) -> None:
        slot = (type(key), key)
        if slot in out:  # UnmarshalStrict reports it at the value's line; lenient keeps the last
            self.duplicates.append(f"line {val.line}: key {_go_key(key)} already set in map")
        if key is None and self.null_key is None:
            self.null_key = val
        out[slot] = (_json_key(key), val)

    def _merge(self, v: Node, out: _Entries, depth: int) -> None:
        # Maps merge where "<<" stands, so later keys override; in a list the first map wins.
        def is_map(n: Node) -> bool:
            return n.kind == "map" or (n.kind == "alias" and n.target is not None
                                       and n.target.kind == "map")
        sources = [v] if is_map(v) else v.value[::-1] if v.kind == "seq" else None
        if not sources or not all(is_map(s) for s in sources):
            raise GoYAMLError("yaml: map merge requires map or sequence of maps as the value",
                              v.line)
        for src in sources:
            for key, val in self.value(src, depth).value.items():
                self._set(out, key, val)


# ------------------------------------------ values -> JSON (sigs.k8s.io/yaml, json)


def _json_key(key: Any) -> str:
    # convertToJSONableObject turns non-string map keys into strings (a null one fails).
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, float):
        return {math.inf: ".inf", -math.inf: "-.inf"}.get(key, ".nan" if key != key else f"{key:g}")
    return "" if key is None else str(key)  # a null key is refused after decoding


def _go_key(key: Any) -> str:
    """Go's %#v of a map key held in an interface{}."""
    return "<nil>" if key is None else _go_syntax(key)


def _go_syntax(value: Any) -> str:
    """Go's %#v of a decoded value inside an interface{} (as goyaml's errors print them)."""
    if value is None:
        return "interface {}(nil)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, list):
        return "[]interface {}{" + ", ".join(_go_syntax(v.value) for v in value) + "}"
    if isinstance(value, dict):
        items = ", ".join(f"{go_quote(k)}:{_go_syntax(v.value)}" for k, v in sorted(value.items()))
        return "map[interface {}]interface {}{" + items + "}"
    return str(value)


def _check_marshal(v: Located) -> None:
    # json.Marshal refuses NaN and infinities anywhere in the document (keys sorted).
    val = v.value
    if isinstance(val, float) and not math.isfinite(val):
        shown = "NaN" if val != val else "+Inf" if val > 0 else "-Inf"
        raise GoYAMLError(f"json: unsupported value: {shown}", v.line)
    if isinstance(val, dict):
        for key in sorted(val):
            _check_marshal(val[key])
    elif isinstance(val, list):
        for item in val:
            _check_marshal(item)
