"""The Backend contract: what every backend (sim, kind) does for a scenario.

A backend prepares a scenario's starting state, runs the attack again and
returns Evidence. It never grades; checks never ask which backend ran.
"""

from __future__ import annotations

from typing import Protocol

from lab.evidence import Evidence
from lab.scenarios.loader import LoadedScenario
from lab.work import Progress, no_progress
from lab.workspace import Workspace

__all__ = ["Backend", "Progress", "no_progress"]


class Backend(Protocol):
    name: str

    def prepare(self, sc: LoadedScenario, ws: Workspace, progress: Progress = no_progress) -> None:
        """Bring the scenario's starting state up (nodes seeded, manifests applied)."""

    def run_attack(
        self, sc: LoadedScenario, ws: Workspace, progress: Progress = no_progress
    ) -> Evidence:
        """Run the scenario's attack against the learner's current state; collect evidence."""
