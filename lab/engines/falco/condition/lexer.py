"""Lexing of Falco conditions, the way libsinsp's filter parser lexes (libs 0.25).

libsinsp has no separate token stream: the parser asks a cursor "is a <thing> here?"
and the answer depends on where it stands (`a.b` is a field on the left and a bare
string on the right). `Lexer` is that cursor. Its `last` mirrors libsinsp's
`m_last_token`, because the "unexpected token after '...'" error quotes it, and its
quirks (an operator that matches without the blank it needs still moves the cursor)
are kept on purpose: they decide which conditions Falco accepts.
"""

from __future__ import annotations

import re

from lab.engines.falco.errors import ConditionError

# libsinsp's lex_blank set: backspace counts as blank, \v and \f do not.
BLANKS = " \t\b\r\n"

# The regular expressions libsinsp uses (POSIX classes spelled out; [[:space:]] has
# \v and \f but not \b). RE2 runs them leftmost-longest; these patterns are simple
# enough that Python's greedy matching finds the same spans.
NOT_BLANK = re.compile(r"not[ \t\n\v\f\r]+")
IDENTIFIER = re.compile(r"[a-zA-Z]+[a-zA-Z0-9_]*")
FIELD_NAME = re.compile(r"[a-zA-Z]+[a-zA-Z0-9_]*(?:\.[a-zA-Z]+[a-zA-Z0-9_]*)+")
FIELD_ARG_BARE = re.compile(r"[^\[\]\"' \t\n\v\f\r]+")
HEX_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+")
NUMBER = re.compile(r"[+\-]?[0-9]+\.?[0-9]*(?:[eE][+\-][0-9]+)?")
BARE_STRING = re.compile(r"[^()\"' \t\n\v\f\r=,]+")

UNARY_OPS = ("exists",)
NUM_OPS = ("<=", "<", ">=", ">")
# A trailing space marks an operator that must be followed by a blank (libsinsp's convention).
STR_OPS = ("==", "=", "!=", "glob ", "iglob ", "contains ", "icontains ", "bcontains ",
           "startswith ", "bstartswith ", "endswith ", "regex ")
LIST_OPS = ("intersects", "in", "pmatch")
# Falco 0.44 (libs 0.25) list modifiers: `field <str op> <modifier> (v1, v2, ...)`.
MODIFIERS = ("oneof", "anyof", "allof")

TRANSFORMERS = ("tolower", "toupper", "b64", "basename", "len", "join", "concat")
VAL = "val"


def supported_operators(list_only: bool = False) -> tuple[str, ...]:
    """libsinsp's parser::supported_operators: every operator, or those taking a list."""
    if list_only:
        return LIST_OPS
    return tuple(op.strip() for op in UNARY_OPS + NUM_OPS + STR_OPS + LIST_OPS)


def supported_transformers(include_val: bool = False) -> tuple[str, ...]:
    """libsinsp's parser::supported_field_transformers."""
    return (VAL, *TRANSFORMERS) if include_val else TRANSFORMERS


def _quoted_names(names: tuple[str, ...]) -> str:
    return ", ".join(f"'{n}'" for n in names)


OPERATORS_TEXT = _quoted_names(supported_operators())
TRANSFORMERS_TEXT = _quoted_names(supported_transformers(include_val=True))


# "\ " decodes to a backslash, not a space: libsinsp lets that case fall through to
# the "\\" one (kept for an old, wrongly escaped Falco rule).
_SIMPLE_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t",
                   " ": "\\", "\\": "\\", "/": "/"}


class EscapeError(ValueError):
    """A quoted string with an escape sequence libsinsp does not accept."""


def unescape(raw: str) -> str:
    """Decode a quoted token, quotes included, as libsinsp's unescape_str does."""
    out: list[str] = []
    escaped = False
    quote = raw[0]
    for ch in raw[1:-1]:
        if not escaped:
            if ch == "\\":
                escaped = True
            else:
                out.append(ch)
            continue
        escaped = False
        if ch in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[ch])
        elif ch in "\"'":
            if ch != quote:
                other = "'-quoted" if ch == '"' else '"-quoted'
                raise EscapeError(f"invalid \\{ch} escape in {other} string")
            out.append(ch)
        else:
            raise EscapeError(f"unsupported string escape sequence: \\{ch}")
    return "".join(out)


_ESCAPES_OUT = {'"': '\\"', "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def quote(text: str) -> str:
    """`text` as a double-quoted token that `unescape` (and the lexer) reads back as `text`."""
    out: list[str] = []
    last = len(text) - 1
    for i, ch in enumerate(text):
        if ch == "\\":
            # A closing quote right after "\\" would not close the string (the lexer
            # only looks one character back), so a final backslash is written "\ ".
            out.append("\\ " if i == last else "\\\\")
        else:
            out.append(_ESCAPES_OUT.get(ch, ch))
    return '"' + "".join(out) + '"'


class Lexer:
    """A cursor over condition text; every `lex_*` either consumes and returns True or
    leaves the cursor alone and returns False (except where libsinsp itself does not)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.idx = 0
        self.last = ""

    def error(self, message: str) -> ConditionError:
        return ConditionError(message, self.idx)

    def lex_blank(self) -> bool:
        start = self.idx
        text = self.text
        while self.idx < len(text) and text[self.idx] in BLANKS:
            self.idx += 1
        return self.idx > start

    def lex_rgx(self, pattern: re.Pattern[str]) -> bool:
        m = pattern.match(self.text, self.idx)
        if m is None:
            return False
        self.last = m.group()
        self.idx = m.end()
        return True

    def lex_str(self, s: str) -> bool:
        if not self.text.startswith(s, self.idx):
            return False
        self.last = s
        self.idx += len(s)
        return True

    def lex_str_list(self, options: tuple[str, ...]) -> bool:
        return any(self.lex_str(s) for s in options)

    def lex_transformer(self) -> str | None:
        """A transformer name followed directly by "(" (no blank between: libsinsp's rule)."""
        for name in TRANSFORMERS:
            if self.lex_str(name + "("):
                self.last = name
                return name
        return None

    def lex_operator(self, options: tuple[str, ...]) -> bool:
        for op in options:
            if not op.endswith(" "):
                if self.lex_str(op):
                    return True
                continue
            # libsinsp returns here whether or not the blank follows, with the cursor
            # already past the word: `x globin (a)` therefore reads as `x in (a)`.
            if self.lex_str(op.strip()):
                return self.lex_blank()
        return False

    def lex_quoted_str(self) -> bool:
        text = self.text
        start = self.idx
        if start >= len(text) or text[start] not in "'\"":
            return False
        delim = text[start]
        end = text.find(delim, start + 1)
        # The string ends at the first quote not preceded by a backslash, even when
        # that backslash is itself escaped.
        while end != -1 and text[end - 1] == "\\":
            end = text.find(delim, end + 1)
        if end == -1:
            self.last = text[start:]
            return False
        raw = text[start:end + 1]
        self.idx = end + 1
        self.last = raw
        try:
            self.last = unescape(raw)
        except EscapeError as e:
            raise self.error(str(e)) from None
        return True
