"""The kind backend: scenarios run against a real kind cluster on the learner's machine."""

from lab.backends.kind.backend import KindBackend

__all__ = ["KindBackend"]
