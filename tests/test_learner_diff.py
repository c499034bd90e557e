"""`cks-lab diff`: the learner's node files against the reference solution's."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from lab import service
from lab.cli import main
from lab.learner_diff import MAX_DIFF_BYTES, NOT_DIFFED
from lab.paths import bundled_scenarios_dir
from lab.scenarios.catalog import Catalog

MANIFEST = "nodes/controlplane/etc/kubernetes/manifests/kube-apiserver.yaml"
SOLUTION = bundled_scenarios_dir() / "audit-enable-logging" / "solution" / "kube-apiserver.yaml"


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args), input=input)
    return r.exit_code, r.stdout, r.stderr


def start(tmp_path: Path, scenario: str = "audit-enable-logging") -> Path:
    code, out, _ = run("start", scenario, "-w", str(tmp_path / "ws"))
    assert code == 0, out
    return tmp_path / "ws"


def viewed(ws: Path) -> list[str]:
    return json.loads((ws / ".lab/state.json").read_text())["solutions_viewed"]


def opened(ws: Path) -> service.Opened:
    return service.open_scenario(Catalog.default(()), ws)


def test_diff_shows_what_the_solution_changes_in_your_file(tmp_path: Path) -> None:
    ws = start(tmp_path)
    manifest = ws / MANIFEST
    manifest.write_text(manifest.read_text().replace("    - --secure-port=6443\n", ""))
    code, out, _ = run("diff", "--yes")
    assert code == 0, out
    head = (
        "node controlplane: /etc/kubernetes/manifests/kube-apiserver.yaml "
        "(tasks enable-audit, retention) — yours -> solution's:"
    )
    assert head in out.splitlines()
    assert "--- /etc/kubernetes/manifests/kube-apiserver.yaml (yours)" in out
    assert "+++ /etc/kubernetes/manifests/kube-apiserver.yaml (solution)" in out
    assert "+    - --audit-policy-file=/etc/kubernetes/audit/policy.yaml" in out.splitlines()
    assert "+    - --secure-port=6443" in out.splitlines()  # what the learner deleted
    assert viewed(ws) == ["enable-audit", "retention"]  # seeing it is seeing the solution
    code, out, _ = run("status")
    assert "task retention: hints 0/1, solution viewed" in out


def test_your_file_the_same_as_the_solutions(tmp_path: Path) -> None:
    ws = start(tmp_path)
    shutil.copy(SOLUTION, ws / MANIFEST)
    code, out, _ = run("diff", "--task", "retention", "--yes")
    assert code == 0
    assert out.splitlines()[-1] == (
        "node controlplane: /etc/kubernetes/manifests/kube-apiserver.yaml (task retention)"
        " — the same as the solution's"
    )
    assert "```" not in out
    assert viewed(ws) == ["retention"]  # only the task asked for


def test_a_file_you_have_not_written_yet(tmp_path: Path) -> None:
    ws = start(tmp_path, "falco-find-devmem-reader")
    [d] = service.learner_diff(opened(ws), "report")
    assert (d.node, d.path, d.missing, d.same) == (
        "controlplane",
        "/opt/course/falco/devmem-deployment.txt",
        True,
        False,
    )
    solution = bundled_scenarios_dir() / "falco-find-devmem-reader/solution/devmem-deployment.txt"
    assert d.lines[0] == "--- /opt/course/falco/devmem-deployment.txt (you have none)"
    assert d.lines[3:] == ["+" + line for line in solution.read_text().splitlines()]
    code, out, _ = run("diff", "--task", "report", "--yes")
    assert "— you have no such file; the solution's:" in out


def test_binary_too_large_or_special_files_are_not_dumped(tmp_path: Path) -> None:
    ws = start(tmp_path)
    manifest = ws / MANIFEST
    manifest.write_bytes(b"apiVersion: v1\n\0\x1b[2J")
    [d] = service.learner_diff(opened(ws))
    assert (d.note, d.lines, d.same) == (NOT_DIFFED, [], False)
    manifest.write_bytes(b"# big\n" * (MAX_DIFF_BYTES // 6 + 1))
    [d] = service.learner_diff(opened(ws))
    assert d.note == NOT_DIFFED
    manifest.unlink()
    os.mkfifo(manifest)  # reading a FIFO would hang: it is never opened
    [d] = service.learner_diff(opened(ws))
    assert d.note == "yours is a named pipe (FIFO), not a file"
    code, out, _ = run("diff", "--yes")
    assert code == 0 and "yours is a named pipe (FIFO), not a file" in out


def test_a_symlink_out_of_the_node_is_not_followed(tmp_path: Path) -> None:
    ws = start(tmp_path)
    secret = tmp_path / "outside.txt"
    secret.write_text("host secret\n")
    manifest = ws / MANIFEST
    manifest.unlink()
    manifest.symlink_to(os.path.relpath(secret, manifest.parent))
    code, out, _ = run("diff", "--yes")
    assert code == 0
    assert "host secret" not in out
    assert "leads outside the node" in out
    # an absolute target is the node's own path, as on the node: here, no such file
    manifest.unlink()
    manifest.symlink_to(secret)
    [d] = service.learner_diff(opened(ws))
    assert d.missing and "host secret" not in "\n".join(d.lines)


def test_a_task_whose_solution_writes_no_files(tmp_path: Path) -> None:
    ws = start(tmp_path, "apparmor-load-profile")
    code, out, _ = run("diff", "--task", "load-profile", "--yes")
    assert code == 0
    assert "The reference solution writes no files" in out
    assert viewed(ws) == []  # nothing was shown
    code, _, err = run("diff", "--task", "nope", "--yes")
    assert code == 2 and "no task 'nope' (tasks: load-profile, fix-deployment)" in err


def test_diff_asks_first_unless_the_last_check_passed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("lab.cli_work._interactive", lambda: True)
    ws = start(tmp_path)
    code, out, _ = run("diff", input="n\n")
    assert "This shows the reference solution. Show it?" in out
    assert "Nothing shown." in out and "```" not in out
    assert viewed(ws) == []
    code, out, _ = run("diff", input="y\n")
    assert "```diff" in out and viewed(ws) == ["enable-audit", "retention"]

    shutil.copy(SOLUTION, ws / MANIFEST)
    assert run("check")[0] == 0
    code, out, _ = run("diff")  # nothing to type: the last check passed
    assert code == 0 and "Show it?" not in out
    assert "the same as the solution's" in out
