"""The AppArmor policy each sim node's kernel holds: what `apparmor_parser` loaded.

A profile is loaded only when the learner loads it, as on the exam node
(`cks-lab node exec NODE -- apparmor_parser -r /etc/apparmor.d/x`). The kernel keeps
the policy as it was when loaded, not the file: the record holds the text of the
file and of every file it included, so a file edited after loading changes nothing
until it is loaded again. Records live in the workspace state (`.lab/state.json`,
key `apparmor`: node -> loaded profiles).
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

from lab.engines.apparmor import BUNDLED_DIR, ProfileError, ProfileSet
from lab.engines.apparmor.includes import (
    MAX_INCLUDE_BYTES,
    MAX_INCLUDED_FILES,
    read_profile_file,
    skipped,
)
from lab.engines.apparmor.model import Profile
from lab.engines.apparmor.parser import parse_text
from lab.engines.apparmor.policy import build
from lab.nodefs import NodePathError, NotRegularFile, read_regular, resolve_in_node
from lab.workspace import Workspace

STATE_KEY = "apparmor"
PROFILE_DIR = "/etc/apparmor.d"
# What one load may keep in the state file (profile and included files together).
MAX_SNAPSHOT_CHARS = 512 * 1024

Includes = dict[str, list[list[str]]]  # request key -> [[shown name, text], ...]


@dataclass(frozen=True)
class LoadedProfile:
    """A profile in a node's kernel (a line of /sys/kernel/security/apparmor/profiles)."""

    name: str  # full name: "k8s-deny-write", "parent//child"
    mode: str  # enforce | complain | kill | unconfined
    file: str  # node path it was loaded from
    at: str  # when (ISO time)
    text: str  # the file as it was loaded
    includes: Includes = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "mode": self.mode, "file": self.file, "at": self.at,
                "text": self.text, "includes": self.includes}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoadedProfile:
        return cls(str(data["name"]), str(data["mode"]), str(data["file"]), str(data["at"]),
                   str(data["text"]), dict(data.get("includes") or {}))


def _key(name: str, search: bool) -> str:
    return f"<{name}>" if search else f'"{name}"'


class RecordingResolver:
    """Resolves includes inside the node tree, and keeps what it read, for the snapshot.

    `<x>` is the node's /etc/apparmor.d/x, then the lab's own copy; `"x"` is a node
    path (relative ones from the including file's folder). Symlinks are followed as
    the node would follow them, never out of the node.
    """

    def __init__(self, node_root: Path, base: str, search: Sequence[str] = (PROFILE_DIR,)) -> None:
        self.root = node_root
        self.base = base  # node folder of the file being parsed
        self.search = list(search)  # node folders searched for <x> (apparmor_parser's -I)
        self.count = 0
        self.seen: Includes = {}

    def _in_node(self, node_path: str) -> Path | None:
        try:
            found = resolve_in_node(self.root, node_path)
        except NodePathError:
            return None
        return found if found.exists() else None

    def _find(self, name: str, search: bool) -> tuple[Path, str] | None:
        """The host path and the node path (or bundled name) of an include."""
        if search:
            for folder in self.search:
                node_path = posixpath.join(folder, name)
                found = self._in_node(node_path)
                if found is not None:
                    return found, node_path
            if ".." in PurePosixPath(name).parts:
                return None
            bundled = BUNDLED_DIR / name
            return (bundled, posixpath.join(PROFILE_DIR, name)) if bundled.exists() else None
        node_path = posixpath.normpath(posixpath.join(self.base, name))
        found = self._in_node(node_path)
        return (found, node_path) if found is not None else None

    def __call__(self, name: str, search: bool, if_exists: bool, file: str,
                 line: int) -> list[tuple[str, str]]:
        hit = self._find(name, search)
        if hit is None:
            if if_exists:
                self.seen[_key(name, search)] = []
                return []
            raise ProfileError(f"Could not open '{name}'", file=file, line=line)
        path, node_path = hit
        shown_base = name.rstrip("/") if search else node_path
        files = [(path, shown_base)]
        if path.is_dir():
            files = []
            for entry in sorted(path.iterdir()):
                if skipped(entry.name):
                    continue
                real = (self._in_node(f"{node_path}/{entry.name}")
                        if not path.is_relative_to(BUNDLED_DIR) else entry)
                if real is not None and real.is_file():
                    files.append((real, f"{shown_base}/{entry.name}"))
        out = []
        for real, shown in files:
            self.count += 1
            if self.count > MAX_INCLUDED_FILES:
                raise ProfileError("too many included files", file=file, line=line)
            out.append((shown, read_profile_file(real, shown)))
        self.seen[_key(name, search)] = [[shown, text] for shown, text in out]
        return out


class SnapshotResolver:
    """Serves includes from a loaded profile's snapshot, as the kernel holds them."""

    def __init__(self, includes: Includes) -> None:
        self.includes = includes

    def __call__(self, name: str, search: bool, if_exists: bool, file: str,
                 line: int) -> list[tuple[str, str]]:
        got = self.includes.get(_key(name, search))
        if got is None:
            if if_exists:
                return []
            raise ProfileError(f"Could not open '{name}'", file=file, line=line)
        return [(shown, text) for shown, text in got]


# --- reading a profile file on a node ----------------------------------------------------


@dataclass(frozen=True)
class ParsedFile:
    """A profile file read from a node tree, and what its parse included."""

    node_path: str
    host_path: Path
    text: str
    profiles: ProfileSet
    includes: Includes


def read_node_profile(node_root: Path, node_path: str) -> tuple[Path, str]:
    """The host path and text of a profile file on a node; FileNotFoundError if absent."""
    try:
        host = resolve_in_node(node_root, node_path)
        raw = read_regular(host, MAX_INCLUDE_BYTES)
    except NotRegularFile as e:
        raise ProfileError(f"{node_path} {e.message}", file=node_path) from None
    except NodePathError as e:
        raise ProfileError(e.message, file=node_path) from None
    if len(raw) > MAX_INCLUDE_BYTES:
        raise ProfileError(f"file is too large for a profile (more than {MAX_INCLUDE_BYTES} "
                           "bytes)", file=node_path)
    if b"\0" in raw:
        raise ProfileError("binary file, not an AppArmor profile", file=node_path)
    try:
        return host, raw.decode("utf-8")
    except UnicodeDecodeError:
        return host, raw.decode("latin-1")


def parse_node_profile(node_root: Path, node_path: str,
                       search: Sequence[str] = (PROFILE_DIR,)) -> ParsedFile:
    """Parse a node's profile file with the lab's engine; ProfileError on bad input.

    `<...>` includes come from the node folders `search` (the node's /etc/apparmor.d),
    then the lab's own copies.
    """
    host, text = read_node_profile(node_root, node_path)
    resolver = RecordingResolver(node_root, posixpath.dirname(node_path), search)
    try:
        pset = build(parse_text(text, node_path, resolver), node_path)
    except RecursionError:
        raise ProfileError("the profile nests blocks, conditions or variables too deeply",
                           file=node_path) from None
    return ParsedFile(node_path, host, text, pset, resolver.seen)


def located(err: ProfileError, shown: str) -> str:
    """An error as apparmor_parser prints it (`shown`: the file as it was named)."""
    if err.line is None:
        return err.message
    return (f"AppArmor parser error for {shown} in profile {err.file or shown} at line "
            f"{err.line}: {err.message}")


# `profile NAME ...{` or a profile named by its path (`/usr/sbin/nginx flags=(...) {`)
_PROFILE_HEAD = re.compile(
    r'^[ \t]*(?:profile[ \t]+("[^"\n]+"|[^\s{]+)|("/[^"\n]+"|/[^\s{]*)[ \t]*(?:flags|xattrs|\{))',
    re.M)


def profile_names_in(text: str) -> tuple[str, ...]:
    """The profiles a file's text seems to define, read without parsing it (for a file
    that does not compile, to say which profiles it would have loaded)."""
    names = (a or b for a, b in _PROFILE_HEAD.findall(text))
    return tuple(dict.fromkeys(n.strip('"') for n in names))


def snapshot_size(parsed: ParsedFile) -> int:
    return len(parsed.text) + sum(len(t) for v in parsed.includes.values() for _, t in v)


# --- the loaded policy --------------------------------------------------------------------


def loaded(ws: Workspace, node: str) -> list[LoadedProfile]:
    """The profiles loaded on a node, in load order."""
    data = ws.state().get(STATE_KEY) or {}
    return [LoadedProfile.from_json(p) for p in data.get(node, [])]


def all_loaded(ws: Workspace) -> dict[str, list[LoadedProfile]]:
    data = ws.state().get(STATE_KEY) or {}
    return {node: [LoadedProfile.from_json(p) for p in items] for node, items in data.items()}


def store(ws: Workspace, node: str, profiles: list[LoadedProfile]) -> None:
    data = dict(ws.state().get(STATE_KEY) or {})
    data[node] = [p.as_json() for p in profiles]
    ws.update_state(**{STATE_KEY: data})


def unload_all(ws: Workspace) -> None:
    """A fresh boot of every node: nothing loaded (setup loads what the scenario says)."""
    data = ws.state()
    if data.pop(STATE_KEY, None) is not None:
        ws.save_state(data)


@lru_cache(maxsize=64)
def _compiled(file: str, text: str, includes_key: str) -> ProfileSet:
    includes = json.loads(includes_key)
    return build(parse_text(text, file, SnapshotResolver(includes)), file)


@lru_cache(maxsize=128)
def _in_mode(file: str, text: str, includes_key: str, name: str, mode: str) -> Profile:
    prof = _compiled(file, text, includes_key).profile(name)
    if prof.mode == mode:
        return prof
    # `apparmor_parser -C` loads it in complain mode whatever its flags say; a copy, so
    # the cached parse (and its decision index) stays as the text has it
    return replace(prof, mode=mode, index=None)


def compiled(lp: LoadedProfile) -> Profile:
    """The loaded profile as the kernel enforces it: from the snapshot, never the file,
    and in the mode it was loaded in (which `-C` may have changed)."""
    return _in_mode(lp.file, lp.text, json.dumps(lp.includes, sort_keys=True), lp.name, lp.mode)
