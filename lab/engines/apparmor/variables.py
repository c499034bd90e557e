"""Variables: `@{VAR} = a b`, `@{VAR} += c`, `$BOOL = true`, and their expansion.

A set variable holds a list of values; a value may refer to other variables. Where a
rule uses `@{VAR}`, a single value is substituted as is and several values become an
alternation `{a,b}`, as apparmor_parser does, so `@{HOME}/.ssh/** r` reads as
`{/home/*/,/root/}/.ssh/** r`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lab.engines.apparmor.errors import ProfileError

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")

PROFILE_NAME = "profile_name"
# a variable whose values multiply out beyond these is refused rather than compiled
MAX_VALUES = 50_000
MAX_EXPANDED_CHARS = 250_000


def var_name(raw: str) -> str:
    """`@{FOO}` / `@FOO` / `$FOO` / `${FOO}` -> `FOO`."""
    inner = raw[1:]
    if inner.startswith("{") and inner.endswith("}"):
        inner = inner[1:-1]
    return inner


def escape_glob(text: str) -> str:
    """Make a literal (a profile name) safe to use inside a path glob."""
    out = []
    for ch in text:
        out.append("\\" + ch if ch in "{}[]*?" else ch)
    return "".join(out)


@dataclass(slots=True)
class _Decl:
    values: list[str]
    file: str | None
    line: int | None


@dataclass(slots=True)
class Variables:
    """The preamble's symbol table."""

    sets: dict[str, _Decl] = field(default_factory=dict)
    bools: dict[str, bool] = field(default_factory=dict)
    _expanded: dict[str, list[str]] = field(default_factory=dict)

    def assign(self, raw: str, values: list[str], *, append: bool,
               file: str | None = None, line: int | None = None) -> None:
        name = var_name(raw)
        if append:
            decl = self.sets.get(name)
            if decl is None:
                raise ProfileError(f"variable {raw} was not previously declared, but is being "
                                   "assigned additional values", file=file, line=line)
            decl.values.extend(values)
        else:
            if name in self.sets or name in self.bools:
                raise ProfileError(f"variable {raw} was previously declared", file=file,
                                   line=line)
            self.sets[name] = _Decl(list(values), file, line)
        self._expanded.clear()

    def assign_bool(self, raw: str, value: str, *, file: str | None = None,
                    line: int | None = None) -> None:
        name = var_name(raw)
        low = value.lower()
        if low not in ("true", "false"):
            raise ProfileError(
                f"Invalid boolean assignment for ({raw}): {value} is not true or false",
                file=file, line=line)
        if name in self.bools or name in self.sets:
            raise ProfileError(f"variable {raw} was previously declared", file=file,
                               line=line)
        self.bools[name] = low == "true"

    def boolean(self, raw: str) -> bool | None:
        return self.bools.get(var_name(raw))

    def defined(self, raw: str) -> bool:
        name = var_name(raw)
        return name in self.sets or name in self.bools

    # -- expansion -------------------------------------------------------------

    def values(self, name: str) -> list[str]:
        """A variable's values with every reference in them resolved."""
        if name not in self._expanded:
            self._expanded[name] = self._expand_var(name, [])
        return self._expanded[name]

    def check_all(self) -> None:
        """Resolve every variable once, so bad references fail even when unused."""
        for name in list(self.sets):
            self.values(name)

    def _expand_var(self, name: str, chain: list[str]) -> list[str]:
        decl = self.sets[name]
        out: dict[str, None] = {}  # ordered set
        for value in decl.values:
            for v in self._expand_value(value, name, chain + [name], decl):
                out[v] = None
            if len(out) > MAX_VALUES:
                raise ProfileError(f"variable @{{{name}}} expands to more than {MAX_VALUES} "
                                   "values", file=decl.file, line=decl.line)
        return list(out)

    def _expand_value(self, value: str, owner: str, chain: list[str],
                      decl: _Decl) -> list[str]:
        found = _find_ref(value, 0)
        while found is not None and "," in value[found[0] + 2:found[1]]:
            found = _find_ref(value, found[1])
        if found is None:
            return [value]
        start, end = found
        ref = value[start + 2:end]
        if ref in chain:
            raise ProfileError(
                f"Variable @{{{ref}}} is referenced recursively (by @{{{owner}}})",
                file=decl.file, line=decl.line)
        if ref not in self.sets:
            raise ProfileError(
                f"Variable @{{{owner}}} references undefined variable @{{{ref}}}",
                file=decl.file, line=decl.line)
        head, tail = value[:start], value[end + 1:]
        out: list[str] = []
        for v in self._expand_var(ref, chain):
            out.extend(self._expand_value(head + v + tail, owner, chain, decl))
            if len(out) > MAX_VALUES:
                raise ProfileError(f"variable @{{{owner}}} expands to more than {MAX_VALUES} "
                                   "values", file=decl.file, line=decl.line)
        return out

    def expand(self, text: str, extra: dict[str, list[str]] | None = None) -> str:
        """Substitute every `@{VAR}` in a rule's string (alternation for many values).

        Around a `/`, the values' own leading/trailing slashes are dropped, so
        `@{HOME}/.ssh` with HOME=`/root/` gives `/root/.ssh`, not `/root//.ssh`.
        """
        done = ""  # text before `carry`, no longer looked at
        carry = ""  # the last substituted value and what followed it: the "prefix" of
        rest = text  # the next reference, as apparmor_parser sees it
        pos = 0
        while True:
            found = _find_ref(rest, pos)
            if found is None:
                return done + carry + rest
            start, end = found
            name = rest[start + 2:end]
            if "," in name:
                # `@{a,b}`: an old way of writing an alternation, not a variable
                pos = end
                continue
            _check_name(name)
            if extra is not None and name in extra:
                vals = extra[name]
            elif name in self.sets:
                vals = self.values(name)
            else:
                raise ProfileError(
                    f"Found reference to variable {name}, but is never declared")
            prefix, suffix = carry + rest[:start], rest[end + 1:]
            trim_lead = prefix.endswith("/") and prefix.strip("/") != ""
            trim_tail = suffix.startswith("/")
            out = []
            for v in sorted(set(vals)):
                if trim_lead:
                    v = v.lstrip("/")
                if trim_tail:
                    v = v.rstrip("/")
                out.append(v)
            sub = out[0] if len(out) == 1 else "{" + ",".join(out) + "}"
            done, carry, rest, pos = done + prefix, sub, suffix, 0
            if len(done) + len(carry) + len(rest) > MAX_EXPANDED_CHARS:
                raise ProfileError(f"rule expands to more than {MAX_EXPANDED_CHARS} "
                                   "characters")


def _find_ref(text: str, pos: int) -> tuple[int, int] | None:
    """(start of `@{`, index of its `}`) of the first unescaped reference from pos."""
    escaped = False
    start = -1
    i = pos
    while i < len(text):
        c = text[i]
        if c == "\\":
            escaped = not escaped
        elif c == "@" and not escaped and start == -1 and text[i + 1:i + 2] == "{":
            start = i
            i += 2
            continue
        elif c == "}" and not escaped and start != -1:
            return start, i
        else:
            escaped = False
        i += 1
    return None


def _check_name(name: str) -> None:
    if not name or not name[0].isalpha():
        raise ProfileError(f"Variable '@{{{name}}}' must start with alphabet letters")
    if not _NAME.fullmatch(name):
        raise ProfileError(f"Variable '@{{{name}}}' contains invalid characters")
