"""How long something took or is left, one way everywhere: 2h 05m, 12m, 40s."""

from __future__ import annotations


def duration(seconds: float) -> str:
    """Whole seconds, rounded down: 2h 05m, 12m, 40s; 0s for none (or less)."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    h, m = divmod(s // 60, 60)
    return f"{h}h {m:02d}m" if h else f"{m}m"
