"""The lab's default Falco files (lab/assets/falco): the ruleset loads without a single
warning (so every rule is indexed by evt.type and every list and macro is used), every
rule fires on its attack and stays quiet on its near misses (cases/default_rules.yaml),
a fresh node runs only the rules a real node runs, and falco.yaml says what the nodes
run with."""

from __future__ import annotations

import json
import posixpath
import re
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.engines.falco.engine import Alert, Ruleset, load_rules

ASSETS = files("lab.assets") / "falco"
CASES_FILE = Path(__file__).parent / "cases" / "default_rules.yaml"

# Rule names that tasks and the exam use; they must keep upstream's spelling.
NAMES_TASKS_USE = {
    "Terminal shell in container", "Read sensitive file untrusted",
    "Read sensitive file trusted after startup", "Write below etc", "Write below root",
    "Write below binary dir", "Launch Privileged Container",
    "Contact K8S API Server From Container", "Netcat Remote Code Execution in Container",
    "Packet socket created in container", "Directory traversal monitored file read",
    "Search Private Keys or Passwords", "Clear Log Activities", "Remove Bulk Data from Disk",
    "Create Symlink Over Sensitive Files", "Modify binary dirs", "Mkdir binary dirs",
    "Launch Package Management Process in Container",
    "Drop and execute new binary in container", "Run shell untrusted",
    "System user interactive", "Change thread namespace", "Create files below dev",
    "Read ssh information", "Schedule Cron Jobs", "Update Package Repository",
    "Launch Suspicious Network Tool in Container", "Outbound Connection to C2 Servers",
    "Unexpected outbound connection destination",
    "Redirect STDOUT/STDIN to Network Connection in Container",
    "Fileless execution via memfd_create", "PTRACE attached to process",
    "Debugfs Launched in Privileged Container", "Detect release_agent File Container Escapes",
    "Read environment variable from /proc files", "Set Setuid or Setgid bit",
    "Launch Ingress Remote File Copy Tools in Container", "Find AWS Credentials",
    "Execution from /dev/shm",
}


def asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


@cache
def cases_data() -> dict[str, Any]:
    data = yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def make_event(spec: dict[str, Any]) -> dict[str, Any]:
    """A case's event: its base template(s) under its own fields, meta keys removed."""
    bases = cases_data()["bases"]
    chain = [spec]
    while "base" in chain[-1]:
        chain.append(bases[chain[-1]["base"]])
    event: dict[str, Any] = {}
    for layer in reversed(chain):
        event.update({k: v for k, v in layer.items() if "." in k})
    name = event.get("fd.name")
    if isinstance(name, str) and name.startswith("/"):
        event.setdefault("fd.directory", posixpath.dirname(name))
        event.setdefault("fd.filename", posixpath.basename(name))
    return event


def enable_all() -> str:
    """A rules file that turns on every rule that is off by default."""
    return "".join(
        f"- rule: {json.dumps(name)}\n  enabled: true\n  override:\n    enabled: replace\n"
        for name in sorted(set(default_rule_names()) - set(cases_data()["on_by_default"]))
    )


@cache
def default_rule_names() -> list[str]:
    return ruleset(None, "all", enabled=False).rule_names


@cache
def ruleset(local: str | None, matching: str, *, enabled: bool = True) -> Ruleset:
    """The default ruleset, with every rule enabled (unless not `enabled`), then `local`."""
    sources = [("/etc/falco/falco_rules.yaml", asset("falco_rules.yaml"))]
    if enabled:
        sources.append(("/etc/falco/rules.d/enable-all.yaml", enable_all()))
    if local is not None:
        sources.append(("/etc/falco/falco_rules.local.yaml", local))
    result = load_rules(sources, rule_matching=matching)  # type: ignore[arg-type]
    problems = [str(p) for r in result.reports for p in r.problems]
    assert problems == []
    assert result.ruleset is not None
    return result.ruleset


def case_id(index: int, case: dict[str, Any]) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", case["rule"].lower()).strip("-")
    return f"{index:02d}-{slug}"


CASES = cases_data()["cases"]


def test_default_ruleset_loads_ok_without_warnings() -> None:
    result = load_rules([("falco_rules.yaml", asset("falco_rules.yaml"))])
    assert [(r.status, [str(p) for p in r.problems]) for r in result.reports] == [("Ok", [])]
    assert result.ruleset is not None


def test_the_local_starter_file_loads_after_it_and_holds_no_items() -> None:
    local = asset("falco_rules.local.yaml")
    assert yaml.safe_load(local) is None  # only comments, as a fresh node has it
    result = load_rules([("falco_rules.yaml", asset("falco_rules.yaml")),
                         ("falco_rules.local.yaml", local)])
    assert [r.status for r in result.reports] == ["Ok", "Ok"]


def test_the_examples_in_the_local_starter_file_load_as_written() -> None:
    # Learners copy them: uncommented, they must be a valid local file.
    lines = asset("falco_rules.local.yaml").splitlines()
    example = "\n".join(line[2:] for line in lines if line.startswith(("# - ", "#   ")))
    assert example.count("- rule:") == 2 and "- list:" in example
    result = load_rules([("falco_rules.yaml", asset("falco_rules.yaml")),
                         ("falco_rules.local.yaml", example)])
    assert [(r.status, r.problems) for r in result.reports] == [("Ok", []), ("Ok", [])]


def test_the_ruleset_has_the_rules_tasks_name() -> None:
    names = default_rule_names()
    assert len(names) >= 55
    assert len(set(names)) == len(names)
    assert NAMES_TASKS_USE - set(names) == set()


def test_every_rule_has_a_firing_event_and_a_near_miss() -> None:
    fires = {c["rule"] for c in CASES if c.get("fires")}
    quiet = {c["rule"] for c in CASES if c.get("quiet")}
    names = set(default_rule_names())
    assert set(cases_data()["on_by_default"]) - names == set()
    assert names - fires == set(), "rules without an event that fires them"
    assert names - quiet == set(), "rules without a near miss"
    assert (fires | quiet) - names == set(), "cases for rules that do not exist"


def _names(alerts: list[Alert]) -> list[str]:
    return [a.rule for a in alerts]


@pytest.mark.parametrize("case", CASES, ids=[case_id(i, c) for i, c in enumerate(CASES)])
def test_rule_fires_on_its_events_and_not_on_near_misses(case: dict[str, Any]) -> None:
    rule, local = case["rule"], case.get("local")
    every, first = ruleset(local, "all"), ruleset(local, "first")
    for spec in case.get("fires", []):
        event = make_event(spec)
        alerts = every.process(event)
        assert rule in _names(alerts), spec
        alert = next(a for a in alerts if a.rule == rule)
        assert "%" not in alert.output, alert.output
        assert _names(first.process(event)) == [spec.get("first", rule)], spec
    for spec in case.get("quiet", []):
        assert rule not in _names(every.process(make_event(spec))), spec


@pytest.mark.parametrize("case", CASES, ids=[case_id(i, c) for i, c in enumerate(CASES)])
def test_a_fresh_node_alerts_only_with_the_rules_on_by_default(case: dict[str, Any]) -> None:
    fresh = ruleset(case.get("local"), "all", enabled=False)
    on = case["rule"] in cases_data()["on_by_default"]
    for spec in case.get("fires", []):
        assert (case["rule"] in _names(fresh.process(make_event(spec)))) is on, spec


def test_an_alert_shows_the_pod_and_command_as_a_task_expects() -> None:
    event = make_event({"base": "pod_exec", "proc.name": "sh", "proc.cmdline": "sh",
                        "proc.pname": "runc", "proc.tty": 34816})
    [alert] = ruleset(None, "first").process(event)
    assert (alert.rule, alert.priority) == ("Terminal shell in container", "Notice")
    assert "command=sh " in alert.output and "terminal=34816 " in alert.output
    assert alert.output.endswith("k8s_ns=team-a k8s_pod=web-6d8f7c9b5-x2k4p)")
    assert alert.output_fields["container.id"] == "3f1c9a2b7d4e"


def test_falco_yaml_is_falco_044_shaped_with_the_lab_defaults() -> None:
    config = yaml.safe_load(asset("falco.yaml"))
    assert config["rules_files"] == [
        "/etc/falco/falco_rules.yaml", "/etc/falco/falco_rules.local.yaml", "/etc/falco/rules.d",
    ]
    assert config["priority"] == "debug" and config["rule_matching"] == "first"
    assert config["json_output"] is False
    assert config["json_include_output_property"] is True
    assert config["json_include_tags_property"] is True
    assert config["stdout_output"] == {"enabled": True}
    assert config["file_output"] == {
        "enabled": False, "keep_alive": False, "filename": "/var/log/falco/events.txt",
    }
    assert config["watch_config_files"] is True
    assert config["engine"] == {"kind": "modern_ebpf"}
