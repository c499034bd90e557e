"""`cks-lab up` / `down`, and the cluster lines of `cks-lab status`: the lab's kind cluster.

lab.kind.cluster does the work; this prints it. Progress goes to stderr, one
line per event ("[3/8] Writing configuration" when kind's step is known), the
final status to stdout.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from lab.clierrors import lab_errors
from lab.errors import LabError

if TYPE_CHECKING:
    from lab.kind.cluster import ClusterStatus
    from lab.kind.doctor import Check
    from lab.kind.runner import Runner

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

NAME = click.option(
    "--name",
    default="cks-lab",
    show_default=True,
    help="The kind cluster: cks-lab or cks-lab-<suffix>.",
)


def make_runner() -> Runner:
    """How kind and docker are run (tests put a fake runner here)."""
    from lab.kind.runner import SubprocessRunner

    return SubprocessRunner()


def host_checks() -> list[Check]:
    """`cks-lab doctor`'s checks of this host (tests put canned ones here)."""
    from lab.kind.doctor import HostProbe, run_checks
    from lab.paths import data_dir

    return run_checks(HostProbe(), data_dir())


def _catalog() -> Any:
    from lab.scenarios.catalog import Catalog

    return Catalog.default(click.get_current_context().find_root().params.get("scenarios") or ())


def _esc(text: str) -> str:
    from lab.grading.report_text import escape_controls

    return escape_controls(text)


def progress_line(message: str) -> str:
    """A progress message as the CLI prints it: "[done/total] ..." when known."""
    done, total = getattr(message, "done", None), getattr(message, "total", None)
    if done is not None and total:
        return f"[{done}/{total}] {_esc(message)}"
    return f"… {_esc(message)}"


def _progress(message: str) -> None:
    click.echo(progress_line(message), err=True)


def _cancellable(work: Callable[[threading.Event], T]) -> T:
    """Run `work` in a thread; Ctrl-C sets its cancel event (kind is killed, the
    state kept for the next `up` or `down`) instead of tearing the work apart.
    SIGTERM/SIGHUP (the terminal closed) set it too, then end cks-lab as they would:
    the runner's own handlers cannot, in the work's thread."""
    from lab.kind.runner import end_as_signalled, on_termination

    cancel, finished = threading.Event(), threading.Event()
    box: dict[str, Any] = {}
    signalled: list[int] = []

    def on_signal(signum: int) -> None:
        signalled.append(signum)
        cancel.set()

    def target() -> None:
        try:
            box["result"] = work(cancel)
        except BaseException as e:  # handed to the main thread
            box["error"] = e
        finally:
            finished.set()

    with on_termination(on_signal):
        threading.Thread(target=target, name="cks-lab-up", daemon=True).start()
        # an Event, not Thread.join: a Ctrl-C inside join() can leave the thread looking
        # finished while it still runs (Python < 3.13)
        while not finished.is_set():
            try:
                finished.wait(0.2)
            except KeyboardInterrupt:
                if not cancel.is_set():
                    click.echo("… cancelling: stopping kind", err=True)
                cancel.set()
    if signalled:  # kind is stopped: now end as the signal would have
        end_as_signalled(signalled[0])
    if "error" in box:
        raise box["error"]
    return box["result"]  # type: ignore[no-any-return]


def _template(config: str) -> Path:
    from lab.paths import kind_configs_dir

    if "/" in config:
        path = Path(config)
    else:
        path = kind_configs_dir() / config
    if not path.is_file():
        names = sorted(p.name for p in kind_configs_dir().glob("*.yaml"))
        raise LabError(f"no kind config {config!r}; bundled ones: {', '.join(names) or 'none'}")
    return path


def status_text(st: ClusterStatus) -> str:
    lines = [f"cluster {st.name}: {st.phase}" + (f" (created {st.created})" if st.created else "")]
    for n in st.nodes:
        lines.append(
            f"  node {_esc(n.name)} ({n.role or '?'}): {_esc(n.state)}"
            + (f", {_esc(n.status)}" if n.status else "")
        )
    if st.kubeconfig:
        lines.append(f"  kubeconfig {st.kubeconfig}")
    lines.extend(f"  note: {_esc(d)}" for d in st.detail)
    return "\n".join(lines)


@click.command()
@click.option("--scenario", "scenario_id", metavar="ID", help="Then start this scenario on it.")
@NAME
@click.option(
    "--config",
    default="audit.yaml",
    show_default=True,
    help="The kind config: a name from kind-configs/, or a path with a '/'.",
)
@click.option(
    "--recreate", is_flag=True, help="Delete and recreate a cluster made from another config."
)
@lab_errors
def up(scenario_id: str | None, name: str, config: str, recreate: bool) -> None:
    """Create (or reuse) the lab's kind cluster; with --scenario, start a scenario on it.

    A healthy cluster made from the same config is reused; one whose node
    containers stopped is started again; one whose nodes are not Ready yet is
    checked again. One left half-made by a cancelled `up` is deleted and created
    again. Ctrl-C while kind works stops it; `cks-lab up` finishes the job later,
    `cks-lab down` cleans up.
    """
    from lab.kind import cluster

    handle = cluster.cluster_handle(name)
    template = _template(config)
    runner = make_runner()
    try:
        st = _cancellable(
            lambda cancel: cluster.up(
                handle, template, _progress, runner=runner, cancel=cancel, recreate=recreate
            )
        )
    except cluster.ClusterCreateError as e:
        for line in e.kind_lines:
            click.echo(f"  kind: {_esc(line)}", err=True)
        raise
    except cluster.ClusterNotReady as e:  # there, not usable yet: show it, start nothing
        click.echo(status_text(e.status))
        raise
    except cluster.ClusterCancelled as e:  # Ctrl-C: the shell's "interrupted" status
        click.echo(f"cks-lab: {e}", err=True)
        raise click.exceptions.Exit(130) from None
    click.echo(status_text(st))
    if scenario_id:
        _start_scenario(scenario_id, name)


def _start_scenario(scenario_id: str, cluster: str) -> None:
    """As `cks-lab start`, on the kind backend unless this host cannot serve the
    scenario's skills there (then on the sim backend, saying why)."""
    from lab import service
    from lab.present import briefing

    catalog = _catalog()
    sc = service.scenario_by_ref(catalog, scenario_id)
    backend, reason = service.scenario_backend(sc, cluster, host_checks())
    if reason:
        click.echo(f"cks-lab: {scenario_id}: {reason}", err=True)
    op, created = service.start(
        catalog,
        scenario_id,
        None,
        backend=backend,
        cluster=cluster if backend == "kind" else None,
        progress=_progress,
    )
    click.echo(briefing(op, created))


@click.command()
@NAME
@click.option("--yes", "-y", is_flag=True, help="Don't ask for confirmation.")
@lab_errors
def down(name: str, yes: bool) -> None:
    """Delete the lab's kind cluster and its folder (kubeconfig, audit logs).

    Your files saved from a setup that never finished (the folder's saved/) are
    not deleted: they are moved to kind-saved/<name>/ in the lab's data folder.
    """
    from lab.kind import cluster

    handle = cluster.cluster_handle(name)
    if not yes and sys.stdin.isatty():
        question = f"Delete kind cluster {name} and everything in it?"
        if cluster.has_saved_files(handle):
            question += (
                f" (Your saved files in {handle.saved_dir} are kept: moved to "
                f"{cluster.kept_saved_dir(handle)}.)"
            )
        if not click.confirm(question):
            click.echo("Nothing was deleted.")
            return

    def release() -> None:
        from lab.backends.kind.reset import release_host_profiles

        # the nodes share the host's kernel: their profiles would outlive them
        release_host_profiles(handle.dir, handle.name, _progress)

    kept = cluster.down(handle, _progress, runner=make_runner(), before_delete=release)
    click.echo(f"Kind cluster {name} is gone (and its folder {handle.dir}).")
    if kept is not None:
        click.echo(f"Your saved files are kept in {kept}.")


def cluster_options(fn: F) -> F:
    """`status --cluster` and `status --cluster --json`."""
    fn = click.option(
        "--json", "as_json", is_flag=True, help="With --cluster: its status as JSON."
    )(fn)
    fn = click.option(
        "--cluster",
        "cluster_only",
        is_flag=True,
        help="Only the kind cluster's status; exit status 1 when kind or docker fails to "
        "say how it is (phase unknown).",
    )(fn)
    return fn


def check_cluster_options(cluster_only: bool, as_json: bool) -> None:
    if as_json and not cluster_only:
        # the scenario lines have no JSON form: a bare --json would mean cluster-only
        raise click.UsageError("--json goes with --cluster: `cks-lab status --cluster --json`")


def _statuses(default_if_none: bool) -> list[ClusterStatus]:
    from lab.kind import cluster

    handles = cluster.known_clusters()
    if not handles and default_if_none:
        handles = [cluster.cluster_handle()]
    runner = make_runner()
    return [cluster.status(h, runner=runner) for h in handles]


def cluster_status(as_json: bool) -> None:
    """`status --cluster [--json]`: every cluster the lab made, else the default one.
    Exit status 1 when one's phase is unknown (kind or docker failed), saying why."""
    from lab.kind.cluster_state import UNKNOWN

    statuses = _statuses(default_if_none=True)
    if as_json:
        click.echo(json.dumps({"clusters": [s.to_json() for s in statuses]}, indent=2))
    else:
        click.echo("\n".join(status_text(s) for s in statuses))
    unknown = [s for s in statuses if s.phase == UNKNOWN]
    for s in unknown:
        click.echo(
            f"cks-lab: cannot tell how kind cluster {s.name} is: {_esc('; '.join(s.errors))}",
            err=True,
        )
    if unknown:
        raise click.exceptions.Exit(1)


def cluster_lines(*, first: bool = False) -> None:
    """`status`'s lines of the clusters the lab made (none: nothing, and neither kind
    nor docker is run): after the scenario's, or `first` when there is none."""
    statuses = _statuses(default_if_none=False)
    if statuses:
        click.echo(("" if first else "\n") + "\n".join(status_text(s) for s in statuses))
