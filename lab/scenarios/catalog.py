"""Find scenarios: the bundled ones plus any extra folders."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lab.errors import LabError
from lab.paths import bundled_scenarios_dir, extra_scenario_dirs
from lab.scenarios.loader import SCENARIO_FILE, LoadedScenario, ScenarioError, load_scenario


def scenario_folders(roots: Iterable[Path]) -> list[Path]:
    """Every folder holding a scenario.yaml, directly under each root (or a root itself)."""
    found: list[Path] = []
    for root in roots:
        if (root / SCENARIO_FILE).is_file():
            found.append(root)
        elif root.is_dir():
            found.extend(
                sorted(p for p in root.iterdir() if p.is_dir() and (p / SCENARIO_FILE).is_file())
            )
    return found


@dataclass
class Catalog:
    roots: list[Path]
    _cache: dict[Path, LoadedScenario] = field(default_factory=dict)

    @classmethod
    def default(cls, extra: Iterable[Path] = ()) -> Catalog:
        return cls([*extra, *extra_scenario_dirs(), bundled_scenarios_dir()])

    def folders(self) -> list[Path]:
        return scenario_folders(self.roots)

    def load(self, folder: Path) -> LoadedScenario:
        if folder not in self._cache:
            self._cache[folder] = load_scenario(folder)
        return self._cache[folder]

    def scan(self) -> tuple[list[LoadedScenario], list[ScenarioError]]:
        """All loadable scenarios (first folder wins per id) and the errors of the rest."""
        good: dict[str, LoadedScenario] = {}
        bad: list[ScenarioError] = []
        for folder in self.folders():
            try:
                sc = self.load(folder)
            except ScenarioError as e:
                bad.append(e)
                continue
            good.setdefault(sc.id, sc)
        return list(good.values()), bad

    def get(self, scenario_id: str) -> LoadedScenario:
        for folder in self.folders():
            if folder.name == scenario_id:
                return self.load(folder)
        known = ", ".join(sorted(f.name for f in self.folders())) or "none"
        raise LabError(f"no scenario {scenario_id!r} (known: {known})", item=scenario_id)
