"""Turn attack steps into the API requests they make.

Both backends send these (the kind backend over the wire, the sim backend
through the audit engine), and checks use them to explain what a policy did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from lab.engines.audit.checker import RequestAttributes, UserInfo
from lab.scenarios.model import ApiRequest, AttackStep


@dataclass(frozen=True)
class ApiCall:
    step_id: str
    attrs: RequestAttributes
    uri: str
    body: dict[str, Any] | None
    response_code: int

    def describe(self) -> str:
        """`list secrets -n payments` as a learner would type it."""
        a = self.attrs
        if not a.is_resource_request:
            what = f"{a.verb} {a.path}"
        else:
            res = a.resource + (f"/{a.subresource}" if a.subresource else "")
            if a.api_group:
                res = f"{a.resource}.{a.api_group}" + (f"/{a.subresource}" if a.subresource else "")
            what = f"{a.verb} {res}" + (f" {a.name}" if a.name else "")
            what += f" -n {a.namespace}" if a.namespace else ""
        who = a.user.username if a.user else "an anonymous user"
        return f"`{what}` by {who}"


def resource_uri(req: ApiRequest) -> str:
    prefix = (
        f"/apis/{req.api_group}/{req.api_version}" if req.api_group else f"/api/{req.api_version}"
    )
    parts = [prefix]
    if req.namespace:
        parts.append(f"namespaces/{req.namespace}")
    parts.append(req.resource or "")
    if req.name:
        parts.append(req.name)
    if req.subresource:
        parts.append(req.subresource)
    uri = "/".join(parts)
    if req.verb == "watch":
        uri += "?watch=true"
    return uri


def api_call(step: AttackStep) -> ApiCall | None:
    """The API request a step makes, or None for steps that make none."""
    if step.api is not None:
        req = step.api
        user = UserInfo(req.user, tuple(req.groups)) if req.user else None
        uri = req.uri or resource_uri(req)
        if req.resource is None:
            attrs = RequestAttributes(
                user=user, verb=req.verb, path=uri.split("?", 1)[0], is_resource_request=False
            )
        else:
            attrs = RequestAttributes(
                user=user,
                verb=req.verb,
                path=uri.split("?", 1)[0],
                is_resource_request=True,
                api_group=req.api_group,
                api_version=req.api_version,
                resource=req.resource,
                subresource=req.subresource,
                namespace=req.namespace,
                name=req.name,
            )
        return ApiCall(step.id, attrs, uri, req.body, req.response_code)
    if step.exec is not None:
        ex = step.exec
        # kubectl >= 1.30 execs over WebSockets: a GET upgrade, so the verb is "get".
        # The query is PodExecOptions as url.Values encodes it: keys sorted, false
        # omitted. With -it, stdin and tty are sent and stderr is not (a terminal
        # carries both output streams).
        query = [("command", c) for c in ex.command]
        if ex.container:
            query.append(("container", ex.container))
        if ex.tty:
            query += [("stdin", "true"), ("stdout", "true"), ("tty", "true")]
        else:
            query += [("stderr", "true"), ("stdout", "true")]
        path = f"/api/v1/namespaces/{quote(ex.namespace)}/pods/{quote(ex.pod)}/exec"
        attrs = RequestAttributes(
            user=UserInfo(ex.user, tuple(ex.groups)),
            verb="get",
            path=path,
            is_resource_request=True,
            resource="pods",
            subresource="exec",
            namespace=ex.namespace,
            name=ex.pod,
        )
        return ApiCall(step.id, attrs, f"{path}?{urlencode(query)}", None, 101)
    return None
