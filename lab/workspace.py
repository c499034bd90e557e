"""A learner's workspace: node trees seeded from a scenario, plus the lab's state.

Layout:
    <root>/nodes/<node>/...      the node's filesystem, which the learner edits
    <root>/.lab/state.json       which scenario, hints taken, attempts
    <root>/.lab/backups/<time>/  what reset or solution replaced, so nothing is lost
Nothing outside <root> is ever written.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lab.engines.audit.nodefs import resolve_in_node
from lab.errors import LabError
from lab.fsutil import atomic_write_bytes, atomic_write_json
from lab.scenarios.loader import LoadedScenario
from lab.scenarios.model import NodeFile

STATE_DIR = ".lab"
STATE_FILE = "state.json"
FORMAT = 1


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

    def state(self) -> dict[str, Any]:
        try:
            data = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            raise LabError(
                "not a cks-lab workspace (no .lab/state.json); start one with `cks-lab start ID`",
                file=str(self.root),
            ) from None
        except (OSError, ValueError) as e:
            raise LabError(
                f"workspace state is unreadable: {e}", file=str(self.state_path)
            ) from None
        if not isinstance(data, dict) or data.get("format") != FORMAT or "scenario" not in data:
            raise LabError("workspace state has an unknown format", file=str(self.state_path))
        return data

    def save_state(self, data: dict[str, Any]) -> None:
        atomic_write_json(self.state_path, data)

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
        node_root.mkdir(parents=True, exist_ok=True)
        target = resolve_in_node(node_root, f.path)
        atomic_write_bytes(target, sc.node_file_bytes(f), f.file_mode)
        return target

    def backup(self, reason: str) -> Path | None:
        """Copy the node trees aside before they are replaced; returns the backup folder."""
        nodes = self.root / "nodes"
        if not nodes.exists():
            return None
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + f"-{time.monotonic_ns() % 10**6:06d}"
        dest = self.lab_dir / "backups" / f"{stamp}-{reason}"
        shutil.copytree(nodes, dest / "nodes", symlinks=True)
        return dest


def is_workspace(root: Path) -> bool:
    return (root / STATE_DIR / STATE_FILE).is_file()


def open_workspace(root: Path) -> Workspace:
    ws = Workspace(Path(root))
    ws.state()  # raises a located error for a folder that is not a workspace
    return ws


def create_workspace(root: Path, sc: LoadedScenario, backend: str) -> Workspace:
    """Make a new workspace in an empty (or absent) folder and seed its nodes."""
    root = Path(root)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise LabError(
            "refusing to use a folder that is not empty and is not a cks-lab workspace",
            file=str(root),
        )
    ws = Workspace(root)
    root.mkdir(parents=True, exist_ok=True)
    seed(ws, sc)
    ws.save_state(
        {
            "format": FORMAT,
            "scenario": sc.id,
            "scenario_dir": str(sc.root),
            "backend": backend,
            "created": now_iso(),
            "hints": {},
            "solutions_viewed": [],
            "attempts": [],
        }
    )
    return ws


def seed(ws: Workspace, sc: LoadedScenario) -> None:
    """Write the scenario's starting node files (after clearing the node trees)."""
    nodes = ws.root / "nodes"
    if nodes.exists():
        shutil.rmtree(nodes)
    for node in sc.model.cluster.nodes:
        ws.node_root(node.name).mkdir(parents=True, exist_ok=True)
    for f in sc.model.setup.files:
        ws.write_node_file(sc, f)
