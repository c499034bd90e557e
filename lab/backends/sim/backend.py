"""SimBackend: the workspace's node trees are the cluster."""

from __future__ import annotations

import secrets
from datetime import datetime

from lab.backends.base import Progress, no_progress
from lab.backends.sim.audit import replay_audit
from lab.backends.sim.node_files import SimNodeFiles
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
        # a fresh boot: the kernels hold only the profiles the scenario loads at start
        from lab.backends.sim.apparmor_cmds import load_setup_profiles

        for problem in load_setup_profiles(ws, sc):
            progress(f"warning: {problem}")

    def run_attack(
        self, sc: LoadedScenario, ws: Workspace, progress: Progress = no_progress
    ) -> Evidence:
        run_id = secrets.token_hex(4)
        evidence = Evidence(run_id=run_id, backend=self.name, files=SimNodeFiles(ws))
        if _needs_audit(sc):
            calls = [c for c in (api_call(s) for s in sc.model.attack) if c is not None]
            progress("restarting the control plane from its manifest")
            evidence.audit = replay_audit(
                ws.node_root(sc.model.control_plane),
                calls,
                run_id,
                ws.lab_dir / "logs" / "kube-apiserver.log",
                self._now,
            )
            progress(f"replayed {len(calls)} API request(s)")
        if sc.model.needs_falco:
            from lab.backends.sim.falco import run_falco  # its engine, only when needed

            progress("starting Falco on the nodes")
            evidence.falco = run_falco(ws, sc, run_id, self._now)
            seen = sum(len(v) for v in evidence.falco.events.values())
            progress(f"replayed {seen} event(s) through Falco")
        if sc.model.needs_apparmor:
            from lab.backends.sim.apparmor import run_apparmor  # its engine, only when needed

            progress("applying the pods and replaying their accesses through AppArmor")
            evidence.apparmor = run_apparmor(ws, sc)
        return evidence


def _needs_audit(sc: LoadedScenario) -> bool:
    """Audit evidence for scenarios that grade the apiserver (all but Falco- or
    AppArmor-only ones)."""
    checks = [c.type for t in sc.model.tasks for c in t.checks]
    if not (sc.model.needs_falco or sc.model.needs_apparmor):
        return True
    return any(t.startswith(("audit_", "apiserver_")) for t in checks)
