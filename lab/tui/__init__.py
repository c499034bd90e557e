"""The Textual app (`cks-lab` with no arguments, in a terminal).

It only calls what the CLI calls (lab.service, lab.present); nothing in the
core imports this package.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def run(extra_scenario_dirs: Iterable[Path] = ()) -> None:
    from lab.scenarios.catalog import Catalog
    from lab.tui.app import LabApp

    LabApp(Catalog.default(extra_scenario_dirs)).run()
