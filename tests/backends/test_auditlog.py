"""Finding one attack run's events in an audit log (lab.backends.auditlog).

Log lines are written with the audit engine's own formatter (`format_line`),
in the json and legacy formats kube-apiserver's log backend writes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from lab.backends import auditlog
from lab.backends.auditlog import collect, user_agent
from lab.engines.audit.events import format_line, micro_time

RUN = "a1b2c3d4"
OTHER = "ffff0000"
T0 = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def event(
    step: str = "s1",
    *,
    run: str = RUN,
    audit_id: str = "id-1",
    stage: str = "ResponseComplete",
    uri: str = "/api/v1/namespaces/default/secrets",
    ua: str | None = None,
) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": audit_id,
        "stage": stage,
        "requestURI": uri,
        "verb": "list",
        "user": {"username": "kubernetes-admin", "groups": ["system:authenticated"]},
        "sourceIPs": ["172.18.0.1"],
        "userAgent": user_agent(run, step) if ua is None else ua,
        "objectRef": {"resource": "secrets", "namespace": "default", "apiVersion": "v1"},
        "requestReceivedTimestamp": micro_time(T0),
        "stageTimestamp": micro_time(T0),
    }
    if stage != "RequestReceived":
        ev["responseStatus"] = {"metadata": {}, "code": 200}
    return ev


def line(ev: dict[str, Any], fmt: str = "json") -> str:
    return format_line(ev, fmt)


def legacy(ev: dict[str, Any]) -> dict[str, Any]:
    """What collect makes of a legacy line: these fields and no level."""
    return {"auditID": ev["auditID"], "stage": ev["stage"], "userAgent": ev["userAgent"],
            "requestURI": ev["requestURI"], "format": "legacy"}  # fmt: skip


def test_user_agent_names_run_and_step() -> None:
    assert user_agent("r1", "read-secret") == "cks-lab-attack/1 (run=r1; step=read-secret)"


def test_empty_log() -> None:
    assert collect([], RUN) == {}
    assert collect(["", "\n"], RUN) == {}


def test_events_grouped_by_step_in_order() -> None:
    evs = [
        event("s1", audit_id="1", stage="RequestReceived"),
        event("s2", audit_id="2", stage="RequestReceived"),
        event("s1", audit_id="1", stage="ResponseComplete"),
        event("s2", audit_id="2", stage="ResponseComplete"),
        event("s1", audit_id="3", stage="ResponseComplete"),
    ]
    got = collect([line(e) for e in evs], RUN)
    assert got == {"s1": [evs[0], evs[2], evs[4]], "s2": [evs[1], evs[3]]}
    assert list(got) == ["s1", "s2"]  # steps in the order they first appear


def test_accepts_any_iterable_of_lines(tmp_path: Any) -> None:
    log = tmp_path / "audit.log"
    log.write_text(line(event("s1")) + line(event("s2")), encoding="utf-8")
    with log.open(encoding="utf-8") as f:
        got = collect(f, RUN)
    assert got == {"s1": [event("s1")], "s2": [event("s2")]}


def test_other_runs_and_cluster_traffic_are_skipped() -> None:
    mine = event("s1")
    lines = [
        line(event("s1", run=OTHER)),
        line(event("s1", ua="kube-controller-manager/v1.30.0 (linux/amd64)")),
        line(event("s1", run=OTHER), "legacy"),
        line(mine),
        line(event("s1", run=RUN + "9")),  # a run id that starts with this one
        line(event("s1", run="9" + RUN)),  # ... or ends with it
    ]
    assert collect(lines, RUN) == {"s1": [mine]}


def test_other_runs_lines_are_never_parsed() -> None:
    # Lines a parser would choke on: if collect parsed them, it would raise.
    other = user_agent(OTHER, "s1")
    garbage = [
        '{"userAgent": "' + other + '", "requestObject": ' + "[" * 100_000 + "\n",
        "{not json at all " + other + "\n",
        "2026-05-01T12:00:00Z AUDIT: id=\"\\q\" user-agent=\"" + other + '"\n',
        "\x00\xff binary noise\n",
        "[" * 100_000 + "\n",
    ]
    mine = event("s1")
    assert collect([*garbage, line(mine)], RUN) == {"s1": [mine]}


def test_only_this_runs_lines_reach_the_parsers(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []

    class SpyJson:
        @staticmethod
        def loads(text: str) -> Any:
            parsed.append(text)
            return json.loads(text)

    real_legacy = auditlog.parse_legacy_line

    def spy_legacy(text: str) -> dict[str, str]:
        parsed.append(text)
        return real_legacy(text)

    monkeypatch.setattr(auditlog, "json", SpyJson)
    monkeypatch.setattr(auditlog, "parse_legacy_line", spy_legacy)
    mine_json = line(event("s1", audit_id="1"))
    mine_legacy = line(event("s2", audit_id="2"), "legacy")
    lines = [
        line(event("s1", run=OTHER)),
        mine_json,
        line(event("s2", run=OTHER), "legacy"),
        line(event("s1", ua="kubelet/v1.30.0")),
        mine_legacy,
    ]
    got = collect(lines, RUN)
    assert parsed == [mine_json, mine_legacy]
    assert got == {"s1": [event("s1", audit_id="1")], "s2": [legacy(event("s2", audit_id="2"))]}


@pytest.mark.parametrize("fmt", ["json", "legacy"])
@pytest.mark.parametrize("cut", ["after-marker", "near-end"])
def test_torn_last_line_is_ignored(fmt: str, cut: str) -> None:
    complete = [event("s1", audit_id="1"), event("s2", audit_id="2")]
    last = line(event("s2", audit_id="3"), fmt)
    marker = "(run=" + RUN + "; step="
    end = last.index(marker) + len(marker) + 1 if cut == "after-marker" else len(last) - 3
    torn = last[:end]  # no newline: the apiserver is still writing it
    assert marker in torn
    got = collect([*(line(e, fmt) for e in complete), torn], RUN)
    want = complete if fmt == "json" else [legacy(e) for e in complete]
    assert got == {"s1": [want[0]], "s2": [want[1]]}


def test_legacy_lines_are_collected_without_level() -> None:
    ev = event("s1", audit_id="abc", stage="ResponseStarted", uri="/api/v1/pods?watch=true")
    text = line(ev, "legacy")
    assert text.startswith('2026-05-01T12:00:00.123456Z AUDIT: id="abc" stage="ResponseStarted"')
    got = collect([text], RUN)
    assert got == {
        "s1": [
            {
                "auditID": "abc",
                "stage": "ResponseStarted",
                "userAgent": user_agent(RUN, "s1"),
                "requestURI": "/api/v1/pods?watch=true",
                "format": "legacy",
            }
        ]
    }
    assert "level" not in got["s1"][0]


def test_json_and_legacy_lines_mixed_keep_their_order() -> None:
    a, b, c = event("s1", audit_id="a"), event("s1", audit_id="b"), event("s1", audit_id="c")
    got = collect([line(a), line(b, "legacy"), line(c)], RUN)
    assert got == {"s1": [a, legacy(b), c]}
    assert [e["auditID"] for e in got["s1"]] == ["a", "b", "c"]


def test_step_comes_from_the_user_agent() -> None:
    evs = [event("s1", audit_id="1"), event("s2", audit_id="2"), event("s1", audit_id="3")]
    got = collect([line(e) for e in evs], RUN)
    assert [e["auditID"] for e in got["s1"]] == ["1", "3"]
    assert [e["auditID"] for e in got["s2"]] == ["2"]
    # A client may append its own product tokens after ours.
    ua = user_agent(RUN, "s3") + " kubectl/v1.30.0 (linux/amd64)"
    assert collect([line(event(ua=ua))], RUN) == {"s3": [event(ua=ua)]}


@pytest.mark.parametrize("fmt", ["json", "legacy"])
def test_marker_outside_the_user_agent_does_not_count(fmt: str) -> None:
    # The marker of this run in the request URI (or any field but userAgent) is no attribution.
    in_uri = "/api/v1/namespaces/default/pods?x=" + user_agent(RUN, "s1").replace(" ", "%20")
    in_uri_raw = "/api/v1/pods/" + user_agent(RUN, "s1")
    lines = [
        line(event(uri=in_uri_raw, ua="kubectl/v1.30.0"), fmt),
        line(event(uri=in_uri_raw, run=OTHER), fmt),
        line(event(uri=in_uri, ua=""), fmt),
    ]
    assert user_agent(RUN, "s1")[:-1].split(" ", 1)[1] in lines[0]  # it passes the pre-filter
    assert collect(lines, RUN) == {}
    # ... while the same event with our user agent is collected under its own step.
    mine = event("s2", uri=in_uri_raw)
    got = collect([line(mine, fmt)], RUN)
    assert got == {"s2": [mine if fmt == "json" else legacy(mine)]}


def test_json_lines_of_this_run_that_are_not_events_are_skipped() -> None:
    marker = user_agent(RUN, "s1")
    lines = [
        json.dumps({"msg": "note " + marker}) + "\n",  # the marker, but no userAgent
        json.dumps({"userAgent": 7, "note": marker}) + "\n",
        json.dumps(["not", "a", "mapping", marker]) + "\n",
        json.dumps(marker) + "\n",
    ]
    assert collect(lines, RUN) == {}
