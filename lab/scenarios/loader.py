"""Load a scenario folder: safe YAML, the v1 model, files that stay inside it.

Every problem is reported with its file, line and field path; nothing is
written while loading.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lab.errors import LabError
from lab.scenarios import SCENARIO_FILE
from lab.scenarios.model import NodeFile, Scenario
from lab.scenarios.traces import parse_trace
from lab.schema import SchemaError, format_loc, load
from lab.yamlsafe import Document, load_file, parse_all, read_bytes

MAX_SOURCE_BYTES = 1024 * 1024
# Files the lab ships for scenarios to use (`asset:` in a node file).
ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets"


def asset_path(name: str, source: str | None = None, item: str | None = None) -> Path:
    """A lab asset by name (falco/falco_rules.yaml); a LabError if it does not exist."""
    path = inside(ASSETS_DIR, name, source or str(ASSETS_DIR), item)
    if not path.is_file():
        raise LabError(f"the lab has no asset {name!r}", file=source, item=item)
    return path


class ScenarioError(LabError):
    """One or more located problems in a scenario; str() is the first, `errors` all."""

    def __init__(self, errors: list[LabError]) -> None:
        first = errors[0]
        super().__init__(first.message, file=first.file, line=first.line, item=first.item)
        self.errors = errors

    def __str__(self) -> str:
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        return super().__str__() + more


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario and the folder its files live in."""

    model: Scenario
    root: Path
    doc: Document = field(compare=False, repr=False)

    @property
    def id(self) -> str:
        return self.model.id

    def file(self, rel: str) -> Path:
        return inside(self.root, rel, str(self.root / SCENARIO_FILE))

    def read(self, rel: str) -> bytes:
        return read_bytes(self.file(rel), MAX_SOURCE_BYTES)

    def node_file_bytes(self, f: NodeFile) -> bytes:
        if f.content is not None:
            return f.content.encode()
        if f.asset is not None:
            return read_bytes(asset_path(f.asset), MAX_SOURCE_BYTES)
        return self.read(f.source or "")


def inside(root: Path, rel: str, source: str, item: str | None = None) -> Path:
    """Resolve `rel` under `root`, refusing absolute paths and escapes (.., symlinks)."""
    if not rel or rel.startswith("/") or "\\" in rel:
        raise LabError(f"{rel!r} must be a relative path inside the folder", file=source, item=item)
    base = root.resolve()
    target = (base / rel).resolve()
    if target != base and base not in target.parents:
        raise LabError(f"{rel!r} escapes the folder {root}", file=source, item=item)
    return target


def _model_errors(exc: SchemaError, doc: Document) -> list[LabError]:
    return [
        LabError(msg, file=doc.source, line=doc.line_of(loc), item=format_loc(loc) or None)
        for loc, msg in exc.errors
    ]


def _check_sources(sc: LoadedScenario, doc: Document) -> list[LabError]:
    src = doc.source
    errors: list[LabError] = []

    def need(rel: str, path: tuple[str | int, ...]) -> None:
        item = format_loc(path)
        try:
            p = inside(sc.root, rel, src, item)
            if not p.is_file():
                raise LabError(
                    f"file {rel!r} not found in the scenario folder", file=src, item=item
                )
            read_bytes(p, MAX_SOURCE_BYTES)
        except LabError as e:
            errors.append(LabError(e.message, file=src, line=doc.line_of(path), item=item))

    def need_asset(name: str, path: tuple[str | int, ...]) -> None:
        item = format_loc(path)
        try:
            asset_path(name, src, item)
        except LabError as e:
            errors.append(LabError(e.message, file=src, line=doc.line_of(path), item=item))

    m = sc.model
    for i, rel in enumerate(m.setup.manifests):
        need(rel, ("setup", "manifests", i))
    for i, f in enumerate(m.setup.files):
        if f.source:
            need(f.source, ("setup", "files", i, "source"))
        if f.asset:
            need_asset(f.asset, ("setup", "files", i, "asset"))
    for t_i, t in enumerate(m.tasks):
        for f_i, f in enumerate(t.solution.files):
            if f.source:
                need(f.source, ("tasks", t_i, "solution", "files", f_i, "source"))
            if f.asset:
                need_asset(f.asset, ("tasks", t_i, "solution", "files", f_i, "asset"))
    for i, step in enumerate(m.attack):
        if step.trace:
            n = len(errors)
            need(step.trace, ("attack", i, "trace"))
            if len(errors) == n:
                try:
                    parse_trace(sc.read(step.trace), str(sc.file(step.trace)))
                except LabError as e:
                    errors.append(e)
    return errors


def _check_manifests(sc: LoadedScenario) -> list[LabError]:
    errors: list[LabError] = []
    for rel in sc.model.setup.manifests:
        path = sc.file(rel)
        try:
            docs = parse_all(read_bytes(path, MAX_SOURCE_BYTES), str(path))
        except LabError as e:
            errors.append(e)
            continue
        for d in docs:
            obj = d.data
            if obj is None:
                continue
            if not isinstance(obj, dict):
                errors.append(
                    LabError("a manifest must be a mapping", file=str(path), line=d.line_of(()))
                )
                continue
            for key in ("apiVersion", "kind"):
                if not isinstance(obj.get(key), str):
                    errors.append(
                        LabError(f"{key} is required", file=str(path), line=d.line_of(()))
                    )
            meta = obj.get("metadata")
            if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
                errors.append(
                    LabError(
                        "metadata.name is required", file=str(path), line=d.line_of(("metadata",))
                    )
                )
    return errors


def load_scenario(folder: Path) -> LoadedScenario:
    """Load and structurally validate one scenario folder (checks come in validate.py)."""
    folder = Path(folder)
    path = folder / SCENARIO_FILE
    if not folder.is_dir():
        raise ScenarioError(
            [LabError("not a scenario folder (no such directory)", file=str(folder))]
        )
    if not path.is_file():
        raise ScenarioError([LabError(f"no {SCENARIO_FILE} in this folder", file=str(folder))])
    try:
        doc = load_file(path)
    except LabError as e:
        raise ScenarioError([e]) from None
    if not isinstance(doc.data, dict):
        raise ScenarioError([LabError("scenario.yaml must be a mapping", file=str(path), line=1)])
    try:
        model = load(Scenario, doc.data)
    except SchemaError as exc:
        raise ScenarioError(_model_errors(exc, doc)) from None
    if model.id != folder.name:
        raise ScenarioError(
            [
                LabError(
                    f"id {model.id!r} must match the folder name {folder.name!r}",
                    file=str(path),
                    line=doc.line_of(("id",)),
                    item="id",
                )
            ]
        )
    sc = LoadedScenario(model, folder.resolve(), doc)
    errors = _check_sources(sc, doc)
    if not errors:
        errors = _check_manifests(sc)
    if errors:
        raise ScenarioError(errors)
    return sc
