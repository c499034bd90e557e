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


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hints": {"t": "x"}}, "hints.t: must be an integer, not a string"),
        ({"hints": []}, "hints: must be a mapping, not a list"),
        ({"hints": {"t": -1}}, "hints.t: must be at least 0"),
        ({"attempts": [{"tasks": 5}]}, "attempts[0].at: required field is missing"),
        ({"attempts": {}}, "attempts: must be a list, not a mapping"),
        ({"solutions_viewed": "all"}, "solutions_viewed: must be a list, not a string"),
        ({"scenario": 7}, "scenario: must be a string, not an integer"),
    ],
)
def test_corrupt_state_shapes_are_located_errors(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    import json

    op, _ = service.start(Catalog.default(), "audit-enable-logging", tmp_path / "ws")
    state = json.loads(op.ws.state_path.read_text())
    op.ws.state_path.write_text(json.dumps({**state, **change}))
    with pytest.raises(LabError) as err:
        opened = service.open_scenario(Catalog.default(), op.ws.root)
        service.status(opened)
        service.hint_penalties(opened)
    assert str(err.value).startswith(f"{op.ws.state_path}: workspace state is corrupt: {message}")


def test_state_keeps_its_on_disk_format_and_unknown_keys(tmp_path: Path) -> None:
    import json

    op, _ = service.start(Catalog.default(), "audit-enable-logging", tmp_path / "ws")
    state = json.loads(op.ws.state_path.read_text())
    assert set(state) == {
        "format", "scenario", "scenario_dir", "backend", "created", "hints",
        "solutions_viewed", "attempts", "prepared",
    }  # fmt: skip
    assert state["prepared"] is True
    op.ws.state_path.write_text(json.dumps({**state, "from_a_newer_lab": 1}))
    service.check(op)
    service.take_hint(op, "retention")
    state = json.loads(op.ws.state_path.read_text())
    assert state["from_a_newer_lab"] == 1 and state["hints"] == {"retention": 1}
    assert set(state["attempts"][0]) == {"at", "points", "max_points", "passed", "tasks", "checks"}


def test_state_is_written_without_following_symlinks(tmp_path: Path) -> None:
    from lab.fsutil import atomic_write_bytes

    root = tmp_path / "ws"
    (root / "a").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (root / "a" / "b").symlink_to(elsewhere)
    with pytest.raises(LabError, match="is a symlink"):
        atomic_write_bytes(root / "a/b/c/file", b"x", within=root)
    assert list(elsewhere.iterdir()) == []
    # a symlink at the file itself is replaced, never written through
    (root / "a/file").symlink_to(elsewhere / "target")
    atomic_write_bytes(root / "a/file", b"x", within=root)
    assert (root / "a/file").read_bytes() == b"x" and not (root / "a/file").is_symlink()
    assert list(elsewhere.iterdir()) == []
    with pytest.raises(LabError, match="outside"):
        atomic_write_bytes(tmp_path / "other", b"x", within=root)


def test_an_interrupted_start_is_finished_on_resume_never_graded(tmp_path: Path) -> None:
    from lab.errors import LabError
    from lab.workspace import open_workspace

    class Interrupted(Exception):
        pass

    def stop(message: str) -> None:
        raise Interrupted(message)  # as the TUI's cancel does, mid-prepare

    with pytest.raises(Interrupted):
        service.start(Catalog.default(), "audit-enable-logging", tmp_path / "ws", progress=stop)
    ws = open_workspace(tmp_path / "ws")
    assert ws.state()["prepared"] is False
    with pytest.raises(LabError, match="never fully prepared"):
        service.check(service.Opened(ws, Catalog.default().get("audit-enable-logging")))
    op, created = service.start(Catalog.default(), "audit-enable-logging", tmp_path / "ws")
    assert not created and op.ws.state()["prepared"] is True
    manifest = op.ws.node_root("controlplane") / "etc/kubernetes/manifests/kube-apiserver.yaml"
    assert manifest.is_file()
    assert service.check(op).points > 0  # graded as the untouched scenario, not a broken one


def test_an_interrupted_reset_is_refused_by_check_until_finished(tmp_path: Path) -> None:
    from lab.errors import LabError

    op, _ = service.start(Catalog.default(), "audit-enable-logging", tmp_path / "ws")

    def stop(message: str) -> None:
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        service.reset(op, stop)
    with pytest.raises(LabError, match="run `cks-lab reset`"):
        service.check(op)
    service.reset(op)
    assert op.ws.state()["last_reset"]
    service.check(op)
