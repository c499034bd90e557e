"""The safety guard: every Kubernetes call goes to a lab kind cluster, nowhere else.

The kubeconfig is read explicitly and the context is picked by name
(``kind-<cluster>``): the user's current-context and ~/.kube/config are never
consulted, so a learner whose shell points at production cannot reach it
through the lab. The returned dict is a kubeconfig holding only that context,
for the Kubernetes client to load as is.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lab.errors import LabError
from lab.kind.names import check_cluster_name
from lab.yamlsafe import Document, load_file

LAB_CONTEXT_PREFIX = "kind-cks-lab"
_KIND_PREFIX = "kind-"


def assert_lab_context(name: str) -> str:
    """Refuse a context name that is not a lab kind cluster's; return the cluster name."""
    if not name.startswith(LAB_CONTEXT_PREFIX):
        raise LabError(
            f"refusing kubeconfig context {name!r}: the lab only talks to its own kind "
            f"clusters (contexts named '{LAB_CONTEXT_PREFIX}…')"
        )
    cluster = name[len(_KIND_PREFIX) :]
    try:
        check_cluster_name(cluster)
    except LabError as err:
        raise LabError(f"refusing kubeconfig context {name!r}: {err.message}") from None
    return cluster


def _is_local_host(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _pick(doc: Document, section: str, name: str, what: str) -> tuple[int, dict[str, Any]]:
    entries = doc.data.get(section)
    if not isinstance(entries, list):
        raise LabError(
            f"no {section} list; is this a kubeconfig from 'kind get kubeconfig'?",
            file=doc.source,
            line=doc.line_of((section,)),
        )
    found = [(i, e) for i, e in enumerate(entries) if isinstance(e, dict) and e.get("name") == name]
    if not found:
        names = [e.get("name") for e in entries if isinstance(e, dict)]
        raise LabError(
            f"{what} {name!r} not found; {section} here: {names or 'none'}",
            file=doc.source,
            line=doc.line_of((section,)),
        )
    if len(found) > 1:
        raise LabError(
            f"{what} {name!r} is defined {len(found)} times; refusing an ambiguous kubeconfig",
            file=doc.source,
            line=doc.line_of((section, found[1][0])),
        )
    i, entry = found[0]
    body = entry.get(section[:-1])  # "clusters" -> "cluster", ...
    if not isinstance(body, dict):
        raise LabError(
            f"{what} {name!r} has no '{section[:-1]}' mapping",
            file=doc.source,
            line=doc.line_of((section, i)),
        )
    return i, entry


def lab_context(kubeconfig: Path, cluster: str) -> dict[str, Any]:
    """A kubeconfig dict holding only context ``kind-<cluster>``, its cluster and
    user, with current-context set to it; LabError for anything that is not a
    local lab kind cluster."""
    try:
        check_cluster_name(cluster)
    except LabError as err:
        raise LabError(f"refusing cluster {cluster!r}: {err.message}") from None
    context_name = f"{_KIND_PREFIX}{cluster}"
    assert_lab_context(context_name)

    doc = load_file(kubeconfig)
    if not isinstance(doc.data, dict):
        raise LabError("expected a kubeconfig mapping", file=doc.source, line=1)

    ci, context = _pick(doc, "contexts", context_name, "context")
    cluster_ref = context["context"].get("cluster")
    user_ref = context["context"].get("user")
    if not isinstance(cluster_ref, str) or not isinstance(user_ref, str):
        raise LabError(
            f"context {context_name!r} does not name both a cluster and a user "
            f"(cluster: {cluster_ref!r}, user: {user_ref!r})",
            file=doc.source,
            line=doc.line_of(("contexts", ci, "context")),
        )
    ki, cluster_entry = _pick(doc, "clusters", cluster_ref, f"cluster of context {context_name!r},")
    ui, user_entry = _pick(doc, "users", user_ref, f"user of context {context_name!r},")

    body = cluster_entry["cluster"]
    server = body.get("server")
    scheme, host, port = None, None, None
    if isinstance(server, str):
        try:
            parts = urlsplit(server)
            scheme, host, port = parts.scheme, parts.hostname, parts.port
        except ValueError:  # a malformed port or bracketed address: refused below
            pass
    if scheme != "https" or not _is_local_host(host) or port is None:
        raise LabError(
            f"refusing context {context_name!r}: its server is {server!r}, not a local kind "
            "API server (https://127.0.0.1:<port>, localhost or [::1])",
            file=doc.source,
            line=doc.line_of(("clusters", ki, "cluster", "server")),
        )
    # A proxy would make "127.0.0.1" mean the proxy's host, not this machine.
    if body.get("proxy-url"):
        raise LabError(
            f"refusing context {context_name!r}: its cluster goes through proxy-url "
            f"{body['proxy-url']!r}; a kind cluster is reached directly",
            file=doc.source,
            line=doc.line_of(("clusters", ki, "cluster", "proxy-url")),
        )
    # The CA kind wrote pins the API server: without it (or with verification off)
    # whatever listens on that loopback port now would be trusted as the cluster.
    if body.get("insecure-skip-tls-verify") or not (
        body.get("certificate-authority-data") or body.get("certificate-authority")
    ):
        raise LabError(
            f"refusing context {context_name!r}: its cluster has no certificate authority "
            "(or skips TLS verification); kind writes its CA into the kubeconfig, so this "
            "one did not come from `cks-lab up`",
            file=doc.source,
            line=doc.line_of(("clusters", ki, "cluster")),
        )
    # kind writes client certificates; an exec/auth plugin would run a program.
    plugin = next((k for k in ("exec", "auth-provider") if user_entry["user"].get(k)), None)
    if plugin:
        raise LabError(
            f"refusing context {context_name!r}: its user runs an {plugin!r} plugin; "
            "kind users authenticate with client certificates",
            file=doc.source,
            line=doc.line_of(("users", ui, "user", plugin)),
        )
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster_entry],
        "contexts": [context],
        "users": [user_entry],
        "current-context": context_name,
    }
