"""The lab's kind cluster: create or reuse it (`up`), delete it (`down`), look at it (`status`).

Each cluster has a folder, data_dir()/kind/<name>, holding what kind is given
and what the lab must find again: the rendered kind config, the kubeconfig
(kind writes it there, never into ~/.kube/config), audit-policy/ and audit-log/
(mounted into the control-plane node), and state.json — the phase, the config's
digest and when it was created.

state.json is written "creating" before kind starts and "ready" after it
succeeds, so a cancelled or crashed `up` leaves a trace the next `up` finishes
(it deletes the half-made cluster and creates it again) and `down` cleans.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.fsutil import atomic_write_bytes, atomic_write_json
from lab.kind import kind_cli
from lab.kind.config import check_cluster_name, check_config, render_config
from lab.kind.kind_cli import NodeState
from lab.kind.runner import CommandNotFound, CommandResult, Runner
from lab.work import Progress, ProgressEvent

DEFAULT_NAME = "cks-lab"
CONFIG_FILE = "kind-config.yaml"
CREATE_TIMEOUT = 1800.0  # the first create pulls a ~1 GiB node image
QUERY_TIMEOUT = 30.0
DELETE_TIMEOUT = 300.0

PHASES = ("absent", "creating", "created", "ready", "broken")
# state.json "phase": creating (kind is, or was when interrupted), ready, failed
_CREATING, _READY, _FAILED = "creating", "ready", "failed"


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


def status(handle: ClusterHandle, *, runner: Runner | None = None) -> ClusterStatus:
    """What kind, docker and the lab's state say about the cluster; never raises for
    a missing kind or docker (it says so in `detail`)."""
    check_cluster_name(handle.name)
    run = _default_runner(runner)
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

    if recorded == _CREATING:
        phase = "creating"
        detail.append(
            "a `cks-lab up` was interrupted while creating it: `cks-lab up` deletes and "
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
    elif recorded == _FAILED:
        phase = "broken"
        detail.append(f"the last `cks-lab up` failed: {state.get('error', '?')}")
    elif recorded != _READY:
        phase = "created"
        detail.append(
            "kind has this cluster but the lab did not create it (or lost its record): "
            "`cks-lab up --recreate` makes it the lab's"
        )
    elif kubeconfig is None:
        phase = "broken"
        detail.append(f"its kubeconfig {handle.kubeconfig} is missing")
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


def _first(res: CommandResult) -> str:
    lines = [ln.strip() for ln in res.lines if ln.strip()]
    return lines[-1] if lines else f"exit status {res.code}"


def _render(handle: ClusterHandle, template: Path) -> str:
    text = render_config(template, handle.dir, handle.name)
    problems = check_config(text)
    if problems:
        raise LabError(
            f"the kind config is not what kind v0.32 needs: {'; '.join(problems)}",
            file=str(template),
        )
    return text


@contextmanager
def _exclusive(handle: ClusterHandle) -> Iterator[None]:
    """One `up`/`down` per cluster at a time: a second one (the TUI and the CLI
    at once) would take the first one's half-made cluster for an interrupted one."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no kind backend there anyway
        yield
        return
    root = clusters_dir()
    root.mkdir(parents=True, exist_ok=True)
    # beside the cluster's folder, which `down` removes
    with open(root / f".{handle.name}.lock", "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LabError(
                f"another `cks-lab up` or `down` is working on kind cluster {handle.name!r}; "
                "wait for it to finish"
            ) from None
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
    one made from another config only with `recreate` (else ConfigChanged)."""
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
    text = _render(handle, template)
    digest = config_digest(text)
    st = status(handle, runner=run)
    if st.missing:
        raise CommandNotFound(st.missing[0])
    if st.errors:  # e.g. the docker daemon is down: kind would fail the same way
        raise LabError(
            f"cannot see kind cluster {handle.name!r}: {'; '.join(st.errors)}; "
            "`cks-lab doctor` checks docker and kind"
        )

    if st.phase == "ready" and st.config_digest == digest:
        progress(f"Reusing kind cluster {handle.name}: its {len(st.nodes)} nodes are running")
        return st
    if st.phase in ("ready", "created") and not recreate:
        why = (
            "was created from another kind config or node image"
            if st.phase == "ready"
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
        _delete(handle, progress, run)
    return _create(handle, text, digest, progress, run, cancel)


def _create(
    handle: ClusterHandle,
    text: str,
    digest: str,
    progress: Progress,
    run: Runner,
    cancel: threading.Event | None,
) -> ClusterStatus:
    for d in (handle.dir, handle.audit_policy_dir, handle.audit_log_dir):
        d.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(handle.config_file, text.encode())
    handle.kubeconfig.unlink(missing_ok=True)  # a stale one must not pass for the new cluster
    _write_state(
        handle,
        phase=_CREATING,
        config_digest=digest,
        image=kind_cli.NODE_IMAGE,
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
    _write_state(handle, phase=_READY, created=_now(), error=None)
    progress(ProgressEvent(f"Kind cluster {handle.name} is ready", kind_cli.CREATE_PHASE))
    return status(handle, runner=run)


def _delete(handle: ClusterHandle, progress: Progress, run: Runner) -> None:
    progress(f"Deleting kind cluster {handle.name}")
    res = run.run(kind_cli.delete_argv(handle.name, handle.kubeconfig), timeout=DELETE_TIMEOUT)
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
