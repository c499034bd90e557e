"""Pattern operators compiled once: `glob`/`iglob` (glibc fnmatch) and `regex` (RE2).

- glob: libs calls `fnmatch(pattern, value, 0)` (FNM_CASEFOLD for iglob): a full
  match where `*` and `?` also match '/', `[...]` brackets with `!`/`^`, ranges and
  `[:class:]`, and backslash escaping. Python's `fnmatch` differs (no escapes, no
  `^` negation), so patterns are translated here.
- regex: libs builds an RE2 with the POSIX option and matches anchored at both
  ends. POSIX syntax means no `\\d \\s \\w \\b`, no `(?...)` groups, no lazy `*?`,
  no back-references. An expression RE2 rejects is accepted by the compiler but
  never matches (libs does not check `RE2::ok()`), so it compiles to None here.
"""

from __future__ import annotations

import re
from collections.abc import Callable

Matcher = Callable[[str], bool]

_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z", "alpha": "A-Za-z", "ascii": "\\x00-\\x7f", "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f", "digit": "0-9", "graph": "!-~", "lower": "a-z",
    "print": " -~", "punct": "!-/:-@\\[-`{-~", "space": "\\t-\\r ", "upper": "A-Z",
    "word": "0-9A-Za-z_", "xdigit": "0-9A-Fa-f",
}


def _class_char(c: str) -> str:
    return "\\" + c if c in "\\]^-[" else c


def _glob_bracket(pat: str, i: int) -> tuple[str, int] | None:
    """Translate the bracket expression starting after '[' at `i`; None if unclosed."""
    n = len(pat)
    negate = i < n and pat[i] in "!^"
    if negate:
        i += 1
    items: list[str] = []
    first = True
    while i < n:
        c = pat[i]
        if c == "]" and not first:
            body = "".join(items)
            return ("[^" + body + "]" if negate else "[" + body + "]"), i + 1
        first = False
        if c == "[" and i + 1 < n and pat[i + 1] == ":":
            end = pat.find(":]", i + 2)
            if end != -1 and pat[i + 2:end] in _POSIX_CLASSES:
                items.append(_POSIX_CLASSES[pat[i + 2:end]])
                i = end + 2
                continue
        if c == "\\" and i + 1 < n:
            i += 1
            c = pat[i]
        if i + 2 < n and pat[i + 1] == "-" and pat[i + 2] != "]":
            hi = pat[i + 2]
            j = i + 2
            if hi == "\\" and j + 1 < n:
                j += 1
                hi = pat[j]
            if ord(hi) >= ord(c):
                items.append(_class_char(c) + "-" + _class_char(hi))
            i = j + 1
            continue
        items.append(_class_char(c))
        i += 1
    return None


def glob_to_regex(pat: str) -> str | None:
    """The Python regex equivalent to fnmatch(pat, ., 0); None if it can never match."""
    out: list[str] = []
    i, n = 0, len(pat)
    while i < n:
        c = pat[i]
        i += 1
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "\\":
            if i >= n:
                return None  # a trailing escape matches nothing in glibc
            out.append(re.escape(pat[i]))
            i += 1
        elif c == "[":
            bracket = _glob_bracket(pat, i)
            if bracket is None:
                out.append("\\[")
            else:
                text, i = bracket
                out.append(text)
        else:
            out.append(re.escape(c))
    return "".join(out)


def compile_glob(pat: str, casefold: bool = False) -> Matcher:
    # fast paths for the common "prefix*" / "*suffix" / literal shapes
    if not casefold and "\\" not in pat and "[" not in pat and "?" not in pat:
        stars = pat.count("*")
        if stars == 0:
            return pat.__eq__
        if stars == 1 and pat.endswith("*"):
            prefix = pat[:-1]
            return lambda s: s.startswith(prefix)
        if stars == 1 and pat.startswith("*"):
            suffix = pat[1:]
            return lambda s: s.endswith(suffix)
    regex = glob_to_regex(pat)
    if regex is None:
        return lambda s: False
    flags = re.DOTALL | (re.IGNORECASE | re.ASCII if casefold else 0)
    fullmatch = re.compile(regex, flags).fullmatch
    return lambda s: fullmatch(s) is not None


class _Re2Error(Exception):
    pass


_ESCAPES = {"a": "\a", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _re2_escape(pat: str, i: int) -> tuple[str, int]:
    """The literal character of the escape after a backslash at i-1, and the next index."""
    if i >= len(pat):
        raise _Re2Error("trailing \\")
    c = pat[i]
    if c.isascii() and not (c.isalnum() or c == "_"):
        return c, i + 1
    if c in _ESCAPES:
        return _ESCAPES[c], i + 1
    if c in "01234567":
        j = i + 1
        if c != "0" and (j >= len(pat) or pat[j] not in "01234567"):
            raise _Re2Error("back-references are not supported")
        while j < len(pat) and j < i + 3 and pat[j] in "01234567":
            j += 1
        return chr(int(pat[i:j], 8)), j
    if c == "x":
        if i + 1 < len(pat) and pat[i + 1] == "{":
            end = pat.find("}", i + 2)
            digits = pat[i + 2:end] if end != -1 else ""
            nxt = end + 1
        else:
            digits, nxt = pat[i + 1:i + 3], i + 3
            if len(digits) != 2:
                digits = ""
        if not digits or not all(d in "0123456789abcdefABCDEF" for d in digits):
            raise _Re2Error("bad hex escape")
        return chr(int(digits, 16)), nxt
    raise _Re2Error(f"invalid escape sequence: \\{c}")


def _re2_class_char(pat: str, i: int) -> tuple[str, int]:
    """One (possibly escaped) character inside a class: its value and the next index."""
    if pat[i] == "\\":
        return _re2_escape(pat, i + 1)
    return pat[i], i + 1


def _re2_class(pat: str, i: int) -> tuple[str, int]:
    """The class starting after '[' at i (POSIX mode rules), as a Python regex piece."""
    n = len(pat)
    negate = i < n and pat[i] == "^"
    if negate:
        i += 1
    items: list[str] = []
    nested: list[str] = []  # negated POSIX classes cannot live inside a Python class
    first = True
    while True:
        if i >= n:
            raise _Re2Error("missing closing ]")
        c = pat[i]
        if c == "]" and not first:
            break
        if c == "-" and not first and not (i + 1 < n and pat[i + 1] == "]"):
            raise _Re2Error("bad character class range")
        first = False
        if pat.startswith("[:", i):
            end = pat.find(":]", i + 2)
            name = pat[i + 2:end] if end != -1 else ""
            if end == -1 or name.lstrip("^") not in _POSIX_CLASSES:
                raise _Re2Error("invalid character class")
            body = _POSIX_CLASSES[name.lstrip("^")]
            if name.startswith("^"):
                nested.append(f"[^{body}]")
            else:
                items.append(body)
            i = end + 2
            continue
        lo, i = _re2_class_char(pat, i)
        if i + 1 < n and pat[i] == "-" and pat[i + 1] != "]":
            hi, i = _re2_class_char(pat, i + 1)
            if ord(hi) < ord(lo):
                raise _Re2Error("bad character class range")
            items.append(_class_char(lo) + "-" + _class_char(hi))
        else:
            items.append(_class_char(lo))
    alts = (["[" + "".join(items) + "]"] if items else []) + nested
    text = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
    if negate:
        text = "(?:(?!" + text + ")(?s:.))"
    return text, i + 1


_REPEAT = re.compile(r"\{([0-9]+)(,([0-9]*))?\}")


def re2_to_python(pat: str) -> str:
    """Translate an RE2 POSIX-syntax expression; raises _Re2Error where RE2 refuses it."""
    out: list[str] = []
    depth = 0
    can_repeat = False  # is there an atom the next repetition operator applies to?
    after_repeat = False
    i, n = 0, len(pat)
    while i < n:
        c = pat[i]
        if c in "*+?" or (c == "{" and _REPEAT.match(pat, i)):
            if c == "{":
                m = _REPEAT.match(pat, i)
                assert m is not None
                lo = int(m.group(1))
                hi = lo if m.group(2) is None else (int(m.group(3)) if m.group(3) else None)
                if lo > 1000 or (hi is not None and (hi > 1000 or hi < lo)):
                    raise _Re2Error("bad repetition operator")
                piece, i = m.group(0), m.end()
            else:
                piece, i = c, i + 1
            if after_repeat:
                raise _Re2Error("bad repetition operator")
            if not can_repeat:
                raise _Re2Error("missing argument to repetition operator")
            out.append(piece)
            after_repeat = True
            continue
        after_repeat = False
        i += 1
        if c == "\\":
            char, i = _re2_escape(pat, i)
            out.append(re.escape(char))
            can_repeat = True
        elif c == "[":
            piece, i = _re2_class(pat, i)
            out.append(piece)
            can_repeat = True
        elif c == "(":
            if i < n and pat[i] == "?":
                raise _Re2Error("missing argument to repetition operator: ?")
            depth += 1
            out.append("(")
            can_repeat = False
        elif c == ")":
            if depth == 0:
                raise _Re2Error("unexpected )")
            depth -= 1
            out.append(")")
            can_repeat = True
        elif c == "|":
            out.append("|")
            can_repeat = False
        elif c in "^$":
            out.append(c)
            can_repeat = False
        elif c == ".":
            out.append(".")
            can_repeat = True
        else:
            out.append(re.escape(c))
            can_repeat = True
    if depth:
        raise _Re2Error("missing closing )")
    return "".join(out)


def compile_regex(pat: str) -> Matcher | None:
    """A full-match predicate for an RE2 POSIX expression; None when RE2 rejects it."""
    try:
        regex = re.compile(re2_to_python(pat), re.MULTILINE)
    except (_Re2Error, re.error):
        return None
    fullmatch = regex.fullmatch
    return lambda s: fullmatch(s) is not None
