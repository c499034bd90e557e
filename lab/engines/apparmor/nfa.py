"""Globs as automata: whether two globs share a path, and backtracking-free matching.

Python's regex engine backtracks: a glob with many stars (`/**a**a**a**b`) can take
exponential time on a path that almost matches. Globs with several stars are matched
here instead, by simulating the automaton (a DFA built lazily, state by state), which
takes time linear in the path's length.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from functools import lru_cache

from lab.engines.apparmor.globs import (
    Alt,
    AnyOne,
    CharClass,
    DStar,
    Lit,
    Node,
    Seq,
    Star,
    compile_glob,
    parse_glob,
)

_Pred = tuple[str, object]
_OTHER = "\ue000"  # stands for every character no glob mentions


class _NFA:
    def __init__(self) -> None:
        self.eps: list[list[int]] = []
        self.edges: list[list[tuple[_Pred, int]]] = []

    def state(self) -> int:
        self.eps.append([])
        self.edges.append([])
        return len(self.eps) - 1

    def build(self, seq: Seq, start: int) -> int:
        cur = start
        for node in seq:
            cur = self.node(node, cur)
        return cur

    def node(self, node: Node, cur: int) -> int:
        if isinstance(node, Alt):
            end = self.state()
            for opt in node.options:
                s = self.state()
                self.eps[cur].append(s)
                self.eps[self.build(opt, s)].append(end)
            return end
        if isinstance(node, (Star, DStar)):
            pred: _Pred = ("nonslash", None) if isinstance(node, Star) else ("any", None)
            loop = self.state()
            self.eps[cur].append(loop)
            self.edges[loop].append((pred, loop))
            return loop
        nxt = self.state()
        if isinstance(node, Lit):
            self.edges[cur].append((("lit", node.ch), nxt))
        elif isinstance(node, AnyOne):
            self.edges[cur].append((("nonslash", None), nxt))
        else:
            self.edges[cur].append((("class", node), nxt))
        return nxt

    def closure(self, states: Iterable[int]) -> frozenset[int]:
        out = set(states)
        todo = list(out)
        while todo:
            s = todo.pop()
            for t in self.eps[s]:
                if t not in out:
                    out.add(t)
                    todo.append(t)
        return frozenset(out)

    def step(self, states: frozenset[int], ch: str) -> frozenset[int]:
        nxt = [t for s in states for pred, t in self.edges[s] if _accepts(pred, ch)]
        return self.closure(nxt)


def _accepts(pred: _Pred, ch: str) -> bool:
    kind, arg = pred
    if ch == "\0":
        return False
    if kind == "lit":
        return ch == arg
    if kind == "nonslash":
        return ch != "/"
    if kind == "any":
        return True
    assert isinstance(arg, CharClass)
    return arg.contains(ch)


def _chars(seq: Seq, out: set[str]) -> None:
    for node in seq:
        if isinstance(node, Lit):
            out.add(node.ch)
        elif isinstance(node, CharClass):
            for lo, hi in node.ranges:
                for c in (lo, hi):
                    out.add(c)
                    if ord(c) > 1:
                        out.add(chr(ord(c) - 1))
                    out.add(chr(ord(c) + 1))
        elif isinstance(node, Alt):
            for opt in node.options:
                _chars(opt, out)


def globs_intersect(a: str, b: str, limit: int = 50_000) -> bool:
    """Whether some path matches both globs."""
    sa, sb = parse_glob(a), parse_glob(b)
    alphabet: set[str] = {"/", _OTHER}
    _chars(sa, alphabet)
    _chars(sb, alphabet)
    na, nb = _NFA(), _NFA()
    a0, b0 = na.state(), nb.state()
    fa, fb = na.build(sa, a0), nb.build(sb, b0)
    start = (na.closure([a0]), nb.closure([b0]))
    seen = {start}
    todo = deque([start])
    while todo and len(seen) < limit:
        xa, xb = todo.popleft()
        if fa in xa and fb in xb:
            return True
        for ch in alphabet:
            ya, yb = na.step(xa, ch), nb.step(xb, ch)
            if ya and yb and (ya, yb) not in seen:
                seen.add((ya, yb))
                todo.append((ya, yb))
    return False


# -- matching -------------------------------------------------------------------------

# globs with this many stars are matched by the automaton, not by a regex
MANY_STARS = 3
_DFA_CACHE_LIMIT = 20_000


def _stars(seq: Seq) -> int:
    n = 0
    for node in seq:
        if isinstance(node, (Star, DStar)):
            n += 1
        elif isinstance(node, Alt):
            n += max(_stars(o) for o in node.options)
    return n


class GlobAutomaton:
    """Matches a glob by running its automaton; DFA states are built as paths need them."""

    def __init__(self, aare: str) -> None:
        self.nfa = _NFA()
        s0 = self.nfa.state()
        self.final = self.nfa.build(parse_glob(aare), s0)
        self.start = self.nfa.closure([s0])
        self.dfa: dict[tuple[frozenset[int], str], frozenset[int]] = {}

    def fullmatch(self, path: str) -> bool | None:
        cur = self.start
        dfa = self.dfa
        for ch in path:
            nxt = dfa.get((cur, ch))
            if nxt is None:
                nxt = self.nfa.step(cur, ch)
                if len(dfa) >= _DFA_CACHE_LIMIT:
                    dfa.clear()
                dfa[(cur, ch)] = nxt
            if not nxt:
                return None
            cur = nxt
        return True if self.final in cur else None


@lru_cache(maxsize=4096)
def matcher_for(aare: str) -> Callable[[str], object]:
    """A `fullmatch(path)` for a glob: a compiled regex, or the automaton when the glob
    has so many stars that a regex could backtrack for a long time."""
    if _stars(parse_glob(aare)) >= MANY_STARS:
        return GlobAutomaton(aare).fullmatch
    return compile_glob(aare).fullmatch
