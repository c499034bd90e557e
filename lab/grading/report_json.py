"""JSON report (schema version 1), for CI and workshop reports."""

from __future__ import annotations

import json
from typing import Any

from lab import __version__
from lab.grading.results import ScenarioResult

SCHEMA_VERSION = 1


def report_dict(results: list[ScenarioResult]) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "tool": f"cks-lab {__version__}",
        "passed": all(r.passed for r in results),
        "points": sum(r.points for r in results),
        "max_points": sum(r.max_points for r in results),
        "scenarios": [r.to_dict() for r in results],
    }


def render_json(results: list[ScenarioResult]) -> str:
    return json.dumps(report_dict(results), indent=2) + "\n"
