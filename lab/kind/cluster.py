"""The lab's kind cluster: create or reuse it (`up`), delete it (`down`), look at it (`status`).

Each cluster has a folder, data_dir()/kind/<name>, holding what kind is given
and what the lab must find again: the rendered kind config, the kubeconfig
(kind writes it there, never into ~/.kube/config), audit-policy/ and audit-log/
(mounted into the control-plane node), and state.json — the phase, the config's
digest and when it was created.

state.json is written "creating" before kind starts and "ready" after it
succeeds, so a cancelled or crashed `up` leaves a trace the next `up` finishes
(it deletes the half-made cluster and creates it again) and `down` cleans.
"created" means kind made the cluster but its nodes were not Ready (kind's
--wait ran out, or stopped nodes were started again): the next `up` checks again.
It also records "apparmor": whether the nodes got the host's AppArmor interface.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.fsutil import atomic_write_bytes, atomic_write_json
from lab.kind import kind_cli
from lab.kind.config import (
    SECURITYFS,
    check_cluster_name,
    check_config,
    drop_mounts,
    file_volumes,
    node_count,
    render_config,
)
from lab.kind.kind_cli import NodeState
from lab.kind.runner import CommandNotFound, CommandResult, Runner
from lab.work import Progress, ProgressEvent

DEFAULT_NAME = "cks-lab"
CONFIG_FILE = "kind-config.yaml"
CREATE_TIMEOUT = 1800.0  # the first create pulls a ~1 GiB node image
QUERY_TIMEOUT = 30.0
DELETE_TIMEOUT = 300.0
READY_TIMEOUT = 120.0  # how long `up` waits for the nodes of an existing cluster to be Ready
READY_POLL = 2.0
START_TIMEOUT = 30.0  # how long started node containers get to show as running
LOCK_TRIES = 10  # a `status` may hold the lock for a moment to look at it

PHASES = ("absent", "creating", "created", "ready", "broken")
# state.json "phase": creating (kind is, or was when interrupted), created (made,
# nodes not yet seen Ready), ready, failed
_CREATING, _CREATED, _READY, _FAILED = "creating", "created", "ready", "failed"
_STARTABLE = ("exited", "created")  # docker states `docker start` brings back

# Written before `kind create` when the config's API server reads a policy file
# from the audit-policy folder (kubeadm fails on a missing File volume).
DEFAULT_AUDIT_POLICY = """\
# cks-lab's starting audit policy: the API server of this cluster reads a policy
# file at start-up. Scenarios replace it; edit it as a scenario asks.
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: Metadata
"""


@dataclass(frozen=True)
class ClusterHandle:
    name: str
    dir: Path

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    @property
    def state_file(self) -> Path:
        return self.dir / "state.json"

    @property
    def config_file(self) -> Path:
        return self.dir / CONFIG_FILE

    @property
    def audit_policy_dir(self) -> Path:
        return self.dir / "audit-policy"

    @property
    def audit_log_dir(self) -> Path:
        return self.dir / "audit-log"


def clusters_dir() -> Path:
    from lab.paths import data_dir

    return data_dir().resolve() / "kind"


def cluster_handle(name: str = DEFAULT_NAME) -> ClusterHandle:
    """The cluster `name` (checked: a lab cluster name) and its folder."""
    check_cluster_name(name)
    return ClusterHandle(name, clusters_dir() / name)


def known_clusters() -> list[ClusterHandle]:
    """The clusters this lab has a folder for (made, or being made, by `up`)."""
    root = clusters_dir()
    if not root.is_dir():
        return []
    out = []
    for d in sorted(root.iterdir()):
        if d.is_dir() and kind_cli_name_ok(d.name):
            out.append(ClusterHandle(d.name, d))
    return out


def kind_cli_name_ok(name: str) -> bool:
    try:
        check_cluster_name(name)
    except LabError:
        return False
    return True


@dataclass
class ClusterStatus:
    name: str
    exists: bool  # kind lists it
    nodes: list[NodeState]
    phase: str  # one of PHASES
    ready: bool
    detail: list[str] = field(default_factory=list)
    kubeconfig: Path | None = None  # when the lab's kubeconfig file is there
    created: str | None = None  # when `up` created it (UTC, ISO 8601)
    config_digest: str | None = None
    missing: list[str] = field(default_factory=list)  # kind/docker not installed
    errors: list[str] = field(default_factory=list)  # kind/docker answered with an error

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "phase": self.phase,
            "ready": self.ready,
            "exists": self.exists,
            "nodes": [
                {"name": n.name, "role": n.role, "state": n.state, "status": n.status, "id": n.id}
                for n in self.nodes
            ],
            "kubeconfig": str(self.kubeconfig) if self.kubeconfig else None,
            "created": self.created,
            "config_digest": self.config_digest,
            "detail": list(self.detail),
        }


class ClusterCancelled(LabError):
    """`up` was cancelled while kind created the cluster."""


class ClusterCreateError(LabError):
    """kind failed; `kind_lines` is what it said (its failed step, ERROR, output)."""

    def __init__(self, message: str, kind_lines: list[str]) -> None:
        super().__init__(message)
        self.kind_lines = kind_lines


class ConfigChanged(LabError):
    """The cluster exists but was made from another config: recreate it to change."""


class ClusterNotReady(LabError):
    """The cluster exists but its nodes are not Ready (yet); `status` says how it is."""

    def __init__(self, message: str, status: ClusterStatus) -> None:
        super().__init__(message)
        self.status = status


def _default_runner(runner: Runner | None) -> Runner:
    if runner is not None:
        return runner
    from lab.kind.runner import SubprocessRunner

    return SubprocessRunner()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_state(handle: ClusterHandle) -> dict[str, Any]:
    try:
        data = json.loads(handle.state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_state(handle: ClusterHandle, **values: Any) -> None:
    state = read_state(handle)
    state.update(values, name=handle.name)
    atomic_write_json(handle.state_file, state)


def config_digest(config_text: str, image: str = kind_cli.NODE_IMAGE) -> str:
    """What the cluster is made from: the rendered config and the node image."""
    return hashlib.sha256(f"{image}\n{config_text}".encode()).hexdigest()


def cluster_has_apparmor(handle: ClusterHandle) -> bool | None:
    """Whether `up` gave the cluster's nodes the host's AppArmor interface (the Docker
    daemon confines with AppArmor); None when not recorded (no cluster, or an older lab).
    Without it the AppArmor scenarios run on the sim backend."""
    value = read_state(handle).get("apparmor")
    return value if isinstance(value, bool) else None


def status(handle: ClusterHandle, *, runner: Runner | None = None) -> ClusterStatus:
    """What kind, docker and the lab's state say about the cluster; never raises for
    a missing kind or docker (it says so in `detail`)."""
    check_cluster_name(handle.name)
    return _status(handle, _default_runner(runner), look_at_lock=True)


def _status(handle: ClusterHandle, run: Runner, *, look_at_lock: bool) -> ClusterStatus:
    state = read_state(handle)
    detail: list[str] = []
    missing: list[str] = []
    errors: list[str] = []
    exists = False
    try:
        res = run.run(kind_cli.get_clusters_argv(), timeout=QUERY_TIMEOUT)
        if res.code == 0:
            exists = handle.name in kind_cli.parse_get_clusters(res.stdout)
        else:
            errors.append(f"`kind get clusters` failed: {_first(res)}")
    except CommandNotFound as e:
        detail.append(e.message)
        missing.append(e.program)
    nodes: list[NodeState] = []
    try:
        res = run.run(kind_cli.node_ps_argv(handle.name), timeout=QUERY_TIMEOUT)
        if res.code == 0:
            nodes = kind_cli.parse_node_ps(res.stdout, handle.name)
        else:
            errors.append(f"`docker ps` failed: {_first(res)}")
    except CommandNotFound as e:
        detail.append(e.message)
        missing.append(e.program)
    detail.extend(errors)
    kubeconfig = handle.kubeconfig if handle.kubeconfig.is_file() else None
    recorded = state.get("phase")
    stopped = [n for n in nodes if not n.running]

    busy = look_at_lock and _lock_held(handle)
    if busy and recorded != _CREATING:
        detail.append("another cks-lab is running `up` or `down` on it right now")

    if recorded == _CREATING:
        phase = "creating"
        detail.append(
            "it is being created by another cks-lab (a `cks-lab up` is running): wait for it"
            if busy
            else "a `cks-lab up` was interrupted while creating it: `cks-lab up` deletes and "
            "recreates it, `cks-lab down` removes it"
        )
    elif not exists and not nodes:
        phase = "absent"
        if recorded == _FAILED:
            detail.append(f"the last `cks-lab up` failed: {state.get('error', '?')}")
    elif not nodes or stopped or not exists:
        phase = "broken"
        for n in stopped:
            detail.append(f"node {n.name} is {n.state} ({n.status or 'no status'})")
        if not nodes:
            detail.append("kind lists it but docker shows no node containers")
        elif exists and recorded in (_READY, _CREATED) and _startable(stopped):
            detail.append("its node containers are stopped: `cks-lab up` starts them again")
    elif recorded == _FAILED:
        phase = "broken"
        detail.append(f"the last `cks-lab up` failed: {state.get('error', '?')}")
    elif recorded not in (_READY, _CREATED):
        phase = "created"
        detail.append(
            "kind has this cluster but the lab did not create it (or lost its record): "
            "`cks-lab up --recreate` makes it the lab's"
        )
    elif kubeconfig is None:
        phase = "broken"
        detail.append(f"its kubeconfig {handle.kubeconfig} is missing")
    elif recorded == _CREATED:
        phase = "created"
        detail.append(
            "its nodes were not Ready when last checked (they may still be starting): "
            "`cks-lab up` checks again"
        )
    else:
        phase = "ready"
    return ClusterStatus(
        handle.name,
        exists,
        nodes,
        phase,
        phase == "ready",
        detail,
        kubeconfig,
        state.get("created"),
        state.get("config_digest"),
        missing,
        errors,
    )


def _startable(stopped: list[NodeState]) -> bool:
    return bool(stopped) and all(n.state in _STARTABLE for n in stopped)


def _first(res: CommandResult) -> str:
    lines = [ln.strip() for ln in res.lines if ln.strip()]
    return lines[-1] if lines else f"exit status {res.code}"


def _check(text: str, source: str) -> str:
    problems = check_config(text)
    if problems:
        raise LabError(
            f"the kind config is not what kind v0.32 needs: {'; '.join(problems)}",
            file=source,
        )
    return text


def _render(handle: ClusterHandle, template: Path) -> str:
    return _check(render_config(template, handle.dir, handle.name), str(template))


def for_host(text: str, apparmor: bool) -> str:
    """The rendered config as this host can run it: without the Docker daemon's
    AppArmor, no node gets the host's /sys/kernel/security. (docker would have to
    create it as a mount source, which fails under sysfs, and the mount would hand
    any privileged pod the host's AppArmor interface for nothing.)"""
    if apparmor:
        return text
    return drop_mounts(
        text,
        SECURITYFS,
        "Rendered by cks-lab for a Docker daemon without AppArmor: the nodes do not get\n"
        f"the host's {SECURITYFS}, so the AppArmor scenarios run on the sim backend.",
    )


def docker_has_apparmor(run: Runner) -> bool:
    """Whether the Docker daemon confines containers with AppArmor (`docker info`)."""
    res = run.run(kind_cli.docker_security_argv(), timeout=QUERY_TIMEOUT)
    if res.code != 0:
        raise LabError(
            f"`docker info` failed: {_first(res)}; `cks-lab doctor` checks docker and kind"
        )
    return kind_cli.has_apparmor(kind_cli.parse_security_options(res.stdout))


def _lock_file(handle: ClusterHandle) -> Path:
    # beside the cluster's folder, which `down` removes
    return clusters_dir() / f".{handle.name}.lock"


def _lock_held(handle: ClusterHandle) -> bool:
    """Whether a `cks-lab up` or `down` (in any process) holds the cluster's lock."""
    try:
        import fcntl
    except ImportError:
        return False
    try:
        fd = os.open(_lock_file(handle), os.O_RDONLY)
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
def _exclusive(handle: ClusterHandle) -> Iterator[None]:
    """One `up`/`down` per cluster at a time: a second one (the TUI and the CLI
    at once) would take the first one's half-made cluster for an interrupted one."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no kind backend there anyway
        yield
        return
    clusters_dir().mkdir(parents=True, exist_ok=True)
    with open(_lock_file(handle), "a") as fh:
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


def up(
    handle: ClusterHandle,
    template: Path,
    progress: Progress,
    *,
    runner: Runner | None = None,
    cancel: threading.Event | None = None,
    recreate: bool = False,
) -> ClusterStatus:
    """Create the cluster from `template`, or reuse it when it is healthy and made
    from the same config. A half-made or broken one is deleted and recreated;
    one made from another config only with `recreate` (else ConfigChanged). One
    whose node containers stopped is started again; one whose nodes are not Ready
    raises ClusterNotReady (the next `up` checks again)."""
    check_cluster_name(handle.name)
    with _exclusive(handle):
        return _up(handle, template, progress, _default_runner(runner), cancel, recreate)


def _up(
    handle: ClusterHandle,
    template: Path,
    progress: Progress,
    run: Runner,
    cancel: threading.Event | None,
    recreate: bool,
) -> ClusterStatus:
    rendered = _render(handle, template)  # a bad config stops before docker is asked
    st = _status(handle, run, look_at_lock=False)
    if st.missing:
        raise CommandNotFound(st.missing[0])
    if st.errors:  # e.g. the docker daemon is down: kind would fail the same way
        raise LabError(
            f"cannot see kind cluster {handle.name!r}: {'; '.join(st.errors)}; "
            "`cks-lab doctor` checks docker and kind"
        )
    apparmor = docker_has_apparmor(run)
    text = _check(for_host(rendered, apparmor), str(template))
    digest = config_digest(text)
    recorded = read_state(handle).get("phase")
    ours = recorded in (_READY, _CREATED)  # made by the lab, kind finished

    if st.phase == "ready" and st.config_digest == digest:
        progress(f"Reusing kind cluster {handle.name}: its {len(st.nodes)} nodes are running")
        return st
    stopped = [n for n in st.nodes if not n.running]
    restartable = (
        ours
        and st.exists
        and st.kubeconfig is not None
        and _startable(stopped)
        and len(st.nodes) == node_count(text)
    )
    if not recreate and ours and st.config_digest == digest:
        if restartable:
            return _restart(handle, stopped, progress, run, cancel)
        if st.phase == "created":
            progress(f"Kind cluster {handle.name} exists; checking that its nodes are Ready")
            return _promote(handle, progress, run, cancel)
    if (st.phase in ("ready", "created") or restartable) and not recreate:
        why = (
            "was created from another kind config or node image (or for a Docker daemon "
            "with other AppArmor support)"
            if ours
            else "exists but the lab has no record of creating it"
        )
        raise ConfigChanged(
            f"kind cluster {handle.name!r} {why}; run `cks-lab up --recreate` to delete and "
            "recreate it (its scenario state is lost), or `cks-lab down` first"
        )
    if st.phase != "absent":
        reason = {
            "creating": "was left half-made by an interrupted `cks-lab up`",
            "broken": "is not healthy (" + "; ".join(st.detail[:2]) + ")",
        }.get(st.phase, "is to be recreated")
        progress(f"Kind cluster {handle.name} {reason}: deleting it and creating it again")
        _delete(handle, progress, run, cancel)
    if cancel is not None and cancel.is_set():
        raise ClusterCancelled(
            f"cancelled before creating kind cluster {handle.name!r}: `cks-lab up` creates it"
        )
    return _create(handle, text, digest, apparmor, progress, run, cancel)


def _prepare_host(handle: ClusterHandle, text: str) -> None:
    """The host side of the config's mounts, before kind runs: the folders, and the
    files kubeadm mounts with pathType File (it refuses to start without them)."""
    for d in (handle.dir, handle.audit_policy_dir, handle.audit_log_dir):
        d.mkdir(parents=True, exist_ok=True)
    policy = handle.audit_policy_dir / "policy.yaml"
    for node_path, host in file_volumes(text):
        if host is None:
            continue  # the node image's own file
        if Path(host) == policy and not policy.exists():
            atomic_write_bytes(policy, DEFAULT_AUDIT_POLICY.encode())
        elif not Path(host).is_file():
            raise LabError(
                f"the kind config has kubeadm mount {node_path} (pathType File) from {host} "
                "on this host, which is not a file: kubeadm would fail to start the "
                "control plane; create it first"
            )


def _create(
    handle: ClusterHandle,
    text: str,
    digest: str,
    apparmor: bool,
    progress: Progress,
    run: Runner,
    cancel: threading.Event | None,
) -> ClusterStatus:
    _prepare_host(handle, text)
    atomic_write_bytes(handle.config_file, text.encode())
    handle.kubeconfig.unlink(missing_ok=True)  # a stale one must not pass for the new cluster
    _write_state(
        handle,
        phase=_CREATING,
        config_digest=digest,
        image=kind_cli.NODE_IMAGE,
        apparmor=apparmor,
        started=_now(),
        created=None,
        error=None,
    )

    def on_line(line: str) -> None:
        event = kind_cli.parse_kind_line(line)
        if event is not None:
            progress(event)

    argv = kind_cli.create_argv(handle.name, handle.config_file, handle.kubeconfig)
    result = run.run(argv, timeout=CREATE_TIMEOUT, on_line=on_line, cancel=cancel)
    if result.cancelled:
        raise ClusterCancelled(
            f"cancelled while creating kind cluster {handle.name!r}: `cks-lab up` finishes it "
            "(deletes the half-made cluster and creates it again), `cks-lab down` removes it"
        )
    if result.code != 0:
        lines = kind_cli.error_lines(result.lines)
        err = next((ln for ln in lines if ln.startswith("ERROR:")), lines[-1] if lines else "")
        err = err.removeprefix("ERROR: ").removeprefix("failed to create cluster: ").strip()
        err = err or f"exit status {result.code}"
        _write_state(handle, phase=_FAILED, error=err)
        if kind_cli.ALREADY_EXISTS in err:
            raise ClusterCreateError(
                f"a kind cluster named {handle.name!r} already exists but the lab cannot use "
                f"it: `cks-lab down --name {handle.name}` deletes it ({err})",
                lines,
            )
        raise ClusterCreateError(
            f"kind could not create cluster {handle.name!r}: {err}; fix the cause and run "
            "`cks-lab up` again (`cks-lab doctor` checks this host)",
            lines,
        )
    if not handle.kubeconfig.is_file():
        _write_state(handle, phase=_FAILED, error="kind wrote no kubeconfig")
        raise LabError(
            f"kind created cluster {handle.name!r} but wrote no kubeconfig at "
            f"{handle.kubeconfig}; `cks-lab up --recreate` tries again"
        )
    if kind_cli.wait_timed_out(result.lines):
        # kind exits 0 when its --wait runs out: the cluster is there, not usable yet
        _write_state(handle, phase=_CREATED, created=_now(), error=None)
        progress(
            ProgressEvent(
                f"Kind cluster {handle.name} is created but its nodes are not Ready yet",
                kind_cli.CREATE_PHASE,
            )
        )
        st = _status(handle, run, look_at_lock=False)
        raise ClusterNotReady(
            f"kind created cluster {handle.name!r} but its nodes were not Ready within "
            f"{kind_cli.WAIT}; they may still be starting: run `cks-lab up` again in a "
            "minute (it checks again), `cks-lab up --recreate` if they never get Ready",
            st,
        )
    _write_state(handle, phase=_READY, created=_now(), error=None)
    progress(ProgressEvent(f"Kind cluster {handle.name} is ready", kind_cli.CREATE_PHASE))
    return _status(handle, run, look_at_lock=False)


def _nodes_ready(handle: ClusterHandle, run: Runner) -> tuple[bool, str]:
    """Whether every node of the cluster is Ready, as the control-plane node's own
    kubectl sees it (what kind's --wait checks); else why not."""
    st = _status(handle, run, look_at_lock=False)
    plane = next((n for n in st.nodes if n.role == "control-plane"), None)
    if plane is None or not plane.running:
        return False, "its control-plane node container is not running"
    res = run.run(kind_cli.node_get_nodes_argv(plane.id), timeout=QUERY_TIMEOUT)
    if res.code != 0:
        return False, f"its API server does not answer yet: {_first(res)}"
    ready = kind_cli.parse_nodes_ready(res.stdout)
    waiting = sorted(name for name, ok in ready.items() if not ok)
    if waiting:
        return False, f"not Ready: {', '.join(waiting)}"
    if len(ready) < len(st.nodes):
        return False, f"{len(ready)} of {len(st.nodes)} nodes have joined"
    return True, ""


def _sleep(cancel: threading.Event | None, seconds: float) -> bool:
    """Wait; True when cancelled meanwhile."""
    if cancel is None:
        time.sleep(seconds)
        return False
    return cancel.wait(seconds)


def _wait_ready(
    handle: ClusterHandle, progress: Progress, run: Runner, cancel: threading.Event | None
) -> tuple[bool, str]:
    progress(f"Waiting ≤ {READY_TIMEOUT:.0f}s for the nodes of {handle.name} to be Ready")
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        ok, why = _nodes_ready(handle, run)
        if ok or time.monotonic() >= deadline:
            return ok, why
        if _sleep(cancel, READY_POLL):
            raise ClusterCancelled(
                f"cancelled while waiting for the nodes of kind cluster {handle.name!r}: "
                "`cks-lab up` checks them again"
            )


def _promote(
    handle: ClusterHandle, progress: Progress, run: Runner, cancel: threading.Event | None
) -> ClusterStatus:
    """A made cluster whose nodes were not Ready: ready once they are."""
    ok, why = _wait_ready(handle, progress, run, cancel)
    if ok:
        _write_state(handle, phase=_READY, error=None)
        progress(f"Kind cluster {handle.name} is ready: all its nodes are Ready")
        return _status(handle, run, look_at_lock=False)
    _write_state(handle, phase=_CREATED)
    raise ClusterNotReady(
        f"the nodes of kind cluster {handle.name!r} are not Ready after "
        f"{READY_TIMEOUT:.0f}s ({why}): run `cks-lab up` again later (it checks again), or "
        "`cks-lab up --recreate` to delete and recreate the cluster",
        _status(handle, run, look_at_lock=False),
    )


def _restart(
    handle: ClusterHandle,
    stopped: list[NodeState],
    progress: Progress,
    run: Runner,
    cancel: threading.Event | None,
) -> ClusterStatus:
    """Node containers that stopped (Docker Desktop quit, a reboot): start them again,
    control plane first, rather than delete the learner's cluster."""
    names = ", ".join(n.name for n in stopped)
    progress(
        f"Kind cluster {handle.name}: its node containers are stopped ({names}); starting them"
    )
    # until its nodes are seen Ready, the next `up` checks (and never deletes) it
    _write_state(handle, phase=_CREATED)
    for n in sorted(stopped, key=lambda n: n.role != "control-plane"):
        progress(f"Starting node container {n.name}")
        res = run.run(kind_cli.docker_start_argv(n.id), timeout=QUERY_TIMEOUT, cancel=cancel)
        if res.cancelled:
            raise ClusterCancelled(
                f"cancelled while starting the nodes of kind cluster {handle.name!r}: "
                "`cks-lab up` starts them"
            )
        if res.code != 0:
            raise LabError(
                f"`docker start {n.name}` failed: {_first(res)}; `cks-lab up --recreate` "
                f"deletes and recreates kind cluster {handle.name!r}"
            )
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        st = _status(handle, run, look_at_lock=False)
        down = [n for n in st.nodes if not n.running]
        if not down:
            break
        if time.monotonic() >= deadline:
            raise ClusterNotReady(
                f"the node containers of kind cluster {handle.name!r} do not stay running "
                f"({', '.join(f'{n.name}: {n.status or n.state}' for n in down)}): "
                "`cks-lab up --recreate` deletes and recreates it",
                st,
            )
        if _sleep(cancel, READY_POLL):
            raise ClusterCancelled(
                f"cancelled while starting the nodes of kind cluster {handle.name!r}: "
                "`cks-lab up` checks them again"
            )
    return _promote(handle, progress, run, cancel)


def _delete(
    handle: ClusterHandle,
    progress: Progress,
    run: Runner,
    cancel: threading.Event | None = None,
) -> None:
    progress(f"Deleting kind cluster {handle.name}")
    res = run.run(
        kind_cli.delete_argv(handle.name, handle.kubeconfig), timeout=DELETE_TIMEOUT, cancel=cancel
    )
    if res.cancelled:
        raise ClusterCancelled(
            f"cancelled while deleting kind cluster {handle.name!r}: `cks-lab up` finishes it "
            "(deletes what is left and creates it again), `cks-lab down` removes it"
        )
    if res.code != 0 and "doesn't exist" not in "\n".join(res.lines):
        raise LabError(
            f"`kind delete cluster --name {handle.name}` failed: {_first(res)}; "
            "`cks-lab doctor` checks docker"
        )


def down(handle: ClusterHandle, progress: Progress, *, runner: Runner | None = None) -> None:
    """Delete the cluster (whatever state it is in) and its folder."""
    check_cluster_name(handle.name)
    _check_own_dir(handle)
    with _exclusive(handle):
        _down(handle, progress, _default_runner(runner))


def _down(handle: ClusterHandle, progress: Progress, run: Runner) -> None:
    try:
        _delete(handle, progress, run)
    except CommandNotFound:
        # without kind there is no cluster it could have made; docker-only leftovers
        # of a cluster would need kind (or `docker rm`) to go, so say so
        try:
            res = run.run(kind_cli.node_ps_argv(handle.name), timeout=QUERY_TIMEOUT)
        except CommandNotFound:
            res = None  # no docker either: then no node container can exist here
        if res is not None and res.code != 0:
            raise LabError(
                f"kind is not installed and docker cannot say whether node containers of "
                f"{handle.name!r} are left ({res.stderr.strip() or f'exit {res.code}'}); "
                "nothing was removed"
            ) from None
        left = kind_cli.parse_node_ps(res.stdout, handle.name) if res is not None else []
        if left:
            raise LabError(
                f"kind is not installed, and node containers of {handle.name!r} are left: "
                f"{', '.join(n.name for n in left)}; install kind and run `cks-lab down` again"
            ) from None
    _remove_dir(handle, progress)


def _check_own_dir(handle: ClusterHandle) -> None:
    """`down` removes only ever the lab's own folder for this cluster."""
    if handle.dir.resolve() != clusters_dir() / handle.name:
        raise LabError(f"refusing to remove {handle.dir}: not the lab's folder for {handle.name!r}")


def _remove_dir(handle: ClusterHandle, progress: Progress) -> None:
    _check_own_dir(handle)
    if not handle.dir.exists():
        return
    left: list[str] = []
    shutil.rmtree(handle.dir, onerror=lambda _f, p, _e: left.append(p))
    if left:
        # the apiserver writes audit logs as root through the mount
        progress(
            f"Could not remove {len(left)} file(s) under {handle.dir} (written as root by the "
            f"cluster?): remove them with `sudo rm -rf {handle.dir}`"
        )
