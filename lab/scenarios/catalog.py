"""Find scenarios: the bundled ones plus any extra folders."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lab.errors import LabError
from lab.paths import bundled_scenarios_dir, data_dir, extra_scenario_dirs
from lab.scenarios import SCENARIO_FILE
from lab.scenarios.summary import ScenarioSummary, SummaryCache, folder_signature, summary_of

if TYPE_CHECKING:  # the loader (YAML, the model) loads when a scenario is first loaded
    from lab.scenarios.loader import LoadedScenario, ScenarioError


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


def packs_dir() -> Path:
    """Where `cks-lab workshop unpack` puts scenario packs, a folder per pack."""
    return data_dir() / "packs"


def pack_roots() -> list[Path]:
    """The unpacked packs' folders, by name (a dot-folder is a pack being unpacked)."""
    try:
        return sorted(
            p for p in packs_dir().iterdir() if p.is_dir() and not p.name.startswith(".")
        )
    except OSError:  # no packs yet, or an unreadable data dir: no pack scenarios
        return []


@dataclass
class Catalog:
    roots: list[Path]
    _cache: dict[Path, LoadedScenario] = field(default_factory=dict)

    @classmethod
    def default(cls, extra: Iterable[Path] = ()) -> Catalog:
        return cls([*extra, *extra_scenario_dirs(), *pack_roots(), bundled_scenarios_dir()])

    def folders(self) -> list[Path]:
        return scenario_folders(self.roots)

    def load(self, folder: Path) -> LoadedScenario:
        from lab.scenarios.loader import load_scenario

        if folder not in self._cache:
            self._cache[folder] = load_scenario(folder)
        return self._cache[folder]

    def scan(self) -> tuple[list[LoadedScenario], list[ScenarioError]]:
        """All loadable scenarios (first folder wins per id) and the errors of the rest."""
        from lab.scenarios.loader import ScenarioError

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

    def summaries(
        self, cache: Path | None = None, version: str = ""
    ) -> tuple[list[ScenarioSummary], list[ScenarioError]]:
        """What scan() gives, as summaries; with a cache file, a scenario whose
        folder is unchanged since it last loaded cleanly is not loaded again."""
        store = SummaryCache(cache, version) if cache is not None else None
        good: dict[str, ScenarioSummary] = {}
        bad: list[ScenarioError] = []
        for folder in self.folders():
            sig = folder_signature(folder) if store is not None else None
            s = store.get(folder, sig) if store is not None else None
            if s is None:
                from lab.scenarios.loader import ScenarioError  # only on a cache miss

                try:
                    s = summary_of(self.load(folder))
                except ScenarioError as e:
                    bad.append(e)
                    continue
                if store is not None:
                    store.put(folder, sig, s)
            good.setdefault(s.id, s)
        if store is not None:
            store.save()
        return list(good.values()), bad

    def get(self, scenario_id: str) -> LoadedScenario:
        for folder in self.folders():
            if folder.name == scenario_id:
                return self.load(folder)
        known = ", ".join(sorted(f.name for f in self.folders())) or "none"
        raise LabError(f"no scenario {scenario_id!r} (known: {known})", item=scenario_id)
