"""The AppArmor policy each sim node's kernel holds: what `apparmor_parser` loaded.

A profile is loaded only when the learner loads it, as on the exam node
(`cks-lab node exec NODE -- apparmor_parser -r /etc/apparmor.d/x`). The kernel keeps
the policy as it was when loaded, not the file: the record holds the text of the
file and of every file it included, so a file edited after loading changes nothing
until it is loaded again. Records live in the workspace state (`.lab/state.json`,
key `apparmor`: node -> loaded profiles).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from lab.engines.apparmor import ProfileError, ProfileSet, default_search_path
from lab.engines.apparmor.includes import MAX_INCLUDE_BYTES, IncludeResolver
from lab.engines.apparmor.model import Profile
from lab.engines.apparmor.parser import parse_text
from lab.engines.apparmor.policy import build
from lab.nodefs import NodePathError, NotRegularFile, read_regular, resolve_in_node
from lab.workspace import Workspace

STATE_KEY = "apparmor"
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


class RecordingResolver(IncludeResolver):
    """Resolves includes from the node tree and keeps what it read, for the snapshot."""

    def __init__(self, search_path: Sequence[Path], *, base_dir: Path | None,
                 root: Path | None) -> None:
        super().__init__(search_path, base_dir=base_dir, root=root)
        self.seen: Includes = {}

    def __call__(self, name: str, search: bool, if_exists: bool, file: str,
                 line: int) -> list[tuple[str, str]]:
        got = super().__call__(name, search, if_exists, file, line)
        self.seen[_key(name, search)] = [[shown, text] for shown, text in got]
        return got


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


def parse_node_profile(node_root: Path, node_path: str) -> ParsedFile:
    """Parse a node's profile file with the lab's engine; ProfileError on bad input.

    `<...>` includes come from the node's /etc/apparmor.d, then the lab's own copies.
    """
    host, text = read_node_profile(node_root, node_path)
    resolver = RecordingResolver(default_search_path(node_root), base_dir=host.parent,
                                 root=node_root)
    try:
        pset = build(parse_text(text, node_path, resolver), node_path)
    except RecursionError:
        raise ProfileError("the profile nests blocks, conditions or variables too deeply",
                           file=node_path) from None
    return ParsedFile(node_path, host, text, pset, resolver.seen)


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
    ws.update_state(**{STATE_KEY: {}})


@lru_cache(maxsize=64)
def _compiled(file: str, text: str, includes_key: str) -> ProfileSet:
    import json

    includes = json.loads(includes_key)
    return build(parse_text(text, file, SnapshotResolver(includes)), file)


def compiled(lp: LoadedProfile) -> Profile:
    """The loaded profile as the kernel enforces it (from the snapshot, never the file)."""
    import json

    pset = _compiled(lp.file, lp.text, json.dumps(lp.includes, sort_keys=True))
    return pset.profile(lp.name)
