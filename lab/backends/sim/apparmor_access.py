"""An attack step's effects as the accesses AppArmor mediates, each with the profile
in force for the process that makes it.

Processes (the same order and parentage as the Falco events): an exec step's first
process is started by runc, which enters the container's profile *at* that exec, so
its own program is not checked against the profile (a `deny /bin/sh x` rule does not
stop `kubectl exec pod -- sh`); every later process is a child that the profile must
let its parent exec (`x` on the program's path), and runs under the profile the
exec transition gives it (`ix`: the same; `px`/`cx`: another, `ux`: unconfined).
A workload step's processes are children of the container's main process. An exec
that is denied does not happen: what that process would have done is not tried.

Files, sockets and capabilities belong to the step's last process:
reads -> `r PATH`, writes -> `w PATH`, connects -> `network inet stream` (plus
`network inet dgram` for the DNS lookup when the host is a name), sockets ->
`network FAMILY TYPE` (a raw or packet socket also needs `capability net_raw`),
capabilities -> `capability NAME`. Mount and mmap are not mediated here.

AppArmor sees the path the kernel resolved: in a Debian or Ubuntu image (merged
/usr) `/bin/sh` is `/usr/bin/dash`; in Alpine most commands are `/bin/busybox`.
"""

from __future__ import annotations

import ipaddress
import posixpath
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from lab.backends.sim.falco_pods import split_image
from lab.backends.sim.falco_procs import SHELLS
from lab.engines.apparmor import Access, Decision, Profile, decide, parse_access
from lab.engines.apparmor.model import FileRule
from lab.scenarios.effects import capability_name, command_words, split_host_port
from lab.scenarios.model import AttackStep, socket_words

# Programs a Debian image keeps in /usr/sbin (the rest are in /usr/bin).
SBIN = frozenset({"nginx", "apache2", "httpd", "sshd", "iptables", "ip", "useradd", "chroot",
                  "php-fpm", "mysqld", "ifconfig", "route", "tcpdump", "setcap"})
# Where a task that is not root creates its own files.
TMP_DIRS = ("/tmp/", "/var/tmp/", "/dev/shm/")
# Busybox applets, which Alpine installs as symlinks to /bin/busybox.
BUSYBOX_APPLETS = frozenset(
    "sh ash cat ls echo cp mv rm mkdir rmdir touch chmod chown ln id whoami hostname ps kill "
    "sleep env grep sed awk head tail cut sort uniq wc vi mount umount ping ping6 nc wget "
    "nslookup ip ifconfig route netstat df du find xargs tar gzip gunzip date uname dd tee "
    "printf test true false base64 md5sum sha256sum od hexdump which su login passwd".split())
DEBIAN_IMAGES = frozenset({"nginx", "httpd", "debian", "ubuntu", "python", "node", "redis",
                           "postgres", "mysql", "mariadb", "golang", "ruby", "php", "perl",
                           "openjdk", "eclipse-temurin", "rabbitmq", "memcached", "wordpress"})


def rootfs(image: str) -> str:
    """Which filesystem layout an image has: debian | alpine | busybox | plain."""
    repo, tag = split_image(image)
    name = repo.rsplit("/", 1)[-1]
    if name == "busybox":
        return "busybox"
    if name == "alpine" or "alpine" in tag:
        return "alpine"
    if name in DEBIAN_IMAGES:
        return "debian"
    return "plain"


def program_paths(program: str, layout: str) -> list[str]:
    """Every path a program is known by; the last is the one AppArmor sees.

    A bare name is found on PATH; a Debian image's /bin is a symlink to /usr/bin and
    its sh is dash; Alpine's applets are symlinks to /bin/busybox (busybox's own
    image uses hard links, so the path stays as typed).
    """
    name = posixpath.basename(program)
    sbin = "sbin" if name in SBIN else "bin"
    if "/" in program:
        typed = posixpath.normpath(program if program.startswith("/") else "/" + program)
    elif (layout in ("alpine", "busybox") and name in BUSYBOX_APPLETS or layout == "busybox"
          or layout == "plain" and name in SHELLS):
        typed = f"/bin/{name}"  # an image of unknown layout still has its shell in /bin
    else:
        typed = f"/usr/{sbin}/{name}"
    seen = typed
    aliases = [typed]
    if layout == "debian":
        if typed.startswith(("/bin/", "/sbin/", "/lib/")):
            seen = "/usr" + typed  # merged /usr: /bin is a symlink to usr/bin
        elif "/" not in program:
            aliases.append(f"/{sbin}/{name}")  # the same file through that symlink
        if seen == "/usr/bin/sh":
            aliases.append(seen)
            seen = "/usr/bin/dash"
    elif layout == "alpine" and name in BUSYBOX_APPLETS and typed in (
            f"/bin/{name}", f"/usr/bin/{name}", f"/sbin/{name}", f"/usr/sbin/{name}"):
        seen = "/bin/busybox"
    return [p for p in dict.fromkeys(aliases) if p != seen] + [seen]


def program_written(program: str, seen: str) -> str:
    """The program as the step wrote it, when that is worth showing beside the path
    AppArmor sees: a path that resolves elsewhere (`/bin/sh` -> /usr/bin/dash), or a bare
    name that is another program's link (`sh` -> /bin/busybox); not a plain PATH lookup
    (`curl` -> /usr/bin/curl)."""
    if "/" in program:
        typed = posixpath.normpath(program if program.startswith("/") else "/" + program)
        return typed if typed != seen else ""
    return program if posixpath.basename(seen) != program else ""


def file_paths(path: str, layout: str) -> list[str]:
    """A file path as written, then as AppArmor sees it (the image's symlinks resolved):
    /var/run is /run in Debian and Alpine images, and /bin, /sbin and /lib are under
    /usr in Debian's."""
    written = posixpath.normpath(path)
    seen = written
    if layout in ("debian", "alpine"):
        for old, new in (("/var/run", "/run"), ("/var/lock", "/run/lock")):
            if seen == old or seen.startswith(old + "/"):
                seen = new + seen[len(old):]
    if layout == "debian" and seen.startswith(("/bin/", "/sbin/", "/lib/")):
        seen = "/usr" + seen
    return [written, seen] if seen != written else [seen]


@dataclass
class Proc:
    """A process of the step and the profile it runs under (None: unconfined)."""

    argv: list[str]
    parent: Proc | None
    profile: Profile | None
    ran: bool = True  # False: its exec was denied (or its parent never ran)

    @property
    def name(self) -> str:
        return posixpath.basename(self.argv[0]) if self.argv else ""

    @property
    def cmdline(self) -> str:
        return shlex.join(self.argv)


@dataclass(frozen=True)
class Outcome:
    """An access, the process that made it, and AppArmor's verdict."""

    access: str
    aliases: tuple[str, ...]
    by: str
    verdict: str  # ALLOWED | DENIED | COMPLAIN
    profile: str | None
    rules: tuple[tuple[int, str, str, str], ...] = ()
    reason: str = ""
    written: str = ""  # the program or path as the step wrote it, when the kernel sees another


# How an exec transition finds the profile the new process runs under.
Lookup = Callable[[str], Profile | None]


@dataclass
class StepAccesses:
    """Decides a step's accesses in order, following exec transitions."""

    layout: str
    main_profile: Profile | None
    lookup: Lookup  # a loaded profile by name (px/Px targets)
    uid: int  # the container's user: image files are root's, new files in /tmp its own
    outcomes: list[Outcome] = field(default_factory=list)

    def _decide(self, prof: Profile | None, access: Access, aliases: tuple[str, ...],
                by: str, written: str = "") -> tuple[str, Decision | None]:
        if prof is None:
            self.outcomes.append(Outcome(access.text, aliases, by, "ALLOWED", None,
                                         reason="the process is not confined by AppArmor",
                                         written=written))
            return "ALLOWED", None
        d = decide(prof, access)
        verdict = {"ALLOW": "ALLOWED", "DENY": "DENIED", "COMPLAIN": "COMPLAIN"}[d.verdict]
        rules = tuple((r.line, r.text, r.role, r.file) for r in d.rules)
        self.outcomes.append(Outcome(access.text, aliases, by, verdict, prof.full_name, rules,
                                     d.reason, written))
        return verdict, d

    def _skip(self, access: str, aliases: tuple[str, ...], proc: Proc, why: str,
              by: str | None = None, written: str = "") -> None:
        """An access that never happened because its process never ran (counts as denied)."""
        self.outcomes.append(Outcome(access, aliases, by or proc.cmdline, "DENIED",
                                     proc.profile.full_name if proc.profile else None,
                                     reason=why, written=written))

    def spawn(self, commands: list[str], first_parent: Proc, first_is_entry: bool) -> Proc:
        """Start the step's processes; returns the last (the actor)."""
        procs: list[Proc] = []
        for i, cmd in enumerate(commands):
            argv = command_words(cmd) or [cmd]
            shells = [p for p in procs if p.name in SHELLS]
            parent = shells[-1] if shells else (procs[-1] if procs else first_parent)
            if i == 0 and first_is_entry:
                procs.append(Proc(argv, None, self.main_profile))  # runc enters the profile
                continue
            procs.append(self._exec(parent, argv))
        return procs[-1] if procs else first_parent

    def _exec(self, parent: Proc, argv: list[str]) -> Proc:
        paths = program_paths(argv[0], self.layout)
        seen = paths[-1]
        aliases = tuple(f"x {p}" for p in paths[:-1])
        written = program_written(argv[0], seen)
        access = parse_access(f"x {seen}", owner=self.uid == 0)
        if not parent.ran:
            self._skip(access.text, aliases, parent,
                       f"not tried: `{parent.cmdline}` never ran", written=written)
            return Proc(argv, parent, parent.profile, ran=False)
        verdict, d = self._decide(parent.profile, access, aliases, parent.cmdline, written)
        if verdict == "DENIED" or parent.profile is None or d is None:
            return Proc(argv, parent, parent.profile, ran=verdict != "DENIED")
        mode = (d.exec_mode or "ix").lower()  # complain mode without a rule: inherit
        prof, missing = self._transition(parent.profile, mode, seen, d)
        if missing:
            # the kernel finds no profile to run the program under: the exec fails
            last = self.outcomes.pop()
            self.outcomes.append(Outcome(last.access, last.aliases, last.by, "DENIED",
                                         last.profile, last.rules, missing, last.written))
            return Proc(argv, parent, parent.profile, ran=False)
        return Proc(argv, parent, prof, ran=True)

    def _transition(self, prof: Profile, mode: str, path: str,
                    d: Decision) -> tuple[Profile | None, str | None]:
        """The profile after an exec with transition `mode` (ix, px, cx, ux, pix ...),
        or why the exec fails (px/cx to a profile that does not exist)."""
        if mode.startswith("u"):
            return None, None
        if mode.startswith("i"):
            return prof, None
        deciding = {(r.line, r.file) for r in d.rules}
        rule = next((r for r in prof.rules if isinstance(r, FileRule) and r.exec_mode
                     and (r.line, r.src.file) in deciding), None)
        target = (rule.target if rule is not None else None) or path
        if mode.startswith("c"):
            # the kernel's record of the child first: it carries the mode it was loaded in
            child = self.lookup(f"{prof.full_name}//{target}") or next(
                (c for c in prof.children if c.name == target), None)
            if child is not None:
                return child, None
        else:
            found = self.lookup(target)
            if found is not None:
                return found, None
        if "i" in mode[1:]:
            return prof, None  # pix, cix: inherit instead
        if "u" in mode[1:]:
            return None, None  # pux, cux: unconfined instead
        where = "child profile" if mode.startswith("c") else "profile"
        cite = f"line {rule.line} `{rule.text}` " if rule is not None else ""
        return None, (f"{cite}transitions to {where} {target}, which is not loaded: "
                      "the exec fails")

    def files_and_more(self, actor: Proc, step: AttackStep) -> None:
        eff = step.effects
        # (access, what the step wrote, a note on why it happens, the path as written)
        requests: list[tuple[str, tuple[str, ...], str, str]] = []
        for perm, paths in (("r", eff.reads), ("w", eff.writes)):
            for path in paths:
                *as_written, seen = file_paths(path, self.layout)
                requests.append((f"{perm} {seen}", tuple(f"{perm} {w}" for w in as_written),
                                 "", as_written[0] if as_written else ""))
        for target in eff.connects:
            host, _ = split_host_port(target) or ("", 0)
            family = "inet6" if ":" in host else "inet"
            if host and not _is_ip(host):
                requests.append(("network inet dgram", (), f"DNS lookup of {host}", ""))
            requests.append((f"network {family} stream", (), f"connect to {target}", ""))
        for sock in eff.sockets:
            fam, kind = socket_words(sock) or ("inet", "stream")
            requests.append((f"network {fam} {kind}", (f"network {sock}",), f"socket {sock}",
                             ""))
            if kind == "raw" or fam == "packet":
                requests.append(("capability net_raw", (), f"socket {sock}", ""))
        for cap in eff.capabilities:
            name = capability_name(cap)
            if name:
                requests.append((f"capability {name.lower()}", (), "", ""))
        for text, aliases, note, written in requests:
            access = parse_access(text, owner=self._owner(text))
            by = f"{actor.cmdline} ({note})" if note else actor.cmdline
            if not actor.ran:
                self._skip(access.text, aliases, actor,
                           f"not tried: the exec of `{actor.cmdline}` was denied", by, written)
                continue
            self._decide(actor.profile, access, aliases, by, written)

    def _owner(self, text: str) -> bool | None:
        """Whether the task owns the file an access is about (None: not a file)."""
        if text[0] not in "rw":
            return None
        if self.uid == 0:
            return True
        return text.startswith("w ") and text[2:].startswith(TMP_DIRS)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
