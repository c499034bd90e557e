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

The lifecycle only: the handle and state.json (cluster_state), the lock
(cluster_lock), how the cluster is (cluster_status), the config for this host
(host_config) and node readiness (readiness) live beside it; their public names
are importable from here as before.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from lab.errors import LabError
from lab.fsutil import atomic_write_bytes
from lab.kind import kind_cli
from lab.kind.cluster_errors import (
    QUERY_TIMEOUT,
    ClusterCancelled,
    ClusterCreateError,
    ClusterNotReady,
    ConfigChanged,
    failure,
)
from lab.kind.cluster_lock import LOCK_TRIES, exclusive
from lab.kind.cluster_state import (
    CONFIG_FILE,
    CREATED,
    CREATING,
    DEFAULT_NAME,
    FAILED,
    PHASES,
    READY,
    UNKNOWN,
    ClusterHandle,
    ClusterStatus,
    cluster_handle,
    cluster_has_apparmor,
    clusters_dir,
    config_digest,
    kept_saved_dir,
    kind_cli_name_ok,
    known_clusters,
    now,
    read_state,
    write_state,
)
from lab.kind.cluster_status import observe, startable
from lab.kind.config import check_cluster_name, node_count
from lab.kind.host_config import (
    DEFAULT_AUDIT_POLICY,
    check,
    docker_has_apparmor,
    for_host,
    prepare_host,
    render,
)
from lab.kind.readiness import READY_POLL, READY_TIMEOUT, START_TIMEOUT, promote, restart
from lab.kind.runner import CommandNotFound, Runner
from lab.work import Progress, ProgressEvent

__all__ = [  # what other code and the tests import from here
    "CONFIG_FILE",
    "DEFAULT_AUDIT_POLICY",
    "DEFAULT_NAME",
    "LOCK_TRIES",
    "PHASES",
    "QUERY_TIMEOUT",
    "READY_POLL",
    "READY_TIMEOUT",
    "START_TIMEOUT",
    "ClusterCancelled",
    "ClusterCreateError",
    "ClusterHandle",
    "ClusterNotReady",
    "ClusterStatus",
    "ConfigChanged",
    "cluster_handle",
    "cluster_has_apparmor",
    "clusters_dir",
    "config_digest",
    "docker_has_apparmor",
    "down",
    "for_host",
    "has_saved_files",
    "kept_saved_dir",
    "kind_cli_name_ok",
    "known_clusters",
    "read_state",
    "status",
    "up",
]

CREATE_TIMEOUT = 1800.0  # the first create pulls a ~1 GiB node image
DELETE_TIMEOUT = 300.0


def _default_runner(runner: Runner | None) -> Runner:
    if runner is not None:
        return runner
    from lab.kind.runner import SubprocessRunner

    return SubprocessRunner()


def status(handle: ClusterHandle, *, runner: Runner | None = None) -> ClusterStatus:
    """What kind, docker and the lab's state say about the cluster; never raises for
    a missing kind or docker (it says so in `detail`)."""
    check_cluster_name(handle.name)
    return observe(handle, _default_runner(runner), look_at_lock=True)


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
    with exclusive(handle):
        return _up(handle, template, progress, _default_runner(runner), cancel, recreate)


def _up(
    handle: ClusterHandle,
    template: Path,
    progress: Progress,
    run: Runner,
    cancel: threading.Event | None,
    recreate: bool,
) -> ClusterStatus:
    rendered = render(handle, template)  # a bad config stops before docker is asked
    st = observe(handle, run, look_at_lock=False)
    if st.missing:
        raise CommandNotFound(st.missing[0])
    if st.phase == UNKNOWN:  # the docker daemon down, a hung kind: never act on a guess
        raise LabError(
            f"cannot see kind cluster {handle.name!r}: {'; '.join(st.errors)}; nothing was "
            "changed: `cks-lab doctor` checks docker and kind"
        )
    apparmor = docker_has_apparmor(run)
    text = check(for_host(rendered, apparmor), str(template))
    digest = config_digest(text)
    recorded = read_state(handle).get("phase")
    ours = recorded in (READY, CREATED)  # made by the lab, kind finished

    if st.phase == "ready" and st.config_digest == digest:
        progress(f"Reusing kind cluster {handle.name}: its {len(st.nodes)} nodes are running")
        return st
    stopped = [n for n in st.nodes if not n.running]
    restartable = (
        ours
        and st.exists
        and st.kubeconfig is not None
        and startable(stopped)
        and len(st.nodes) == node_count(text)
    )
    if not recreate and ours and st.config_digest == digest:
        if restartable:
            return restart(handle, stopped, progress, run, cancel)
        if st.phase == "created":
            progress(f"Kind cluster {handle.name} exists; checking that its nodes are Ready")
            return promote(handle, progress, run, cancel)
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


def _create(
    handle: ClusterHandle,
    text: str,
    digest: str,
    apparmor: bool,
    progress: Progress,
    run: Runner,
    cancel: threading.Event | None,
) -> ClusterStatus:
    prepare_host(handle, text)
    atomic_write_bytes(handle.config_file, text.encode())
    handle.kubeconfig.unlink(missing_ok=True)  # a stale one must not pass for the new cluster
    write_state(
        handle,
        phase=CREATING,
        config_digest=digest,
        image=kind_cli.NODE_IMAGE,
        apparmor=apparmor,
        started=now(),
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
        write_state(handle, phase=FAILED, error=err)
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
        write_state(handle, phase=FAILED, error="kind wrote no kubeconfig")
        raise LabError(
            f"kind created cluster {handle.name!r} but wrote no kubeconfig at "
            f"{handle.kubeconfig}; `cks-lab up --recreate` tries again"
        )
    if kind_cli.wait_timed_out(result.lines):
        # kind exits 0 when its --wait runs out: the cluster is there, not usable yet
        write_state(handle, phase=CREATED, created=now(), error=None)
        progress(
            ProgressEvent(
                f"Kind cluster {handle.name} is created but its nodes are not Ready yet",
                kind_cli.CREATE_PHASE,
            )
        )
        st = observe(handle, run, look_at_lock=False)
        raise ClusterNotReady(
            f"kind created cluster {handle.name!r} but its nodes were not Ready within "
            f"{kind_cli.WAIT}; they may still be starting: run `cks-lab up` again in a "
            "minute (it checks again), `cks-lab up --recreate` if they never get Ready",
            st,
        )
    write_state(handle, phase=READY, created=now(), error=None)
    progress(ProgressEvent(f"Kind cluster {handle.name} is ready", kind_cli.CREATE_PHASE))
    return observe(handle, run, look_at_lock=False)


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
            f"`kind delete cluster --name {handle.name}` failed: {failure(res)}; "
            "`cks-lab doctor` checks docker"
        )


def down(
    handle: ClusterHandle,
    progress: Progress,
    *,
    runner: Runner | None = None,
    before_delete: Callable[[], object] | None = None,
) -> Path | None:
    """Delete the cluster (whatever state it is in) and its folder. `before_delete`
    runs first, under the same lock (the CLI unloads the lab's AppArmor profiles from
    the nodes there: no `up` may recreate them meanwhile). The learner's saved files
    (saved/) are moved out first, to kept_saved_dir(): where they went, or None."""
    check_cluster_name(handle.name)
    _check_own_dir(handle)
    with exclusive(handle):
        if before_delete is not None:
            before_delete()
        return _down(handle, progress, _default_runner(runner))


def _down(handle: ClusterHandle, progress: Progress, run: Runner) -> Path | None:
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
    kept = _keep_saved(handle)
    _remove_dir(handle, progress)
    return kept


def has_saved_files(handle: ClusterHandle) -> bool:
    """Whether the cluster's folder holds saved learner files (a real folder, not empty)."""
    src = handle.saved_dir
    if src.is_symlink() or not src.is_dir():
        return False
    return any(os.scandir(src))


def _keep_saved(handle: ClusterHandle) -> Path | None:
    """Move saved/'s snapshots out of the folder `down` removes: the learner's work
    outlives the cluster. A failure stops `down` before anything is removed."""
    if not has_saved_files(handle):
        return None
    dest = kept_saved_dir(handle)
    try:
        dest.mkdir(mode=0o700, parents=True, exist_ok=True)
        for entry in sorted(os.scandir(handle.saved_dir), key=lambda e: e.name):
            target = dest / entry.name
            n = 0
            while target.exists() or target.is_symlink():  # an earlier `down`'s
                n += 1
                target = dest / f"{entry.name}-{n}"
            os.rename(entry.path, target)  # same file system: both under data_dir()
    except OSError as e:
        raise LabError(
            f"cannot move your saved files from {handle.saved_dir} to {dest}: "
            f"{e.strerror or e}; the cluster is deleted, its folder kept: move them and run "
            "`cks-lab down` again"
        ) from None
    return dest


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
