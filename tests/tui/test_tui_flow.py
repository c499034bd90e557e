"""The TUI driven like a learner drives it (Textual's Pilot, headless)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from textual.pilot import Pilot
from textual.widgets import DataTable
from tui_harness import node_file, notices, run, screen_text, settle, write_reference_solution

from lab import progress, service
from lab.tui.app import LabApp
from lab.tui.screens.catalog import CatalogScreen
from lab.tui.screens.dialogs import ConfirmScreen, TextScreen
from lab.tui.screens.scenario import ScenarioScreen

SCENARIO = "audit-policy-secrets"


def catalog_ids(app: LabApp) -> list[str]:
    table = app.screen.query_one("#table", DataTable)
    return [str(table.get_row_at(i)[1]) for i in range(table.row_count)]


async def open_scenario(pilot: Pilot[None], app: LabApp, sid: str = SCENARIO) -> ScenarioScreen:
    await pilot.press(":")
    await pilot.press(*f"scenario {sid}", "enter")
    await pilot.pause()
    assert isinstance(app.screen, ScenarioScreen) and app.screen.sc.id == sid
    return app.screen


async def start(pilot: Pilot[None], app: LabApp) -> ScenarioScreen:
    screen = await open_scenario(pilot, app)
    await pilot.press("x")
    await settle(pilot)
    assert screen.op is not None
    return screen


def test_catalog_lists_every_scenario_with_status_and_backend() -> None:
    async def body(pilot: Pilot[None], app: LabApp) -> None:
        assert isinstance(app.screen, CatalogScreen)
        ids = catalog_ids(app)
        assert len(ids) == 10 and SCENARIO in ids
        text = screen_text(app)
        assert "backend:" in text and "sim (in use)" in text and "kind" in text
        assert "new" in text and "audit" in text and "falco" in text

    run(body)


def test_filter_sort_and_clear() -> None:
    async def body(pilot: Pilot[None], app: LabApp) -> None:
        await pilot.press("/", *"falco")
        await pilot.pause()
        assert catalog_ids(app) and all(i.startswith("falco-") for i in catalog_ids(app))
        await pilot.press("enter")  # keeps the filter, back to the table
        await pilot.press("escape")
        await pilot.pause()
        assert len(catalog_ids(app)) == 10
        before = catalog_ids(app)
        await pilot.press("o")  # skill -> id
        await pilot.pause()
        assert catalog_ids(app) == sorted(before)

    run(body)


def test_navigation_enter_esc_help_and_command_line() -> None:
    async def body(pilot: Pilot[None], app: LabApp) -> None:
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ScenarioScreen)
        assert "Briefing" in screen_text(app)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, TextScreen)
        assert "check: run the attack again" in screen_text(app)
        await pilot.press("escape", "escape")
        await pilot.pause()
        assert isinstance(app.screen, CatalogScreen)
        await pilot.press(":", *"nonsense", "enter")
        await pilot.pause()
        assert isinstance(app.screen, CatalogScreen)
        assert "unknown command :nonsense" in notices(app)
        await pilot.press(":", *"scenario no-such-thing", "enter")
        await pilot.pause()
        assert isinstance(app.screen, CatalogScreen)
        await pilot.press(":", *"backend kind", "enter")
        await pilot.pause()
        assert app.backend == "sim" and "not available" in notices(app)
        await pilot.press("p")
        await pilot.pause()
        assert "Per skill" in screen_text(app)
        await pilot.press("escape", ":", "q", "enter")
        await pilot.pause()
        assert app.return_code == 0 and not app.is_running

    run(body)


def test_full_sim_flow_start_solve_check_progress_stored() -> None:
    async def body(pilot: Pilot[None], app: LabApp) -> None:
        screen = await start(pilot, app)
        assert service.default_workspace(SCENARIO).is_dir()
        await pilot.press("c")
        await settle(pilot)
        first = screen_text(app)
        assert "FAIL" in first and "some checks fail" in first
        write_reference_solution(SCENARIO)
        await pilot.press("c")
        await settle(pilot)
        text = screen_text(app)
        assert (
            "every task passes" in text and "✘" not in text.split("Score", 1)[1].split("Tasks")[0]
        )
        assert "Since the previous check" in text
        state = json.loads((service.default_workspace(SCENARIO) / ".lab/state.json").read_text())
        assert state["attempts"][-1]["passed"] is True
        assert all(state["attempts"][-1]["tasks"].values())
        stored = progress.scenario_progress([SCENARIO])[SCENARIO]
        assert stored.attempts == 2 and stored.passed
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, CatalogScreen)
        assert f"passed {stored.best_points}/{stored.max_points}" in screen_text(app)
        del screen

    run(body)


def test_hint_says_its_cost_first_and_the_penalty_counts() -> None:
    async def body(pilot: Pilot[None], app: LabApp) -> None:
        screen = await start(pilot, app)
        await pilot.press("h")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert "costs 1 point" in screen_text(app)
        await pilot.press("n")
        await pilot.pause()
        assert screen.op is not None and not service.status(screen.op).hints
        await pilot.press("h")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert isinstance(app.screen, TextScreen) and "Hint 1" in screen_text(app)
        await pilot.press("escape")
        task = screen.sc.model.tasks[0]
        assert service.status(screen.op).hints == {task.id: 1}
        write_reference_solution(SCENARIO)
        await pilot.press("c")
        await settle(pilot)
        text = screen_text(app)
        assert "hints -1" in text
        stored = progress.scenario_progress([SCENARIO])[SCENARIO]
        assert stored.best_points == stored.max_points - task.hints[0].penalty

    run(body)


def test_reset_asks_then_restores_and_keeps_a_backup() -> None:
    async def body(pilot: Pilot[None], app: LabApp) -> None:
        screen = await start(pilot, app)
        assert screen.op is not None
        f = screen.sc.model.setup.files[0]
        path = node_file(SCENARIO, f.node, f.path)
        original = path.read_bytes()
        path.write_text("my edits\n")
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await pilot.pause()
        assert path.read_text() == "my edits\n"
        await pilot.press("r")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        assert path.read_bytes() == original
        backups = list((screen.op.ws.root / ".lab/backups").rglob(path.name))
        assert any(b.read_text() == "my edits\n" for b in backups)

    run(body)


def test_a_broken_learner_file_is_explained_not_a_crash() -> None:
    async def body(pilot: Pilot[None], app: LabApp) -> None:
        await start(pilot, app)
        manifest = node_file(
            SCENARIO, "controlplane", "/etc/kubernetes/manifests/kube-apiserver.yaml"
        )
        manifest.write_text("apiVersion: v1\nkind: Pod\nspec: [unclosed\n")
        await pilot.press("c")
        await settle(pilot)
        text = screen_text(app)
        assert app.is_running and "some checks fail" in text
        assert "kube-apiserver" in text and "not running" in text

    run(body)


def test_a_corrupt_workspace_state_is_a_located_error_on_screen() -> None:
    async def body(pilot: Pilot[None], app: LabApp) -> None:
        screen = await start(pilot, app)
        assert screen.op is not None
        (screen.op.ws.root / ".lab/state.json").write_text("{not json")
        await pilot.press("c")
        await settle(pilot)
        text = screen_text(app)
        assert app.is_running and "Error:" in text and "state.json" in text
        for key in ("h", "v", "d", "r", "y"):  # quick actions read the state too
            await pilot.press(key)
            await pilot.pause()
            if isinstance(app.screen, ConfirmScreen):
                await pilot.press("y")
                await settle(pilot)
            assert app.is_running and isinstance(app.screen, ScenarioScreen), key
        await pilot.press("escape", ":", *f"scenario {SCENARIO}", "enter")
        await pilot.pause()
        assert isinstance(app.screen, CatalogScreen) and "state.json" in notices(app)

    run(body)


def test_shell_without_a_real_terminal_offers_the_command() -> None:
    async def body(pilot: Pilot[None], app: LabApp) -> None:
        screen = await start(pilot, app)
        assert screen.op is not None
        await pilot.press("s")
        await pilot.pause()
        assert "in your own terminal" in notices(app)
        assert str(screen.op.ws.node_root("controlplane")) in notices(app)

    run(body)


def test_works_at_80x24() -> None:
    async def body(pilot: Pilot[None], app: LabApp) -> None:
        text = screen_text(app)
        assert SCENARIO in text and "enter opens it" in text and "Filter" in text
        await open_scenario(pilot, app)
        text = screen_text(app)
        assert "Tasks" in text and "not started" in text and "Check" in text

    run(body, size=(80, 24))


def test_long_work_shows_progress_and_esc_cancels_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    release = threading.Event()
    real_check = service.check

    def slow_check(op: service.Opened, progress: Callable[[str], None]) -> object:
        for i in range(200):  # a backend reporting progress while it works
            progress(f"step {i}")
            release.wait(0.02)
        return real_check(op, progress)

    monkeypatch.setattr(service, "check", slow_check)

    async def body(pilot: Pilot[None], app: LabApp) -> None:
        screen = await start(pilot, app)
        await pilot.press("c")
        await pilot.pause(0.3)
        assert screen.busy() and "esc cancels" in screen_text(app)
        await pilot.press("escape")
        await settle(pilot)
        assert not screen.busy() and isinstance(app.screen, ScenarioScreen)
        assert "cancelled" in notices(app)
        assert screen.op is not None and not service.status(screen.op).attempts

    run(body)


def test_command_palette_lists_actions_and_scenarios() -> None:
    async def body(pilot: Pilot[None], app: LabApp) -> None:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"open falco-shell-alert")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ScenarioScreen) and app.screen.sc.id == "falco-shell-alert"
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"reset to the starting")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause()
        assert "start the scenario first" in notices(app)

    run(body)


def test_a_broken_progress_store_is_a_notice_and_grading_goes_on() -> None:
    async def body(pilot: Pilot[None], app: LabApp) -> None:
        progress.store_path().mkdir(parents=True)  # not a database: writes fail
        await start(pilot, app)
        await pilot.press("c")
        await settle(pilot)
        assert "some checks fail" in screen_text(app)
        assert "progress.sqlite3" in notices(app)

    run(body)
