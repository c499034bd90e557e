"""Audit events as kube-apiserver's log backend writes them (audit.k8s.io/v1).

Builds the Event objects one request produces and renders them as ``json``
or ``legacy`` log lines. Behaviour follows k8s.io/apiserver:

* stages: endpoints/filters/audit.go (see :mod:`stages`);
* authorization: endpoints/filters/authorization.go adds the
  ``authorization.k8s.io/decision``/``reason`` annotations after RequestReceived
  was emitted; a refused request gets responsewriters.Forbidden's Status;
* failed authentication: endpoints/filters/authn_audit.go logs one
  ResponseStarted event and nothing else;
* bodies by level and the response Status: pkg/audit/request.go and the
  AuditContext (message and details included);
* the JSON field order of apis/audit/v1 Event.

Writing and reading log files lives in :mod:`logfile`, the legacy line
format in :mod:`legacy`; both are re-exported here.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from lab.engines.audit.checker import RequestAttributes, RuleEvaluation, UserInfo
from lab.engines.audit.gotext import go_quote, micro_time, rfc3339_nano
from lab.engines.audit.legacy import event_string, parse_legacy_line
from lab.engines.audit.logfile import (
    AuditLogError,
    append_events,
    check_log_format,
    iter_events,
    read_events,
)
from lab.engines.audit.stages import (
    LEVEL_NONE,
    LEVEL_REQUEST,
    LEVEL_REQUEST_RESPONSE,
    STAGE_REQUEST_RECEIVED,
    STAGE_RESPONSE_COMPLETE,
    STAGE_RESPONSE_STARTED,
    is_long_running,
    level_at_least,
    level_name,
    stages_for,
)

__all__ = [
    "API_VERSION",
    "DECISION_ANNOTATION",
    "REASON_ANNOTATION",
    "AuditLogError",
    "append_events",
    "build_events",
    "event_string",
    "forbidden_status",
    "format_line",
    "go_json",
    "go_quote",
    "is_long_running",
    "iter_events",
    "level_name",
    "micro_time",
    "parse_legacy_line",
    "read_events",
    "rfc3339_nano",
    "stages_for",
    "strip_managed_fields",
    "unauthorized_status",
]

API_VERSION = "audit.k8s.io/v1"

DECISION_ANNOTATION = "authorization.k8s.io/decision"
REASON_ANNOTATION = "authorization.k8s.io/reason"

Decision = Literal["allow", "forbid"]

# responsewriters' sanitizer: an error message must not look like HTML.
_SANITIZE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


# --------------------------------------------------------------------------- response Status


def _user_info(user: UserInfo | None) -> dict[str, Any]:
    # authentication/v1 UserInfo field order: username, uid, groups, extra (all omitempty).
    out: dict[str, Any] = {}
    if user is None:
        return out
    if user.username:
        out["username"] = user.username
    if user.groups:
        out["groups"] = list(user.groups)
    return out


def _forbidden_message(attrs: RequestAttributes) -> str:
    """responsewriters.forbiddenMessage."""
    user = go_quote(attrs.user.username if attrs.user else "")
    if not attrs.is_resource_request:
        return f"User {user} cannot {attrs.verb} path {go_quote(attrs.path)}"
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    what = f"resource {go_quote(resource)} in API group {go_quote(attrs.api_group)}"
    if attrs.namespace:
        where = f"in the namespace {go_quote(attrs.namespace)}"
    else:
        where = "at the cluster scope"
    return f"User {user} cannot {attrs.verb} {what} {where}"


def forbidden_status(attrs: RequestAttributes, reason: str = "") -> dict[str, Any]:
    """The Status responsewriters.Forbidden sends (apierrors.NewForbidden), as JSON fields.

    ``reason`` is the authorizer's; RBAC gives none for a denial.
    """
    msg = _forbidden_message(attrs).translate(_SANITIZE)
    err = f"{msg}: {reason}" if reason else msg
    # GroupResource.String(): "resource.group"; the subresource is not part of it.
    qualified = f"{attrs.resource}.{attrs.api_group}" if attrs.api_group else attrs.resource
    if not attrs.resource and not attrs.api_group:
        message = f"forbidden: {err}"
    elif not attrs.name:
        message = f"{qualified} is forbidden: {err}"
    else:
        message = f"{qualified} {go_quote(attrs.name)} is forbidden: {err}"
    # StatusDetails field order name, group, kind (all omitempty); the pointer is always set.
    details = {"name": attrs.name, "group": attrs.api_group, "kind": attrs.resource}
    return {
        "status": "Failure",
        "message": message,
        "reason": "Forbidden",
        "details": {k: v for k, v in details.items() if v},
        "code": 403,
    }


def unauthorized_status() -> dict[str, Any]:
    """The Status the Unauthorized handler sends (apierrors.NewUnauthorized("Unauthorized"))."""
    return {"status": "Failure", "message": "Unauthorized", "reason": "Unauthorized", "code": 401}


def _response_status(code: int, fields: Mapping[str, Any] | None) -> dict[str, Any]:
    # metav1.Status field order; ListMeta "metadata" is not omitempty, hence {}.
    status: dict[str, Any] = {"metadata": {}}
    fields = dict(fields or {})
    for key in ("status", "message", "reason"):
        if fields.get(key):
            status[key] = fields[key]
    if fields.get("details") is not None:  # a pointer: set means present, even if empty
        status["details"] = fields["details"]
    # The audit filter stores the code it sees written last, over the Status's own.
    code = int(code or fields.get("code") or 0)
    if code:
        status["code"] = code
    return status


def _status_object(status: Mapping[str, Any]) -> dict[str, Any]:
    # The same Status as the response body encodes it (metav1.Status is unversioned: "v1").
    return {"kind": "Status", "apiVersion": "v1", **status}


# --------------------------------------------------------------------------- building events


def strip_managed_fields(obj: Any) -> Any:
    """A copy of ``obj`` without metadata.managedFields (on list items too)."""
    if not isinstance(obj, Mapping):
        return obj
    out = copy.deepcopy(dict(obj))
    meta = out.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    items = out.get("items")
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("metadata"), dict):
                item["metadata"].pop("managedFields", None)
    return out


def _object_ref(
    attrs: RequestAttributes, request_object: Mapping[str, Any] | None, fill: bool
) -> dict[str, Any]:
    ref = {
        "resource": attrs.resource,
        "namespace": attrs.namespace,
        "name": attrs.name,
        "uid": "",
        "apiGroup": attrs.api_group,
        "apiVersion": attrs.api_version,
        "resourceVersion": "",
        "subresource": attrs.subresource,
    }
    if fill and isinstance(request_object, Mapping):
        # LogRequestObject completes the reference from the decoded body's metadata;
        # that happens after RequestReceived was emitted, so only later stages see it.
        meta = request_object.get("metadata")
        if isinstance(meta, Mapping):
            for key in ("namespace", "name", "uid", "resourceVersion"):
                if not ref[key] and isinstance(meta.get(key), str):
                    ref[key] = meta[key]
    return {k: v for k, v in ref.items() if v}


def _event_head(
    attrs: RequestAttributes,
    level: str,
    audit_id: str,
    stage: str,
    request_uri: str,
    user_agent: str,
    source_ips: Sequence[str],
) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": API_VERSION,
        "level": level,
        "auditID": audit_id,
        "stage": stage,
        "requestURI": request_uri,
        "verb": attrs.verb,
        "user": _user_info(attrs.user),
    }
    if source_ips:
        ev["sourceIPs"] = list(source_ips)
    if user_agent:
        ev["userAgent"] = user_agent
    return ev


def build_events(
    *,
    attrs: RequestAttributes,
    evaluation: RuleEvaluation,
    audit_id: str,
    received: datetime,
    user_agent: str,
    source_ips: Sequence[str],
    request_uri: str,
    response_code: int,
    request_object: Mapping[str, Any] | None = None,
    response_object: Mapping[str, Any] | None = None,
    response_status: Mapping[str, Any] | None = None,
    decision: Decision | None = None,
    reason: str = "",
    stage_times: Mapping[str, datetime] | None = None,
) -> list[dict[str, Any]]:
    """The audit.k8s.io/v1 Event dicts one request produces, in stage order.

    ``evaluation`` is what the policy checker decided for ``attrs``. The
    authorization ``decision`` defaults to the one ``response_code`` implies:
    403 is ``forbid`` (with ``reason``, RBAC's being empty, and the Status
    responsewriters.Forbidden sends), anything else ``allow``. A refused
    request never reaches its handler, so its body is not logged. Pass
    ``response_status`` (status/message/reason/details) to describe another
    error Status. Stage timestamps default to a few milliseconds after
    ``received``.

    ``attrs.user`` None is a request whose authentication failed: one
    ResponseStarted event with the 401 Status, or none (see
    :func:`_failed_authentication_event`); ``response_code`` and the
    authorization arguments do not apply to it.
    """
    level = level_name(evaluation.level)
    times = dict(stage_times or {})
    times.setdefault(STAGE_REQUEST_RECEIVED, received)
    times.setdefault(STAGE_RESPONSE_STARTED, received + timedelta(milliseconds=2))
    times.setdefault(STAGE_RESPONSE_COMPLETE, received + timedelta(milliseconds=5))

    if attrs.user is None:
        failed = _failed_authentication_event(
            attrs, evaluation, level, audit_id, received, times[STAGE_RESPONSE_STARTED],
            user_agent, source_ips, request_uri,
        )
        return [failed] if failed is not None else []

    stages = stages_for(attrs, level, evaluation.omit_stages)
    if not stages:
        return []
    if decision is None:
        decision = "forbid" if response_code == 403 else "allow"
    refused = decision == "forbid"
    if response_status is None and refused and response_code == 403:
        response_status = forbidden_status(attrs, reason)

    req_body = None if refused else request_object  # the handler never decoded it
    resp_body = response_object
    if resp_body is None and response_status is not None:
        resp_body = _status_object(_response_status(response_code, response_status))
    if evaluation.omit_managed_fields:
        req_body = strip_managed_fields(req_body) if req_body is not None else None
        resp_body = strip_managed_fields(resp_body) if resp_body is not None else None

    # Go encodes map keys sorted.
    annotations = dict(sorted({DECISION_ANNOTATION: decision, REASON_ANNOTATION: reason}.items()))
    resource_request = attrs.is_resource_request
    events: list[dict[str, Any]] = []
    for stage in stages:
        early = stage == STAGE_REQUEST_RECEIVED
        ev = _event_head(attrs, level, audit_id, stage, request_uri, user_agent, source_ips)
        if resource_request:
            ev["objectRef"] = _object_ref(attrs, req_body, fill=not early)
        if not early:
            ev["responseStatus"] = _response_status(response_code, response_status)
        # Non-resource requests have no decoded body (levels Request+ say so).
        if not early and resource_request and req_body is not None:
            if level_at_least(level, LEVEL_REQUEST):
                ev["requestObject"] = req_body
        if not early and resp_body is not None and level == LEVEL_REQUEST_RESPONSE:
            # A Status is logged for any request that gets one; other bodies only for
            # resource requests, and only once the handler has finished.
            finished = resource_request and stage == STAGE_RESPONSE_COMPLETE
            if response_status is not None or finished:
                ev["responseObject"] = resp_body
        ev["requestReceivedTimestamp"] = micro_time(received)
        ev["stageTimestamp"] = micro_time(times[stage])
        if not early:
            # Set by the authorization filter, after RequestReceived was emitted.
            ev["annotations"] = annotations
        events.append(ev)
    return events


def _failed_authentication_event(
    attrs: RequestAttributes,
    evaluation: RuleEvaluation,
    level: str,
    audit_id: str,
    received: datetime,
    started: datetime,
    user_agent: str,
    source_ips: Sequence[str],
    request_uri: str,
) -> dict[str, Any] | None:
    """WithFailedAuthenticationAudit: the one event a request that failed authentication gets.

    Level None or an omitted ResponseStarted stage log nothing. The filter first
    sets the message "Authentication failed, ..." (getAuthMethods), but the
    Unauthorized handler it wraps writes its Status through
    WriteObjectNegotiated, whose LogResponseObject replaces the event's
    ResponseStatus before the 401 header triggers the ResponseStarted event:
    the logged status is the Unauthorized Status. No annotations (authorization
    never ran), no request body, no user.
    """
    if level == LEVEL_NONE or STAGE_RESPONSE_STARTED in evaluation.omit_stages:
        return None
    status = _response_status(401, unauthorized_status())
    ev = _event_head(
        attrs, level, audit_id, STAGE_RESPONSE_STARTED, request_uri, user_agent, source_ips
    )
    if attrs.is_resource_request:
        ev["objectRef"] = _object_ref(attrs, None, fill=False)
    ev["responseStatus"] = status
    if level == LEVEL_REQUEST_RESPONSE:
        ev["responseObject"] = _status_object(status)
    ev["requestReceivedTimestamp"] = micro_time(received)
    ev["stageTimestamp"] = micro_time(started)
    return ev


# --------------------------------------------------------------------------- formatting


def go_json(obj: Any) -> str:
    """encoding/json output: compact, UTF-8, HTML-sensitive characters escaped."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    # These characters can only occur inside JSON strings, so a plain replace is safe.
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def format_line(event: Mapping[str, Any], fmt: str = "json") -> str:
    """One log line for ``event`` (newline included), as the log backend writes it."""
    check_log_format(fmt)
    if fmt == "json":
        return go_json(event) + "\n"
    return event_string(event) + "\n"
