"""Access decisions: would this profile let the task do that?

AppArmor 3.x semantics, rule order never matters:

* the permissions of every matching allow rule form a union, the union of the
  matching deny rules is taken away from it (deny always wins);
* `w` implies append, `a` does not imply `w`;
* `owner` rules apply only to files the task's fsuid owns, `other` rules only to
  files it does not own;
* whatever is not granted is denied in enforce mode; in complain mode it is allowed
  and logged (COMPLAIN) -- but an explicit deny rule still denies;
* for exec, a rule with an exact path decides the transition over glob rules.

Every decision names the rules that made it, with their lines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from lab.engines.apparmor import tables
from lab.engines.apparmor.access import Access, parse_access
from lab.engines.apparmor.conflicts import halves
from lab.engines.apparmor.globs import is_exact, literal_prefix, parse_glob
from lab.engines.apparmor.model import (
    CapabilityRule,
    FileRule,
    NetworkRule,
    Profile,
    Rule,
    UnixRule,
)
from lab.engines.apparmor.nfa import matcher_for

ALLOW, DENY, COMPLAIN = "ALLOW", "DENY", "COMPLAIN"

PERM_WORDS = {"r": "read", "w": "write", "a": "append", "l": "link", "k": "lock",
              "m": "mmap", "x": "exec"}


# -- decisions ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleRef:
    """A rule that took part in a decision, and what it did."""

    line: int
    text: str
    role: str  # e.g. "allows read", "denies write"
    file: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "text": self.text, "role": self.role, "file": self.file}


class Decision:
    """The verdict on one access, the rules that decided it, and why (in words).

    `reason` is written on first use: most decisions are only counted.
    """

    __slots__ = ("access", "verdict", "rules", "exec_mode", "profile", "_why", "_reason")

    def __init__(self, access: Access, verdict: str, rules: tuple[RuleRef, ...],
                 exec_mode: str | None = None, profile: str = "",
                 why: tuple[Any, ...] = ()) -> None:
        self.access = access
        self.verdict = verdict  # ALLOW | DENY | COMPLAIN
        self.rules = rules
        self.exec_mode = exec_mode
        self.profile = profile
        self._why = why
        self._reason: str | None = None

    @property
    def reason(self) -> str:
        if self._reason is None:
            self._reason = _explain(*self._why)
        return self._reason

    @property
    def allowed(self) -> bool:
        """Whether the access happens (COMPLAIN lets it happen)."""
        return self.verdict != DENY

    def _key(self) -> tuple[Any, ...]:
        return (self.access, self.verdict, self.rules, self.exec_mode, self.profile)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Decision) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (f"Decision({self.access.text!r}, {self.verdict}, "
                f"rules={[r.line for r in self.rules]}, reason={self.reason!r})")

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"access": self.access.text, "decision": self.verdict,
                               "rules": [r.as_dict() for r in self.rules],
                               "reason": self.reason, "profile": self.profile}
        if self.exec_mode:
            out["exec_mode"] = self.exec_mode
        return out


def _explain(kind: str = "", *args: Any) -> str:
    """A decision's reason from what _outcome recorded."""
    if kind == "allow":
        main, refs = args
        return f"allowed: {_cite(refs, main)}"
    if kind == "unconfined":
        return f"profile {args[0]} is in unconfined mode"
    if kind == "denied":
        main, refs = args
        return f"denied: {_cite(refs, main)} (deny rules always win, in every mode)"
    if kind == "missing":
        main, what, refs, near, mode, name, not_owner = args
        partial = f"; {_cite(refs, main)}" if refs else ""
        # The classic owner trap: the rule matches, but the file is not the task's.
        partial += "".join(
            f"; line {r.line} `{r.text}` matches but applies only to files the task owns"
            for r in not_owner[:3] if r.src.file == main)
        partial += "".join(
            f"; line {r.line} `{r.text}` matches but allows only "
            f"{_words(r.perms) or 'nothing asked'}" for r in near[:3] if r.src.file == main)
        if mode == "complain":
            return (f"no rule allows {what}{partial}; profile {name} is in complain mode, "
                    "so it is allowed and logged")
        if mode == "kill":
            return (f"no rule allows {what}{partial}; anything not allowed is denied and the "
                    "task is killed (kill mode)")
        return f"no rule allows {what}{partial}; anything not allowed is denied ({mode} mode)"
    return str(args[0]) if args else ""


@lru_cache(maxsize=256)
def _perm_words(perms: frozenset[str]) -> str:
    return ", ".join(PERM_WORDS[p] for p in "rwalkmx" if p in perms)


def _words(perms: frozenset[str] | set[str]) -> str:
    return _perm_words(frozenset(perms))


def _ref(rule: Rule, role: str) -> RuleRef:
    return RuleRef(rule.line, rule.text, role, rule.src.file)


def _cite(refs: tuple[RuleRef, ...] | list[RuleRef], main: str = "") -> str:
    """`line 7 `/etc/** r,` allows read`, naming the file when it is an included one."""
    parts = []
    for r in refs:
        where = f"line {r.line}" if r.file == main else f"{r.file} line {r.line}"
        parts.append(f"{where} `{r.text}` {r.role}")
    return "; ".join(parts)


# -- the compiled profile ----------------------------------------------------------------


@dataclass(slots=True)
class _FileEntry:
    rule: FileRule
    path: str  # the glob (the rule's, or an alias's rewrite of it)
    exact: bool
    halves: tuple[bool, bool]
    perms: frozenset[str]


# what the decision loop reads, flattened: (fullmatch, halves, perms, deny, entry)
_Probe = tuple[Callable[[str], object], tuple[bool, bool], frozenset[str], bool, _FileEntry]


@dataclass(slots=True)
class _Index:
    buckets: dict[str, list[_Probe]] = field(default_factory=dict)
    wild: list[_Probe] = field(default_factory=list)

    caps: list[CapabilityRule] = field(default_factory=list)
    nets: list[NetworkRule] = field(default_factory=list)
    unix: list[UnixRule] = field(default_factory=list)
    children: dict[str, Profile] = field(default_factory=dict)
    cache: dict[tuple[str, frozenset[str], bool], Decision] = field(default_factory=dict)


_CACHE_LIMIT = 50_000


def _first_component(prefix: str) -> str | None:
    """The first path component a glob's literal prefix pins down, if any."""
    if not prefix.startswith("/"):
        return None
    end = prefix.find("/", 1)
    if end == -1:
        return None
    return prefix[1:end]


def _aliased(path: str, aliases: tuple[tuple[str, str], ...]) -> list[str]:
    out = [path]
    for src, dst in aliases:
        if path.startswith(src):
            out.append(dst + path[len(src):])
    return out


def compile_profile(prof: Profile) -> _Index:
    """Compile a profile's rules once: globs to regexes, indexed by first component."""
    if isinstance(prof.index, _Index):
        return prof.index
    idx = _Index()
    entries: list[tuple[str | None, _FileEntry]] = []
    for rule in prof.rules:
        if isinstance(rule, FileRule):
            perms = rule.perms
            for path in _aliased(rule.path, prof.aliases):
                seq = parse_glob(path)
                entry = _FileEntry(rule, path, is_exact(path), halves(rule.owner), perms)
                lit = literal_prefix(seq)
                comp = _first_component(lit)
                if comp is None and lit == path and path.startswith("/"):
                    comp = path[1:]  # the whole glob is the literal "/name"
                entries.append((comp, entry))
        elif isinstance(rule, CapabilityRule):
            idx.caps.append(rule)
        elif isinstance(rule, NetworkRule):
            idx.nets.append(rule)
        elif isinstance(rule, UnixRule):
            idx.unix.append(rule)
    def probe(e: _FileEntry) -> _Probe:
        return (matcher_for(e.path), e.halves, e.perms, e.rule.deny, e)

    idx.wild = [probe(e) for comp, e in entries if comp is None]
    order = {id(e): n for n, (_, e) in enumerate(entries)}
    for comp, e in entries:
        if comp is not None:
            idx.buckets.setdefault(comp, []).append(probe(e))
    for comp in idx.buckets:
        # keep the order the rules were written in
        idx.buckets[comp] = sorted(idx.buckets[comp] + idx.wild, key=lambda p: order[id(p[4])])

    for child in prof.children:
        idx.children[child.name] = child
    prof.index = idx
    return idx


def decide(profile: Profile, access: Access | str) -> Decision:
    """Decide one access against a profile (not its hats or child profiles)."""
    acc = parse_access(access) if isinstance(access, str) else access
    idx = compile_profile(profile)
    if acc.kind == "file":
        key = (acc.path, acc.perms, acc.owner)
        hit = idx.cache.get(key)
        if hit is not None and hit.access == acc:
            return hit
        result = _decide_file(profile, idx, acc)
        if len(idx.cache) >= _CACHE_LIMIT:
            idx.cache.clear()
        idx.cache[key] = result
        return result
    if acc.kind == "capability":
        return _decide_capability(profile, idx, acc)
    return _decide_network(profile, idx, acc)


def _outcome(profile: Profile, acc: Access, granted_refs: list[RuleRef],
             deny_refs: list[RuleRef], missing: set[str], denied: set[str], what: str,
             exec_mode: str | None = None, near: tuple[FileRule, ...] = (),
             not_owner: tuple[FileRule, ...] = ()) -> Decision:
    """Turn what was granted and denied into a verdict (and what its reason will say)."""
    name = profile.full_name
    main = profile.src.file
    if not missing and not denied:
        refs = tuple(granted_refs)
        return Decision(acc, ALLOW, refs, exec_mode, name, ("allow", main, refs))
    if profile.mode == "unconfined":
        return Decision(acc, ALLOW, (), exec_mode, name, ("unconfined", name))
    if denied:
        refs = tuple(deny_refs)
        return Decision(acc, DENY, refs, exec_mode, name, ("denied", main, refs))
    refs = tuple(granted_refs)
    verdict = COMPLAIN if profile.mode == "complain" else DENY
    return Decision(acc, verdict, refs, exec_mode, name,
                    ("missing", main, what, refs, near, profile.mode, name, not_owner))


def _decide_file(profile: Profile, idx: _Index, acc: Access) -> Decision:
    path = acc.path
    comp = path[1:].split("/", 1)[0] if path.startswith("/") else ""
    candidates = idx.buckets.get(comp, idx.wild)
    half = 0 if acc.owner else 1
    allow: set[str] = set()
    deny: set[str] = set()
    allow_hits: list[_FileEntry] = []
    deny_hits: list[_FileEntry] = []
    near_hits: list[_FileEntry] = []
    not_owner: list[_FileEntry] = []
    want = acc.perms
    for fullmatch, halves_, perms, is_deny, e in candidates:
        if not halves_[half]:
            if not is_deny and perms & want and fullmatch(path) is not None:
                not_owner.append(e)  # only to explain a denial
            continue
        if fullmatch(path) is None:
            continue
        useful = perms & want
        if is_deny:
            if useful:
                deny |= useful
                deny_hits.append(e)
        elif useful:
            allow |= useful
            allow_hits.append(e)
        else:
            near_hits.append(e)
    granted = allow - deny
    missing = set(acc.perms) - allow
    denied = set(acc.perms & deny)

    exec_mode: str | None = None
    if "x" in acc.perms and "x" in granted:
        xs = [e for e in allow_hits if "x" in e.perms]
        # an exact path decides the transition; glob rules' x then play no part
        chosen = [e for e in xs if e.exact] or xs
        allow_hits = [e for e in allow_hits if e in chosen or e.perms & acc.perms - {"x"}]
        exec_mode = chosen[0].rule.exec_mode
        child_err = _missing_child(profile, idx, chosen[0].rule, path)
        if child_err:
            refs = tuple(_ref(e.rule, f"allows exec as {exec_mode}") for e in chosen)
            return Decision(acc, DENY, refs, exec_mode, profile.full_name, ("text", child_err))

    granted_refs = []
    for e in allow_hits:
        mine = (e.perms & acc.perms) - deny
        if "x" in mine and exec_mode is not None and e.rule.exec_mode != exec_mode:
            mine = mine - {"x"}
        if mine:
            role = f"allows {_words(mine)}"
            if "x" in mine and e.rule.exec_mode:
                role += f" ({e.rule.exec_mode})"
            granted_refs.append(_ref(e.rule, role))
    deny_refs = [_ref(e.rule, f"denies {_words(e.perms & acc.perms)}") for e in deny_hits]
    what = f"{_words(missing or denied)} on {path}"
    if acc.owner:
        what += " (as its owner)"
    return _outcome(profile, acc, granted_refs, deny_refs, missing, denied, what, exec_mode,
                    tuple(e.rule for e in near_hits), tuple(e.rule for e in not_owner))


def _missing_child(profile: Profile, idx: _Index, rule: FileRule, path: str) -> str | None:
    """A `cx` transition needs the child profile; without it the exec fails."""
    mode = rule.exec_mode or ""
    if not mode.lower().startswith("c") or "i" in mode.lower() or "u" in mode.lower():
        return None
    target = rule.target or path
    if target in idx.children:
        return None
    return (f"line {rule.line} `{rule.text}` transitions to child profile {target}, which "
            f"{profile.full_name} does not define: the exec fails")


def _decide_capability(profile: Profile, idx: _Index, acc: Access) -> Decision:
    cap = acc.capability
    grants = [r for r in idx.caps if not r.deny and (not r.caps or cap in r.caps)]
    denies = [r for r in idx.caps if r.deny and (not r.caps or cap in r.caps)]
    granted_refs = [_ref(r, f"allows capability {cap}") for r in grants]
    deny_refs = [_ref(r, f"denies capability {cap}") for r in denies]
    missing = set() if grants else {cap}
    denied = {cap} if denies else set()
    return _outcome(profile, acc, granted_refs, deny_refs, missing, denied,
                    f"capability {cap}")


def _net_matches(rule: NetworkRule, family: str, sock_type: str) -> bool:
    if rule.family is not None and rule.family != family:
        return False
    if rule.sock_type is not None and rule.sock_type != sock_type:
        return False
    if rule.protocol is not None:
        pairs = tables.PROTOCOLS[rule.protocol]
        return (family, sock_type) in pairs
    return True


def _decide_network(profile: Profile, idx: _Index, acc: Access) -> Decision:
    fam, st = acc.family, acc.sock_type
    matching: list[Rule] = [r for r in idx.nets if _net_matches(r, fam, st)]
    if fam == "unix":
        matching += [r for r in idx.unix if r.sock_type in (None, st) and "create" in r.perms]
    grants = [r for r in matching if not r.deny]
    denies = [r for r in matching if r.deny]
    what = f"network {fam} {st}"
    granted_refs = [_ref(r, f"allows {what}") for r in grants]
    deny_refs = [_ref(r, f"denies {what}") for r in denies]
    return _outcome(profile, acc, granted_refs, deny_refs, set() if grants else {fam},
                    {fam} if denies else set(), what)
