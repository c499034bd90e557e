"""The learner's node files against the reference solution's (`cks-lab diff`).

The learner's file is read as the node would see it: symlinks inside the node
are followed, one leading out of it is not, and only a regular file is read
(a FIFO would block the reader).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from lab.errors import LabError
from lab.nodefs import NodePathError, NotRegularFile, read_regular, resolve_in_node
from lab.scenarios.loader import LoadedScenario
from lab.scenarios.model import NodeFile, Task

MAX_DIFF_BYTES = 512 * 1024  # larger files are not diffed (difflib is slow on big files)
NOT_DIFFED = "binary or too large to diff"


@dataclass(frozen=True)
class FileDiff:
    node: str
    path: str  # on the node
    tasks: tuple[str, ...]  # the tasks whose solutions write this file
    same: bool  # the learner's file is byte for byte the solution's
    missing: bool = False  # the learner has no such file (lines: the whole solution file)
    # unified diff, learner -> solution, without line ends; empty when same or not diffed
    lines: list[str] = field(default_factory=list)
    note: str = ""  # why there is no diff: NOT_DIFFED, or what the learner's path is instead


def _text(data: bytes) -> list[str] | None:
    """The lines, or None for a file that is not text."""
    if len(data) > MAX_DIFF_BYTES or b"\0" in data:
        return None
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return None


def _read_learner(node_root: Path, path: str) -> tuple[bytes | None, str]:
    """The learner's file (None when it does not exist), or None and why it is unreadable."""
    try:
        target = resolve_in_node(node_root, path)
        return read_regular(target, MAX_DIFF_BYTES, follow_symlinks=False), ""
    except (FileNotFoundError, NotADirectoryError):
        return None, ""
    except NotRegularFile as e:
        return None, f"yours is a {e.kind}, not a file"
    except NodePathError as e:
        return None, f"yours cannot be read: {e.message}"
    except OSError as e:
        return None, f"yours cannot be read: {e.strerror or e}"


def file_diff(node_root: Path, sc: LoadedScenario, f: NodeFile, tasks: tuple[str, ...]) -> FileDiff:
    solution = sc.node_file_bytes(f)
    mine, problem = _read_learner(node_root, f.path)
    if problem:
        return FileDiff(f.node, f.path, tasks, same=False, note=problem)
    if mine is not None and len(mine) > MAX_DIFF_BYTES:  # read only in part: not comparable
        return FileDiff(f.node, f.path, tasks, same=False, note=NOT_DIFFED)
    if mine == solution:
        return FileDiff(f.node, f.path, tasks, same=True)
    new = _text(solution)
    old = [] if mine is None else _text(mine)
    if new is None or old is None:
        return FileDiff(f.node, f.path, tasks, False, mine is None, note=NOT_DIFFED)
    yours = f"{f.path} (yours)" if mine is not None else f"{f.path} (you have none)"
    lines = list(difflib.unified_diff(old, new, yours, f"{f.path} (solution)", lineterm=""))
    if not lines:  # the same lines, but not the same bytes: line ends or a final newline
        lines = [f"(the same lines; the line ends or the final newline differ in {f.path})"]
    return FileDiff(f.node, f.path, tasks, False, mine is None, lines)


def learner_diff(root_of: dict[str, Path], sc: LoadedScenario, tasks: list[Task]) -> list[FileDiff]:
    """Each file the tasks' solutions write, once, against the learner's
    (`root_of`: node -> its folder). A file several tasks write is compared with
    the last one's, as applying them in order leaves it."""
    files: dict[tuple[str, str], tuple[NodeFile, tuple[str, ...]]] = {}
    for t in tasks:
        for f in t.solution.files:
            key = (f.node, f.path)
            before = files[key][1] if key in files else ()
            files[key] = (f, before if t.id in before else (*before, t.id))
    out = []
    for (node, _), (f, ids) in files.items():
        if node not in root_of:
            raise LabError(f"the solution writes to node {node!r}, which the scenario lacks")
        out.append(file_diff(root_of[node], sc, f, ids))
    return out
