"""File permission strings (`rw`, `ix`, `Pix`, `mrk` ...) as apparmor_parser reads them."""

from __future__ import annotations

from dataclasses import dataclass

from lab.engines.apparmor.errors import ProfileError


@dataclass(frozen=True, slots=True)
class ExecMode:
    """An exec transition: what kind (`i`, `p`, `c`, `u`, `pi`, `ci`, `pu`, `cu`) and
    whether the environment is left unscrubbed (`px`, `ux` ...: the lowercase forms)."""

    kind: str
    unsafe: bool
    letters: str  # as written, e.g. "Pix"

    @property
    def key(self) -> tuple[str, bool]:
        # what must agree between rules that apply to the same path
        return (self.kind, self.unsafe)


@dataclass(frozen=True, slots=True)
class FileMode:
    perms: frozenset[str]
    exec: ExecMode | None


_CONFLICT = "Exec qualifier '{}' invalid, conflicting qualifier already specified"


def parse_file_mode(mode: str) -> FileMode:
    """Letters of a file rule's mode; raises ProfileError as apparmor_parser would."""
    perms: set[str] = set()
    exec_mode: ExecMode | None = None
    i = 0

    def set_exec(new: ExecMode, shown: str) -> None:
        nonlocal exec_mode
        # a second qualifier is fine only when it is the same one (`ixix`)
        if "x" in perms and exec_mode is not None and exec_mode.key != new.key:
            raise ProfileError(_CONFLICT.format(shown))
        if "x" in perms and exec_mode is None:
            raise ProfileError(_CONFLICT.format(shown))
        exec_mode = new
        perms.add("x")

    while i < len(mode):
        c = mode[i]
        nxt = mode[i + 1] if i + 1 < len(mode) else ""
        low = c.lower()
        if c in "rRwWaLlMmkX" or c == "x":
            if low == "w":
                if "a" in perms and "w" not in perms:
                    raise ProfileError("Conflict 'a' and 'w' perms are mutually exclusive.")
                perms.update("wa")
            elif low == "a":
                if "w" in perms:
                    raise ProfileError("Conflict 'a' and 'w' perms are mutually exclusive.")
                perms.add("a")
            elif low == "x":
                perms.add("x")
            else:
                perms.add(low)
            i += 1
        elif low == "i":
            # only a p/c/u qualifier conflicts with a later `i` (`ixix` is fine)
            if exec_mode is not None and exec_mode.kind != "i":
                raise ProfileError(_CONFLICT.format("i"))
            exec_mode = ExecMode("i", False, c + nxt)
            perms.add("x")
            i += 2
        elif low == "u":
            set_exec(ExecMode("u", c == "u", c + nxt), c)
            i += 2
        elif low in "pc":
            unsafe = c.islower()
            if nxt.lower() == "i":
                set_exec(ExecMode(low + "i", unsafe, mode[i:i + 3]), c + nxt)
                i += 3
            elif nxt.lower() == "u":
                set_exec(ExecMode(low + "u", unsafe, mode[i:i + 3]), c + nxt)
                i += 3
            else:
                set_exec(ExecMode(low, unsafe, c + nxt), c)
                i += 2
        else:
            raise ProfileError(f"Internal: unexpected perms character '{c}' in input")
    return FileMode(frozenset(perms), exec_mode)


def parse_simple_perms(kind: str, mode: str) -> frozenset[str]:
    """`r`/`w`/`rw` of dbus, signal, ptrace and unix rules."""
    read = {"dbus": "receive", "signal": "receive", "unix": "receive", "ptrace": "read"}[kind]
    write = {"dbus": "send", "signal": "send", "unix": "send", "ptrace": "trace"}[kind]
    out: set[str] = set()
    for c in mode:
        if c.lower() == "r":
            out.add(read)
        elif c.lower() == "w":
            out.add(write)
        else:
            raise ProfileError(f"Internal: unexpected {kind} mode character '{c}' in input")
    return frozenset(out)
