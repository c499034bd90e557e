"""Small text helpers the screens share (no widgets here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lab.scenarios.model import Scenario

SKILL_ORDER = {"audit-logging": 0, "falco": 1, "apparmor": 2}
LEVEL_ORDER = {"easy": 0, "medium": 1, "hard": 2}


def scenario_points(m: Scenario) -> int:
    return sum(c.points for t in m.tasks for c in t.checks)


def clock_text(seconds: float) -> str:
    s = max(0, int(seconds))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60:02d}:{rest % 60:02d}"
