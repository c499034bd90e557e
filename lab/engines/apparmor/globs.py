"""AppArmor path globs (AARE) -> a small syntax tree -> a compiled Python regex.

`*` matches within one path component, `**` across components, `?` one character
other than `/`, `[abc]`/`[^abc]` a character class, `{a,b}` an alternation. Two rules
of apparmor_parser's conversion matter for decisions:

* a `*` or `**` that fills a whole path component (`/etc/*`, `/etc/**/x`) must match
  at least one character, so `/etc/*` does not match `/etc/` and `/etc/**` does not
  match `/etc/`;
* nothing else is special: a directory is a path ending in `/`, so only rules ending
  in `/` (or in `**`) match directories.

The syntax errors are apparmor_parser's ("Regex grouping error: ...").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from lab.engines.apparmor.errors import ProfileError

MAX_ALT_DEPTH = 50

# -- syntax tree ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lit:
    ch: str


@dataclass(frozen=True, slots=True)
class AnyOne:
    """`?`, or the one character a whole-component `*` must match: anything but `/`."""


@dataclass(frozen=True, slots=True)
class Star:
    """`*`: any run of characters other than `/`."""


@dataclass(frozen=True, slots=True)
class DStar:
    """`**`: any run of characters."""


@dataclass(frozen=True, slots=True)
class CharClass:
    negated: bool
    ranges: tuple[tuple[str, str], ...]

    def contains(self, ch: str) -> bool:
        hit = any(lo <= ch <= hi for lo, hi in self.ranges)
        return hit != self.negated


@dataclass(frozen=True, slots=True)
class Alt:
    options: tuple[tuple[Node, ...], ...]


Node = Lit | AnyOne | Star | DStar | CharClass | Alt
Seq = tuple[Node, ...]


class GlobError(ProfileError):
    """A glob apparmor_parser cannot turn into a regular expression."""


def _grouping(msg: str) -> GlobError:
    return GlobError(f"Regex grouping error: {msg}")


_SIMPLE_ESC = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def _escape_char(s: str, i: int) -> tuple[str, int]:
    """The character an escape at s[i] (after the backslash) denotes, and where it ends."""
    c = s[i]
    if c in _SIMPLE_ESC:
        return _SIMPLE_ESC[c], i + 1
    if c in "01234567":
        j, v = i, 0
        while j < len(s) and j < i + 3 and s[j] in "01234567" and v * 8 + int(s[j]) <= 0o377:
            v = v * 8 + int(s[j])
            j += 1
        return chr(v), j
    if c == "x" and i + 1 < len(s) and s[i + 1] in "0123456789abcdefABCDEF":
        j, v = i + 1, 0
        while j < len(s) and j < i + 3 and s[j] in "0123456789abcdefABCDEF":
            v = v * 16 + int(s[j], 16)
            j += 1
        return chr(v), j
    if c == "d" and i + 1 < len(s) and s[i + 1].isdigit():
        j, v = i + 1, 0
        while j < len(s) and j < i + 4 and s[j].isdigit() and v * 10 + int(s[j]) <= 255:
            v = v * 10 + int(s[j])
            j += 1
        return chr(v), j
    # quoted unnecessarily: the character itself
    return c, i + 1


class _Reader:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.depth = 0

    def seq(self, in_group: bool) -> tuple[list[Seq], bool]:
        """Items up to the end (or the `}` of the current group), split at `,`."""
        options: list[Seq] = []
        cur: list[Node] = []
        s = self.s
        while self.i < len(s):
            c = s[self.i]
            if c == "\\":
                if self.i + 1 >= len(s):
                    raise GlobError("Regex error: trailing '\\' escape character")
                ch, self.i = _escape_char(s, self.i + 1)
                cur.append(Lit(ch))
                continue
            if c == "*":
                j = self.i
                while j < len(s) and s[j] == "*":
                    j += 1
                prev_slash = bool(cur) and cur[-1] == Lit("/")
                if prev_slash and (j == len(s) or s[j] == "/"):
                    cur.append(AnyOne())
                if self.i + 1 < len(s) and s[self.i + 1] == "*":
                    cur.append(DStar())
                    self.i += 2
                else:
                    cur.append(Star())
                    self.i += 1
                continue
            if c == "?":
                cur.append(AnyOne())
            elif c == "[":
                cur.append(self.char_class())
                continue
            elif c == "]":
                raise _grouping("Invalid close ], no matching open [ detected")
            elif c == "{":
                self.depth += 1
                if self.depth >= MAX_ALT_DEPTH:
                    raise _grouping("Exceeded maximum nesting of {}")
                self.i += 1
                opts, closed = self.seq(True)
                if not closed:
                    raise _grouping(
                        "Unclosed grouping or character class, expecting close }")
                if len(opts) < 2:
                    raise _grouping("Invalid number of items between {}")
                self.depth -= 1
                cur.append(Alt(tuple(opts)))
                continue
            elif c == "}":
                if not in_group:
                    raise _grouping("Invalid number of items between {}")
                options.append(tuple(cur))
                self.i += 1
                return options, True
            elif c == "," and in_group:
                options.append(tuple(cur))
                cur = []
            else:
                cur.append(Lit(c))
            self.i += 1
        options.append(tuple(cur))
        return options, False

    def char_class(self) -> CharClass:
        s = self.s
        self.i += 1  # '['
        negated = self.i < len(s) and s[self.i] == "^"
        if negated:
            self.i += 1
        chars: list[str] = []
        while True:
            if self.i >= len(s):
                raise _grouping("Unclosed grouping or character class, expecting close }")
            c = s[self.i]
            if c == "]":
                self.i += 1
                break
            if c == "\\":
                if self.i + 1 >= len(s):
                    raise GlobError("Regex error: trailing '\\' escape character")
                ch, self.i = _escape_char(s, self.i + 1)
                chars.append(ch)
                continue
            chars.append(c)
            self.i += 1
        if not chars:
            raise GlobError("Regex error: empty character class '[]'")
        ranges: list[tuple[str, str]] = []
        k = 0
        while k < len(chars):
            if k + 2 < len(chars) and chars[k + 1] == "-":
                lo, hi = chars[k], chars[k + 2]
                # apparmor_parser compiles [z-a] exactly as [a-z] (same policy bytes).
                ranges.append((min(lo, hi), max(lo, hi)))
                k += 3
            else:
                ranges.append((chars[k], chars[k]))
                k += 1
        return CharClass(negated, tuple(ranges))


@lru_cache(maxsize=4096)
def parse_glob(aare: str) -> Seq:
    """The syntax tree of a glob; raises GlobError with apparmor_parser's message."""
    reader = _Reader(aare)
    options, _closed = reader.seq(False)
    return options[0]


def check_glob(aare: str, what: str = "input line") -> None:
    """Raise a ProfileError naming the glob if apparmor_parser would reject it."""
    try:
        parse_glob(aare)
    except GlobError as err:
        raise GlobError(f"{err.message}; unable to parse {what} '{aare}'") from None


def is_exact(aare: str) -> bool:
    """No `*`, `?` or `[...]`: a literal path (alternations allowed), as the DFA sees it."""
    return _exact(parse_glob(aare))


def _exact(seq: Seq) -> bool:
    for node in seq:
        if isinstance(node, (Star, DStar, AnyOne, CharClass)):
            return False
        if isinstance(node, Alt) and not all(_exact(o) for o in node.options):
            return False
    return True


def filter_slashes(path: str) -> str:
    """Collapse `//` runs to `/` (a leading `//x` is kept), as apparmor_parser does."""
    if len(path) < 2:
        return path
    head = ""
    if path.startswith("//") and not path.startswith("///"):
        head, path = "//", path[2:]
    return head + re.sub(r"/{2,}", "/", path)


# -- regex ----------------------------------------------------------------------------


def _class_regex(node: CharClass) -> str:
    parts = []
    for lo, hi in node.ranges:
        if lo == hi:
            parts.append(re.escape(lo) if lo not in "-]^\\[" else "\\" + lo)
        else:
            parts.append(f"{re.escape(lo)}-{re.escape(hi)}")
    return ("[^" if node.negated else "[") + "".join(parts) + "]"


def to_regex(seq: Seq) -> str:
    out: list[str] = []
    for node in seq:
        if isinstance(node, Lit):
            out.append(re.escape(node.ch))
        elif isinstance(node, AnyOne):
            out.append("[^/\\x00]")
        elif isinstance(node, Star):
            out.append("[^/\\x00]*")
        elif isinstance(node, DStar):
            out.append("[^\\x00]*")
        elif isinstance(node, CharClass):
            out.append(_class_regex(node))
        else:
            out.append("(?:" + "|".join(to_regex(o) for o in node.options) + ")")
    return "".join(out)


@lru_cache(maxsize=4096)
def compile_glob(aare: str) -> re.Pattern[str]:
    """A compiled regex; use `.fullmatch(path)`."""
    return re.compile(to_regex(parse_glob(aare)), re.DOTALL)


def glob_matches(aare: str, path: str) -> bool:
    return compile_glob(aare).fullmatch(path) is not None


def literal_prefix(seq: Seq) -> str:
    """The literal characters a glob starts with (used to index rules by path)."""
    out = []
    for node in seq:
        if not isinstance(node, Lit):
            break
        out.append(node.ch)
    return "".join(out)
