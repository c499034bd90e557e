"""Audit levels and stages (audit.k8s.io), and which stages a request produces.

The one definition of the level and stage names (validation and event building
both use them), kube-apiserver's long-running check, and the stage sequence of
endpoints/filters/audit.go: RequestReceived, ResponseStarted for long-running
requests only, ResponseComplete; a policy's omitStages drop some.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # checker imports policy, which imports validation, which imports this
    from lab.engines.audit.checker import RequestAttributes

STAGE_REQUEST_RECEIVED = "RequestReceived"
STAGE_RESPONSE_STARTED = "ResponseStarted"
STAGE_RESPONSE_COMPLETE = "ResponseComplete"
STAGE_PANIC = "Panic"
# In the order upstream's validation lists them ("allowed stages are ...").
STAGES = (STAGE_REQUEST_RECEIVED, STAGE_RESPONSE_STARTED, STAGE_RESPONSE_COMPLETE, STAGE_PANIC)

LEVEL_NONE = "None"
LEVEL_METADATA = "Metadata"
LEVEL_REQUEST = "Request"
LEVEL_REQUEST_RESPONSE = "RequestResponse"
# Ordered: each level logs everything the ones before it do (audit.Level.Less).
LEVELS = (LEVEL_NONE, LEVEL_METADATA, LEVEL_REQUEST, LEVEL_REQUEST_RESPONSE)

# kube-apiserver's LongRunningFunc (controlplane/apiserver config).
LONG_RUNNING_VERBS = frozenset({"watch", "proxy"})
LONG_RUNNING_SUBRESOURCES = frozenset({"attach", "exec", "proxy", "log", "portforward"})


def level_name(level: Any) -> str:
    """Normalise a level (str, enum, None) to its audit.k8s.io name."""
    if level is None:
        return LEVEL_NONE
    text = str(getattr(level, "value", level))
    for known in LEVELS:
        if text.lower() == known.lower():
            return known
    raise ValueError(f"unknown audit level {text!r}; known levels are {', '.join(LEVELS)}")


def level_at_least(level: str, floor: str) -> bool:
    """``not level.Less(floor)`` for two audit.k8s.io level names."""
    return LEVELS.index(level) >= LEVELS.index(floor)


def is_long_running(attrs: RequestAttributes) -> bool:
    """kube-apiserver's long-running check: watch/proxy verbs, streaming subresources, pprof."""
    if attrs.verb in LONG_RUNNING_VERBS:
        return True
    if attrs.is_resource_request:
        return attrs.subresource in LONG_RUNNING_SUBRESOURCES
    return attrs.path.startswith("/debug/pprof/")


def stages_for(
    attrs: RequestAttributes, level: Any, omit_stages: Iterable[str] | None
) -> list[str]:
    """The stages a request produces events for, in order.

    RequestReceived, then ResponseStarted only for long-running requests (the
    audit filter emits it when headers go out on a streaming response), then
    ResponseComplete; stages in ``omit_stages`` are dropped. Level None: none.
    """
    if level_name(level) == LEVEL_NONE:
        return []
    omitted = {str(getattr(s, "value", s)) for s in (omit_stages or ())}
    stages = [STAGE_REQUEST_RECEIVED]
    if is_long_running(attrs):
        stages.append(STAGE_RESPONSE_STARTED)
    stages.append(STAGE_RESPONSE_COMPLETE)
    return [s for s in stages if s not in omitted]
