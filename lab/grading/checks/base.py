"""The check registry: each check type has a parameter model and a function.

A check sees the scenario and the evidence, never the backend that produced it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from lab.errors import LabError
from lab.evidence import Evidence
from lab.scenarios.model import Check, Scenario


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


P = TypeVar("P", bound=Params)


@dataclass(frozen=True)
class Outcome:
    passed: bool
    explanation: str


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
    raw = check.model_dump(exclude={"type", "points"})
    try:
        return ctype, ctype.params.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown parameter for check {check.type!r}"
        raise LabError(msg, item=loc or None) from None
