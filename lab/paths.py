"""Where the lab finds its bundled data and keeps the learner's state."""

from __future__ import annotations

import os
from pathlib import Path

_PKG = Path(__file__).resolve().parent


def _bundled(name: str, checkout_name: str) -> Path:
    # Installed wheel: lab/bundled/<name>; source checkout or editable install:
    # the top-level folder of the repository.
    installed = _PKG / "bundled" / name
    return installed if installed.is_dir() else _PKG.parent / checkout_name


def bundled_scenarios_dir() -> Path:
    return _bundled("scenarios", "scenarios")


def kind_configs_dir() -> Path:
    return _bundled("kind_configs", "kind-configs")


def data_dir() -> Path:
    """The learner's lab home: CKS_LAB_HOME, else the platform's user data dir."""
    env = os.environ.get("CKS_LAB_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("cks-lab", appauthor=False))


def extra_scenario_dirs() -> list[Path]:
    """Instructors' own scenario folders from CKS_LAB_SCENARIOS (os.pathsep-separated)."""
    env = os.environ.get("CKS_LAB_SCENARIOS", "")
    return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
