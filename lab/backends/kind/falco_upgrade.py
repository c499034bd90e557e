"""A package_upgrade attack step on a kind node, done for real and undone afterwards.

The upgrade puts the files it lists back as the package ships them (the scenario's
setup content for that node and path, as on the sim) and restarts Falco, whose
DaemonSet pod reads the node's /etc/falco: its pod is deleted and the DaemonSet's
new one starts on the package's files, so the later steps are seen by the upgraded
Falco. Before that, the Falco being replaced is read (its status and alerts since
the run started): its pod and log are gone after the restart.

After the evidence is read the learner's files go back exactly (bytes and mode; a
symbolic link as a link; a file that was not there is removed again), and Falco is
restarted once more, so the next check starts from the learner's own files. What
goes back is also kept in a journal in the cluster's folder until it is back, so a
check killed half-way still returns the learner's files at the next one.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.errors import LabError
from lab.evidence import FalcoNode
from lab.scenarios.loader import LoadedScenario
from lab.scenarios.model import AttackStep
from lab.work import Progress, ProgressEvent, no_progress

if TYPE_CHECKING:
    from lab.kind.kube import Kube
    from lab.kind.nodes import LabNodes

JOURNAL = "package-upgrade-kept.json"  # in the cluster's folder: the learner's files to put back
LIMIT = 1 << 20


@dataclass(frozen=True)
class Kept:
    """A learner's file an upgrade replaced: what goes back afterwards."""

    node: str
    path: str
    data: bytes | None  # None: there was no file
    mode: int = 0o644
    link: str | None = None  # a symbolic link's target: the link goes back

    def same_as(self, data: bytes, mode: int) -> bool:
        return self.link is None and self.data == data and self.mode == mode

    def to_json(self) -> dict[str, Any]:
        raw = None if self.data is None else base64.b64encode(self.data).decode()
        return {"node": self.node, "path": self.path, "data": raw, "mode": self.mode,
                "link": self.link}  # fmt: skip

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> Kept:
        raw = d.get("data")
        data = None if raw is None else base64.b64decode(str(raw))
        link = d.get("link")
        return Kept(str(d["node"]), str(d["path"]), data, int(d.get("mode", 0o644)) & 0o7777,
                    None if link is None else str(link))  # fmt: skip


@dataclass
class NodeUpgrade:
    """One upgrade step as it ran: what FalcoEvidence.upgrades is made of."""

    step: str
    node: str
    package: str
    restored: list[str]
    changed: list[str]  # the restored files the learner had changed: their change is lost
    before: FalcoNode  # the Falco the upgrade stopped, as it was just before
    before_alerts: list[dict[str, Any]]  # its alerts since the run started
    outcome: str  # the restart: "started" | "crashed" | "timeout" | "absent" (no Falco pod)
    notes: list[str] = field(default_factory=list)  # for the restarted Falco


def read_kept(nodes: LabNodes, node: str, path: str) -> Kept:
    """The learner's file as it is now (a symbolic link: its target, and the content
    it leads to)."""
    from lab.backends.kind.steps import node_stat
    from lab.kind.nodes import NodeFileError

    st = node_stat(nodes, node, path, follow=False)
    if st is None:
        return Kept(node, path, None)
    link = None
    if st.kind == "symlink":
        target = nodes.exec(node, ["readlink", "--", path], timeout=30)
        if target.code != 0 or not target.stdout.strip():
            raise LabError(f"cannot read the symbolic link {path} on node {node} before the "
                           "package upgrade")  # fmt: skip
        link = target.stdout.rstrip("\n")
    try:
        data: bytes | None = nodes.read_node_bytes(node, path, LIMIT)
    except NodeFileError as e:
        if e.reason == "too-large":
            raise LabError(
                f"{path} on node {node} is larger than 1 MiB: the lab does not upgrade it"
            ) from e
        if e.reason != "missing" or link is None:  # a dangling link: its content is none
            raise LabError(f"cannot read {path} on node {node} before the package upgrade: "
                           f"{e}") from e  # fmt: skip
        data = None
    return Kept(node, path, data, 0o777 if link else st.mode, link)


def put_back(nodes: LabNodes, kept: Kept) -> None:
    """The learner's file as it was."""
    if kept.link is not None:
        r = nodes.exec(kept.node, ["ln", "-sfn", "--", kept.link, kept.path], timeout=30)
        if r.code != 0:
            raise LabError(r.stderr.strip() or f"ln exited with {r.code}")
    elif kept.data is None:
        nodes.remove(kept.node, kept.path)
    else:
        nodes.put_file(kept.node, kept.path, kept.data, kept.mode)


class PackageUpgrades:
    """The package upgrades of one attack run, and undoing them."""

    def __init__(
        self,
        nodes: LabNodes,
        kube: Kube,
        sc: LoadedScenario,
        names: Mapping[str, str],
        *,
        since: datetime,
        clock: Callable[[], datetime],
        sleep: Callable[[float], None],
        progress: Progress = no_progress,
        grace: float = 0.0,  # for Falco to print the alerts of the steps before an upgrade
        timeout: float = 120.0,
        journal_dir: Path | None = None,
    ) -> None:
        self.nodes, self.kube, self.sc, self.names = nodes, kube, sc, names
        self.since, self.clock, self.sleep = since, clock, sleep
        self.progress, self.grace, self.timeout = progress, grace, timeout
        self.journal = journal_dir / JOURNAL if journal_dir is not None else None
        self.done: list[NodeUpgrade] = []
        self.kept: dict[tuple[str, str], Kept] = {}  # (node, path) -> the learner's original
        self.replaced: set[tuple[str, str]] = set()  # those the package's version overwrote

    def tell(self, message: str, phase: str = "attack") -> None:
        self.progress(ProgressEvent(message, phase=phase))

    def _save_journal(self) -> None:
        if self.journal is None:
            return
        from lab.fsutil import atomic_write_bytes

        entries = [k.to_json() for key, k in self.kept.items() if key in self.replaced]
        atomic_write_bytes(self.journal, json.dumps(entries).encode(), 0o600)

    # --- the upgrade ---------------------------------------------------------------------

    def run(self, step: AttackStep) -> NodeUpgrade:
        """Upgrade the package of a step: its files as shipped, Falco restarted on them."""
        from lab.backends.kind.falco import falco_node

        up = step.package_upgrade
        assert up is not None
        node = up.node
        if self.grace:
            self.sleep(self.grace)  # the steps before it: Falco prints an alert a moment later
        before, alerts = falco_node(self.nodes, self.kube, node, self.names[node], self.since)
        shipped = {f.path: f for f in self.sc.model.setup.files if f.node == node}
        changed: list[str] = []
        self.tell(f"step {step.id}: upgrading the {up.package} package on node {node}: it puts "
                  f"back {', '.join(up.restore)} as the package ships them")  # fmt: skip
        for path in up.restore:
            f = shipped.get(path)
            if f is None:  # the scenario's validation refuses it
                raise LabError(f"{path} is not a setup file of node {node}: nothing to restore")
            content, mode = self.sc.node_file_bytes(f), f.file_mode
            key = (node, path)
            mine = self.kept.get(key) or read_kept(self.nodes, node, path)
            if mine.data != content:  # as on the sim: the content Falco reads
                changed.append(path)
            self.kept.setdefault(key, mine)
            if not mine.same_as(content, mode):
                self.replaced.add(key)
                self._save_journal()  # before the learner's file is overwritten
            self.nodes.put_file(node, path, content, mode)
        outcome, notes = self._restart(node, "so it loads the upgraded package's files")
        done = NodeUpgrade(step.id, node, up.package, list(up.restore), changed, before,
                           alerts, outcome, notes)  # fmt: skip
        self.done.append(done)
        return done

    def _restart(self, node: str, why: str) -> tuple[str, list[str]]:
        """Delete the node's Falco pod and wait for the DaemonSet's new one to start."""
        from lab.backends.kind.falco_reload import POLL, START_SETTLE, _Run
        from lab.kind.falco_deploy import FALCO_NAMESPACE, falco_pod

        container = self.names[node]
        pod = falco_pod(self.kube, container)
        if pod is None:
            return "absent", []
        self.tell(f"restarting Falco on node {node} {why}", "falco")
        try:
            self.kube.delete("Pod", FALCO_NAMESPACE, pod, wait=self.timeout)
        except LabError as e:
            return "timeout", [f"the lab could not restart Falco's pod {pod}: {e.message}"]
        run = _Run(self.nodes, self.kube, node, container, self.clock, self.sleep, self.progress,
                   0.0, self.timeout, START_SETTLE, POLL)  # fmt: skip
        outcome = run.await_start(pod)
        if outcome == "timeout":
            return outcome, [f"Falco had not started {self.timeout:g}s after the lab restarted "
                             "its pod"]  # fmt: skip
        return outcome, []

    # --- undoing it -----------------------------------------------------------------------

    def undo(self) -> None:
        """Put the learner's files back and restart Falco on them (see the module)."""
        if not self.done and not self.replaced:
            return
        back = [k for key, k in self.kept.items() if key in self.replaced]
        if not back:
            self.tell("the package upgrade changed none of your files: nothing to put back",
                      "falco")  # fmt: skip
            return
        failed = _put_all(self.nodes, back, self.tell)
        if not failed and self.journal is not None:
            self.journal.unlink(missing_ok=True)
        for node in sorted({k.node for k in back}):
            try:
                outcome, notes = self._restart(node, "on your files again")
            except LabError as e:  # the files are back: the next check restarts it if need be
                outcome, notes = "timeout", [e.message]
            if outcome != "started":
                why = notes[0] if notes else f"it {outcome}"
                self.tell(f"warning: Falco on node {node} after putting your files back: {why}",
                          "falco")  # fmt: skip
        if failed:
            raise LabError(
                "the lab could not put your files back after the package upgrade: "
                + "; ".join(failed)
                + "; they are kept in the cluster's folder and go back at the next check"
            )


def _put_all(nodes: LabNodes, back: Sequence[Kept], tell: Callable[..., None]) -> list[str]:
    failed: list[str] = []
    for k in back:
        try:
            put_back(nodes, k)
        except LabError as e:
            failed.append(f"{k.node}:{k.path} ({e.message})")
            continue
        tell(f"put your {k.path} back on node {k.node}, as you left it", "falco")
    return failed


def recover(nodes: LabNodes, journal_dir: Path, progress: Progress = no_progress) -> None:
    """Put back the learner's files an interrupted check left replaced by a package's."""
    path = journal_dir / JOURNAL
    try:
        raw = json.loads(path.read_bytes())
        kept = [Kept.from_json(d) for d in raw if isinstance(d, dict)]
    except FileNotFoundError:
        return
    except (OSError, ValueError, KeyError, TypeError) as e:
        progress(ProgressEvent(f"warning: cannot read {path}: {e}", phase="falco"))
        return

    def tell(message: str, phase: str = "falco") -> None:
        progress(ProgressEvent(message + " (an earlier check was interrupted)", phase=phase))

    failed = _put_all(nodes, kept, tell)
    if failed:
        raise LabError("the lab could not put back your files an interrupted package upgrade "
                       f"replaced: {'; '.join(failed)} (kept in {path})")  # fmt: skip
    path.unlink(missing_ok=True)
