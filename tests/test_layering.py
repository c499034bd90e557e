"""The layout stays honest: engines know nothing of scenarios, backends, grading or
the TUI; checks know nothing of backends; the core never imports Textual."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import lab

ROOT = Path(lab.__file__).parent

FORBIDDEN = {
    "engines": (
        "lab.scenarios",
        "lab.backends",
        "lab.grading",
        "lab.tui",
        "lab.service",
        "lab.workspace",
        "textual",
    ),
    "grading": ("lab.backends", "lab.tui", "lab.service", "textual"),
    "scenarios": ("lab.backends", "lab.grading", "lab.tui", "lab.service", "textual"),
    # the kind cluster's tools: they know nothing of scenarios, grading or backends
    "kind": (
        "lab.backends",
        "lab.tui",
        "lab.service",
        "lab.scenarios",
        "lab.grading",
        "lab.engines",
        "textual",
    ),
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_layers_import_only_downwards() -> None:
    bad = []
    for area, forbidden in FORBIDDEN.items():
        for path in (ROOT / area).rglob("*.py"):
            for name in _imports(path):
                if any(name == f or name.startswith(f + ".") for f in forbidden):
                    bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, bad


def test_core_never_imports_textual_or_the_kubernetes_client() -> None:
    code = (
        "import sys, lab.cli, lab.service, lab.grading.grader, lab.backends.sim,"
        " lab.backends.kind, lab.kind.cluster;"
        "from lab.cli import main;"
        "bad = [m for m in ('textual', 'kubernetes', 'docker') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_cli_stays_thin() -> None:
    cli = (ROOT / "cli.py").read_text()
    assert len(cli.splitlines()) < 350
    # no engine or backend logic in the CLI: it calls lab.service and reporters
    assert "SimBackend" not in cli and "analyse_apiserver" not in cli


# The TUI adds no logic the CLI lacks: it calls what the CLI calls (service,
# present, progress, shell) and reads result and scenario types; never a
# backend, an engine, the grader or the workspace directly.
TUI_MAY_IMPORT = (
    "lab.service",
    "lab.present",
    "lab.progress",
    "lab.shell",
    "lab.timefmt",
    "lab.exam",
    "lab.errors",
    "lab.grading.results",
    "lab.scenarios.catalog",
    "lab.scenarios.loader",
    "lab.scenarios.model",
    "lab.tui",
)


def _lab_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "lab":
            names.update(f"lab.{a.name}" for a in node.names)  # from lab import service
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lab."):
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("lab"))
    return names


def test_the_tui_calls_only_what_the_cli_calls() -> None:
    bad = []
    for path in (ROOT / "tui").rglob("*.py"):
        for name in _lab_imports(path):
            if not any(name == m or name.startswith(m + ".") for m in TUI_MAY_IMPORT):
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, bad
