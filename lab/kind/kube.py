"""The lab's Kubernetes client: one lab kind cluster, reached only through its own context.

The client configuration comes from ``lab.kind.context.lab_context`` (an explicit
kubeconfig holding only ``kind-<cluster>``); the user's default kubeconfig and
current-context are never read. The official ``kubernetes`` package is imported
lazily and used for what it does well — turning that kubeconfig into TLS settings
and credentials — while requests go out through its urllib3 pool with headers we
build ourselves: the generated API takes headers as a dict, and impersonation needs
one ``Impersonate-Group`` line *per group* (the API server reads every line as one
group; a comma-joined value would be one group named "a,b").

Exec uses the ``websocket-client`` package (a dependency of ``kubernetes``) directly:
``kubernetes.stream`` drops every request header except Authorization, so neither
impersonation nor a user agent would reach the API server through it.

A call can also authenticate as someone else for real (``credentials``: a client
certificate from lab.kind.users, presented instead of the lab's own credentials, to
the same server with the same CA) or as nobody (``anonymous``: no certificate, no
token). Attack steps need that: the audit policy sees who authenticated, never whom
they impersonate (see lab.kind.users).

The records and parsers of what the API returns live in lab.kind.kube_objects and are
re-exported here (callers import PodInfo, pod_info, ... from this module).
"""

from __future__ import annotations

import copy
import hashlib
import json
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

from lab.errors import LabError
from lab.kind.context import lab_context
from lab.kind.kube_objects import (
    KINDS,
    REVISION_ANNOTATION,
    ROLLOUT_KINDS,
    STUCK_REASONS,
    ContainerInfo,
    PodInfo,
    Rollout,
    exec_exit_status,
    pod_info,
    rollout_of,
)
from lab.kind.nodes import ExecResult
from lab.work import Progress, ProgressEvent, no_progress

if TYPE_CHECKING:
    from lab.kind.users import ClientCert

__all__ = [  # the client, and the kube_objects names callers import from here
    "KINDS",
    "MAX_EXEC_OUTPUT",
    "MAX_LOG_BYTES",
    "REVISION_ANNOTATION",
    "ROLLOUT_KINDS",
    "STUCK_REASONS",
    "USER_AGENT",
    "ContainerInfo",
    "Kube",
    "KubeApiError",
    "PodInfo",
    "Rollout",
    "exec_exit_status",
    "pod_info",
    "rollout_of",
]

USER_AGENT = "cks-lab"

# Exec stream channels (k8s.io/apimachinery remotecommand, v4/v5 protocols).
_STDIN, _STDOUT, _STDERR, _ERROR, _CLOSE = 0, 1, 2, 3, 255
_EXEC_PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"]
MAX_EXEC_OUTPUT = 4 << 20
MAX_LOG_BYTES = 8 << 20


class KubeApiError(LabError):
    """The API server answered with an error status (403, 404, 422, ...)."""

    def __init__(self, message: str, *, status: int, reason: str = "", **kw: Any) -> None:
        super().__init__(message, **kw)
        self.status = status
        self.reason = reason


def _send_stdin(ws: Any, data: bytes) -> None:
    """Write stdin on channel 0; on v5 also close it, so a command reading to EOF ends."""
    import websocket

    if data:
        ws.send(bytes([_STDIN]) + data, opcode=websocket.ABNF.OPCODE_BINARY)
    if ws.getsubprotocol() == "v5.channel.k8s.io":
        ws.send(bytes([_CLOSE, _STDIN]), opcode=websocket.ABNF.OPCODE_BINARY)


@dataclass
class _Resource:
    kind: str
    name: str
    namespace: str | None
    collection: str
    path: str
    body: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.kind.lower()}/{self.name}"


def _q(part: str) -> str:
    return quote(part, safe="")


def _base(group: str, version: str) -> str:
    return f"/api/{version}" if not group else f"/apis/{group}/{version}"


def _kind_entry(kind: str) -> tuple[str, tuple[str, str, bool]]:
    for name, entry in KINDS.items():
        if name.lower() == kind.lower():
            return name, entry
    raise LabError(f"the lab does not manage {kind!r} objects (known: {', '.join(KINDS)})")


def _status_message(data: Any) -> str:
    if isinstance(data, dict):
        return str(data.get("message") or data.get("reason") or json.dumps(data)[:300])
    return str(data).strip()[:300]


def _status_reason(data: Any) -> str:
    return str(data.get("reason") or "") if isinstance(data, dict) else ""


class Kube:
    """Calls on one lab kind cluster (see the module doc)."""

    POLL_SECONDS = 1.0

    def __init__(self, kubeconfig: Path, cluster: str) -> None:
        self.cluster = cluster
        config = lab_context(kubeconfig, cluster)
        try:
            from kubernetes.client import Configuration
            from kubernetes.config import new_client_from_config_dict
            from kubernetes.config.config_exception import ConfigException
        except ImportError as err:  # pragma: no cover - a dependency of cks-lab
            raise LabError(f"the kubernetes Python package is missing: {err}") from None
        conf = Configuration()
        # The server is on this machine: an HTTPS_PROXY from the environment would
        # send 127.0.0.1 to the proxy's host instead.
        conf.proxy = None
        try:
            self._api = new_client_from_config_dict(
                config,
                context=config["current-context"],
                persist_config=False,
                client_configuration=conf,
            )
        except (ConfigException, ValueError, TypeError) as err:
            raise LabError(
                f"cannot use the kubeconfig of cluster {cluster!r}: {err}", file=str(kubeconfig)
            ) from None
        self._conf = self._api.configuration
        self.server = str(self._conf.host).rstrip("/")
        self._pools: dict[str, Any] = {}  # client certificate fingerprint -> its pool

    # -- the wire -------------------------------------------------------------

    def _headers(
        self,
        user: str | None,
        groups: Sequence[str],
        user_agent: str | None,
        own_credentials: bool = True,
    ) -> list[tuple[str, str]]:
        headers = [("User-Agent", user_agent or USER_AGENT)]
        token = (self._conf.auth_settings().get("BearerToken") or {}).get("value")
        if token and own_credentials:
            headers.append(("Authorization", str(token)))
        if groups and not user:
            raise LabError("impersonating groups needs a user to impersonate as well")
        if user:
            headers.append(("Impersonate-User", user))
        headers.extend(("Impersonate-Group", g) for g in groups)
        return headers

    @staticmethod
    def _identity(
        user: str | None, groups: Sequence[str], credentials: ClientCert | None, anonymous: bool
    ) -> None:
        if (credentials is not None or anonymous) and (user or groups):
            raise LabError("a request authenticates with credentials or impersonates, not both")
        if credentials is not None and anonymous:
            raise LabError("an anonymous request carries no credentials")

    def _pool(self, credentials: ClientCert | None, anonymous: bool) -> Any:
        """The lab's own pool, or one (cached) that presents ``credentials`` — or no
        client certificate at all — to the same server with the same CA, no proxy."""
        if credentials is None and not anonymous:
            return self._api.rest_client.pool_manager
        key = credentials.fingerprint if credentials is not None else ""
        pool = self._pools.get(key)
        if pool is None:
            import urllib3

            conf = self._conf
            args: dict[str, Any] = {
                "cert_reqs": ssl.CERT_REQUIRED if conf.verify_ssl else ssl.CERT_NONE,
                "ca_certs": conf.ssl_ca_cert,
                "num_pools": 2,
            }
            if credentials is not None:
                args["cert_file"] = str(credentials.cert_file)
                args["key_file"] = str(credentials.key_file)
            if conf.assert_hostname is not None:
                args["assert_hostname"] = conf.assert_hostname
            if conf.tls_server_name:
                args["server_hostname"] = conf.tls_server_name
            pool = self._pools[key] = urllib3.PoolManager(**args)
        return pool

    def ca_fingerprint(self) -> str | None:
        """sha256 of the CA certificate (DER) the lab's kubeconfig trusts; None without one."""
        path = self._conf.ssl_ca_cert
        if not path:
            return None
        try:
            pem = Path(path).read_text(encoding="ascii")
            return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()
        except (OSError, ValueError):
            return None

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        user: str | None = None,
        groups: Sequence[str] = (),
        user_agent: str | None = None,
        timeout: float = 30.0,
        credentials: ClientCert | None = None,
        anonymous: bool = False,
    ) -> tuple[int, bytes, str]:
        import urllib3

        self._identity(user, groups, credentials, anonymous)
        own = credentials is None and not anonymous
        headers = urllib3.HTTPHeaderDict()
        headers.add("Accept", "application/json, */*")
        for name, value in self._headers(user, groups, user_agent, own):
            headers.add(name, value)  # add(), not []=: repeated names stay separate lines
        data: bytes | None = None
        if body is not None:
            if isinstance(body, bytes | str):
                data = body.encode() if isinstance(body, str) else body
            else:
                data = json.dumps(body).encode()
                ctype = "application/merge-patch+json" if method == "PATCH" else "application/json"
                headers.add("Content-Type", ctype)
        url = self.server + path + (f"?{urlencode(list(query))}" if query else "")
        try:
            resp = self._pool(credentials, anonymous).request(
                method,
                url,
                body=data,
                headers=headers,
                timeout=urllib3.Timeout(connect=10.0, read=timeout),
                retries=False,
                preload_content=True,
            )
        except urllib3.exceptions.HTTPError as err:
            raise LabError(
                f"cannot reach the API server of kind cluster {self.cluster!r} at "
                f"{self.server}: {err}; is the cluster running? (`cks-lab status`)"
            ) from None
        return resp.status, resp.data or b"", resp.headers.get("Content-Type", "")

    @staticmethod
    def _decode(raw: bytes, ctype: str) -> Any:
        text = raw.decode("utf-8", errors="replace")
        if "json" in ctype or text[:1] in ("{", "["):
            try:
                return json.loads(text)
            except ValueError:
                pass
        return text

    def _json(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        status, raw, ctype = self._call(method, path, **kw)
        return status, self._decode(raw, ctype)

    def request(
        self,
        method: str,
        uri: str,
        *,
        body: Any = None,
        user: str | None = None,
        groups: Sequence[str] = (),
        user_agent: str | None = None,
        credentials: ClientCert | None = None,
        anonymous: bool = False,
    ) -> tuple[int, Any]:
        """One raw API request: (HTTP status, parsed JSON or text). An error status is
        returned, not raised — an attack step expects 403s.

        ``user``/``groups`` impersonate; ``credentials`` authenticate with that client
        certificate instead of the lab's; ``anonymous`` sends no credentials at all."""
        if not uri.startswith("/") or uri.startswith("//"):
            raise LabError(f"API request URI must be a path on the lab cluster, got {uri!r}")
        path, _, query = uri.partition("?")
        status, raw, ctype = self._call(
            method.upper(),
            path + (f"?{query}" if query else ""),
            body=body,
            user=user,
            groups=groups,
            user_agent=user_agent,
            credentials=credentials,
            anonymous=anonymous,
        )
        return status, self._decode(raw, ctype)

    def readyz(self) -> bool:
        try:
            status, raw, _ = self._call("GET", "/readyz", timeout=5.0)
        except LabError:
            return False
        return status == 200

    # -- objects --------------------------------------------------------------

    def _resource(self, doc: Any, source: str, index: int) -> _Resource:
        where = f"document {index + 1}"
        if not isinstance(doc, dict):
            raise LabError(f"{where} is not a mapping", file=source or None)
        kind, api_version = doc.get("kind"), doc.get("apiVersion")
        meta = doc.get("metadata")
        if not isinstance(kind, str) or not isinstance(api_version, str):
            raise LabError(f"{where} needs apiVersion and kind", file=source or None)
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
            raise LabError(f"{where} ({kind}) needs metadata.name", file=source or None)
        if kind not in KINDS:
            raise LabError(
                f"{where}: kind {kind!r} is not one the lab can apply (known: {', '.join(KINDS)})",
                file=source or None,
            )
        group, plural, namespaced = KINDS[kind]
        doc_group, _, version = api_version.rpartition("/")
        if doc_group != group or not version:
            want = f"{group}/<version>" if group else "v1"
            raise LabError(
                f"{where}: {kind} has apiVersion {api_version!r}, expected {want}",
                file=source or None,
            )
        body = copy.deepcopy(doc)
        name = meta["name"]
        namespace: str | None = None
        base = _base(group, version)
        if namespaced:
            namespace = str(meta.get("namespace") or "default")
            body["metadata"]["namespace"] = namespace
            collection = f"{base}/namespaces/{_q(namespace)}/{plural}"
        else:
            body["metadata"].pop("namespace", None)
            collection = f"{base}/{plural}"
        return _Resource(kind, name, namespace, collection, f"{collection}/{_q(name)}", body)

    def apply(self, docs: Sequence[dict[str, Any]], *, source: str = "") -> list[str]:
        """Create each object, or replace it when it exists; Pods (mostly immutable) are
        deleted and created again. Namespaces first. Returns kubectl-style lines."""
        resources = [self._resource(doc, source, i) for i, doc in enumerate(docs)]
        resources.sort(key=lambda r: r.kind != "Namespace")  # stable: file order otherwise
        return [self._apply_one(r, source) for r in resources]

    def _refused(self, r: _Resource, verb: str, status: int, data: Any, source: str) -> LabError:
        return KubeApiError(
            f"{r.label}: the API server refused to {verb} it ({status}): {_status_message(data)}",
            status=status,
            reason=_status_reason(data),
            file=source or None,
        )

    def _apply_one(self, r: _Resource, source: str) -> str:
        status, data = self._json("POST", r.collection, body=r.body)
        if status in (200, 201, 202):
            return f"{r.label} created"
        if status != 409:
            raise self._refused(r, "create", status, data, source)
        if r.kind == "Pod":
            self._delete_path(r.path, r.label, wait=60.0)
            return self._create(r, source, "recreated")
        current_status, current = self._json("GET", r.path)
        if current_status == 404:  # deleted in between
            return self._create(r, source, "created")
        if current_status != 200 or not isinstance(current, dict):
            raise self._refused(r, "read", current_status, current, source)
        if r.kind == "Namespace" and (current.get("status") or {}).get("phase") == "Terminating":
            # A namespace deleted by the previous scenario's reset: wait it out.
            self._wait_gone(r.path, r.label, wait=120.0)
            return self._create(r, source, "created")
        body = copy.deepcopy(r.body)
        body["metadata"]["resourceVersion"] = (current.get("metadata") or {}).get(
            "resourceVersion", ""
        )
        if r.kind == "Service":
            # Allocated addresses are immutable; keep them unless the manifest sets them.
            for key in ("clusterIP", "clusterIPs"):
                old = (current.get("spec") or {}).get(key)
                if old and key not in (body.get("spec") or {}):
                    body.setdefault("spec", {})[key] = old
        status, data = self._json("PUT", r.path, body=body)
        if status == 200:
            return f"{r.label} configured"
        if status == 422:  # an immutable field changed (e.g. a selector): start over
            self._delete_path(r.path, r.label, wait=60.0)
            return self._create(r, source, "recreated")
        raise self._refused(r, "replace", status, data, source)

    def _create(self, r: _Resource, source: str, word: str) -> str:
        status, data = self._json("POST", r.collection, body=r.body)
        if status in (200, 201, 202):
            return f"{r.label} {word}"
        raise self._refused(r, "create", status, data, source)

    def _wait_gone(self, path: str, label: str, wait: float) -> None:
        deadline = time.monotonic() + wait
        while True:
            status, _data = self._json("GET", path)
            if status == 404:
                return
            if time.monotonic() >= deadline:
                raise LabError(f"{label} still exists {wait:g}s after it was deleted")
            time.sleep(min(self.POLL_SECONDS, max(0.0, deadline - time.monotonic())))

    def _delete_path(self, path: str, label: str, wait: float) -> None:
        status, data = self._json(
            "DELETE", path, body={"kind": "DeleteOptions", "apiVersion": "v1"}
        )
        if status == 404:
            return
        if status not in (200, 202):
            raise KubeApiError(
                f"{label}: the API server refused to delete it ({status}): {_status_message(data)}",
                status=status,
                reason=_status_reason(data),
            )
        if wait > 0:
            self._wait_gone(path, label, wait)

    def delete(self, kind: str, namespace: str, name: str, *, wait: float = 60) -> None:
        """Delete one object (no error when absent) and wait until it is gone."""
        canonical, (group, plural, namespaced) = _kind_entry(kind)
        version = "v1"
        base = _base(group, version)
        if namespaced:
            if not namespace:
                raise LabError(f"deleting {canonical.lower()}/{name} needs its namespace")
            path = f"{base}/namespaces/{_q(namespace)}/{plural}/{_q(name)}"
        else:
            path = f"{base}/{plural}/{_q(name)}"
        self._delete_path(path, f"{canonical.lower()}/{name}", wait)

    # -- pods -----------------------------------------------------------------

    def pod(self, namespace: str, name: str) -> PodInfo | None:
        status, data = self._json("GET", f"/api/v1/namespaces/{_q(namespace)}/pods/{_q(name)}")
        if status == 404:
            return None
        if status != 200 or not isinstance(data, dict):
            raise KubeApiError(
                f"pod {namespace}/{name}: cannot read it ({status}): {_status_message(data)}",
                status=status,
                reason=_status_reason(data),
            )
        return pod_info(data)

    def pods(self, namespace: str, label_selector: str) -> list[PodInfo]:
        query = [("labelSelector", label_selector)] if label_selector else []
        status, data = self._json("GET", f"/api/v1/namespaces/{_q(namespace)}/pods", query=query)
        if status != 200 or not isinstance(data, dict):
            raise KubeApiError(
                f"pods in {namespace} ({label_selector}): cannot list them ({status}): "
                f"{_status_message(data)}",
                status=status,
                reason=_status_reason(data),
            )
        return [pod_info(item) for item in data.get("items") or [] if isinstance(item, dict)]

    def rollout(self, kind: str, namespace: str, name: str) -> Rollout | None:
        """Where the rollout of a Deployment, StatefulSet or DaemonSet stands; None when
        there is no such object."""
        canonical, (_group, plural, _ns) = _kind_entry(kind)
        if canonical not in ROLLOUT_KINDS:
            raise LabError(f"{canonical} objects have no rollout (only {', '.join(ROLLOUT_KINDS)})")
        base = f"/apis/apps/v1/namespaces/{_q(namespace)}"
        label = f"{canonical.lower()}/{name}"
        status, obj = self._json("GET", f"{base}/{plural}/{_q(name)}")
        if status == 404:
            return None
        if status != 200 or not isinstance(obj, dict):
            raise KubeApiError(
                f"{label}: cannot read it ({status}): {_status_message(obj)}",
                status=status,
                reason=_status_reason(obj),
            )
        children: list[dict[str, Any]] = []
        kids = {"Deployment": "replicasets", "DaemonSet": "controllerrevisions"}.get(canonical)
        if kids:
            match = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            query = [("labelSelector", ",".join(f"{k}={v}" for k, v in sorted(match.items())))]
            status, data = self._json("GET", f"{base}/{kids}", query=query if match else [])
            if status != 200 or not isinstance(data, dict):
                raise KubeApiError(
                    f"{label}: cannot list its {kids} ({status}): {_status_message(data)}",
                    status=status,
                    reason=_status_reason(data),
                )
            children = [c for c in data.get("items") or [] if isinstance(c, dict)]
        obj.setdefault("kind", canonical)
        return rollout_of(obj, children)

    def wait_pods(
        self,
        pods: Sequence[tuple[str, str]],
        *,
        timeout: float,
        progress: Progress = no_progress,
    ) -> dict[tuple[str, str], PodInfo]:
        """Wait until every pod runs, finished, or is stuck for good (see STUCK_REASONS);
        LabError naming the others after ``timeout`` seconds."""
        wanted = list(dict.fromkeys(pods))
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            infos = {key: self.pod(*key) for key in wanted}
            done = sum(1 for info in infos.values() if info is not None and info.settled)
            message = f"waiting for pods: {done}/{len(wanted)} started"
            if message != last:
                progress(ProgressEvent(message, phase="pods", done=done, total=len(wanted)))
                last = message
            if done == len(wanted):
                return {key: info for key, info in infos.items() if info is not None}
            if time.monotonic() >= deadline:
                pending = [
                    info.describe() if info else f"{ns}/{name}: not found"
                    for (ns, name), info in infos.items()
                    if info is None or not info.settled
                ]
                raise LabError(f"pods not started after {timeout:g}s: " + "; ".join(pending))
            time.sleep(min(self.POLL_SECONDS, max(0.0, deadline - time.monotonic())))

    def logs(
        self,
        namespace: str,
        pod: str,
        *,
        container: str | None = None,
        since: datetime | None = None,
        timestamps: bool = False,
    ) -> str:
        query: list[tuple[str, str]] = [("limitBytes", str(MAX_LOG_BYTES))]
        if container:
            query.append(("container", container))
        if timestamps:  # the kubelet's RFC 3339 time in front of every line
            query.append(("timestamps", "true"))
        if since is not None:
            # sinceTime has whole seconds: round down so nothing after `since` is lost.
            when = since.astimezone(UTC) if since.tzinfo else since.replace(tzinfo=UTC)
            query.append(("sinceTime", when.strftime("%Y-%m-%dT%H:%M:%SZ")))
        path = f"/api/v1/namespaces/{_q(namespace)}/pods/{_q(pod)}/log"
        status, raw, ctype = self._call("GET", path, query=query, timeout=60.0)
        if status != 200:
            data = self._decode(raw, ctype)
            raise KubeApiError(
                f"logs of pod {namespace}/{pod}: {status}: {_status_message(data)}",
                status=status,
                reason=_status_reason(data),
            )
        return raw.decode("utf-8", errors="replace")

    # -- exec -----------------------------------------------------------------

    def _sslopt(
        self, credentials: ClientCert | None = None, anonymous: bool = False
    ) -> dict[str, Any]:
        conf = self._conf
        opts: dict[str, Any] = {"cert_reqs": ssl.CERT_NONE}
        if conf.verify_ssl:
            opts = {"cert_reqs": ssl.CERT_REQUIRED}
            if conf.ssl_ca_cert:
                opts["ca_certs"] = conf.ssl_ca_cert
            if conf.assert_hostname is not None:
                opts["check_hostname"] = conf.assert_hostname
        if credentials is not None:
            opts["certfile"] = str(credentials.cert_file)
            opts["keyfile"] = str(credentials.key_file)
        elif not anonymous:
            if conf.cert_file:
                opts["certfile"] = conf.cert_file
            if conf.key_file:
                opts["keyfile"] = conf.key_file
        if conf.tls_server_name:
            opts["server_hostname"] = conf.tls_server_name
        return opts

    def exec(
        self,
        namespace: str,
        pod: str,
        container: str,
        argv: Sequence[str],
        *,
        user: str | None = None,
        groups: Sequence[str] = (),
        user_agent: str | None = None,
        timeout: float = 60,
        stdin: bytes | None = None,
        tty: bool = False,
        credentials: ClientCert | None = None,
        anonymous: bool = False,
    ) -> ExecResult:
        """Run ``argv`` in a container through the API's exec stream; the exit code
        comes from the stream's status channel.

        ``stdin`` is sent once the stream is open (then closed, on the v5 protocol);
        ``tty`` asks for a terminal as `kubectl exec -it` does — with it the runtime
        merges stderr into stdout, so stderr is not asked for. ``credentials`` and
        ``anonymous`` authenticate as in request().
        """
        import websocket

        if not argv:
            raise LabError("exec needs a command")
        self._identity(user, groups, credentials, anonymous)
        own = credentials is None and not anonymous
        query = [("command", a) for a in argv] + [("container", container)]
        if stdin is not None:
            query.append(("stdin", "true"))
        query.append(("stdout", "true"))
        query.append(("tty", "true") if tty else ("stderr", "true"))
        parts = urlsplit(self.server)
        scheme = "wss" if parts.scheme == "https" else "ws"
        path = f"/api/v1/namespaces/{_q(namespace)}/pods/{_q(pod)}/exec"
        url = f"{scheme}://{parts.netloc}{parts.path}{path}?{urlencode(query)}"
        header = [f"{k}: {v}" for k, v in self._headers(user, groups, user_agent, own)]
        where = f"pod {namespace}/{pod} container {container}"
        sslopt = self._sslopt(credentials, anonymous)
        ws = websocket.WebSocket(sslopt=sslopt, skip_utf8_validation=True)
        out = {_STDOUT: bytearray(), _STDERR: bytearray(), _ERROR: bytearray()}
        deadline = time.monotonic() + timeout
        try:
            try:
                ws.connect(
                    url,
                    header=header,
                    subprotocols=_EXEC_PROTOCOLS,
                    timeout=min(timeout, 30.0),
                    suppress_origin=True,
                    http_no_proxy=["*"],
                )
            except websocket.WebSocketBadStatusException as err:
                body = getattr(err, "resp_body", b"") or b""
                data = self._decode(body if isinstance(body, bytes) else str(body).encode(), "")
                raise KubeApiError(
                    f"exec in {where}: the API server refused it ({err.status_code}): "
                    f"{_status_message(data) or err}",
                    status=int(err.status_code),
                    reason=_status_reason(data),
                ) from None
            except (OSError, websocket.WebSocketException) as err:
                raise LabError(
                    f"exec in {where}: cannot reach the API server at {self.server}: {err}"
                ) from None
            if stdin is not None:
                _send_stdin(ws, stdin)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise LabError(f"exec in {where}: {list(argv)} did not end within {timeout:g}s")
                ws.settimeout(remaining)
                try:
                    opcode, frame = ws.recv_data_frame(True)
                except (websocket.WebSocketTimeoutException, TimeoutError):
                    continue  # the deadline check above reports it
                except (websocket.WebSocketConnectionClosedException, OSError):
                    break
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    break
                if opcode not in (websocket.ABNF.OPCODE_BINARY, websocket.ABNF.OPCODE_TEXT):
                    continue
                data = frame.data if isinstance(frame.data, bytes) else str(frame.data).encode()
                if not data or data[0] == _CLOSE or data[0] not in out:
                    continue
                buf = out[data[0]]
                if len(buf) < MAX_EXEC_OUTPUT:
                    buf += data[1 : 1 + MAX_EXEC_OUTPUT - len(buf)]
        finally:
            # shutdown, not close(): close() waits for the server's close frame, which a
            # command still running past the deadline would not send.
            ws.shutdown()
        code, message = exec_exit_status(out[_ERROR].decode("utf-8", errors="replace"))
        stderr = out[_STDERR].decode("utf-8", errors="replace")
        if message:
            stderr += ("" if not stderr or stderr.endswith("\n") else "\n") + message + "\n"
        return ExecResult(code, out[_STDOUT].decode("utf-8", errors="replace"), stderr)
