"""What a catalog line shows about a scenario, and a cache of it.

The catalog (TUI, progress) needs a few facts per scenario, not the whole
validated model. Loading and validating every scenario costs ~120 ms; the cache
(in the lab's data dir) keeps each scenario's summary under a signature of every
file in its folder (path, size, mtime), so any change loads and validates it
again. The cache is only a cache: unreadable, corrupt or unwritable, it is
rebuilt or skipped, never trusted over the files.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lab.scenarios.loader import LoadedScenario

CACHE_FORMAT = 1
MAX_SIGNED_FILES = 2000  # a folder with more is not cached (signing it costs too much)


@dataclass(frozen=True)
class ScenarioSummary:
    id: str
    title: str
    skills: tuple[str, ...]
    difficulty: str
    minutes: int
    weight: int
    points: int  # the sum of its checks' points
    tasks: int
    folder: str


def summary_of(sc: LoadedScenario) -> ScenarioSummary:
    m = sc.model
    return ScenarioSummary(
        m.id,
        m.title,
        tuple(str(s) for s in m.skills),
        str(m.difficulty),
        m.minutes,
        m.weight,
        sum(c.points for t in m.tasks for c in t.checks),
        len(m.tasks),
        str(sc.root),
    )


def folder_signature(folder: Path) -> list[list[Any]] | None:
    """Every file under the folder with its size and mtime; None if it cannot be
    signed (unreadable, or too many files)."""
    out: list[list[Any]] = []
    try:
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
            dirnames.sort()
            for name in sorted(filenames):
                st = os.lstat(os.path.join(dirpath, name))
                rel = os.path.relpath(os.path.join(dirpath, name), folder)
                out.append([rel, st.st_size, st.st_mtime_ns])
                if len(out) > MAX_SIGNED_FILES:
                    return None
    except OSError:
        return None
    return out


class SummaryCache:
    """{folder: (signature, summary)} in one JSON file, written atomically."""

    def __init__(self, path: Path, version: str) -> None:
        self.path = path
        self.version = version  # another cks-lab version validates everything again
        self.entries: dict[str, Any] = {}
        self.changed = False
        try:
            data = json.loads(path.read_bytes())
            if data.get("format") == CACHE_FORMAT and data.get("lab") == version:
                self.entries = dict(data.get("entries") or {})
        except (OSError, ValueError, AttributeError, TypeError):
            pass  # no cache yet, or a broken one: rebuilt below

    def get(self, folder: Path, signature: list[list[Any]] | None) -> ScenarioSummary | None:
        if signature is None:
            return None
        hit = self.entries.get(str(folder))
        if not isinstance(hit, dict) or hit.get("sig") != signature:
            return None
        try:
            s = dict(hit["summary"])
            s["skills"] = tuple(s["skills"])
            return ScenarioSummary(**s)
        except (KeyError, TypeError, ValueError):
            return None

    def put(self, folder: Path, signature: list[list[Any]] | None, s: ScenarioSummary) -> None:
        if signature is None:
            return
        self.entries[str(folder)] = {"sig": signature, "summary": asdict(s)}
        self.changed = True

    def save(self) -> None:
        if not self.changed:
            return
        from lab.errors import LabError
        from lab.fsutil import atomic_write_json

        try:
            atomic_write_json(
                self.path, {"format": CACHE_FORMAT, "lab": self.version, "entries": self.entries}
            )
        except (OSError, LabError):
            pass  # a read-only data dir: the next start validates again, that is all
