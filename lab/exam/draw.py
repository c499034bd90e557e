"""Which scenarios a mock exam holds: drawn like the CKS weighs its domains.

The lab covers two CKS curriculum domains (v1.34): Monitoring, Logging and
Runtime Security, 20 % of the exam, and System Hardening, 15 %. An exam's tasks
are split between them in that ratio (20:15, so about 57 % and 43 %): each draw
picks a domain with a chance proportional to how many tasks it still lacks of
its share, then a scenario of that domain with a chance proportional to the
scenario's own `weight`. A scenario brings all its tasks; drawing stops once at
least the number of tasks asked for is reached (a domain with no scenario left
leaves its share to the other). The same seed draws the same exam.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

# CKS curriculum v1.34, per domain (percent of the exam); domains the lab has
# no weight for count as the smallest share.
DOMAIN_WEIGHTS = {
    "monitoring-logging-runtime-security": 20,
    "system-hardening": 15,
}


@dataclass(frozen=True)
class Candidate:
    """What the draw needs to know of a scenario."""

    id: str
    domain: str
    weight: int
    tasks: int


def domain_shares(domains: Sequence[str]) -> dict[str, float]:
    """Each domain's share of the exam's tasks (summing to 1), by DOMAIN_WEIGHTS."""
    present = sorted(set(domains))
    low = min(DOMAIN_WEIGHTS.values())
    raw = {d: DOMAIN_WEIGHTS.get(d, low) for d in present}
    total = sum(raw.values())
    return {d: w / total for d, w in raw.items()}


def draw(pool: Sequence[Candidate], tasks: int, seed: int) -> list[Candidate]:
    """Scenarios (none twice) covering at least `tasks` tasks, in the order drawn;
    the whole pool, shuffled, when it has no more tasks than that."""
    if tasks < 1:
        raise ValueError("an exam needs at least one task")
    rng = random.Random(seed)
    left = sorted(pool, key=lambda c: c.id)  # the pool's order must not matter
    if sum(c.tasks for c in left) <= tasks:
        rng.shuffle(left)
        return left
    shares = domain_shares([c.domain for c in left])
    got = dict.fromkeys(shares, 0)
    chosen: list[Candidate] = []
    while sum(got.values()) < tasks and left:
        available = sorted({c.domain for c in left})
        lack = {d: shares[d] * tasks - got[d] for d in available}
        wanted = [d for d in available if lack[d] > 0]
        if wanted:
            domain = rng.choices(wanted, weights=[lack[d] for d in wanted])[0]
        else:  # every domain left has its share: the one furthest below it
            domain = max(available, key=lambda d: lack[d])
        options = [c for c in left if c.domain == domain]
        pick = rng.choices(options, weights=[c.weight for c in options])[0]
        left.remove(pick)
        chosen.append(pick)
        got[domain] += pick.tasks
    return chosen
