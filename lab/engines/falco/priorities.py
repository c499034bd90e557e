"""Falco's rule priorities (falco_common.cpp): names, parsing, ordering.

A priority is kept as its index in PRIORITIES: 0 is the most severe, so a rule
passes a minimum-priority filter when its index is <= the minimum's.
"""

from __future__ import annotations

# Most severe first, spelled as Falco prints them in alerts.
PRIORITIES = (
    "Emergency",
    "Alert",
    "Critical",
    "Error",
    "Warning",
    "Notice",
    "Informational",
    "Debug",
)

INFORMATIONAL = PRIORITIES.index("Informational")
DEBUG = PRIORITIES.index("Debug")


def parse_priority(text: str) -> int | None:
    """The index of a priority name, case-insensitive; "info" is Informational (legacy)."""
    low = text.lower()
    for i, name in enumerate(PRIORITIES):
        if low == name.lower():
            return i
    if low == "info":
        return INFORMATIONAL
    return None


def format_priority(index: int) -> str:
    return PRIORITIES[index]
