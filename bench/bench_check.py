"""How long `cks-lab check` takes on the sim backend, and how much memory it uses.

Run: python bench/bench_check.py [--runs 10] [--inproc 50] [--scenario ID] [--profile]

Goals: a full `cks-lab check` process under 0.3 s wall, under 150 MB peak RSS.

What it does, in a throwaway folder (CKS_LAB_HOME points there; your own lab
data and the repository are not touched):

1. `cks-lab start ID --workspace TMP/ws`, then `cks-lab solution --apply -y -w TMP/ws`
   (a solved workspace, so check runs every check and exits 0);
2. wall and CPU time of N `cks-lab check -w TMP/ws` processes, median, in two modes:
   - "bytecode cached": .pyc files kept in TMP/pycache (PYTHONPYCACHEPREFIX) and
     warmed by one untimed run, as for a pip-installed wheel;
   - "no bytecode cache": PYTHONDONTWRITEBYTECODE=1 with the default cache
     location: every lab module without a __pycache__ is compiled on each run
     (what happens in an environment that sets that variable);
3. in-process time of `lab.service.check` (median of --inproc calls);
4. peak memory: the largest max RSS of the check processes (os.wait4 gives each
   child's rusage; RUSAGE_CHILDREN, the maximum over all children, is printed too);
5. when the wall time misses the goal (or with --profile): `python -X importtime`
   of the same `cks-lab check` command, median of 5 runs, top modules by self
   and by cumulative import time, and self time summed per top-level package.
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

GOAL_WALL_S = 0.3
GOAL_RSS_MB = 150.0


@dataclass
class Run:
    wall: float
    cpu: float
    rss_mb: float
    rc: int


def run_once(cmd: list[str], env: dict[str, str]) -> Run:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return Run(wall, usage.ru_utime + usage.ru_stime, rss_mb(usage.ru_maxrss), proc.returncode)


# --- main ------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10, help="check processes per mode (default 10)")
    ap.add_argument("--inproc", type=int, default=50, help="in-process checks (default 50)")
    ap.add_argument("--scenario", default="audit-policy-secrets")
    ap.add_argument("--profile", action="store_true", help="import profile even if fast enough")
    args = ap.parse_args()

    exe = cks_lab_exe()
    with tempfile.TemporaryDirectory(prefix="cks-lab-bench-") as tmp_s:
        tmp = Path(tmp_s)
        ws = tmp / "ws"
        base = dict(os.environ)
        base["CKS_LAB_HOME"] = str(tmp / "home")
        base["CKS_LAB_SCENARIOS"] = ""
        cached = {k: v for k, v in base.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cached["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
        nocache = {k: v for k, v in base.items() if k != "PYTHONPYCACHEPREFIX"}
        nocache["PYTHONDONTWRITEBYTECODE"] = "1"

        must([*exe, "start", args.scenario, "--workspace", str(ws)], cached)
        must([*exe, "solution", "--apply", "-y", "-w", str(ws)], cached)
        check = [*exe, "check", "-w", str(ws)]
        first = run_once(check, cached)  # also warms the bytecode cache
        if first.rc != 0:
            must(check, cached)  # prints the output and exits
            sys.exit(f"bench: the solved workspace does not pass (exit {first.rc})")

        bare = [run_once([sys.executable, "-c", "pass"], cached) for _ in range(args.runs)]
        modes = {"bytecode cached": cached, "no bytecode cache": nocache}
        runs: dict[str, list[Run]] = {}
        for name, env in modes.items():
            run_once(check, env)  # untimed warm-up (page cache, pyc)
            runs[name] = [run_once(check, env) for _ in range(args.runs)]
            bad = [r.rc for r in runs[name] if r.rc != 0]
            if bad:
                sys.exit(f"bench: check exited {bad[0]} in mode {name!r}")

        # In process: the same workspace, this interpreter.
        os.environ.update(CKS_LAB_HOME=base["CKS_LAB_HOME"], CKS_LAB_SCENARIOS="")
        t0 = time.perf_counter()
        from lab import service
        from lab.scenarios.catalog import Catalog

        import_s = time.perf_counter() - t0
        catalog = Catalog.default()
        op = service.open_scenario(catalog, ws)
        service.check(op)  # warm-up
        t_open, t_check = [], []
        for _ in range(args.inproc):
            t0 = time.perf_counter()
            op = service.open_scenario(catalog, ws)
            t1 = time.perf_counter()
            result = service.check(op)
            t_check.append(time.perf_counter() - t1)
            t_open.append(t1 - t0)
        assert result.passed

        children_rss = rss_mb(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)

        lab_pyc = any((Path(service.__file__).parent).glob("__pycache__/*.pyc"))
        print(f"cks-lab check on the sim backend: scenario {args.scenario}, solved workspace")
        print(
            f"command: {' '.join(check[:1])} check -w TMP/ws   (python {sys.version.split()[0]},"
            f" {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f})"
        )
        print(f"lab/__pycache__ present: {'yes' if lab_pyc else 'no'}\n")

        rows: list[tuple[str, str, str, str]] = [("metric", "median", "min / max", "goal")]
        for name, rs in runs.items():
            w = [r.wall for r in rs]
            c = [r.cpu for r in rs]
            ok = "ok" if median(w) < GOAL_WALL_S else "MISS"
            rows.append(
                (
                    f"wall, check process ({name}, n={len(rs)})",
                    f"{median(w):.3f} s",
                    f"{min(w):.3f} / {max(w):.3f}",
                    f"< {GOAL_WALL_S} s  {ok}",
                )
            )
            rows.append(
                (f"cpu user+sys ({name})", f"{median(c):.3f} s", f"{min(c):.3f} / {max(c):.3f}", "")
            )
        w = [r.wall for r in bare]
        rows.append(
            (
                f"floor: python -c pass (n={len(bare)})",
                f"{median(w):.3f} s",
                f"{min(w):.3f} / {max(w):.3f}",
                "",
            )
        )
        rows.append(
            (
                f"in-process service.check (n={args.inproc})",
                f"{median(t_check) * 1000:.1f} ms",
                f"{min(t_check) * 1000:.1f} / {max(t_check) * 1000:.1f}",
                "",
            )
        )
        rows.append(
            (
                f"in-process service.open_scenario (n={args.inproc})",
                f"{median(t_open) * 1000:.1f} ms",
                f"{min(t_open) * 1000:.1f} / {max(t_open) * 1000:.1f}",
                "",
            )
        )
        rows.append(("in-process import lab.service (once)", f"{import_s * 1000:.0f} ms", "", ""))
        peak = max(r.rss_mb for rs in runs.values() for r in rs)
        ok = "ok" if peak < GOAL_RSS_MB else "MISS"
        rows.append(
            (
                "peak RSS, check process (max of all)",
                f"{peak:.1f} MB",
                "",
                f"< {GOAL_RSS_MB:.0f} MB  {ok}",
            )
        )
        rows.append(("RUSAGE_CHILDREN max RSS (all children)", f"{children_rss:.1f} MB", "", ""))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for i, r in enumerate(rows):
            print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
            if i == 0:
                print("  ".join("-" * w for w in widths))

        wall_cached = median([r.wall for r in runs["bytecode cached"]])
        if args.profile or wall_cached >= GOAL_WALL_S:
            import_profile(check, cached, "cks-lab check -w TMP/ws")


if __name__ == "__main__":
    main()
