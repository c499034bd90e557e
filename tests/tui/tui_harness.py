"""Shared bits for the TUI tests: a lab app on the bundled catalog, run headless."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from pathlib import Path

from rich.console import Console
from textual.pilot import Pilot

from lab import service
from lab.scenarios.catalog import Catalog
from lab.tui.app import LabApp

SIZE = (100, 32)


class FrozenClock:
    """The timer's clock: moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_app() -> LabApp:
    return LabApp(Catalog.default(), clock=FrozenClock())


def run(
    test: Callable[[Pilot[None], LabApp], Awaitable[None]], size: tuple[int, int] = SIZE
) -> None:
    async def main() -> None:
        app = make_app()
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await test(pilot, app)

    asyncio.run(main())


async def settle(pilot: Pilot[None]) -> None:
    """Let workers finish and their results reach the screen."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()


def write_reference_solution(scenario_id: str) -> None:
    """What a learner who solved it would have on the nodes (written by the test, not the lab)."""
    catalog = Catalog.default()
    sc = catalog.get(scenario_id)
    ws_root = service.default_workspace(scenario_id)
    for task in sc.model.tasks:
        for f in task.solution.files:
            target = ws_root / "nodes" / f.node / f.path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(sc.node_file_bytes(f))


def node_file(scenario_id: str, node: str, path: str) -> Path:
    return service.default_workspace(scenario_id) / "nodes" / node / path.lstrip("/")


def screen_text(app: LabApp) -> str:
    """Everything drawn on the screen now, as plain text (as a learner sees it)."""
    width, height = app.size
    console = Console(
        width=width, height=height, file=io.StringIO(), record=True, legacy_windows=False
    )
    console.print(
        app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    )
    return console.export_text(styles=False)


def notices(app: LabApp) -> str:
    """The notifications shown so far (toasts), one per line."""
    return "\n".join(n.message for n in app._notifications)


async def wait_for(
    pilot: Pilot[None], cond: Callable[[], bool], what: str = "", timeout: float = 20.0
) -> None:
    """Until cond() holds: on a loaded machine a fixed pause is sometimes too short."""
    import time

    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await pilot.pause(0.05)
