"""Safe YAML reading for every file the lab takes from a user or a scenario.

Safe loading only, a size limit, no binary, a cap on alias expansion (YAML bombs),
and a map from field paths to line numbers so errors can say where.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from lab.errors import LabError

MAX_BYTES = 1024 * 1024
# A billion-laughs document multiplies nodes through aliases; a real file, even
# expanded, stays far below this many nodes.
MAX_EXPANDED_NODES = 200_000

Path_ = tuple[str | int, ...]


@dataclass
class Document:
    """A parsed YAML document and the line (1-based) of each node by field path."""

    data: Any
    source: str
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Path_) -> int | None:
        # Walk up until a known node: an error on a missing key points at its parent.
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), None)


# Real files nest a dozen levels; the composer and our walkers recurse per level.
MAX_DEPTH = 100


class _DepthGuard(Composer):
    """Composer hook that refuses nesting past MAX_DEPTH (_TooDeep)."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[attr-defined]
                raise _TooDeep(mark.line + 1)
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self._depth -= 1


class _Loader(_DepthGuard, yaml.SafeLoader):
    """Pure-Python loader: its error wording is the one the lab reports."""


_CParser: Any = getattr(getattr(yaml, "cyaml", None), "CParser", None)
_FastLoader: Any = _Loader
if _CParser is not None:

    class _LibyamlLoader(_DepthGuard, _CParser, SafeConstructor, Resolver):
        """libyaml's scanner and parser under the Python composer (so the depth
        guard still applies): about 10x faster. Any error is reported by parsing
        again with _Loader, so the wording never depends on libyaml being there."""

        def __init__(self, stream: str) -> None:
            _CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

    _FastLoader = _LibyamlLoader


class _TooDeep(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(f"nesting deeper than {MAX_DEPTH} levels")
        self.line = line


def check_text(raw: bytes, source: str, limit: int = MAX_BYTES) -> str:
    """The bytes as text, or a located LabError: too large, binary, not UTF-8."""
    if len(raw) > limit:
        raise LabError(f"file is too large ({len(raw)} bytes; the limit is {limit})", file=source)
    if b"\x00" in raw:
        raise LabError("file is binary (it contains NUL bytes), expected YAML text", file=source)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LabError(f"file is not UTF-8 text (byte {exc.start})", file=source) from None


def read_bytes(path: Path, limit: int = MAX_BYTES) -> bytes:
    """Read a file with the size limit checked before reading it all."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise LabError(
                f"file is too large ({size} bytes; the limit is {limit})", file=str(path)
            )
        with path.open("rb") as fh:
            return fh.read(limit + 1)
    except FileNotFoundError:
        raise LabError("file not found", file=str(path)) from None
    except IsADirectoryError:
        raise LabError("is a directory, expected a file", file=str(path)) from None
    except PermissionError:
        raise LabError("permission denied", file=str(path)) from None


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Node count with aliases expanded, memoised so the walk itself stays linear."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # a recursive alias counts once instead of looping
    size = 1
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            size += _expanded_size(k, memo) + _expanded_size(v, memo)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            size += _expanded_size(item, memo)
    memo[key] = size
    return size


def _compose(text: str, source: str) -> list[yaml.Node]:
    if _FastLoader is not _Loader:
        try:
            return _compose_with(_FastLoader, text, source)
        except LabError:
            pass  # parse again below for the pure-Python parser's located wording
    return _compose_with(_Loader, text, source)


def _compose_with(loader_class: Any, text: str, source: str) -> list[yaml.Node]:
    loader = loader_class(text)
    try:
        nodes = []
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            if _expanded_size(node, {}) > MAX_EXPANDED_NODES:
                raise LabError(
                    f"document expands to more than {MAX_EXPANDED_NODES} nodes through "
                    "aliases; refusing it (a YAML bomb?)",
                    file=source,
                    line=node.start_mark.line + 1,
                )
            nodes.append(node)
        return nodes
    except _TooDeep as exc:
        raise LabError(
            f"nesting deeper than {MAX_DEPTH} levels; refusing it", file=source, line=exc.line
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or str(exc)
        if exc.context and exc.context not in problem:
            problem = f"{exc.context}; {problem}"
        raise LabError(f"invalid YAML: {problem}", file=source, line=line) from None
    except yaml.YAMLError as exc:
        raise LabError(f"invalid YAML: {exc}", file=source) from None
    finally:
        loader.dispose()


def _record_lines(
    node: yaml.Node, path: Path_, out: dict[Path_, int], seen: set[int] | None = None
) -> None:
    # Visit each node once: an aliased node keeps the line of its anchor.
    seen = set() if seen is None else seen
    if id(node) in seen:
        return
    seen.add(id(node))
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                child = (*path, key.value)
                out[child] = key.start_mark.line + 1
                _record_lines(value, child, out, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _record_lines(item, (*path, i), out, seen)


def _construct(node: yaml.Node, source: str) -> Any:
    loader = _Loader("")
    try:
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise LabError(
            f"invalid YAML: {exc.problem}", file=source, line=mark.line + 1 if mark else None
        ) from None
    finally:
        loader.dispose()


def parse_all(text: str | bytes, source: str, limit: int = MAX_BYTES) -> list[Document]:
    """Parse every document of a YAML stream."""
    if isinstance(text, bytes):
        text = check_text(text, source, limit)
    elif len(text) > limit:
        raise LabError(
            f"file is too large ({len(text)} characters; the limit is {limit})", file=source
        )
    docs = []
    for node in _compose(text, source):
        lines: dict[Path_, int] = {}
        _record_lines(node, (), lines)
        docs.append(Document(_construct(node, source), source, lines))
    return docs


def parse_one(text: str | bytes, source: str, limit: int = MAX_BYTES) -> Document:
    """Parse a single-document YAML file; an empty file is an error."""
    docs = [d for d in parse_all(text, source, limit) if d.data is not None]
    if not docs:
        raise LabError("file is empty, expected a YAML document", file=source)
    if len(docs) > 1:
        raise LabError("expected one YAML document, found several", file=source)
    return docs[0]


def load_file(path: Path, limit: int = MAX_BYTES) -> Document:
    return parse_one(read_bytes(path, limit), str(path), limit)
