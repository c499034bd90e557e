"""The grammar of single rules: file, link, capability, network, mount, dbus, signal,
ptrace, unix, change_profile and rlimit rules (apparmor_parser 3.0's)."""

from __future__ import annotations

from lab.engines.apparmor import rulebuild, tables
from lab.engines.apparmor.errors import ProfileError
from lab.engines.apparmor.lexer import Token
from lab.engines.apparmor.model import (
    ChangeProfileRule,
    FileRule,
    Profile,
    RlimitRule,
    Rule,
)
from lab.engines.apparmor.perms import parse_file_mode, parse_simple_perms
from lab.engines.apparmor.rulebuild import Cond
from lab.engines.apparmor.tokens import TokenStream

_SECOND = 1_000_000
_TIME_UNITS_US = {
    "us": 1, "microsecond": 1, "microseconds": 1,
    "ms": 1000, "millisecond": 1000, "milliseconds": 1000,
    "s": _SECOND, "sec": _SECOND, "second": _SECOND, "seconds": _SECOND,
    "min": 60 * _SECOND, "minute": 60 * _SECOND, "minutes": 60 * _SECOND,
    "h": 3600 * _SECOND, "hour": 3600 * _SECOND, "hours": 3600 * _SECOND,
    "d": 86400 * _SECOND, "day": 86400 * _SECOND, "days": 86400 * _SECOND,
    "week": 604800 * _SECOND, "weeks": 604800 * _SECOND,
}


class RuleSyntax(TokenStream):
    """Each method reads one kind of rule, from its keyword to its `,`."""

    def conds(self) -> list[Cond]:
        out: list[Cond] = []
        while self.kind() == "TOK_CONDID":
            name = self.take().value or ""
            if self.kind() == "TOK_IN":
                self.take()
                self.expect("TOK_OPENPAREN")
                out.append(Cond(name, False, self.values_until_close()))
            elif self.kind() == "TOK_EQUALS":
                self.take()
                if self.kind() == "TOK_OPENPAREN":
                    self.take()
                    out.append(Cond(name, True, self.values_until_close()))
                else:
                    out.append(Cond(name, True, [self.expect("TOK_VALUE").value or ""]))
            else:
                out.append(Cond(name, True, []))
        return out

    def values_until_close(self) -> list[str]:
        values = [self.expect("TOK_VALUE").value or ""]
        while self.kind() == "TOK_VALUE":
            values.append(self.take().value or "")
        self.expect("TOK_CLOSEPAREN")
        return values

    def cond_list(self, rule: str) -> list[Cond]:
        if self.kind() != "TOK_CONDLISTID":
            return []
        group = self.take()
        self.expect("TOK_EQUALS")
        self.expect("TOK_OPENPAREN")
        conds = self.conds()
        self.expect("TOK_CLOSEPAREN")
        if group.value != "peer":
            raise self.fail(f"{rule} rule: invalid conditional group {group.value}=()", group)
        return conds

    def capability(self, first: Token) -> Rule:
        self.take()
        names: list[str] = []
        while self.kind() == "TOK_ID":
            tok = self.take()
            if (tok.value or "") not in tables.CAPABILITIES:
                raise self.fail(f"Invalid capability {tok.value}.", tok)
            names.append(tok.value or "")
        self.expect("TOK_END_OF_RULE", "TOK_ID")
        return rulebuild.capability(self.source(first), names)

    def network(self, first: Token) -> Rule:
        self.take()
        ids: list[str] = []
        while self.kind() == "TOK_ID" and len(ids) < 2:
            ids.append(self.take().value or "")
        self.expect("TOK_END_OF_RULE")
        return rulebuild.network(self.source(first), ids)

    def mount(self, first: Token) -> Rule:
        kw = self.take()
        op = {"TOK_MOUNT": "mount", "TOK_REMOUNT": "remount", "TOK_UMOUNT": "umount",
              "TOK_PIVOTROOT": "pivot_root"}[kw.kind]
        conds = self.conds()
        source = self.take().value if self.kind() == "TOK_ID" else None
        dst_conds: list[Cond] | None = None
        mountpoint: str | None = None
        target: str | None = None
        if op == "mount" and self.kind() == "TOK_ARROW":
            self.take()
            dst_conds = self.conds()
            mountpoint = self.expect("TOK_ID").value
        elif op == "pivot_root" and self.kind() == "TOK_ARROW":
            self.take()
            target = self.expect("TOK_ID", "TOK_SET_VAR").value
        expect = ("TOK_END_OF_RULE", "TOK_ARROW") if op == "mount" else ("TOK_END_OF_RULE",)
        self.expect(*expect)
        if op == "pivot_root":
            return rulebuild.mount(self.source(first), op, conds, None, None, source,
                                   target)
        return rulebuild.mount(self.source(first), op, conds, source, dst_conds, mountpoint)

    def simple_perms(self, kind: str, words: dict[str, str]) -> frozenset[str]:
        """`opt_X_perm`: one permission word, or a parenthesised list of them."""
        k = self.kind()
        if k == "TOK_OPENPAREN":
            self.take()
            out: set[str] = set()
            while self.kind() == "TOK_VALUE":
                out |= self.perm_word(kind, self.take().value or "", words)
            self.expect("TOK_CLOSEPAREN", "TOK_VALUE")
            return frozenset(out)
        if k == "TOK_MODE":
            return parse_simple_perms(kind, self.take().value or "")
        tok = self.peek()
        if tok is not None and tok.kind in words.values():
            self.take()
            return self.perm_word(kind, tok.value or "", words)
        return frozenset()

    def perm_word(self, kind: str, word: str, words: dict[str, str]) -> frozenset[str]:
        synonyms = {"read": "receive", "write": "send"}
        if kind == "ptrace":
            synonyms = {"write": "trace"}
        if word in words:
            return frozenset({synonyms.get(word, word)})
        return parse_simple_perms(kind, word)

    def dbus(self, first: Token) -> Rule:
        self.take()
        words = {w: "TOK_" + w.upper() for w in
                 ("send", "receive", "bind", "eavesdrop", "read", "write")}
        perms = self.simple_perms("dbus", words)
        conds = self.conds()
        peer = self.cond_list("dbus")
        self.expect("TOK_END_OF_RULE", "TOK_CONDID")
        return rulebuild.dbus(self.source(first), perms, conds, peer)

    def signal(self, first: Token) -> Rule:
        self.take()
        words = {w: "TOK_" + w.upper() for w in ("send", "receive", "read", "write")}
        perms = self.simple_perms("signal", words)
        conds = self.conds()
        self.expect("TOK_END_OF_RULE", "TOK_CONDID")
        return rulebuild.signal(self.source(first), perms, conds)

    def ptrace(self, first: Token) -> Rule:
        self.take()
        words = {w: "TOK_" + w.upper() for w in ("trace", "read", "readby", "tracedby",
                                                 "write")}
        perms = self.simple_perms("ptrace", words)
        conds = self.conds()
        self.expect("TOK_END_OF_RULE", "TOK_CONDID")
        return rulebuild.ptrace(self.source(first), perms, conds)

    def unix(self, first: Token) -> Rule:
        self.take()
        words = {w: "TOK_" + w.upper() for w in tables.UNIX_PERMS | {"read", "write"}}
        perms = self.simple_perms("unix", words)
        conds = self.conds()
        peer = self.cond_list("unix")
        self.expect("TOK_END_OF_RULE", "TOK_CONDID")
        return rulebuild.unix(self.source(first), perms, conds, peer)

    def change_profile(self, first: Token) -> Rule:
        self.take()
        mode: str | None = None
        if self.kind() in ("TOK_SAFE", "TOK_UNSAFE"):
            mode = "safe" if self.take().kind == "TOK_SAFE" else "unsafe"
        exec_cond = self.take().value if self.kind() == "TOK_ID" else None
        target: str | None = None
        if self.kind() == "TOK_ARROW":
            self.take()
            target = self.expect("TOK_ID", "TOK_SET_VAR").value
        self.expect("TOK_END_OF_RULE")
        if mode is not None and exec_cond is None:
            raise self.fail("Exec condition is required when unsafe or safe keywords are "
                            "present")
        if exec_cond is not None and not exec_cond.startswith(("/", "@{")):
            raise self.fail("Exec condition must begin with '/'.")
        return ChangeProfileRule(self.source(first), exec_cond=exec_cond, target=target,
                                 exec_mode=mode)

    def link_rule(self, first: Token) -> Rule:
        self.take()
        subset = False
        if self.kind() == "TOK_SUBSET":
            self.take()
            subset = True
        path = self.expect("TOK_ID", "TOK_SET_VAR").value or ""
        self.expect("TOK_ARROW")
        target = self.expect("TOK_ID", "TOK_SET_VAR").value or ""
        self.expect("TOK_END_OF_RULE")
        return FileRule(self.source(first), path=path, perms=frozenset("l"),
                        link_target=target, subset=subset)

    def file_rule(self, first: Token) -> Rule:
        if self.kind() == "TOK_FILE":
            self.take()
            if self.kind() == "TOK_END_OF_RULE":
                self.take()
                return FileRule(self.source(first), path="/{**,}",
                                perms=frozenset("rwalkmx"), exec_mode="ix", bare=True)
        unsafe: bool | None = None
        if self.kind() in ("TOK_SAFE", "TOK_UNSAFE"):
            unsafe = self.take().kind == "TOK_UNSAFE"
        k = self.kind()
        subset = False
        if k in ("TOK_ID", "TOK_SET_VAR"):
            path_tok = self.take()
            mode_tok = self.expect("TOK_MODE")
            if self.kind() in ("TOK_ID", "TOK_SET_VAR"):
                raise self.fail(f"missing an end of line character? (entry: {path_tok.value})",
                                self.peek())
        elif k == "TOK_MODE":
            mode_tok = self.take()
            if self.kind() == "TOK_SUBSET":
                self.take()
                subset = True
            path_tok = self.expect("TOK_ID", "TOK_SET_VAR")
        else:
            raise self.syntax_error("TOK_ID", "TOK_MODE", "TOK_SET_VAR")
        target: str | None = None
        if self.kind() == "TOK_ARROW":
            self.take()
            target = self.expect("TOK_ID", "TOK_SET_VAR").value
        self.expect("TOK_END_OF_RULE")
        try:
            mode = parse_file_mode(mode_tok.value or "")
        except ProfileError as err:
            raise self.located(err, mode_tok) from None
        perms = mode.perms
        if subset and perms - {"l"}:
            raise self.fail("subset can only be used with link rules.")
        if target is not None and "l" in perms and "x" in perms:
            raise self.fail("link and exec perms conflict on a file rule using ->")
        exec_letters = mode.exec.letters if mode.exec else None
        if unsafe is not None:
            if "x" not in perms:
                raise self.fail("unsafe rule missing exec permissions")
        rule = FileRule(self.source(first), path=path_tok.value or "", perms=perms,
                        exec_mode=exec_letters, unsafe_keyword=unsafe, subset=subset)
        if target is not None and "l" in perms and k == "TOK_MODE":
            rule.link_target = target
        else:
            rule.target = target
        return rule

    def rlimit(self, prof: Profile) -> None:
        first = self.take()  # set
        self.expect("TOK_RLIMIT")
        res = self.expect("TOK_ID")
        self.expect("TOK_LE")
        value = self.expect("TOK_VALUE")
        unit = self.take().value if self.kind() == "TOK_ID" else None
        self.expect("TOK_END_OF_RULE")
        name = res.value or ""
        if name not in tables.RLIMITS:
            raise self.fail(f"INVALID RLIMIT '{name}'", res)
        self.check_rlimit(name, value.value or "", unit, value)
        text = (value.value or "") + (f" {unit}" if unit else "")
        prof.rules.append(RlimitRule(self.source(first), resource=name, value=text))

    def check_rlimit(self, name: str, value: str, unit: str | None, tok: Token) -> None:
        if value == "infinity":
            return
        shown = f"{value} {unit}" if unit else value
        bad = ProfileError(f"RLIMIT '{name}' invalid value {shown}", file=tok.file,
                           line=tok.line)
        number = int(value)
        if name in ("cpu", "rttime"):
            if number < 0 or (unit is not None and unit not in _TIME_UNITS_US):
                raise bad
            # cpu limits are whole seconds: anything shorter than 1s is refused
            if name == "cpu" and unit is not None and number * _TIME_UNITS_US[unit] < 1_000_000:
                raise ProfileError(f"RLIMIT '{name} {value}' < minimum value of 1s",
                                   file=tok.file, line=tok.line)
        elif name in ("nofile", "ofile", "nproc", "locks", "sigpending", "rtprio"):
            if unit is not None or number < 0:
                raise bad
        elif name == "nice":
            if unit is not None:
                raise bad
            if not -20 <= number <= 19:
                raise ProfileError(f"RLIMIT '{name}' out of range (-20 .. 19) {number}",
                                   file=tok.file, line=tok.line)
        else:
            if number < 0 or (unit is not None and unit not in ("K", "KB", "M", "MB", "G",
                                                                "GB")):
                raise bad
