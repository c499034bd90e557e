"""The TUI driven like a learner drives it (Textual's Pilot, headless)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable
from tui_harness import (
    node_file,
    notices,
    run,
    screen_text,
    settle,
    wait_for,
    write_reference_solution,
)

from lab import progress, service
from lab.tui.app import LabApp
from lab.tui.screens.catalog import CatalogScreen
from lab.tui.screens.dialogs import ChoiceScreen, ConfirmScreen, TextScreen
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


def test_shell_asks_which_node_and_without_a_real_terminal_offers_the_command() -> None:
    async def body(pilot: Pilot[None], app: LabApp) -> None:
        screen = await start(pilot, app)
        assert screen.op is not None
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, ChoiceScreen) and "worker (worker)" in screen_text(app)
        await pilot.press("down", "enter")  # controlplane is the default; pick worker
        await pilot.pause()
        assert "in your own terminal" in notices(app)
        assert str(screen.op.ws.node_root("worker")) in notices(app)
        await pilot.press(":", *"shell controlplane", "enter")
        await pilot.pause()
        assert str(screen.op.ws.node_root("controlplane")) in notices(app)
        await pilot.press(":", *"shell nosuchnode", "enter")
        await pilot.pause()
        assert app.is_running and "nosuchnode" in notices(app) and "worker" in notices(app)

    run(body)


def test_works_at_80x24() -> None:
    async def body(pilot: Pilot[None], app: LabApp) -> None:
        text = screen_text(app)
        assert SCENARIO in text and "enter opens it" in text and "Filter" in text
        await open_scenario(pilot, app)
        text = screen_text(app)
        assert "Tasks" in text and "not started" in text and "Check" in text

    run(body, size=(80, 24))


def test_esc_cancels_a_check_at_its_next_step_and_nothing_is_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    step = threading.Event()
    real_check = service.check

    def slow_check(op: service.Opened, progress: Callable[[str], None]) -> object:
        progress("replaying the attack")
        step.wait(5)  # a long step: the thread cannot be stopped inside it
        progress("grading")
        return real_check(op, progress)

    monkeypatch.setattr(service, "check", slow_check)

    async def body(pilot: Pilot[None], app: LabApp) -> None:
        screen = await start(pilot, app)
        await pilot.press("c")
        await wait_for(pilot, lambda: "replaying the attack" in screen_text(app), "progress")
        assert screen.busy()
        await pilot.press("escape")
        await pilot.pause()
        # asked, not done: the work still runs, and no second check can start beside it
        assert screen.busy() and "cancelling the check" in screen_text(app)
        await pilot.press("c")
        await pilot.pause()
        assert "wait for the check to finish" in notices(app)
        step.set()
        await settle(pilot)
        assert not screen.busy() and isinstance(app.screen, ScenarioScreen)
        assert "check (nothing was recorded) cancelled" in notices(app)
        assert screen.op is not None and not service.status(screen.op).attempts
        await pilot.press("c")  # and the next check runs normally
        await settle(pilot)
        assert len(service.status(screen.op).attempts) == 1

    run(body)


def test_progress_events_with_done_and_total_fill_the_bar(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    from textual.widgets import ProgressBar

    from lab.work import ProgressEvent

    first, second = threading.Event(), threading.Event()
    real_check = service.check

    def staged_check(op: service.Opened, progress: Callable[[str], None]) -> object:
        progress("plain message")  # no done/total: the bar stays indeterminate
        first.wait(5)
        progress(ProgressEvent("restarting kube-apiserver", phase="attack", done=3, total=4))
        second.wait(5)
        return real_check(op, progress)

    monkeypatch.setattr(service, "check", staged_check)

    async def body(pilot: Pilot[None], app: LabApp) -> None:
        screen = await start(pilot, app)
        bar = screen.query_one("#busy ProgressBar", ProgressBar)
        await pilot.press("c")
        await wait_for(pilot, lambda: "plain message" in screen_text(app), "plain progress")
        assert bar.total is None
        first.set()
        await wait_for(pilot, lambda: "[3/4] restarting kube-apiserver" in screen_text(app), "bar")
        assert (bar.total, bar.progress) == (4, 3)
        second.set()
        await settle(pilot)
        assert not screen.busy()

    run(body)


def test_an_interrupted_start_says_so_and_x_finishes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real_start = service.start

    def interrupted(*args: object, **kw: object) -> object:
        def stop(message: str) -> None:
            raise RuntimeError("the machine went to sleep")

        kw["progress"] = stop
        return real_start(*args, **kw)  # type: ignore[arg-type]

    async def body(pilot: Pilot[None], app: LabApp) -> None:
        monkeypatch.setattr(service, "start", interrupted)
        screen = await open_scenario(pilot, app)
        await pilot.press("x")
        await settle(pilot)
        assert "the machine went to sleep" in notices(app) and screen.op is None
        await pilot.press("escape")
        monkeypatch.setattr(service, "start", real_start)
        screen = await open_scenario(pilot, app)
        assert "not fully prepared" in screen_text(app)
        await pilot.press("c")
        await settle(pilot)
        assert "never fully prepared" in screen_text(app)
        await pilot.press("x")
        await settle(pilot)
        assert screen.op is not None and screen.op.ws.state()["prepared"] is True
        assert "not fully prepared" not in screen_text(app)

    run(body)


def test_a_check_run_elsewhere_replaces_the_screens_older_verdict() -> None:
    async def body(pilot: Pilot[None], app: LabApp) -> None:
        screen = await start(pilot, app)
        await pilot.press("c")
        await settle(pilot)
        assert "some checks fail" in screen_text(app)
        write_reference_solution(SCENARIO)
        assert screen.op is not None
        service.check(screen.op)  # `cks-lab check` in the lab's shell
        screen.refresh_state()  # what coming back from the shell does
        await pilot.pause()
        text = screen_text(app)
        assert "passed · last check 21/21" in text
        assert "some checks fail" not in text and "10/14" not in text

    run(body)


def test_time_on_a_scenario_is_saved_on_quit_and_not_counted_elsewhere() -> None:
    async def body(pilot: Pilot[None], app: LabApp) -> None:
        clock = app.clock
        await open_scenario(pilot, app)
        clock.now += 40  # type: ignore[attr-defined]
        await pilot.press("escape")
        await pilot.pause()
        assert round(progress.time_spent(SCENARIO)) == 40
        await open_scenario(pilot, app)
        clock.now += 25  # type: ignore[attr-defined]
        await pilot.press(":", *"results", "enter")  # another screen: the clock stops
        await pilot.pause()
        clock.now += 1000  # type: ignore[attr-defined]
        await pilot.press("ctrl+q")
        await pilot.pause()

    run(body)
    assert round(progress.time_spent(SCENARIO)) == 65


def test_a_second_scenario_from_a_scenario_screen_replaces_it() -> None:
    async def body(pilot: Pilot[None], app: LabApp) -> None:
        await open_scenario(pilot, app)
        await open_scenario(pilot, app, "falco-shell-alert")
        await open_scenario(pilot, app, "falco-shell-alert")  # the same one again
        assert [type(s).__name__ for s in app.screen_stack[1:]] == [
            "CatalogScreen",
            "ScenarioScreen",
        ]
        await pilot.press(":", *"scenario no-such-thing", "enter")
        await pilot.pause()
        assert "no scenario 'no-such-thing'" in notices(app)

    run(body)


def test_enter_on_a_recorded_check_opens_its_scenario() -> None:
    async def body(pilot: Pilot[None], app: LabApp) -> None:
        await start(pilot, app)
        await pilot.press("c")
        await settle(pilot)
        await pilot.press(":", *"results", "enter")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ScenarioScreen) and app.screen.sc.id == SCENARIO

    run(body)


def test_tab_completes_the_command_line_and_y_copies_the_cd_line() -> None:
    async def body(pilot: Pilot[None], app: LabApp) -> None:
        await pilot.press(":", *"scenario audit-pol", "tab", "enter")
        await pilot.pause()
        assert isinstance(app.screen, ScenarioScreen) and app.screen.sc.id == SCENARIO
        await pilot.press("x")
        await settle(pilot)
        await pilot.press("y")
        await pilot.pause()
        assert app.clipboard.startswith("cd ") and app.clipboard.endswith("/nodes/controlplane")

    run(body)


def test_a_hint_seen_before_is_shown_again_without_asking_or_costing() -> None:
    async def body(pilot: Pilot[None], app: LabApp) -> None:
        screen = await start(pilot, app)
        assert screen.op is not None
        task = screen.sc.model.tasks[0]
        for _ in task.hints:
            await pilot.press("h", "y")
            await pilot.pause()
            await pilot.press("escape")
            await pilot.pause()
        before = service.hint_penalties(screen.op)
        await pilot.press("h")
        await pilot.pause()
        assert isinstance(app.screen, TextScreen) and "no new penalty" in screen_text(app)
        assert service.hint_penalties(screen.op) == before

    run(body)


def test_command_palette_lists_actions_and_scenarios() -> None:
    async def body(pilot: Pilot[None], app: LabApp) -> None:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"open falco-shell-alert")
        await wait_for(pilot, lambda: "Alert on shells" in screen_text(app), "the match")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ScenarioScreen) and app.screen.sc.id == "falco-shell-alert"
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"reset to the starting")
        await wait_for(pilot, lambda: "key: r" in screen_text(app), "the match")
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


def test_on_kind_a_scenario_this_host_cannot_serve_starts_on_the_sim_saying_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # as `cks-lab up --scenario`: the TUI asks the same service which backend serves it
    asked: list[str] = []

    def scenario_backend(sc: object, *a: object) -> tuple[str, str | None]:
        asked.append(getattr(sc, "id", ""))
        return "sim", "offered on the sim backend: no AppArmor in this kernel"

    monkeypatch.setattr(service, "scenario_backend", scenario_backend)

    async def body(pilot: Pilot[None], app: LabApp) -> None:
        app.backend = "kind"  # as `:backend kind` sets it once a cluster is up
        screen = await start(pilot, app)
        assert asked == [SCENARIO]
        assert "offered on the sim backend: no AppArmor" in notices(app)
        assert screen.op is not None and screen.op.ws.state()["backend"] == "sim"

    run(body)
