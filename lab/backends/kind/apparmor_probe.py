"""A workload step under AppArmor on kind: each of its effects re-enacted by a probe.

A workload step is what a pod's own processes do (nginx starting, a module of it
running a shell), which the lab cannot make happen on demand nor watch access by
access. So every effect is probed instead: the smallest real command that makes
exactly that access is exec'd in the container, where it runs under the
container's profile, and the kernel's answer is the verdict. A probe is a
re-enactment, not the pod's own process: the evidence says so in every reason.

The probes, in the step's order, as the sim orders the accesses
(lab/backends/sim/apparmor_access.py):

- a process the step starts (`x PROGRAM`): ``sh -c 'exec "$@"' sh PROGRAM ARGS``
  with harmless arguments (``-c :`` for a shell, ``--version`` for most). The
  outer shell stands in for the parent: runc starts it *into* the profile, so it
  is not checked itself (as the pod's main process was not), and its ``exec`` is
  the parent's exec the profile must allow. A denied exec starts nothing: later
  processes whose parent it was, and the files the step's last process touches,
  are "not tried" (DENIED), exactly as the sim reports them;
- a read (`r PATH`): ``head -c 1 PATH``;
- a write (`w PATH`): ``sh -c ': >> PATH'`` (an append that changes nothing),
  once ``test`` found the parent folder; a file the probe created is removed
  again. AppArmor's ``w`` covers append, so the verdict is the write's;
- a read or write refused to root in a folder another user owns is tried again
  as that user (``setpriv``, else ``su``): a profile without ``capability
  dac_override`` keeps root out of nginx's 0700 cache folder, where nginx's
  worker (the folder's owner) may write. When that cannot run (neither tool,
  or the profile refuses the probe's program), the access is "not probed";
- capabilities with a probe that uses that capability alone (CAP_PROBES:
  net_raw, setuid, setgid) are probed; EPERM is the capability refused;
- sockets, connects and other capabilities have no probe that would not change
  the pod: they count as allowed while the step's process runs (a denial there
  would have stopped the workload, and the container would not be running).

A probe that cannot run (no shell in the image, a missing file or folder, the
API refusing the exec) decides nothing: the access then counts as allowed, with
the reason saying it was not probed. Access names are the sim's (the path the
kernel sees, with the step's words as aliases), so checks name them alike.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lab.errors import LabError
from lab.evidence import AppArmorAccess, AppArmorStep
from lab.scenarios.effects import capability_name, command_words, split_host_port
from lab.scenarios.model import AttackStep, socket_words

if TYPE_CHECKING:
    from lab.kind.kube import Kube, PodInfo
    from lab.kind.nodes import ExecResult

KERNEL = "the kernel decided (kind shows the outcome, not the rule)"
PROBE_TIMEOUT = 15.0
SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh", "ksh"})
# What makes a program start and stop at once, saying nothing of the system.
QUIET_ARGS: dict[str, list[str]] = {
    **{s: ["-c", ":"] for s in SHELLS},
    "busybox": ["true"],
    "sleep": ["0"],
    "true": [],
    "false": [],
    "python": ["-c", "pass"],
    "python3": ["-c", "pass"],
}
EXEC_PROBE = 'exec "$@"'
WRITE_PROBE = ': >> "$1"'
# exit 3: no parent folder; exit 4: the file exists already (nothing to clean up)
WRITE_CHECK = 'test -d "$1" || exit 3; test -e "$2" && exit 4; exit 0'

Run = Callable[[list[str]], "ExecResult | None"]

# Commands that use one capability and nothing a profile would refuse first; their
# EPERM ("Operation not permitted") is the capability refused (AppArmor's capability
# denials are EPERM). Tried in order until one's program exists in the image.
# net_raw: since Linux 5.7 binding an unbound socket to a device needs no
# capability, binding it again does (CAP_NET_RAW), so the probe binds twice.
NET_RAW_PY = (
    "import socket; s = socket.socket(); "
    "s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b'lo'); "
    "s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b'lo')"
)
NOBODY = 65534
CAP_PROBES: dict[str, list[list[str]]] = {
    "net_raw": [["python3", "-c", NET_RAW_PY]],
    # setpriv starts its program only once the switch worked: a refused start of
    # `true` (a profile that grants no exec) still says the capability was allowed
    "setuid": [
        ["setpriv", f"--reuid={NOBODY}", "true"],
        ["python3", "-c", f"import os; os.setresuid({NOBODY}, {NOBODY}, {NOBODY})"],
    ],
    "setgid": [
        ["setpriv", f"--regid={NOBODY}", "--keep-groups", "true"],
        ["python3", "-c", f"import os; os.setresgid({NOBODY}, {NOBODY}, {NOBODY})"],
    ],
}
_EPERM = ("Operation not permitted", "EPERM")
_MISSING = re.compile(r"not found|no such file", re.IGNORECASE)


@dataclass
class _Proc:
    cmdline: str
    ran: bool
    name: str = ""  # the program's base name


def quiet_args(program: str) -> list[str]:
    return list(QUIET_ARGS.get(posixpath.basename(program), ["--version"]))


def _said(r: ExecResult) -> str:
    lines = (r.stderr.strip() or r.stdout.strip()).splitlines()
    return lines[-1] if lines else f"exit code {r.code}"


def _verdict(r: ExecResult | None, probe: list[str]) -> tuple[str, str] | None:
    """ALLOWED/DENIED and why, from a probe's result; None: it decided nothing."""
    from lab.kind.apparmor_node import denied

    shown = shlex.join(probe)
    if r is None:
        return None
    if r.code == 0:
        return "ALLOWED", f"allowed: the probe `{shown}` succeeded in the container; {KERNEL}"
    if denied(r):
        return "DENIED", f"denied: the probe `{shown}` failed with {_said(r)!r}; {KERNEL}"
    return None


def _not_probed(probe: list[str], why: str) -> str:
    return (f"allowed: not probed (`{shlex.join(probe)}`: {why}); the container runs, so the "
            "workload's own process was not stopped")  # fmt: skip


def runner(kube: Kube, namespace: str, pod: str, container: str) -> Run:
    """Runs a probe in a container: its result, or None when the exec failed."""

    def run(argv: list[str]) -> ExecResult | None:
        try:
            return kube.exec(namespace, pod, container, argv, timeout=PROBE_TIMEOUT)
        except LabError:
            return None

    return run


def probe_capability(run: Run, name: str) -> tuple[str | None, str]:
    """(ALLOWED or DENIED, why) for `capability NAME`, from the first probe of
    CAP_PROBES whose program the image has; (None, why not) when none decided."""
    probes = CAP_PROBES.get(name)
    if not probes:
        return None, "kind has no probe for it that would leave the pod as it is"
    missing: list[str] = []
    for probe in probes:
        shown = shlex.join(probe)
        r = run(probe)
        if r is None:
            return None, f"`{shown}`: the exec could not be run"
        text = f"{r.stderr}\n{r.stdout}"
        if r.code == 0:
            return "ALLOWED", (f"allowed: the probe `{shown}` used capability {name} in the "
                               f"container; {KERNEL}")  # fmt: skip
        if "failed to execute" in text:  # setpriv switched, then could not start `true`
            return "ALLOWED", (f"allowed: the probe `{shown}` used capability {name} (then "
                               f"said {_said(r)!r}); {KERNEL}")  # fmt: skip
        if any(word in text for word in _EPERM):
            return "DENIED", (f"denied: the probe `{shown}` failed with {_said(r)!r} (EPERM: "
                              f"capability {name} refused); {KERNEL}")  # fmt: skip
        if r.code == 127 and _MISSING.search(text):
            missing.append(probe[0])
            continue
        return None, f"`{shown}`: {_said(r)}"
    return None, f"the image has no {' or '.join(dict.fromkeys(missing))} to probe it with"


class WorkloadProbe:
    """Re-enacts one workload step's effects in its container, in the step's order."""

    def __init__(self, kube: Kube, info: PodInfo, container: str, layout: str,
                 profile: str | None, main: str) -> None:  # fmt: skip
        self.kube = kube
        self.info = info
        self.container = container
        self.layout = layout  # lab.backends.sim.apparmor_access.rootfs of the image
        self.profile = profile
        self.main = main  # the container's main process, as the step's words name it
        self.run: Run = runner(kube, info.namespace, info.name, container)
        self._owners: dict[str, tuple[int, int, str] | None] = {}
        self._caps: dict[str, tuple[str | None, str]] = {}

    def _access(self, access: str, outcome: str, by: str, reason: str,
                aliases: tuple[str, ...] = (), written: str = "") -> AppArmorAccess:  # fmt: skip
        return AppArmorAccess(access, outcome, by, aliases, self.profile, (), reason, written)

    def step(self, step: AttackStep) -> AppArmorStep:
        st = AppArmorStep(step.id, self.info.namespace, self.info.name, self.container)
        actor = self._processes(step, st)
        self._files(step, actor, st)
        self._others(step, actor, st)
        return st

    # --- processes -------------------------------------------------------------------

    def _processes(self, step: AttackStep, st: AppArmorStep) -> _Proc:
        from lab.backends.sim.apparmor_access import program_paths, program_written

        main = _Proc(self.main, True)
        procs: list[_Proc] = []
        for cmd in step.effects.processes:
            argv = command_words(cmd) or [cmd]
            shells = [p for p in procs if p.name in SHELLS]
            parent = shells[-1] if shells else (procs[-1] if procs else main)
            paths = program_paths(argv[0], self.layout)
            access = f"x {paths[-1]}"
            aliases = tuple(f"x {p}" for p in paths[:-1])
            written = program_written(argv[0], paths[-1])
            me = _Proc(shlex.join(argv), False, posixpath.basename(argv[0]))
            procs.append(me)
            if not parent.ran:
                st.accesses.append(self._access(
                    access, "DENIED", parent.cmdline,
                    f"not tried: `{parent.cmdline}` never ran", aliases, written))  # fmt: skip
                continue
            probe = ["sh", "-c", EXEC_PROBE, "sh", argv[0], *quiet_args(argv[0])]
            r = self.run(probe)
            got = _verdict(r, probe)
            if got is None:
                why = _said(r) if r is not None else "the exec could not be run"
                if r is not None and r.code > 0 and r.code != 127:
                    # it started, and failed on its own: the exec itself was allowed
                    got = ("ALLOWED", f"allowed: the probe `{shlex.join(probe)}` started "
                           f"{argv[0]} (which then said {why!r}); {KERNEL}")  # fmt: skip
                else:
                    got = ("ALLOWED", _not_probed(probe, why))
            me.ran = got[0] != "DENIED"
            st.accesses.append(self._access(access, got[0], parent.cmdline,
                                            got[1] + " — a probe re-enacting the workload's "
                                            "exec, not the pod's own process",
                                            aliases, written))  # fmt: skip
        return procs[-1] if procs else main

    # --- files -----------------------------------------------------------------------

    def _files(self, step: AttackStep, actor: _Proc, st: AppArmorStep) -> None:
        from lab.backends.sim.apparmor_access import file_paths

        for perm, paths in (("r", step.effects.reads), ("w", step.effects.writes)):
            for path in paths:
                *as_written, seen = file_paths(path, self.layout)
                access = f"{perm} {seen}"
                aliases = tuple(f"{perm} {w}" for w in as_written)
                written = as_written[0] if as_written else ""
                if not actor.ran:
                    st.accesses.append(self._access(
                        access, "DENIED", actor.cmdline,
                        f"not tried: the exec of `{actor.cmdline}` was denied", aliases,
                        written))  # fmt: skip
                    continue
                outcome, reason = self._read(path) if perm == "r" else self._write(path)
                st.accesses.append(self._access(access, outcome, actor.cmdline, reason,
                                                aliases, written))  # fmt: skip

    def _read(self, path: str) -> tuple[str, str]:
        probe = ["head", "-c", "1", path]
        r = self.run(probe)
        got = _verdict(r, probe)
        if got is not None and got[0] == "DENIED":
            owner = self._owner(_folder(path))
            if owner is not None and owner[0] != 0:
                return self._again_as(owner, path, probe, got)
        if got is not None:
            return got
        return "ALLOWED", _not_probed(probe, _said(r) if r else "the exec could not be run")

    def _write(self, path: str) -> tuple[str, str]:
        parent = _folder(path)
        check = ["sh", "-c", WRITE_CHECK, "sh", parent, path]
        probe = ["sh", "-c", WRITE_PROBE, "sh", path]
        before = self.run(check)
        if before is None or before.code not in (0, 4):
            why = (f"there is no folder {parent} in the container" if before and before.code == 3
                   else _said(before) if before else "the exec could not be run")  # fmt: skip
            return "ALLOWED", _not_probed(probe, why)
        r = self.run(probe)
        got = _verdict(r, probe)
        if got is None:
            return "ALLOWED", _not_probed(probe, _said(r) if r else "the exec could not be run")
        if got[0] == "DENIED":
            owner = self._owner(parent)
            if owner is not None and owner[0] != 0:
                return self._again_as(owner, path, probe, got, check)
        if got[0] == "ALLOWED" and before.code == 0:
            self.run(["rm", "-f", "--", path])  # the probe's own empty file
        return got

    # --- as the owner of the folder ----------------------------------------------------

    def _owner(self, folder: str) -> tuple[int, int, str] | None:
        """(uid, gid, user name) owning a folder of the container; None: unknown."""
        if folder not in self._owners:
            r = self.run(["stat", "-c", "%u %g %U", "--", folder])
            words = r.stdout.split() if r is not None and r.code == 0 else []
            got = None
            if len(words) >= 2 and words[0].isdigit() and words[1].isdigit():
                got = (int(words[0]), int(words[1]), words[2] if len(words) > 2 else "")
            self._owners[folder] = got
        return self._owners[folder]

    def _again_as(
        self,
        owner: tuple[int, int, str],
        path: str,
        probe: list[str],
        refused: tuple[str, str],
        check: list[str] | None = None,
    ) -> tuple[str, str]:
        """A probe refused to root in a folder another user owns, run again as that
        user: root without dac_override cannot enter another user's 0700 folder,
        which says nothing of the owner's access. A write first checks, as the owner,
        whether the file is there (only a file the probe made is removed after)."""
        uid, folder = owner[0], _folder(path)
        root = refused[1].removeprefix("denied: ").split(f"; {KERNEL}")[0]
        first: ExecResult | None = None
        if check is not None:
            _, first, why = self._run_as(owner, check)
            if first is not None and first.code not in (0, 4):
                why = f"`{shlex.join(check)}`: {_said(first)}"
                first = None
        if check is None or first is not None:
            argv, r, why = self._run_as(owner, probe)
            got = _verdict(r, argv) if r is not None else None
            if got is not None:
                if got[0] == "ALLOWED" and first is not None and first.code == 0:
                    rm = ["rm", "-f", "--", path]
                    gone = self._run_as(owner, rm)[1]
                    if gone is None or gone.code != 0:
                        self.run(rm)
                note = f" — as uid {uid}, the owner of {folder} (as root: {root})"
                return got[0], got[1] + note
            if r is not None:
                why = f"`{shlex.join(argv)}`: {_said(r)}"
        why = f"needs uid {uid}, the owner of {folder}: as root {root}; as uid {uid}: {why}"
        return "ALLOWED", _not_probed(probe, why)

    def _run_as(
        self, owner: tuple[int, int, str], argv: list[str]
    ) -> tuple[list[str], ExecResult | None, str]:
        """Runs a command as a folder's owner: with setpriv (util-linux: Debian-based
        images have it), else su. (the command run, its result, "") or (…, None, why it
        could not run as the owner)."""
        uid, gid, user = owner
        wrappers = [["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *argv]]
        if user and user != "UNKNOWN" and not user.isdigit():
            wrappers.append(["su", "-s", "/bin/sh", user, "-c", shlex.join(argv)])
        missing: list[str] = []
        for wrapped in wrappers:
            tool = wrapped[0]
            r = self.run(wrapped)
            if r is None:
                return wrapped, None, f"`{tool}`: the exec could not be run"
            own = [line.strip() for line in f"{r.stderr}\n{r.stdout}".splitlines()
                   if line.strip().startswith(f"{tool}: ")]  # fmt: skip
            if r.code != 0 and own:
                # its switch of user, or its start of the command, was refused
                return wrapped, None, f"{tool} said {own[-1]!r}"
            if r.code == 127 and _MISSING.search(r.stderr):
                missing.append(tool)
                continue
            return wrapped, r, ""
        return argv, None, f"the image has no {' or '.join(missing)}"

    # --- the rest ----------------------------------------------------------------------

    def _others(self, step: AttackStep, actor: _Proc, st: AppArmorStep) -> None:
        eff = step.effects
        wanted: list[tuple[str, tuple[str, ...], str]] = []
        for target in eff.connects:
            host, _ = split_host_port(target) or ("", 0)
            if host and not is_ip(host):
                wanted.append(("network inet dgram", (), f" (DNS lookup of {host})"))
            family = "inet6" if ":" in host else "inet"
            wanted.append((f"network {family} stream", (), f" (connect to {target})"))
        for sock in eff.sockets:
            fam, kind = socket_words(sock) or ("inet", "stream")
            wanted.append((f"network {fam} {kind}", (f"network {sock}",), f" (socket {sock})"))
            if kind == "raw" or fam == "packet":
                wanted.append(("capability net_raw", (), f" (socket {sock})"))
        for cap in eff.capabilities:
            name = capability_name(cap)
            if name:
                wanted.append((f"capability {name.lower()}", (), ""))
        for access, aliases, note in wanted:
            if not actor.ran:
                st.accesses.append(self._access(
                    access, "DENIED", actor.cmdline + note,
                    f"not tried: the exec of `{actor.cmdline}` was denied", aliases))  # fmt: skip
                continue
            outcome, reason = "ALLOWED", (
                "allowed: the container runs, so the workload's own process was not stopped; "
                "kind has no probe for it that would leave the pod as it is")  # fmt: skip
            if access.startswith("capability "):
                name = access.split()[1]
                if name not in self._caps:
                    self._caps[name] = probe_capability(self.run, name)
                got, why = self._caps[name]
                if got is not None:
                    outcome, reason = got, (why + " — a probe re-enacting the workload's use "
                                            "of it, not the pod's own process")  # fmt: skip
                elif name in CAP_PROBES:
                    reason = (f"allowed: not probed ({why}); the container runs, so the "
                              "workload's own process was not stopped")  # fmt: skip
            st.accesses.append(self._access(access, outcome, actor.cmdline + note, reason,
                                            aliases))  # fmt: skip


def _folder(path: str) -> str:
    return posixpath.dirname(posixpath.normpath(path)) or "/"


def is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
