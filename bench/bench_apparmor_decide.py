"""AppArmor access decisions: 100k accesses against a 60-rule profile.

Run: python bench/bench_apparmor_decide.py   (target: >= 50k decisions/s on one core)

Two passes over the same 100k accesses: the first with every path distinct (no
decision is ever repeated, so the per-profile cache never helps), the second over a
realistic mix where a workload keeps touching the same few hundred files.
"""

from __future__ import annotations

import random
import sys
import time

from lab.engines.apparmor import Access, decide, parse_access, parse_profile_text
from lab.engines.apparmor.model import Profile

N = 100_000
TARGET = 50_000

# An nginx-style profile of 60 rules: globs of every shape, owner and deny rules,
# exec transitions, capabilities and network rules.
DIRS = ["etc", "usr", "var", "tmp", "opt", "srv", "home", "proc", "sys", "run", "dev", "lib"]


def build_profile() -> Profile:
    rules = []
    for i in range(54):
        d = DIRS[i % len(DIRS)]
        shape = i % 6
        if shape == 0:
            rules.append(f"  /{d}/sub{i}/** r,")
        elif shape == 1:
            rules.append(f"  deny /{d}/secret{i}* w,")
        elif shape == 2:
            rules.append(f"  owner /{d}/own{i}/{{,**}} rw,")
        elif shape == 3:
            rules.append(f"  /{d}/bin{i}/* ix,")
        elif shape == 4:
            rules.append(f"  /{d}/file{i}.[ch] rk,")
        else:
            rules.append(f"  /{d}/{{a,b,c}}{i}/*.log a,")
    rules += [
        "  /{usr/,}lib{,32,64}/** mr,",
        "  deny /** l,",
        "  capability net_bind_service setuid setgid,",
        "  deny capability sys_admin,",
        "  network inet stream,",
        "  deny network raw,",
    ]
    text = "profile bench flags=(attach_disconnected) {\n" + "\n".join(rules) + "\n}\n"
    prof = parse_profile_text(text, name="bench.sd").profile()
    assert len(prof.rules) == 60, len(prof.rules)
    return prof


def accesses(rnd: random.Random, distinct: bool) -> list[Access]:
    out = []
    for n in range(N):
        d = rnd.choice(DIRS)
        j = rnd.randrange(54)
        tail = n if distinct else rnd.randrange(50)
        path = rnd.choice([
            f"/{d}/sub{j}/x/{tail}", f"/{d}/secret{j}{tail}", f"/{d}/own{j}/{tail}",
            f"/{d}/bin{j}/tool{tail}", f"/{d}/file{j}.c", f"/{d}/b{j}/{tail}.log",
            f"/usr/lib/x86_64-linux-gnu/lib{tail}.so", f"/{d}/other/{tail}",
        ])
        if distinct:
            path += f"/{n}" if path.endswith(".c") else ""
        kind = rnd.random()
        if kind < 0.05:
            out.append(parse_access(rnd.choice(["capability net_bind_service",
                                                "capability sys_admin", "capability chown"])))
        elif kind < 0.10:
            out.append(parse_access(rnd.choice(["network inet stream", "network inet raw",
                                                "network inet6 dgram"])))
        else:
            owner = "owner " if rnd.random() < 0.3 else ""
            out.append(parse_access(f"{owner}{rnd.choice(['r', 'w', 'a', 'x', 'rk', 'm'])} {path}"))
    return out


def run(prof: Profile, accs: list[Access]) -> tuple[float, dict[str, int]]:
    prof.index = None  # compile afresh: compiling is part of the cost
    counts: dict[str, int] = {}
    t0 = time.perf_counter()
    for a in accs:
        v = decide(prof, a).verdict
        counts[v] = counts.get(v, 0) + 1
    return time.perf_counter() - t0, counts


def main() -> int:
    prof = build_profile()
    rnd = random.Random(4)
    worst = float("inf")
    for label, distinct in (("all paths distinct", True), ("repeating workload", False)):
        accs = accesses(rnd, distinct)
        elapsed, counts = run(prof, accs)
        rate = N / elapsed
        worst = min(worst, rate)
        print(f"{label:20s}: {N:,} decisions in {elapsed:.2f}s = {rate:,.0f}/s  {counts}")
    print(f"target >= {TARGET:,}/s: {'ok' if worst >= TARGET else 'MISSED'}")
    return 0 if worst >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
