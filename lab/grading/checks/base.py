"""The check registry: each check type has a parameter model and a function.

A check sees the scenario and the evidence, never the backend that produced it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from lab.errors import LabError
from lab.evidence import Evidence
from lab.scenarios.model import Check, Scenario
from lab.schema import SchemaError, format_loc, load


class Params:
    """Base of check parameter records (declare them with lab.schema.record)."""


P = TypeVar("P", bound=Params)


@dataclass(frozen=True)
class Outcome:
    passed: bool
    explanation: str
    # A root cause several checks share (the apiserver's start-up error): reports
    # show it once instead of in every explanation.
    cause: str | None = None


@dataclass(frozen=True)
class Context:
    scenario: Scenario
    evidence: Evidence


@dataclass(frozen=True)
class CheckType(Generic[P]):
    name: str
    params: type[P]
    title: Callable[[P], str]
    run: Callable[[P, Context], Outcome]
    steps: Callable[[P], list[str]]  # attack steps the check refers to (validated)


REGISTRY: dict[str, CheckType[Params]] = {}


RunFn = Callable[[Any, Context], Outcome]


def register(
    name: str,
    params: type[Params],
    title: Callable[[Any], str],
    steps: Callable[[Any], list[str]] = lambda p: [],
) -> Callable[[RunFn], RunFn]:
    """Add a check type; `title` and `steps` read the check's validated params."""

    def deco(fn: RunFn) -> RunFn:
        REGISTRY[name] = CheckType(name, params, title, fn, steps)
        return fn

    return deco


def parse_params(check: Check) -> tuple[CheckType[Params], Params]:
    """The check's type and its validated parameters; a located-ready LabError if wrong."""
    ctype = REGISTRY.get(check.type)
    if ctype is None:
        known = ", ".join(sorted(REGISTRY))
        raise LabError(f"unknown check type {check.type!r} (known: {known})", item="type")
    try:
        return ctype, load(ctype.params, check.params)
    except SchemaError as exc:
        loc, msg = exc.errors[0]
        if msg == "unknown field":
            msg = f"unknown parameter for check {check.type!r}"
        raise LabError(msg, item=format_loc(loc) or None) from None
