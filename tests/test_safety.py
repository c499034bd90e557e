"""Hostile input: a submission, a learner's repo or workspace cannot fool the grader,
make it read or write outside what it grades, hang it, or end it with a traceback."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from lab import safecopy, service
from lab.cli import main
from lab.errors import LabError
from lab.paths import bundled_scenarios_dir

SCENARIO = "audit-enable-logging"
SOLUTION = bundled_scenarios_dir() / SCENARIO / "solution" / "kube-apiserver.yaml"
MANIFESTS = "nodes/controlplane/etc/kubernetes/manifests"


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    return r.exit_code, r.stdout, r.stderr


def _one_error_line(err: str) -> str:
    assert err.startswith("cks-lab: error: ") and err.count("\n") == 1, err
    return err.strip()


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder grade makes its temporary copies in: checked to be empty afterwards."""
    tmp = tmp_path / "tmpdir"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


def _submission(tmp_path: Path) -> Path:
    sub = tmp_path / "submission"
    (sub / MANIFESTS).mkdir(parents=True)
    return sub


# --- 1. the scenario comes from the catalog, never from the learner's repo --------


def _fake_scenario(parent: Path, name: str = SCENARIO) -> Path:
    """A copy of a bundled scenario with a title that shows when it is used."""
    fake = parent / name
    shutil.copytree(bundled_scenarios_dir() / SCENARIO, fake)
    spec = fake / "scenario.yaml"
    spec.write_text(spec.read_text().replace("title: ", "title: FAKE ", 1))
    return fake


def test_grade_looks_the_id_up_in_the_catalog_not_in_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _fake_scenario(repo)
    monkeypatch.chdir(repo)
    code, out, _ = run("grade", SCENARIO)
    assert code == 1 and "FAKE" not in out  # the bundled scenario, graded untouched
    # a path is not an id: the way to grade an author's folder is explicit
    code, _, err = run("grade", f"./{SCENARIO}")
    assert code == 2 and "--scenario-dir" in _one_error_line(err)


def test_grade_scenario_dir_grades_an_authors_folder(tmp_path: Path) -> None:
    fake = _fake_scenario(tmp_path / "authoring")
    code, out, _ = run("grade", "--scenario-dir", str(fake))
    assert code == 1 and out.startswith("FAKE ")
    code, _, err = run("grade", "audit-policy-secrets", "--scenario-dir", str(fake))
    assert code == 2 and "not 'audit-policy-secrets'" in _one_error_line(err)
    code, _, err = run("grade")
    assert code == 2 and "--scenario-dir" in _one_error_line(err)


def test_start_takes_a_folder_only_as_a_path_with_a_slash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_scenario(tmp_path)
    monkeypatch.chdir(tmp_path)
    code, out, _ = run("start", SCENARIO, "-w", str(tmp_path / "ws1"))
    assert code == 0 and "FAKE" not in out
    code, out, _ = run("start", f"./{SCENARIO}", "-w", str(tmp_path / "ws2"))
    assert code == 0 and "FAKE" in out
    code, out, _ = run("scenario", "test", f"./{SCENARIO}")
    assert code == 0 and f"ok   {SCENARIO}" in out
    code, _, err = run("start", "./no-such-folder")
    assert code == 2 and "no scenario.yaml" in _one_error_line(err)


# --- 2. the submission is copied with limits, never followed out ------------------


def test_a_character_device_is_refused_not_read(tmp_path: Path, scratch: Path) -> None:
    sub = _submission(tmp_path)
    dev = sub / MANIFESTS / "zero"
    try:
        os.mknod(dev, stat.S_IFCHR | 0o644, os.makedev(1, 5))  # /dev/zero: endless
    except (PermissionError, AttributeError):
        pytest.skip("creating a device node needs root")
    code, _, err = run("grade", SCENARIO, "-w", str(sub))
    assert code == 2
    assert _one_error_line(err) == (
        f"cks-lab: error: {dev}: is a character device; "
        "a submission holds only files, folders and symlinks"
    )
    assert list(scratch.iterdir()) == []


def test_a_fifo_is_refused_without_blocking(tmp_path: Path, scratch: Path) -> None:
    sub = _submission(tmp_path)
    fifo = sub / MANIFESTS / "pipe"
    os.mkfifo(fifo)
    code, _, err = run("grade", SCENARIO, "-w", str(sub))
    assert code == 2 and f"{fifo}: is a named pipe (FIFO)" in _one_error_line(err)
    assert list(scratch.iterdir()) == []


def test_symlinked_nodes_folder_or_node_root_is_refused(tmp_path: Path, scratch: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "controlplane" / "etc/kubernetes/manifests").mkdir(parents=True)
    shutil.copy(SOLUTION, outside / "controlplane/etc/kubernetes/manifests/kube-apiserver.yaml")

    sub = tmp_path / "sub1"
    sub.mkdir()
    (sub / "nodes").symlink_to(outside)
    code, _, err = run("grade", SCENARIO, "-w", str(sub))
    assert code == 2 and f"{sub / 'nodes'}: is a symlink" in _one_error_line(err)

    sub = tmp_path / "sub2"
    (sub / "nodes").mkdir(parents=True)
    (sub / "nodes/controlplane").symlink_to(outside / "controlplane")
    code, _, err = run("grade", SCENARIO, "-w", str(sub))
    line = _one_error_line(err)
    assert code == 2 and f"{sub / 'nodes/controlplane'}: node root is a symlink" in line
    assert list(scratch.iterdir()) == []


def test_symlinks_inside_a_node_are_copied_as_links_and_stay_in_the_node(
    tmp_path: Path,
) -> None:
    # a link with an absolute target means "from the node's /", as on the node
    sub = _submission(tmp_path)
    kube = sub / "nodes/controlplane/etc/kubernetes"
    shutil.copy(SOLUTION, kube / "mine.yaml")
    (sub / MANIFESTS / "kube-apiserver.yaml").symlink_to("/etc/kubernetes/mine.yaml")
    assert run("grade", SCENARIO, "-w", str(sub), "-q")[0] == 0

    # so a link to the solution on the grading host is not followed there
    host = tmp_path / "host-solution.yaml"
    shutil.copy(SOLUTION, host)
    (kube / "mine.yaml").unlink()
    (sub / MANIFESTS / "kube-apiserver.yaml").unlink()
    (sub / MANIFESTS / "kube-apiserver.yaml").symlink_to(host)
    assert run("grade", SCENARIO, "-w", str(sub), "-q")[0] == 1


def test_file_size_total_and_count_are_capped(
    tmp_path: Path, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = _submission(tmp_path)
    big = sub / MANIFESTS / "big.bin"
    big.write_bytes(b"\0" * (safecopy.MiB + 1))
    code, _, err = run("grade", SCENARIO, "-w", str(sub))
    assert code == 2 and f"{big}: is larger than 1 MiB" in _one_error_line(err)
    big.unlink()

    for i in range(5):
        (sub / MANIFESTS / f"f{i}").write_bytes(b"x" * 1000)
    monkeypatch.setattr(service, "SUBMISSION", safecopy.Limits(max_total=3000))
    code, _, err = run("grade", SCENARIO, "-w", str(sub))
    assert code == 2 and "a submission holds more than 3000 bytes" in _one_error_line(err)

    monkeypatch.setattr(service, "SUBMISSION", safecopy.Limits(max_entries=4))
    code, _, err = run("grade", SCENARIO, "-w", str(sub))
    assert code == 2 and "a submission holds more than 4 files and folders" in err
    assert list(scratch.iterdir()) == []


def test_copy_tree_lays_a_tree_over_another_and_replaces_what_is_in_the_way(
    tmp_path: Path,
) -> None:
    src, dest = tmp_path / "src", tmp_path / "dest"
    (src / "a").mkdir(parents=True)
    (src / "a/file").write_text("new")
    (src / "b").write_text("file now")
    (src / "link").symlink_to("/etc/passwd")
    os.chmod(src / "a/file", 0o600)
    (dest / "b").mkdir(parents=True)  # a folder where src has a file
    (dest / "b/old").write_text("x")
    (dest / "keep").write_text("seed")
    (dest / "link").write_text("a file where src has a link")
    safecopy.copy_tree(src, dest)
    assert (dest / "a/file").read_text() == "new"
    assert stat.S_IMODE((dest / "a/file").stat().st_mode) == 0o600
    assert (dest / "b").read_text() == "file now"
    assert (dest / "keep").read_text() == "seed"
    assert os.readlink(dest / "link") == "/etc/passwd"
    with pytest.raises(LabError, match="is a symlink"):
        safecopy.copy_tree(dest / "link", tmp_path / "elsewhere")


# --- 3. a workspace's lab and node folders are never written through a symlink ----


def _started(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    assert run("start", SCENARIO, "-w", str(ws))[0] == 0
    return ws


def test_symlinked_node_root_makes_check_fail_before_any_write(tmp_path: Path) -> None:
    ws = _started(tmp_path)
    x = tmp_path / "X"
    x.mkdir()
    node = ws / "nodes/controlplane"
    shutil.rmtree(node)
    node.symlink_to(x)
    state = (ws / ".lab/state.json").read_text()
    code, _, err = run("check", "-w", str(ws))
    assert code == 2 and f"{node}: node root is a symlink" in _one_error_line(err)
    assert list(x.iterdir()) == []
    assert (ws / ".lab/state.json").read_text() == state  # no attempt recorded either
    for cmd in (["reset", "-y"], ["solution", "--apply", "-y"]):
        assert run(*cmd, "-w", str(ws))[0] == 2
        assert list(x.iterdir()) == []


def test_symlinked_lab_logs_makes_check_fail_before_any_write(tmp_path: Path) -> None:
    ws = _started(tmp_path)
    y = tmp_path / "Y"
    y.mkdir()
    logs = ws / ".lab/logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.symlink_to(y)
    code, _, err = run("check", "-w", str(ws))
    assert code == 2 and f"{logs}: is a symlink" in _one_error_line(err)
    assert list(y.iterdir()) == []


def test_symlinked_lab_folder_or_state_file_is_refused(tmp_path: Path) -> None:
    ws = _started(tmp_path)
    moved = tmp_path / "lab-elsewhere"
    (ws / ".lab").rename(moved)
    (ws / ".lab").symlink_to(moved)
    before = sorted(p.name for p in moved.rglob("*"))
    for cmd in (["check"], ["hint", "-y"], ["status"]):
        code, _, err = run(*cmd, "-w", str(ws))
        assert code == 2 and f"{ws / '.lab'}: is a symlink" in _one_error_line(err)
    assert sorted(p.name for p in moved.rglob("*")) == before

    (ws / ".lab").unlink()
    moved.rename(ws / ".lab")
    state = ws / ".lab/state.json"
    real = tmp_path / "state-elsewhere.json"
    state.rename(real)
    state.symlink_to(real)
    code, _, err = run("hint", "-y", "-w", str(ws))
    assert code == 2 and f"{state}: is a symlink" in _one_error_line(err)


def test_backups_skip_special_files_and_keep_links_as_links(tmp_path: Path) -> None:
    ws = _started(tmp_path)
    node = ws / "nodes/controlplane"
    os.mkfifo(node / "pipe")
    (node / "link").symlink_to("/etc/kubernetes")
    code, out, _ = run("reset", "-y", "-w", str(ws))
    assert code == 0, out
    (backup,) = (ws / ".lab/backups").iterdir()
    assert os.readlink(backup / "nodes/controlplane/link") == "/etc/kubernetes"
    assert not (backup / "nodes/controlplane/pipe").exists()
