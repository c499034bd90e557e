"""Which scenarios the kind backend can serve on this host, from `cks-lab doctor`'s checks.

kind nodes share the host's kernel: AppArmor enforcement needs AppArmor enabled
on the host (not on macOS Docker Desktop's VM, not on SELinux hosts), and
Falco's modern eBPF driver needs the kernel's BTF. A scenario needing what the
host lacks is offered on the sim backend instead, with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lab.kind.doctor import Check

# skill -> the doctor check it depends on (beyond what every kind scenario needs)
SKILL_CHECKS = {"apparmor": "apparmor", "falco": "btf"}
# the check statuses that rule the skill out: on macOS the apparmor check is a
# "skip" because Docker Desktop's VM has none; the btf "skip" there means "cannot
# tell from the host", so Falco is tried (its deploy says if the driver fails)
LIMITING = {"apparmor": ("warn", "fail", "skip"), "falco": ("warn", "fail")}
SKILL_NEEDS = {
    "apparmor": "AppArmor scenarios need AppArmor enabled on the host",
    "falco": "Falco's modern eBPF driver needs the kernel's BTF",
}
SIM_OFFER = "offered on the sim backend"


def _checks(report: Sequence[Check] | Mapping[str, Any]) -> list[Check]:
    """The doctor's checks, given as Check rows or as `cks-lab doctor --json`."""
    if isinstance(report, Mapping):
        rows = report.get("checks") or []
        return [
            Check(str(r.get("name", "")), str(r.get("status", "")), str(r.get("found", "")),
                  str(r.get("fix", "")))
            for r in rows if isinstance(r, Mapping)
        ]  # fmt: skip
    return list(report)


def backend_blockers(report: Sequence[Check] | Mapping[str, Any]) -> list[str]:
    """Why the kind backend cannot run here at all (failed checks), or []."""
    return [f"{c.name}: {c.found}" for c in _checks(report) if c.status == "fail"]


def host_limits(
    report: Sequence[Check] | Mapping[str, Any], skills: Iterable[str] = ()
) -> dict[str, str]:
    """{skill: reason} for each skill the kind backend cannot serve on this host.

    AppArmor and Falco are limited by their checks (see LIMITING). When the
    backend cannot run at all, every skill in `skills` is limited too."""
    checks = {c.name: c for c in _checks(report)}
    limits: dict[str, str] = {}
    for skill, name in SKILL_CHECKS.items():
        check = checks.get(name)
        if check is None or check.status not in LIMITING[skill]:
            continue
        limits[skill] = f"{SKILL_NEEDS[skill]} ({check.found})"
    blockers = backend_blockers(report)
    if blockers:
        why = "the kind backend cannot run here: " + "; ".join(blockers)
        for skill in {*skills, *SKILL_CHECKS}:
            limits.setdefault(skill, why)
    return limits


def backend_for_scenario(
    skills: Iterable[str], limits: Mapping[str, str]
) -> tuple[str, str | None]:
    """("kind", None) when the kind backend serves every skill of the scenario here;
    else ("sim", "offered on the sim backend: <reasons>")."""
    reasons: list[str] = []
    for skill in skills:
        reason = limits.get(skill)
        if reason and reason not in reasons:
            reasons.append(reason)
    if not reasons:
        return "kind", None
    return "sim", f"{SIM_OFFER}: " + "; ".join(reasons)
