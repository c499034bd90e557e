"""Attack steps' effects become the events Falco sees (lab.backends.sim.falco_events).

The table is tests/backends/cases/falco_events.yaml; the properties every run
must have (determinism, increasing numbers and times, recorded traces) follow.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.backends.sim.falco_events import attack_events
from lab.backends.sim.falco_pods import split_image
from lab.scenarios.model import Scenario
from lab.schema import load

CASES = yaml.safe_load((Path(__file__).parent / "cases" / "falco_events.yaml").read_text())
T0 = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)

PODS = yaml.safe_load("""
- name: web
  namespace: payments
  node: worker
  labels: {app: web, tier: front}
  containers:
    - {name: web, image: "nginx:1.27", command: [nginx, -g, daemon off;]}
- name: agent
  namespace: monitoring
  node: worker
  containers:
    - {name: agent, image: registry.k8s.io/busybox, run_as_user: 1000, privileged: true}
""")


def scenario(steps: list[dict[str, Any]], pods: list[dict[str, Any]] | None = None) -> Scenario:
    data = {
        "apiVersion": "cks-lab/v1",
        "id": "events",
        "title": "t",
        "skills": ["falco"],
        "domain": "monitoring-logging-runtime-security",
        "difficulty": "easy",
        "minutes": 1,
        "weight": 1,
        "briefing": "b",
        "cluster": {
            "kind_config": "kind.yaml",
            "nodes": [{"name": "cp", "role": "control-plane"}, {"name": "worker"}],
        },
        "setup": {"pods": copy.deepcopy(pods if pods is not None else PODS)},
        "attack": [
            {"id": f"s{i}", "description": "d", **step} for i, step in enumerate(steps)
        ],
        "tasks": [
            {
                "id": "t",
                "title": "t",
                "statement": "s",
                "solution": {},
                "checks": [{"type": "falco_alert", "step": "s0"}],
            }
        ],
    }
    return load(Scenario, data)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_events(case: dict[str, Any]) -> None:
    sc = scenario([case["step"]], case.get("pods"))
    out = attack_events(sc, "run1", T0)
    if case["count"] is None:
        assert out == []
        return
    (step,) = out
    assert step.step == "s0" and step.node == "worker"
    assert len(step.events) == case["count"], [e["evt.type"] for e in step.events]
    for i, want in enumerate(case["events"]):
        event = step.events[i]
        for key, value in want.items():
            assert event.get(key) == value, f"event {i} {key}: {event.get(key)!r} != {value!r}"


def test_every_event_is_an_exit_event_with_increasing_number_and_time() -> None:
    sc = scenario([c["step"] for c in CASES if c["count"] and "pods" not in c])
    events = [e for s in attack_events(sc, "run1", T0) for e in s.events]
    assert len(events) > 20
    assert all(e["evt.dir"] == "<" for e in events)
    nums = [e["evt.num"] for e in events]
    times = [e["evt.rawtime"] for e in events]
    assert nums == sorted(nums) and len(set(nums)) == len(nums)
    assert times == sorted(times) and len(set(times)) == len(times)
    assert all(t >= int(T0.timestamp()) * 10**9 for t in times)


def test_same_run_same_events_other_run_other_pids_same_containers() -> None:
    sc = scenario([CASES[0]["step"], CASES[1]["step"]])
    a = attack_events(sc, "run1", T0)
    b = attack_events(sc, "run1", T0)
    c = attack_events(sc, "run2", T0)
    assert a == b
    ea, ec = a[1].events[0], c[1].events[0]
    assert ea["container.id"] == ec["container.id"]
    assert len(ea["container.id"]) == 12 and int(ea["container.id"], 16) >= 0
    assert ea["container.full_id"].startswith(ea["container.id"])
    assert ea["k8s.pod.ip"] == ec["k8s.pod.ip"] and ea["k8s.pod.ip"].startswith("10.244.2.")
    assert ea["proc.pid"] != ec["proc.pid"]


def test_each_container_has_its_own_id_and_pod_uid() -> None:
    sc = scenario(
        [
            {"workload": {"namespace": "payments", "pod": "web"}, "effects": {"reads": ["/a"]}},
            {"workload": {"namespace": "monitoring", "pod": "agent"}, "effects": {"reads": ["/a"]}},
        ]
    )
    web, agent = (s.events[0] for s in attack_events(sc, "r", T0))
    assert web["container.id"] != agent["container.id"]
    assert web["k8s.pod.uid"] != agent["k8s.pod.uid"]
    assert web["proc.vpid"] == agent["proc.vpid"] == 1


def test_exec_processes_get_new_pids_and_small_vpids_in_order() -> None:
    sc = scenario([CASES[3]["step"]])
    events = attack_events(sc, "run1", T0)[0].events
    pids = [e["proc.pid"] for e in events]
    vpids = [e["proc.vpid"] for e in events]
    assert pids == sorted(pids) and len(set(pids)) == 3
    assert vpids == sorted(vpids) and 1 < vpids[0] < 100
    assert events[1]["proc.ppid"] == events[0]["proc.pid"]


def test_a_recorded_trace_is_replayed_as_it_is_after_the_effects() -> None:
    recorded = [{"evt.num": 7, "evt.type": "connect", "evt.dir": "<", "fd.sip": "1.2.3.4"}]
    sc = scenario([CASES[1]["step"]])
    (step,) = attack_events(sc, "r", T0, {"s0": recorded})
    assert step.events[-1] == recorded[0]
    assert len(step.events) == 3


@pytest.mark.parametrize(
    ("image", "repo", "tag"),
    [
        ("nginx", "docker.io/library/nginx", "latest"),
        ("nginx:1.27", "docker.io/library/nginx", "1.27"),
        ("bitnami/redis:7", "docker.io/bitnami/redis", "7"),
        ("docker.io/library/nginx:1.27", "docker.io/library/nginx", "1.27"),
        ("ghcr.io/a/b/c:v1", "ghcr.io/a/b/c", "v1"),
        ("localhost/app", "localhost/app", "latest"),
        ("nginx@sha256:ab", "docker.io/library/nginx", ""),
    ],
)
def test_split_image(image: str, repo: str, tag: str) -> None:
    assert split_image(image) == (repo, tag)


def test_a_steps_processes_are_new_the_workloads_main_process_is_not() -> None:
    # Upstream's proc_is_new macro is proc.duration <= 5 s.
    sc = scenario([CASES[0]["step"], CASES[6]["step"]])
    shell, workload = (s.events[0] for s in attack_events(sc, "r", T0))
    assert shell["proc.name"] == "bash" and shell["proc.duration"] <= 5 * 10**9
    assert workload["proc.name"] == "nginx" and workload["proc.duration"] > 5 * 10**9
