"""The catalog's summary cache: a hit loads nothing, any change in a scenario's
folder loads and validates it again, and a broken cache or scenario is never trusted."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from lab.paths import bundled_scenarios_dir
from lab.scenarios.catalog import Catalog
from lab.scenarios.loader import ScenarioError
from lab.scenarios.summary import summary_of

IDS = ("audit-enable-logging", "falco-shell-alert")


@pytest.fixture
def roots(tmp_path: Path) -> Path:
    root = tmp_path / "scenarios"
    for sid in IDS:
        shutil.copytree(bundled_scenarios_dir() / sid, root / sid)
    return root


def no_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Catalog, folder: Path) -> object:
        raise AssertionError(f"loaded {folder} despite an unchanged cache entry")

    monkeypatch.setattr(Catalog, "load", refuse)


def test_summaries_match_the_loaded_scenarios(roots: Path, tmp_path: Path) -> None:
    good, bad = Catalog([roots]).summaries(tmp_path / "cache.json", "v1")
    assert not bad
    loaded, _ = Catalog([roots]).scan()
    assert good == [summary_of(sc) for sc in loaded]
    s = {x.id: x for x in good}["audit-enable-logging"]
    assert s.skills == ("audit-logging",) and s.tasks == 2 and s.points == 14


def test_a_second_start_loads_nothing(
    roots: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache.json"
    first, _ = Catalog([roots]).summaries(cache, "v1")
    no_loading(monkeypatch)
    again, bad = Catalog([roots]).summaries(cache, "v1")
    assert again == first and not bad


@pytest.mark.parametrize("change", ["edit", "add", "remove", "touch"])
def test_any_change_in_the_folder_loads_it_again(
    roots: Path, tmp_path: Path, change: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache.json"
    Catalog([roots]).summaries(cache, "v1")
    folder = roots / "audit-enable-logging"
    f = folder / "scenario.yaml"
    if change == "edit":
        f.write_text(f.read_text().replace("title: ", "title: NEW ", 1))
    elif change == "add":
        (folder / "extra.txt").write_text("x")
    elif change == "remove":
        victims = [p for p in folder.rglob("*") if p.is_file() and p.name != "scenario.yaml"]
        victims[0].unlink()
    else:
        st = f.stat()
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    loads: list[Path] = []
    real = Catalog.load

    def counting(self: Catalog, folder: Path) -> object:
        loads.append(folder)
        return real(self, folder)

    monkeypatch.setattr(Catalog, "load", counting)
    good, bad = Catalog([roots]).summaries(cache, "v1")
    assert loads == [folder]  # only the changed one
    if change == "edit":
        assert {s.id: s for s in good}["audit-enable-logging"].title.startswith("NEW ")
    elif change == "remove":
        assert bad and isinstance(bad[0], ScenarioError)  # a file it needs is gone


def test_a_broken_scenario_is_never_cached(roots: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache.json"
    (roots / "falco-shell-alert" / "scenario.yaml").write_text("id: [unclosed\n")
    for _ in range(2):
        good, bad = Catalog([roots]).summaries(cache, "v1")
        assert [s.id for s in good] == ["audit-enable-logging"]
        assert len(bad) == 1 and "scenario.yaml" in str(bad[0])


def test_another_lab_version_or_a_corrupt_cache_loads_everything(
    roots: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache.json"
    first, _ = Catalog([roots]).summaries(cache, "v1")
    for content in (None, b"{not json", b"[]", b'{"format": 1, "lab": "v1", "entries": 5}'):
        if content is not None:
            cache.write_bytes(content)
        catalog = Catalog([roots])
        good, bad = catalog.summaries(cache, "v2" if content is None else "v1")
        assert good == first and not bad
        assert len(catalog._cache) == len(IDS)  # every scenario was loaded again


def test_a_forged_entry_with_a_wrong_signature_is_ignored(roots: Path, tmp_path: Path) -> None:
    import json

    cache = tmp_path / "cache.json"
    Catalog([roots]).summaries(cache, "v1")
    data = json.loads(cache.read_text())
    for entry in data["entries"].values():
        entry["summary"]["title"] = "FORGED"
        entry["sig"][0][1] += 1  # as if the file had another size
    cache.write_text(json.dumps(data))
    good, _ = Catalog([roots]).summaries(cache, "v1")
    assert all(s.title != "FORGED" for s in good)


def test_an_unwritable_cache_only_costs_time(roots: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache.json"
    cache.mkdir()  # cannot be replaced by a file
    good, bad = Catalog([roots]).summaries(cache, "v1")
    assert len(good) == len(IDS) and not bad
