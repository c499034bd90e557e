"""The exam screens, driven headless: start, flag, work on an item, submit, time-out, review."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from textual.pilot import Pilot
from tui_harness import FrozenClock, notices, screen_text, settle, wait_for

from lab import exam as exams
from lab.scenarios.catalog import Catalog
from lab.tui.app import LabApp
from lab.tui.screens.catalog import CatalogScreen
from lab.tui.screens.dialogs import ChoiceScreen, ConfirmScreen, TextScreen
from lab.tui.screens.exam import ExamReviewScreen, ExamScreen

# Now, not a fixed day: `cks-lab node exec` and `shell` in an exam item read the real
# clock (past the deadline they submit the exam and refuse), as solve() runs them.
START = datetime.now(UTC).replace(microsecond=0)


class Wall:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def run(body: object, wall: Wall) -> None:
    async def main() -> None:
        app = LabApp(Catalog.default(), clock=FrozenClock(), wall=wall)
        async with app.run_test(size=(100, 32)) as pilot:
            await pilot.pause()
            await body(pilot, app)  # type: ignore[operator]

    asyncio.run(main())


def solve(ex: exams.Exam, index: int) -> None:
    """What a learner who knows the answer does: the reference solution's files written
    into the item's workspace, its node commands run (`cks-lab node exec`, allowed)."""
    from lab import service
    from lab.scenarios.effects import command_words

    item = ex.items[index]
    op = exams.item_scenario(Catalog.default(), ex, index)
    for task in op.sc.model.tasks:
        for f in task.solution.files:
            target = item.workspace / "nodes" / f.node / f.path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(op.sc.node_file_bytes(f))
    for task in op.sc.model.tasks:
        for c in task.solution.node_exec:
            assert service.node_exec(op, c.node, command_words(c.command)).code == 0


async def start_short(pilot: Pilot[None], app: LabApp) -> ExamScreen:
    await pilot.press("e")
    await pilot.pause()
    assert isinstance(app.screen, ChoiceScreen)
    await pilot.press("down", "enter")  # the short one
    await pilot.pause()
    assert isinstance(app.screen, ExamScreen)
    return app.screen


def test_an_exam_runs_from_start_to_review() -> None:
    wall = Wall()

    async def body(pilot: Pilot[None], app: LabApp) -> None:
        screen = await start_short(pilot, app)
        ex = screen.exam
        assert ex.running and 1 < len(ex.items) and "30:00 left" in screen_text(app)
        # no grading aids: the scenario actions are not there, the service refuses them
        await pilot.press(":", *"check", "enter")
        await pilot.pause()
        assert "works on a scenario" in notices(app)
        await pilot.press("down", "f")  # flag item 2
        await pilot.pause()
        assert 1 in screen.exam.flagged and "1 flagged" in screen_text(app)
        await pilot.press("enter")  # work on item 2
        await pilot.pause()
        assert screen.exam.current == 1 and exams.load_exam(ex.id).current == 1
        await pilot.press("l")  # replay: logs written, nothing graded
        await settle(pilot)
        await wait_for(pilot, lambda: "nothing was graded" in screen_text(app), "the replay")
        await pilot.press("escape")
        await pilot.pause()
        solve(ex, 1)
        wall.now += timedelta(minutes=12)
        await wait_for(pilot, lambda: "18:0" in screen_text(app), "the countdown's tick")
        await pilot.press("S")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen) and "1 item(s) are flagged" in screen_text(
            app
        )
        await pilot.press("y")
        await settle(pilot)
        assert isinstance(app.screen, ExamReviewScreen)
        result = exams.exam_result(exams.load_exam(ex.id))
        assert not result.timed_out
        fractions = [s.fraction for s in result.items]
        assert fractions[1] == 1 and all(f == 0 for i, f in enumerate(fractions) if i != 1)
        text = screen_text(app)
        assert f"Score {exams.present.percent(result.score)}" in text and "FAIL" in text
        await pilot.press("v")
        await pilot.pause()
        assert isinstance(app.screen, TextScreen) and "Solution for task" in screen_text(app)

    run(body, wall)


def test_the_exam_survives_quitting_and_times_out_on_its_wall_clock() -> None:
    wall = Wall()

    async def first(pilot: Pilot[None], app: LabApp) -> None:
        await start_short(pilot, app)
        await pilot.press("ctrl+q")

    run(first, wall)
    ex = exams.current_exam()
    assert ex is not None and ex.running

    async def again(pilot: Pilot[None], app: LabApp) -> None:
        wall.now += timedelta(minutes=10)
        await pilot.press("e")  # straight back into the running exam
        await pilot.pause()
        assert isinstance(app.screen, ExamScreen) and "20:00 left" in screen_text(app)
        wall.now += timedelta(minutes=25)  # past the deadline
        await wait_for(pilot, lambda: isinstance(app.screen, ExamReviewScreen), "the time-out")
        await settle(pilot)
        await wait_for(pilot, lambda: "the time ran out" in screen_text(app), "the review")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, CatalogScreen)
        await pilot.press("e")  # no exam running: the choice offers the review
        await pilot.pause()
        assert isinstance(app.screen, ChoiceScreen) and "review of the last exam" in screen_text(
            app
        )

    run(again, wall)
    done = exams.load_exam(ex.id)
    assert done.submitted and done.timed_out
