"""The API requests attack steps make (lab/scenarios/requests.py), as kubectl sends them."""

from __future__ import annotations

from typing import Any

import pytest

from lab.scenarios.model import AttackStep
from lab.scenarios.requests import api_call
from lab.schema import load


def step(**kind: Any) -> AttackStep:
    return load(AttackStep, {"id": "s", "description": "d", **kind})


@pytest.mark.parametrize(
    ("exec_", "uri"),
    [
        # kubectl exec web -c web -- sh -c 'cat /x'
        ({"command": ["sh", "-c", "cat /x"], "container": "web"},
         "?command=sh&command=-c&command=cat+%2Fx&container=web&stderr=true&stdout=true"),
        # kubectl exec -it web -- bash: PodExecOptions with stdin and tty, and no stderr
        # (a terminal carries both streams); url.Values sorts the keys
        ({"command": ["bash"], "tty": True},
         "?command=bash&stdin=true&stdout=true&tty=true"),
        ({"command": ["bash"], "container": "web", "tty": True},
         "?command=bash&container=web&stdin=true&stdout=true&tty=true"),
    ],
)  # fmt: skip
def test_exec_request_uri_is_what_kubectl_sends(exec_: dict[str, Any], uri: str) -> None:
    call = api_call(step(exec={"namespace": "payments", "pod": "web", **exec_}))
    assert call is not None
    assert call.uri == "/api/v1/namespaces/payments/pods/web/exec" + uri
    assert (call.attrs.verb, call.attrs.subresource, call.response_code) == ("get", "exec", 101)


def test_workload_and_upgrade_steps_make_no_request() -> None:
    assert api_call(step(workload={"pod": "web"})) is None
    upgrade = {"node": "worker", "restore": ["/etc/falco/falco_rules.yaml"]}
    assert api_call(step(package_upgrade=upgrade)) is None
