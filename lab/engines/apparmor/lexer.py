"""Tokens of the AppArmor 3.x profile language, with apparmor_parser's lexer states.

apparmor_parser's lexer is a flex scanner with start conditions ("modes"): a keyword
such as `network` or `dbus` switches the scanner into a mode where different tokens
exist, `,` switches back. Whether a profile is accepted often depends on exactly
that (e.g. `/foo,bar` is one path but `/foo, r` ends a rule), so this module keeps
the same modes and the same tie-breaking as flex: the longest match wins (trailing
context counts towards the length), the earlier rule wins a tie.

Includes are lexical too: `#include <x>` pushes the included file's text in place.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from lab.engines.apparmor.errors import ProfileError

# -- token shapes (the lexer's named definitions) ----------------------------------

_WS = r"[ \t]"
_VARNAME = r"[A-Za-z][A-Za-z0-9_]*"
_ESC = r'\\[ \t"!,]'
_ID = rf'(?:{_ESC}|,[^ \t\r\n"!,]|[^ \t\r\n"!,])'
_ID_FIRST = rf'(?:{_ESC}|\\#|,[^ \t\r\n"!,]|[^ \t\r\n"!,])'
_IDS = rf"{_ID_FIRST}{_ID}*"
_QUOTED_ID = r'"(?:\\"|[^\0"])*"'
_INC_IDS = r'(?:\\[ \t"!,]|,[^ \t\r\n"!,<>]|[^ \t\r\n"!,<>])+'
_POST_VAR_ID = r'(?:\\[ \t"!,()]|,[^ \t\n"!,=+]|[^ \t\n"!,=+])'
_SET_VARIABLE = rf"@(?:\{{{_VARNAME}\}}|{_VARNAME})"
_BOOL_VARIABLE = rf"\$(?:\{{{_VARNAME}\}}|{_VARNAME})"
_LABEL = rf"(?:/|{_SET_VARIABLE}{_POST_VAR_ID}|:[^=]|&){_ID}*"
_QUOTED_LABEL = r'"(?:/|@|:|&)(?:\\"|[^\0"])*"'
_LIST_VALUE_ID = r'(?:\\[ \t"!,()]|[^ \t\n"!,()])+'
_QUOTED_LIST_VALUE_ID = r'"(?:\\"|[^\0"])+"'
_IDS_NOEQ = r'[^ \t\n"!,=()+&](?:,[^ \t\n"!,=)]|[^ \t\n"!,=)])*'
_MODE_CHARS = r"(?:[PpCc]?[IiUu][Xx]|[PpCc][Xx]|[RrWwaLlMmkXx])"

KEYWORDS: dict[str, str] = {
    "network": "TOK_NETWORK",
    "unix": "TOK_UNIX",
    "capability": "TOK_CAPABILITY",
    "if": "TOK_IF",
    "else": "TOK_ELSE",
    "not": "TOK_NOT",
    "defined": "TOK_DEFINED",
    "change_profile": "TOK_CHANGE_PROFILE",
    "unsafe": "TOK_UNSAFE",
    "safe": "TOK_SAFE",
    "link": "TOK_LINK",
    "owner": "TOK_OWNER",
    "user": "TOK_OWNER",
    "other": "TOK_OTHER",
    "subset": "TOK_SUBSET",
    "audit": "TOK_AUDIT",
    "deny": "TOK_DENY",
    "allow": "TOK_ALLOW",
    "set": "TOK_SET",
    "rlimit": "TOK_RLIMIT",
    "alias": "TOK_ALIAS",
    "rewrite": "TOK_ALIAS",
    "ptrace": "TOK_PTRACE",
    "file": "TOK_FILE",
    "mount": "TOK_MOUNT",
    "remount": "TOK_REMOUNT",
    "umount": "TOK_UMOUNT",
    "unmount": "TOK_UMOUNT",
    "pivot_root": "TOK_PIVOTROOT",
    "in": "TOK_IN",
    "dbus": "TOK_DBUS",
    "signal": "TOK_SIGNAL",
    "send": "TOK_SEND",
    "receive": "TOK_RECEIVE",
    "bind": "TOK_BIND",
    "read": "TOK_READ",
    "write": "TOK_WRITE",
    "eavesdrop": "TOK_EAVESDROP",
    "peer": "TOK_PEER",
    "trace": "TOK_TRACE",
    "tracedby": "TOK_TRACEDBY",
    "readby": "TOK_READBY",
    "abi": "TOK_ABI",
}

# The mode a keyword switches the lexer into (others stay in INITIAL).
_KEYWORD_STATE = {
    "TOK_RLIMIT": "RLIMIT_MODE",
    "TOK_NETWORK": "NETWORK_MODE",
    "TOK_CHANGE_PROFILE": "CHANGE_PROFILE_MODE",
    "TOK_MOUNT": "MOUNT_MODE",
    "TOK_REMOUNT": "MOUNT_MODE",
    "TOK_UMOUNT": "MOUNT_MODE",
    "TOK_DBUS": "DBUS_MODE",
    "TOK_SIGNAL": "SIGNAL_MODE",
    "TOK_PTRACE": "PTRACE_MODE",
    "TOK_UNIX": "UNIX_MODE",
    "TOK_ABI": "ABI_MODE",
}

_RULE_MODES = ["MOUNT_MODE", "DBUS_MODE", "SIGNAL_MODE", "PTRACE_MODE", "UNIX_MODE"]
_WS_STATES = [
    "INITIAL", "SUB_ID_WS", "INCLUDE", "INCLUDE_EXISTS", "LIST_VAL_MODE", "EXTCOND_MODE",
    "LIST_COND_VAL", "LIST_COND_PAREN_VAL", "LIST_COND_MODE", "EXTCONDLIST_MODE",
    "ASSIGN_MODE", "NETWORK_MODE", "CHANGE_PROFILE_MODE", "RLIMIT_MODE", *_RULE_MODES,
    "ABI_MODE",
]
_NEWLINE_STATES = [s for s in _WS_STATES if s != "ASSIGN_MODE"]
_EOR_STATES = [
    "INITIAL", "NETWORK_MODE", "RLIMIT_MODE", "CHANGE_PROFILE_MODE", *_RULE_MODES, "ABI_MODE",
]


@dataclass(frozen=True, slots=True)
class Token:
    """One token: its kind (bison's name), processed value, and where it came from."""

    kind: str
    value: str | None
    file: str
    line: int
    start: int  # offsets into the source text of `file`
    end: int


# An include request: (name, search the include path?, `if exists`?, file, line)
# answered with the files to read in order, as (display name, text) pairs.
IncludeHook = Callable[[str, bool, bool, str, int], list[tuple[str, str]]]


@dataclass(slots=True)
class _Buffer:
    file: str
    text: str
    pos: int = 0
    line: int = 1


# -- escapes ---------------------------------------------------------------------


def _escape_value(s: str, i: int) -> tuple[int, int] | None:
    """The character an escape sequence at s[i] (after the backslash) stands for.

    Returns (code, index after the sequence), or None when it is no escape
    apparmor_parser knows (then the backslash is kept and the glob layer decides).
    """
    c = s[i] if i < len(s) else ""
    simple = {"\\": 92, '"': 34, "r": 13, "n": 10, "t": 9}
    if c in simple:
        return simple[c], i + 1
    if c in "01234567":
        j, v = i, 0
        while j < len(s) and j < i + 3 and s[j] in "01234567" and v * 8 + int(s[j]) <= 0o377:
            v = v * 8 + int(s[j])
            j += 1
        return v, j
    if c == "x":
        j, v = i + 1, 0
        while j < len(s) and j < i + 3 and s[j] in "0123456789abcdefABCDEF":
            v = v * 16 + int(s[j], 16)
            j += 1
        return (v, j) if j > i + 1 else None
    if c == "d":
        j, v = i + 1, 0
        while j < len(s) and j < i + 4 and s[j].isdigit() and v * 10 + int(s[j]) <= 255:
            v = v * 10 + int(s[j])
            j += 1
        return (v, j) if j > i + 1 else None
    return None


def process_unquoted(s: str) -> str:
    """Resolve escapes; escapes of glob characters stay escaped for the glob layer."""
    out: list[str] = []
    i = 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s):
            esc = _escape_value(s, i + 1)
            if esc is not None:
                code, j = esc
                ch = chr(code)
                if code == 0:
                    out.append(s[i:j])
                elif ch in "*?[]{}^,\\":
                    out.append("\\" + ch)
                else:
                    out.append(ch)
                i = j
                continue
        out.append(s[i])
        i += 1
    return "".join(out)


def process_id(s: str) -> str:
    """A token's value: quotes stripped, escapes resolved."""
    if s.startswith('"'):
        inner = s[1:-1] if len(s) >= 2 and s.endswith('"') else s[1:]
        return process_unquoted(inner)
    return process_unquoted(s)


# -- the rule table ----------------------------------------------------------------

_Action = Callable[["Lexer", str], "str | None"]


@dataclass(frozen=True, slots=True)
class _Rule:
    regex: re.Pattern[str]
    has_trail: bool
    action: _Action


_TABLE: dict[str, list[_Rule]] = {}


def _rule(states: list[str], pattern: str, action: _Action, trail: str | None = None) -> None:
    if trail is None:
        regex = re.compile(f"({pattern})", re.DOTALL)
    else:
        regex = re.compile(f"({pattern})(?:{trail})", re.DOTALL)
    for st in states:
        _TABLE.setdefault(st, []).append(_Rule(regex, trail is not None, action))


def _ret(kind: str, *, push: str | None = None, pop: bool = False,
         begin: str | None = None, value: bool = False) -> _Action:
    def act(lx: Lexer, text: str) -> str | None:
        if pop:
            lx.pop_state()
        if push:
            lx.push_state(push)
        if begin:
            lx.state = begin
        lx.value = process_id(text) if value else None
        return kind
    return act


def _skip(lx: Lexer, text: str) -> str | None:
    return None


def _newline(lx: Lexer, text: str) -> str | None:
    lx.buf.line += 1
    return None


def _newline_pop(lx: Lexer, text: str) -> str | None:
    lx.buf.line += 1
    lx.pop_state()
    return None


def _pop_only(lx: Lexer, text: str) -> str | None:
    lx.pop_state()
    return None


def _push_only(state: str) -> _Action:
    def act(lx: Lexer, text: str) -> str | None:
        lx.push_state(state)
        return None
    return act


def _continuation(lx: Lexer, text: str) -> str | None:
    lx.buf.line += 1
    return None


def _trailing_comma(lx: Lexer, text: str) -> str | None:
    raise lx.error("Variable declarations do not accept trailing commas")


def _filename(lx: Lexer, text: str) -> str | None:
    lt = text.startswith("<")
    inner = text[1:-1] if lt else text
    name = process_id(inner.strip())
    if lx.state == "ABI_MODE":
        lx.value = name
        return "TOK_ID" if lt else "TOK_VALUE"
    exists = lx.state == "INCLUDE_EXISTS"
    lx.pop_state()
    lx.include(name, lt, exists)
    return None


def _end_of_rule(lx: Lexer, text: str) -> str | None:
    if lx.state != "INITIAL":
        lx.pop_state()
    return "TOK_END_OF_RULE"


def _keyword(lx: Lexer, text: str) -> str | None:
    kind = KEYWORDS.get(text)
    if kind is None:
        lx.value = process_unquoted(text)
        return "TOK_ID"
    lx.push_state(_KEYWORD_STATE.get(kind, "INITIAL"))
    lx.value = text
    return kind


def _rlimit_word(lx: Lexer, text: str) -> str | None:
    lx.value = text
    return "TOK_VALUE" if text == "infinity" else "TOK_ID"


def _raw(kind: str) -> _Action:
    def act(lx: Lexer, text: str) -> str | None:
        lx.value = text
        return kind
    return act


def _build() -> None:
    r = _rule
    r(_WS_STATES, rf"{_WS}+", _skip)
    r(["INCLUDE", "INCLUDE_EXISTS", "ABI_MODE"],
      rf'<(?:{_QUOTED_ID}|[^"><\t\r\n]+)>|{_QUOTED_ID}|{_INC_IDS}', _filename)
    cond_states = ["INITIAL", *_RULE_MODES]
    r(cond_states, r"peer|xattrs", _ret("TOK_CONDLISTID", push="EXTCONDLIST_MODE", value=True),
      trail=rf"{_WS}*={_WS}*\(")
    r(cond_states, _VARNAME, _ret("TOK_CONDID", push="EXTCOND_MODE", value=True),
      trail=rf"{_WS}*=")
    r(cond_states, _VARNAME, _ret("TOK_CONDID", push="EXTCOND_MODE", value=True),
      trail=rf"{_WS}+in{_WS}*\(")
    r(["SUB_ID", "SUB_ID_WS"], rf"{_QUOTED_ID}|{_IDS}", _ret("TOK_ID", pop=True, value=True))
    r(["SUB_VALUE"], rf"{_QUOTED_ID}|{_IDS}", _ret("TOK_VALUE", pop=True, value=True))
    r(["LIST_VAL_MODE"], r"\)", _ret("TOK_CLOSEPAREN", pop=True))
    r(["LIST_VAL_MODE"], r",", _skip)
    r(["LIST_VAL_MODE"], rf"{_QUOTED_ID}|{_LIST_VALUE_ID}", _ret("TOK_VALUE", value=True))
    r(["EXTCOND_MODE"], rf"={_WS}*", _ret("TOK_EQUALS", begin="SUB_VALUE"),
      trail=r'[^(\n \t]')
    r(["EXTCOND_MODE"], r"=", _ret("TOK_EQUALS"))
    r(["EXTCOND_MODE"], r"\(", _ret("TOK_OPENPAREN", begin="LIST_VAL_MODE"))
    r(["EXTCOND_MODE"], r"in", _ret("TOK_IN"))
    r(["LIST_COND_VAL"], rf"{_QUOTED_LIST_VALUE_ID}|{_LIST_VALUE_ID}",
      _ret("TOK_VALUE", pop=True, value=True))
    r(["LIST_COND_PAREN_VAL"], r"\)", _pop_only)
    r(["LIST_COND_PAREN_VAL"], rf"{_QUOTED_LIST_VALUE_ID}|{_LIST_VALUE_ID}",
      _ret("TOK_VALUE", value=True))
    r(["LIST_COND_MODE"], r"\)", _ret("TOK_CLOSEPAREN", pop=True))
    r(["LIST_COND_MODE"], r",", _skip)
    r(["LIST_COND_MODE"], r'[^ \t\n"!,=)]+', _ret("TOK_CONDID", value=True))
    r(["LIST_COND_MODE"], rf"={_WS}*\(", _ret("TOK_EQUALS", push="LIST_COND_PAREN_VAL"))
    r(["LIST_COND_MODE"], r"=", _ret("TOK_EQUALS", push="LIST_COND_VAL"))
    r(["EXTCONDLIST_MODE"], r"=", _ret("TOK_EQUALS"))
    r(["EXTCONDLIST_MODE"], r"\(", _ret("TOK_OPENPAREN", begin="LIST_COND_MODE"))
    r(["ASSIGN_MODE"], rf"{_QUOTED_ID}|{_IDS}", _ret("TOK_VALUE", value=True))
    r(["ASSIGN_MODE"], r",", _trailing_comma)
    r(["ASSIGN_MODE"], r"#[^\n]*\r?\n", _newline_pop)
    r(["ASSIGN_MODE"], r"\\\n", _continuation)
    r(["ASSIGN_MODE"], r"\r?\n", _newline_pop)
    r(["CHANGE_PROFILE_MODE"], r"safe", _ret("TOK_SAFE"))
    r(["CHANGE_PROFILE_MODE"], r"unsafe", _ret("TOK_UNSAFE"))
    r(["CHANGE_PROFILE_MODE"], r"->", _ret("TOK_ARROW", push="SUB_ID_WS"))
    r(["CHANGE_PROFILE_MODE"], rf"{_QUOTED_ID}|{_IDS}", _ret("TOK_ID", value=True))
    r(["RLIMIT_MODE"], r"-?[0-9]+", _raw("TOK_VALUE"))
    r(["RLIMIT_MODE"], r"[A-Za-z_]+", _rlimit_word)
    r(["RLIMIT_MODE"], r"<=", _ret("TOK_LE"))
    for word in ("listen", "accept", "connect", "getopt", "setopt", "shutdown", "create",
                 "getattr", "setattr"):
        r(["UNIX_MODE"], word, _raw("TOK_" + word.upper()))
    r(["DBUS_MODE", "UNIX_MODE"], "bind", _raw("TOK_BIND"))
    r(["DBUS_MODE"], "eavesdrop", _raw("TOK_EAVESDROP"))
    r(["DBUS_MODE", "SIGNAL_MODE", "UNIX_MODE"], "send", _raw("TOK_SEND"))
    r(["DBUS_MODE", "SIGNAL_MODE", "UNIX_MODE"], "receive", _raw("TOK_RECEIVE"))
    r(["PTRACE_MODE"], "trace", _raw("TOK_TRACE"))
    r(["PTRACE_MODE"], "readby", _raw("TOK_READBY"))
    r(["PTRACE_MODE"], "tracedby", _raw("TOK_TRACEDBY"))
    perm_modes = ["DBUS_MODE", "SIGNAL_MODE", "PTRACE_MODE", "UNIX_MODE"]
    r(perm_modes, "read", _raw("TOK_READ"))
    r(perm_modes, "write", _raw("TOK_WRITE"))
    r(perm_modes, r"\(", _ret("TOK_OPENPAREN", push="LIST_VAL_MODE"))
    r(perm_modes, r"rw|wr|r|w", _raw("TOK_MODE"), trail=r"[\s,]")
    r(["MOUNT_MODE"], r"->", _ret("TOK_ARROW"))
    r(_RULE_MODES, rf"{_QUOTED_ID}|{_LABEL}|{_IDS_NOEQ}", _ret("TOK_ID", value=True))
    r(["NETWORK_MODE"], _IDS, _ret("TOK_ID", value=True))
    r(["INITIAL"], _SET_VARIABLE, _raw("TOK_SET_VAR"))
    r(["INITIAL"], _BOOL_VARIABLE, _raw("TOK_BOOL_VAR"))
    r(["INITIAL"], rf"#include{_WS}+if{_WS}+exists", _push_only("INCLUDE_EXISTS"),
      trail=rf"{_WS}[^\n]*\r?\n")
    r(["INITIAL"], rf"include{_WS}+if{_WS}+exists", _push_only("INCLUDE_EXISTS"), trail=_WS)
    r(["INITIAL"], r"#include", _push_only("INCLUDE"), trail=r"[^\n]*\r?\n")
    r(["INITIAL"], r"include", _push_only("INCLUDE"), trail=_WS)
    r(["INITIAL"], r"#[^\n]*\r?\n", _newline)
    r(["INITIAL"], r"\^", _ret("TOK_CARET", push="SUB_ID"))
    r(["INITIAL"], r"->", _ret("TOK_ARROW", push="SUB_ID_WS"))
    r(["INITIAL"], r"=", _ret("TOK_EQUALS", push="ASSIGN_MODE"))
    r(["INITIAL"], r"\+=", _ret("TOK_ADD_ASSIGN", push="ASSIGN_MODE"))
    r(["INITIAL"], r"\{", _ret("TOK_OPEN"))
    r(["INITIAL"], r"\}", _ret("TOK_CLOSE"))
    r(["INITIAL"], rf"{_QUOTED_LABEL}|{_LABEL}", _ret("TOK_ID", value=True))
    r(["INITIAL"], rf"{_MODE_CHARS}+", _raw("TOK_MODE"), trail=r"[\s,]")
    r(["INITIAL"], rf"hat{_WS}*", _ret("TOK_HAT", push="SUB_ID"))
    r(["INITIAL"], rf"profile{_WS}*", _ret("TOK_PROFILE", push="SUB_ID"))
    r(["INITIAL"], r":", _ret("TOK_COLON"))
    r(["INITIAL"], r"\(", _ret("TOK_OPENPAREN", push="LIST_VAL_MODE"))
    r(["INITIAL"], _VARNAME, _keyword)
    r(_EOR_STATES, r",", _end_of_rule)
    r(_NEWLINE_STATES, r"\r?\n", _newline)


_build()

MAX_INCLUDE_DEPTH = 64


class Lexer:
    """Produces tokens on demand; `include` pushes included files onto a buffer stack."""

    def __init__(self, text: str, file: str, include_hook: IncludeHook | None = None) -> None:
        self.buffers: list[_Buffer] = [_Buffer(file, text)]
        self.texts: dict[str, str] = {file: text}
        self.state = "INITIAL"
        self.stack: list[str] = []
        self.value: str | None = None
        self.include_hook = include_hook
        self.done = False
        # files already included in the current profile block (or the preamble):
        # apparmor_parser skips a repeated include there, which also ends recursion
        self.included: set[str] = set()

    @property
    def buf(self) -> _Buffer:
        return self.buffers[-1]

    # state stack, as flex's yy_push_state / yy_pop_state
    def push_state(self, state: str) -> None:
        self.stack.append(self.state)
        self.state = state

    def pop_state(self) -> None:
        self.state = self.stack.pop() if self.stack else "INITIAL"

    def enter_block(self) -> set[str]:
        """A profile body starts with no includes seen; returns the outer set."""
        outer, self.included = self.included, set()
        return outer

    def leave_block(self, outer: set[str]) -> None:
        self.included = outer

    def error(self, message: str) -> ProfileError:
        return ProfileError(message, file=self.buf.file, line=self.buf.line)

    def include(self, name: str, search: bool, if_exists: bool) -> None:
        if self.include_hook is None:
            if if_exists:
                return
            raise self.error(f"Could not open '{name}'")
        if len(self.buffers) > MAX_INCLUDE_DEPTH:
            raise self.error(f"Exceeded maximum include depth including '{name}'")
        files = self.include_hook(name, search, if_exists, self.buf.file, self.buf.line)
        files = [(f, t) for f, t in files if f not in self.included]
        self.included.update(f for f, _ in files)
        # the stack is read from its top: push the files in reverse to read them in order
        for fname, text in reversed(files):
            self.texts.setdefault(fname, text)
            self.buffers.append(_Buffer(fname, text))

    def next(self) -> Token | None:
        """The next token, or None at the end of the main file."""
        while True:
            if self.done:
                return None
            buf = self.buf
            if buf.pos >= len(buf.text):
                if len(self.buffers) == 1:
                    self.done = True
                    return None
                self.buffers.pop()
                continue
            rules = _TABLE.get(self.state, [])
            best: re.Match[str] | None = None
            best_rule: _Rule | None = None
            best_len = -1
            for rule in rules:
                m = rule.regex.match(buf.text, buf.pos)
                if m is not None and m.end() - buf.pos > best_len:
                    best, best_rule, best_len = m, rule, m.end() - buf.pos
            if best is None or best_rule is None or best_len == 0:
                ch = buf.text[buf.pos]
                raise self.error(
                    f"Lexer found unexpected character: '{ch}' (0x{ord(ch):x}) "
                    f"in state: {self.state}"
                )
            text = best.group(1)
            start, line, file = buf.pos, buf.line, buf.file
            buf.pos += len(text)  # trailing context is matched but not consumed
            self.value = None
            kind = best_rule.action(self, text)
            if kind is not None:
                return Token(kind, self.value, file, line, start, start + len(text))
