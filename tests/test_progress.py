"""The progress store: a real SQLite file in each test's own lab home."""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from lab import progress, service
from lab.cli import main
from lab.grading.results import CheckResult, ScenarioResult, TaskResult
from lab.scenarios.catalog import Catalog

WS = Path("/tmp/ws")


def result(sid: str, tasks: dict[str, tuple[int, int]], penalty: int = 0) -> ScenarioResult:
    """A result whose task t earned tasks[t][0] of tasks[t][1] points (before penalty)."""
    return ScenarioResult(
        sid,
        sid.title(),
        "sim",
        "run",
        [
            TaskResult(
                tid,
                tid,
                [CheckResult("x", f"{tid} check", got == of, got, of, "because")],
                hint_penalty=penalty if i == 0 else 0,
            )
            for i, (tid, (got, of)) in enumerate(tasks.items())
        ],
    )


def record(sid: str, tasks: dict[str, tuple[int, int]], at: str, penalty: int = 0) -> None:
    progress.record_check(sid, ["falco"], result(sid, tasks, penalty), workspace=WS,
                          backend="sim", at=at)


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    return r.exit_code, r.stdout, r.stderr


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == progress.WARNINGS]


def test_checks_and_time_are_kept_and_summed(lab_home: Path) -> None:
    record("a", {"t1": (0, 4), "t2": (2, 2)}, "2024-05-01T10:00:00+00:00")
    record("b", {"t1": (3, 3)}, "2024-05-01T11:00:00+00:00")
    record("a", {"t1": (4, 4), "t2": (2, 2)}, "2024-05-01T14:00:00+02:00", penalty=1)
    record("a", {"t1": (1, 4), "t2": (2, 2)}, "2024-05-01T13:00:00")  # no offset: UTC
    progress.add_time("a", 90)
    progress.add_time("a", 30.5)

    assert (lab_home / "progress.sqlite3").is_file()
    got = progress.scenario_progress(["a", "b", "never"])
    assert got["a"] == progress.ScenarioProgress(
        "a", attempts=3, best_points=5, max_points=6, last_points=3, passed=True,
        last_at="2024-05-01T13:00:00+00:00", seconds=120.5, best_score=5 / 6,
    )
    assert got["b"].passed and got["b"].attempts == 1 and got["b"].seconds == 0
    assert got["never"] == progress.ScenarioProgress("never")
    assert progress.time_spent("a") == 120.5 and progress.time_spent("b") == 0

    history = progress.attempt_history()
    assert [(h.scenario, h.points) for h in history] == [("a", 3), ("a", 5), ("b", 3), ("a", 2)]
    passed = history[1]
    assert passed.at == "2024-05-01T12:00:00+00:00"  # stored as UTC
    assert passed.passed and passed.hint_penalty == 1
    assert passed.tasks == {"t1": True, "t2": True} and passed.skills == ("falco",)
    assert passed.workspace == str(WS) and passed.backend == "sim"
    assert [h.points for h in progress.attempt_history("a", limit=2)] == [3, 5]
    assert progress.attempt_history("b")[0].tasks == {"t1": True}


def test_add_time_ignores_nonsense_and_caps_one_jump(lab_home: Path) -> None:
    for bad in (0, -5, float("nan"), float("inf")):
        progress.add_time("a", bad)
    assert not (lab_home / "progress.sqlite3").exists()  # nothing was worth writing
    progress.add_time("a", 10 * 3600)  # a laptop woke up after a night
    progress.add_time("a", 60)
    assert progress.time_spent("a") == progress.MAX_ADD_SECONDS + 60


def test_reading_an_absent_store_creates_nothing(lab_home: Path) -> None:
    assert progress.scenario_progress(["a"]) == {"a": progress.ScenarioProgress("a")}
    assert progress.attempt_history() == [] and progress.time_spent("a") == 0
    assert not (lab_home / "progress.sqlite3").exists()


def test_schema_is_versioned(lab_home: Path) -> None:
    progress.add_time("a", 1)
    conn = sqlite3.connect(lab_home / "progress.sqlite3")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == progress.SCHEMA_VERSION
    conn.close()


def test_a_store_from_a_newer_lab_is_left_alone(
    lab_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    conn = sqlite3.connect(lab_home / "progress.sqlite3")
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    before = (lab_home / "progress.sqlite3").read_bytes()
    record("a", {"t": (1, 1)}, "2024-05-01T10:00:00")
    assert (lab_home / "progress.sqlite3").read_bytes() == before
    assert any("newer cks-lab (schema 99" in w for w in warnings(caplog))


def test_skill_summary_over_the_catalog() -> None:
    scenarios, _ = Catalog.default().summaries()
    record("audit-enable-logging", {"t": (3, 3)}, "2024-05-01T10:00:00")
    record("audit-policy-secrets", {"t": (1, 4)}, "2024-05-01T10:01:00")
    record("audit-policy-secrets", {"t": (2, 4)}, "2024-05-01T10:02:00")
    progress.add_time("audit-policy-secrets", 600)
    progress.add_time("falco-shell-alert", 120)

    skills = {s.skill: s for s in progress.skill_summary(scenarios)}
    assert list(skills) == sorted(skills)
    assert skills["audit-logging"] == progress.SkillSummary(
        "audit-logging", scenarios=2, attempted=2, passed=1, attempts=3, seconds=600,
        mean_best=(1.0 + 0.5) / 2,
    )
    falco = skills["falco"]
    assert (falco.scenarios, falco.attempted, falco.attempts, falco.seconds) == (4, 0, 0, 120)
    assert falco.mean_best == 0


def test_catalog_entries_statuses(tmp_path: Path) -> None:
    catalog = Catalog.default()
    record("audit-enable-logging", {"t": (1, 2)}, "2024-05-01T10:00:00")
    record("audit-enable-logging", {"t": (2, 2)}, "2024-05-01T10:05:00")
    record("audit-enable-logging", {"t": (0, 2)}, "2024-05-01T10:09:00")  # passed once: passed
    record("audit-policy-secrets", {"t": (1, 2)}, "2024-05-01T10:00:00")
    assert run("start", "falco-shell-alert")[0] == 0  # the default workspace
    progress.add_time("apparmor-deny-write", 30)  # opened in the TUI, never started
    elsewhere = tmp_path / "mine"
    assert run("start", "falco-etc-writes", "-w", str(elsewhere))[0] == 0  # now the current one

    entries, errors = service.catalog_entries(catalog)
    assert errors == []
    by_id = {e.scenario.id: e for e in entries}
    assert {k: e.status for k, e in by_id.items() if e.status != "new"} == {
        "audit-enable-logging": "passed",
        "audit-policy-secrets": "failed",
        "falco-shell-alert": "in progress",
        "apparmor-deny-write": "in progress",
        "falco-etc-writes": "in progress",
    }
    assert by_id["apparmor-raw-sockets"].status == "new"
    assert by_id["apparmor-raw-sockets"].workspace is None
    assert by_id["falco-shell-alert"].workspace == service.default_workspace("falco-shell-alert")
    assert by_id["falco-etc-writes"].workspace == elsewhere.resolve()
    assert by_id["audit-enable-logging"].progress.attempts == 3


def test_check_records_an_attempt_and_progress_shows_it(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert run("start", "audit-policy-secrets", "-w", str(ws))[0] == 0
    assert run("check", "-w", str(ws))[0] == 1
    assert run("solution", "--apply", "--yes", "-w", str(ws))[0] == 0
    assert run("check", "-w", str(ws))[0] == 0

    last, first = progress.attempt_history("audit-policy-secrets")
    assert last.passed and not first.passed and last.id > first.id
    assert last.points == last.max_points > first.points
    assert last.skills == ("audit-logging",) and last.workspace == str(ws) and last.backend == "sim"
    assert all(last.tasks.values()) and not all(first.tasks.values())

    code, out, _ = run("progress")
    assert code == 0
    assert "audit-logging  1/2" in out
    assert f"audit-policy-secrets  passed  2       {last.points}/{last.max_points}" in out
    code, out, _ = run("progress", "--json", "--scenario", "audit-policy-secrets")
    data = json.loads(out)
    assert code == 0 and [a["passed"] for a in data["attempts"]] == [True, False]
    (entry,) = data["scenarios"]
    assert entry["status"] == "passed" and entry["attempts"] == 2
    code, _, err = run("progress", "--scenario", "no-such-scenario")
    assert code == 2 and "no checks recorded for it" in err


def test_a_corrupt_store_is_moved_aside_and_started_afresh(
    lab_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = lab_home / "progress.sqlite3"
    store.write_bytes(b"not a database at all, " * 50)
    record("a", {"t": (1, 1)}, "2024-05-01T10:00:00")

    (aside,) = lab_home.glob("progress.sqlite3.corrupt-*")
    assert aside.read_bytes() == b"not a database at all, " * 50  # kept, not deleted
    assert [h.scenario for h in progress.attempt_history()] == ["a"]  # the check is kept
    (w,) = warnings(caplog)
    assert str(store) in w and aside.name in w and "starts afresh" in w


def test_a_store_corrupt_inside_is_moved_aside_when_read(
    lab_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for i in range(200):
        record("a", {"t": (1, 1)}, f"2024-05-01T10:00:{i % 60:02d}")
    store = lab_home / "progress.sqlite3"
    data = bytearray(store.read_bytes())
    for page in range(4096, len(data), 4096):  # the header is fine, the tables are not
        data[page : page + 64] = b"\xff" * 64
    store.write_bytes(data)

    assert progress.attempt_history() == []
    assert len(list(lab_home.glob("progress.sqlite3.corrupt-*"))) == 1
    assert any("malformed" in w for w in warnings(caplog))
    record("a", {"t": (1, 1)}, "2024-05-02T10:00:00")
    assert len(progress.attempt_history()) == 1


def test_check_grades_when_the_store_cannot_be_written(
    lab_home: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # chmod does not stop root: a folder where the file should be does.
    (lab_home / "progress.sqlite3").mkdir()
    ws = tmp_path / "ws"
    assert run("start", "audit-policy-secrets", "-w", str(ws))[0] == 0
    code, out, err = run("check", "-w", str(ws))
    assert code == 1 and "Score:" in out  # graded as ever
    assert any("not recorded" in w and "progress.sqlite3" in w for w in warnings(caplog))
    assert (lab_home / "progress.sqlite3").is_dir()  # not a file: not moved aside
    assert not list(lab_home.glob("progress.sqlite3.corrupt-*"))
    assert json.loads((ws / ".lab/state.json").read_text())["attempts"]  # the workspace's own

    code, out, _ = run("progress")
    assert code == 0 and "none yet" in out
    entries, _ = service.catalog_entries(Catalog.default())
    assert {e.scenario.id: e.status for e in entries}["audit-policy-secrets"] == "in progress"


def test_check_grades_even_if_recording_has_a_bug(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(progress, "record_check", broken)
    op, _ = service.start(Catalog.default(), "audit-policy-secrets", tmp_path / "ws")
    assert not service.check(op).passed
    assert any("RuntimeError: boom" in w for w in warnings(caplog))


def test_a_writer_waits_for_another_instead_of_failing(lab_home: Path) -> None:
    progress.add_time("a", 1)  # the store exists
    holder = sqlite3.connect(lab_home / "progress.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another cks-lab in the middle of a write
    holder.execute("UPDATE time_spent SET seconds = 100")
    writer = threading.Thread(target=record, args=("b", {"t": (1, 1)}, "2024-05-01T10:00:00"))
    writer.start()
    time.sleep(0.5)
    assert writer.is_alive()  # waiting on the lock, not given up
    holder.execute("COMMIT")
    holder.close()
    writer.join(timeout=progress.BUSY_SECONDS)
    assert not writer.is_alive()
    assert [h.scenario for h in progress.attempt_history()] == ["b"]
    assert progress.time_spent("a") == 100


def test_two_processes_writing_at_once_lose_nothing(lab_home: Path) -> None:
    code = (
        "import sys\n"
        "from lab import progress\n"
        "from lab.grading.results import CheckResult, ScenarioResult, TaskResult\n"
        "r = ScenarioResult('s', 'S', 'sim', 'r',"
        " [TaskResult('t', 'T', [CheckResult('x', 'c', True, 1, 1, '')])])\n"
        "for i in range(40):\n"
        "    progress.record_check(sys.argv[1], ['falco'], r, workspace='/w', backend='sim')\n"
        "    progress.add_time('shared', 1)\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, name], stderr=subprocess.PIPE, text=True)
        for name in ("cli", "tui")
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0 and "lab.progress" not in err and err == "", err
    history = progress.attempt_history(limit=1000)
    assert len(history) == 80 and len({h.id for h in history}) == 80
    assert {h.scenario for h in history} == {"cli", "tui"}
    assert progress.time_spent("shared") == 80


def test_warnings_go_to_the_lab_progress_logger(
    lab_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (lab_home / "progress.sqlite3").mkdir()
    with caplog.at_level(logging.WARNING, logger=progress.WARNINGS):
        for _ in range(3):  # the TUI adds time every few seconds: one warning is enough
            progress.add_time("a", 5)
    (w,) = warnings(caplog)
    assert w.startswith("time spent was not recorded in your progress: ")
