"""Exam mode (lab/exam): the draw, the clock, the state on disk, the refusals
during the exam, grading at submit, the review. Time is passed in, never slept."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import pytest
from click.testing import CliRunner

from lab import exam as ex
from lab import service
from lab.cli import main
from lab.errors import LabError
from lab.exam.draw import DOMAIN_WEIGHTS, Candidate, domain_shares, draw
from lab.exam.present import review_json, review_text, status_text
from lab.exam.state import parse_duration
from lab.paths import bundled_scenarios_dir
from lab.scenarios.catalog import Catalog
from lab.workspace import Workspace

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
MON, HARD = "monitoring-logging-runtime-security", "system-hardening"


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    return r.exit_code, r.stdout, r.stderr


def catalog_of(tmp_path: Path, weights: dict[str, int]) -> Catalog:
    """A catalog of copies of bundled scenarios, with their weights set."""
    root = tmp_path / "catalog"
    for sid, weight in weights.items():
        shutil.copytree(bundled_scenarios_dir() / sid, root / sid)
        y = root / sid / "scenario.yaml"
        text, n = re.subn(r"^weight: \d+$", f"weight: {weight}", y.read_text(), flags=re.M)
        assert n == 1
        y.write_text(text)
    return Catalog([root])


def solve(catalog: Catalog, workspace: Path) -> None:
    """Write the reference solution's files into a workspace, as a learner would."""
    op = service.open_scenario(catalog, workspace)
    for t in op.sc.model.tasks:
        assert not t.solution.node_exec  # these tests pick scenarios solved by files alone
        for f in t.solution.files:
            Workspace(workspace).write_node_file(op.sc, f)


# --- durations -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, minutes",
    [("120m", 120), ("2h", 120), ("90", 90), ("1h30m", 90), (" 45M ", 45), ("1h 5m", 65),
     ("1", 1), ("24h", 1440), ("0h1m", 1), ("1h59m", 119), ("99m", 99)],
)  # fmt: skip
def test_durations(text: str, minutes: int) -> None:
    assert parse_duration(text) == timedelta(minutes=minutes)


@pytest.mark.parametrize(
    "text, why",
    [("", "give minutes"), ("abc", "give minutes"), ("1.5h", "give minutes"),
     ("-5", "give minutes"), ("2d", "give minutes"), ("m", "give minutes"), ("h30", "give minutes"),
     ("30m1h", "give minutes"), ("0", "1 minute to 24 hours"), ("0m", "1 minute to 24 hours"),
     ("25h", "1 minute to 24 hours"), ("9" * 40, "give minutes"), ("٣٠", "give minutes"),
     ("1h99m", "the minutes go from 0 to 59"), ("2h60m", r"give minutes alone \(180m\)")],
)  # fmt: skip
def test_bad_durations_say_what_is_accepted(text: str, why: str) -> None:
    with pytest.raises(LabError, match=why) as e:
        parse_duration(text)
    assert repr(text) in str(e.value)


def test_cli_rejects_a_bad_duration_before_drawing_anything(lab_home: Path) -> None:
    code, _, err = run("exam", "start", "--duration", "2 hours")
    assert code == 2 and "bad duration '2 hours'" in err and "1h30m" in err
    assert not (lab_home / "exams").exists()


# --- the draw --------------------------------------------------------------------


def bundled_pool() -> list[Candidate]:
    good, _ = Catalog.default().scan()
    return [Candidate(s.id, s.model.domain, s.model.weight, len(s.model.tasks)) for s in good]


def synthetic_pool(n: int = 30) -> list[Candidate]:
    rng = random.Random(0)
    return [
        Candidate(f"{d[:3]}-{i:02d}", d, rng.randint(3, 9), rng.choice([1, 1, 2, 3]))
        for d in (MON, HARD)
        for i in range(n)
    ]


def test_the_same_seed_draws_the_same_exam_whatever_the_pool_order() -> None:
    pool = synthetic_pool()
    first = draw(pool, 17, seed=42)
    shuffled = list(pool)
    random.Random(1).shuffle(shuffled)
    assert draw(shuffled, 17, seed=42) == first
    others = {tuple(c.id for c in draw(pool, 17, seed=s)) for s in range(20)}
    assert len(others) > 15  # seeds do draw different exams


@pytest.mark.parametrize("tasks", [1, 5, 15, 17, 18])
def test_a_draw_covers_the_tasks_asked_for_without_repeats(tasks: int) -> None:
    pool = bundled_pool()
    total = sum(c.tasks for c in pool)
    assert total >= 18  # the bundled catalog has enough for a full-size exam
    for seed in range(50):
        got = draw(pool, tasks, seed)
        ids = [c.id for c in got]
        assert len(ids) == len(set(ids))
        covered = sum(c.tasks for c in got)
        assert covered >= tasks
        # it stops as soon as enough is drawn: without the last pick it was short
        assert covered - got[-1].tasks < tasks


def test_asking_for_more_tasks_than_the_catalog_has_draws_everything() -> None:
    pool = bundled_pool()
    got = draw(pool, 100, seed=3)
    assert sorted(c.id for c in got) == sorted(c.id for c in pool)


def test_domains_are_drawn_in_the_cks_ratio() -> None:
    shares = domain_shares([MON, HARD])
    assert shares[MON] == pytest.approx(20 / 35) and shares[HARD] == pytest.approx(15 / 35)
    assert DOMAIN_WEIGHTS == {MON: 20, HARD: 15}
    pool = synthetic_pool()
    per_exam = []
    for seed in range(300):
        got = draw(pool, 17, seed)
        mon = sum(c.tasks for c in got if c.domain == MON)
        per_exam.append(mon / sum(c.tasks for c in got))
    mean = sum(per_exam) / len(per_exam)
    assert 0.53 < mean < 0.61  # 20/35 = 0.571
    # each exam is pulled towards the ratio, not only the average over many
    assert all(0.35 < s < 0.8 for s in per_exam)


def test_a_domain_with_nothing_left_leaves_its_share_to_the_other() -> None:
    pool = [Candidate("h1", HARD, 5, 1)] + [Candidate(f"m{i}", MON, 5, 1) for i in range(10)]
    for seed in range(20):
        got = draw(pool, 8, seed)
        assert sum(c.tasks for c in got) == 8 and len({c.id for c in got}) == 8


def test_a_scenario_weight_makes_it_likelier() -> None:
    pool = [Candidate(f"m{i}", MON, 90 if i == 0 else 2, 1) for i in range(10)]
    counts = Counter(c.id for seed in range(400) for c in draw(pool, 1, seed))
    assert counts["m0"] > 250  # 90 / (90 + 18) = 83 % expected
    assert counts["m0"] < 400


# --- starting, the state on disk, the clock ----------------------------------------


def test_start_creates_a_workspace_per_item_and_the_state(lab_home: Path) -> None:
    cat = Catalog.default()
    exam = ex.start_exam(cat, short=True, seed=11, now=T0)
    assert exam.task_count >= 5 and exam.duration == timedelta(minutes=30)
    assert exam.deadline == T0 + timedelta(minutes=30)
    assert exam.remaining(T0 + timedelta(minutes=10)) == timedelta(minutes=20)
    assert exam.remaining(T0 + timedelta(hours=1)) == timedelta(0)
    state = json.loads((lab_home / "exams" / exam.id / "exam.json").read_text())
    assert state["seed"] == 11 and state["started_at"] == "2026-11-28T09:00:00+00:00"
    assert state["deadline"] == "2026-11-28T09:30:00+00:00"
    assert [i["scenario"] for i in state["items"]] == list(exam.scenarios)
    for item in exam.items:
        assert item.workspace == lab_home / "exams" / exam.id / item.scenario
        ws = Workspace(item.workspace)
        assert ws.state()["exam"] == exam.id and ws.scenario_id == item.scenario
        sc = cat.get(item.scenario)
        assert item.tasks == tuple(t.id for t in sc.model.tasks)
        assert item.weight == sc.model.weight
    assert json.loads((lab_home / "exams" / "current.json").read_text()) == {"exam": exam.id}
    # the lab's other commands (shell, node exec) work on the first item
    assert service.current_workspace() == exam.items[0].workspace
    # the same seed draws the same items again
    ex.abandon(exam)
    again = ex.start_exam(cat, short=True, seed=11, now=T0)
    assert again.scenarios == exam.scenarios and again.id != exam.id


def test_a_second_exam_waits_for_the_first(lab_home: Path) -> None:
    cat = Catalog.default()
    exam = ex.start_exam(cat, tasks=2, seed=1, now=T0)
    with pytest.raises(LabError, match=f"exam {exam.id} is still running"):
        ex.start_exam(cat, tasks=2, seed=2, now=T0)
    assert len(list((lab_home / "exams").iterdir())) == 2  # the exam and current.json


def test_full_size_by_default(lab_home: Path) -> None:
    exam = ex.start_exam(Catalog.default(), seed=5, now=T0)
    assert 17 <= exam.task_count <= 19 and exam.duration == timedelta(hours=2)


def test_the_state_survives_a_crash(lab_home: Path) -> None:
    exam = ex.start_exam(Catalog.default(), tasks=6, seed=9, now=T0)
    exam = ex.goto(exam, 1)
    exam = ex.flag(exam, 0)
    exam = ex.flag(exam, len(exam.items) - 1)
    exam = ex.flag(exam, 0, on=False)
    later = T0 + timedelta(minutes=47, seconds=30)
    code = (
        "import sys; from datetime import datetime; from lab.exam import current_exam;"
        "e = current_exam(); now = datetime.fromisoformat(sys.argv[1]);"
        "print(e.id, int(e.remaining(now).total_seconds()), e.current, sorted(e.flagged),"
        " e.deadline.isoformat(), e.time_up(now))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, later.isoformat()],
        capture_output=True, text=True, check=True, env=dict(os.environ),
    ).stdout.split()  # fmt: skip
    assert out[0] == exam.id
    assert int(out[1]) == (120 - 47) * 60 - 30  # what the deadline leaves, not a restarted clock
    assert out[2] == "1" and out[3] == f"[{len(exam.items) - 1}]"
    assert out[4] == (T0 + timedelta(hours=2)).isoformat() and out[5] == "False"
    assert service.current_workspace() == exam.items[1].workspace


def test_items_by_number_or_scenario(lab_home: Path) -> None:
    exam = ex.start_exam(Catalog.default(), tasks=4, seed=2, now=T0)
    assert ex.item_index(exam, "1") == 0
    assert ex.item_index(exam, exam.items[-1].scenario) == len(exam.items) - 1
    with pytest.raises(LabError, match=r"no item 99: the exam has items 1 to"):
        ex.item_index(exam, "99")
    with pytest.raises(LabError, match="no item 'nope' in this exam"):
        ex.item_index(exam, "nope")


# --- during the exam: no grader, hints or solutions ---------------------------------


def refused(fn: object, *args: object) -> str:
    with pytest.raises(LabError) as e:
        fn(*args)  # type: ignore[operator]
    return str(e.value)


def test_check_hint_solution_diff_are_refused_during_the_exam_and_allowed_after(
    lab_home: Path, tmp_path: Path
) -> None:
    cat = catalog_of(tmp_path, {"audit-enable-logging": 7, "falco-shell-alert": 6})
    # a practice workspace of one of the exam's scenarios, started before the exam
    practice, _ = service.start(cat, "audit-enable-logging", tmp_path / "practice")
    exam = ex.start_exam(cat, tasks=10, seed=1, now=datetime.now(UTC))
    op = service.open_scenario(cat, exam.items[0].workspace)
    for what, fn in (("check", service.check), ("hint", service.peek_hint),
                     ("hint", service.take_hint), ("solution", service.show_solution),
                     ("diff", service.learner_diff)):  # fmt: skip
        msg = refused(fn, op)
        assert f"`cks-lab {what}` is not available during the exam" in msg
        assert f"this workspace is an item of exam {exam.id}" in msg and "exam submit" in msg
    assert "exam replay" in refused(service.check, op)
    state = op.ws.state()
    assert state["hints"] == {} and state["solutions_viewed"] == [] and state["attempts"] == []
    # the same scenario elsewhere: its solution is the exam's
    msg = refused(service.show_solution, practice)
    assert "scenario audit-enable-logging is an item of the running exam" in msg

    ex.submit(cat, exam)
    assert service.peek_hint(op).number == 1
    assert service.show_solution(op)
    assert service.check(op).scenario == exam.items[0].scenario
    assert service.learner_diff(practice)


def test_abandoning_ends_the_refusals_and_keeps_the_work(lab_home: Path) -> None:
    cat = Catalog.default()
    exam = ex.start_exam(cat, tasks=1, seed=4, now=datetime.now(UTC))
    op = service.open_scenario(cat, exam.items[0].workspace)
    refused(service.peek_hint, op)
    ex.abandon(exam)
    assert ex.current_exam() is None
    assert service.show_solution(op)
    assert exam.items[0].workspace.is_dir()
    with pytest.raises(LabError, match="was abandoned"):
        ex.submit(cat, exam)


def test_practice_on_other_scenarios_goes_on(lab_home: Path, tmp_path: Path) -> None:
    cat = catalog_of(tmp_path, {"audit-enable-logging": 7, "falco-shell-alert": 6})
    exam = ex.start_exam(cat, tasks=1, seed=0, now=datetime.now(UTC))
    other = ({"audit-enable-logging", "falco-shell-alert"} - set(exam.scenarios)).pop()
    op, _ = service.start(cat, other, tmp_path / "other")
    assert service.peek_hint(op).number == 1
    assert service.check(op).scenario == other


def test_replay_writes_the_logs_and_grades_nothing(lab_home: Path, tmp_path: Path) -> None:
    cat = catalog_of(tmp_path, {"falco-shell-alert": 6})
    exam = ex.start_exam(cat, tasks=1, seed=0, now=datetime.now(UTC))
    r = ex.replay(cat, exam)
    log = exam.items[0].workspace / ".lab/logs/falco-worker.log"
    assert r.logs == [log] and log.is_file()
    assert Workspace(exam.items[0].workspace).state()["attempts"] == []


# --- submit, the score, the pass line ---------------------------------------------


def test_a_solved_item_scores_full_marks_an_untouched_one_zero(
    lab_home: Path, tmp_path: Path
) -> None:
    cat = catalog_of(tmp_path, {"audit-enable-logging": 7, "falco-shell-alert": 6})
    exam = ex.start_exam(cat, tasks=10, seed=3, now=T0)
    solved = ex.item_index(exam, "audit-enable-logging")
    solve(cat, exam.items[solved].workspace)
    result = ex.submit(cat, exam, now=T0 + timedelta(minutes=30))
    by_id = {s.item.scenario: s for s in result.items}
    a, f = by_id["audit-enable-logging"], by_id["falco-shell-alert"]
    assert a.fraction == 1 and all(t.credit == 1 and t.passed for t in a.tasks)
    # the untouched item earns points from its checks, but none for work done
    assert f.result is not None and f.result.points > 0 and f.fraction == 0
    assert all(t.points == t.baseline for t in f.tasks)
    assert result.score == Fraction(7, 13) and not result.passed
    assert not result.timed_out and result.submitted_at == T0 + timedelta(minutes=30)
    saved = ex.load_exam(exam.id)
    assert saved.submitted and not saved.running and ex.exam_result(saved).score == result.score
    with pytest.raises(LabError, match="already submitted"):
        ex.submit(cat, saved)


@pytest.mark.parametrize(
    "solved_weight, other_weight, passed",
    [(68, 32, True), (67, 33, True), (66, 34, False), (2, 1, False)],
)
def test_the_pass_line_is_67_percent_of_the_weighted_score(
    lab_home: Path, tmp_path: Path, solved_weight: int, other_weight: int, passed: bool
) -> None:
    cat = catalog_of(
        tmp_path, {"audit-enable-logging": solved_weight, "falco-shell-alert": other_weight}
    )
    exam = ex.start_exam(cat, tasks=10, seed=0, now=T0)
    solve(cat, exam.items[ex.item_index(exam, "audit-enable-logging")].workspace)
    result = ex.submit(cat, exam, now=T0)
    assert result.score == Fraction(solved_weight, solved_weight + other_weight)
    assert result.passed is passed
    head = review_text(ex.review(cat, result.exam)).splitlines()[0]
    assert head.endswith(f"— {'PASS' if passed else 'FAIL'} (67 % passes)")
    if (solved_weight, other_weight) == (2, 1):
        assert ": 66.6 % — FAIL" in head  # rounded down: never shown as the line itself


def test_partial_work_earns_partial_credit() -> None:
    from lab.exam.grade import item_fraction, task_credit, weighted_score

    assert task_credit(10, 14, 6, False) == Fraction(1, 2)
    assert task_credit(4, 14, 6, False) == 0  # worse than untouched: no credit, never negative
    assert task_credit(14, 14, 6, True) == 1
    assert task_credit(3, 3, 3, False) == 0  # nothing to earn above untouched, and not passed
    tasks = tuple(
        ex.TaskScore("t", "t", 0, m, 0, False, c) for m, c in ((2, Fraction(1)), (6, Fraction(0)))
    )
    assert item_fraction(tasks) == Fraction(1, 4)
    assert weighted_score([(Fraction(1), 3), (Fraction(0), 1)]) == Fraction(3, 4)
    assert weighted_score([]) == 0


def test_time_out_submits_with_the_time_out_recorded(lab_home: Path, tmp_path: Path) -> None:
    cat = catalog_of(tmp_path, {"audit-enable-logging": 7})
    exam = ex.start_exam(cat, tasks=1, duration=timedelta(minutes=20), seed=0, now=T0)
    before = T0 + timedelta(minutes=19, seconds=59)
    assert ex.submit_if_time_up(cat, exam, now=before) is None and ex.load_exam(exam.id).running
    solve(cat, exam.items[0].workspace)
    touch_all(exam.items[0].workspace, T0 + timedelta(minutes=19))  # done before the deadline
    late = T0 + timedelta(minutes=25)
    result = ex.submit_if_time_up(cat, exam, now=late)
    assert result is not None and result.timed_out and result.score == 1
    state = json.loads((exam.root / "exam.json").read_text())
    assert state["timed_out"] is True and state["submitted_at"] == "2026-11-28T09:25:00+00:00"
    assert ex.submit_if_time_up(cat, ex.load_exam(exam.id), now=late) is None


def touch_all(workspace: Path, when: datetime) -> None:
    """Give everything under the workspace's nodes/ this modification time."""
    for folder, dirs, names in os.walk(workspace / "nodes"):
        for name in [*dirs, *names]:
            os.utime(Path(folder) / name, (when.timestamp(), when.timestamp()),
                     follow_symlinks=False)  # fmt: skip


def test_work_changed_after_the_deadline_scores_zero(lab_home: Path, tmp_path: Path) -> None:
    cat = catalog_of(tmp_path, {"audit-enable-logging": 7, "falco-shell-alert": 6})
    exam = ex.start_exam(cat, tasks=10, seed=0, now=T0, duration=timedelta(minutes=20))
    for item in exam.items:
        solve(cat, item.workspace)
        touch_all(item.workspace, T0 + timedelta(minutes=10))
    audit = exam.items[ex.item_index(exam, "audit-enable-logging")]
    edited = next(p for p in sorted((audit.workspace / "nodes").rglob("*")) if p.is_file())
    after = (T0 + timedelta(minutes=20, seconds=1)).timestamp()
    os.utime(edited, (after, after))
    result = ex.submit_if_time_up(cat, exam, now=T0 + timedelta(minutes=25))
    assert result is not None and result.timed_out
    by_id = {s.item.scenario: s for s in result.items}
    rel = edited.relative_to(audit.workspace).as_posix()
    assert by_id["audit-enable-logging"].fraction == 0
    assert by_id["audit-enable-logging"].error == f"changed after the time was up: {rel}"
    assert by_id["falco-shell-alert"].fraction == 1  # untouched since: it counts
    text = review_text(ex.review(cat, result.exam))
    assert f"not graded: changed after the time was up: {rel}" in text
    # the result says how late the submit was
    assert "20m used of 20m (submitted 5m after the time was up)" in text
    assert review_json(ex.review(cat, result.exam))["late_seconds"] == 300


def test_late_changes_name_at_most_five_paths(tmp_path: Path) -> None:
    from lab.exam.grade import _late_reason, changed_after

    for i in range(7):
        (tmp_path / "nodes/n").mkdir(parents=True, exist_ok=True)
        (tmp_path / f"nodes/n/f{i}").write_text("x")
    deadline = datetime.now(UTC) - timedelta(hours=1)
    old = (deadline - timedelta(seconds=1)).timestamp()
    os.utime(tmp_path / "nodes/n/f3", (old, old))
    os.utime(tmp_path / "nodes", (old, old))
    late = changed_after(tmp_path, deadline)
    assert late == ["nodes/n", *(f"nodes/n/f{i}" for i in (0, 1, 2, 4, 5, 6))]
    assert _late_reason(late) == (
        "changed after the time was up: nodes/n, nodes/n/f0, nodes/n/f1, nodes/n/f2, "
        "nodes/n/f4 and 2 more"
    )
    assert changed_after(tmp_path, datetime.now(UTC) + timedelta(minutes=1)) == []


@pytest.mark.parametrize("how", ["shell", "node exec"])
def test_shell_and_node_exec_after_the_deadline_submit_and_refuse(
    lab_home: Path, how: str
) -> None:
    past = datetime.now(UTC) - timedelta(hours=3)
    exam = ex.start_exam(Catalog.default(), tasks=2, seed=6, now=past)  # ended an hour ago
    ws = exam.items[0].workspace
    if how == "shell":
        op = service.open_scenario(Catalog.default(), ws)
        msg = refused(service.shell_command, op)
    else:
        node = ex.item_scenario(Catalog.default(), exam, 0).sc.model.cluster.nodes[0].name
        code, _, msg = run("node", "exec", "-w", str(ws), node, "--", "aa-status")
        assert code == 2
    assert f"`cks-lab {how}` is refused: the time of exam {exam.id} is up" in msg
    assert "it was submitted now" in msg
    done = ex.load_exam(exam.id)
    assert done.submitted and done.timed_out
    # the files the lab wrote at start are newer than that (faked) deadline: all score 0
    assert all("changed after the time was up" in s.error for s in ex.exam_result(done).items)


def test_shell_and_node_exec_work_before_the_deadline(lab_home: Path) -> None:
    exam = ex.start_exam(Catalog.default(), tasks=2, seed=6, now=datetime.now(UTC))
    op = service.open_scenario(Catalog.default(), exam.items[0].workspace)
    assert service.shell_command(op).cwd.is_dir()
    node = op.sc.model.cluster.nodes[0].name
    code, _, err = run("node", "exec", node, "--", "aa-status")  # the current item's
    assert "refused" not in err and code != 2, err
    assert ex.load_exam(exam.id).running


def test_grade_is_refused_for_the_running_exams_scenarios(lab_home: Path) -> None:
    exam = ex.start_exam(Catalog.default(), tasks=2, seed=6, now=datetime.now(UTC))
    sid = exam.items[0].scenario
    for args in (("grade", sid), ("grade", sid, "-w", str(exam.items[0].workspace))):
        code, out, err = run(*args)
        assert code == 2 and out == ""
        assert "`cks-lab grade` is not available during the exam" in err
        assert f"scenario {sid} is an item of the running exam {exam.id}" in err
    other = next(s.id for s in Catalog.default().scan()[0] if s.id not in exam.scenarios)
    assert run("grade", other, "-q")[0] == 1  # not an exam item: graded (untouched: fails)
    ex.abandon(exam)
    assert run("grade", sid, "-q")[0] == 1


def test_a_shadowing_scenario_folder_is_not_graded(lab_home: Path, tmp_path: Path) -> None:
    cat = catalog_of(tmp_path, {"audit-enable-logging": 7, "falco-shell-alert": 6})
    exam = ex.start_exam(cat, tasks=10, seed=0, now=T0)
    # a folder of the same id, first in the catalog: its own checks would pass anything
    fake = tmp_path / "fake"
    shutil.copytree(tmp_path / "catalog/audit-enable-logging", fake / "audit-enable-logging")
    y = fake / "audit-enable-logging/scenario.yaml"
    y.write_text(y.read_text() + "\n# mine\n")
    shadowed = Catalog([fake, tmp_path / "catalog"])
    result = ex.submit(shadowed, exam, now=T0)
    s = next(i for i in result.items if i.item.scenario == "audit-enable-logging")
    assert s.fraction == 0 and s.result is None
    assert s.error.startswith("the scenario changed since the exam started (the files of ")
    assert "are not those the exam drew" in s.error
    rv = ex.review(shadowed, result.exam)
    text = review_text(rv)
    assert "not graded: the scenario changed since the exam started" in text
    assert "(not shown: the scenario changed since the exam started" in text
    falco = next(i for i in result.items if i.item.scenario == "falco-shell-alert")
    assert falco.error == "" and falco.result is not None  # the other item is graded


def test_an_identical_copy_of_the_scenario_is_graded(lab_home: Path, tmp_path: Path) -> None:
    cat = catalog_of(tmp_path, {"audit-enable-logging": 7})
    exam = ex.start_exam(cat, tasks=1, seed=0, now=T0)
    solve(cat, exam.items[0].workspace)
    shutil.copytree(tmp_path / "catalog", tmp_path / "moved")
    result = ex.submit(Catalog([tmp_path / "moved"]), exam, now=T0)
    assert result.items[0].error == "" and result.score == 1


def test_a_changed_task_list_is_named(lab_home: Path, tmp_path: Path) -> None:
    cat = catalog_of(tmp_path, {"audit-enable-logging": 7})
    exam = ex.start_exam(cat, tasks=1, seed=0, now=T0)
    data = json.loads((exam.root / "exam.json").read_text())
    data["items"][0]["tasks"] = ["old-task"]
    data["items"][0]["max_points"] = 1
    (exam.root / "exam.json").write_text(json.dumps(data))
    result = ex.submit(cat, ex.load_exam(exam.id), now=T0)
    err = result.items[0].error
    assert "the scenario changed since the exam started (its tasks are " in err
    assert "not old-task" in err and "points now, not 1" in err


def test_reviewing_an_earlier_exam_hides_the_running_exams_solutions(
    lab_home: Path, tmp_path: Path
) -> None:
    cat = catalog_of(tmp_path, {"audit-enable-logging": 7, "falco-shell-alert": 6})
    first = ex.start_exam(cat, tasks=10, seed=0, now=T0)
    ex.submit(cat, first, now=T0 + timedelta(minutes=5))
    shown = ex.review(cat, ex.load_exam(first.id))
    assert all("not shown" not in i.solution for i in shown.items)
    second = ex.start_exam(cat, tasks=3, seed=1, now=T0 + timedelta(hours=1))
    rv = ex.review(cat, ex.load_exam(first.id))
    for i in rv.items:
        hidden = i.score.item.scenario in second.scenarios
        assert ("not shown" in i.solution) is hidden
        if hidden:
            assert f"is an item of exam {second.id}, which is running" in i.solution
    assert any("not shown" in i.solution for i in rv.items)
    ex.abandon(second)
    assert ex.review(cat, ex.load_exam(first.id)).items == shown.items


def test_the_weight_column_is_each_items_share(lab_home: Path, tmp_path: Path) -> None:
    cat = catalog_of(tmp_path, {"audit-enable-logging": 7, "falco-shell-alert": 6})
    exam = ex.start_exam(cat, tasks=10, seed=0, now=T0)
    share = {"audit-enable-logging": "54 %", "falco-shell-alert": "46 %"}  # 7/13, 6/13
    for line in status_text(exam, now=T0).splitlines():
        for sid, pct in share.items():
            if f" {sid} " in line:
                assert f" {pct}  " in line and " 7 %" not in line and " 6 %" not in line
    result = ex.submit(cat, exam, now=T0)
    text = review_text(ex.review(cat, result.exam))
    assert re.search(r"audit-enable-logging\s+54 %", text)
    assert "(audit-enable-logging): 0 %, 54 % of the exam" in text
    data = review_json(ex.review(cat, result.exam))
    assert sorted(i["share"] for i in data["items"]) == [round(6 / 13, 4), round(7 / 13, 4)]


def test_any_exam_command_after_the_deadline_submits(lab_home: Path) -> None:
    past = datetime.now(UTC) - timedelta(hours=3)
    exam = ex.start_exam(Catalog.default(), tasks=2, seed=6, now=past)  # 2 h: over an hour ago
    op = service.open_scenario(Catalog.default(), exam.items[0].workspace)
    assert "its time is up" in refused(service.peek_hint, op)  # not submitted yet: still refused
    code, out, err = run("exam", "status")
    assert code == 0, err
    assert f"the time of exam {exam.id} is up: it was submitted" in err
    assert "submitted when the time ran out" in out and "Score: 0.0 % — FAIL" in out
    saved = ex.load_exam(exam.id)
    assert saved.timed_out and saved.submitted
    code, _, err = run("exam", "goto", "1")
    assert code == 2 and "is over (submitted when the time ran out)" in err
    assert service.peek_hint(op).number == 1


# --- the review ---------------------------------------------------------------------


def test_the_review_explains_every_check_and_shows_the_solutions(
    lab_home: Path, tmp_path: Path
) -> None:
    cat = catalog_of(tmp_path, {"audit-enable-logging": 7, "falco-shell-alert": 6})
    exam = ex.start_exam(cat, tasks=10, seed=8, now=T0)
    with pytest.raises(LabError, match="the exam is still running"):
        ex.review(cat, exam)
    solve(cat, exam.items[ex.item_index(exam, "audit-enable-logging")].workspace)
    ex.submit(cat, exam, now=T0 + timedelta(minutes=5))
    rv = ex.review(cat, ex.load_exam(exam.id))
    text = review_text(rv)
    falco = next(i for i in rv.items if i.score.item.scenario == "falco-shell-alert")
    assert falco.score.result is not None
    failed = [c for t in falco.score.result.tasks for c in t.checks if not c.passed]
    assert failed
    for c in failed:
        assert c.explanation[:40] in " ".join(text.split())
    assert "# Reference solutions" in text
    sc = cat.get("falco-shell-alert")
    notes = sc.model.tasks[0].solution.notes.strip().splitlines()[0]
    assert notes in text and falco.solution in text
    assert "/etc/falco/falco_rules.local.yaml" in falco.solution
    assert f"seed {exam.seed}" in text and "5m used of 2h 00m" in text
    data = review_json(rv)
    assert data["passed"] is False and data["score"] == round(7 / 13, 4)
    assert data["pass_line"] == 0.67
    item = next(i for i in data["items"] if i["scenario"] == "falco-shell-alert")
    assert item["score"] == 0 and item["solution"] == falco.solution
    assert item["result"]["tasks"][0]["checks"][0]["explanation"]


def test_an_item_that_cannot_be_graded_scores_zero_and_says_why(
    lab_home: Path, tmp_path: Path
) -> None:
    cat = catalog_of(tmp_path, {"audit-enable-logging": 7, "falco-shell-alert": 6})
    exam = ex.start_exam(cat, tasks=10, seed=8, now=T0)
    gone = exam.items[0]
    shutil.rmtree(gone.workspace)
    result = ex.submit(cat, exam, now=T0)
    s = result.items[0]
    assert s.result is None and s.fraction == 0 and "workspace is gone" in s.error
    assert "not graded" in review_text(ex.review(cat, result.exam))


# --- a corrupt exam.json -----------------------------------------------------------------


def test_a_corrupt_exam_state_is_a_located_error_and_nothing_changes(
    lab_home: Path, tmp_path: Path
) -> None:
    cat = Catalog.default()
    exam = ex.start_exam(cat, tasks=2, seed=1, now=datetime.now(UTC))
    path = exam.root / "exam.json"
    data = json.loads(path.read_text())
    data["items"][0]["weight"] = 0
    path.write_text(json.dumps(data))
    before = path.read_bytes()
    pointer = (lab_home / "exams/current.json").read_bytes()
    for args in (("exam", "status"), ("exam", "submit", "--yes"), ("exam", "flag", "1")):
        code, _, err = run(*args)
        assert code == 2
        assert f"{path}: exam state is corrupt: items[0].weight: must be at least 1" in err
    # the exam's workspaces do not fall back to practice: hints stay refused
    op = service.open_scenario(cat, exam.items[0].workspace)
    assert "exam state is corrupt" in refused(service.peek_hint, op)
    assert path.read_bytes() == before
    assert (lab_home / "exams/current.json").read_bytes() == pointer
    # practice elsewhere is not blocked by a broken exam file
    other = next(s for s in cat.scan()[0] if s.id not in exam.scenarios)
    op2, _ = service.start(cat, other.id, tmp_path / "other")
    assert service.peek_hint(op2).number == 1


@pytest.mark.parametrize(
    "change, where",
    [
        (lambda d: d.update(current="nope"), "current: 'nope' is not one of the exam's"),
        (lambda d: d.update(deadline="tomorrow"), "deadline: 'tomorrow' is not a time"),
        (lambda d: d.update(flagged=["x"]), "flagged[0]: 'x' is not one of"),
        (lambda d: d.update(submitted_at="2026-11-28T10:00:00+00:00"), "no results"),
        (lambda d: d.update(id="../../etc"), "id: '../../etc' does not match"),
        (lambda d: d.pop("items"), "items: required field is missing"),
    ],
)
def test_exam_state_checks(lab_home: Path, change: object, where: str) -> None:
    exam = ex.start_exam(Catalog.default(), tasks=1, seed=1, now=T0)
    path = exam.root / "exam.json"
    data = json.loads(path.read_text())
    change(data)  # type: ignore[operator]
    path.write_text(json.dumps(data))
    with pytest.raises(LabError, match=re.escape(where)) as e:
        ex.current_exam()
    assert e.value.file == str(path)


def test_unreadable_state_and_pointer(lab_home: Path) -> None:
    exam = ex.start_exam(Catalog.default(), tasks=1, seed=1, now=T0)
    (exam.root / "exam.json").write_text("{not json")
    with pytest.raises(LabError, match="exam state is unreadable") as e:
        ex.current_exam()
    assert e.value.file == str(exam.root / "exam.json")
    (lab_home / "exams/current.json").write_text('{"exam": "../x"}')
    with pytest.raises(LabError, match="delete it to forget the exam"):
        ex.current_exam()


# --- the CLI -------------------------------------------------------------------------------


def test_cli_exam_flow(lab_home: Path) -> None:
    code, out, err = run("exam", "status")
    assert code == 2 and "no exam running: `cks-lab exam start`" in err

    code, out, err = run("exam", "start", "--short", "--seed", "7")
    assert code == 0, err
    exam = ex.current_exam()
    assert exam is not None and exam.seed == 7 and exam.duration == timedelta(minutes=30)
    assert f"Exam {exam.id}: 29m left" in out or f"Exam {exam.id}: 30m left" in out
    assert f"# Item 1 of {len(exam.items)}: " in out and "no check, hint or solution" in out

    code, out, _ = run("exam", "goto", "2")
    assert code == 0 and f"# Item 2 of {len(exam.items)}" in out
    code, out, _ = run("exam", "flag")
    assert code == 0 and f"Flagged item 2 ({exam.items[1].scenario}). Flagged items: 2." in out
    code, out, _ = run("exam", "flag", exam.items[0].scenario)
    assert "Flagged items: 1, 2." in out
    code, out, _ = run("exam", "unflag", "2")
    assert "Flagged items: 1." in out
    code, out, _ = run("exam", "status")
    lines = out.splitlines()
    assert any(re.match(r"\s+F\s+1\s", ln) for ln in lines)
    assert any(re.match(r"\s+>\s+2\s", ln) for ln in lines)
    assert f"Working on item 2: {exam.items[1].scenario}" in out
    code, out, _ = run("exam", "show", "1")
    assert code == 0 and f"# Item 1 of {len(exam.items)}" in out and "[flagged]" in out

    code, out, err = run("hint")  # the current workspace is item 2's
    assert code == 2 and "not available during the exam" in err

    code, _, err = run("exam", "submit")  # not a terminal: no silent submit with time left
    assert code == 2 and "confirm with `cks-lab exam submit --yes`" in err
    assert ex.load_exam(exam.id).running
    code, out, err = run("exam", "submit", "--yes")
    assert code == 0, err
    assert re.search(r"^Exam \S+: \d+\.\d % — (PASS|FAIL) \(67 % passes\)$", out, re.M)
    assert "`cks-lab exam review`" in out

    code, out, _ = run("exam", "review", "--json")
    data = json.loads(out)
    assert data["exam"] == exam.id and len(data["items"]) == len(exam.items)
    code, out, _ = run("exam", "review")
    assert code == 0 and "# Reference solutions" in out
    code, out, _ = run("exam", "review", exam.id)
    assert code == 0 and "# Reference solutions" in out
    code, out, _ = run("hint", "--yes")
    assert code == 0 and "Hint 1" in out


def test_cli_abandon_asks_first(lab_home: Path) -> None:
    assert run("exam", "start", "--tasks", "1", "--seed", "3")[0] == 0
    code, _, err = run("exam", "abandon")
    assert code == 2 and "--yes" in err and ex.current_exam() is not None
    code, out, _ = run("exam", "abandon", "--yes")
    assert code == 0 and "Abandoned exam" in out and ex.current_exam() is None
    code, _, err = run("exam", "review")
    assert code == 2 and "no exam running" in err


def test_status_text_marks_current_and_flagged(lab_home: Path) -> None:
    exam = ex.start_exam(Catalog.default(), tasks=4, seed=12, now=T0)
    exam = ex.flag(ex.goto(exam, 1), 0)
    text = status_text(exam, now=T0 + timedelta(minutes=61))
    assert text.splitlines()[0] == f"Exam {exam.id}: 59m left (ends at " + (
        (T0 + timedelta(hours=2)).astimezone().strftime("%Y-%m-%d %H:%M") + ")"
    )
    assert "time is up" in status_text(exam, now=T0 + timedelta(hours=2))


def test_starting_after_a_timed_out_exam_submits_it_first(lab_home: Path) -> None:
    yesterday = datetime.now(UTC) - timedelta(days=1)
    old = ex.start_exam(Catalog.default(), tasks=1, seed=2, now=yesterday)
    code, out, err = run("exam", "start", "--tasks", "1", "--seed", "3")
    assert code == 0, err
    assert f"the time of exam {old.id} is up" in err
    done = ex.load_exam(old.id)
    assert done.timed_out and done.submitted
    new = ex.current_exam()
    assert new is not None and new.id != old.id and new.running


def test_a_broken_scenario_is_skipped_with_a_warning(lab_home: Path, tmp_path: Path) -> None:
    cat = catalog_of(tmp_path, {"audit-enable-logging": 7, "falco-shell-alert": 6})
    y = tmp_path / "catalog/falco-shell-alert/scenario.yaml"
    y.write_text(y.read_text().replace("difficulty: medium", "difficulty: brutal"))
    said: list[str] = []
    exam = ex.start_exam(cat, tasks=10, seed=0, now=T0, progress=said.append)
    assert exam.scenarios == ("audit-enable-logging",)
    assert any("skipped a broken scenario" in m and "difficulty" in m for m in said)
