"""goyaml.v2's reading of YAML syntax: the node tree of the first document, or its error.

goyaml.v2 is a Go port of libyaml, so PyYAML's libyaml binding reports the
same problems in the same words; without libyaml, PyYAML's own wording is
mapped onto them. goyaml's parser.go is redone on PyYAML's events (anchors
may be redefined, an alias takes the anchor's latest node), and goyaml's
``parser.fail`` line numbering is kept: parser errors are shown one line early.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

# The lab's nesting limit for any YAML it reads. goyaml's scanner allows 10000
# levels (max_indents, max_flow_level); the lab's recursion has to stop far earlier.
from lab.yamlsafe import MAX_DEPTH

__all__ = ["MAX_DEPTH", "GoYAMLError", "Node", "compose"]

_LIBYAML = hasattr(yaml, "CSafeLoader")


class GoYAMLError(Exception):
    """goyaml's error text (``yaml: line N: ...``) and the line a learner should look at.

    ``char`` is the code point a reader error refused (goyaml's text omits it).
    """

    def __init__(self, message: str, line: int | None, char: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.char = char


class Node:
    """A composed node: kind is "scalar", "seq", "map" (value: keys and values, alternating)
    or "alias" (target: the anchored node)."""

    __slots__ = ("kind", "value", "tag", "plain", "line", "target", "anchor")

    def __init__(self, kind: str, value: Any, line: int, tag: str | None = None,
                 plain: bool = False, target: Node | None = None, anchor: str = "") -> None:
        self.kind, self.value, self.line, self.tag = kind, value, line, tag
        self.plain, self.target, self.anchor = plain, target, anchor


def compose(data: bytes) -> Node | None:
    """The first document's node tree (None: no document); raises :class:`GoYAMLError`.

    goyaml's Unmarshal reads only the first document: what follows is never parsed.
    """
    try:  # PyYAML's own reader checks its first chunk already here
        loader = (yaml.CSafeLoader if _LIBYAML else yaml.SafeLoader)(data)
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, data) from None
    try:
        loader.get_event()
        if loader.check_event(yaml.StreamEndEvent):
            return None
        loader.get_event()
        node = _compose_node(loader, {}, 0)
        loader.get_event()
        return node
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, data) from None
    finally:
        loader.dispose()


def _compose_node(loader: Any, anchors: dict[str, Node], depth: int) -> Node:
    event = loader.get_event()
    line = event.start_mark.line + 1
    if depth > MAX_DEPTH:
        raise GoYAMLError(f"yaml: nesting deeper than {MAX_DEPTH} levels (refused by the lab)",
                          line)
    if isinstance(event, yaml.AliasEvent):
        name = event.anchor or ""
        target = anchors.get(name)
        if target is None:
            raise GoYAMLError(f"yaml: unknown anchor '{name}' referenced", line)
        return Node("alias", None, line, target=target, anchor=name)
    if isinstance(event, yaml.ScalarEvent):
        node = Node("scalar", event.value, line, event.tag, event.style in (None, ""))
    else:
        kind, end = ("seq", yaml.SequenceEndEvent) if isinstance(
            event, yaml.SequenceStartEvent) else ("map", yaml.MappingEndEvent)
        node = Node(kind, [], line, event.tag)
    if event.anchor:
        anchors[event.anchor] = node  # before the children, so self-references resolve
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


def _syntax_error(exc: yaml.YAMLError, data: bytes) -> GoYAMLError:
    if isinstance(exc, yaml.reader.ReaderError):
        # goyaml's reader errors carry no line; the learner still gets one.
        line = data[: max(exc.position, 0)].count(b"\n") + 1
        reason = exc.reason if _LIBYAML else (
            "control characters are not allowed" if "special characters" in exc.reason
            else "invalid leading UTF-8 octet")
        char = exc.character if isinstance(exc.character, int) else None
        return GoYAMLError(f"yaml: {reason}", line, char)
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
    # goyaml's parser.fail(): the 0-based line of the problem mark (so usually one
    # line early), plus one for scanner errors only; no line at all on line 0.
    shown = 0
    if pmark is not None and pmark.line:
        shown = pmark.line + (1 if isinstance(exc, yaml.scanner.ScannerError) else 0)
    elif cmark is not None and cmark.line:
        shown = cmark.line
    where = f"line {shown}: " if shown else ""
    mark = pmark or cmark
    real = mark.line + 1 if mark is not None else None
    return GoYAMLError(f"yaml: {where}{problem or 'unknown problem parsing YAML content'}", real)
