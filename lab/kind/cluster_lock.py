"""The per-cluster lock: one `up`/`down` at a time, and whether one is running.

An flock on a file beside the cluster's folder (which `down` removes), apart from
the lifecycle so `status` can ask whether it is held without importing `up`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lab.errors import LabError
from lab.kind.cluster_state import ClusterHandle, clusters_dir

LOCK_TRIES = 10  # a `status` may hold the lock for a moment to look at it


def lock_file(handle: ClusterHandle) -> Path:
    # beside the cluster's folder, which `down` removes
    return clusters_dir() / f".{handle.name}.lock"


def lock_held(handle: ClusterHandle) -> bool:
    """Whether a `cks-lab up` or `down` (in any process) holds the cluster's lock."""
    try:
        import fcntl
    except ImportError:
        return False
    try:
        fd = os.open(lock_file(handle), os.O_RDONLY)
    except OSError:
        return False  # never locked since the lab made its folder
    try:
        # shared: it never stops another status; a held exclusive lock refuses it
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing releases a lock taken here
    return False


@contextmanager
def exclusive(handle: ClusterHandle) -> Iterator[None]:
    """One `up`/`down` per cluster at a time: a second one (the TUI and the CLI
    at once) would take the first one's half-made cluster for an interrupted one."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no kind backend there anyway
        yield
        return
    clusters_dir().mkdir(parents=True, exist_ok=True)
    with open(lock_file(handle), "a") as fh:
        for attempt in range(LOCK_TRIES):
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == LOCK_TRIES - 1:
                    raise LabError(
                        f"another `cks-lab up` or `down` is working on kind cluster "
                        f"{handle.name!r}; wait for it to finish"
                    ) from None
                time.sleep(0.1)  # a `status` looking at the lock lets go at once
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
