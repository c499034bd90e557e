"""Audit events as kube-apiserver's log backend writes them (audit.k8s.io/v1).

Builds the Event objects one request produces (one per stage), renders them as
the ``json`` or ``legacy`` line format, appends them to a log file the way the
lumberjack writer behind ``--audit-log-path`` does, and reads them back.

Behaviour follows k8s.io/apiserver: stage emission in endpoints/filters/audit.go,
the long-running check kube-apiserver installs (verbs watch/proxy; subresources
attach/exec/proxy/log/portforward; /debug/pprof/), body logging by level in
pkg/audit/request.go, the JSON field order of apis/audit/v1 Event, and the
legacy one-line format of pkg/audit/format.go.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lab.engines.audit.gotext import go_quote
from lab.errors import LabError

API_VERSION = "audit.k8s.io/v1"

STAGE_REQUEST_RECEIVED = "RequestReceived"
STAGE_RESPONSE_STARTED = "ResponseStarted"
STAGE_RESPONSE_COMPLETE = "ResponseComplete"
STAGE_PANIC = "Panic"
STAGES = (STAGE_REQUEST_RECEIVED, STAGE_RESPONSE_STARTED, STAGE_RESPONSE_COMPLETE, STAGE_PANIC)

LEVELS = ("None", "Metadata", "Request", "RequestResponse")

# kube-apiserver's LongRunningFunc (controlplane/apiserver config).
LONG_RUNNING_VERBS = frozenset({"watch", "proxy"})
LONG_RUNNING_SUBRESOURCES = frozenset({"attach", "exec", "proxy", "log", "portforward"})

DECISION_ANNOTATION = "authorization.k8s.io/decision"
REASON_ANNOTATION = "authorization.k8s.io/reason"

# lumberjack.v2 defaults: 100 MB files, backups "<name>-<UTC time><ext>".
_MEGABYTE = 1024 * 1024
_DEFAULT_MAX_SIZE_MB = 100


class AuditLogError(LabError):
    """An audit log file that cannot be read as events."""


# --------------------------------------------------------------------------- levels and stages


def level_name(level: Any) -> str:
    """Normalise a level (str, enum, None) to its audit.k8s.io name."""
    if level is None:
        return "None"
    value = getattr(level, "value", level)
    text = str(value)
    for known in LEVELS:
        if text.lower() == known.lower():
            return known
    raise ValueError(f"unknown audit level {text!r}; known levels are {', '.join(LEVELS)}")


def _level_rank(level: str) -> int:
    return LEVELS.index(level)


def is_long_running(attrs: Any) -> bool:
    """kube-apiserver's long-running check: watch/proxy verbs, streaming subresources, pprof."""
    verb = getattr(attrs, "verb", "") or ""
    if verb in LONG_RUNNING_VERBS:
        return True
    if getattr(attrs, "is_resource_request", False):
        return (getattr(attrs, "subresource", "") or "") in LONG_RUNNING_SUBRESOURCES
    return (getattr(attrs, "path", "") or "").startswith("/debug/pprof/")


def stages_for(
    attrs: Any, level: Any, omit_stages: Iterable[str] | None, long_running: bool | None = None
) -> list[str]:
    """The stages a request produces events for, in order.

    RequestReceived, then ResponseStarted only for long-running requests (the
    audit filter emits it when headers go out on a streaming response), then
    ResponseComplete; stages in ``omit_stages`` are dropped. Level None: none.
    """
    if level_name(level) == "None":
        return []
    if long_running is None:
        long_running = is_long_running(attrs)
    omitted = {str(getattr(s, "value", s)) for s in (omit_stages or ())}
    stages = [STAGE_REQUEST_RECEIVED]
    if long_running:
        stages.append(STAGE_RESPONSE_STARTED)
    stages.append(STAGE_RESPONSE_COMPLETE)
    return [s for s in stages if s not in omitted]


# --------------------------------------------------------------------------- building events


def micro_time(ts: datetime) -> str:
    """metav1.MicroTime JSON: UTC, always six fractional digits, 'Z'."""
    return _utc(ts).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rfc3339_nano(ts: datetime) -> str:
    """Go's time.RFC3339Nano for a UTC time: trailing zeros of the fraction trimmed."""
    u = _utc(ts)
    base = u.strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{u.microsecond:06d}".rstrip("0")
    return f"{base}.{frac}Z" if frac else f"{base}Z"


def _utc(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)


def _user_info(user: Any) -> dict[str, Any]:
    # authentication/v1 UserInfo field order: username, uid, groups, extra (all omitempty).
    out: dict[str, Any] = {}
    if user is None:
        return out
    username = getattr(user, "username", None) or getattr(user, "name", None)
    if username:
        out["username"] = username
    uid = getattr(user, "uid", None)
    if uid:
        out["uid"] = uid
    groups = list(getattr(user, "groups", None) or [])
    if groups:
        out["groups"] = groups
    extra = getattr(user, "extra", None)
    if extra:
        out["extra"] = {k: list(v) for k, v in dict(extra).items()}
    return out


def _object_ref(attrs: Any, request_object: Mapping[str, Any] | None, fill: bool) -> dict[str, Any]:
    ref = {
        "resource": getattr(attrs, "resource", "") or "",
        "namespace": getattr(attrs, "namespace", "") or "",
        "name": getattr(attrs, "name", "") or "",
        "uid": "",
        "apiGroup": getattr(attrs, "api_group", "") or "",
        "apiVersion": getattr(attrs, "api_version", "") or "",
        "resourceVersion": "",
        "subresource": getattr(attrs, "subresource", "") or "",
    }
    if fill and isinstance(request_object, Mapping):
        # LogRequestObject completes the reference from the decoded body's metadata;
        # that happens after RequestReceived was emitted, so only later stages see it.
        meta = request_object.get("metadata")
        if isinstance(meta, Mapping):
            for key, field in (
                ("namespace", "namespace"),
                ("name", "name"),
                ("uid", "uid"),
                ("resourceVersion", "resourceVersion"),
            ):
                if not ref[key] and isinstance(meta.get(field), str):
                    ref[key] = meta[field]
    return {k: v for k, v in ref.items() if v}


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


def _response_status(code: int, extra: Mapping[str, Any] | None) -> dict[str, Any]:
    # metav1.Status field order; ListMeta "metadata" is not omitempty, hence {}.
    status: dict[str, Any] = {"metadata": {}}
    extra = dict(extra or {})
    for key in ("status", "message", "reason", "details"):
        if extra.get(key):
            status[key] = extra[key]
    if code:
        status["code"] = int(code)
    return status


def build_events(
    *,
    attrs: Any,
    evaluation: Any,
    audit_id: str,
    received: datetime,
    user_agent: str,
    source_ips: Sequence[str],
    request_uri: str,
    response_code: int,
    request_object: Mapping[str, Any] | None = None,
    response_object: Mapping[str, Any] | None = None,
    response_status: Mapping[str, Any] | None = None,
    decision: str | None = "allow",
    reason: str = "",
    annotations: Mapping[str, str] | None = None,
    stage_times: Mapping[str, datetime] | None = None,
    long_running: bool | None = None,
) -> list[dict[str, Any]]:
    """The audit.k8s.io/v1 Event dicts one request produces, in stage order.

    ``evaluation`` carries the matched rule's ``level``, ``omit_stages`` and
    ``omit_managed_fields``. ``response_status`` may add status/message/reason/
    details (as a Forbidden Status has). ``decision``/``reason`` become the
    authorization annotations; they are set by the authorization filter, which
    runs after RequestReceived is emitted, so that stage carries none. Stage
    timestamps default to a few milliseconds after ``received``.
    """
    level = level_name(getattr(evaluation, "level", None))
    stages = stages_for(attrs, level, getattr(evaluation, "omit_stages", None), long_running)
    if not stages:
        return []
    omit_mf = bool(getattr(evaluation, "omit_managed_fields", False))
    resource_request = bool(getattr(attrs, "is_resource_request", False))

    req_body = request_object
    resp_body = response_object
    if omit_mf:
        req_body = strip_managed_fields(req_body) if req_body is not None else None
        resp_body = strip_managed_fields(resp_body) if resp_body is not None else None

    times = dict(stage_times or {})
    times.setdefault(STAGE_REQUEST_RECEIVED, received)
    times.setdefault(STAGE_RESPONSE_STARTED, received + timedelta(milliseconds=2))
    times.setdefault(STAGE_RESPONSE_COMPLETE, received + timedelta(milliseconds=5))

    late_annotations: dict[str, str] = {}
    if decision:
        late_annotations[DECISION_ANNOTATION] = decision
        late_annotations[REASON_ANNOTATION] = reason
    late_annotations.update(annotations or {})

    events: list[dict[str, Any]] = []
    for stage in stages:
        early = stage == STAGE_REQUEST_RECEIVED
        ev: dict[str, Any] = {
            "kind": "Event",
            "apiVersion": API_VERSION,
            "level": level,
            "auditID": audit_id,
            "stage": stage,
            "requestURI": request_uri,
            "verb": getattr(attrs, "verb", "") or "",
            "user": _user_info(getattr(attrs, "user", None)),
        }
        if source_ips:
            ev["sourceIPs"] = list(source_ips)
        if user_agent:
            ev["userAgent"] = user_agent
        if resource_request:
            ev["objectRef"] = _object_ref(attrs, req_body, fill=not early)
        if not early:
            ev["responseStatus"] = _response_status(response_code, response_status)
        # Bodies are not logged for non-resource requests (levels Request+ say so).
        if not early and resource_request and req_body is not None:
            if _level_rank(level) >= _level_rank("Request"):
                ev["requestObject"] = req_body
        if stage == STAGE_RESPONSE_COMPLETE and resource_request and resp_body is not None:
            if level == "RequestResponse":
                ev["responseObject"] = resp_body
        ev["requestReceivedTimestamp"] = micro_time(received)
        ev["stageTimestamp"] = micro_time(times[stage])
        if not early and late_annotations:
            # Go encodes map keys sorted.
            ev["annotations"] = dict(sorted(late_annotations.items()))
        events.append(ev)
    return events


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


def event_string(ev: Mapping[str, Any]) -> str:
    """The legacy one-line rendering of an event (pkg/audit/format.go EventString)."""
    user = ev.get("user") or {}
    username = "<none>"
    groups = "<none>"
    if user.get("username"):
        username = user["username"]
        if user.get("groups"):
            groups = ",".join(go_quote(g) for g in user["groups"])
    asuser = "<self>"
    asgroups = "<lookup>"
    imp = ev.get("impersonatedUser")
    if imp is not None:
        asuser = imp.get("username", "")
        if imp.get("groups") is not None:
            asgroups = ",".join(go_quote(g) for g in imp["groups"])
    namespace = "<none>"
    ref = ev.get("objectRef")
    if ref and ref.get("namespace"):
        namespace = ref["namespace"]
    response = "<deferred>"
    if ev.get("responseStatus") is not None:
        response = str(int(ev["responseStatus"].get("code", 0)))
    ips = ev.get("sourceIPs") or []
    ip = ips[0] if ips else "<unknown>"
    received = _parse_micro_time(ev.get("requestReceivedTimestamp", ""))
    stamp = rfc3339_nano(received) if received else "0001-01-01T00:00:00Z"
    q = go_quote
    return (
        f"{stamp} AUDIT: id={q(ev.get('auditID', ''))} stage={q(ev.get('stage', ''))} "
        f"ip={q(ip)} method={q(ev.get('verb', ''))} user={q(username)} groups={q(groups)} "
        f"as={q(asuser)} asgroups={q(asgroups)} user-agent={q(ev.get('userAgent', ''))} "
        f'namespace={q(namespace)} uri={q(ev.get("requestURI", ""))} response="{response}"'
    )


def format_line(event: Mapping[str, Any], fmt: str = "json") -> str:
    """One log line for ``event`` (newline included), as the log backend writes it."""
    if fmt == "json":
        return go_json(event) + "\n"
    if fmt == "legacy":
        return event_string(event) + "\n"
    raise ValueError(f"log format {fmt!r} is not in list of known formats (legacy,json)")


# --------------------------------------------------------------------------- writing


def append_events(
    path: Path,
    lines: Iterable[str],
    *,
    create_parents: bool = False,
    max_size_mb: int | None = None,
    max_backups: int = 0,
    now: datetime | None = None,
) -> list[Path]:
    """Append log ``lines`` to ``path`` (a real path, already resolved in the node).

    Parent directories are created only when ``create_parents`` is set: the
    caller knows whether the apiserver's MkdirAll would have made them. With
    ``max_size_mb`` set (0 means lumberjack's default of 100), a line that
    would push the file past the limit first rotates it to
    ``<name>-<UTC 2006-01-02T15-04-05.000><ext>`` and keeps at most
    ``max_backups`` backups (0 keeps all). Returns the backups created.
    """
    if create_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.parent.is_dir():
        raise AuditLogError(f"open {path}: no such file or directory", file=str(path))
    rotated: list[Path] = []
    limit = None
    if max_size_mb is not None:
        limit = (max_size_mb or _DEFAULT_MAX_SIZE_MB) * _MEGABYTE
    try:
        size = path.stat().st_size if path.exists() else 0
        fh = open(path, "a", encoding="utf-8", newline="")  # noqa: SIM115 - reopened on rotation
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise AuditLogError(f"open {path}: {reason}", file=str(path)) from None
    try:
        for line in lines:
            data = line if line.endswith("\n") else line + "\n"
            nbytes = len(data.encode("utf-8"))
            if limit is not None:
                if nbytes > limit:
                    raise AuditLogError(
                        f"write length {nbytes} exceeds maximum file size {limit}", file=str(path)
                    )
                if size + nbytes > limit:
                    fh.close()
                    backup = _backup_name(path, now or datetime.now(UTC))
                    os.replace(path, backup)
                    rotated.append(backup)
                    fh = open(path, "a", encoding="utf-8", newline="")  # noqa: SIM115
                    size = 0
                    _cleanup_backups(path, max_backups)
            fh.write(data)
            size += nbytes
    finally:
        fh.close()
    return rotated


def _backup_name(path: Path, now: datetime) -> Path:
    stamp = _utc(now).strftime("%Y-%m-%dT%H-%M-%S.") + f"{_utc(now).microsecond // 1000:03d}"
    candidate = path.with_name(f"{path.stem}-{stamp}{path.suffix}")
    n = 1
    while candidate.exists():  # same millisecond: keep both rather than overwrite
        candidate = path.with_name(f"{path.stem}-{stamp}.{n}{path.suffix}")
        n += 1
    return candidate


def _cleanup_backups(path: Path, max_backups: int) -> None:
    if max_backups <= 0:
        return
    pattern = re.compile(
        re.escape(path.stem)
        + r"-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}(\.\d+)?"
        + re.escape(path.suffix)
    )
    backups = sorted(
        (p for p in path.parent.iterdir() if pattern.fullmatch(p.name)), key=lambda p: p.name
    )
    for old in backups[: max(0, len(backups) - max_backups)]:
        old.unlink(missing_ok=True)


# --------------------------------------------------------------------------- reading

_LEGACY_RE = re.compile(r"^(?P<ts>\S+) AUDIT: (?P<rest>.*)$")
_LEGACY_KEYS = (
    "id",
    "stage",
    "ip",
    "method",
    "user",
    "groups",
    "as",
    "asgroups",
    "user-agent",
    "namespace",
    "uri",
    "response",
)


def _parse_micro_time(value: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _go_unquote(text: str, pos: int) -> tuple[str, int]:
    """Parse a Go double-quoted string starting at ``text[pos]``; return (value, end)."""
    if pos >= len(text) or text[pos] != '"':
        raise ValueError("expected a quoted value")
    out: list[str] = []
    i = pos + 1
    simple = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
    while i < len(text):
        ch = text[i]
        if ch == '"':
            return "".join(out), i + 1
        if ch == "\\":
            i += 1
            if i >= len(text):
                break
            esc = text[i]
            if esc in simple:
                out.append(simple[esc])
                i += 1
            elif esc in "\\\"'":
                out.append(esc)
                i += 1
            elif esc in "xuU":
                width = {"x": 2, "u": 4, "U": 8}[esc]
                out.append(chr(int(text[i + 1 : i + 1 + width], 16)))
                i += 1 + width
            else:
                raise ValueError(f"unknown escape \\{esc}")
            continue
        out.append(ch)
        i += 1
    raise ValueError("unterminated quoted value")


def parse_legacy_line(line: str) -> dict[str, str]:
    """Fields of a legacy-format line: timestamp plus the key="value" pairs."""
    m = _LEGACY_RE.match(line.rstrip("\n"))
    if not m:
        raise ValueError("not a legacy audit line (expected '<time> AUDIT: ...')")
    fields = {"timestamp": m.group("ts")}
    rest = m.group("rest")
    pos = 0
    for key in _LEGACY_KEYS:
        prefix = f"{key}="
        if not rest.startswith(prefix, pos):
            raise ValueError(f"expected {prefix!r} at column {m.start('rest') + pos + 1}")
        value, pos = _go_unquote(rest, pos + len(prefix))
        fields[key] = value
        if pos < len(rest) and rest[pos] == " ":
            pos += 1
    return fields


def read_events(path: Path, fmt: str = "json") -> list[dict[str, Any]]:
    """Events in the log at ``path``, in order.

    A last line without its newline that does not parse is a write still in
    progress and is skipped; any other unreadable line raises
    :class:`AuditLogError` naming the file and line.
    """
    if fmt not in ("json", "legacy"):
        raise ValueError(f"log format {fmt!r} is not in list of known formats (legacy,json)")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise AuditLogError("audit log does not exist", file=str(path)) from None
    except IsADirectoryError:
        raise AuditLogError("audit log path is a directory, not a file", file=str(path)) from None
    text = raw.decode("utf-8", errors="replace")
    lines = text.split("\n")
    complete_last = text.endswith("\n")
    if complete_last:
        lines = lines[:-1]
    events: list[dict[str, Any]] = []
    for idx, line in enumerate(lines, start=1):
        is_partial = idx == len(lines) and not complete_last
        if not line.strip():
            continue
        try:
            if fmt == "json":
                ev = json.loads(line)
                if not isinstance(ev, dict):
                    raise ValueError("expected a JSON object")
                if ev.get("kind") != "Event":
                    raise ValueError(f"kind is {ev.get('kind')!r}, expected 'Event'")
            else:
                ev = dict(parse_legacy_line(line))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            if is_partial:
                break
            raise AuditLogError(f"not an audit event: {exc}", file=str(path), line=idx) from None
        events.append(ev)
    return events
