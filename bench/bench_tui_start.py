"""How long the TUI takes from a cold start to a drawn catalog, and how much memory it uses.

Run: python bench/bench_tui_start.py [--runs 10] [--profile]

Goals: process start to the catalog drawn under 0.6 s wall, under 150 MB peak
RSS. The time to the process's exit (Textual's shutdown, the interpreter's
teardown) is printed too.

What it does, in a throwaway folder (CKS_LAB_HOME points there; your own lab
data and the repository are not touched):

1. `cks-lab start audit-policy-secrets` and one `cks-lab check` (so the catalog
   reads a workspace and a recorded check from the progress store, as for a
   learner who has used the lab);
2. N child processes, each `python -c CHILD` (below): build LabApp(Catalog.default())
   as `cks-lab` does and run it headless (80x24). "Drawn" is the first callback
   queued with `call_after_refresh` from CatalogScreen.on_mount: Textual runs it once
   the screen has laid out, rendered its widgets into the compositor and has nothing
   left dirty. Headless mode skips turning that frame into terminal escape codes, so
   the callback does that once for the whole screen (to a string) to count the cost,
   prints the wall-clock time and calls app.exit(). The child exits 0 only if the
   table had rows. "Start to catalog drawn" is that time minus the moment the
   parent spawned it (interpreter start-up, imports, the catalog scan, the first
   frame); "start to process exit" adds Textual's shutdown and the interpreter's
   teardown (about 0.1 s a learner never waits for); os.wait4 gives each child's
   CPU time and max RSS. The catalog's summary cache (lab/scenarios/summary.py) is
   warm after the set-up's first run, as for a learner who has opened the lab once.
   Two modes, as in bench_check.py:
   - "bytecode cached": .pyc files kept in TMP/pycache (PYTHONPYCACHEPREFIX) and
     warmed by one untimed run, as for a pip-installed wheel;
   - "no bytecode cache": PYTHONDONTWRITEBYTECODE=1 with the default cache
     location: every module without a __pycache__ is compiled on each run (an
     editable install in an environment that sets that variable);
3. for scale: `python -c pass`, and `python -c "import lab.tui.app"` (imports only);
4. when the wall time misses the goal (or with --profile): `python -X importtime`
   of the same child, median of 5 runs, top modules by self and by cumulative
   import time, and self time summed per top-level package.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchproc import (  # bench/ is first on sys.path when run as a script
    cks_lab_exe,
    import_profile,
    median,
    must,
    rss_mb,
)

GOAL_WALL_S = 0.6
GOAL_RSS_MB = 150.0

CHILD = """\
import signal, sys, time
signal.alarm(60)  # never hang the bench: SIGALRM ends the child
from lab.scenarios.catalog import Catalog
from lab.tui.app import LabApp
from lab.tui.screens.catalog import CatalogScreen

rows = []
mounted = CatalogScreen.on_mount

def on_mount(self):
    mounted(self)
    self.call_after_refresh(drawn, self)

def drawn(screen):
    app = screen.app
    frame = screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    frame.render_segments(app.console)  # what a terminal would be sent
    rows.append(screen.query_one("#table").row_count)
    sys.__stdout__.write(f"{time.time()!r}\\n")  # the moment it was drawn (wall clock)
    sys.__stdout__.flush()
    app.exit()

CatalogScreen.on_mount = on_mount
LabApp(Catalog.default()).run(headless=True)
sys.exit(0 if rows and rows[0] > 0 else 3)
"""


@dataclass
class Run:
    wall: float  # spawn to the process reaped (start-up, first frame, shutdown)
    cpu: float
    rss_mb: float
    rc: int
    drawn: float | None = None  # spawn to the catalog drawn, when the child says so


def run_once(cmd: list[str], env: dict[str, str]) -> Run:
    t0 = time.perf_counter()
    spawned = time.time()  # the child reports the drawn moment on the same (wall) clock
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=env["CKS_LAB_HOME"],  # `python -c` puts the cwd first on sys.path: not the repo
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    out = proc.stdout.read()  # a line or nothing: it never fills the pipe
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    try:
        drawn: float | None = float(out.split()[0]) - spawned
    except (IndexError, ValueError):
        drawn = None
    return Run(
        wall, usage.ru_utime + usage.ru_stime, rss_mb(usage.ru_maxrss), proc.returncode, drawn
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10, help="TUI processes per mode (default 10)")
    ap.add_argument("--profile", action="store_true", help="import profile even if fast enough")
    args = ap.parse_args()

    exe = cks_lab_exe()
    child = [sys.executable, "-c", CHILD]
    imports_only = [sys.executable, "-c", "import lab.tui.app"]
    with tempfile.TemporaryDirectory(prefix="cks-lab-bench-") as tmp_s:
        tmp = Path(tmp_s)
        base = dict(os.environ)
        base["CKS_LAB_HOME"] = str(tmp / "home")
        (tmp / "home").mkdir()
        base["CKS_LAB_SCENARIOS"] = ""
        base.pop("TEXTUAL", None)  # no devtools, no debug features in the child
        cached = {k: v for k, v in base.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cached["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
        nocache = {k: v for k, v in base.items() if k != "PYTHONPYCACHEPREFIX"}
        nocache["PYTHONDONTWRITEBYTECODE"] = "1"

        must([*exe, "start", "audit-policy-secrets"], cached, cwd=cached["CKS_LAB_HOME"])
        # the untouched start fails: exit 1
        must([*exe, "check"], cached, ok=(0, 1), cwd=cached["CKS_LAB_HOME"])
        first = run_once(child, cached)  # also warms the bytecode cache
        if first.rc != 0:
            res = subprocess.run(child, env=cached, cwd=tmp, capture_output=True, text=True)
            sys.exit(f"bench: the TUI child exited {res.returncode}:\n{res.stderr[-3000:]}")

        floor = [run_once([sys.executable, "-c", "pass"], cached) for _ in range(args.runs)]
        run_once(imports_only, cached)
        imports = [run_once(imports_only, cached) for _ in range(args.runs)]
        modes = {"bytecode cached": cached, "no bytecode cache": nocache}
        runs: dict[str, list[Run]] = {}
        for name, env in modes.items():
            run_once(child, env)  # untimed warm-up (page cache, pyc)
            runs[name] = [run_once(child, env) for _ in range(args.runs)]
        # The very first start after an install (or a scenario change): no summary
        # cache, so every scenario is loaded and validated before the catalog shows.
        catalog_cache = tmp / "home" / "cache" / "catalog.json"
        runs["bytecode cached, no catalog cache"] = []
        for _ in range(args.runs):
            catalog_cache.unlink(missing_ok=True)
            runs["bytecode cached, no catalog cache"].append(run_once(child, cached))
        for name in runs:
            bad = [r.rc for r in runs[name] if r.rc != 0]
            if bad:
                sys.exit(f"bench: the TUI child exited {bad[0]} in mode {name!r}")
        children_rss = rss_mb(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)

        where = subprocess.run(
            [sys.executable, "-c", "import lab; print(lab.__file__)"],
            env=cached,
            cwd=tmp,
            capture_output=True,
            text=True,
        ).stdout.strip()
        lab_dir = Path(where).parent
        lab_pyc = any(lab_dir.glob("__pycache__/*.pyc"))
        print("cks-lab TUI cold start: LabApp(Catalog.default()) headless, to the catalog drawn")
        print(
            f"python {sys.version.split()[0]} ({sys.executable}), {os.cpu_count()} CPUs, "
            f"load {os.getloadavg()[0]:.2f}; lab/__pycache__ present: {'yes' if lab_pyc else 'no'}"
        )
        print(f"lab from {lab_dir}\n")

        rows: list[tuple[str, str, str, str]] = [("metric", "median", "min / max", "goal")]
        for name, rs in runs.items():
            d = [r.drawn for r in rs if r.drawn is not None]
            w = [r.wall for r in rs]
            c = [r.cpu for r in rs]
            ok = "ok" if d and median(d) < GOAL_WALL_S else "MISS"
            rows.append(
                (
                    f"wall, process start to catalog drawn ({name}, n={len(d)})",
                    f"{median(d):.3f} s" if d else "-",
                    f"{min(d):.3f} / {max(d):.3f}" if d else "-",
                    f"< {GOAL_WALL_S} s  {ok}",
                )
            )
            rows.append(
                (
                    f"wall, start to process exit ({name})",
                    f"{median(w):.3f} s",
                    f"{min(w):.3f} / {max(w):.3f}",
                    "",
                )
            )
            rows.append(
                (f"cpu user+sys ({name})", f"{median(c):.3f} s", f"{min(c):.3f} / {max(c):.3f}", "")
            )
            rss = [r.rss_mb for r in rs]
            ok = "ok" if max(rss) < GOAL_RSS_MB else "MISS"
            rows.append(
                (
                    f"peak RSS ({name})",
                    f"{median(rss):.1f} MB",
                    f"{min(rss):.1f} / {max(rss):.1f}",
                    f"< {GOAL_RSS_MB:.0f} MB  {ok}",
                )
            )
        for label, rs in (("python -c 'import lab.tui.app'", imports), ("python -c pass", floor)):
            w = [r.wall for r in rs]
            rows.append(
                (
                    f"for scale: {label} (cached, n={len(rs)})",
                    f"{median(w):.3f} s",
                    f"{min(w):.3f} / {max(w):.3f}",
                    "",
                )
            )
        rows.append(("RUSAGE_CHILDREN max RSS (all children)", f"{children_rss:.1f} MB", "", ""))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for i, r in enumerate(rows):
            print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
            if i == 0:
                print("  ".join("-" * w for w in widths))

        drawn = [r.drawn for r in runs["bytecode cached"] if r.drawn is not None]
        wall_cached = median(drawn) if drawn else GOAL_WALL_S
        if args.profile or wall_cached >= GOAL_WALL_S:
            import_profile(
                child, cached, "-c CHILD, bytecode cached", top=15, cwd=cached["CKS_LAB_HOME"]
            )


if __name__ == "__main__":
    main()
