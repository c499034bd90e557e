"""The profile language's grammar (apparmor_parser 3.0's), read by recursive descent:
a file's preamble, its profiles, hats and child profiles, rule prefixes, blocks and
conditionals (single rules: rulesyntax.py).

Builds the model (model.py) while reading, with each rule's text and line, and raises
ProfileError at the first problem, located where apparmor_parser would locate it.
Rule order never matters to AppArmor, so rules are kept in the order written only to
report them in that order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lab.engines.apparmor import tables
from lab.engines.apparmor.errors import ProfileError
from lab.engines.apparmor.lexer import IncludeHook, Token
from lab.engines.apparmor.model import FileRule, Profile, Rule
from lab.engines.apparmor.rulesyntax import RuleSyntax
from lab.engines.apparmor.variables import Variables


@dataclass(slots=True)
class Prefix:
    """`[audit] [allow|deny] [owner|other]` before a rule."""

    audit: bool = False
    mode: str | None = None  # "allow" / "deny"
    owner: str | None = None  # "owner" / "other"


@dataclass(slots=True)
class ParsedFile:
    """A whole profile file: its preamble and its top-level profiles."""

    profiles: list[Profile] = field(default_factory=list)
    variables: Variables = field(default_factory=Variables)
    aliases: list[tuple[str, str]] = field(default_factory=list)
    abi: str | None = None


class Parser(RuleSyntax):
    """A whole file: preamble, profiles, and the rules inside them."""

    def __init__(self, text: str, file: str, include_hook: IncludeHook | None = None) -> None:
        super().__init__(text, file, include_hook)
        self.out = ParsedFile()

    # -- token plumbing ------------------------------------------------------------

    def parse(self) -> ParsedFile:
        self.preamble()
        while self.peek() is not None:
            self.out.profiles.append(self.profile())
        return self.out

    def preamble(self) -> None:
        while True:
            k = self.kind()
            if k == "TOK_ALIAS":
                self.alias()
            elif k == "TOK_SET_VAR":
                self.set_var()
            elif k == "TOK_BOOL_VAR":
                self.bool_var()
            elif k == "TOK_ABI":
                self.abi()
            else:
                return

    def alias(self) -> None:
        self.take()
        src = self.expect("TOK_ID")
        self.expect("TOK_ARROW")
        dst = self.expect("TOK_ID")
        self.expect("TOK_END_OF_RULE")
        self.out.aliases.append((src.value or "", dst.value or ""))

    def set_var(self) -> None:
        name = self.take()
        op = self.expect("TOK_EQUALS", "TOK_ADD_ASSIGN")
        values = [self.expect("TOK_VALUE").value or ""]
        while self.kind() == "TOK_VALUE":
            values.append(self.take().value or "")
        try:
            self.out.variables.assign(name.value or "", values,
                                      append=op.kind == "TOK_ADD_ASSIGN",
                                      file=name.file, line=name.line)
        except ProfileError as err:
            raise self.located(err, name) from None

    def bool_var(self) -> None:
        name = self.take()
        self.expect("TOK_EQUALS")
        value = self.expect("TOK_VALUE")
        self.out.variables.assign_bool(name.value or "", value.value or "",
                                       file=value.file, line=value.line)

    def abi(self) -> None:
        self.take()
        tok = self.expect("TOK_ID", "TOK_VALUE")
        self.expect("TOK_END_OF_RULE")
        self.out.abi = tok.value

    # -- profiles ------------------------------------------------------------------

    def profile(self) -> Profile:
        k = self.kind()
        flag = 0
        if k == "TOK_PROFILE":
            flag = 1
            self.take()
        elif k in ("TOK_CARET", "TOK_HAT"):
            flag = 2
            self.take()
        elif k != "TOK_ID":
            raise self.syntax_error("EOF")
        prof = self.profile_base(flag)
        if flag == 0 and not prof.name.startswith(("/", ":")):
            raise ProfileError("Profile names must begin with a '/', namespace or keyword "
                               "'profile' or 'hat'.", file=prof.src.file, line=prof.src.line)
        return prof

    def profile_base(self, flag: int, parent: Profile | None = None) -> Profile:
        name_tok = self.expect("TOK_ID")
        name = name_tok.value or ""
        attachment: str | None = None
        if self.kind() in ("TOK_ID", "TOK_SET_VAR"):
            attach_tok = self.take()
            attachment = attach_tok.value
            if not (attachment or "").startswith(("/", "@{")):
                raise self.fail("Profile attachment must begin with a '/' or variable.",
                                attach_tok)
        xattrs: dict[str, str] = {}
        if self.kind() == "TOK_CONDLISTID":
            group = self.take()
            self.expect("TOK_EQUALS")
            self.expect("TOK_OPENPAREN")
            conds = self.conds()
            self.expect("TOK_CLOSEPAREN")
            if group.value != "xattrs":
                raise self.fail(f"profile id: invalid conditional group {group.value}=()",
                                group)
            xattrs = {c.name: (c.values[0] if c.values else "") for c in conds}
        mode, flags = self.flags()
        open_tok = self.expect("TOK_OPEN")
        outer_includes = self.lx.enter_block()
        if parent is None:
            self.check_label(name, name_tok)
        prof = Profile(name=name, src=self.source(name_tok, open_tok), attachment=attachment,
                       mode=mode, flags=tuple(flags), xattrs=xattrs, is_hat=flag == 2,
                       parent=parent)
        if flag == 2 and xattrs:
            raise self.fail("hat profiles can't use xattrs matches", name_tok)
        self.rules(prof)
        self.expect("TOK_CLOSE")
        self.lx.leave_block(outer_includes)
        return prof

    def check_label(self, label: str, tok: Token) -> None:
        if not label.startswith(":"):
            return
        end = label.find(":", 1)
        if end == -1:
            raise self.fail(f"Namespace not terminated: {label}", tok)
        if end == 1:
            raise self.fail(f"Empty namespace: {label}", tok)
        rest = label[end + 1:]
        if rest.startswith("//"):
            rest = rest[2:]
        if not rest:
            raise self.fail(f"Empty named transition profile name: {label}", tok)

    def flags(self) -> tuple[str, list[str]]:
        k = self.kind()
        if k == "TOK_CONDID":
            tok = self.take()
            if tok.value != "flags":
                raise self.fail(f"expected flags= got {tok.value}=", tok)
            self.expect("TOK_EQUALS")
            self.expect("TOK_OPENPAREN")
        elif k == "TOK_OPENPAREN":
            self.take()
        else:
            return "enforce", []
        mode: str | None = None
        flags: list[str] = []
        if self.kind() != "TOK_VALUE":
            raise self.syntax_error("TOK_VALUE")
        while self.kind() == "TOK_VALUE":
            tok = self.take()
            value = tok.value or ""
            if value == "debug":
                raise self.fail("Profile flag 'debug' is no longer valid.", tok)
            if value in tables.PROFILE_MODES:
                if mode is not None and mode != value:
                    raise self.fail(f"Profile flag '{mode}' conflicts with '{value}'", tok)
                mode = value
            elif value in tables.PROFILE_FLAGS or value.startswith("attach_disconnected.path="):
                flags.append(value)
            else:
                raise self.fail(f"Invalid profile flag: {value}.", tok)
        for a, b in tables.CONFLICTING_FLAGS:
            if a in flags and b in flags:
                raise self.fail(f"Profile flag {a} conflicts with {b}")
        self.expect("TOK_CLOSEPAREN")
        return mode or "enforce", flags

    # -- rules ---------------------------------------------------------------------

    def rules(self, prof: Profile) -> None:
        while True:
            k = self.kind()
            if k in ("TOK_CLOSE", "EOF"):
                return
            if k in ("TOK_CARET", "TOK_HAT"):
                self.take()
                prof.children.append(self.profile_base(2, prof))
            elif k == "TOK_PROFILE":
                self.take()
                prof.children.append(self.profile_base(1, prof))
            elif k == "TOK_IF":
                self.cond_rule(prof)
            elif k == "TOK_SET":
                self.rlimit(prof)
            elif k == "TOK_ABI":
                self.abi()
            else:
                self.prefixed_rule(prof)

    def prefix(self) -> Prefix:
        p = Prefix()
        if self.kind() == "TOK_AUDIT":
            self.take()
            p.audit = True
        if self.kind() in ("TOK_ALLOW", "TOK_DENY"):
            p.mode = "deny" if self.take().kind == "TOK_DENY" else "allow"
        if self.kind() in ("TOK_OWNER", "TOK_OTHER"):
            p.owner = "owner" if self.take().kind == "TOK_OWNER" else "other"
        return p

    def prefixed_rule(self, prof: Profile) -> None:
        first = self.peek()
        p = self.prefix()
        k = self.kind()
        assert first is not None
        no_owner = {
            "TOK_CAPABILITY": "owner prefix not allowed on capability rules",
            "TOK_NETWORK": "owner prefix not allowed",
            "TOK_MOUNT": "owner prefix not allowed on mount rules",
            "TOK_REMOUNT": "owner prefix not allowed on mount rules",
            "TOK_UMOUNT": "owner prefix not allowed on mount rules",
            "TOK_PIVOTROOT": "owner prefix not allowed on mount rules",
            "TOK_DBUS": "owner prefix not allowed on dbus rules",
            "TOK_SIGNAL": "owner prefix not allowed on signal rules",
            "TOK_PTRACE": "owner prefix not allowed on ptrace rules",
            "TOK_UNIX": "owner prefix not allowed on unix rules",
            "TOK_CHANGE_PROFILE": "owner prefix not allowed on unix rules",
        }
        try:
            if k == "TOK_OPEN":
                self.block(prof, p)
                return
            if k == "TOK_CAPABILITY":
                rule: Rule = self.capability(first)
            elif k == "TOK_NETWORK":
                rule = self.network(first)
            elif k in ("TOK_MOUNT", "TOK_REMOUNT", "TOK_UMOUNT", "TOK_PIVOTROOT"):
                rule = self.mount(first)
            elif k == "TOK_DBUS":
                rule = self.dbus(first)
            elif k == "TOK_SIGNAL":
                rule = self.signal(first)
            elif k == "TOK_PTRACE":
                rule = self.ptrace(first)
            elif k == "TOK_UNIX":
                rule = self.unix(first)
            elif k == "TOK_CHANGE_PROFILE":
                rule = self.change_profile(first)
            elif k == "TOK_LINK":
                rule = self.link_rule(first)
            else:
                rule = self.file_rule(first)
        except ProfileError as err:
            raise self.located(err, self.last or first) from None
        if p.owner and k in no_owner:
            raise self.fail(no_owner[k])
        self.apply_prefix(rule, p)
        prof.rules.append(rule)

    def apply_prefix(self, rule: Rule, p: Prefix) -> None:
        if p.mode == "deny":
            rule.deny = True
        rule.audit = rule.audit or p.audit
        if p.owner:
            rule.owner = p.owner
        if isinstance(rule, FileRule):
            self.check_x_qualifier(rule)

    def check_x_qualifier(self, rule: FileRule) -> None:
        if "x" not in rule.perms:
            return
        if rule.deny and rule.exec_mode is not None:
            raise self.fail("Invalid mode, in deny rules 'x' must not be preceded by exec "
                            "qualifier 'i', 'p', or 'u'")
        if not rule.deny and rule.exec_mode is None and rule.target is not None:
            # `x -> name`: a plain x with a named transition is a safe profile transition
            rule.exec_mode = "Px"
        if not rule.deny and rule.exec_mode is None:
            raise self.fail("Invalid mode, 'x' must be preceded by exec qualifier 'i', 'p', "
                            "'c', or 'u'")

    def block(self, prof: Profile, p: Prefix) -> None:
        """`owner { ... }`: the prefix applies to each file rule in the block.

        apparmor_parser 3.0 keeps only the block's file rules (other kinds of rule in
        a block never reach the policy), and so does the lab.
        """
        self.take()
        inner = Profile(name=prof.name, src=prof.src, parent=prof.parent)
        self.rules(inner)
        self.expect("TOK_CLOSE")
        for rule in inner.rules:
            if isinstance(rule, FileRule):
                if rule.deny and p.mode == "allow":
                    raise self.fail("conflicting mode prefix")
                self.apply_prefix(rule, p)
                prof.rules.append(rule)

    def cond_rule(self, prof: Profile) -> None:
        self.take()  # if
        value = self.expr()
        self.expect("TOK_OPEN")
        branch = Profile(name=prof.name, src=prof.src, parent=prof.parent)
        self.rules(branch)
        self.expect("TOK_CLOSE")
        chosen: Profile | None = branch if value else None
        if self.kind() == "TOK_ELSE":
            self.take()
            if self.kind() == "TOK_IF":
                other = Profile(name=prof.name, src=prof.src, parent=prof.parent)
                self.cond_rule(other)
            else:
                self.expect("TOK_OPEN", "TOK_IF")
                other = Profile(name=prof.name, src=prof.src, parent=prof.parent)
                self.rules(other)
                self.expect("TOK_CLOSE")
            if not value:
                chosen = other
        if chosen is not None:
            prof.rules.extend(chosen.rules)
            prof.children.extend(chosen.children)

    def expr(self) -> bool:
        k = self.kind()
        if k == "TOK_NOT":
            self.take()
            return not self.expr()
        if k == "TOK_BOOL_VAR":
            tok = self.take()
            value = self.out.variables.boolean(tok.value or "")
            if value is None:
                raise self.fail(f"Unset boolean variable {tok.value} used in if-expression",
                                tok)
            return value
        if k == "TOK_DEFINED":
            self.take()
            tok = self.expect("TOK_SET_VAR", "TOK_BOOL_VAR")
            return self.out.variables.defined(tok.value or "")
        raise self.syntax_error("TOK_BOOL_VAR", "TOK_DEFINED", "TOK_NOT")

def parse_text(text: str, file: str, include_hook: IncludeHook | None = None) -> ParsedFile:
    """Parse a profile file's text (syntax and per-rule checks only)."""
    return Parser(text, file, include_hook).parse()
