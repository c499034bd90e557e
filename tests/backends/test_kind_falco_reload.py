"""Falco on the learner's current rules before the attack (lab/backends/kind/falco_reload.py):
the times of Falco's (re)starts and refused reloads read from its pod log with the
kubelet's time stamps (real-format samples), compared with the newest change under
/etc/falco; a Falco that does not reload in time, or cannot (a failed reload left a
replaced file unwatched), or crashed, has its pod restarted, and the evidence says so.
Also: a Falco-graded exec step whose command failed is a note on the Falco evidence."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import test_kind_backend as kb
from kind_fakes import FakeClock, FakeKube, FakeNodes, sample
from test_kind_backend import VALID, backend, checks, falco_setup, workspace

from lab.backends.kind.falco_reload import (
    falco_graded_nodes,
    newest_change,
    sync_falco_rules,
)
from lab.backends.kind.steps import inverse, scenario_node_names
from lab.grading.grader import grade
from lab.kind.falco_deploy import validate_argv
from lab.kind.falco_log import engine_times, kube_time, parse_falco_log, rules_state
from lab.kind.kube import ContainerInfo, PodInfo
from lab.kind.nodes import ExecResult
from lab.work import ProgressEvent

FIND = ("find", "-L", "/etc/falco", "-type", "f", "-printf", "%C@ %p\\n")
NS = "cks-lab-falco"
LOCAL = "/etc/falco/falco_rules.local.yaml"
RESTARTED = sample("falco-pod-log-ts-hot-restart.txt")
FAILED = sample("falco-pod-log-ts-failed-reload.txt")
BOOT = "".join(FAILED.splitlines(keepends=True)[:14])  # start-up only, source opened


def t(hms: str) -> datetime:
    """10:05:01.5 -> that time on the samples' day, UTC."""
    whole, _, frac = hms.partition(".")
    h, m, s = (int(x) for x in whole.split(":"))
    base = datetime(2025, 11, 27, h, m, s, tzinfo=UTC)
    return base + timedelta(microseconds=int(frac.ljust(6, "0")) if frac else 0)


# --- the log's times ------------------------------------------------------------------


def test_kube_time_reads_the_kubelets_stamp() -> None:
    assert kube_time("2025-11-27T10:00:00.050312417Z Thu Nov 27 10:00:00 2025: x") == (
        t("10:00:00.050312"),
        "Thu Nov 27 10:00:00 2025: x",
    )
    assert kube_time("2025-11-27T10:00:00.5Z {}") == (t("10:00:00.5"), "{}")
    assert kube_time("2025-11-27T10:00:00Z y")[0] == t("10:00:00")
    assert kube_time("Thu Nov 27 10:00:00 2025: x") == (None, "Thu Nov 27 10:00:00 2025: x")


def test_a_start_is_timed_by_its_rules_loading_not_the_dry_runs() -> None:
    times = engine_times(RESTARTED)
    assert times.stamped
    # the first start, and the restart after the dry run (whose own "Loading rules
    # from" at 10:05:00.42 opened no source)
    assert times.starts == [t("10:00:00.320004"), t("10:05:01.610552")]
    assert times.failures == []


def test_a_refused_reload_is_timed_by_the_kubelet() -> None:
    times = engine_times(FAILED)
    assert times.starts == [t("10:00:00.320004")]
    assert times.failures == [t("10:02:40.272301")]


def test_a_log_without_time_stamps_has_no_times() -> None:
    times = engine_times(sample("falco-pod-log.txt"))
    assert not times.stamped and times.starts == [] and times.failures == []


def test_the_existing_parser_reads_a_time_stamped_log_alike() -> None:
    log = parse_falco_log(FAILED)
    assert log.started and len(log.reload_failures) == 1 and log.alerts == []
    assert [a["rule"] for a in parse_falco_log(RESTARTED).alerts] == ["Shell in cks pod"]


@pytest.mark.parametrize(
    ("log", "changed", "state"),
    [
        (RESTARTED, "10:04:59", "current"),  # the 10:05:01 restart loaded it
        (RESTARTED, "10:00:00.5", "current"),
        # saved after the restart read the rules, before its source opened: not loaded
        (RESTARTED, "10:05:01.7", "pending"),
        (BOOT, "10:01:00", "pending"),  # Falco has not reacted (yet)
        (FAILED, "10:02:39.5", "rejected"),  # the dry run of these very files failed
        (FAILED, "10:04:00", "stuck"),  # a fix after the failure: the watch is gone
        (FAILED, "09:59:00", "current"),
    ],
    ids=[
        "restarted",
        "restarted-early",
        "saved-mid-start",
        "no-reaction",
        "rejected",
        "stuck",
        "older",
    ],  # fmt: skip
)
def test_rules_state(log: str, changed: str, state: str) -> None:
    assert rules_state(engine_times(log), t(changed)) == state


def test_newest_change_skips_editor_leftovers(tmp_path: Path) -> None:
    nodes = FakeNodes(files={"worker": {}})
    nodes.canned[FIND] = ExecResult(
        1,  # find lists what it can, and fails on what it cannot
        f"1764237600.7000000000 {LOCAL}\n"
        "1764237000.0000000000 /etc/falco/falco.yaml\n"
        "1764237999.0000000000 /etc/falco/.falco_rules.local.yaml.swp\n"
        "1764237999.0000000000 /etc/falco/falco_rules.local.yaml~\n"
        "1764237999.0000000000 /etc/falco/rules.d/4913\n",
        "find: '/etc/falco/broken': No such file or directory\n",
    )
    assert newest_change(nodes, "worker") == t("10:00:00.7")  # type: ignore[arg-type]
    nodes.canned[FIND] = ExecResult(1, "", "find: '/etc/falco': No such file or directory\n")
    assert newest_change(nodes, "worker") is None  # type: ignore[arg-type]


# --- bringing Falco onto the current files ------------------------------------------------


@dataclass
class ReloadKube(FakeKube):
    """A Kube whose DaemonSet starts a new Falco pod when one is deleted, and that
    records the order of deletes and execs."""

    next_state: ContainerInfo = field(
        default_factory=lambda: ContainerInfo("falco", "running", container_id="containerd://n")
    )
    next_log: str = BOOT
    order: list[str] = field(default_factory=list)

    def delete(self, kind: str, namespace: str, name: str, *, wait: float = 60) -> None:
        super().delete(kind, namespace, name, wait=wait)
        self.order.append(f"delete {name}")
        if kind == "Pod" and namespace == NS:
            node = self.pods_.pop((NS, name)).node
            self.labels.pop((NS, name), None)
            new = f"falco-{len(self.deleted)}"
            self.pods_[(NS, new)] = PodInfo(NS, new, node, "Running", [self.next_state])
            self.labels[(NS, new)] = {"app.kubernetes.io/name": "falco"}
            self.logs_[new] = self.next_log
            files = ["/etc/falco/falco_rules.yaml", LOCAL]
            self.exec_results[(new, *validate_argv(files))] = ExecResult(0, VALID, "")

    def exec(self, namespace: str, pod: str, container: str, argv: Any, **kw: Any) -> ExecResult:
        self.order.append(f"exec {pod}")
        return super().exec(namespace, pod, container, argv, **kw)


def reload_setup(tmp_path: Path, log: str, changed: str) -> tuple[Any, FakeNodes, ReloadKube]:
    sc, nodes, plain = falco_setup(tmp_path, log, VALID)
    kube = ReloadKube(**{f: getattr(plain, f) for f in plain.__dataclass_fields__})
    when = t(changed).timestamp()
    nodes.canned[FIND] = ExecResult(
        0,
        f"{when:.10f} {LOCAL}\n1764230000.0000000000 /etc/falco/falco.yaml\n",
        "",
    )
    return sc, nodes, kube


def run_sync(sc: Any, nodes: FakeNodes, kube: FakeKube, now: str, **kw: Any) -> tuple[Any, Any]:
    names = scenario_node_names(sc.model, "cks-lab")
    events: list[str] = []
    sleeps: list[float] = kw.pop("sleeps", [])
    out = sync_falco_rules(
        nodes,  # type: ignore[arg-type]
        kube,  # type: ignore[arg-type]
        sc.model,
        names,
        inverse(names),
        clock=FakeClock(t(now)),
        sleep=kw.pop("sleep", sleeps.append),
        progress=events.append,
        **kw,
    )
    return out, events


def test_falco_on_the_current_files_is_left_alone(tmp_path: Path) -> None:
    sc, nodes, kube = reload_setup(tmp_path, RESTARTED, "10:04:59")
    sleeps: list[float] = []
    got, events = run_sync(sc, nodes, kube, "10:06:00", sleeps=sleeps)
    assert got["worker"].state == "current" and got["worker"].notes == []
    assert got["controlplane"].state == "absent"  # falco_rules_load grades every node
    assert kube.deleted == [] and sleeps == [] and events == []


def test_falco_gets_time_to_reload_by_itself(tmp_path: Path) -> None:
    before = RESTARTED.split("Thu Nov 27 10:05:00 2025")[0].rsplit("\n", 1)[0] + "\n"
    sc, nodes, kube = reload_setup(tmp_path, before, "10:05:00")

    def sleep(seconds: float) -> None:  # the hot restart finishes while the lab waits
        kube.logs_["falco-w"] = RESTARTED

    got, events = run_sync(sc, nodes, kube, "10:05:00.5", sleep=sleep, wait=20.0)
    assert got["worker"].state == "reloaded" and got["worker"].notes == []
    assert kube.deleted == []
    assert "waiting for Falco to load your rules on node worker" in events
    assert all(e.phase == "falco" for e in events if isinstance(e, ProgressEvent))


def test_falco_that_does_not_reload_in_time_is_restarted(tmp_path: Path) -> None:
    sc, nodes, kube = reload_setup(tmp_path, BOOT, "10:05:00")
    sleeps: list[float] = []
    # the fake clock reads 10:05:01 first, one second later at each reading
    got, events = run_sync(sc, nodes, kube, "10:05:00", sleeps=sleeps, wait=5.0, settle=2.0)
    assert kube.deleted == [("Pod", NS, "falco-w")]
    assert got["worker"].state == "restarted" and got["worker"].error is None
    (note,) = got["worker"].notes
    assert "had not reloaded your rules 5s after your last change" in note
    assert "restarted Falco's pod before the attack" in note
    assert sum(sleeps[:-1]) == pytest.approx(4.0)  # waited until 5 s after the change
    assert sleeps[-1] == 2.0  # then let the new Falco open its source
    assert "restarting Falco on node worker so it loads your rules" in events


def test_a_change_long_ago_had_its_chance(tmp_path: Path) -> None:
    sc, nodes, kube = reload_setup(tmp_path, BOOT, "10:05:00")
    sleeps: list[float] = []
    got, _ = run_sync(sc, nodes, kube, "10:30:00", sleeps=sleeps, wait=20.0, settle=0)
    assert got["worker"].state == "restarted" and sleeps == []  # no waiting


def test_a_fix_after_a_failed_reload_restarts_falco_at_once(tmp_path: Path) -> None:
    sc, nodes, kube = reload_setup(tmp_path, FAILED, "10:04:00")
    sleeps: list[float] = []
    got, _ = run_sync(sc, nodes, kube, "10:04:01", sleeps=sleeps, wait=20.0, settle=0)
    assert kube.deleted == [("Pod", NS, "falco-w")] and sleeps == []
    (note,) = got["worker"].notes
    assert "an earlier hot reload of your rules failed" in note
    assert "no longer watches a rules file that was replaced" in note


def test_rules_falco_refused_are_not_restarted_into_a_crash(tmp_path: Path) -> None:
    sc, nodes, kube = reload_setup(tmp_path, FAILED, "10:02:39.5")
    got, _ = run_sync(sc, nodes, kube, "10:03:00", wait=20.0)
    assert got["worker"].state == "rejected" and kube.deleted == []


def test_a_crashed_falco_is_started_again_on_the_current_files(tmp_path: Path) -> None:
    sc, nodes, kube = reload_setup(tmp_path, FAILED, "10:04:00")
    old = kube.pods_[(NS, "falco-w")]
    old.phase = "Running"
    old.containers = [ContainerInfo("falco", "waiting", "CrashLoopBackOff", "back-off 5m0s")]
    got, _ = run_sync(sc, nodes, kube, "10:04:01", wait=20.0, settle=0)
    assert kube.deleted == [("Pod", NS, "falco-w")]
    assert got["worker"].state == "restarted"
    assert got["worker"].notes[0].startswith("Falco was not running (CrashLoopBackOff)")
    # and when the new one exits too, the evidence tells why Falco is not running
    (tmp_path / "again").mkdir()
    sc2, nodes2, kube2 = reload_setup(tmp_path / "again", FAILED, "10:04:00")
    kube2.next_state = ContainerInfo("falco", "terminated", "Error", "exit code 1")
    got2, _ = run_sync(sc2, nodes2, kube2, "10:04:01", wait=0, settle=0)
    assert got2["worker"].state == "crashed"
    assert "Falco did not start with your current files" in got2["worker"].notes[0]


def test_a_restart_that_does_not_come_up_is_an_error(tmp_path: Path) -> None:
    sc, nodes, kube = reload_setup(tmp_path, BOOT, "10:05:00")
    kube.next_state = ContainerInfo("falco", "waiting", "ContainerCreating")
    sleeps: list[float] = []
    got, _ = run_sync(sc, nodes, kube, "10:30:00", sleeps=sleeps, timeout=5.0)
    assert got["worker"].state == "timeout"
    assert got["worker"].error is not None
    assert "Falco could not be brought onto your current rules" in got["worker"].error
    assert "run the check again" in got["worker"].error
    assert 0 < sum(sleeps) <= 5.0


def test_only_the_nodes_a_falco_check_grades(tmp_path: Path, monkeypatch: Any) -> None:
    text = kb.FALCO_SCENARIO.replace("      - type: falco_rules_load\n", "")
    monkeypatch.setattr(kb, "FALCO_SCENARIO", text)
    sc, _, kube = falco_setup(tmp_path, BOOT, VALID)
    names = scenario_node_names(sc.model, "cks-lab")
    assert falco_graded_nodes(sc.model, kube, inverse(names)) == ["worker"]  # type: ignore[arg-type]


# --- in the backend -------------------------------------------------------------------------


def test_the_backend_restarts_a_stale_falco_before_the_attack(tmp_path: Path) -> None:
    sc, nodes, kube = reload_setup(tmp_path, BOOT, "10:05:00")
    b = backend(tmp_path, nodes, kube, FakeClock(t("10:30:00")))
    b.falco_reload_wait = 0
    ev = b.run_attack(sc, workspace(tmp_path, sc))
    assert kube.order[0] == "delete falco-w"
    assert kube.order.index("exec web") > 0  # the attack ran after the restart
    assert ev.falco is not None
    worker = ev.falco.nodes["worker"]
    assert worker.running and worker.error is None
    notes = grade(sc.model, ev).notes
    assert any(
        n.startswith("Falco on node worker: Falco had not reloaded your rules") for n in notes
    )


def test_the_evidence_says_falco_could_not_be_brought_onto_the_rules(tmp_path: Path) -> None:
    sc, nodes, kube = reload_setup(tmp_path, BOOT, "10:05:00")
    kube.next_state = ContainerInfo("falco", "waiting", "ContainerCreating")
    b = backend(tmp_path, nodes, kube, FakeClock(t("10:30:00")))
    b.falco_reload_wait, b.falco_timeout = 0, 3
    ev = b.run_attack(sc, workspace(tmp_path, sc))
    assert ev.falco is not None
    worker = ev.falco.nodes["worker"]
    assert not worker.running
    assert worker.error and "could not be brought onto your current rules" in worker.error
    passed, text = checks(grade(sc.model, ev))["falco_alert"][0]
    assert not passed and "could not be brought onto your current rules" in text


# --- failed attack commands --------------------------------------------------------------


CAT_FAILED = ExecResult(1, "", "cat: can't open '/etc/shadow': No such file or directory\n")


def test_a_failed_command_of_a_falco_graded_step_is_noted(tmp_path: Path) -> None:
    sc, nodes, kube = falco_setup(tmp_path, BOOT, VALID)
    kube.exec_results[("web", "sh", "-c", "cat /etc/shadow")] = CAT_FAILED
    ev = backend(tmp_path, nodes, kube).run_attack(sc, workspace(tmp_path, sc))
    assert ev.falco is not None
    assert ev.falco.nodes["worker"].notes == [
        "attack step 'shell-shadow': the command failed (exit 1): cat: can't open "
        "'/etc/shadow': No such file or directory, so Falco saw only what it did before it failed"
    ]
    assert any(n.startswith("Falco on node worker: attack step 'shell-shadow'")
               for n in grade(sc.model, ev).notes)  # fmt: skip


def test_a_secret_steps_failure_keeps_its_error_output_to_itself(
    tmp_path: Path, monkeypatch: Any
) -> None:
    text = kb.FALCO_SCENARIO.replace(
        "    description: a shell reads /etc/shadow\n",
        "    description: a shell reads /etc/shadow\n    secret: true\n",
    )
    monkeypatch.setattr(kb, "FALCO_SCENARIO", text)
    sc, nodes, kube = falco_setup(tmp_path, BOOT, VALID)
    kube.exec_results[("web", "sh", "-c", "cat /etc/shadow")] = CAT_FAILED
    ev = backend(tmp_path, nodes, kube).run_attack(sc, workspace(tmp_path, sc))
    assert ev.falco is not None
    (note,) = ev.falco.nodes["worker"].notes
    assert note.startswith("attack step 'shell-shadow': the command failed (exit 1), so Falco")
    assert "cat:" not in note


def test_a_step_no_falco_check_grades_gets_no_note(tmp_path: Path, monkeypatch: Any) -> None:
    text = kb.FALCO_SCENARIO.replace(
        "      - {type: falco_alert, step: shell-shadow, rule: Shell in cks pod, "
        "output_contains: shadow}\n",
        "",
    )
    monkeypatch.setattr(kb, "FALCO_SCENARIO", text)
    sc, nodes, kube = falco_setup(tmp_path, BOOT, VALID)
    kube.exec_results[("web", "sh", "-c", "cat /etc/shadow")] = CAT_FAILED
    ev = backend(tmp_path, nodes, kube).run_attack(sc, workspace(tmp_path, sc))
    assert ev.falco is not None and ev.falco.nodes["worker"].notes == []
