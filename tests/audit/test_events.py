"""Audit Event building, formatting, writing and reading (lab.engines.audit.events)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from lab.engines.audit import logfile
from lab.engines.audit.checker import RequestAttributes, RuleEvaluation, UserInfo, evaluate
from lab.engines.audit.events import (
    DECISION_ANNOTATION,
    REASON_ANNOTATION,
    AuditLogError,
    append_events,
    build_events,
    event_string,
    forbidden_status,
    format_line,
    go_json,
    go_quote,
    is_long_running,
    iter_events,
    level_name,
    micro_time,
    parse_legacy_line,
    read_events,
    rfc3339_nano,
    stages_for,
    strip_managed_fields,
)
from lab.engines.audit.policy import load_policy
from lab.errors import LabError

ADMIN = UserInfo("kubernetes-admin", ("kubeadm:cluster-admins", "system:authenticated"))
T0 = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
UA = "kubectl/v1.36.0 (linux/amd64) kubernetes/abc1234"
RBAC_REASON = (
    'RBAC: allowed by ClusterRoleBinding "kubeadm:cluster-admins" of ClusterRole '
    '"cluster-admin" to Group "kubeadm:cluster-admins"'
)

EVENT_KEYS = [
    "kind",
    "apiVersion",
    "level",
    "auditID",
    "stage",
    "requestURI",
    "verb",
    "user",
    "sourceIPs",
    "userAgent",
    "objectRef",
    "responseStatus",
    "requestObject",
    "responseObject",
    "requestReceivedTimestamp",
    "stageTimestamp",
    "annotations",
]


def attrs(verb: str = "get", resource: str = "pods", **kw: Any) -> RequestAttributes:
    base: dict[str, Any] = {
        "user": ADMIN,
        "verb": verb,
        "path": f"/api/v1/namespaces/default/{resource}",
        "is_resource_request": True,
        "api_group": "",
        "api_version": "v1",
        "resource": resource,
        "subresource": "",
        "namespace": "default",
        "name": "",
    }
    base.update(kw)
    return RequestAttributes(**base)


def ev(level: str, omit: tuple[str, ...] = (), omf: bool = False) -> RuleEvaluation:
    return RuleEvaluation(level=level, omit_stages=omit, omit_managed_fields=omf, rule_index=0)


def build(a: RequestAttributes, e: RuleEvaluation, **kw: Any) -> list[dict[str, Any]]:
    args: dict[str, Any] = {
        "attrs": a,
        "evaluation": e,
        "audit_id": "7e0f1c5a-3f1e-4b7a-9d2c-0a1b2c3d4e5f",
        "received": T0,
        "user_agent": UA,
        "source_ips": ["172.18.0.1"],
        "request_uri": "/api/v1/namespaces/default/pods/web",
        "response_code": 200,
        "reason": RBAC_REASON,
    }
    args.update(kw)
    return build_events(**args)


POD = {
    "kind": "Pod",
    "apiVersion": "v1",
    "metadata": {
        "name": "web",
        "namespace": "default",
        "uid": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
        "resourceVersion": "4711",
        "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
    },
    "spec": {"containers": [{"name": "web", "image": "nginx"}]},
}


# --------------------------------------------------------------------------- stages


@pytest.mark.parametrize(
    ("a", "long"),
    [
        (attrs("get"), False),
        (attrs("list"), False),
        (attrs("create"), False),
        (attrs("watch"), True),
        (attrs("create", subresource="exec", name="web"), True),
        (attrs("create", subresource="attach", name="web"), True),
        (attrs("create", subresource="portforward", name="web"), True),
        (attrs("get", subresource="log", name="web"), True),
        (attrs("get", subresource="proxy", name="web"), True),
        (attrs("get", subresource="status", name="web"), False),
        (attrs("proxy"), True),
        (attrs("get", is_resource_request=False, path="/debug/pprof/profile", resource=""), True),
        (attrs("get", is_resource_request=False, path="/healthz", resource=""), False),
        # "exec" is only a subresource for resource requests
        (
            attrs("get", is_resource_request=False, path="/exec", resource="", subresource="exec"),
            False,
        ),
    ],
)
def test_long_running_check(a: RequestAttributes, long: bool) -> None:
    assert is_long_running(a) is long
    expected = (
        ["RequestReceived", "ResponseStarted", "ResponseComplete"]
        if long
        else [
            "RequestReceived",
            "ResponseComplete",
        ]
    )
    assert stages_for(a, "Metadata", ()) == expected


def test_stages_omit_and_none() -> None:
    watch = attrs("watch")
    assert stages_for(watch, "Metadata", ["RequestReceived"]) == [
        "ResponseStarted",
        "ResponseComplete",
    ]
    assert stages_for(watch, "Request", ("RequestReceived", "ResponseStarted")) == [
        "ResponseComplete"
    ]
    assert stages_for(watch, "None", ()) == []
    assert stages_for(watch, None, ()) == []


def test_level_names() -> None:
    assert level_name("requestresponse") == "RequestResponse"
    assert level_name(None) == "None"

    class Lv:
        value = "Metadata"

    assert level_name(Lv()) == "Metadata"
    with pytest.raises(ValueError, match="unknown audit level"):
        level_name("Everything")


# --------------------------------------------------------------------------- event content


def test_metadata_level_get() -> None:
    events = build(attrs("get", name="web"), ev("Metadata"))
    assert [e["stage"] for e in events] == ["RequestReceived", "ResponseComplete"]
    rr, rc = events
    assert list(rr) == [
        "kind",
        "apiVersion",
        "level",
        "auditID",
        "stage",
        "requestURI",
        "verb",
        "user",
        "sourceIPs",
        "userAgent",
        "objectRef",
        "requestReceivedTimestamp",
        "stageTimestamp",
    ]
    assert rr["objectRef"] == {
        "resource": "pods",
        "namespace": "default",
        "name": "web",
        "apiVersion": "v1",
    }
    assert rr["user"] == {"username": "kubernetes-admin", "groups": list(ADMIN.groups)}
    assert "responseStatus" not in rr and "annotations" not in rr
    assert rc["responseStatus"] == {"metadata": {}, "code": 200}
    assert rc["annotations"] == {
        "authorization.k8s.io/decision": "allow",
        "authorization.k8s.io/reason": RBAC_REASON,
    }
    assert "requestObject" not in rc and "responseObject" not in rc


def test_json_key_order_follows_the_go_struct() -> None:
    events = build(
        attrs("create", subresource="exec", name="web"),
        ev("RequestResponse"),
        request_object={"kind": "PodExecOptions", "apiVersion": "v1", "command": ["sh"]},
        response_object={"kind": "Status", "apiVersion": "v1"},
        response_code=101,
    )
    for e in events:
        keys = list(e)
        assert keys == [k for k in EVENT_KEYS if k in keys]
    # the line itself keeps that order too
    line = format_line(events[-1], "json")
    positions = [line.index(f'"{k}":') for k in events[-1]]
    assert positions == sorted(positions)


def test_body_placement_by_level() -> None:
    a = attrs("update", name="web")
    for level, req, resp in (
        ("Metadata", False, False),
        ("Request", True, False),
        ("RequestResponse", True, True),
    ):
        rr, rc = build(a, ev(level), request_object=POD, response_object=POD)
        assert "requestObject" not in rr and "responseObject" not in rr
        assert ("requestObject" in rc) is req
        assert ("responseObject" in rc) is resp
        assert rc["level"] == level


def test_long_running_response_started_carries_status_and_annotations() -> None:
    events = build(attrs("watch"), ev("Request"), request_uri="/api/v1/pods?watch=true")
    rr, rs, rc = events
    assert rs["stage"] == "ResponseStarted"
    assert rs["responseStatus"] == {"metadata": {}, "code": 200}
    assert rs["annotations"]["authorization.k8s.io/decision"] == "allow"
    assert "annotations" not in rr
    assert rr["stageTimestamp"] < rs["stageTimestamp"] < rc["stageTimestamp"]


def test_non_resource_requests_have_no_object_ref_and_no_bodies() -> None:
    a = attrs("get", is_resource_request=False, path="/healthz", resource="", namespace="")
    rr, rc = build(
        a, ev("RequestResponse"), request_uri="/healthz", request_object=POD, response_object=POD
    )
    assert "objectRef" not in rr and "objectRef" not in rc
    assert "requestObject" not in rc and "responseObject" not in rc


def test_forbidden_response_status_and_decision() -> None:
    status = {
        "status": "Failure",
        "message": 'secrets is forbidden: User "dev" cannot list resource "secrets"',
        "reason": "Forbidden",
        "details": {"kind": "secrets"},
    }
    _, rc = build(
        attrs("list", resource="secrets", user=UserInfo("dev", ("system:authenticated",))),
        ev("Metadata"),
        response_code=403,
        response_status=status,
        decision="forbid",
        reason="",
    )
    assert rc["responseStatus"] == {"metadata": {}, **status, "code": 403}
    assert list(rc["responseStatus"]) == [
        "metadata",
        "status",
        "message",
        "reason",
        "details",
        "code",
    ]
    assert rc["annotations"] == {
        "authorization.k8s.io/decision": "forbid",
        "authorization.k8s.io/reason": "",
    }


def test_object_ref_completed_from_request_body_after_request_received() -> None:
    a = attrs("create", name="")
    rr, rc = build(a, ev("Metadata"), request_object=POD, response_code=201)
    assert "name" not in rr["objectRef"]
    assert rc["objectRef"]["name"] == "web"
    assert rc["objectRef"]["uid"] == POD["metadata"]["uid"]
    assert list(rc["objectRef"]) == [
        "resource",
        "namespace",
        "name",
        "uid",
        "apiVersion",
        "resourceVersion",
    ]


def test_empty_optional_fields_are_omitted() -> None:
    rr, _ = build(attrs("get"), ev("Metadata"), source_ips=[], user_agent="")
    assert "sourceIPs" not in rr and "userAgent" not in rr


def test_omit_managed_fields() -> None:
    pod_list = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": [POD, POD]}
    _, rc = build(
        attrs("list"), ev("RequestResponse", omf=True), request_object=POD, response_object=pod_list
    )
    assert "managedFields" not in rc["requestObject"]["metadata"]
    assert all("managedFields" not in i["metadata"] for i in rc["responseObject"]["items"])
    assert "managedFields" in POD["metadata"]  # the caller's objects are untouched
    _, rc = build(
        attrs("list"),
        ev("RequestResponse", omf=False),
        request_object=POD,
        response_object=pod_list,
    )
    assert rc["requestObject"]["metadata"]["managedFields"] == POD["metadata"]["managedFields"]
    assert strip_managed_fields("not an object") == "not an object"


def test_level_none_builds_nothing() -> None:
    assert build(attrs("get"), ev("None")) == []


def test_evaluation_from_the_real_checker() -> None:
    policy = load_policy(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\n"
        'rules:\n- level: RequestResponse\n  resources:\n  - group: ""\n    resources: [secrets]\n'
        "- level: Metadata\n",
        "policy.yaml",
    )
    a = attrs("get", resource="secrets", name="db")
    events = build(a, evaluate(policy, a), response_object={"kind": "Secret", "apiVersion": "v1"})
    assert [e["stage"] for e in events] == ["ResponseComplete"]
    assert events[0]["level"] == "RequestResponse"
    assert events[0]["responseObject"] == {"kind": "Secret", "apiVersion": "v1"}


# --------------------------------------------------------------------------- timestamps and formats


def test_timestamps() -> None:
    assert micro_time(T0) == "2026-05-01T12:00:00.123456Z"
    assert micro_time(datetime(2026, 5, 1, 12, 0, 0)) == "2026-05-01T12:00:00.000000Z"
    cest = timezone(timedelta(hours=2))
    assert (
        micro_time(datetime(2026, 5, 1, 14, 0, 0, 5, tzinfo=cest)) == "2026-05-01T12:00:00.000005Z"
    )
    assert rfc3339_nano(T0) == "2026-05-01T12:00:00.123456Z"
    assert (
        rfc3339_nano(datetime(2026, 5, 1, 12, 0, 0, 120000, tzinfo=UTC))
        == "2026-05-01T12:00:00.12Z"
    )
    assert rfc3339_nano(datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)) == "2026-05-01T12:00:00Z"
    rr, rc = build(
        attrs("get"),
        ev("Metadata"),
        stage_times={"ResponseComplete": T0 + timedelta(milliseconds=3, microseconds=7)},
    )
    assert rr["requestReceivedTimestamp"] == rr["stageTimestamp"] == "2026-05-01T12:00:00.123456Z"
    assert rc["requestReceivedTimestamp"] == "2026-05-01T12:00:00.123456Z"
    assert rc["stageTimestamp"] == "2026-05-01T12:00:00.126463Z"


def test_json_line_golden() -> None:
    _, rc = build(attrs("get", name="web"), ev("Metadata"))
    assert format_line(rc, "json") == (
        '{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata",'
        '"auditID":"7e0f1c5a-3f1e-4b7a-9d2c-0a1b2c3d4e5f","stage":"ResponseComplete",'
        '"requestURI":"/api/v1/namespaces/default/pods/web","verb":"get",'
        '"user":{"username":"kubernetes-admin","groups":["kubeadm:cluster-admins","system:authenticated"]},'
        '"sourceIPs":["172.18.0.1"],"userAgent":"kubectl/v1.36.0 (linux/amd64) kubernetes/abc1234",'
        '"objectRef":{"resource":"pods","namespace":"default","name":"web","apiVersion":"v1"},'
        '"responseStatus":{"metadata":{},"code":200},'
        '"requestReceivedTimestamp":"2026-05-01T12:00:00.123456Z",'
        '"stageTimestamp":"2026-05-01T12:00:00.128456Z",'
        '"annotations":{"authorization.k8s.io/decision":"allow",'
        '"authorization.k8s.io/reason":"RBAC: allowed by ClusterRoleBinding '
        '\\"kubeadm:cluster-admins\\" of ClusterRole \\"cluster-admin\\" '
        'to Group \\"kubeadm:cluster-admins\\""}}\n'
    )


def test_legacy_line_golden() -> None:
    rr, rc = build(attrs("get", name="web"), ev("Metadata"))
    assert format_line(rr, "legacy") == (
        '2026-05-01T12:00:00.123456Z AUDIT: id="7e0f1c5a-3f1e-4b7a-9d2c-0a1b2c3d4e5f" '
        'stage="RequestReceived" ip="172.18.0.1" method="get" user="kubernetes-admin" '
        'groups="\\"kubeadm:cluster-admins\\",\\"system:authenticated\\"" as="<self>" '
        'asgroups="<lookup>" user-agent="kubectl/v1.36.0 (linux/amd64) kubernetes/abc1234" '
        'namespace="default" uri="/api/v1/namespaces/default/pods/web" response="<deferred>"\n'
    )
    assert event_string(rc).endswith('response="200"')


def test_legacy_line_without_user_or_namespace() -> None:
    a = attrs(
        "get", user=None, is_resource_request=False, path="/version", resource="", namespace=""
    )
    (rs,) = build(a, ev("Metadata"), source_ips=[], request_uri="/version")
    line = event_string(rs)
    assert 'ip="<unknown>" method="get" user="<none>" groups="<none>"' in line
    assert 'namespace="<none>"' in line and line.endswith('response="401"')


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="not in list of known formats"):
        format_line({}, "yaml")


def test_go_json_escapes_like_encoding_json() -> None:
    assert go_json({"a": "<b>&c", "ü": "\u2028"}) == '{"a":"\\u003cb\\u003e\\u0026c","ü":"\\u2028"}'


def test_go_quote() -> None:
    assert go_quote('a"b\\c\n\t') == '"a\\"b\\\\c\\n\\t"'
    assert go_quote("\x01é") == '"\\x01é"'


# --------------------------------------------------------------------------- writing and reading


def _lines(fmt: str = "json") -> list[str]:
    events = build(attrs("watch"), ev("Metadata")) + build(attrs("get", name="web"), ev("Request"))
    return [format_line(e, fmt) for e in events]


def test_append_and_read_back(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    append_events(log, _lines(), create_parents=False)
    append_events(log, _lines()[:1])
    events = read_events(log)
    assert len(events) == 6
    assert [e["stage"] for e in events[:3]] == [
        "RequestReceived",
        "ResponseStarted",
        "ResponseComplete",
    ]
    assert json.loads(log.read_text().splitlines()[0]) == events[0]


def test_append_needs_parent_unless_told(tmp_path: Path) -> None:
    log = tmp_path / "missing" / "audit.log"
    with pytest.raises(AuditLogError):
        append_events(log, _lines())
    append_events(log, _lines(), create_parents=True)
    assert len(read_events(log)) == 5
    with pytest.raises(AuditLogError, match="is a directory"):
        append_events(tmp_path, _lines())


def test_read_tolerates_partial_last_line(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    text = "".join(_lines())
    log.write_text(text + text.splitlines()[0][:40])
    assert len(read_events(log)) == 5


def test_read_reports_garbage_with_file_and_line(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    lines = _lines()
    log.write_text(lines[0] + "this is not json\n" + lines[1])
    with pytest.raises(AuditLogError) as info:
        read_events(log)
    assert info.value.file == str(log) and info.value.line == 2
    assert isinstance(info.value, LabError)
    assert f"{log}:2" in str(info.value)
    log.write_text(lines[0] + '{"kind":"Pod"}\n')
    with pytest.raises(AuditLogError, match="expected 'Event'"):
        read_events(log)


def test_read_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(AuditLogError, match="does not exist"):
        read_events(tmp_path / "nope.log")
    with pytest.raises(AuditLogError, match="directory"):
        read_events(tmp_path)


def test_legacy_roundtrip(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    append_events(log, _lines("legacy"))
    events = read_events(log, "legacy")
    assert len(events) == 5
    assert events[0]["stage"] == "RequestReceived" and events[0]["response"] == "<deferred>"
    assert events[0]["groups"] == '"kubeadm:cluster-admins","system:authenticated"'
    assert events[0]["timestamp"] == "2026-05-01T12:00:00.123456Z"
    with pytest.raises(ValueError):
        parse_legacy_line("garbage")


def test_rotation_like_lumberjack(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    big = "x" * 400_000 + "\n"
    now = datetime(2026, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)
    rotated = append_events(log, [big, big, big], lumberjack_max_size_mb=1, max_backups=1, now=now)
    assert [p.name for p in rotated] == ["audit-2026-05-01T12-00-00.250.log"]
    assert log.stat().st_size == len(big)
    rotated += append_events(
        log,
        [big, big, big],
        lumberjack_max_size_mb=1,
        max_backups=1,
        now=now + timedelta(seconds=1),
    )
    backups = sorted(p.name for p in tmp_path.iterdir() if p.name != "audit.log")
    assert backups == ["audit-2026-05-01T12-00-01.250.log"]  # max_backups=1 dropped the older one
    with pytest.raises(AuditLogError, match="exceeds maximum file size"):
        append_events(log, ["y" * (2 * 1024 * 1024)], lumberjack_max_size_mb=1)


# --------------------------------------------------------------------------- authorization decision

DEV = UserInfo("dev", ("system:authenticated",))
DECISION, REASON = DECISION_ANNOTATION, REASON_ANNOTATION


def refused(a: RequestAttributes, e: RuleEvaluation, **kw: Any) -> list[dict[str, Any]]:
    """A request RBAC denies: 403, and RBAC gives no reason for a denial."""
    return build(a, e, response_code=403, reason="", **kw)


def test_decision_follows_the_response_code() -> None:
    _, ok = build(attrs("get", name="web"), ev("Metadata"), reason="")
    assert ok["annotations"][DECISION] == "allow"
    _, rc = refused(attrs("get", name="web", user=DEV), ev("Metadata"))
    assert rc["annotations"] == {DECISION: "forbid", REASON: ""}
    # The caller can say otherwise: an admission webhook's 403 was allowed by RBAC.
    denied_by_webhook = {"status": "Failure", "message": "denied", "reason": "Forbidden"}
    _, rc = build(
        attrs("create", user=DEV),
        ev("Metadata"),
        response_code=403,
        decision="allow",
        response_status=denied_by_webhook,
    )
    assert rc["annotations"][DECISION] == "allow"
    assert rc["responseStatus"] == {"metadata": {}, **denied_by_webhook, "code": 403}


# responsewriters.Forbidden + apierrors.NewForbidden, one row per message shape.
FORBIDDEN_CASES = [
    (
        {"verb": "list", "resource": "secrets"},
        'secrets is forbidden: User "dev" cannot list resource "secrets" in API group "" '
        'in the namespace "default"',
        {"kind": "secrets"},
    ),
    (
        {"verb": "get", "resource": "secrets", "name": "db"},
        'secrets "db" is forbidden: User "dev" cannot get resource "secrets" in API group "" '
        'in the namespace "default"',
        {"name": "db", "kind": "secrets"},
    ),
    (
        {"verb": "list", "resource": "nodes", "namespace": ""},
        'nodes is forbidden: User "dev" cannot list resource "nodes" in API group "" '
        "at the cluster scope",
        {"kind": "nodes"},
    ),
    (
        {"verb": "create", "resource": "pods", "subresource": "exec", "name": "web"},
        'pods "web" is forbidden: User "dev" cannot create resource "pods/exec" in API group "" '
        'in the namespace "default"',
        {"name": "web", "kind": "pods"},
    ),
    (
        {"verb": "list", "resource": "deployments", "api_group": "apps"},
        'deployments.apps is forbidden: User "dev" cannot list resource "deployments" '
        'in API group "apps" in the namespace "default"',
        {"group": "apps", "kind": "deployments"},
    ),
    (
        {"verb": "get", "is_resource_request": False, "path": "/metrics", "resource": "",
         "namespace": ""},
        'forbidden: User "dev" cannot get path "/metrics"',
        {},
    ),
]


@pytest.mark.parametrize(("fields", "message", "details"), FORBIDDEN_CASES)
def test_forbidden_status_like_responsewriters(
    fields: dict[str, Any], message: str, details: dict[str, str]
) -> None:
    rc = refused(attrs(user=DEV, **fields), ev("Metadata"))[-1]  # exec is long-running
    assert rc["responseStatus"] == {
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Forbidden",
        "details": details,  # a set pointer: present even when empty
        "code": 403,
    }
    assert list(rc["responseStatus"]) == [
        "metadata", "status", "message", "reason", "details", "code"
    ]


def test_forbidden_reason_and_sanitizer() -> None:
    status = forbidden_status(attrs("get", user=UserInfo("<b>&", ())), reason="no RBAC rule")
    assert status["message"].endswith(
        'User "&lt;b&gt;&amp;" cannot get resource "pods" in API group "" '
        'in the namespace "default": no RBAC rule'
    )


def test_forbidden_request_body_is_not_logged_and_status_is_the_response() -> None:
    a = attrs("create", user=DEV)
    rr, rc = refused(a, ev("RequestResponse"), request_object=POD)
    assert "requestObject" not in rc  # refused before the handler decoded it
    assert "name" not in rc["objectRef"]  # so nothing completed the reference either
    status = {k: v for k, v in rc["responseStatus"].items() if k != "metadata"}
    assert rc["responseObject"] == {"kind": "Status", "apiVersion": "v1", "metadata": {}, **status}
    assert "responseObject" not in rr and "annotations" not in rr


def test_forbidden_long_running_request_reports_at_response_started() -> None:
    a = attrs("create", user=DEV, subresource="exec", name="web")
    rr, rs, rc = refused(a, ev("Metadata"))
    assert rs["stage"] == "ResponseStarted"
    assert rs["responseStatus"]["reason"] == "Forbidden"
    assert rs["annotations"] == rc["annotations"] == {DECISION: "forbid", REASON: ""}


# --------------------------------------------------------------------------- failed authentication

UNAUTHORIZED = {
    "metadata": {},
    "status": "Failure",
    "message": "Unauthorized",
    "reason": "Unauthorized",
    "code": 401,
}


def test_failed_authentication_is_one_response_started_event() -> None:
    a = attrs("list", user=None)
    (event,) = build(a, ev("Metadata"), response_code=200, request_object=POD)
    assert event["stage"] == "ResponseStarted"
    assert event["user"] == {}
    assert event["responseStatus"] == UNAUTHORIZED
    assert event["objectRef"] == {"resource": "pods", "namespace": "default", "apiVersion": "v1"}
    assert "annotations" not in event and "requestObject" not in event
    assert event["stageTimestamp"] > event["requestReceivedTimestamp"]
    assert list(event) == [k for k in EVENT_KEYS if k in event]


def test_failed_authentication_levels_and_omitted_stage() -> None:
    a = attrs("get", user=None, is_resource_request=False, path="/api", resource="",
              namespace="")
    assert build(a, ev("None")) == []
    assert build(a, ev("Metadata", omit=("ResponseStarted",))) == []
    # RequestReceived/ResponseComplete are never emitted for it, so omitting them changes nothing.
    (event,) = build(a, ev("RequestResponse", omit=("RequestReceived", "ResponseComplete")))
    assert "objectRef" not in event
    status = {k: v for k, v in UNAUTHORIZED.items() if k != "metadata"}
    assert event["responseObject"] == {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                       **status}


def test_failed_authentication_from_the_real_checker() -> None:
    policy = load_policy(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n"
        "- level: None\n  userGroups: [system:unauthenticated]\n"  # never matches: no user at all
        "- level: Metadata\n",
    )
    a = attrs("get", user=None)
    events = build(a, evaluate(policy, a))
    assert [e["stage"] for e in events] == ["ResponseStarted"]


# --------------------------------------------------------------------------- lumberjack rotation


@pytest.fixture
def small_megabyte(monkeypatch: pytest.MonkeyPatch) -> int:
    # lumberjack's own tests shrink its megabyte the same way.
    monkeypatch.setattr(logfile, "_MEGABYTE", 10)
    return 10


def test_unset_maxsize_rotates_at_lumberjacks_default(tmp_path: Path, small_megabyte: int) -> None:
    log = tmp_path / "audit.log"
    line = "x" * 99 + "\n"  # 100 bytes; the default limit is 100 "MB" = 1000 bytes here
    now = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert append_events(log, [line] * 10, now=now) == []
    assert log.stat().st_size == 1000
    rotated = append_events(log, [line], lumberjack_max_size_mb=None, now=now)
    assert [p.name for p in rotated] == ["audit-2026-05-01T12-00-00.000.log"]
    assert log.stat().st_size == 100
    # 0 means the default too, and the old spelling still works.
    assert append_events(log, [line] * 9, lumberjack_max_size_mb=0, now=now) == []
    assert len(append_events(log, [line], lumberjack_max_size_mb=0, now=now)) == 1


def test_first_write_rotates_at_the_limit_later_ones_past_it(
    tmp_path: Path, small_megabyte: int
) -> None:
    log = tmp_path / "audit.log"
    now = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
    log.write_text("a" * 5)
    # openExistingOrNew: 5 + 5 >= 10 rotates the existing file before writing.
    assert len(append_events(log, ["b" * 4 + "\n"], lumberjack_max_size_mb=1, now=now)) == 1
    assert log.read_text() == "bbbb\n"
    # Write: 5 + 5 > 10 is false, so the same sizes fill the file exactly.
    log.write_text("")
    rotated = append_events(log, ["c" * 4 + "\n"] * 2, lumberjack_max_size_mb=1, now=now)
    assert rotated == [] and log.stat().st_size == 10
    # A missing file is created, never rotated, even when the first line fills it.
    fresh = tmp_path / "fresh.log"
    assert append_events(fresh, ["d" * 9 + "\n"], lumberjack_max_size_mb=1, now=now) == []


def test_old_backups_are_milled_when_the_log_is_opened(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    for stamp in ("2026-05-01T12-00-00.000", "2026-05-01T12-00-01.000", "2026-05-01T12-00-02.000"):
        (tmp_path / f"audit-{stamp}.log").write_text("old\n")
    append_events(log, ['{"kind":"Event"}\n'], max_backups=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "audit-2026-05-01T12-00-02.000.log",
        "audit.log",
    ]


# --------------------------------------------------------------------------- streaming reads


def test_iter_events_streams_a_big_log(tmp_path: Path) -> None:
    import tracemalloc

    log = tmp_path / "audit.log"
    (_, rc) = build(attrs("get", name="web"), ev("Metadata"))
    line = format_line(rc)
    with log.open("w") as fh:
        for _ in range(20_000):
            fh.write(line)
    assert log.stat().st_size > 10 * 1024 * 1024
    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_events(log))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 20_000
    assert peak < 2 * 1024 * 1024  # a few lines at a time, never the file


def test_iter_events_opens_eagerly_and_reads_lazily(tmp_path: Path) -> None:
    with pytest.raises(AuditLogError, match="does not exist"):
        iter_events(tmp_path / "nope.log")
    with pytest.raises(ValueError, match="not in list of known formats"):
        iter_events(tmp_path / "nope.log", "yaml")
    log = tmp_path / "audit.log"
    log.write_text("".join(_lines()) + "garbage\n")
    events = iter_events(log)
    assert next(events)["stage"] == "RequestReceived"  # nothing read past the first line yet
    with pytest.raises(AuditLogError) as info:
        list(events)
    assert info.value.line == 6


def test_overlong_line_is_refused_not_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logfile, "MAX_LINE_BYTES", 100)
    log = tmp_path / "audit.log"
    log.write_text("x" * 500)
    with pytest.raises(AuditLogError, match="longer than 100 bytes") as info:
        read_events(log)
    assert info.value.line == 1


def _returns_quickly(fn: Any, seconds: float = 5.0) -> BaseException | None:
    """Run ``fn`` in a thread; fail the test if it blocks (a FIFO read would)."""
    import threading

    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            fn()
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), "blocked on a FIFO"
    return outcome[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "audit.log"
    os.mkfifo(fifo)
    err = _returns_quickly(lambda: read_events(fifo))
    assert isinstance(err, AuditLogError)
    assert "named pipe (FIFO), not a regular file" in err.message
