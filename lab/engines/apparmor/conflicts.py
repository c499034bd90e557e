"""Exec-mode conflicts, reported where apparmor_parser reports them.

Two rules that let the same path be executed in different ways (`ix` and `px`,
`px` and `Px`, `unsafe` and safe) cannot be compiled:

* rules naming the same path are merged first: "profile P: has merged rule PATH with
  conflicting x modifiers";
* then the DFA merges every path two rules both match: "profile has merged rule with
  conflicting x modifiers" -- but a rule with an exact path (no `*`, `?`, `[..]`)
  overrides the exec mode of glob rules on that path, so only exact-vs-exact and
  glob-vs-glob overlaps conflict.

`owner` rules only hold the owner half of the permissions and `other` rules only the
other half; a conflict needs both rules to grant exec in the same half.
"""

from __future__ import annotations

from lab.engines.apparmor.errors import ProfileError
from lab.engines.apparmor.globs import is_exact, literal_prefix, parse_glob
from lab.engines.apparmor.model import ChangeProfileRule, FileRule, Profile
from lab.engines.apparmor.nfa import globs_intersect
from lab.engines.apparmor.perms import parse_file_mode

ExecKey = tuple[str, bool, str | None]


def exec_key(rule: FileRule) -> ExecKey | None:
    """(kind, unsafe, named target) of an allow rule's exec transition; None: no x."""
    if rule.deny or "x" not in rule.perms or rule.exec_mode is None:
        return None
    mode = parse_file_mode(rule.exec_mode).exec
    if mode is None:
        return None
    unsafe = mode.unsafe if rule.unsafe_keyword is None else rule.unsafe_keyword
    return (mode.kind, unsafe, rule.target)


def halves(owner: str | None) -> tuple[bool, bool]:
    """Which permission halves a rule fills: (owner half, other half)."""
    return (owner != "other", owner != "owner")


def _consistent(a: list[tuple[ExecKey, str | None]]) -> bool:
    seen: list[ExecKey | None] = [None, None]
    for key, owner in a:
        for h, on in enumerate(halves(owner)):
            if not on:
                continue
            if seen[h] is not None and seen[h] != key:
                return False
            seen[h] = key
    return True


def check_profile(prof: Profile) -> None:
    """Raise ProfileError (at the later of two conflicting rules) on an exec conflict."""
    _check_merge(prof)
    _check_overlaps(prof)


def _check_merge(prof: Profile) -> None:
    groups: dict[tuple[object, ...], list[tuple[ExecKey, str | None, int]]] = {}
    for rule in prof.rules:
        if isinstance(rule, FileRule):
            key = exec_key(rule)
            if key is None:
                continue
            gkey: tuple[object, ...] = ("f", rule.path, rule.link_target, rule.subset,
                                        rule.audit)
            groups.setdefault(gkey, []).append((key, rule.owner, rule.line))
        elif isinstance(rule, ChangeProfileRule) and rule.exec_cond and not rule.deny:
            cp_key: ExecKey = ("change_profile", rule.exec_mode == "unsafe", None)
            gkey = ("c", rule.target or "**", rule.exec_cond, rule.audit)
            groups.setdefault(gkey, []).append((cp_key, None, rule.line))
    for gkey, items in groups.items():
        if not _consistent([(k, o) for k, o, _ in items]):
            name = gkey[1]
            raise ProfileError(
                f"profile {prof.full_name}: has merged rule {name} with conflicting x "
                "modifiers", file=prof.src.file, line=items[-1][2], item=prof.full_name)


def _check_overlaps(prof: Profile) -> None:
    xrules = [r for r in prof.rules if isinstance(r, FileRule) and exec_key(r) is not None]
    for i, a in enumerate(xrules):
        ka = exec_key(a)
        ea = is_exact(a.path)
        for b in xrules[i + 1:]:
            kb = exec_key(b)
            if ka == kb or ea != is_exact(b.path):
                continue
            ha, hb = halves(a.owner), halves(b.owner)
            if not ((ha[0] and hb[0]) or (ha[1] and hb[1])):
                continue
            pa, pb = literal_prefix(parse_glob(a.path)), literal_prefix(parse_glob(b.path))
            if not (pa.startswith(pb) or pb.startswith(pa)):
                continue  # they part ways before their first wildcard
            if globs_intersect(a.path, b.path):
                raise ProfileError(
                    "profile has merged rule with conflicting x modifiers "
                    f"(line {a.line} `{a.text}` and line {b.line} `{b.text}` both match "
                    "some path)", file=b.src.file, line=b.line, item=prof.full_name)
