"""Check types. Importing this package registers every check in REGISTRY."""

from lab.grading.checks import answer, apparmor, audit, falco  # noqa: F401  (register their checks)
from lab.grading.checks.base import REGISTRY, Context, Outcome, parse_params

__all__ = ["REGISTRY", "Context", "Outcome", "parse_params"]
