"""Rules-file YAML as yaml-cpp gives it to Falco: a tree of raw nodes, with lines.

yaml-cpp keeps every scalar as its text (`items: [0755, yes]` are the strings "0755"
and "yes"); a value becomes a bool or a number only where the reader asks for one,
with yaml-cpp's conversions (decode_bool). So the tree is built here from the YAML
parser's events instead of PyYAML's converted objects. Building it is also where the
safety limits live: size, NUL bytes, nesting depth (checked before the parser goes
deeper), and undefined aliases.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

from lab.yamlsafe import MAX_BYTES, MAX_DEPTH

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})


@dataclass(eq=False)
class Node:
    line: int  # 1-based


@dataclass(eq=False)
class Scalar(Node):
    value: str
    plain: bool  # unquoted, not a block scalar
    literal: bool = False  # a `|` block: its newlines are kept
    tag: str | None = None

    @property
    def is_null(self) -> bool:
        if self.tag in ("tag:yaml.org,2002:null", "!!null"):
            return True
        return self.plain and self.tag in (None, "!") and self.value in _NULLS


@dataclass(eq=False)
class Seq(Node):
    items: list[Node] = field(default_factory=list)


@dataclass(eq=False)
class Map(Node):
    pairs: list[tuple[Node, Node]] = field(default_factory=list)

    def get(self, key: str) -> Node | None:
        # yaml-cpp's lookup: the first key whose text matches.
        for k, v in self.pairs:
            if isinstance(k, Scalar) and k.value == key:
                return v
        return None

    def keys(self) -> list[tuple[str, int]]:
        return [(k.value, k.line) for k, _ in self.pairs if isinstance(k, Scalar)]


def is_null(node: Node | None) -> bool:
    return isinstance(node, Scalar) and node.is_null


class YamlError(Exception):
    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def parse_documents(text: str) -> list[Node | None]:
    """Every document of a YAML stream as a node tree (None for an empty document)."""
    if len(text) > MAX_BYTES:
        raise YamlError(f"file is too large ({len(text)} characters; the limit is {MAX_BYTES})",
                        None)
    if "\x00" in text:
        raise YamlError("file is binary (it contains NUL bytes), expected YAML text", None)
    docs: list[Node | None] = []
    anchors: dict[str, Node] = {}
    stack: list[Node] = []
    pending_key: list[Node | None] = []  # per open mapping: a key waiting for its value
    root: list[Node | None] = [None]

    def attach(node: Node) -> None:
        if not stack:
            root[0] = node
            return
        parent = stack[-1]
        if isinstance(parent, Seq):
            parent.items.append(node)
        elif isinstance(parent, Map):
            key = pending_key[-1]
            if key is None:
                pending_key[-1] = node
            else:
                parent.pairs.append((key, node))
                pending_key[-1] = None

    try:
        for ev in yaml.parse(text, Loader=_YAML_LOADER):
            line = ev.start_mark.line + 1 if ev.start_mark is not None else 1
            if isinstance(ev, yaml.DocumentStartEvent):
                root[0] = None
                anchors.clear()
            elif isinstance(ev, yaml.DocumentEndEvent):
                docs.append(root[0])
            elif isinstance(ev, yaml.ScalarEvent):
                plain = ev.style is None or ev.style == ""
                node: Node = Scalar(line, ev.value, plain, ev.style == "|", ev.tag)
                if ev.anchor:
                    anchors[ev.anchor] = node
                attach(node)
            elif isinstance(ev, yaml.AliasEvent):
                target = anchors.get(ev.anchor or "")
                if target is None:
                    raise YamlError(f"found undefined alias '{ev.anchor}'", line)
                attach(target)
            elif isinstance(ev, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                if len(stack) >= MAX_DEPTH:
                    raise YamlError(f"nesting deeper than {MAX_DEPTH} levels; refusing it",
                                    line)
                node = Seq(line) if isinstance(ev, yaml.SequenceStartEvent) else Map(line)
                if ev.anchor:
                    anchors[ev.anchor] = node
                attach(node)
                stack.append(node)
                pending_key.append(None)
            elif isinstance(ev, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                stack.pop()
                pending_key.pop()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or str(exc)
        if exc.context and exc.context not in problem:
            problem = f"{exc.context}; {problem}"
        raise YamlError(problem, mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise YamlError(str(exc), None) from None
    return docs


def _flexible_case(s: str) -> bool:
    return s == s.lower() or s == s.upper() or (s[:1].isupper() and s[1:] == s[1:].lower())


def decode_bool(text: str) -> bool | None:
    """yaml-cpp's bool conversion: y/n, yes/no, true/false, on/off in lower, UPPER or
    Capitalized spelling."""
    if not _flexible_case(text):
        return None
    low = text.lower()
    if low in ("y", "yes", "true", "on"):
        return True
    if low in ("n", "no", "false", "off"):
        return False
    return None


def decode_uint32(text: str) -> int | None:
    t = text.strip()
    if re.fullmatch(r"\+?\d+", t):
        v = int(t)
        return v if v < 2**32 else None
    if re.fullmatch(r"0[xX][0-9a-fA-F]+", t):
        v = int(t, 16)
        return v if v < 2**32 else None
    return None
