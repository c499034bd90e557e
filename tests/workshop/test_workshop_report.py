"""`cks-lab workshop report`: real grading results in, a Markdown and an HTML class report out.

The HTML is parsed (html.parser, and the chart with xml.etree) and its values
checked; it must be self-contained (no script, no external resource) and
escape everything that comes from a result file.
"""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lab.cli import main
from lab.paths import bundled_scenarios_dir
from lab.workshop import report as rep
from lab.workshop.report_html import BAR_W

SVG = "{http://www.w3.org/2000/svg}"
FALCO = "falco-shell-alert"
AUDIT = "audit-enable-logging"
SOLUTIONS = {
    FALCO: ("worker", "etc/falco/falco_rules.local.yaml", "solution/falco_rules.local.yaml"),
    AUDIT: (
        "controlplane",
        "etc/kubernetes/manifests/kube-apiserver.yaml",
        "solution/kube-apiserver.yaml",
    ),
}


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    if r.exception and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.stdout, r.stderr


def _submission(root: Path, scenario: str) -> Path:
    node, dest, src = SOLUTIONS[scenario]
    sub = root / f"sub-{scenario}"
    target = sub / "nodes" / node / dest
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(bundled_scenarios_dir() / scenario / src, target)
    return sub


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Real `cks-lab grade --json` reports: each scenario untouched and solved."""
    root = tmp_path_factory.mktemp("graded")
    out: dict[str, dict[str, Any]] = {}
    with pytest.MonkeyPatch.context() as mp:  # module scope: set up before conftest's lab home
        mp.setenv("CKS_LAB_HOME", str(root / "home"))
        for sc in (FALCO, AUDIT):
            for state in ("untouched", "solved"):
                f = root / f"{sc}-{state}.json"
                ws = ["-w", str(_submission(root, sc))] if state == "solved" else []
                code, _, err = run("grade", sc, *ws, "--json", str(f), "-q")
                assert code in (0, 1), err
                out[f"{sc}-{state}"] = json.loads(f.read_text())
    return out


def _write(
    folder: Path, name: str, *reports: dict[str, Any], learner: str | None = None, **extra: Any
) -> Path:
    """One result file holding the scenarios of `reports` (schema 2, as grade writes it)."""
    base = json.loads(json.dumps(reports[0]))
    base["scenarios"] = [s for r in reports for s in r["scenarios"]]
    base["learner"] = learner
    base.update(extra)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(base))
    return path


def schema1(report: dict[str, Any]) -> dict[str, Any]:
    """The same result as cks-lab 0.1 wrote it (docs/ci-grading.md, schema 1)."""
    return {
        "schema": 1,
        "tool": "cks-lab 0.1.0",
        "passed": report["passed"],
        "points": sum(s["points"] for s in report["scenarios"]),
        "max_points": sum(s["max_points"] for s in report["scenarios"]),
        "scenarios": [
            {
                "scenario": s["id"],
                "title": s["title"],
                "backend": "sim",
                "run_id": "cf95d788",
                "passed": s["passed"],
                "points": s["points"],
                "max_points": s["max_points"],
                "score": s["score"],
                "notes": [],
                "tasks": s["tasks"],
            }
            for s in report["scenarios"]
        ],
    }


@pytest.fixture
def room(tmp_path: Path, graded: dict[str, dict[str, Any]]) -> Path:
    """A class: alice solved Falco only, bob nothing, a script-kiddie name solved both;
    dave's file (schema 1) names no learner and holds only the audit scenario."""
    res = tmp_path / "results"
    g = graded
    _write(res, "a.json", g[f"{FALCO}-solved"], g[f"{AUDIT}-untouched"], learner="alice")
    _write(res, "b.json", g[f"{FALCO}-untouched"], g[f"{AUDIT}-untouched"], learner="bob")
    _write(
        res,
        "c.json",
        g[f"{FALCO}-solved"],
        g[f"{AUDIT}-solved"],
        learner="<script>alert(1)</script>",
        time_spent_seconds=1830,
    )
    (tmp_path / "dave.json").write_text(json.dumps(schema1(g[f"{AUDIT}-solved"])))
    return tmp_path


# --- HTML parsing helpers --------------------------------------------------------------


class Page(HTMLParser):
    """Tags with their attributes, and the text of table cells per table id."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "table":
            self._table = a.get("id") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(" " + data)


def parse(html: str) -> Page:
    p = Page()
    p.feed(html)
    p.close()
    return p


def chart(html: str) -> ET.Element:
    m = re.search(r"<svg\b.*?</svg>", html, re.S)
    assert m, "no inline SVG chart"
    return ET.fromstring(m.group(0))


# --- the reports ----------------------------------------------------------------------------


def test_html_report_holds_the_class_and_is_self_contained(room: Path) -> None:
    out = room / "report.html"
    code, stdout, err = run(
        "workshop", "report", str(room / "results"), str(room / "dave.json"), "-o", str(out)
    )
    assert code == 0, err
    assert "4 learner(s), 3 task(s)" in stdout
    html = out.read_text()
    page = parse(html)

    # self-contained: no script, no external resource, light and dark
    assert "<script" not in html.lower()
    assert not [t for t, a in page.tags if t == "script"]
    for _, attrs in page.tags:
        for key in ("src", "href"):
            assert not (attrs.get(key) or "").lower().startswith(("http:", "https:", "//"))
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", html, re.I)
    assert "@import" not in html and "url(" not in html
    assert "prefers-color-scheme: dark" in html

    # escaped: the learner named <script>... is text, in the table and in the headings
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html

    # the learner x task table: scenario row, task row, then one row per learner
    rows = page.tables["scores"]
    assert rows[0] == ["Learner", AUDIT, FALCO, "Total", "Time"]
    assert rows[1] == ["enable-audit", "retention", "shell-rule"]
    learners = {r[0]: r[1:] for r in rows[2:]}
    assert list(learners) == ["<script>alert(1)</script>", "alice", "bob", "dave"]
    assert learners["alice"] == ["0/10 ✗ fail", "1/4 ✗ fail", "11/11 ✓ pass", "12/25 48%", "–"]
    assert learners["<script>alert(1)</script>"][-2:] == ["25/25 100%", "30 min"]
    # dave did one scenario: his total is over the class's tasks, the missing one 0
    assert learners["dave"] == ["10/10 ✓ pass", "4/4 ✓ pass", "–", "14/25 56%, 2 of 3 tasks", "–"]

    # class averages per task
    tasks = {r[0]: r[1:] for r in page.tables["tasks"][1:]}
    shell = next(v for k, v in tasks.items() if k.endswith(f"{FALCO} / shell-rule"))
    assert shell[0] == "2/3 67%"

    # the checks most often failed: bob's untouched falco fails; counts of 3 graded
    failed = page.tables["failed"][1:]
    assert failed and all(re.fullmatch(r"\d+ of \d+", r[0]) for r in failed)
    counts = [int(r[0].split()[0]) for r in failed]
    assert counts == sorted(counts, reverse=True)
    audit_fails = [r for r in failed if f"{AUDIT} / enable-audit" in r[1]]
    assert audit_fails and audit_fails[0][0] == "2 of 4"
    assert audit_fails[0][2].startswith("alice:")  # an example: the first learner who failed it


def test_the_chart_is_valid_svg_with_one_bar_per_task(room: Path) -> None:
    out = room / "r.html"
    run("workshop", "report", str(room / "results"), str(room / "dave.json"), "-o", str(out))
    svg = chart(out.read_text())
    assert svg.tag == f"{SVG}svg" and svg.get("role") == "img"
    groups = svg.findall(f"{SVG}g")
    assert [g.get("data-task") for g in groups] == [
        f"{AUDIT} / enable-audit",
        f"{AUDIT} / retention",
        f"{FALCO} / shell-rule",
    ]
    rates = []
    for g in groups:
        bar = next(r for r in g.findall(f"{SVG}rect") if r.get("class") == "bar")
        rates.append(float(bar.get("data-rate", "")))
        assert float(bar.get("width", "")) == pytest.approx(BAR_W * rates[-1], abs=0.1)
        assert g.find(f"{SVG}title") is not None  # the tooltip, no script needed
    # audit: the script-kiddie and dave passed of 4; falco: alice and the script-kiddie of 3
    assert rates == pytest.approx([0.5, 0.5, 2 / 3], abs=1e-4)


def test_markdown_report_tables_and_escaping(room: Path) -> None:
    out = room / "class.md"
    code, _, err = run("workshop", "report", str(room / "results"), "-o", str(out))
    assert code == 0, err
    md = out.read_text()
    assert md.startswith("# Workshop report\n")
    assert "<script" not in md
    assert "| &lt;script&gt;alert(1)&lt;/script&gt; |" in md
    header = next(line for line in md.splitlines() if line.startswith("| Learner"))
    assert header == (
        f"| Learner | {AUDIT} / enable-audit | {AUDIT} / retention | {FALCO} / shell-rule "
        "| Total | Time |"
    )
    alice = next(line for line in md.splitlines() if line.startswith("| alice"))
    assert alice == "| alice | 0/10 **fail** | 1/4 **fail** | 11/11 pass | 12/25 (48%) | – |"
    assert "## Checks most often failed" in md and "| 2 of 3 |" in md
    # every table row has as many cells as its header
    for block in re.findall(r"((?:^\|.*\|\n)+)", md, re.M):
        widths = {len(re.split(r"(?<!\\)\|", line)) for line in block.splitlines()}
        assert len(widths) == 1, block


def test_format_from_suffix_forced_or_refused(room: Path) -> None:
    res = str(room / "results")
    code, _, _ = run("workshop", "report", res, "-o", str(room / "r.txt"), "--format", "html")
    assert code == 0 and (room / "r.txt").read_text().startswith("<!DOCTYPE html>")
    code, _, err = run("workshop", "report", res, "-o", str(room / "r.pdf"))
    assert code == 2 and "r.pdf" in err and "--format" in err
    assert not (room / "r.pdf").exists()
    code, out, _ = run("workshop", "report", res, "-o", "-")
    assert code == 0 and out.startswith("# Workshop report")


def test_schema_1_and_2_read_alike(tmp_path: Path, graded: dict[str, dict[str, Any]]) -> None:
    new = _write(tmp_path / "a", "erin.json", graded[f"{FALCO}-solved"])
    old = tmp_path / "b" / "erin.json"
    old.parent.mkdir()
    old.write_text(json.dumps(schema1(graded[f"{FALCO}-solved"])))
    a, b = rep.class_report([new]), rep.class_report([old])
    assert [lr.name for lr in a.learners] == [lr.name for lr in b.learners] == ["erin"]
    assert a.learners[0].tasks == b.learners[0].tasks
    assert a.stats == b.stats


def test_a_scenario_graded_twice(tmp_path: Path, graded: dict[str, dict[str, Any]]) -> None:
    g = graded
    first = _write(
        tmp_path, "1.json", g[f"{FALCO}-untouched"], learner="fay", graded_at="2026-11-28T09:00:00Z"
    )
    later = _write(
        tmp_path, "2.json", g[f"{FALCO}-solved"], learner="fay", graded_at="2026-11-28T10:00:00Z"
    )
    r = rep.class_report([later, first])  # the later result wins, whatever the order
    assert r.learners[0].tasks[(FALCO, "shell-rule")].passed
    for path in (first, later):  # without graded_at nobody can tell which is later
        data = json.loads(path.read_text())
        del data["graded_at"]
        path.write_text(json.dumps(data))
    with pytest.raises(rep.LabError, match="'falco-shell-alert' of learner 'fay' is also in"):
        rep.class_report([first, later])


# --- bad input: a located error, nothing written ---------------------------------------------


def _bad_inputs(tmp: Path, good: dict[str, Any]) -> list[tuple[str, bytes, str]]:
    def with_(f: Any) -> bytes:
        d = json.loads(json.dumps(good))
        f(d)
        return json.dumps(d).encode()

    return [
        ("notjson.json", b'{"schema": 2,\n  "scenarios": [}\n', r"notjson\.json:2: not JSON"),
        ("binary.json", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", r"binary\.json: is a binary"),
        ("latin1.json", b'{"learner": "Jos\xe9"}', r"latin1\.json:1: not UTF-8"),
        ("list.json", b"[1, 2]", r"list\.json: not a result of `cks-lab grade --json`"),
        (
            "v3.json",
            with_(lambda d: d.update(schema=3)),
            r"v3\.json: schema: report schema 3 is not one this cks-lab reads \(1, 2\)",
        ),
        (
            "nopoints.json",
            with_(lambda d: d["scenarios"][0]["tasks"][0].pop("points")),
            r"nopoints\.json: scenarios\[0\]\.tasks\[0\]\.points: is missing",
        ),
        (
            "strpass.json",
            with_(lambda d: d["scenarios"][0]["tasks"][0]["checks"][1].update(passed="yes")),
            r"scenarios\[0\]\.tasks\[0\]\.checks\[1\]\.passed: must be true or false",
        ),
        (
            "toomany.json",
            with_(lambda d: d["scenarios"][0]["tasks"][0].update(points=99)),
            r"scenarios\[0\]\.tasks\[0\]\.points: 99 is more than max_points",
        ),
        ("deep.json", b"[" * 100_000 + b"]" * 100_000, r"deep\.json: not a"),
    ]


def test_bad_results_are_located_and_nothing_is_written(
    tmp_path: Path, graded: dict[str, dict[str, Any]]
) -> None:
    good = _write(tmp_path / "ok", "ok.json", graded[f"{FALCO}-solved"], learner="ok")
    out = tmp_path / "report.html"
    out.write_text("the previous report")
    for name, data, pattern in _bad_inputs(tmp_path, graded[f"{FALCO}-solved"]):
        bad = tmp_path / "bad" / name
        bad.parent.mkdir(exist_ok=True)
        bad.write_bytes(data)
        code, _, err = run("workshop", "report", str(good), str(bad), "-o", str(out))
        assert code == 2, (name, err)
        assert re.search(pattern, err), (name, err)
        assert err.count("\n") == 1 and "Traceback" not in err
        assert out.read_text() == "the previous report", name
        bad.unlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "ok", "report.html"]  # no temp


def test_a_huge_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    with open(big, "wb") as fh:
        fh.truncate(rep.MAX_RESULT_BYTES + 1)  # sparse: costs no disk
    code, _, err = run("workshop", "report", str(big), "-o", str(tmp_path / "r.md"))
    assert code == 2 and "big.json: is 8388609 bytes" in err
    assert not (tmp_path / "r.md").exists()


def test_empty_folder_and_control_characters(
    tmp_path: Path, graded: dict[str, dict[str, Any]]
) -> None:
    (tmp_path / "empty").mkdir()
    code, _, err = run("workshop", "report", str(tmp_path / "empty"), "-o", str(tmp_path / "r.md"))
    assert code == 2 and "empty: no *.json result files" in err
    # a lone surrogate or a terminal escape in a name cannot break the page or the SVG
    sly = _write(
        tmp_path / "r", "x.json", graded[f"{FALCO}-solved"], learner="eve\x1b[31m\ud800\u202e"
    )
    out = tmp_path / "r.html"
    code, _, err = run("workshop", "report", str(sly), "-o", str(out))
    assert code == 0, err
    html = out.read_text(encoding="utf-8")
    assert "\x1b" not in html and "\u202e" not in html and "eve\ufffd[31m" in html
    chart(html)  # still well-formed XML


def test_durations() -> None:
    assert rep.duration(None) == "–"
    assert rep.duration(42) == "42 s"
    assert rep.duration(754) == "13 min"
    assert rep.duration(3600 + 5 * 60) == "1 h 05 min"


def test_time_per_scenario_and_a_class_that_passed_everything(
    tmp_path: Path, graded: dict[str, dict[str, Any]]
) -> None:
    g = json.loads(json.dumps([graded[f"{FALCO}-solved"], graded[f"{AUDIT}-solved"]]))
    g[0]["scenarios"][0]["time_spent_seconds"] = 600
    g[1]["scenarios"][0]["time_spent_seconds"] = 1200.4
    path = _write(tmp_path, "gus.json", *g)
    r = rep.class_report([path])
    assert r.learners[0].seconds == pytest.approx(1800.4)
    assert rep.duration(r.learners[0].seconds) == "30 min"
    code, out, _ = run("workshop", "report", str(path), "-o", "-")
    assert (
        code == 0 and "| gus | 10/10 pass | 4/4 pass | 11/11 pass | 25/25 (100%) | 30 min |" in out
    )
    assert "Every check passed for every learner." in out


def test_results_without_learner_sharing_a_file_name_are_named_by_folder(
    tmp_path: Path, graded: dict[str, dict[str, Any]]
) -> None:
    arts = tmp_path / "arts"
    ada = _write(arts / "ada", "report.json", graded[f"{FALCO}-solved"])
    bob = _write(arts / "bob", "report.json", graded[f"{FALCO}-untouched"])
    r = rep.class_report([ada, bob])
    assert [lr.name for lr in r.learners] == ["ada", "bob"]  # two learners, not one merged
    assert r.learners[0].passed_tasks == 1 and r.learners[1].passed_tasks == 0
    # a file name no other folder shares keeps its name
    solo = _write(tmp_path / "other", "carol.json", graded[f"{AUDIT}-solved"])
    assert [lr.name for lr in rep.class_report([ada, bob, solo]).learners] == [
        "ada",
        "bob",
        "carol",
    ]


def test_still_ambiguous_names_are_refused(
    tmp_path: Path, graded: dict[str, dict[str, Any]]
) -> None:
    one = _write(tmp_path / "a" / "ada", "report.json", graded[f"{FALCO}-solved"])
    two = _write(tmp_path / "b" / "ada", "report.json", graded[f"{FALCO}-untouched"])
    with pytest.raises(rep.LabError, match="--learner NAME") as e:
        rep.class_report([one, two])
    assert str(two) in str(e.value) and str(one) in str(e.value)
    # with a learner in the reports, file names do not matter
    one = _write(tmp_path / "a" / "ada", "report.json", graded[f"{FALCO}-solved"], learner="x")
    two = _write(tmp_path / "b" / "ada", "report.json", graded[f"{FALCO}-solved"], learner="y")
    assert [lr.name for lr in rep.class_report([one, two]).learners] == ["x", "y"]


def test_a_total_is_over_the_class_task_set_and_time_is_left_out_when_unknown(
    tmp_path: Path, graded: dict[str, dict[str, Any]]
) -> None:
    g = graded
    ann = _write(tmp_path, "ann.json", g[f"{FALCO}-solved"], g[f"{AUDIT}-solved"], learner="ann")
    bob = _write(tmp_path, "bob.json", g[f"{FALCO}-solved"], learner="bob")  # one easy scenario
    r = rep.class_report([ann, bob])
    by = {lr.name: lr for lr in r.learners}
    assert by["ann"].max_points == by["bob"].max_points == 25
    assert (by["bob"].points, by["bob"].missing) == (11, 2)
    assert by["ann"].score > by["bob"].score  # bob no longer ranks best with 11/11
    assert not r.timed
    code, out, _ = run("workshop", "report", str(ann), str(bob), "-o", "-")
    assert code == 0
    assert "| bob | – | – | 11/11 pass | 11/25 (44%), 1 of 3 tasks |" in out
    assert "| ann | 10/10 pass | 4/4 pass | 11/11 pass | 25/25 (100%) |" in out
    assert "Time" not in out
    html_out = tmp_path / "r.html"
    assert run("workshop", "report", str(ann), str(bob), "-o", str(html_out))[0] == 0
    rows = parse(html_out.read_text()).tables["scores"]
    assert rows[0][-1] == "Total" and "Time" not in rows[0]
    assert {r[0]: r[-1] for r in rows[2:]}["bob"] == "11/25 44%, 1 of 3 tasks"


def _chromium() -> str | None:
    return next(
        (p for n in ("chromium", "chromium-browser", "google-chrome") if (p := shutil.which(n))),
        None,
    )


@pytest.mark.skipif(_chromium() is None, reason="no chromium installed for a headless render")
def test_the_html_report_renders_in_a_headless_browser(room: Path, tmp_path: Path) -> None:
    import struct
    import subprocess

    html_out = tmp_path / "report.html"
    assert run("workshop", "report", str(room), "-o", str(html_out))[0] == 0
    png = tmp_path / "shot.png"
    subprocess.run(
        [
            str(_chromium()),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1200,1600",
            f"--screenshot={png}",
            html_out.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    # the image data (IDAT chunks) of a blank page compresses to almost nothing
    pos, idat = 8, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        if data[pos + 4 : pos + 8] == b"IDAT":
            idat += length
        pos += 12 + length
    assert idat > 10_000
