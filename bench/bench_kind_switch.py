"""How long switching scenario takes on a warm kind cluster (goal: under 20 s).

Run: python bench/bench_kind_switch.py [--rounds 3] [--keep] [SCENARIO ...]

Needs docker and kind (`cks-lab doctor`); without them it says so and exits 0.
In a throwaway CKS_LAB_HOME it makes the cluster `cks-lab-bench` (`cks-lab up`,
not timed), starts the first scenario once to warm the images and Falco, then
times `cks-lab up --name cks-lab-bench --scenario ID` for each scenario in turn,
for --rounds rounds: each one resets the cluster from the previous scenario and
sets this one up (manifests, node files, pods Running, Falco or AppArmor ready).
It prints each switch and the median per scenario, then deletes the cluster
(unless --keep).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

from benchproc import cks_lab_exe, median, must

GOAL_S = 20.0
CLUSTER = "cks-lab-bench"
DEFAULT = ["audit-enable-logging", "falco-shell-alert", "apparmor-deny-write"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="*", default=DEFAULT)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the cluster afterwards")
    args = ap.parse_args()
    if shutil.which("kind") is None or shutil.which("docker") is None:
        print("bench_kind_switch: kind or docker is not installed here; nothing measured")
        return 0
    exe = cks_lab_exe()
    home = tempfile.mkdtemp(prefix="cks-lab-bench-")
    env = {**os.environ, "CKS_LAB_HOME": home}
    print(f"making {CLUSTER} (not timed) ...", flush=True)
    must([*exe, "up", "--name", CLUSTER], env)
    try:
        must([*exe, "up", "--name", CLUSTER, "--scenario", args.scenarios[0]], env)  # warm
        times: dict[str, list[float]] = defaultdict(list)
        for r in range(args.rounds):
            for sc in args.scenarios:
                t0 = time.perf_counter()
                res = subprocess.run([*exe, "up", "--name", CLUSTER, "--scenario", sc], env=env,
                                     capture_output=True, text=True)  # fmt: skip
                took = time.perf_counter() - t0
                if res.returncode != 0:
                    sys.exit(f"bench: up --scenario {sc} failed:\n{res.stderr}")
                times[sc].append(took)
                print(f"round {r + 1}: switch to {sc:28} {took:6.1f} s", flush=True)
        print()
        for sc, ts in times.items():
            m = median(ts)
            mark = "ok" if m < GOAL_S else f"over the {GOAL_S:.0f} s goal"
            print(f"{sc:32} median {m:6.1f} s over {len(ts)}  ({mark})")
    finally:
        if not args.keep:
            subprocess.run([*exe, "down", "--name", CLUSTER, "--yes"], env=env,
                           capture_output=True)  # fmt: skip
            shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
