"""A learner's workspace: node trees seeded from a scenario, plus the lab's state.

Layout:
    <root>/nodes/<node>/...      the node's filesystem, which the learner edits
    <root>/.lab/state.json       which scenario, hints taken, attempts
    <root>/.lab/backups/<time>/  what reset or solution replaced, so nothing is lost
    <root>/.lab/logs/            what the control plane printed (the sim backend's)
Nothing outside <root> is ever written: a node root, nodes/ or .lab (or a folder
in it) that is a symlink is refused before any write, and the lab's own files
are written without following symlinks.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from lab.errors import LabError
from lab.fsutil import atomic_write_bytes, atomic_write_json, read_bytes_nofollow
from lab.nodefs import resolve_in_node
from lab.safecopy import UNLIMITED, copy_tree
from lab.schema import Meta, SchemaError, load, record

if TYPE_CHECKING:
    from lab.scenarios.loader import LoadedScenario
    from lab.scenarios.model import NodeFile

STATE_DIR = ".lab"
STATE_FILE = "state.json"
LAB_SUBDIRS = ("logs", "backups")
FORMAT = 1
MAX_STATE_BYTES = 4 * 1024 * 1024


# --- the state file's shape (the on-disk format, checked when it is read) -------


@record(extra="other")
class Attempt:
    """One `cks-lab check`."""

    at: str
    points: int
    max_points: int
    passed: bool
    tasks: dict[str, bool] = field(default_factory=dict)  # task id -> passed
    # task id -> {check title: passed}, for "what changed since the previous check"
    checks: dict[str, dict[str, bool]] = field(default_factory=dict)
    other: dict[str, Any]


@record
class LoadedProfileState:
    """A profile loaded in a sim node's kernel (lab/backends/sim/apparmor_kernel.py)."""

    name: str
    mode: Literal["enforce", "complain", "kill", "unconfined"]
    file: str  # node path it was loaded from
    at: str
    text: str  # the file as loaded: the kernel keeps this, not later edits
    includes: dict[str, list[list[str]]] = field(default_factory=dict)  # what it included


@record(extra="other")
class WorkspaceState:
    """.lab/state.json. Unknown keys are kept (a newer cks-lab may add some)."""

    format: int
    scenario: str
    scenario_dir: str = ""  # the folder the scenario was started from
    backend: str = "sim"
    created: str = ""
    # False from creation (or a reset's start) until the backend's prepare() ends:
    # an interrupted start or reset is finished, never graded as the learner's work
    prepared: bool = True
    last_reset: str = ""  # when the nodes last went back to the start (task marks predate it)
    hints: dict[str, Annotated[int, Meta(ge=0)]] = field(default_factory=dict)  # taken per task
    solutions_viewed: list[str] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    # node -> AppArmor profiles loaded in its kernel (`cks-lab node exec NODE -- apparmor_parser`)
    apparmor: dict[str, list[LoadedProfileState]] = field(default_factory=dict)
    other: dict[str, Any]


def check_state(data: Any, source: str) -> WorkspaceState:
    """The state as a record, or a LabError naming the first bad field."""
    if not isinstance(data, dict) or data.get("format") != FORMAT or "scenario" not in data:
        raise LabError("workspace state has an unknown format", file=source)
    try:
        return load(WorkspaceState, data)
    except SchemaError as e:
        raise LabError(f"workspace state is corrupt: {e.first()}", file=source) from None


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise LabError(f"cannot read: {e.strerror}", file=str(path)) from None


def refuse_symlinked_dir(path: Path) -> None:
    """A LabError unless `path` is absent or a real folder (a symlink is not followed)."""
    st = _lstat(path)
    if st is None:
        return
    if stat.S_ISLNK(st.st_mode):
        raise LabError(
            "is a symlink; it must be a real folder in the workspace "
            "(cks-lab does not write through symlinks)",
            file=str(path),
        )
    if not stat.S_ISDIR(st.st_mode):
        raise LabError("is not a folder", file=str(path))


def check_node_roots(nodes: Path) -> None:
    """nodes/ and every nodes/<node> must be real folders: a node root that is a
    symlink would send the node's files (and the lab's writes) outside the tree."""
    refuse_symlinked_dir(nodes)
    if not nodes.is_dir():
        return
    for entry in sorted(os.scandir(nodes), key=lambda e: e.name):
        if entry.is_symlink():
            raise LabError(
                "node root is a symlink; a node's folder must be a real folder "
                "(symlinks inside it are fine)",
                file=entry.path,
            )


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Workspace:
    root: Path

    @property
    def state_path(self) -> Path:
        return self.root / STATE_DIR / STATE_FILE

    def node_root(self, node: str) -> Path:
        return self.root / "nodes" / node

    @property
    def lab_dir(self) -> Path:
        return self.root / STATE_DIR

    # --- state -----------------------------------------------------------

    def guard(self) -> None:
        """Refuse a workspace whose lab or node folders are symlinks, before any write."""
        refuse_symlinked_dir(self.lab_dir)
        for sub in LAB_SUBDIRS:
            refuse_symlinked_dir(self.lab_dir / sub)
        logs = self.lab_dir / "logs"
        if logs.is_dir():
            for entry in os.scandir(logs):
                if entry.is_symlink():
                    raise LabError(
                        "is a symlink; the lab's log files must be real files", file=entry.path
                    )
        check_node_roots(self.root / "nodes")

    def state(self) -> dict[str, Any]:
        """The state file's data, checked against `WorkspaceState` (the on-disk shape)."""
        refuse_symlinked_dir(self.lab_dir)
        try:
            data = json.loads(read_bytes_nofollow(self.state_path, MAX_STATE_BYTES))
        except FileNotFoundError:
            raise LabError(
                "not a cks-lab workspace (no .lab/state.json); start one with `cks-lab start ID`",
                file=str(self.root),
            ) from None
        except (OSError, ValueError) as e:
            raise LabError(
                f"workspace state is unreadable: {e}", file=str(self.state_path)
            ) from None
        check_state(data, str(self.state_path))
        return data

    def save_state(self, data: dict[str, Any]) -> None:
        check_state(data, str(self.state_path))  # never write a state that cannot be read
        atomic_write_json(self.state_path, data, within=self.root)

    def update_state(self, **changes: Any) -> dict[str, Any]:
        data = self.state()
        data.update(changes)
        self.save_state(data)
        return data

    @property
    def scenario_id(self) -> str:
        return str(self.state()["scenario"])

    # --- files -------------------------------------------------------------

    def write_node_file(self, sc: LoadedScenario, f: NodeFile) -> Path:
        node_root = self.node_root(f.node)
        check_node_roots(self.root / "nodes")
        node_root.mkdir(parents=True, exist_ok=True)
        target = resolve_in_node(node_root, f.path)
        atomic_write_bytes(target, sc.node_file_bytes(f), f.file_mode)
        return target

    def backup(self, reason: str) -> Path | None:
        """Copy the node trees aside before they are replaced; returns the backup folder."""
        nodes = self.root / "nodes"
        if not nodes.exists():
            return None
        self.guard()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + f"-{time.monotonic_ns() % 10**6:06d}"
        dest = self.lab_dir / "backups" / f"{stamp}-{reason}"
        dest.mkdir(parents=True)
        try:
            # A device or FIFO has no content to lose: skipped, never read.
            copy_tree(nodes, dest / "nodes", limits=UNLIMITED, special="skip", what="a node")
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            raise
        return dest


def is_workspace(root: Path) -> bool:
    return (root / STATE_DIR / STATE_FILE).is_file()


def open_workspace(root: Path) -> Workspace:
    ws = Workspace(Path(root))
    ws.state()  # raises a located error for a folder that is not a workspace
    ws.guard()
    return ws


def create_workspace(root: Path, sc: LoadedScenario, backend: str) -> Workspace:
    """Make a new workspace in an empty (or absent) folder; the backend's
    prepare() then brings its nodes to the scenario's starting state."""
    root = Path(root)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise LabError(
            "refusing to use a folder that is not empty and is not a cks-lab workspace",
            file=str(root),
        )
    ws = Workspace(root)
    root.mkdir(parents=True, exist_ok=True)
    ws.save_state(
        {
            "format": FORMAT,
            "scenario": sc.id,
            "scenario_dir": str(sc.root),
            "backend": backend,
            "created": now_iso(),
            "prepared": False,
            "hints": {},
            "solutions_viewed": [],
            "attempts": [],
        }
    )
    return ws


def seed(ws: Workspace, sc: LoadedScenario) -> None:
    """Write the scenario's starting node files (after clearing the node trees)."""
    nodes = ws.root / "nodes"
    check_node_roots(nodes)
    if nodes.exists():
        shutil.rmtree(nodes)
    for node in sc.model.cluster.nodes:
        ws.node_root(node.name).mkdir(parents=True, exist_ok=True)
    for f in sc.model.setup.files:
        ws.write_node_file(sc, f)
