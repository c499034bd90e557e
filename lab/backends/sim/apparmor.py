"""AppArmor on the sim's nodes: the profiles each kernel holds, the pods applied from
the learner's manifest, and every access the attack's steps make, decided by the
profile each process runs under.

The node state is what `apparmor_parser` loaded (lab/backends/sim/apparmor_kernel.py),
never the files in /etc/apparmor.d: a profile written but not loaded confines
nothing, and a profile edited after loading is enforced as it was loaded.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path

from lab.backends.sim import apparmor_kernel as kernel
from lab.backends.sim.apparmor_access import Proc, StepAccesses, program_paths, rootfs
from lab.backends.sim.apparmor_kernel import LoadedProfile
from lab.backends.sim.apparmor_pods import RunningContainer, apply_pods
from lab.engines.apparmor import ProfileError
from lab.engines.apparmor.includes import skipped
from lab.engines.apparmor.model import Profile
from lab.evidence import (
    AppArmorAccess,
    AppArmorBrokenFile,
    AppArmorEvidence,
    AppArmorNode,
    AppArmorProfileState,
    AppArmorRule,
    AppArmorStep,
)
from lab.nodefs import NodePathError, resolve_in_node
from lab.scenarios.loader import LoadedScenario
from lab.scenarios.model import AttackStep, Node
from lab.workspace import Workspace

PROFILE_DIR = "/etc/apparmor.d"
MAX_DEFINED_FILES = 200  # files of /etc/apparmor.d read to say which profiles they define


def _node_state(ws: Workspace, node: Node, loaded: list[LoadedProfile]) -> AppArmorNode:
    root = ws.node_root(node.name)
    state = AppArmorNode(node.name, node.apparmor)
    texts: dict[str, str | None] = {}
    for lp in loaded:
        if lp.file not in texts:
            try:
                texts[lp.file] = kernel.read_node_profile(root, lp.file)[1]
            except (OSError, ProfileError):
                texts[lp.file] = None
        state.loaded.append(AppArmorProfileState(lp.name, lp.mode, lp.file,
                                                 stale=texts[lp.file] != lp.text))
    state.defined, state.broken = _defined(root)
    return state


def _defined(root: Path) -> tuple[dict[str, str], list[AppArmorBrokenFile]]:
    """Profile name -> file, for the files directly in the node's /etc/apparmor.d; and the
    files there that do not compile, with their error (apparmor_parser loads nothing of them)."""
    try:
        folder = resolve_in_node(root, PROFILE_DIR)
    except NodePathError:
        return {}, []
    if not folder.is_dir():
        return {}, []
    out: dict[str, str] = {}
    broken: list[AppArmorBrokenFile] = []
    files = sorted(p for p in folder.iterdir() if p.is_file() and not skipped(p.name))
    for p in files[:MAX_DEFINED_FILES]:
        node_path = f"{PROFILE_DIR}/{p.name}"
        try:
            parsed = kernel.parse_node_profile(root, node_path)
        except ProfileError as err:
            try:
                text = kernel.read_node_profile(root, node_path)[1]
            except (OSError, ProfileError):
                text = ""
            broken.append(AppArmorBrokenFile(node_path, kernel.located(err, node_path),
                                             kernel.profile_names_in(text)))
            continue
        except OSError:
            continue
        for name in parsed.profiles.names():
            out.setdefault(name, node_path)
    return out, broken


def _lookup(loaded: list[LoadedProfile]) -> dict[str, LoadedProfile]:
    return {lp.name: lp for lp in loaded}


def _step_accesses(step: AttackStep, rc: RunningContainer,
                   loaded: Mapping[str, LoadedProfile]) -> list[AppArmorAccess]:
    def lookup(name: str) -> Profile | None:
        """A px target: a loaded profile by name, else one whose attachment is the path."""
        lp = loaded.get(name)
        candidates = [lp] if lp is not None else list(loaded.values())
        for cand in candidates:
            try:
                prof = kernel.compiled(cand)
            except ProfileError:
                continue
            if cand is lp or prof.attachment == name:
                return prof
        return None

    c = rc.container
    sa = StepAccesses(rootfs(c.image), rc.profile, lookup, c.run_as_user)
    if step.exec is not None:
        commands = step.effects.processes or [shlex.join(step.exec.command)]
        actor = sa.spawn(commands, Proc([], None, rc.profile), first_is_entry=True)
    else:
        main = Proc(list(c.command), None, rc.profile)
        actor = sa.spawn(step.effects.processes, main, first_is_entry=False)
    sa.files_and_more(actor, step)
    return [
        AppArmorAccess(o.access, o.verdict, o.by, o.aliases, o.profile,
                       tuple(AppArmorRule(*r) for r in o.rules), o.reason, o.written)
        for o in sa.outcomes
    ]


def run_apparmor(ws: Workspace, sc: LoadedScenario) -> AppArmorEvidence:
    """Apply the pods against the loaded profiles and decide every step's accesses."""
    model = sc.model
    loaded = kernel.all_loaded(ws)
    ev = AppArmorEvidence()
    for node in model.cluster.nodes:
        ev.nodes[node.name] = _node_state(ws, node, loaded.get(node.name, []))
    running = apply_pods(ws, model, loaded)
    ev.containers = [r.evidence for r in running]
    by_key = {(r.pod.namespace, r.pod.name, r.container.name): r for r in running}
    for step in model.attack:
        where = step.in_pod
        pod = model.setup.pod(where[0], where[1]) if where else None
        container = pod.container(where[2]) if pod and where else None
        if pod is None or container is None:
            continue
        rc = by_key[(pod.namespace, pod.name, container.name)]
        st = AppArmorStep(step.id, pod.namespace, pod.name, container.name,
                          ran=rc.evidence.running)
        if st.ran:
            on = rc.evidence.node or pod.node
            st.accesses = _step_accesses(step, rc, _lookup(loaded.get(on, [])))
        ev.steps[step.id] = st
    return ev


def confined_processes(ws: Workspace, sc: LoadedScenario, node: str) -> list[tuple[str, str, str]]:
    """(exe, pid, profile) of the containers running confined on a node, for aa-status."""
    out = []
    for rc in apply_pods(ws, sc.model, kernel.all_loaded(ws)):
        ev = rc.evidence
        if ev.running and ev.node == node and ev.profile:
            exe = program_paths(rc.container.command[0], rootfs(rc.container.image))[-1]
            pid = 10000 + sum(map(ord, f"{ev.namespace}/{ev.pod}/{ev.container}")) % 20000
            out.append((exe, str(pid), ev.profile))
    return out
