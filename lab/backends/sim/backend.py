"""SimBackend: the workspace's node trees are the cluster."""

from __future__ import annotations

import secrets
from datetime import datetime

from lab.backends.base import Progress, no_progress
from lab.backends.sim.audit import replay_audit
from lab.evidence import Evidence
from lab.scenarios.loader import LoadedScenario
from lab.scenarios.requests import api_call
from lab.workspace import Workspace, seed


class SimBackend:
    name = "sim"

    def __init__(self, now: datetime | None = None) -> None:
        self._now = now  # fixed clock for reproducible logs in tests

    def prepare(self, sc: LoadedScenario, ws: Workspace, progress: Progress = no_progress) -> None:
        progress("seeding node files")
        seed(ws, sc)

    def run_attack(
        self, sc: LoadedScenario, ws: Workspace, progress: Progress = no_progress
    ) -> Evidence:
        run_id = secrets.token_hex(4)
        calls = [c for c in (api_call(s) for s in sc.model.attack) if c is not None]
        progress("restarting the control plane from its manifest")
        audit = replay_audit(
            ws.node_root(sc.model.control_plane),
            calls,
            run_id,
            ws.lab_dir / "logs" / "kube-apiserver.log",
            self._now,
        )
        progress(f"replayed {len(calls)} API request(s)")
        return Evidence(run_id=run_id, backend=self.name, audit=audit)
