"""`cks-lab grade`: headless grading for CI, of one scenario or several (docs/ci-grading.md)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import click

from lab.clierrors import lab_errors
from lab.errors import LabError
from lab.fsutil import write_all_or_none

if TYPE_CHECKING:
    from lab.grading.batch import Target
    from lab.grading.report_json import Graded
    from lab.grading.results import ScenarioResult
    from lab.scenarios.catalog import Catalog
    from lab.scenarios.loader import LoadedScenario

_FILE = click.Path(path_type=Path, dir_okay=False)


def _catalog() -> Catalog:
    from lab.scenarios.catalog import Catalog

    ctx = click.get_current_context()
    return Catalog.default(ctx.find_root().params.get("scenarios") or ())


@click.command()
@click.argument("scenario_ids", nargs=-1, metavar="[ID]...")
@click.option(
    "--workspace",
    "-w",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Workspace or submission folder to grade (one ID only).",
)
@click.option(
    "--manifest",
    "-m",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="YAML/JSON list of {scenario: ID, workspace: PATH} to grade (instead of IDs).",
)
@click.option(
    "--scenario-dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Grade against an author's scenario folder instead of a catalog scenario.",
)
@click.option("--learner", help="Learner's name for the JSON report (overrides the manifest's).")
@click.option("--json", "json_out", type=_FILE, help="Write the JSON report here.")
@click.option("--junit", "junit_out", type=_FILE, help="Write a JUnit XML report here.")
@click.option(
    "--summary-md", "summary_out", type=_FILE, help="Write a Markdown summary (for a CI job page)."
)
@click.option("--verbose", "-v", is_flag=True, help="Every scenario's full report, not a line.")
@click.option("--quiet", "-q", is_flag=True, help="Only the exit status and report files.")
@click.option(
    "--allow-shadow",
    is_flag=True,
    help="Grade a --scenarios folder whose id is also a bundled scenario's (refused otherwise).",
)
@lab_errors
def grade(
    scenario_ids: tuple[str, ...],
    workspace: Path | None,
    manifest: Path | None,
    scenario_dir: Path | None,
    learner: str | None,
    json_out: Path | None,
    junit_out: Path | None,
    summary_out: Path | None,
    verbose: bool,
    quiet: bool,
    allow_shadow: bool,
) -> None:
    """Grade headlessly (CI): exit 0 all pass, 1 some fail, 2 error.

    Each ID (looked up in the catalog only, `cks-lab list`, never as a folder
    here) is graded in its workspace: the current one if it is that scenario's,
    else its default one; a scenario not started yet is graded untouched (it
    fails). --workspace DIR grades one ID on a workspace or a submission folder
    holding nodes/<node>/..., laid over the scenario's starting files; nothing
    graded is changed. --manifest FILE lists the scenarios and their folders.

    One scenario prints its full report; several print a line each and the
    total (-v: every full report). An author grades their own scenario folder
    with --scenario-dir DIR (ID may then be left out).
    """
    from lab import service

    if verbose and quiet:
        raise click.UsageError("--verbose and --quiet exclude each other")
    if learner is not None and not learner.strip():
        raise click.UsageError("--learner needs a name")
    _check_outputs(json_out, junit_out, summary_out)
    cat = _catalog()
    targets, from_manifest = _targets(cat, scenario_ids, workspace, manifest, scenario_dir)
    name = learner.strip() if learner is not None else from_manifest
    from lab.grading.report_json import utc_now

    graded_at = utc_now()
    # Every scenario is loaded and validated before any is graded: a typo in the
    # last entry stops the run at once, and no report is half made.
    models = {}
    from lab.exam.guard import refuse_grading_during_exam

    for t in targets:
        refuse_grading_during_exam(t.scenario)  # the exam's grader comes at its submit
        try:
            sc = (
                service.scenario_folder(scenario_dir)
                if scenario_dir is not None
                else service.find_scenario(cat, t.scenario)
            )
        except LabError as e:
            raise t.located(e) from None
        if scenario_dir is None and not allow_shadow:
            _refuse_shadow(sc, t)
        models[t.scenario] = sc
    done: list[Graded] = []
    for t in targets:
        try:
            result = service.grade_workspace(
                cat, t.scenario, t.workspace, scenario_dir=scenario_dir
            )
        except LabError as e:
            raise t.located(e) from None
        done.append(_graded(result, models[t.scenario], t))
    _report(done, name, graded_at, json_out, junit_out, summary_out, verbose, quiet)


def _targets(
    cat: Catalog,
    ids: tuple[str, ...],
    workspace: Path | None,
    manifest: Path | None,
    scenario_dir: Path | None,
) -> tuple[list[Target], str | None]:
    """What to grade, and the manifest's learner."""
    from lab import service
    from lab.grading.batch import Target, load_manifest

    if manifest is not None:
        if ids or workspace is not None or scenario_dir is not None:
            raise click.UsageError(
                "--manifest lists the scenarios and workspaces itself: give no ID, --workspace "
                "or --scenario-dir with it (a course's own scenarios: cks-lab --scenarios DIR "
                "grade --manifest FILE)"
            )
        m = load_manifest(manifest, {f.name for f in cat.folders()})
        return m.targets, m.learner
    if len(ids) > 1:
        if workspace is not None or scenario_dir is not None:
            raise click.UsageError(
                "--workspace and --scenario-dir grade one scenario; for several, list their "
                "folders in a --manifest"
            )
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise click.UsageError(f"scenario {twice[0]!r} is given twice")
    if scenario_dir is not None:
        # An author's folder: its id is whatever the folder says (checked to match ID).
        sid = ids[0] if ids else service.scenario_folder(scenario_dir).id
        return [Target(sid, workspace, _shown(workspace))], None
    if not ids:
        raise LabError("which scenario? give its id (or --scenario-dir DIR, or --manifest FILE)")
    if workspace is not None:
        return [Target(ids[0], workspace, _shown(workspace))], None
    targets = []
    for sid in ids:
        ws = None if service.looks_like_path(sid) else service.workspace_to_grade(sid)
        targets.append(Target(sid, ws, _shown(ws)))
    return targets, None


def _check_outputs(*outs: Path | None) -> None:
    """Each report its own file, in a folder that exists (checked before grading)."""
    seen: dict[Path, Path] = {}
    for out in outs:
        if out is None:
            continue
        key = out.resolve()
        if key in seen:
            raise click.UsageError(f"{out} is given for two reports; give each its own file")
        seen[key] = out
        folder = out.parent
        if not folder.is_dir():
            raise LabError(
                f"cannot write the report: its folder {str(folder)!r} does not exist "
                "(create it first)",
                file=str(out),
            )


def _refuse_shadow(sc: LoadedScenario, t: Target) -> None:
    """A course folder (--scenarios, CKS_LAB_SCENARIOS) must not silently replace a
    bundled scenario: the first folder of an id wins, so a learner's repository could
    bring an easier copy of one under its id."""
    from lab.paths import bundled_scenarios_dir

    bundled = bundled_scenarios_dir()
    if sc.root.resolve().parent == bundled.resolve() or not (bundled / sc.id).is_dir():
        return
    raise t.located(
        LabError(
            f"scenario {sc.id!r} from {sc.root} has the id of a bundled scenario, which it "
            "would replace; rename it, or grade it anyway with --allow-shadow",
            file=str(sc.root),
        )
    )


def _graded(result: ScenarioResult, sc: LoadedScenario, t: Target) -> Graded:
    """The result with the scenario's digest and what the workspace's state records
    (hints taken, solutions viewed: self-reported, a submission may leave .lab/ out)."""
    from lab.grading.report_json import Graded
    from lab.scenarios.digest import folder_digest
    from lab.workspace import is_workspace, open_workspace

    viewed: list[str] | None = None
    hints: dict[str, int] | None = None
    if t.workspace is not None and is_workspace(t.workspace):
        state = open_workspace(t.workspace).state()
        viewed = [str(x) for x in state.get("solutions_viewed", [])]
        hints = {str(k): int(v) for k, v in state.get("hints", {}).items()}
    return Graded.of(
        result,
        sc.model,
        t.shown,
        digest=folder_digest(sc),
        solutions_viewed=viewed,
        hints_taken=hints,
    )


def _shown(workspace: Path | None) -> str | None:
    return None if workspace is None else str(workspace)


def _report(
    done: list[Graded],
    learner: str | None,
    graded_at: str,
    json_out: Path | None,
    junit_out: Path | None,
    summary_out: Path | None,
    verbose: bool,
    quiet: bool,
) -> None:
    import json
    import sys

    from lab.grading.batch import summary_lines, summary_markdown
    from lab.grading.report_json import report_dict
    from lab.grading.report_junit import render_junit
    from lab.grading.report_text import render_text

    report = report_dict(done, learner=learner, graded_at=graded_at)
    files: dict[Path, str] = {}
    if json_out:
        files[json_out] = json.dumps(report, indent=2) + "\n"
    if junit_out:
        files[junit_out] = render_junit(done, learner=learner)
    if summary_out:
        files[summary_out] = summary_markdown(report)
    write_all_or_none(files)
    if not quiet:
        width = shutil.get_terminal_size((100, 24)).columns
        if len(done) == 1 or verbose:
            click.echo("\n\n".join(render_text(g.result, width=width) for g in done))
        if len(done) > 1:
            click.echo(("\n" if verbose else "") + "\n".join(summary_lines(report)))
    sys.exit(0 if report["passed"] else 1)
