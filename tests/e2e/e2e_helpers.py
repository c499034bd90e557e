"""Helpers of the kind e2e suite: why it cannot run here, and running `cks-lab`."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

CLUSTER = "cks-lab-e2e"


def why_not() -> str | None:
    if shutil.which("kind") is None:
        return "kind is not installed (the kind backend's e2e tests need kind v0.32+)"
    if shutil.which("docker") is None:
        return "the docker CLI is not installed"
    try:
        info = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"docker info failed: {e}"
    if info.returncode != 0:
        return "no Docker engine is reachable (docker info failed)"
    return None


def cks_lab(home: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run `cks-lab ARGS` with the lab's data under HOME, as a learner's shell would."""
    exe = shutil.which("cks-lab")
    assert exe, "cks-lab is not on PATH (pip install the project first)"
    env = {**os.environ, "CKS_LAB_HOME": str(home)}
    return subprocess.run(
        [exe, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
