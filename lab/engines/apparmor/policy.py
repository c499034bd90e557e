"""From a parsed file to a compiled policy: what apparmor_parser does after parsing.

Duplicate profile names, variable expansion (`@{VAR}`, `@{profile_name}`), path
clean-up (`//` -> `/`), glob syntax, mount rule encoding and exec conflicts -- each
error located at the rule it comes from.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from lab.engines.apparmor import conflicts
from lab.engines.apparmor.errors import ProfileError
from lab.engines.apparmor.globs import check_glob, filter_slashes
from lab.engines.apparmor.model import (
    ChangeProfileRule,
    DbusRule,
    FileRule,
    MountRule,
    Profile,
    PtraceRule,
    Rule,
    SignalRule,
    UnixRule,
)
from lab.engines.apparmor.parser import ParsedFile
from lab.engines.apparmor.variables import PROFILE_NAME, Variables, escape_glob


@dataclass(slots=True)
class ProfileSet:
    """The profiles of one file (with their hats and child profiles)."""

    file: str
    profiles: list[Profile]
    variables: Variables = field(default_factory=Variables)
    aliases: list[tuple[str, str]] = field(default_factory=list)
    abi: str | None = None

    def all_profiles(self) -> Iterator[Profile]:
        def walk(p: Profile) -> Iterator[Profile]:
            yield p
            for c in p.children:
                yield from walk(c)
        for p in self.profiles:
            yield from walk(p)

    def names(self) -> list[str]:
        return [p.full_name for p in self.all_profiles()]

    def profile(self, name: str | None = None) -> Profile:
        """A profile by name (`parent//child` for hats and child profiles).

        Without a name the file must hold exactly one top-level profile.
        """
        if name is None:
            if len(self.profiles) == 1:
                return self.profiles[0]
            names = ", ".join(p.name for p in self.profiles) or "none"
            raise ProfileError(
                f"the file defines {len(self.profiles)} profiles ({names}); "
                "say which one with its name", file=self.file)
        for p in self.all_profiles():
            if p.full_name == name or p.name == name:
                return p
        raise ProfileError(f"no profile named '{name}' in the file (it defines: "
                           f"{', '.join(self.names()) or 'none'})", file=self.file)


def build(parsed: ParsedFile, file: str) -> ProfileSet:
    """Run the post-parse checks and expansions; raises ProfileError."""
    pset = ProfileSet(file=file, profiles=parsed.profiles, variables=parsed.variables,
                      aliases=parsed.aliases, abi=parsed.abi)
    _check_duplicates(pset)
    parsed.variables.check_all()
    aliases = tuple(parsed.aliases)
    for prof in pset.all_profiles():
        prof.aliases = aliases
        _expand_profile(prof, parsed.variables)
    for prof in pset.all_profiles():
        conflicts.check_profile(prof)
    return pset


def _check_duplicates(pset: ProfileSet) -> None:
    seen: set[str] = set()
    for p in pset.profiles:
        if p.name in seen:
            raise ProfileError(f"Multiple definitions for profile {p.name} exist,bailing out.",
                               file=p.src.file, line=p.src.line)
        seen.add(p.name)
    for parent in pset.all_profiles():
        names: set[str] = set()
        for c in parent.children:
            if c.name in names:
                raise ProfileError(
                    f"Multiple definitions for hat {c.name} in profile {parent.full_name} "
                    "exist,bailing out.", file=c.src.file, line=c.src.line)
            names.add(c.name)


def _expand_profile(prof: Profile, variables: Variables) -> None:
    def at_profile(err: ProfileError) -> ProfileError:
        if err.line is None:
            err.file, err.line = prof.src.file, prof.src.line
        return err

    try:
        prof.name = variables.expand(prof.name)
        if prof.attachment is not None:
            prof.attachment = variables.expand(prof.attachment)
        attach = prof.attachment
        if attach is None and prof.name.startswith("/"):
            attach = prof.name
        if attach is not None:
            check_glob(filter_slashes(attach), "profile name")
    except ProfileError as err:
        raise at_profile(err) from None
    extra = {PROFILE_NAME: [escape_glob(prof.name)]}
    for rule in prof.rules:
        try:
            _expand_rule(rule, variables, extra)
        except ProfileError as err:
            if err.line is None:
                err.file, err.line = rule.src.file, rule.src.line
            raise


def _expand_rule(rule: Rule, variables: Variables, extra: dict[str, list[str]]) -> None:
    def ex(value: str | None, glob: bool = True, slashes: bool = False) -> str | None:
        if value is None:
            return None
        value = variables.expand(value, extra)
        if slashes:
            value = filter_slashes(value)
        if glob:
            check_glob(value)
        return value

    if isinstance(rule, FileRule):
        rule.path = ex(rule.path, slashes=True) or ""
        rule.link_target = ex(rule.link_target, slashes=True)
        rule.target = ex(rule.target, glob=False)
    elif isinstance(rule, ChangeProfileRule):
        rule.exec_cond = ex(rule.exec_cond)
        rule.target = ex(rule.target)
    elif isinstance(rule, MountRule):
        rule.source = ex(rule.source, slashes=True)
        rule.mountpoint = ex(rule.mountpoint, slashes=True)
        rule.target = ex(rule.target, glob=False)
        rule.fstypes = tuple(ex(v) or "" for v in rule.fstypes)
    elif isinstance(rule, (SignalRule, PtraceRule)):
        rule.peer = ex(rule.peer)
    elif isinstance(rule, UnixRule):
        for attr in ("addr", "peer_addr"):
            value = ex(getattr(rule, attr), glob=False, slashes=True)
            if value is not None and value.startswith("@"):
                check_glob(value[1:])
            setattr(rule, attr, value)
        rule.label = ex(rule.label)
        rule.peer_label = ex(rule.peer_label)
    elif isinstance(rule, DbusRule):
        rule.conds = {k: ex(v, slashes=k == "path") or "" for k, v in rule.conds.items()}
        rule.peer = {k: ex(v) or "" for k, v in rule.peer.items()}
