"""What the start-up benchmarks share: find the cks-lab command, run a set-up step,
medians, and a `python -X importtime` profile of the command being timed."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path


def cks_lab_exe() -> list[str]:
    """The console script of this interpreter (not a pyenv/asdf shim, which adds a bash hop)."""
    beside = Path(sys.executable).parent / "cks-lab"
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("cks-lab")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from lab.cli import main; sys.exit(main())"]


def rss_mb(maxrss: int) -> float:
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    return maxrss / (1024 * 1024) if sys.platform == "darwin" else maxrss / 1024


def must(
    cmd: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,), cwd: str | None = None
) -> None:
    """A set-up step; the bench stops, showing why, when it fails."""
    res = subprocess.run(
        cmd, env=env, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if res.returncode not in ok:
        sys.exit(f"bench: {' '.join(cmd)} exited {res.returncode}:\n{res.stderr}")


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def import_profile(
    cmd: list[str],
    env: dict[str, str],
    label: str,
    *,
    reps: int = 5,
    top: int = 10,
    cwd: str | None = None,
) -> None:
    """-X importtime of the timed command; median over reps per module."""
    selfs: dict[str, list[int]] = defaultdict(list)
    cums: dict[str, list[int]] = defaultdict(list)
    depth: dict[str, int] = {}
    prefix = [sys.executable, "-X", "importtime"]
    argv = [*prefix, *cmd[1:]] if cmd[0] == sys.executable else [*prefix, *cmd]
    for _ in range(reps):
        res = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
        if res.returncode not in (0, 1):  # 1: a check that fails is still a profile
            sys.exit(f"bench: the profiled command exited {res.returncode}:\n{res.stderr[-2000:]}")
        for line in res.stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            s, c, name = line.removeprefix("import time:").split("|", 2)
            mod = name.strip()
            selfs[mod].append(int(s))
            cums[mod].append(int(c))
            depth[mod] = (len(name) - len(name.lstrip(" ")) - 1) // 2  # "| " then 2 per level
    med_self = {m: median([float(x) for x in v]) / 1000 for m, v in selfs.items()}
    med_cum = {m: median([float(x) for x in v]) / 1000 for m, v in cums.items()}
    total = sum(med_self.values())
    print(
        f"\nImport profile: python -X importtime {label} "
        f"(median of {reps}; all imports: {total:.0f} ms self time in {len(med_self)} modules)"
    )

    def table(title: str, rows: list[tuple[str, float, float]]) -> None:
        print(f"\n{title}")
        print(f"  {'module':<48} {'self ms':>8} {'cumul ms':>9}")
        for mod, s, c in rows:
            print(f"  {mod:<48} {s:>8.1f} {c:>9.1f}")

    by_self = sorted(med_self, key=lambda m: -med_self[m])[:top]
    table(f"Top {top} by self time", [(m, med_self[m], med_cum[m]) for m in by_self])
    by_cum = sorted(med_cum, key=lambda m: -med_cum[m])[:top]
    table(
        f"Top {top} by cumulative time (nested: a module includes what it imports)",
        [("  " * depth.get(m, 0) + m, med_self[m], med_cum[m]) for m in by_cum],
    )
    ours = sorted(
        (m for m in med_cum if m == "lab" or m.startswith("lab.")), key=lambda m: -med_cum[m]
    )[:top]
    table(
        f"Top {top} lab.* modules by cumulative time", [(m, med_self[m], med_cum[m]) for m in ours]
    )
    pkgs: dict[str, float] = defaultdict(float)
    for m, ms in med_self.items():
        pkgs[m.split(".", 1)[0]] += ms
    print(f"\nSelf time per top-level package (top {top})")
    for p, ms in sorted(pkgs.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {p:<48} {ms:>8.1f}")
