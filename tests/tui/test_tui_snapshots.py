"""Screenshots of the TUI compared with accepted SVGs (pytest-textual-snapshot).

Everything drawn is fixed: progress is recorded with fixed times, the timer runs
on a frozen clock, checks are deterministic, and no screen shown here prints the
lab home (its path differs per test run). After a deliberate UI change:
`python -m pytest tests/tui/test_tui_snapshots.py --snapshot-update`, then look
at the SVGs under __snapshots__/ (a failing run writes snapshot_report.html, side by side,
in the current folder).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from textual.pilot import Pilot
from tui_harness import make_app, settle

from lab import progress, service
from lab.grading.results import CheckResult, ScenarioResult, TaskResult
from lab.scenarios.catalog import Catalog
from lab.tui.screens.catalog import CatalogScreen
from lab.tui.screens.dialogs import TextScreen
from lab.tui.screens.results import ResultsScreen
from lab.tui.screens.scenario import ScenarioScreen

SCENARIO = "audit-policy-secrets"
SIZE = (100, 32)
SMALL = (80, 24)

SnapCompare = Callable[..., bool]


def result_for(scenario_id: str, passing: set[str]) -> ScenarioResult:
    """A graded result of the real scenario where exactly the tasks in `passing` pass."""
    m = Catalog.default().get(scenario_id).model
    tasks = []
    for t in m.tasks:
        ok = t.id in passing
        checks = [
            CheckResult("x", f"check {i}", ok, c.points if ok else 0, c.points, "for the snapshot")
            for i, c in enumerate(t.checks)
        ]
        tasks.append(TaskResult(t.id, t.title, checks))
    return ScenarioResult(scenario_id, m.title, "sim", "snapshot", tasks)


def record(scenario_id: str, passing: set[str], at: str) -> None:
    m = Catalog.default().get(scenario_id).model
    progress.record_check(
        scenario_id,
        list(m.skills),
        result_for(scenario_id, passing),
        workspace=service.default_workspace(scenario_id),
        backend="sim",
        at=at,
    )


def first_task(scenario_id: str) -> str:
    return Catalog.default().get(scenario_id).model.tasks[0].id


@pytest.fixture
def some_progress() -> None:
    """new, in progress, failed and passed all in the catalog, at fixed times."""
    service.start(Catalog.default(), SCENARIO)  # a workspace, no check: in progress
    progress.add_time(SCENARIO, 25 * 60)
    # two tasks, only the first ever passes: failed, best 10/14
    record("audit-enable-logging", set(), "2024-05-01T09:00:00+00:00")
    audit = "audit-enable-logging"
    record(audit, {first_task(audit)}, "2024-05-01T09:20:00+00:00")
    progress.add_time(audit, 40 * 60)
    record("apparmor-deny-write", set(), "2024-05-02T14:05:00+00:00")
    all_tasks = {t.id for t in Catalog.default().get("apparmor-deny-write").model.tasks}
    record("apparmor-deny-write", all_tasks, "2024-05-02T14:30:00+00:00")
    progress.add_time("apparmor-deny-write", 75 * 60)


@pytest.mark.usefixtures("some_progress")
def test_catalog_with_progress(snap_compare: SnapCompare) -> None:
    async def check_screen(pilot: Pilot[None]) -> None:
        assert isinstance(pilot.app.screen, CatalogScreen)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=check_screen)


@pytest.mark.usefixtures("some_progress")
def test_catalog_small_terminal(snap_compare: SnapCompare) -> None:
    assert snap_compare(make_app(), terminal_size=SMALL, press=["down", "down"])


async def failing_check(pilot: Pilot[None]) -> None:
    """Open the started scenario and check it untouched: the starting state fails."""
    app = pilot.app
    app.open_scenario(SCENARIO)  # type: ignore[attr-defined]
    await pilot.pause()
    assert isinstance(app.screen, ScenarioScreen)
    await pilot.press("c")
    await settle(pilot)
    # The toast's timeout runs on the real clock; the Check tab says the same.
    app.clear_notifications()
    await pilot.pause()


def started_with_time() -> None:
    service.start(Catalog.default(), SCENARIO)
    progress.add_time(SCENARIO, 7 * 60 + 5)  # the timer shows earlier sessions' time


def test_scenario_after_failing_check(snap_compare: SnapCompare) -> None:
    started_with_time()
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=failing_check)


def test_scenario_after_failing_check_light_theme(snap_compare: SnapCompare) -> None:
    started_with_time()

    async def light(pilot: Pilot[None]) -> None:
        pilot.app.theme = "textual-light"
        await failing_check(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=light)


@pytest.mark.usefixtures("some_progress")
def test_results_view(snap_compare: SnapCompare) -> None:
    async def opened(pilot: Pilot[None]) -> None:
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(pilot.app.screen, ResultsScreen)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=opened)


def test_help_on_the_catalog(snap_compare: SnapCompare) -> None:
    async def opened(pilot: Pilot[None]) -> None:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(pilot.app.screen, TextScreen)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=opened)
