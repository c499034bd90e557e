"""The embedded backend: node trees on disk, attacks replayed through the engines."""

from lab.backends.sim.backend import SimBackend

__all__ = ["SimBackend"]
