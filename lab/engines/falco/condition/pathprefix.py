"""`pmatch`: libs' path_prefix_search, a trie of path components.

Paths are split on '/' with empty components dropped, under a common root, so
"/etc", "/etc/" and "etc" are the same search path, and "/" matches every path.
A search path matches a value when its components are a prefix of the value's
components ("/etc" matches "/etc/passwd", not "/etcd"). Components holding glob
characters (`? * [`) are matched with fnmatch, after exact components; a longer
search path under a shorter one is dropped, as upstream does.
"""

from __future__ import annotations

from lab.engines.falco.condition.patterns import Matcher, compile_glob


class _Node:
    __slots__ = ("dirs", "globs")

    def __init__(self) -> None:
        # component -> subtree, or None when a search path ends here
        self.dirs: dict[str, _Node | None] = {}
        self.globs: list[tuple[str, Matcher, _Node | None]] = []


def _components(path: str) -> list[str]:
    return ["root", *(c for c in path.split("/") if c)]


def _add(node: _Node, comps: list[str], idx: int) -> None:
    comp = comps[idx]
    last = idx + 1 == len(comps)
    if any(ch in comp for ch in "?*["):
        for n, (pattern, _, sub) in enumerate(node.globs):
            if pattern == comp:
                if last:
                    node.globs[n] = (pattern, node.globs[n][1], None)
                elif sub is not None:
                    _add(sub, comps, idx + 1)
                return
        sub = None if last else _Node()
        if sub is not None:
            _add(sub, comps, idx + 1)
        node.globs.append((comp, compile_glob(comp), sub))
        return
    if comp not in node.dirs:
        sub = None if last else _Node()
        if sub is not None:
            _add(sub, comps, idx + 1)
        node.dirs[comp] = sub
    elif last:
        node.dirs[comp] = None
    else:
        existing = node.dirs[comp]
        if existing is not None:
            _add(existing, comps, idx + 1)


def _check(sub: _Node | None, comps: list[str], idx: int) -> bool:
    if idx == len(comps):
        return sub is None  # "/var" does not match the search path "/var/lib"
    if sub is None:
        return True
    return _match(sub, comps, idx)


def _match(node: _Node, comps: list[str], idx: int) -> bool:
    comp = comps[idx]
    if comp in node.dirs and _check(node.dirs[comp], comps, idx + 1):
        return True
    # upstream advances its iterator once per matching glob entry; kept for fidelity
    for _, matcher, sub in node.globs:
        if idx < len(comps) and matcher(comps[idx]):
            idx += 1
            if _check(sub, comps, idx):
                return True
    return False


class PathPrefixSearch:
    """A set of search paths; `match(path)` is true when one of them prefixes `path`."""

    def __init__(self, paths: list[str]) -> None:
        self._root = _Node()
        self._empty = True
        for p in paths:
            self._empty = False
            _add(self._root, _components(p), 0)

    def match(self, path: str) -> bool:
        if self._empty:
            return False
        return _match(self._root, _components(path), 0)
