"""KindBackend: the scenario runs against a real kind cluster.

prepare() resets what an earlier scenario left on the (warm) cluster, puts the
scenario's files on its nodes, readies AppArmor and Falco when the scenario needs
them and applies its manifests. run_attack() sends the attack for real — API
requests as their users (each with its own client certificate, so the audit
policy sees that user), execs through the API's exec stream —
and reads the evidence where a learner would: crictl and the audit log on the
control-plane node, the Falco pods' logs, the kernel's AppArmor state and the
commands' results. The checks grade it without knowing which backend ran.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from lab.backends.kind import reset as lab_reset
from lab.backends.kind import snapshot
from lab.backends.kind.audit import (
    MANIFEST,
    add_events,
    audit_evidence,
    read_manifest,
    restart_for_new_policy,
)
from lab.backends.kind.audit import watch_apiserver as _watch_apiserver
from lab.backends.kind.steps import (
    ExecRun,
    Issuer,
    controllers_in,
    created_uri,
    find_pod,
    inverse,
    list_files,
    read_text,
    run_exec,
    scenario_node_names,
    send_api,
)
from lab.errors import LabError
from lab.evidence import Evidence
from lab.scenarios.loader import LoadedScenario
from lab.scenarios.model import NodeFile, Pod, Scenario
from lab.scenarios.requests import api_call
from lab.work import Progress, ProgressEvent, no_progress
from lab.workspace import Workspace

if TYPE_CHECKING:
    from pathlib import Path

    from lab.kind.kube import Kube, PodInfo
    from lab.kind.nodes import ExecResult, LabNodes


class ClusterLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def dir(self) -> Path: ...
    @property
    def kubeconfig(self) -> Path: ...


POLL = 2.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class KindBackend:
    name = "kind"

    def __init__(
        self,
        cluster: ClusterLike,
        nodes: LabNodes | None = None,
        kube: Kube | None = None,
        clock: Callable[[], datetime] = _utcnow,
        *,
        sleep: Callable[[float], None] = time.sleep,
        falco_grace: float = 3.0,  # Falco prints an alert a moment after the event
        audit_grace: float = 1.0,  # the log backend writes an exec's last event on close
        settle_timeout: float = 120.0,  # kubelet restarting kube-apiserver after an edit
        pods_timeout: float = 180.0,
        falco_timeout: float = 300.0,
        workload_window: float = 5.0,  # run time the Falco-graded workloads get watched
        falco_reload_wait: float = 20.0,  # for Falco to reload changed rules by itself
    ) -> None:
        self.cluster = cluster
        self._nodes = nodes
        self._kube = kube
        self.clock = clock
        self.sleep = sleep
        self.falco_grace = falco_grace
        self.audit_grace = audit_grace
        self.settle_timeout = settle_timeout
        self.pods_timeout = pods_timeout
        self.falco_timeout = falco_timeout
        self.workload_window = workload_window
        self.falco_reload_wait = falco_reload_wait

    # --- the cluster's handles ------------------------------------------------------------

    def _names(self, sc: Scenario) -> dict[str, str]:
        return scenario_node_names(sc, self.cluster.name)

    def _lab_nodes(self, names: dict[str, str]) -> LabNodes:
        if self._nodes is None:
            from lab.kind.nodes import LabNodes

            return LabNodes(self.cluster.name, names)
        return self._nodes

    def kube(self) -> Kube:
        if self._kube is None:
            from lab.kind.kube import Kube

            self._kube = Kube(self.cluster.kubeconfig, self.cluster.name)
        return self._kube

    # --- prepare ----------------------------------------------------------------------------

    def prepare(self, sc: LoadedScenario, ws: Workspace, progress: Progress = no_progress) -> None:
        model = sc.model
        names = self._names(model)
        nodes = self._lab_nodes(names)
        kube = self.kube()
        cp = model.control_plane
        state = lab_reset.load_state(self.cluster.dir)
        writes_manifest = any(f.node == cp and f.path == MANIFEST for f in model.setup.files)

        progress(ProgressEvent("resetting the cluster for the scenario", phase="reset"))
        lab_reset.save_pristine(nodes, cp)
        from lab.backends.kind.falco_upgrade import recover

        recover(nodes, self.cluster.dir, progress)  # a killed check's upgrade: theirs first
        # the learner's files first: nothing the reset removes is lost (snapshot.py)
        folders = snapshot.lab_folders(self.cluster.dir)
        reason = "reset" if state.workspace == _ws_key(ws) else "switch"
        saved = snapshot.save_before_reset(nodes, state, names, cp, self.cluster.dir, folders,
                                           reason=reason, progress=progress)  # fmt: skip
        restarted = lab_reset.reset(nodes, kube, state, names, cp, progress,
                                    restore_manifest=not writes_manifest)  # fmt: skip
        if saved is not None:
            snapshot.clear_lab_folders(nodes, cp, folders, progress)
        state.scenario = model.id
        state.workspace = None  # until this setup has finished: see holds()
        lab_reset.save_state(self.cluster.dir, state)

        if model.needs_apparmor:
            self._prepare_apparmor(sc, nodes, names, state, progress)

        files = model.setup.files
        for i, f in enumerate(files):
            progress(ProgressEvent(f"{f.node}:{f.path}", phase="files", done=i, total=len(files)))
            lab_reset.record_file(state, names[f.node], f.path)
            lab_reset.save_state(self.cluster.dir, state)
            nodes.put_file(f.node, f.path, sc.node_file_bytes(f), f.file_mode)
        if files:
            progress(ProgressEvent("node files in place", phase="files", done=len(files),
                                   total=len(files)))  # fmt: skip

        for lp in model.setup.load_profiles:
            r = nodes.exec(lp.node, ["apparmor_parser", "-r", lp.path])
            message = f"loaded {lp.path} on node {lp.node}"
            if r.code != 0:
                message = f"warning: apparmor_parser -r {lp.path} on node {lp.node} failed: " + (
                    r.stderr.strip() or f"exit code {r.code}"
                )
            progress(ProgressEvent(message, phase="apparmor"))

        if model.needs_falco:
            self._prepare_falco(sc, kube, names, progress)

        if restarted or writes_manifest:
            progress(ProgressEvent("waiting for kube-apiserver to restart", phase="manifests"))
            seen = self._watch(nodes, kube, cp, progress)
            if not seen.running:
                raise LabError(f"kube-apiserver did not come back after the setup: {seen.error}")

        for rel in model.setup.manifests:
            docs = self._docs(sc.read(rel), rel)
            lab_reset.record_docs(state, docs)
            lab_reset.save_state(self.cluster.dir, state)
            for line in kube.apply(docs, source=rel):
                progress(ProgressEvent(line, phase="manifests"))
        self._wait_pods(kube, model.setup.pods, progress)
        state.workspace = _ws_key(ws)
        lab_reset.save_state(self.cluster.dir, state)

    # --- the learner's own node work: files, commands, a shell ------------------------------

    def _node(self, sc: LoadedScenario, node: str) -> tuple[LabNodes, str]:
        names = self._names(sc.model)
        if node not in names:
            raise LabError(
                f"no node {node!r} in scenario {sc.id!r} (its nodes: {', '.join(names)})"
            )
        return self._lab_nodes(names), node

    def write_node_file(self, sc: LoadedScenario, f: NodeFile) -> None:
        """Put a file on a node (a solution's, when the learner asks for it)."""
        nodes, node = self._node(sc, f.node)
        nodes.put_file(node, f.path, sc.node_file_bytes(f), f.file_mode)

    def node_exec(self, sc: LoadedScenario, node: str, argv: Sequence[str]) -> ExecResult:
        """`cks-lab node exec NODE -- COMMAND`: really run in the node's container."""
        if not argv:
            raise LabError(f"give the command after --, e.g. cks-lab node exec {node} -- aa-status")
        nodes, node = self._node(sc, node)
        return nodes.exec(node, list(argv), timeout=300.0)

    def shell_argv(self, sc: LoadedScenario, node: str) -> list[str]:
        """`docker exec -it <node container> bash`: the exam's `ssh NODE`."""
        nodes, node = self._node(sc, node)
        return nodes.shell_argv(node)

    def restore_snapshot(
        self, sc: LoadedScenario, src: Path, progress: Progress = no_progress
    ) -> snapshot.Restored:
        """Put the learner's files saved in `src` back on the scenario's nodes."""
        names = self._names(sc.model)
        return snapshot.restore_learner_files(self._lab_nodes(names), names, src, progress)

    def after_reset(
        self, sc: LoadedScenario, ws: Workspace, *, restore: bool, progress: Progress = no_progress
    ) -> Path | None:
        """After prepare() set the workspace's scenario up again: with `restore` (going
        back to it), its files saved when another scenario took the cluster come back.
        The newest snapshot (the learner's backup), or None."""
        return snapshot.after_prepare(
            ws, lambda src: self.restore_snapshot(sc, src, progress), restore=restore,
            progress=progress,
        )  # fmt: skip

    def save_files(
        self, sc: LoadedScenario, reason: str, progress: Progress = no_progress
    ) -> Path | None:
        """Save the learner's node files (before the lab writes over them: a solution);
        the snapshot folder in the workspace the cluster holds."""
        names = self._names(sc.model)
        return snapshot.save_before_reset(
            self._lab_nodes(names), lab_reset.load_state(self.cluster.dir), names,
            sc.model.control_plane, self.cluster.dir, snapshot.lab_folders(self.cluster.dir),
            reason=reason, progress=progress,
        )  # fmt: skip

    def holder(self) -> str | None:
        """The scenario the cluster holds, fully set up; None when none is."""
        state = lab_reset.load_state(self.cluster.dir)
        return state.scenario if state.workspace else None

    def holds(self, ws: Workspace) -> bool:
        """Whether the cluster holds this workspace's scenario, fully set up: the
        cluster has one scenario at a time, so going back to another means setting
        it up again."""
        state = lab_reset.load_state(self.cluster.dir)
        return state.workspace == _ws_key(ws) and state.scenario == ws.scenario_id

    def _prepare_apparmor(
        self,
        sc: LoadedScenario,
        nodes: LabNodes,
        names: dict[str, str],
        state: lab_reset.LabState,
        progress: Progress,
    ) -> None:
        from lab.kind.apparmor_node import node_prep_commands

        todo = [n.name for n in sc.model.cluster.nodes
                if n.apparmor and names[n.name] not in state.apparmor]  # fmt: skip
        for i, node in enumerate(todo):
            progress(ProgressEvent(f"installing AppArmor on node {node} (once per cluster)",
                                   phase="apparmor", done=i, total=len(todo)))  # fmt: skip
            for argv in node_prep_commands():
                r = nodes.exec(node, argv, timeout=600)
                if r.code != 0:
                    tail = (r.stderr.strip() or r.stdout.strip()).splitlines()[-3:]
                    why = " | ".join(tail) or f"exit code {r.code}"
                    raise LabError(
                        f"preparing AppArmor on node {node}: `{' '.join(argv)}` failed: {why}"
                    )
            state.apparmor[names[node]] = list_files(nodes, node, lab_reset.PROFILE_DIR)
            lab_reset.save_state(self.cluster.dir, state)

    def _prepare_falco(
        self, sc: LoadedScenario, kube: Kube, names: dict[str, str], progress: Progress
    ) -> None:
        from lab.kind.falco_deploy import FALCO_CONFIG, FALCO_NAMESPACE, deploy, falco_pod, place

        # Falco runs where the scenario gives it a configuration, as it is installed there
        with_config = {f.node for f in sc.model.setup.files if f.path == FALCO_CONFIG}
        place(kube, {container: node in with_config for node, container in names.items()})
        # A Falco that crashed without its configuration waits out a back-off: start it
        # again now that the node has its files.
        for container in names.values():
            pod = falco_pod(kube, container)
            info = kube.pod(FALCO_NAMESPACE, pod) if pod else None
            if info is not None and not info.running:
                kube.delete("Pod", FALCO_NAMESPACE, info.name, wait=30)
        deploy(kube, progress, self.falco_timeout)

    @staticmethod
    def _docs(raw: bytes, source: str) -> list[dict[str, Any]]:
        from lab.yamlsafe import parse_all

        return [d.data for d in parse_all(raw, source) if isinstance(d.data, dict)]

    def _wait_pods(
        self,
        kube: Kube,
        pods: list[Pod],
        progress: Progress,
        workloads: Sequence[tuple[str, str, str]] = (),
    ) -> dict[str, PodInfo]:
        """Wait until every setup pod runs or is stuck for good, and the rollout of every
        workload controller just applied ((kind, namespace, name)) is over — until then
        the old pods are still there (running under their old settings, or stuck) and
        would be taken for the new. Found pods by key."""
        from lab.backends.kind.steps import rollout_waits_for

        deadline = self.clock().timestamp() + self.pods_timeout
        pending = list(dict.fromkeys(workloads))
        while True:
            waits: dict[tuple[str, str, str], str] = {}
            for kind, ns, name in pending:
                try:
                    why = rollout_waits_for(kube, kind, ns, name)
                except LabError as e:
                    why = None  # the pods' own states below tell what went wrong
                    progress(ProgressEvent(f"warning: rollout of {kind.lower()} {ns}/{name}: "
                                           f"{e.message}", "pods"))  # fmt: skip
                if why is not None:
                    waits[(kind, ns, name)] = why
            pending = list(waits)  # an ended rollout stays ended
            found: dict[str, PodInfo] = {}
            for p in pods:
                info = find_pod(kube, p.namespace, p.name, p)
                if info is not None:
                    found[f"{p.namespace}/{p.name}"] = info
            done = sum(1 for i in found.values() if i.settled)
            rolling = "; ".join(waits.values())
            message = f"pods started: {done}/{len(pods)}"
            if rolling:
                message += f"; waiting for the rollout of {rolling}"
            progress(ProgressEvent(message, phase="pods", done=done, total=len(pods)))
            over = self.clock().timestamp() >= deadline
            if (done == len(pods) and not waits) or over:
                if rolling:
                    late = f"after {self.pods_timeout:g}s still waiting for the rollout of"
                    progress(ProgressEvent(f"warning: {late} {rolling}", "pods"))
                return found
            self.sleep(POLL)

    def _watch(
        self, nodes: LabNodes, kube: Kube, cp: str, progress: Progress,
        newer_than: float | None = None,
    ) -> Any:  # fmt: skip
        def tell(message: str) -> None:
            progress(ProgressEvent(message, phase="manifests"))

        return _watch_apiserver(nodes, kube, cp, before=None, clock=self.clock, sleep=self.sleep,
                                timeout=self.settle_timeout, progress=tell,
                                newer_than=newer_than,
                                record=self.cluster.dir / APISERVER_RECORD)  # fmt: skip

    # --- the attack ----------------------------------------------------------------------------

    def run_attack(
        self, sc: LoadedScenario, ws: Workspace, progress: Progress = no_progress
    ) -> Evidence:
        from lab.backends.kind.falco_upgrade import PackageUpgrades, recover
        from lab.backends.kind.node_files import KindNodeFiles

        model = sc.model
        names = self._names(model)
        nodes = self._lab_nodes(names)
        kube = self.kube()
        recover(nodes, self.cluster.dir, progress)  # an interrupted upgrade's files go back
        node_of = inverse(names)
        cp = model.control_plane
        run_id = secrets.token_hex(4)
        since = self.clock()
        evidence = Evidence(run_id=run_id, backend=self.name, files=KindNodeFiles(nodes))

        docs: dict[tuple[str, str], list[Any]] = {}
        refused: dict[tuple[str, str], str] = {}
        if model.needs_apparmor:
            docs, refused = self._apply_pod_manifests(sc, nodes, kube, progress)
        audit = needs_audit(model)
        seen = state = None
        if audit:
            progress(ProgressEvent("checking kube-apiserver on the control plane",
                                   phase="manifests"))  # fmt: skip
            state = read_manifest(nodes, cp)
            restarted = restart_for_new_policy(nodes, cp, state)
            if restarted is not None:
                progress(ProgressEvent("your audit policy changed: restarting kube-apiserver "
                                       "so it loads it", phase="manifests"))  # fmt: skip
            seen = self._watch(nodes, kube, cp, progress, newer_than=restarted)

        synced: dict[str, Any] = {}
        watched_from = since  # when Falco is on the current rules: workloads watched after
        if model.needs_falco:
            from lab.backends.kind.falco_reload import sync_falco_rules

            synced = sync_falco_rules(nodes, kube, model, names, node_of, clock=self.clock,
                                      sleep=self.sleep, progress=progress,
                                      wait=self.falco_reload_wait,
                                      timeout=self.falco_timeout)  # fmt: skip
            if any(s.state in ("reloaded", "restarted") for s in synced.values()):
                watched_from = self.clock()
        # A package upgrade replaces the learner's files until the evidence is read:
        # they go back (and Falco restarts on them) whatever happens in between.
        upgrades = PackageUpgrades(nodes, kube, sc, names, since=since, clock=self.clock,
                                   sleep=self.sleep, progress=progress, grace=self.falco_grace,
                                   timeout=self.falco_timeout,
                                   journal_dir=self.cluster.dir)  # fmt: skip
        try:
            execs: dict[str, ExecRun] = {}
            created: list[str] = []  # objects the attack made: removed after the run
            steps = model.attack
            for i, step in enumerate(steps):
                progress(ProgressEvent(f"attack step {step.id}", phase="attack", done=i,
                                       total=len(steps)))  # fmt: skip
                call = api_call(step) if step.api is not None else None
                if call is not None:
                    if seen is not None and not seen.running:
                        continue  # nobody answers: the audit checks explain why
                    try:
                        status, answer = send_api(kube, call, run_id, self.cluster.name,
                                                  Issuer(nodes, cp, self.cluster.dir))  # fmt: skip
                    except LabError as e:
                        progress(ProgressEvent(f"warning: step {step.id}: {e.message}", "attack"))
                    else:
                        uri = created_uri(call, status, answer)
                        if uri:
                            created.append(uri)
                elif step.exec is not None:
                    issuer = Issuer(nodes, cp, self.cluster.dir)
                    execs[step.id] = run = run_exec(kube, model, step, run_id, self.clock,
                                                    node_of, issuer)  # fmt: skip
                    if run.error:
                        progress(ProgressEvent(f"warning: step {step.id}: {run.error}", "attack"))
                elif step.package_upgrade is not None:
                    upgrades.run(step)
            progress(
                ProgressEvent("attack sent", phase="attack", done=len(steps), total=len(steps))
            )
            for uri in created:  # as the cluster admin, not the attacker: it must go
                try:
                    kube.request("DELETE", uri)
                except LabError as e:
                    progress(
                        ProgressEvent(f"warning: could not remove {uri}: {e.message}", "attack")
                    )

            progress(ProgressEvent("reading the evidence", phase="evidence"))
            if audit and seen is not None and state is not None:
                evidence.audit = audit_evidence(nodes, cp, seen, state)
                if self.audit_grace:
                    self.sleep(self.audit_grace)
                add_events(nodes, cp, evidence.audit, run_id)
            if model.needs_falco:
                from lab.backends.kind.falco import falco_evidence, observe_workloads

                observe_workloads(nodes, kube, model, node_of, watched_from, self.workload_window,
                                  self.clock, self.sleep, progress)  # fmt: skip
                if self.falco_grace:
                    self.sleep(self.falco_grace)
                evidence.falco = falco_evidence(nodes, kube, model, names, execs, since,
                                                node_of, synced, upgrades.done)  # fmt: skip
            if model.needs_apparmor:
                from lab.backends.kind.apparmor import apparmor_evidence

                known = lab_reset.load_state(self.cluster.dir).apparmor
                baselines = {n: frozenset(known.get(c, [])) for n, c in names.items()}
                evidence.apparmor = apparmor_evidence(nodes, kube, model, execs, docs, baselines,
                                                      node_of, refused)  # fmt: skip
        finally:
            upgrades.undo()
        return evidence

    def _apply_pod_manifests(
        self, sc: LoadedScenario, nodes: LabNodes, kube: Kube, progress: Progress
    ) -> tuple[dict[tuple[str, str], list[Any]], dict[tuple[str, str], str]]:
        """Apply the pod manifests the learner edits, as they are on the node (the sim does
        so at every check too): the manifest objects of every setup pod, and what the API
        server said to the pods it refused."""
        model = sc.model
        setup_docs = [d for rel in model.setup.manifests for d in self._docs(sc.read(rel), rel)]
        out: dict[tuple[str, str], list[Any]] = {}
        refused: dict[tuple[str, str], str] = {}
        applied: dict[tuple[str, str], str | None] = {}
        workloads: list[tuple[str, str, str]] = []  # controllers applied: wait for their rollout
        for pod in model.setup.pods:
            key = (pod.namespace, pod.name)
            out[key] = setup_docs
            if pod.manifest is None:
                continue
            where = (pod.manifest.node, pod.manifest.path)
            text = read_text(nodes, *where)
            if text is None:
                missing = f"warning: {where[0]}:{where[1]} is missing: pod "
                progress(
                    ProgressEvent(f"{missing}{pod.namespace}/{pod.name} stays as it is", "pods")
                )
                continue
            try:
                docs = self._docs(text.encode(), f"{where[0]}:{where[1]}")
            except LabError as e:
                progress(ProgressEvent(f"warning: {e}", "pods"))
                continue
            out[key] = docs
            if where not in applied:
                applied[where] = None
                try:
                    for line in kube.apply(docs, source=f"{where[0]}:{where[1]}"):
                        progress(ProgressEvent(line, phase="pods"))
                    workloads += controllers_in(docs)
                except LabError as e:
                    applied[where] = e.message
                    progress(ProgressEvent(f"warning: applying {where[1]}: {e.message}", "pods"))
            if applied[where] is not None:
                refused[key] = str(applied[where])
        found = self._wait_pods(kube, model.setup.pods, progress, workloads)
        if self._retry_stuck(kube, found, progress):
            self._wait_pods(kube, model.setup.pods, progress)
        return out, refused

    def _retry_stuck(self, kube: Kube, found: dict[str, PodInfo], progress: Progress) -> bool:
        """A controller's pod stuck in CreateContainerError (its profile was not loaded
        then) is only retried by kubelet after a back-off of up to minutes, and an
        unchanged template starts no new one: delete it, as a learner would, so its
        controller makes a pod that meets the profiles loaded now. Whether any was."""
        retried = False
        for info in found.values():
            stuck = any(c.state == "waiting" and c.reason in STUCK_REASONS
                        for c in info.containers)  # fmt: skip
            if stuck and info.owners and info.deletion_timestamp is None:
                progress(ProgressEvent(f"pod {info.namespace}/{info.name} failed to start "
                                       "before: starting it again", "pods"))  # fmt: skip
                kube.delete("Pod", info.namespace, info.name, wait=30)
                retried = True
        return retried


# a container the runtime could not create: kubelet retries it only after a back-off
STUCK_REASONS = ("CreateContainerError", "CreateContainerConfigError", "RunContainerError")


APISERVER_RECORD = "apiserver-spec.json"  # which container ran which manifest spec


def _ws_key(ws: Workspace) -> str:
    return str(ws.root.resolve())


def needs_audit(model: Scenario) -> bool:
    """Audit evidence for scenarios that grade the apiserver (all but Falco- or
    AppArmor-only ones), as the sim decides it."""
    checks = [c.type for t in model.tasks for c in t.checks]
    if not (model.needs_falco or model.needs_apparmor):
        return True
    return any(t.startswith(("audit_", "apiserver_")) for t in checks)
