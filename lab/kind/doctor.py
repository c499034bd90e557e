"""`cks-lab doctor`: can this host run the kind backend, and what to do if not.

Every look at the host goes through a `Probe`, so the checks are pure functions of
what the probe returns and the tests feed them real command output. No docker or
kubernetes package is imported: the CLIs are what the kind backend drives, and
the doctor must work before anything else is installed.
"""

from __future__ import annotations

import ipaddress
import json
import os
import platform
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

# kind v0.32 is the release that ships the Kubernetes 1.36 node image the lab's
# kind configs (kubeadm v1beta4 patches) are written for.
MIN_KIND = (0, 32, 0)
KUBERNETES_MINOR = 36  # the node image's minor version; kubectl may be one off
MIN_MEMORY = 4 * 1024**3  # a kind control-plane + worker + Falco
MIN_DISK = 10 * 1024**3  # the node image (~1 GiB unpacked x2) + Falco + logs
TIMEOUT = 15.0

STATUSES = ("ok", "warn", "fail", "skip")

DAEMON_DOWN = "Cannot connect to the Docker daemon"
PERMISSION = "permission denied"

APPARMOR_ENABLED = "/sys/module/apparmor/parameters/enabled"
BTF = "/sys/kernel/btf/vmlinux"
CGROUP_ROOT = "/sys/fs/cgroup"
CGROUP_V2 = "/sys/fs/cgroup/cgroup.controllers"
MEMINFO = "/proc/meminfo"


@dataclass(frozen=True)
class Check:
    """One row: what was checked, its status, what was found, and the fix (if any)."""

    name: str
    status: str  # one of STATUSES
    found: str
    fix: str = ""


class Probe(Protocol):
    """The host as the checks see it."""

    def run(self, argv: Sequence[str]) -> tuple[int, str, str]:
        """(returncode, stdout, stderr); FileNotFoundError when argv[0] is not installed."""
        ...

    def read_text(self, path: str) -> str | None:
        """The file's text, or None when it does not exist or cannot be read."""
        ...

    def exists(self, path: str) -> bool: ...

    def disk_free(self, path: str) -> int:
        """Free bytes on the filesystem holding `path` (which may not exist yet)."""
        ...

    def system(self) -> str:
        """platform.system(): "Linux", "Darwin", ..."""
        ...


class HostProbe:
    """The real host."""

    def run(self, argv: Sequence[str]) -> tuple[int, str, str]:
        if shutil.which(argv[0]) is None:
            raise FileNotFoundError(argv[0])
        try:
            out = subprocess.run(list(argv), capture_output=True, text=True, timeout=TIMEOUT,
                                 errors="replace", check=False)
        except subprocess.TimeoutExpired:
            # a hung daemon socket must not hang the doctor
            return 124, "", f"{argv[0]} did not answer within {TIMEOUT:.0f} s"
        return out.returncode, out.stdout, out.stderr

    def read_text(self, path: str) -> str | None:
        try:
            return Path(path).read_text(errors="replace")
        except OSError:
            return None

    def exists(self, path: str) -> bool:
        return Path(path).exists()

    def disk_free(self, path: str) -> int:
        p = Path(path)
        # the data dir is created on first use: measure the filesystem it will live on
        while not p.exists() and p != p.parent:
            p = p.parent
        return shutil.disk_usage(p).free

    def system(self) -> str:
        return platform.system()


def _first_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line:
            # command output is shown to the learner: no raw escapes
            return "".join(c if c.isprintable() else "?" for c in line)[:200]
    return ""


def _gib(n: int) -> str:
    return f"{n / 1024**3:.1f} GiB"


def check_docker(probe: Probe) -> Check:
    fix_install = ("install Docker Engine (Linux: your distribution's docker.io or "
                   "https://docs.docker.com/engine/install/) or Docker Desktop (macOS)")
    try:
        rc, out, err = probe.run(["docker", "version", "--format", "{{json .}}"])
    except FileNotFoundError:
        return Check("docker", "fail", "docker CLI not found on PATH", fix_install)
    try:
        info: Any = json.loads(out) if out.strip() else {}
    except json.JSONDecodeError:
        info = {}
    if not isinstance(info, dict):
        info = {}
    client = info.get("Client") if isinstance(info.get("Client"), dict) else {}
    server = info.get("Server") if isinstance(info.get("Server"), dict) else None
    cli = f"CLI {client.get('Version', '?')}" if client else "CLI present"
    if rc == 0 and server:
        found = f"{cli}; daemon {server.get('Version', '?')} reachable"
        remote = _remote_endpoint(probe)
        if remote:
            return Check("docker", "warn", f"{found} at {remote}: kind would publish the API "
                         "server's port on that machine, where the lab cannot reach it",
                         "use a local daemon: unset DOCKER_HOST, or `docker context use "
                         "default` (Docker Desktop's own context is local too)")  # fmt: skip
        return Check("docker", "ok", found)
    reason = _first_line(err) or _first_line(out) or f"docker version exited {rc}"
    if PERMISSION in reason.lower():
        fix = ("let your user use the daemon: `sudo usermod -aG docker $USER`, then log out "
               "and back in (or use rootless Docker)")
    elif DAEMON_DOWN in reason:
        fix = ("start the daemon: `sudo systemctl start docker` (Linux) or open Docker "
               "Desktop (macOS), then run `cks-lab doctor` again")
    else:
        fix = "make `docker version` show a Server section, then run `cks-lab doctor` again"
    return Check("docker", "fail", f"{cli}; daemon not reachable: {reason}", fix)


def _remote_endpoint(probe: Probe) -> str | None:
    """The daemon's address when it is on another machine (tcp:// or ssh:// to a host
    that is not this one); None for a local socket or loopback."""
    host = os.environ.get("DOCKER_HOST", "")
    if not host:
        try:
            rc, out, _ = probe.run(
                ["docker", "context", "inspect", "--format", "{{.Endpoints.docker.Host}}"]
            )
        except FileNotFoundError:
            return None
        host = out.strip() if rc == 0 else ""
    if not host.startswith(("tcp://", "ssh://")):
        return None
    name = (urlsplit(host).hostname or "").lower()
    if name == "localhost":
        return None
    try:
        return None if ipaddress.ip_address(name).is_loopback else host
    except ValueError:
        return host


def parse_kind_version(text: str) -> tuple[int, int, int] | None:
    """`kind version` prints "kind v0.32.0 go1.25.5 linux/amd64"."""
    m = re.search(r"\bv(\d+)\.(\d+)\.(\d+)", text)
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def check_kind(probe: Probe) -> Check:
    want = "v" + ".".join(map(str, MIN_KIND))
    upgrade = (f"install kind {want} or newer: `go install sigs.k8s.io/kind@{want}` or the "
               "release binary from https://kind.sigs.k8s.io/docs/user/quick-start/#installation")
    try:
        rc, out, err = probe.run(["kind", "version"])
    except FileNotFoundError:
        return Check("kind", "fail", "kind not found on PATH (the sim backend works without it)",
                     upgrade)
    line = _first_line(out) or _first_line(err)
    version = parse_kind_version(line) if rc == 0 else None
    if version is None:
        return Check("kind", "warn", f"could not read the version: {line or f'exit {rc}'}",
                     upgrade)
    if version < MIN_KIND:
        return Check("kind", "warn",
                     f"{line}: older than {want}, which ships the Kubernetes 1.36 node image "
                     "the lab's configs are written for", upgrade)
    return Check("kind", "ok", line)


def check_kubectl(probe: Probe) -> Check:
    fix = (f"install kubectl 1.{KUBERNETES_MINOR} (1.{KUBERNETES_MINOR - 1}-"
           f"1.{KUBERNETES_MINOR + 1} work): https://kubernetes.io/docs/tasks/tools/")
    try:
        rc, out, err = probe.run(["kubectl", "version", "--client", "-o", "json"])
    except FileNotFoundError:
        return Check("kubectl", "fail", "kubectl not found on PATH", fix)
    try:
        data: Any = json.loads(out)
        client = data["clientVersion"]
        git_version = str(client["gitVersion"])
        # "minor" is "36" from a release build, "36+" from some vendors' builds
        minor = int(re.sub(r"\D", "", str(client["minor"])))
    except (ValueError, KeyError, TypeError):
        return Check("kubectl", "warn",
                     f"could not read the version: {_first_line(err) or _first_line(out)}", fix)
    if abs(minor - KUBERNETES_MINOR) > 1:
        # kubectl supports one minor version either side of the apiserver
        return Check("kubectl", "warn",
                     f"client {git_version}: outside the supported skew of the cluster's "
                     f"Kubernetes 1.{KUBERNETES_MINOR}", fix)
    return Check("kubectl", "ok", f"client {git_version}")


def _darwin_skip(name: str, what: str) -> Check:
    return Check(name, "skip", f"macOS: {what} is decided by Docker Desktop's Linux VM, not "
                 "this host")


def check_apparmor(probe: Probe) -> Check:
    if probe.system() == "Darwin":
        return Check("apparmor", "skip", "macOS: Docker Desktop's VM has no AppArmor; the "
                     "AppArmor scenarios run on the sim backend")
    value = probe.read_text(APPARMOR_ENABLED)
    if value is None:
        return Check("apparmor", "warn", f"no AppArmor in this kernel ({APPARMOR_ENABLED} "
                     "missing, e.g. an SELinux host); the AppArmor scenarios run on the sim "
                     "backend", "nothing to do unless you want them on kind: use a host with "
                     "AppArmor (Ubuntu, Debian, openSUSE)")
    if value.strip() != "Y":
        return Check("apparmor", "warn", f"AppArmor is disabled ({APPARMOR_ENABLED} is "
                     f"{value.strip()!r}); the AppArmor scenarios run on the sim backend",
                     "to run them on kind, boot with `apparmor=1 security=apparmor` on the "
                     "kernel command line")
    return Check("apparmor", "ok", "enabled")


def check_btf(probe: Probe) -> Check:
    if probe.system() == "Darwin":
        return _darwin_skip("btf", "BTF for Falco's modern eBPF driver")
    if probe.exists(BTF):
        return Check("btf", "ok", f"{BTF} present (Falco's modern_ebpf driver can load)")
    return Check("btf", "warn", f"{BTF} missing: Falco's modern_ebpf driver cannot load, so "
                 "Falco alerts come from the sim backend",
                 "use a kernel built with CONFIG_DEBUG_INFO_BTF=y (5.8 or newer; most "
                 "distributions' kernels since 2021 are)")


def check_cgroup(probe: Probe) -> Check:
    if probe.system() == "Darwin":
        return _darwin_skip("cgroup", "the cgroup version")
    if probe.exists(CGROUP_V2):
        return Check("cgroup", "ok", "v2 (unified)")
    if probe.exists(CGROUP_ROOT):
        return Check("cgroup", "fail", "v1: the Kubernetes 1.36 kubelet refuses to start on "
                     "cgroup v1 by default", "boot with `systemd.unified_cgroup_hierarchy=1` on "
                     "the kernel command line (the default on current distributions)")
    return Check("cgroup", "warn", f"{CGROUP_ROOT} not found: cannot tell the cgroup version",
                 "mount the cgroup filesystem (cgroup v2) at /sys/fs/cgroup")


def check_memory(probe: Probe) -> Check:
    if probe.system() == "Darwin":
        return Check("memory", "skip", "macOS: the cluster lives in Docker Desktop's VM",
                     f"give it at least {_gib(MIN_MEMORY)} in Docker Desktop > Settings > "
                     "Resources")
    text = probe.read_text(MEMINFO) or ""
    m = re.search(r"^MemAvailable:\s+(\d+)\s*kB", text, re.MULTILINE)
    if not m:
        return Check("memory", "warn", f"could not read MemAvailable from {MEMINFO}")
    avail = int(m[1]) * 1024
    if avail < MIN_MEMORY:
        return Check("memory", "warn", f"{_gib(avail)} available; kind with Falco wants about "
                     f"{_gib(MIN_MEMORY)}", "close memory-hungry programs, or expect slow "
                     "or failing cluster starts")
    return Check("memory", "ok", f"{_gib(avail)} available")


def check_disk(probe: Probe, data_dir: Path) -> Check:
    try:
        free = probe.disk_free(str(data_dir))
    except OSError as e:
        return Check("disk", "warn", f"cannot measure free space for {data_dir}: {e}")
    if free < MIN_DISK:
        return Check("disk", "warn", f"{_gib(free)} free for {data_dir}; the node image, Falco "
                     f"and logs want about {_gib(MIN_DISK)}", "free some space (`docker system "
                     "prune` removes unused images), or point CKS_LAB_HOME at a bigger disk")
    return Check("disk", "ok", f"{_gib(free)} free for {data_dir}")


def run_checks(probe: Probe, data_dir: Path) -> list[Check]:
    """Every check, in the order a learner fixes them."""
    checks: list[Callable[[Probe], Check]] = [
        check_docker, check_kind, check_kubectl, check_apparmor, check_btf, check_cgroup,
        check_memory,
    ]
    return [c(probe) for c in checks] + [check_disk(probe, data_dir)]


def failed(checks: Sequence[Check]) -> bool:
    return any(c.status == "fail" for c in checks)


def to_json(checks: Sequence[Check]) -> dict[str, Any]:
    return {"ok": not failed(checks), "checks": [asdict(c) for c in checks]}


def render_text(checks: Sequence[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{c.status.upper():4}  {c.name:<{width}}  {c.found}")
        if c.fix and c.status != "ok":
            lines.append(f"{'':4}  {'':<{width}}  fix: {c.fix}")
    counts = {s: sum(c.status == s for c in checks) for s in STATUSES}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    verdict = ("the kind backend cannot run here yet; the sim backend works"
               if failed(checks) else "ready for the kind backend")
    lines.append(f"{summary}: {verdict}")
    return "\n".join(lines)
