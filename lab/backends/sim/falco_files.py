"""The files a node's Falco reads: the node tree as the learner left it, except the files
a package upgrade put back, which read as the package ships them (their setup content).

The workspace is never written: an upgrade in the sim changes what Falco sees, not
what the learner wrote.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from lab.nodefs import NodePathError, read_regular, resolve_in_node

Kind = Literal["file", "dir", "other"]


def _norm(path: str) -> str:
    return posixpath.normpath(path if path.startswith("/") else "/" + path)


@dataclass(frozen=True)
class FalcoFiles:
    root: Path
    restored: Mapping[str, bytes] = field(default_factory=dict)  # node path -> content

    def read(self, path: str, limit: int) -> bytes:
        """The file's bytes (up to limit + 1); FileNotFoundError, NodePathError,
        NotRegularFile or OSError as lab.nodefs.read_regular raises them."""
        norm = _norm(path)
        if norm in self.restored:
            return self.restored[norm][: limit + 1]
        return read_regular(resolve_in_node(self.root, norm), limit)

    def kind(self, path: str) -> Kind | None:
        """What is at the path (None: nothing, or a path that leaves the node)."""
        norm = _norm(path)
        if norm in self.restored:
            return "file"
        try:
            real = resolve_in_node(self.root, norm)
        except NodePathError:
            return None
        if real.is_dir():
            return "dir"
        if real.is_file():
            return "file"
        return "other" if real.exists() else None

    def entries(self, folder: str) -> list[str]:
        """The node paths of a folder's entries, sorted by name (restored files included)."""
        base = _norm(folder)
        names: set[str] = {
            posixpath.basename(p) for p in self.restored if posixpath.dirname(p) == base
        }
        try:
            names.update(e.name for e in os.scandir(resolve_in_node(self.root, base)))
        except (OSError, NodePathError):
            pass
        return [posixpath.join(base, n) for n in sorted(names)]
