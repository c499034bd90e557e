"""The learner/CI tools: events -> attributes, line-by-line evaluation, file validation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lab.engines.audit.checker import RequestAttributes, UserInfo
from lab.engines.audit.policy import load_policy
from lab.engines.audit.tools import attributes_from_event, eval_lines, validate_file
from lab.errors import LabError

# Shaped like a line of a real kube-apiserver audit.log (kubectl get secrets -A).
AUDIT_LOG_LINE = json.dumps({
    "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Request",
    "auditID": "0b6f6c1e-7f53-4a8e-9a43-2f3d2b2f9a10", "stage": "ResponseComplete",
    "requestURI": "/api/v1/secrets?limit=500", "verb": "list",
    "user": {"username": "kubernetes-admin",
             "groups": ["kubeadm:cluster-admins", "system:authenticated"]},
    "sourceIPs": ["172.31.17.197"], "userAgent": "kubectl/v1.29.1 (linux/amd64)",
    "objectRef": {"resource": "secrets", "apiVersion": "v1"},
    "responseStatus": {"metadata": {}, "code": 200},
    "requestReceivedTimestamp": "2024-02-12T19:45:43.830253Z",
    "stageTimestamp": "2024-02-12T19:45:43.832204Z",
})

POLICY = load_policy("""
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    nonResourceURLs: ["/healthz*", "/livez", "/readyz"]
  - level: Metadata
    resources: [{group: "", resources: [secrets, configmaps]}]
    omitManagedFields: true
  - level: RequestResponse
    namespaces: [prod]
  - level: Request
    userGroups: [system:authenticated]
""", "policy.yaml")


def test_real_audit_log_line() -> None:
    attrs = attributes_from_event(json.loads(AUDIT_LOG_LINE))
    assert attrs == RequestAttributes(
        UserInfo("kubernetes-admin", ("kubeadm:cluster-admins", "system:authenticated")),
        "list", "/api/v1/secrets", True, api_group="", api_version="v1", resource="secrets")


def test_no_user_is_unauthenticated_and_no_object_ref_is_non_resource() -> None:
    attrs = attributes_from_event({"verb": "get", "requestURI": "/healthz/etcd?verbose=1"})
    assert attrs == RequestAttributes(None, "get", "/healthz/etcd", False, api_version="")


def test_full_object_ref() -> None:
    attrs = attributes_from_event({
        "verb": "create", "requestURI": "/api/v1/namespaces/prod/pods/web-0/exec?command=sh",
        "user": {"username": "dev"},
        "objectRef": {"apiGroup": "", "apiVersion": "v1", "resource": "pods",
                      "subresource": "exec", "namespace": "prod", "name": "web-0"},
    })
    assert (attrs.user, attrs.resource, attrs.subresource, attrs.namespace, attrs.name) == (
        UserInfo("dev"), "pods", "exec", "prod", "web-0")
    assert attrs.path == "/api/v1/namespaces/prod/pods/web-0/exec"


@pytest.mark.parametrize("event, item", [
    (["not", "an", "object"], "event"),
    ({"requestURI": "/x"}, "verb"),
    ({"verb": 3, "requestURI": "/x"}, "verb"),
    ({"verb": "get", "requestURI": "/x", "user": "alice"}, "user"),
    ({"verb": "get", "requestURI": "/x", "user": {"username": 7}}, "user.username"),
    ({"verb": "get", "requestURI": "/x", "user": {"username": "a", "groups": "g"}}, "user.groups"),
    ({"verb": "get", "requestURI": "/x", "user": {"username": "a", "groups": ["g", 1]}},
     "user.groups[1]"),
    ({"verb": "get", "objectRef": []}, "objectRef"),
    ({"verb": "get", "objectRef": {"resource": ["pods"]}}, "objectRef.resource"),
    ({"verb": "get"}, "requestURI"),
    ({"verb": "get", "requestURI": 5}, "requestURI"),
])
def test_bad_shapes_name_the_field(event: Any, item: str) -> None:
    with pytest.raises(LabError) as info:
        attributes_from_event(event)
    assert info.value.item == item


def test_eval_lines_yields_one_result_per_event_and_skips_blanks() -> None:
    lines = [
        AUDIT_LOG_LINE + "\n",
        "\n",
        json.dumps({"verb": "get", "requestURI": "/healthz"}),
        "   ",
        json.dumps({"verb": "delete", "requestURI": "/api/v1/namespaces/prod/pods/p",
                    "user": {"username": "ci"},
                    "objectRef": {"resource": "pods", "namespace": "prod", "name": "p"}}),
        json.dumps({"verb": "get", "requestURI": "/version"}),  # unauthenticated: no rule
    ]
    assert list(eval_lines(POLICY, lines, "audit.log")) == [
        {"level": "Metadata", "omitStages": ["RequestReceived"], "omitManagedFields": True,
         "rule": 1},
        {"level": "None", "omitStages": ["RequestReceived"], "omitManagedFields": False,
         "rule": 0},
        {"level": "RequestResponse", "omitStages": ["RequestReceived"],
         "omitManagedFields": False, "rule": 2},
        {"level": "None", "omitStages": ["RequestReceived"], "omitManagedFields": False,
         "rule": None},
    ]


def test_eval_lines_malformed_json_names_file_and_line() -> None:
    lines = [AUDIT_LOG_LINE, "", '{"verb": "get",']
    results = eval_lines(POLICY, lines, "events.jsonl")
    assert next(results)["rule"] == 1
    with pytest.raises(LabError) as info:
        next(results)
    assert (info.value.file, info.value.line) == ("events.jsonl", 3)
    assert str(info.value).startswith("events.jsonl:3: not valid JSON")


def test_eval_lines_bad_shape_keeps_the_field() -> None:
    with pytest.raises(LabError) as info:
        list(eval_lines(POLICY, ['{"verb": "get", "requestURI": "/", "user": []}'], "in.jsonl"))
    err = info.value
    assert (err.file, err.line, err.item) == ("in.jsonl", 1, "user")
    assert str(err) == "in.jsonl:1: user: must be an object, got an array"


def test_validate_file(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n")
    assert validate_file(good) == ([], [])
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [Nope]\nrules:\n"
                   "- level: Metadata\n- level: Everything\n")
    assert validate_file(bad)[0] == [
        f'{bad}:3: omitStages[0]: Invalid value: "Nope": allowed stages are '
        "RequestReceived,ResponseStarted,ResponseComplete,Panic",
        f'{bad}:6: rules[1].level: Unsupported value: "Everything": supported values: '
        '"None", "Metadata", "Request", "RequestResponse"',
    ]
    empty = tmp_path / "empty.yaml"
    empty.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n")
    assert validate_file(empty)[0] == [f"{empty}: loaded illegal policy with 0 rules"]
    assert validate_file(tmp_path / "missing.yaml")[0][0].startswith(
        f"{tmp_path / 'missing.yaml'}: failed to read file path")


def test_validate_file_warns_about_ignored_fields(tmp_path: Path) -> None:
    typo = tmp_path / "typo.yaml"
    typo.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n"
                    "- level: None\n  resource: [secrets]\n")
    errors, warnings = validate_file(typo)
    assert errors == []
    assert warnings == [f'{typo}: unknown field "rules[0].resource" (ignored by kube-apiserver)']


def test_memoised_evaluation_matches_direct_evaluation(monkeypatch: pytest.MonkeyPatch) -> None:
    import lab.engines.audit.tools as tools
    from lab.engines.audit.checker import evaluate

    policy = load_policy(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n"
        "- level: None\n  users: [alice]\n"
        "- level: Request\n  namespaces: [prod]\n"
        "- level: Metadata\n  nonResourceURLs: [/healthz*]\n",
        "p.yaml",
    )
    events = []
    for user in ("alice", "bob", None):
        for ns in ("prod", "dev"):
            ev: dict[str, Any] = {"verb": "get", "requestURI": "/api/v1/pods",
                                  "objectRef": {"resource": "pods", "namespace": ns}}
            if user:
                ev["user"] = {"username": user, "groups": ["g"]}
            events.append(ev)
    events.append({"verb": "get", "requestURI": "/healthz?verbose"})
    lines = [json.dumps(e) for e in events * 3]
    want = [evaluate(policy, attributes_from_event(e)).rule_index for e in events * 3]
    monkeypatch.setattr(tools, "_MEMO_SIZE", 2)  # force the memo to overflow and clear
    assert [r["rule"] for r in eval_lines(policy, lines)] == want
    text = "".join(tools.eval_jsonl(policy, lines, batch=4))
    assert [json.loads(x)["rule"] for x in text.splitlines()] == want
