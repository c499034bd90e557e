"""`cks-lab scenario new`: a skeleton that validates, whose self-test says what is missing,
and that becomes a passing scenario once its reference solution is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from lab import service
from lab.cli import main
from lab.paths import bundled_scenarios_dir
from lab.scenarios.scaffold import SKILLS, skeleton_files


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    if r.exception and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.stdout, r.stderr


# What an author writes in place of each skeleton's TODO solution.
SOLVED = {
    "falco": (
        "solution/falco_rules.local.yaml",
        "- rule: TODO rule name\n"
        "  desc: reads of the app's credentials\n"
        "  condition: open_read and container and fd.name = /app/credentials\n"
        "  output: credentials read (user=%user.name command=%proc.cmdline)\n"
        "  priority: WARNING\n",
    ),
    "audit-logging": (
        "solution/policy.yaml",
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n"
        "  - level: Metadata\n    resources: [{group: '', resources: [secrets]}]\n"
        "  - level: None\n",
    ),
    "apparmor": (
        "solution/k8s-{id}",
        "#include <tunables/global>\n"
        "profile k8s-{id} flags=(attach_disconnected) {\n"
        "  #include <abstractions/base>\n  file,\n  deny /etc/** w,\n}\n",
    ),
}


@pytest.mark.parametrize("skill", SKILLS)
def test_new_validates_and_its_self_test_says_what_is_missing(
    skill: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    sid = f"my-{skill}"
    code, out, err = run("scenario", "new", sid, "--skill", skill)
    assert code == 0, err
    assert f"Created ./{sid}/ ({skill})" in out and f"cks-lab scenario test ./{sid}" in out
    folder = tmp_path / sid
    sc, errors = service.validate_folder(folder)
    assert errors == [] and sc is not None and sc.model.skills == [skill]
    assert "TODO" in sc.model.briefing and "TODO" in sc.model.tasks[0].statement
    assert all("TODO" in t.solution.notes for t in sc.model.tasks)

    code, out, err = run("scenario", "validate", f"./{sid}")
    assert code == 0 and f"ok      {sid}" in out  # valid; its TODOs are warnings
    assert f"{sid}/scenario.yaml:" in err and "warning: TODO left" in err

    # the self-test fails and names what is missing: the solution does not pass yet
    code, out, _ = run("scenario", "test", f"./{sid}")
    assert code == 1, out
    assert out.startswith(f"FAIL {sid}: untouched ")
    assert "the reference solution fails" in out
    assert "passes in the untouched state" not in out  # the untouched state fails already

    # with the solution written, the solution passes, but the TODOs left say it is not done
    rel, text = SOLVED[skill]
    (folder / rel.replace("{id}", sid)).write_text(text.replace("{id}", sid))
    code, out, _ = run("scenario", "test", f"./{sid}")
    assert code == 1, out
    assert "TODO markers left: " in out and "scenario.yaml:" in out
    assert "the reference solution fails" not in out

    # and the pack refuses it
    code, _, err = run("workshop", "pack", f"./{sid}", "-o", str(tmp_path / "p.zip"))
    assert code == 2 and "is not finished: TODO markers left" in err
    assert not (tmp_path / "p.zip").exists()

    # every TODO replaced (the same words, so names still match): done
    for f in folder.rglob("*"):
        if f.is_file():
            f.write_text(f.read_text().replace("TODO", "Done"))
    code, out, err = run("scenario", "test", f"./{sid}")
    assert code == 0, out
    assert out.startswith(f"ok   {sid}: ")
    code, _, err = run("scenario", "validate", f"./{sid}")
    assert code == 0 and "TODO" not in err
    code, _, err = run("workshop", "pack", f"./{sid}", "-o", str(tmp_path / "p.zip"))
    assert code == 0, err


def test_an_untouched_state_that_passes_is_reported(tmp_path: Path) -> None:
    # an author who makes the starting policy log everything: the task passes untouched
    code, _, err = run(
        "scenario", "new", "loud", "--skill", "audit-logging", "--dir", str(tmp_path)
    )
    assert code == 0, err
    (tmp_path / "loud/files/policy.yaml").write_text(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n"
        "  - level: Metadata\n    resources: [{group: '', resources: [secrets]}]\n"
        "  - level: None\n"
    )
    code, out, _ = run("scenario", "test", str(tmp_path / "loud"))
    assert code == 1 and "task 'write-policy' passes in the untouched state" in out


@pytest.mark.parametrize(
    "bad, message",
    [
        ("My_Scenario", "is not a scenario id"),
        ("-leading", "is not a scenario id"),
        ("x" * 64, "is not a scenario id"),
        ("", "is not a scenario id"),
        ("../escape", "is a path; give the id alone"),
        ("a/b", "is a path; give the id alone"),
        ("/etc/cron.d", "is a path; give the id alone"),
    ],
)
def test_bad_ids_are_refused(bad: str, message: str, tmp_path: Path) -> None:
    code, _, err = run("scenario", "new", "--skill", "falco", "--dir", str(tmp_path), "--", bad)
    assert code == 2 and message in err
    assert list(tmp_path.iterdir()) == []


def test_existing_things_are_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.md").write_text("mine")
    (tmp_path / "file").write_text("mine")
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    for name in ("taken", "file", "link"):
        code, _, err = run("scenario", "new", name, "--skill", "apparmor", "--dir", str(tmp_path))
        assert code == 2 and f"{tmp_path / name}: already exists" in err
    assert (tmp_path / "taken" / "notes.md").read_text() == "mine"
    assert not (tmp_path / "elsewhere").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "link", "taken"]  # no temp
    code, _, err = run("scenario", "new", "x", "--skill", "falco", "--dir", str(tmp_path / "no"))
    assert code == 2 and "does not exist" in err


def test_unknown_skill_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = run("scenario", "new", "x", "--skill", "seccomp", "--dir", str(tmp_path))
    assert code == 2 and "'seccomp' is not one of 'falco', 'audit-logging', 'apparmor'" in err


@pytest.mark.parametrize("skill", SKILLS)
def test_the_skeleton_copies_no_bundled_text(skill: str) -> None:
    bundled = "\n".join(p.read_text() for p in bundled_scenarios_dir().rglob("*") if p.is_file())
    for rel, text in skeleton_files("some-id", skill).items():
        if rel == "files/kube-apiserver.yaml":
            continue  # kubeadm's own manifest, the same in every cluster
        # sentences, not YAML data (an asset's setup line is the same in every scenario)
        prose = [
            line.strip()
            for line in text.splitlines()
            if sum(w.strip(",.:;()`'\"").isalpha() for w in line.split()) >= 6
        ]
        assert rel != "scenario.yaml" or len(prose) > 10  # the test looks at something
        copied = [line for line in prose if line in bundled]
        assert copied == [], (rel, copied)


def test_todo_markers_skip_binary_and_hidden_files_and_summarise(tmp_path: Path) -> None:
    from lab.scenarios.scaffold import todo_markers, todo_summary

    (tmp_path / "scenario.yaml").write_text("id: x\n# TODO: one\nTODOS are not markers\n")
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "a.txt").write_text("ok\nok\nTODO\n")
    (tmp_path / "blob.bin").write_bytes(b"\x00TODO")
    (tmp_path / ".swp").write_text("TODO")
    marks = todo_markers(tmp_path)
    assert marks == [("files/a.txt", 3), ("scenario.yaml", 2)]
    assert todo_summary(marks) == "TODO markers left: files/a.txt:3, scenario.yaml:2"
    assert todo_summary(marks, limit=1) == "TODO markers left: files/a.txt:3 and 1 more"
