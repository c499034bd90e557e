"""What a parsed profile file is: profiles, their rules, and where each rule was written.

Every rule keeps the text the learner wrote and its line, because a decision is
explained by naming the rules that made it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# File permission letters as apparmor.d(5) spells them; exec transitions are kept
# apart in FileRule.exec_mode.
FILE_PERMS = "rwalkmx"


@dataclass(slots=True)
class Source:
    """Where a rule or profile was written."""

    file: str
    line: int
    text: str


@dataclass(slots=True)
class Rule:
    """Common prefix of every rule: `[audit] [allow|deny] [owner|other]`."""

    src: Source
    audit: bool = False
    deny: bool = False
    # None: applies to every task; "owner": only to files the task's fsuid owns;
    # "other": only to files it does not own.
    owner: str | None = None

    @property
    def line(self) -> int:
        return self.src.line

    @property
    def text(self) -> str:
        return self.src.text


@dataclass(slots=True)
class FileRule(Rule):
    """`path perms [-> target],`, `link path -> target,` and the bare `file,`."""

    path: str = ""
    perms: frozenset[str] = frozenset()
    # exec transition as written, normalised to the rule's letters: "ix", "px", "Px",
    # "cx", "Cx", "ux", "Ux", "pix", "Pix", "cix", "Cix", "pux", "PUx", "cux", "CUx"
    exec_mode: str | None = None
    unsafe_keyword: bool | None = None  # `safe`/`unsafe` prefix: False / True
    target: str | None = None  # `-> profile` of an exec transition
    link_target: str | None = None  # `link a -> b` / `l` with `-> b`
    subset: bool = False
    bare: bool = False  # `file,`


@dataclass(slots=True)
class CapabilityRule(Rule):
    caps: frozenset[str] = frozenset()  # empty: `capability,` (all of them)


@dataclass(slots=True)
class NetworkRule(Rule):
    """`network [family] [type|protocol],`; None means any."""

    family: str | None = None
    sock_type: str | None = None
    protocol: str | None = None


@dataclass(slots=True)
class ChangeProfileRule(Rule):
    exec_cond: str | None = None
    target: str | None = None
    exec_mode: str | None = None  # "safe" / "unsafe" / None


@dataclass(slots=True)
class MountRule(Rule):
    """`mount`, `remount`, `umount` and `pivot_root` rules."""

    op: str = "mount"
    fstypes: tuple[str, ...] = ()
    options: tuple[str, ...] = ()  # options=(...): required set
    options_in: tuple[str, ...] = ()  # options in (...): allowed set
    source: str | None = None
    mountpoint: str | None = None
    target: str | None = None  # pivot_root's profile transition


@dataclass(slots=True)
class SignalRule(Rule):
    perms: frozenset[str] = frozenset()
    signals: frozenset[str] = frozenset()
    peer: str | None = None


@dataclass(slots=True)
class PtraceRule(Rule):
    perms: frozenset[str] = frozenset()
    peer: str | None = None


@dataclass(slots=True)
class UnixRule(Rule):
    perms: frozenset[str] = frozenset()
    sock_type: str | None = None
    addr: str | None = None
    label: str | None = None
    peer_addr: str | None = None
    peer_label: str | None = None


@dataclass(slots=True)
class DbusRule(Rule):
    perms: frozenset[str] = frozenset()
    conds: dict[str, str] = field(default_factory=dict)
    peer: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class RlimitRule(Rule):
    resource: str = ""
    value: str = ""


@dataclass(slots=True)
class Profile:
    """One profile, hat or child profile."""

    name: str
    src: Source
    attachment: str | None = None
    mode: str = "enforce"  # enforce | complain | kill | unconfined
    flags: tuple[str, ...] = ()
    xattrs: dict[str, str] = field(default_factory=dict)
    is_hat: bool = False
    parent: Profile | None = None
    rules: list[Rule] = field(default_factory=list)
    children: list[Profile] = field(default_factory=list)
    # rewrite rules (`alias /usr/ -> /mnt/usr/,`) of the file the profile came from
    aliases: tuple[tuple[str, str], ...] = ()
    # decide.py's compiled form, built on first use
    index: object | None = field(default=None, repr=False, compare=False)

    @property
    def full_name(self) -> str:
        return f"{self.parent.full_name}//{self.name}" if self.parent else self.name

    @property
    def line(self) -> int:
        return self.src.line

    def rules_of(self, kind: type[Rule]) -> list[Rule]:
        return [r for r in self.rules if isinstance(r, kind)]
