"""Workspaces: nothing outside is written, nothing the learner made is lost."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lab import service
from lab.errors import LabError
from lab.scenarios.catalog import Catalog


def _snapshot(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*")}


def test_start_check_reset_write_only_inside_the_workspace_and_lab_home(
    tmp_path: Path, lab_home: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("x")
    before = _snapshot(outside)
    ws_root = tmp_path / "ws"
    op, created = service.start(Catalog.default(), "audit-enable-logging", ws_root)
    assert created
    service.check(op)
    service.take_hint(op)
    service.show_solution(op, apply=True)
    service.check(op)
    service.reset(op)
    assert _snapshot(outside) == before
    written = {p for p in tmp_path.rglob("*") if p.is_file()}
    assert all(
        ws_root in p.parents or lab_home in p.parents or outside in p.parents for p in written
    )


@pytest.mark.parametrize("relative", [False, True])
def test_symlink_in_the_node_tree_cannot_redirect_writes(tmp_path: Path, relative: bool) -> None:
    op, _ = service.start(Catalog.default(), "audit-enable-logging", tmp_path / "ws")
    node = op.ws.node_root("controlplane")
    victim = tmp_path / "victim"
    victim.mkdir()
    # a learner (or a hostile submission) points the log directory outside the node
    (node / "var/log/kubernetes").mkdir(parents=True)
    link = node / "var/log/kubernetes/audit"
    os.symlink(os.path.relpath(victim, link.parent) if relative else victim, link)
    service.show_solution(op, apply=True)
    try:
        service.check(op)
    except LabError as e:
        assert "node" in str(e)  # refused, with a reason
    # an absolute target means "from the node's /", as on the node itself, and
    # a relative one that climbs out is refused: either way nothing lands outside
    assert list(victim.iterdir()) == []


def test_hint_penalties_accumulate_and_repeat_free(tmp_path: Path) -> None:
    op, _ = service.start(Catalog.default(), "audit-enable-logging", tmp_path / "ws")
    h1 = service.take_hint(op, "enable-audit")
    h2 = service.take_hint(op, "enable-audit")
    h3 = service.take_hint(op, "enable-audit")
    assert (h1.number, h2.number, h3.number) == (1, 2, 2)
    assert h3.new is False
    assert service.hint_penalties(op) == {"enable-audit": 3, "retention": 0}
    with pytest.raises(LabError, match="no task 'nope'"):
        service.take_hint(op, "nope")


def test_corrupt_state_is_a_clear_error(tmp_path: Path) -> None:
    op, _ = service.start(Catalog.default(), "audit-enable-logging", tmp_path / "ws")
    op.ws.state_path.write_text("{not json")
    with pytest.raises(LabError, match="workspace state is unreadable"):
        service.open_scenario(Catalog.default(), op.ws.root)


def test_self_test_catches_a_scenario_whose_solution_fails(tmp_path: Path) -> None:
    import shutil

    from lab.scenarios.loader import load_scenario

    src = Catalog.default().get("audit-enable-logging").root
    copy = tmp_path / "audit-enable-logging"
    shutil.copytree(src, copy)
    # a broken reference solution: the log mount is read-only
    sol = copy / "solution" / "kube-apiserver.yaml"
    sol.write_text(sol.read_text().replace("readOnly: false", "readOnly: true"))
    report = service.self_test(load_scenario(copy))
    assert not report.ok
    assert any("reference solution fails" in p for p in report.problems)
