"""`cks-lab` alone opens the app at a terminal and lists the scenarios when piped."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import lab.cli as cli
import lab.tui


def test_at_a_terminal_cks_lab_alone_opens_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[tuple[Path, ...]] = []
    monkeypatch.setattr(cli, "_interactive", lambda: True)
    monkeypatch.setattr(lab.tui, "run", lambda extra=(): opened.append(tuple(extra)))
    res = CliRunner().invoke(cli.main, [])
    assert res.exit_code == 0 and opened == [()]
    res = CliRunner().invoke(cli.main, ["--scenarios", str(Path.cwd()), "tui"])
    assert res.exit_code == 0 and opened[-1] == (Path.cwd(),)


def test_piped_it_lists_the_scenarios() -> None:
    res = CliRunner().invoke(cli.main, [])
    assert res.exit_code == 0
    assert "audit-policy-secrets" in res.output and "Start one with" in res.output
