"""Falco checks and answer_file decide on evidence alone, and explain what happened.

The Falco cases are tests/grading/cases/falco_checks.yaml (evidence written out by
hand, so no backend runs here); answer_file's are tests/grading/cases/answer_file.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.evidence import (
    Evidence,
    FalcoEvidence,
    FalcoMessage,
    FalcoNode,
    FalcoRule,
    FalcoRulesFile,
    FalcoSuppressed,
    FalcoUpgrade,
    FileFact,
)
from lab.grading.checks import Context, parse_params
from lab.grading.checks.falco import describe_step
from lab.scenarios.loader import load_scenario
from lab.scenarios.model import AttackStep, Check, Scenario
from lab.schema import load

HERE = Path(__file__).parent
CASES = yaml.safe_load((HERE / "cases" / "falco_checks.yaml").read_text())
ANSWERS = yaml.safe_load((HERE / "cases" / "answer_file.yaml").read_text())
SCENARIO = load_scenario(HERE.parent / "scenarios" / "fixtures" / "falco-lab").model
RULES = [
    FalcoRule("Terminal shell in container", "Notice"),
    FalcoRule("Write below etc", "Error"),
]
POD_STEPS = [s.id for s in SCENARIO.attack if s.in_pod is not None]


@dataclass
class Files:
    facts: dict[tuple[str, str], FileFact] = field(default_factory=dict)

    def read(self, node: str, path: str) -> FileFact:
        return self.facts.get((node, path), FileFact(exists=False))


def worker_falco(case: dict[str, Any]) -> FalcoNode:
    return FalcoNode(
        node="worker",
        running=case.get("running", True),
        error=case.get("error"),
        min_priority=case.get("min_priority", "Debug"),
        rules=RULES + [FalcoRule(**r) for r in case.get("rules", [])],
        rules_files=[
            FalcoRulesFile(
                f["path"], f["status"], [FalcoMessage(**m) for m in f.get("messages", [])]
            )
            for f in case.get("rules_files", [])
        ],
    )


def evidence(case: dict[str, Any]) -> FalcoEvidence:
    controlplane = FalcoNode(node="controlplane", running=False, installed=False, error="none")
    ev = FalcoEvidence(
        nodes={"worker": worker_falco(case), "controlplane": controlplane},
        step_nodes={s: "worker" for s in POD_STEPS},
        alerts={k: list(v) for k, v in case.get("alerts", {}).items()},
        suppressed={
            k: [FalcoSuppressed(**d) for d in v] for k, v in case.get("suppressed", {}).items()
        },
        events=case.get("events", {}),
    )
    if "upgrade" in case:  # the fixture's step `upgrade`; `seen`: the steps after it
        up = case["upgrade"]
        restarted = worker_falco({**case, **up.get("falco", {})})
        ev.upgrades["upgrade"] = FalcoUpgrade(
            "upgrade", "worker", "falco", up.get("restored", ["/etc/falco/falco_rules.yaml"]),
            up.get("changed", []), restarted,
        )  # fmt: skip
        ev.after_upgrade = {s: "upgrade" for s in up.get("seen", ["shell-after-upgrade"])}
    return ev


def scenario(case: dict[str, Any]) -> Scenario:
    """The fixture, with the case's `secret` steps secret."""
    secret = set(case.get("secret", []))
    return replace(SCENARIO, attack=[replace(s, secret=s.id in secret) for s in SCENARIO.attack])


def run(check: dict[str, Any], ev: Evidence, sc: Scenario = SCENARIO) -> Any:
    ctype, params = parse_params(load(Check, check))
    return ctype.title(params), ctype.run(params, Context(sc, ev))


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_falco_check(case: dict[str, Any]) -> None:
    files = Files({("worker", k): FileFact(True, v) for k, v in case.get("files", {}).items()})
    ev = Evidence("r", "test", falco=evidence(case), files=files)
    title, outcome = run(case["check"], ev, scenario(case))
    text = outcome.explanation
    assert outcome.passed is case["passed"], f"{title}: {text}"
    for words in case.get("says", []):
        assert words in text, text
    for words in case.get("not_says", []):
        assert words not in text, text
    if "cause" in case:
        assert outcome.cause and case["cause"] in outcome.cause, outcome.cause
    else:
        assert outcome.cause is None


def test_failed_alert_checks_share_one_cause_when_falco_is_down() -> None:
    ev = Evidence("r", "test", falco=evidence({"running": False, "error": "boom"}))
    causes = {
        run({"type": t, "step": s, **extra}, ev)[1].cause
        for t, extra in [("falco_alert", {}), ("falco_no_alert", {}),
                         ("falco_output_format", {"format": "%proc.name"})]  # fmt: skip
        for s in ("shell", "mem-reader")
    }
    assert causes == {"Falco is not running on node worker: boom"}


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ({"type": "falco_alert", "step": "shell", "priority": "urgent"}, "not a Falco priority"),
        ({"type": "falco_alert", "step": "shell", "rules": "x"}, "unknown parameter"),
        ({"type": "falco_output_format", "step": "shell"}, "required field is missing"),
        ({"type": "answer_file", "node": "cp", "path": "x.txt", "value": "a"}, "absolute path"),
        ({"type": "answer_file", "node": "cp", "path": "/x", "value": []}, "at least one"),
    ],
)
def test_bad_parameters_are_refused(check: dict[str, Any], message: str) -> None:
    with pytest.raises(Exception) as e:
        parse_params(load(Check, check))
    assert message in str(e.value)


def test_titles() -> None:
    ev = Evidence("r", "test", falco=evidence({}), files=Files())
    titles = [
        run(c, ev)[0]
        for c in [
            {"type": "falco_alert", "step": "shell", "rule": "R", "priority": "warning",
             "output_contains": "x=1", "fields": {"proc.name": "sh"}},
            {"type": "falco_no_alert", "step": "shell", "rule": "R"},
            {"type": "falco_output_format", "step": "shell", "format": "%proc.name"},
            {"type": "falco_rules_load"},
            {"type": "answer_file", "node": "cp", "path": "/opt/a.txt", "value": "x"},
        ]
    ]  # fmt: skip
    assert titles == [
        "Falco alerts on attack step 'shell' with rule 'R' at priority Warning, "
        "output with 'x=1', proc.name=sh",
        "Falco raises no alert from rule 'R' for attack step 'shell'",
        "the alert for attack step 'shell' has the output format `%proc.name`",
        "Falco loads every rules file",
        "/opt/a.txt on node cp holds the answer",
    ]


@pytest.mark.parametrize("case", ANSWERS, ids=[c["name"] for c in ANSWERS])
def test_answer_file(case: dict[str, Any]) -> None:
    files = Files()
    if "file" in case:
        files.facts[("controlplane", "/opt/course/1/pod.txt")] = FileFact(**case["file"])
    check = {"type": "answer_file", "node": "controlplane", "path": "/opt/course/1/pod.txt",
             "value": case.get("value", "monitor-7d9f")}  # fmt: skip
    _, outcome = run(check, Evidence("r", "test", files=files))
    assert outcome.passed is case["passed"], outcome.explanation
    for words in case.get("says", []):
        assert words in outcome.explanation, outcome.explanation
    expected = check["value"] if isinstance(check["value"], str) else check["value"][0]
    if not case["passed"]:
        assert f"'{expected}'" not in outcome.explanation  # never gives the answer away


@pytest.mark.parametrize(
    ("command", "typed"),
    [
        (["bash"], "bash"),
        (["sh", "-c", "nginx -t"], "sh -c 'nginx -t'"),
        (["cat", "/etc/my file"], "cat '/etc/my file'"),
        # a single quote inside: double quotes, as a person types it
        (["sh", "-c", "echo '* * *' > /etc/cron.d/x"], "sh -c \"echo '* * *' > /etc/cron.d/x\""),
        # ... unless double quotes would expand or need escapes: shlex's quoting
        (["sh", "-c", "echo \"it's\""], "sh -c 'echo \"it'\"'\"'s\"'"),
        (["sh", "-c", "echo $HOME's"], "sh -c 'echo $HOME'\"'\"'s'"),
    ],
)
def test_exec_steps_are_quoted_as_typed_in_a_shell(command: list[str], typed: str) -> None:
    exec_ = {"namespace": "n", "pod": "p", "command": command}
    step = load(AttackStep, {"id": "s", "description": "d", "exec": exec_})
    assert describe_step(step, "s") == f"`kubectl exec p -n n -- {typed}`"
