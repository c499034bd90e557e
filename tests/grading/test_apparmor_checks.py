"""AppArmor checks decide on evidence alone and explain what happened.

Cases: tests/grading/cases/apparmor_checks.yaml (evidence written out by hand, so no
backend runs here; the scenario is tests/scenarios/fixtures/apparmor-lab).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.evidence import (
    AppArmorAccess,
    AppArmorBrokenFile,
    AppArmorContainer,
    AppArmorEvidence,
    AppArmorNode,
    AppArmorProfileState,
    AppArmorRule,
    AppArmorStep,
    Evidence,
)
from lab.grading.checks import Context, parse_params
from lab.scenarios.loader import load_scenario
from lab.scenarios.model import Check
from lab.schema import load

HERE = Path(__file__).parent
CASES = yaml.safe_load((HERE / "cases" / "apparmor_checks.yaml").read_text())
SCENARIO = load_scenario(HERE.parent / "scenarios" / "fixtures" / "apparmor-lab").model


def evidence(data: dict[str, Any]) -> AppArmorEvidence:
    ev = AppArmorEvidence()
    for name in ("controlplane", "worker", "legacy"):
        ev.nodes[name] = AppArmorNode(name)
    for name, node in (data.get("nodes") or {}).items():
        ev.nodes[name] = AppArmorNode(
            name,
            node.get("enabled", True),
            [AppArmorProfileState(**p) for p in node.get("loaded", [])],
            dict(node.get("defined", {})),
            [AppArmorBrokenFile(b["file"], b["error"], tuple(b.get("names", ())))
             for b in node.get("broken", [])],
        )
    ev.containers = [AppArmorContainer(**c) for c in data.get("containers", [])]
    for step, st in (data.get("steps") or {}).items():
        accesses = []
        for a in st.get("accesses", []):
            a = dict(a)
            a["aliases"] = tuple(a.get("aliases", ()))
            a["rules"] = tuple(AppArmorRule(**r) for r in a.get("rules", ()))
            accesses.append(AppArmorAccess(**a))
        ev.steps[step] = AppArmorStep(step, st["namespace"], st["pod"], st["container"],
                                      st.get("ran", True), accesses)
    return ev


def run(check: dict[str, Any], ev: AppArmorEvidence) -> tuple[str, Any]:
    ctype, params = parse_params(load(Check, check))
    return ctype.title(params), ctype.run(params, Context(SCENARIO, Evidence("r", "t",
                                                                               apparmor=ev)))


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_apparmor_check(case: dict[str, Any]) -> None:
    title, outcome = run(case["check"], evidence(case["evidence"]))
    text = outcome.explanation
    assert outcome.passed is case["passed"], f"{title}: {text}"
    for words in case.get("says", []):
        assert words in text, text
    for words in case.get("not_says", []):
        assert words not in text, text
    if "cause" in case:
        assert outcome.cause and case["cause"] in outcome.cause, outcome.cause
    else:
        assert outcome.cause is None, outcome.cause


def test_titles() -> None:
    ev = AppArmorEvidence()
    titles = [
        run(c, ev)[0]
        for c in [
            {"type": "apparmor_profile_loaded", "node": "worker", "profile": "p"},
            {"type": "apparmor_profile_loaded", "node": "worker", "profile": "p",
             "mode": "enforce"},
            {"type": "apparmor_pod_confined", "pod": "hello", "profile": "p"},
            {"type": "apparmor_pod_confined", "namespace": "payments", "pod": "web",
             "container": "nginx", "profile": "p", "mode": "complain"},
            {"type": "apparmor_denied", "step": "write-tmp"},
            {"type": "apparmor_denied", "step": "write-tmp", "access": ["w /tmp/x", "x /bin/sh"]},
            {"type": "apparmor_allowed", "step": "nginx-serves"},
        ]
    ]  # fmt: skip
    assert titles == [
        "AppArmor profile p is loaded on node worker",
        "AppArmor profile p is loaded on node worker in enforce mode",
        "pod default/hello runs confined by AppArmor profile p in enforce mode",
        "container nginx of pod payments/web runs confined by AppArmor profile p in complain mode",
        "AppArmor blocks every access of attack step 'write-tmp'",
        "AppArmor blocks w /tmp/x, x /bin/sh of attack step 'write-tmp'",
        "AppArmor still allows every access of step 'nginx-serves' (the workload works)",
    ]


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ({"type": "apparmor_denied", "step": "s", "access": "read /etc/shadow"}, "expected"),
        ({"type": "apparmor_denied", "step": "s", "access": ["capability frob"]},
         "unknown capability"),
        ({"type": "apparmor_denied", "step": "s", "access": []}, "at least one access"),
        ({"type": "apparmor_pod_confined", "pod": "p", "profile": "x", "mode": "kill"},
         "must be one of"),
        ({"type": "apparmor_profile_loaded", "node": "w"}, "required field is missing"),
    ],
)
def test_bad_parameters_are_refused(check: dict[str, Any], message: str) -> None:
    with pytest.raises(Exception) as e:
        parse_params(load(Check, check))
    assert message in str(e.value)


def test_explanations_without_apparmor_evidence_are_a_bug() -> None:
    ctype, params = parse_params(load(Check, {"type": "apparmor_denied", "step": "write-tmp"}))
    with pytest.raises(RuntimeError, match="AppArmor evidence"):
        ctype.run(params, Context(SCENARIO, Evidence("r", "t")))
