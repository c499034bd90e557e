"""AppArmor inside kind nodes: node preparation and reading what the kernel says.

Plain kind cannot enforce AppArmor even on an AppArmor host. containerd (like
runc) applies a profile only when all of these hold in the node container:
``/sys/kernel/security/apparmor`` exists (the kind config mounts the host's
securityfs), ``/sbin/apparmor_parser`` exists (kind's node image has none), the
``container`` environment variable is unset (kind's image sets container=docker,
which containerd reads as "nested, leave AppArmor to the outer runtime") and
``/sys/module/apparmor/parameters/enabled`` says Y. ``node_prep_commands``
provides the middle two; the kernel is the host's, shared by every node.
"""

from __future__ import annotations

import posixpath
import re
from typing import Protocol

PROFILES_PATH = "/sys/kernel/security/apparmor/profiles"
ATTR_CURRENT = "/proc/1/attr/current"  # of the container's first process, read inside it
APPARMOR_PARSER = "/sbin/apparmor_parser"
CONTAINERD_DROPIN_PATH = "/etc/systemd/system/containerd.service.d/cks-lab-apparmor.conf"
CONTAINERD_DROPIN = "[Service]\nUnsetEnvironment=container\n"

_INSTALL = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "apparmor"]
_PROFILE_RE = re.compile(r"^(?P<name>.+) \((?P<mode>[a-z_]+)\)$")


def parse_profiles(text: str) -> list[tuple[str, str]]:
    """(name, mode) of each line ``name (mode)`` of the kernel's profiles file, in order.

    Names may hold spaces; the mode is the last parenthesised word. Lines of
    another shape are skipped.
    """
    out = []
    for line in text.splitlines():
        m = _PROFILE_RE.match(line.strip())
        if m:
            out.append((m["name"], m["mode"]))
    return out


def parse_attr_current(text: str) -> tuple[str | None, str]:
    """(profile, mode) from a process's ``attr/current``: ``name (enforce)`` or ``unconfined``.

    Unconfined (or empty) gives (None, "unconfined"). A label without a mode in
    parentheses (another LSM's, e.g. an SELinux context) gives (label, "").
    """
    label = text.replace("\x00", "").strip()
    if not label or label == "unconfined":
        return None, "unconfined"
    m = _PROFILE_RE.match(label)
    if m is None:
        return label, ""
    if m["mode"] == "unconfined":
        # A named profile in unconfined mode confines nothing.
        return m["name"], "unconfined"
    return m["name"], m["mode"]


class ExecOutcome(Protocol):
    """What ``denied`` reads of a command's result (lab.kind.nodes.ExecResult fits)."""

    @property
    def code(self) -> int: ...

    @property
    def stderr(self) -> str: ...


_DENIED_RE = re.compile(r"permission denied|\bEACCES\b", re.IGNORECASE)


def denied(result: ExecOutcome) -> bool:
    """Whether a failed command was refused access (the way AppArmor refuses).

    AppArmor fails a file, exec or network access with EACCES: the tools print
    "Permission denied" (busybox "can't create /tmp/x: Permission denied", a
    shell "sh: 1: /usr/bin/x: Permission denied" exiting 126, runc's exec
    "...: permission denied"). EPERM ("Operation not permitted") is left out: it
    is what missing capabilities and seccomp give too.
    """
    if result.code == 0:
        return False
    if result.code == 126:  # the shell found the program but could not execute it
        return True
    stdout = getattr(result, "stdout", "") or ""
    return bool(_DENIED_RE.search(result.stderr or "") or _DENIED_RE.search(stdout))


def node_prep_commands() -> list[list[str]]:
    """The commands (argv lists, run as root in a kind node) that let AppArmor work there.

    1. Install Debian's ``apparmor`` (kind's node image is Debian-based): it
       brings /sbin/apparmor_parser, which containerd requires and which loads
       the lab's profiles.
    2. Write a systemd drop-in that unsets ``container`` for containerd only (the
       node's systemd and other units keep it).
    3. daemon-reload, so systemd reads the drop-in, and restart containerd, which
       checks AppArmor once at start; running containers keep running (their
       shims outlive containerd), and new ones get their profiles.

    Idempotent: installing again and rewriting the same drop-in change nothing.
    """
    dropin_dir = posixpath.dirname(CONTAINERD_DROPIN_PATH)
    # The content goes in as a positional argument, so no shell quoting is involved.
    write = 'mkdir -p "$1" && printf %s "$3" > "$2"'
    return [
        ["apt-get", "update", "-qq"],
        ["env", "DEBIAN_FRONTEND=noninteractive", *_INSTALL],
        ["sh", "-c", write, "sh", dropin_dir, CONTAINERD_DROPIN_PATH, CONTAINERD_DROPIN],
        ["systemctl", "daemon-reload"],
        ["systemctl", "restart", "containerd"],
    ]
