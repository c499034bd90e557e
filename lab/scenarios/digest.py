"""A scenario folder's files and one digest of them (a pack names bundled scenarios by
it; an exam records it at start to tell, at submit, that the scenario is the same)."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from lab.errors import LabError

if TYPE_CHECKING:
    from lab.scenarios.loader import LoadedScenario

MAX_FILE_BYTES = 4 * 1024 * 1024
# Not counted: editor and VCS droppings (.git, .swp, .DS_Store) and Python caches.
SKIP = re.compile(r"^\.|^__pycache__$")


def scenario_files(sc: LoadedScenario) -> list[tuple[str, Path]]:
    """(`<id>/<relative path>`, file) for every file of the scenario's folder."""
    out: list[tuple[str, Path]] = []
    for folder, dirs, names in os.walk(sc.root):
        dirs[:] = sorted(d for d in dirs if not SKIP.search(d))
        for entry in [*dirs, *sorted(names)]:
            path = Path(folder) / entry
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                raise LabError(
                    "is a symlink; a pack holds only plain files (copy the file in its place)",
                    file=str(path),
                )
            if entry in dirs:
                continue
            if SKIP.search(entry):
                continue
            if not stat.S_ISREG(st.st_mode):
                raise LabError("is not a regular file", file=str(path))
            if st.st_size > MAX_FILE_BYTES:
                raise LabError(
                    f"is {st.st_size} bytes; a pack's files are at most {MAX_FILE_BYTES}",
                    file=str(path),
                )
            rel = path.relative_to(sc.root).as_posix()
            out.append((f"{sc.id}/{rel}", path))
    return out


def folder_digest(sc: LoadedScenario) -> str:
    """One sha256 for a scenario's files (names and contents)."""
    h = hashlib.sha256()
    for arc, path in scenario_files(sc):
        h.update(f"{arc}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return h.hexdigest()
