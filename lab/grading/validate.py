"""Semantic validation of a loaded scenario: its checks, and what they refer to."""

from __future__ import annotations

from pathlib import Path

from lab.errors import LabError
from lab.grading.checks import parse_params
from lab.paths import kind_configs_dir
from lab.scenarios.loader import LoadedScenario, inside
from lab.scenarios.requests import api_call


def kind_config_path(sc: LoadedScenario) -> Path:
    """The scenario's own kind config if it ships one, else the bundled one."""
    cfg = sc.model.cluster.kind_config
    try:
        own = inside(sc.root, cfg, str(sc.root))
        if own.is_file():
            return own
    except LabError:
        pass
    return kind_configs_dir() / Path(cfg).name


def validate_checks(sc: LoadedScenario) -> list[LabError]:
    src = str(sc.root / "scenario.yaml")
    doc = sc.doc
    errors: list[LabError] = []
    m = sc.model
    steps = ", ".join(s.id for s in m.attack)

    cfg = m.cluster.kind_config
    if not kind_config_path(sc).is_file():
        errors.append(
            LabError(
                f"kind config {cfg!r} is neither in the scenario folder nor in kind-configs/",
                file=src,
                line=doc.line_of(("cluster", "kind_config")),
                item="cluster.kind_config",
            )
        )
    for t_i, task in enumerate(m.tasks):
        for c_i, check in enumerate(task.checks):
            path: tuple[str | int, ...] = ("tasks", t_i, "checks", c_i)
            where = f"tasks[{t_i}].checks[{c_i}]"
            try:
                ctype, params = parse_params(check)
            except LabError as e:
                sub = (*path, e.item) if e.item else path
                item = f"{where}.{e.item}" if e.item else where
                errors.append(LabError(e.message, file=src, line=doc.line_of(sub), item=item))
                continue
            for step_id in ctype.steps(params):
                step = m.step(step_id)
                problem = None
                if step is None:
                    problem = f"no attack step {step_id!r} (steps: {steps})"
                elif check.type.startswith("audit_") and api_call(step) is None:
                    problem = f"attack step {step_id!r} makes no API request to audit"
                elif check.type.startswith("falco_") and step.in_pod is None:
                    problem = (
                        f"attack step {step_id!r} happens in no pod: Falco sees no event of it "
                        "(use an exec or workload step)"
                    )
                elif check.type.startswith("apparmor_") and step.in_pod is None:
                    problem = (
                        f"attack step {step_id!r} happens in no pod: AppArmor confines the "
                        "processes of a container, and this step runs none (use an exec or "
                        "workload step)"
                    )
                if problem:
                    errors.append(
                        LabError(
                            problem,
                            file=src,
                            line=doc.line_of((*path, "step")),
                            item=f"{where}.step",
                        )
                    )
    return errors
