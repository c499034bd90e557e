"""The manifest's YAML as kubelet's go-yaml reads it, with the line of every node.

PyYAML does the parsing; errors are reworded as go-yaml prints them. Values
are built here, not by PyYAML's constructor, so that every node an alias or a
merge key (``<<``) expands is counted: past ``_MAX_NODES`` the document is
refused as go-yaml refuses alias bombs, after a bounded amount of work.
"""

from __future__ import annotations

from typing import Any

import yaml

from lab.yamlsafe import DepthLimitedLoader, NestingTooDeep

_MAX_NODES = 200_000  # a kubeadm manifest has a few hundred


class GoYAMLError(Exception):
    """go-yaml's error text (``yaml: line N: ...``) and the line a learner should look at."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class Lines:
    """Line numbers (1-based) of nodes in a composed YAML document, by path."""

    def __init__(self) -> None:
        self.map: dict[tuple[Any, ...], int] = {}
        self.nodes = 0  # nodes visited, aliases counted each time they expand

    def of(self, *path: Any) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self.map:
                return self.map[p]
            p = p[:-1]
        return self.map.get(())


def load_document(text: str) -> tuple[Any, Lines]:
    """The first document of ``text`` and its lines; raises :class:`GoYAMLError`."""
    lines = Lines()
    try:
        loader = DepthLimitedLoader(text)  # the reader refuses control characters here
    except yaml.YAMLError as exc:
        raise _go_yaml_error(exc) from None
    try:
        # go-yaml's Unmarshal decodes the first document and ignores the rest.
        node = loader.get_node() if loader.check_node() else None
        if node is None:
            return None, lines
        return _construct(node, loader, lines, ()), lines
    except NestingTooDeep as exc:
        raise GoYAMLError(f"yaml: {exc} (refused by the lab)", exc.line) from None
    except yaml.YAMLError as exc:
        raise _go_yaml_error(exc) from None
    finally:
        loader.dispose()


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _construct(
    node: yaml.Node, loader: yaml.SafeLoader, lines: Lines, path: tuple[Any, ...]
) -> Any:
    lines.map[path] = node.start_mark.line + 1
    lines.nodes += 1
    if lines.nodes > _MAX_NODES:
        # Nested aliases expand exponentially; go-yaml refuses them the same way.
        raise GoYAMLError("yaml: document contains excessive aliasing", None)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for knode, vnode in node.value:
            if knode.tag == _MERGE_TAG:
                _merge(vnode, loader, lines, path, out)
                lines.map[path] = node.start_mark.line + 1
                continue
            key_line = knode.start_mark.line + 1
            if isinstance(knode, yaml.ScalarNode):
                key = loader.construct_object(knode)
            else:  # built through the counter: a key may be an alias bomb too
                key = _construct(knode, loader, lines, (*path, "<key>"))
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise GoYAMLError(f"yaml: line {key_line}: invalid map key: {key!r}", key_line)
            out[key] = _construct(vnode, loader, lines, (*path, key))
            lines.map[(*path, key)] = key_line
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(v, loader, lines, (*path, i)) for i, v in enumerate(node.value)]
    return loader.construct_object(node)


def _merge(
    vnode: yaml.Node,
    loader: yaml.SafeLoader,
    lines: Lines,
    path: tuple[Any, ...],
    out: dict[Any, Any],
) -> None:
    """go-yaml v2's merge: the maps' keys are set where ``<<`` stands, earlier maps winning.

    Keys set before the ``<<`` are overwritten, keys after it overwrite; in a
    list of maps the first map wins (they are applied last to first).
    """
    sources = [vnode] if isinstance(vnode, yaml.MappingNode) else (
        list(reversed(vnode.value)) if isinstance(vnode, yaml.SequenceNode) else [])
    if not sources or not all(isinstance(src, yaml.MappingNode) for src in sources):
        line = vnode.start_mark.line + 1
        raise GoYAMLError(
            "yaml: map merge requires map or sequence of maps as the value", line
        )
    for src in sources:
        out.update(_construct(src, loader, lines, path))


_GO_YAML_PROBLEMS = (
    ("mapping values are not allowed here", "mapping values are not allowed in this context"),
    ("that cannot start any token", "found character that cannot start any token"),
    ("could not find expected ':'", "could not find expected ':'"),
    ("found unexpected end of stream", "found unexpected end of stream"),
    ("found unknown escape character", "found unknown escape character"),
    ("did not find expected", None),
    ("found undefined alias", "unknown anchor referenced"),
)


def _go_yaml_error(exc: yaml.YAMLError) -> GoYAMLError:
    """Approximate go-yaml's wording ("yaml: line N: ...") for a PyYAML error."""
    problem = str(getattr(exc, "problem", "") or exc)
    context = str(getattr(exc, "context", "") or "")
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line0 = mark.line if mark is not None else None
    scanner = isinstance(exc, yaml.scanner.ScannerError)
    text = problem
    for needle, go_text in _GO_YAML_PROBLEMS:
        if needle in problem:
            text = go_text or problem
            break
    else:
        if problem.startswith("expected") and "block" in context:
            # The parser's "expected <block end>" is go-yaml's "did not find expected key"
            # in a mapping, or "... '-' indicator" in a sequence.
            text = (
                "did not find expected '-' indicator"
                if "collection" in context or "sequence" in context
                else "did not find expected key"
            )
    user_line = line0 + 1 if line0 is not None else None
    go_line = None
    if line0 is not None:
        # go-yaml reports scanner errors 1-based but parser errors at the 0-based line.
        go_line = line0 + 1 if scanner else line0
    prefix = f"yaml: line {go_line}: " if go_line else "yaml: "
    return GoYAMLError(prefix + text, user_line)
