"""lab.kind.kube against a fake API server: TLS on 127.0.0.1 (the lab only talks to
https on loopback), a kubeconfig whose only context is kind-cks-lab-test.

The fake speaks the parts of the Kubernetes API the lab uses: create (POST on a
collection, 409 AlreadyExists), read, replace (PUT with resourceVersion, 409 on a
stale one), delete, list with labelSelector, pod logs, /readyz, and the exec
websocket (subprotocol v4.channel.k8s.io: one channel byte then the payload; the
exit status as a metav1.Status JSON on channel 3, as the kubelet writes it)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from lab.errors import LabError
from lab.kind.kube import Kube, KubeApiError, PodInfo, exec_exit_status, pod_info
from lab.kind.users import ClientCert

x509 = pytest.importorskip("cryptography.x509", reason="cryptography makes the fake's TLS cert")

CLUSTER = "cks-lab-test"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# -- TLS material --------------------------------------------------------------


def _certs(tmp: Path) -> tuple[bytes, Path, Path]:
    """(CA PEM, server cert file, server key file): a CA and a cert for 127.0.0.1."""
    import ipaddress

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-kind-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "server.crt", tmp / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca.public_bytes(serialization.Encoding.PEM), cert_file, key_file


# -- the fake API server -------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Any  # email.message.Message: get_all() keeps repeated lines apart
    body: Any
    # the client certificate's subject, as the API server's x509 authenticator reads
    # it: [("commonName", user), ("organizationName", group), ...]; None: no certificate
    peer: list[tuple[str, str]] | None = None


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


@dataclass
class FakeApi:
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    # (method, path) -> (status, body) answered instead of the store
    canned: dict[tuple[str, str], tuple[int, Any]] = field(default_factory=dict)
    # path -> number of GETs still answered before the object disappears
    vanish_after: dict[str, int] = field(default_factory=dict)
    logs: str = ""
    exec_frames: list[tuple[int, bytes]] = field(default_factory=list)
    stdin_seen: list[bytes] = field(default_factory=list)  # client frames, when it sent stdin
    exec_refuse: tuple[int, Any] | None = None
    exec_hold: float = 0.0  # seconds the command "runs" before the stream ends

    def put(self, path: str, obj: dict[str, Any], rv: str = "1") -> None:
        obj = json.loads(json.dumps(obj))
        obj.setdefault("metadata", {})["resourceVersion"] = rv
        self.objects[path] = obj

    def answer(self, method: str, path: str, query: dict[str, list[str]], body: Any):
        if (method, path) in self.canned:
            return self.canned[(method, path)]
        if path == "/readyz":
            return 200, "ok"
        if path.endswith("/log"):
            return 200, self.logs
        if method == "POST":
            name = body["metadata"]["name"]
            key = f"{path}/{name}"
            if key in self.objects:
                return 409, _status(409, "AlreadyExists", f'"{name}" already exists')
            self.put(key, body)
            return 201, self.objects[key]
        if method == "GET" and path in self.objects:
            if path in self.vanish_after:
                self.vanish_after[path] -= 1
                if self.vanish_after[path] < 0:
                    del self.objects[path], self.vanish_after[path]
                    return 404, _status(404, "NotFound", "gone")
            return 200, self.objects[path]
        if method == "GET" and path.endswith("/pods"):
            want = dict(
                kv.split("=", 1) for kv in query.get("labelSelector", [""])[0].split(",") if kv
            )
            items = [
                o
                for p, o in self.objects.items()
                if p.startswith(path + "/")
                and all(o["metadata"].get("labels", {}).get(k) == v for k, v in want.items())
            ]
            return 200, {"kind": "PodList", "items": items}
        if method == "PUT" and path in self.objects:
            have = self.objects[path]["metadata"]["resourceVersion"]
            if body["metadata"].get("resourceVersion") != have:
                return 409, _status(409, "Conflict", "the object has been modified")
            self.put(path, body, str(int(have) + 1))
            return 200, self.objects[path]
        if method == "DELETE" and path in self.objects:
            return 200, self.objects.pop(path)
        return 404, _status(404, "NotFound", f"{path} not found")


def _read_client_frame(rfile: Any) -> bytes:
    """One masked client frame's payload (RFC 6455 5.2), as the API server reads stdin."""
    head = rfile.read(2)
    length = head[1] & 0x7F
    if length == 126:
        length = struct.unpack("!H", rfile.read(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", rfile.read(8))[0]
    mask = rfile.read(4)
    data = rfile.read(length)
    return bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def _frame(opcode: int, payload: bytes) -> bytes:
    head = bytes([0x80 | opcode])
    if len(payload) < 126:
        return head + bytes([len(payload)]) + payload
    return head + bytes([126]) + struct.pack("!H", len(payload)) + payload


def _handler(api: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            body = json.loads(raw) if raw else None
            cert = self.connection.getpeercert()
            peer = [kv for rdn in cert["subject"] for kv in rdn] if cert else None
            api.seen.append(Seen(self.command, parts.path, query, self.headers, body, peer))
            if self.headers.get("Upgrade", "").lower() == "websocket":
                self._websocket()
                return
            status, payload = api.answer(self.command, parts.path, query, body)
            data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            self.send_response(status)
            ctype = "text/plain" if isinstance(payload, str) else "application/json"
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _websocket(self) -> None:
            if api.exec_refuse:
                status, payload = api.exec_refuse
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            key = self.headers["Sec-WebSocket-Key"]
            accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", accept)
            self.send_header("Sec-WebSocket-Protocol", "v4.channel.k8s.io")
            self.end_headers()
            self.wfile.flush()
            if parse_qs(urlsplit(self.path).query).get("stdin") == ["true"]:
                api.stdin_seen.append(_read_client_frame(self.rfile))
            for channel, payload in api.exec_frames:
                self.wfile.write(_frame(0x2, bytes([channel]) + payload))
            self.wfile.flush()
            time.sleep(api.exec_hold)
            self.wfile.write(_frame(0x8, struct.pack("!H", 1000)))
            self.wfile.flush()
            self.close_connection = True

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    return Handler


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, Path, Path]:
    return _certs(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def client_ca() -> tuple[Any, Any]:
    """(CA certificate, its key): the CA the fake API server trusts for client
    certificates, as kube-apiserver's --client-ca-file."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-kind-client-ca")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


@pytest.fixture
def api(tls: tuple[bytes, Path, Path], client_ca: tuple[Any, Any]) -> Iterator[tuple[FakeApi, int]]:
    from cryptography.hazmat.primitives import serialization

    _ca, cert, key = tls
    fake = FakeApi()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    # as kube-apiserver: a client certificate is asked for, not required (anonymous
    # and token requests come without one), and must be signed by the client CA
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.load_verify_locations(cadata=client_ca[0].public_bytes(serialization.Encoding.PEM).decode())
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _kubeconfig(tmp_path: Path, ca: bytes, port: int, context: str = f"kind-{CLUSTER}") -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": context,
                        "cluster": {
                            "server": f"https://127.0.0.1:{port}",
                            "certificate-authority-data": base64.b64encode(ca).decode(),
                        },
                    }
                ],
                "users": [{"name": context, "user": {"token": "lab-token"}}],
                "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
                "current-context": context,
            }
        )
    )
    return path


@pytest.fixture
def kube(api: tuple[FakeApi, int], tls: tuple[bytes, Path, Path], tmp_path: Path) -> Kube:
    kube = Kube(_kubeconfig(tmp_path, tls[0], api[1]), CLUSTER)
    kube.POLL_SECONDS = 0.01
    return kube


def _ns(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def _pod(name: str, ns: str = "team", image: str = "nginx:1.27") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


# -- the context guard ----------------------------------------------------------


def test_refuses_a_cluster_that_is_not_a_lab_cluster(
    tmp_path: Path, tls: tuple[bytes, Path, Path]
) -> None:
    path = _kubeconfig(tmp_path, tls[0], 6443)
    with pytest.raises(LabError, match="refusing cluster 'prod'"):
        Kube(path, "prod")
    # a lab-shaped name whose context is not in the file
    with pytest.raises(LabError, match="context 'kind-cks-lab' not found"):
        Kube(path, "cks-lab")


def test_refuses_a_kubeconfig_whose_lab_context_points_elsewhere(
    tmp_path: Path, tls: tuple[bytes, Path, Path]
) -> None:
    path = _kubeconfig(tmp_path, tls[0], 6443)
    data = yaml.safe_load(path.read_text())
    data["clusters"][0]["cluster"]["server"] = "https://k8s.prod.example.com:6443"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(LabError, match="not a local kind API server"):
        Kube(path, CLUSTER)


# -- raw requests, identity headers ---------------------------------------------


def test_request_impersonates_with_one_header_line_per_group(
    kube: Kube, api: tuple[FakeApi, int]
) -> None:
    fake, _ = api
    path = "/api/v1/namespaces/team/secrets"
    fake.canned[("GET", path)] = (
        403,
        _status(403, "Forbidden", 'secrets is forbidden: User "jane" cannot list resource'),
    )
    status, body = kube.request(
        "get", path, user="jane", groups=["dev", "system:authenticated"], user_agent="cks-lab/r1/s2"
    )
    assert status == 403
    assert body["reason"] == "Forbidden" and "jane" in body["message"]
    seen = fake.seen[-1]
    assert (seen.method, seen.path) == ("GET", path)
    assert seen.headers.get_all("Impersonate-User") == ["jane"]
    # two lines, not one "dev,system:authenticated" value (that would be one group)
    assert seen.headers.get_all("Impersonate-Group") == ["dev", "system:authenticated"]
    assert seen.headers.get_all("User-Agent") == ["cks-lab/r1/s2"]
    assert seen.headers["Authorization"] == "Bearer lab-token"


def test_request_without_identity_is_the_lab_itself(kube: Kube, api: tuple[FakeApi, int]) -> None:
    fake, _ = api
    fake.put("/api/v1/namespaces/team", _ns("team"))
    status, body = kube.request("GET", "/api/v1/namespaces/team")
    assert status == 200 and body["metadata"]["name"] == "team"
    seen = fake.seen[-1]
    assert seen.headers.get_all("Impersonate-User") is None
    assert seen.headers.get_all("Impersonate-Group") is None
    assert seen.headers["User-Agent"] == "cks-lab"


def test_request_sends_a_json_body_and_returns_text_answers(
    kube: Kube, api: tuple[FakeApi, int]
) -> None:
    fake, _ = api
    status, body = kube.request("POST", "/api/v1/namespaces", body=_ns("audit"))
    assert status == 201 and body["metadata"]["name"] == "audit"
    assert fake.seen[-1].body == _ns("audit")
    assert fake.seen[-1].headers["Content-Type"] == "application/json"
    assert kube.request("GET", "/readyz?verbose=1") == (200, "ok")
    assert (fake.seen[-1].path, fake.seen[-1].query) == ("/readyz", {"verbose": ["1"]})


def test_request_refuses_groups_without_a_user_and_foreign_urls(
    kube: Kube, api: tuple[FakeApi, int]
) -> None:
    fake, _ = api
    with pytest.raises(LabError, match="needs a user"):
        kube.request("GET", "/api", groups=["dev"])
    with pytest.raises(LabError, match="must be a path"):
        kube.request("GET", "https://k8s.prod.example.com/api")
    with pytest.raises(LabError, match="must be a path"):
        kube.request("GET", "//evil.example.com/api")
    assert fake.seen == []


def test_an_environment_proxy_does_not_capture_the_local_cluster(
    api: tuple[FakeApi, int],
    tls: tuple[bytes, Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Nothing listens on port 9: a client that used the proxy would fail.
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    kube = Kube(_kubeconfig(tmp_path, tls[0], api[1]), CLUSTER)
    assert kube.readyz() is True


def test_readyz_is_false_when_nothing_answers(
    tmp_path: Path, tls: tuple[bytes, Path, Path]
) -> None:
    import socket

    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kube = Kube(_kubeconfig(tmp_path, tls[0], port), CLUSTER)
    assert kube.readyz() is False
    with pytest.raises(LabError, match="cannot reach the API server of kind cluster"):
        kube.request("GET", "/api")


# -- apply ---------------------------------------------------------------------


def test_apply_creates_namespaces_first_then_the_rest_in_file_order(
    kube: Kube, api: tuple[FakeApi, int]
) -> None:
    fake, _ = api
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": "team"},
        "data": {"a": "1"},
    }
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "reader", "namespace": "ignored"},
        "rules": [],
    }
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {},
    }
    lines = kube.apply([cm, _ns("team"), role, deploy, _pod("p")], source="manifests/w.yaml")
    assert lines == [
        "namespace/team created",
        "configmap/cfg created",
        "clusterrole/reader created",
        "deployment/web created",
        "pod/p created",
    ]
    assert [(s.method, s.path) for s in fake.seen] == [
        ("POST", "/api/v1/namespaces"),
        ("POST", "/api/v1/namespaces/team/configmaps"),
        ("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles"),
        ("POST", "/apis/apps/v1/namespaces/default/deployments"),
        ("POST", "/api/v1/namespaces/team/pods"),
    ]
    # cluster-scoped objects lose a namespace; namespaced ones get "default"
    assert "namespace" not in fake.seen[2].body["metadata"]
    assert fake.seen[3].body["metadata"]["namespace"] == "default"
    assert fake.seen[0].headers["User-Agent"] == "cks-lab"


def test_apply_replaces_an_existing_object_with_its_resource_version(
    kube: Kube, api: tuple[FakeApi, int]
) -> None:
    fake, _ = api
    path = "/apis/apps/v1/namespaces/team/deployments/web"
    old = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}
    fake.put(path, {**old, "spec": {"replicas": 1}}, rv="7")
    new = {**old, "metadata": {"name": "web", "namespace": "team"}, "spec": {"replicas": 3}}
    assert kube.apply([new]) == ["deployment/web configured"]
    put = [s for s in fake.seen if s.method == "PUT"]
    assert len(put) == 1 and put[0].path == path
    assert put[0].body["metadata"]["resourceVersion"] == "7"
    assert fake.objects[path]["spec"] == {"replicas": 3}
    assert fake.objects[path]["metadata"]["resourceVersion"] == "8"
    assert "resourceVersion" not in new["metadata"]  # the caller's dict is untouched


def test_apply_keeps_a_services_allocated_cluster_ip(kube: Kube, api: tuple[FakeApi, int]) -> None:
    fake, _ = api
    path = "/api/v1/namespaces/team/services/web"
    fake.put(
        path, {"kind": "Service", "metadata": {"name": "web"}, "spec": {"clusterIP": "10.96.0.9"}}
    )
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "team"},
        "spec": {"ports": [{"port": 80}]},
    }
    assert kube.apply([svc]) == ["service/web configured"]
    assert fake.objects[path]["spec"] == {"ports": [{"port": 80}], "clusterIP": "10.96.0.9"}


def test_apply_deletes_and_recreates_an_existing_pod(kube: Kube, api: tuple[FakeApi, int]) -> None:
    fake, _ = api
    path = "/api/v1/namespaces/team/pods/web"
    fake.put(path, _pod("web", image="nginx:1.25"))
    fake.vanish_after[path] = 2  # still there for two reads after the DELETE
    fake.canned[("DELETE", path)] = (200, _status(200, "", ""))  # deletion is graceful
    assert kube.apply([_pod("web", image="nginx:1.27")]) == ["pod/web recreated"]
    calls = [(s.method, s.path) for s in fake.seen]
    assert calls[0] == ("POST", "/api/v1/namespaces/team/pods")
    assert calls[1] == ("DELETE", path)
    assert calls[2:5] == [("GET", path)] * 3  # waited until the old pod was gone
    assert calls[5] == ("POST", "/api/v1/namespaces/team/pods")
    assert fake.objects[path]["spec"]["containers"][0]["image"] == "nginx:1.27"


def test_apply_waits_for_a_terminating_namespace(kube: Kube, api: tuple[FakeApi, int]) -> None:
    fake, _ = api
    path = "/api/v1/namespaces/team"
    fake.put(path, {**_ns("team"), "status": {"phase": "Terminating"}})
    fake.vanish_after[path] = 2
    assert kube.apply([_ns("team")]) == ["namespace/team created"]
    assert fake.objects[path].get("status") is None
    assert not any(s.method == "PUT" for s in fake.seen)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"apiVersion": "apps/v1", "kind": "ReplicationController", "metadata": {"name": "x"}},
            "document 2: kind 'ReplicationController' is not one the lab can apply",
        ),
        (
            {"apiVersion": "v1", "kind": "Deployment", "metadata": {"name": "x"}},
            "Deployment has apiVersion 'v1', expected apps/<version>",
        ),
        ({"apiVersion": "v1", "kind": "Pod", "metadata": {}}, "needs metadata.name"),
        (["not", "a", "mapping"], "document 2 is not a mapping"),
    ],
)
def test_apply_refuses_what_it_cannot_place_before_sending_anything(
    kube: Kube, api: tuple[FakeApi, int], doc: Any, message: str
) -> None:
    fake, _ = api
    with pytest.raises(LabError) as err:
        kube.apply([_ns("team"), doc], source="manifests/workload.yaml")
    assert message in err.value.message
    assert err.value.file == "manifests/workload.yaml"
    assert fake.seen == []


def test_apply_reports_the_api_servers_reason(kube: Kube, api: tuple[FakeApi, int]) -> None:
    fake, _ = api
    fake.canned[("POST", "/api/v1/namespaces/team/pods")] = (
        422,
        _status(422, "Invalid", 'Pod "p" is invalid: spec.containers: Required value'),
    )
    with pytest.raises(KubeApiError) as err:
        kube.apply([_pod("p")], source="m.yaml")
    assert err.value.status == 422 and err.value.reason == "Invalid"
    assert "pod/p: the API server refused to create it (422)" in str(err.value)
    assert "spec.containers: Required value" in str(err.value)


# -- delete ------------------------------------------------------------------------


def test_delete_waits_until_gone_and_tolerates_absence(
    kube: Kube, api: tuple[FakeApi, int]
) -> None:
    fake, _ = api
    path = "/api/v1/namespaces/team"
    fake.put(path, _ns("team"))
    fake.canned[("DELETE", path)] = (200, _ns("team"))  # namespaces terminate, slowly
    fake.vanish_after[path] = 3
    kube.delete("namespace", "", "team", wait=5)
    assert path not in fake.objects
    assert [s.method for s in fake.seen] == ["DELETE", "GET", "GET", "GET", "GET"]
    kube.delete("Pod", "team", "nothing-here")  # 404: nothing to do
    with pytest.raises(LabError, match="needs its namespace"):
        kube.delete("Pod", "", "web")
    with pytest.raises(LabError, match="does not manage 'Gadget'"):
        kube.delete("Gadget", "team", "x")


def test_delete_times_out_naming_the_object(kube: Kube, api: tuple[FakeApi, int]) -> None:
    fake, _ = api
    path = "/apis/apps/v1/namespaces/team/deployments/web"
    fake.put(path, {"kind": "Deployment", "metadata": {"name": "web"}})
    fake.canned[("DELETE", path)] = (200, {})
    with pytest.raises(LabError, match=r"deployment/web still exists 0.05s after"):
        kube.delete("Deployment", "team", "web", wait=0.05)


# -- pods ------------------------------------------------------------------------

RUNNING = {
    "metadata": {"name": "web", "namespace": "team"},
    "spec": {"nodeName": "cks-lab-test-worker", "containers": [{"name": "app"}, {"name": "sc"}]},
    "status": {
        "phase": "Running",
        "containerStatuses": [
            {
                "name": "sc",
                "state": {"running": {"startedAt": "2026-06-01T10:00:00Z"}},
                "containerID": "containerd://bbb",
            },
            {
                "name": "app",
                "state": {"running": {"startedAt": "2026-06-01T10:00:00Z"}},
                "containerID": "containerd://aaa",
            },
        ],
    },
}

APPARMOR_BLOCKED = {
    "metadata": {"name": "guarded", "namespace": "team"},
    "spec": {"nodeName": "cks-lab-test-worker", "containers": [{"name": "app"}]},
    "status": {
        "phase": "Pending",
        "containerStatuses": [
            {
                "name": "app",
                "state": {
                    "waiting": {
                        "reason": "CreateContainerError",
                        "message": "failed to generate apparmor spec opts: apparmor profile not "
                        "found k8s-deny-write",
                    }
                },
            }
        ],
    },
}

UNSCHEDULED = {
    "metadata": {"name": "big", "namespace": "team"},
    "spec": {"containers": [{"name": "app"}]},
    "status": {
        "phase": "Pending",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/2 nodes are available: 2 Insufficient memory.",
            }
        ],
    },
}


def test_pod_info_reads_container_states_in_spec_order() -> None:
    info = pod_info(RUNNING)
    assert isinstance(info, PodInfo)
    assert (info.namespace, info.name, info.node, info.phase) == (
        "team",
        "web",
        "cks-lab-test-worker",
        "Running",
    )
    assert [(c.name, c.state, c.container_id) for c in info.containers] == [
        ("app", "running", "containerd://aaa"),
        ("sc", "running", "containerd://bbb"),
    ]
    assert info.running and info.settled

    blocked = pod_info(APPARMOR_BLOCKED)
    assert (blocked.containers[0].state, blocked.containers[0].reason) == (
        "waiting",
        "CreateContainerError",
    )
    assert "apparmor profile not found" in blocked.containers[0].message
    assert not blocked.running and blocked.settled  # stuck for good: stop waiting

    pending = pod_info(UNSCHEDULED)
    assert pending.node is None and not pending.settled
    assert pending.containers[0].reason == "Unschedulable"
    assert "Insufficient memory" in pending.containers[0].message


def test_pod_info_terminated_and_creating() -> None:
    done = pod_info(
        {
            "metadata": {"name": "job", "namespace": "t"},
            "spec": {"containers": [{"name": "c"}]},
            "status": {
                "phase": "Succeeded",
                "containerStatuses": [
                    {"name": "c", "state": {"terminated": {"reason": "Completed", "exitCode": 0}}}
                ],
            },
        }
    )
    assert done.containers[0].state == "terminated" and done.settled
    creating = pod_info(
        {
            "metadata": {"name": "p", "namespace": "t"},
            "spec": {"containers": [{"name": "c"}]},
            "status": {
                "phase": "Pending",
                "containerStatuses": [
                    {"name": "c", "state": {"waiting": {"reason": "ContainerCreating"}}}
                ],
            },
        }
    )
    assert not creating.settled


def test_pod_and_pods(kube: Kube, api: tuple[FakeApi, int]) -> None:
    fake, _ = api
    fake.put(
        "/api/v1/namespaces/team/pods/web",
        {**RUNNING, "metadata": {**RUNNING["metadata"], "labels": {"app": "web"}}},
    )
    fake.put("/api/v1/namespaces/team/pods/guarded", APPARMOR_BLOCKED)
    assert kube.pod("team", "missing") is None
    web = kube.pod("team", "web")
    assert web is not None and web.node == "cks-lab-test-worker"
    got = kube.pods("team", "app=web")
    assert [p.name for p in got] == ["web"]
    assert fake.seen[-1].query == {"labelSelector": ["app=web"]}


def test_wait_pods_returns_when_every_pod_settled(kube: Kube, api: tuple[FakeApi, int]) -> None:
    fake, _ = api
    fake.put("/api/v1/namespaces/team/pods/web", RUNNING)
    fake.put("/api/v1/namespaces/team/pods/guarded", APPARMOR_BLOCKED)
    events: list[Any] = []
    got = kube.wait_pods([("team", "web"), ("team", "guarded")], timeout=5, progress=events.append)
    assert set(got) == {("team", "web"), ("team", "guarded")}
    assert got[("team", "guarded")].containers[0].reason == "CreateContainerError"
    assert [str(e) for e in events] == ["waiting for pods: 2/2 started"]
    assert (events[0].phase, events[0].done, events[0].total) == ("pods", 2, 2)


def test_wait_pods_times_out_naming_the_pods_that_did_not_start(
    kube: Kube, api: tuple[FakeApi, int]
) -> None:
    fake, _ = api
    fake.put("/api/v1/namespaces/team/pods/web", RUNNING)
    fake.put("/api/v1/namespaces/team/pods/big", UNSCHEDULED)
    events: list[Any] = []
    with pytest.raises(LabError) as err:
        kube.wait_pods(
            [("team", "web"), ("team", "big"), ("team", "ghost")],
            timeout=0.05,
            progress=events.append,
        )
    text = str(err.value)
    assert "team/big: Pending [app waiting (Unschedulable)]" in text
    assert "team/ghost: not found" in text
    assert "team/web" not in text
    assert str(events[0]) == "waiting for pods: 1/3 started"


def test_logs_asks_for_the_container_since_a_time(kube: Kube, api: tuple[FakeApi, int]) -> None:
    fake, _ = api
    fake.logs = 'Falco initialized\n{"rule":"Terminal shell in container"}\n'
    since = dt.datetime(2026, 6, 1, 12, 0, 5, 900000, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    text = kube.logs("cks-lab-falco", "falco-x7k2p", container="falco", since=since)
    assert text == fake.logs
    seen = fake.seen[-1]
    assert seen.path == "/api/v1/namespaces/cks-lab-falco/pods/falco-x7k2p/log"
    assert seen.query["container"] == ["falco"]
    # UTC, whole seconds rounded down: nothing after `since` is lost
    assert seen.query["sinceTime"] == ["2026-06-01T10:00:05Z"]


def test_logs_of_a_missing_pod_is_an_api_error(kube: Kube, api: tuple[FakeApi, int]) -> None:
    fake, _ = api
    fake.canned[("GET", "/api/v1/namespaces/x/pods/p/log")] = (
        404,
        _status(404, "NotFound", 'pods "p" not found'),
    )
    with pytest.raises(KubeApiError, match='pods "p" not found') as err:
        kube.logs("x", "p")
    assert err.value.status == 404


# -- exec ------------------------------------------------------------------------

EXIT_3 = {
    "metadata": {},
    "status": "Failure",
    "message": "command terminated with non-zero exit code: error executing command "
    "[sh -c exit 3], exit code 3",
    "reason": "NonZeroExitCode",
    "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"metadata": {}, "status": "Success"}, (0, "")),
        (EXIT_3, (3, "")),
        (
            {
                "metadata": {},
                "status": "Failure",
                "message": "error executing command in container: failed to exec in container: "
                'failed to start exec "9f2": OCI runtime exec failed: exec failed: unable to '
                'start container process: exec: "/usr/bin/cat": permission denied: unknown',
                "reason": "InternalError",
                "code": 500,
            },
            (126, "permission denied"),
        ),
        (
            {
                "metadata": {},
                "status": "Failure",
                "message": "OCI runtime exec failed: exec failed: unable to start container "
                'process: exec: "nc": executable file not found in $PATH: unknown',
                "reason": "InternalError",
            },
            (127, "executable file not found"),
        ),
        ({"status": "Failure", "reason": "NonZeroExitCode", "details": {"causes": []}}, (1, "")),
        ({"status": "Failure", "message": "boom"}, (1, "boom")),
    ],
)
def test_exec_exit_status_reads_the_error_channel(status: Any, expected: tuple[int, str]) -> None:
    code, message = exec_exit_status(json.dumps(status))
    assert code == expected[0]
    assert expected[1] in message
    if expected == (0, "") or expected == (3, ""):
        assert message == ""


def test_exec_exit_status_without_a_status() -> None:
    assert exec_exit_status("") == (-1, "the exec stream closed without an exit status")
    assert exec_exit_status("command terminated\n") == (1, "command terminated")


def test_exec_streams_output_and_the_exit_code_as_another_user(
    kube: Kube, api: tuple[FakeApi, int]
) -> None:
    fake, _ = api
    fake.exec_frames = [
        (1, b"hello "),
        (2, b"warning: x\n"),
        (1, b"world\n"),
        (3, json.dumps(EXIT_3).encode()),
    ]
    result = kube.exec(
        "team",
        "web",
        "app",
        ["sh", "-c", "echo hello world; exit 3"],
        user="jane",
        groups=["dev", "qa"],
        user_agent="cks-lab/r1/s3",
    )
    assert (result.code, result.stdout, result.stderr) == (3, "hello world\n", "warning: x\n")
    seen = fake.seen[-1]
    assert seen.path == "/api/v1/namespaces/team/pods/web/exec"
    assert seen.query["command"] == ["sh", "-c", "echo hello world; exit 3"]
    assert seen.query["container"] == ["app"] and seen.query["stdout"] == ["true"]
    assert "stdin" not in seen.query
    assert seen.headers.get_all("Impersonate-Group") == ["dev", "qa"]
    assert seen.headers["Impersonate-User"] == "jane"
    assert seen.headers["User-Agent"] == "cks-lab/r1/s3"
    assert seen.headers["Authorization"] == "Bearer lab-token"
    assert "v4.channel.k8s.io" in seen.headers["Sec-WebSocket-Protocol"]


def test_exec_with_a_terminal_sends_stdin_and_asks_for_no_separate_stderr(
    kube: Kube, api: tuple[FakeApi, int]
) -> None:
    fake, _ = api
    fake.exec_frames = [(1, b"# exit\r\n"), (3, json.dumps({"status": "Success"}).encode())]
    result = kube.exec("payments", "api", "api", ["sh"], stdin=b"exit\n", tty=True)
    assert (result.code, result.stdout) == (0, "# exit\r\n")
    seen = fake.seen[-1]
    assert seen.query["stdin"] == ["true"] and seen.query["tty"] == ["true"]
    assert "stderr" not in seen.query  # a terminal merges it into stdout
    assert fake.stdin_seen == [b"\x00exit\n"]  # channel 0, then the bytes


def test_exec_a_refused_command_reports_the_runtimes_message(
    kube: Kube, api: tuple[FakeApi, int]
) -> None:
    fake, _ = api
    message = (
        "OCI runtime exec failed: exec failed: unable to start container process: exec: "
        '"/bin/touch": permission denied: unknown'
    )
    fake.exec_frames = [
        (3, json.dumps({"status": "Failure", "message": message, "code": 500}).encode())
    ]
    result = kube.exec("team", "web", "app", ["/bin/touch", "/etc/x"])
    assert result.code == 126 and result.stdout == ""
    assert result.stderr == message + "\n"


def test_exec_refused_by_the_api_server_is_an_api_error(
    kube: Kube, api: tuple[FakeApi, int]
) -> None:
    fake, _ = api
    fake.exec_refuse = (
        403,
        _status(
            403,
            "Forbidden",
            'pods "web" is forbidden: User "jane" cannot create resource "pods/exec"',
        ),
    )
    with pytest.raises(KubeApiError) as err:
        kube.exec("team", "web", "app", ["id"], user="jane")
    assert err.value.status == 403 and err.value.reason == "Forbidden"
    assert "cannot create resource" in str(err.value)


def test_exec_needs_a_command(kube: Kube) -> None:
    with pytest.raises(LabError, match="exec needs a command"):
        kube.exec("team", "web", "app", [])


def test_exec_gives_up_after_its_timeout(kube: Kube, api: tuple[FakeApi, int]) -> None:
    fake, _ = api
    fake.exec_frames = [(1, b"still running\n")]
    fake.exec_hold = 1.0
    started = time.monotonic()
    with pytest.raises(LabError, match=r"\['sleep', '60'\] did not end within 0.2s"):
        kube.exec("team", "web", "app", ["sleep", "60"], timeout=0.2)
    assert time.monotonic() - started < 0.9


# -- real identities: a client certificate, or no credentials at all ---------------


def _client_cert(
    tmp: Path, client_ca: tuple[Any, Any], user: str, groups: tuple[str, ...]
) -> ClientCert:
    """A certificate as `kubeadm kubeconfig user` makes one: CN user, one O per group."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    ca, ca_key = client_ca
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
    subject.append(x509.NameAttribute(NameOID.COMMON_NAME, user))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(subject))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    name = hashlib.sha256(user.encode()).hexdigest()[:12]
    cert_file, key_file = tmp / f"{name}.crt", tmp / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    fingerprint = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    return ClientCert(user, groups, cert_file, key_file, fingerprint)


def test_request_with_a_client_certificate_authenticates_as_its_user(
    kube: Kube, api: tuple[FakeApi, int], client_ca: tuple[Any, Any], tmp_path: Path
) -> None:
    fake, _ = api
    proxy = _client_cert(tmp_path, client_ca, "system:kube-proxy", ("system:authenticated",))
    node = _client_cert(
        tmp_path, client_ca, "system:node:cks-lab-worker", ("system:nodes", "system:authenticated")
    )
    path = "/apis/discovery.k8s.io/v1/endpointslices"
    fake.canned[("GET", path)] = (200, {"kind": "EndpointSliceList", "items": []})
    status, _ = kube.request("GET", path, credentials=proxy, user_agent="cks-lab/r1/s1")
    assert status == 200
    seen = fake.seen[-1]
    assert seen.peer == [("organizationName", "system:authenticated"),
                         ("commonName", "system:kube-proxy")]  # fmt: skip
    # the certificate is the identity: no impersonation, no lab token beside it
    assert seen.headers.get_all("Impersonate-User") is None
    assert seen.headers.get_all("Impersonate-Group") is None
    assert seen.headers.get_all("Authorization") is None
    assert seen.headers["User-Agent"] == "cks-lab/r1/s1"
    # another user's call gets its own certificate, the lab's calls still none
    kube.request("GET", path, credentials=node)
    assert ("commonName", "system:node:cks-lab-worker") in (fake.seen[-1].peer or [])
    assert ("organizationName", "system:nodes") in (fake.seen[-1].peer or [])
    kube.request("GET", path, credentials=proxy)
    assert ("commonName", "system:kube-proxy") in (fake.seen[-1].peer or [])
    kube.request("GET", path)
    assert fake.seen[-1].peer is None
    assert fake.seen[-1].headers["Authorization"] == "Bearer lab-token"


def test_an_anonymous_request_carries_no_credentials(
    api: tuple[FakeApi, int],
    tls: tuple[bytes, Path, Path],
    client_ca: tuple[Any, Any],
    tmp_path: Path,
) -> None:
    # kind's admin authenticates with a client certificate: anonymous must drop it
    fake, port = api
    admin = _client_cert(tmp_path, client_ca, "kubernetes-admin", ("kubeadm:cluster-admins",))
    path = _kubeconfig(tmp_path, tls[0], port)
    data = yaml.safe_load(path.read_text())
    data["users"][0]["user"] = {
        "client-certificate-data": base64.b64encode(admin.cert_file.read_bytes()).decode(),
        "client-key-data": base64.b64encode(admin.key_file.read_bytes()).decode(),
    }
    path.write_text(yaml.safe_dump(data))
    kube = Kube(path, CLUSTER)
    assert kube.request("GET", "/readyz") == (200, "ok")
    assert ("commonName", "kubernetes-admin") in (fake.seen[-1].peer or [])
    assert kube.request("GET", "/readyz", anonymous=True, user_agent="cks-lab/r1/s9") == (
        200,
        "ok",
    )
    seen = fake.seen[-1]
    assert seen.peer is None
    assert seen.headers.get_all("Authorization") is None
    assert seen.headers.get_all("Impersonate-User") is None
    assert seen.headers["User-Agent"] == "cks-lab/r1/s9"


def test_a_token_kubeconfig_sends_no_token_anonymously(
    kube: Kube, api: tuple[FakeApi, int]
) -> None:
    fake, _ = api
    kube.request("GET", "/readyz", anonymous=True)
    assert fake.seen[-1].headers.get_all("Authorization") is None
    assert fake.seen[-1].peer is None


def test_credentials_and_impersonation_do_not_mix(
    kube: Kube, api: tuple[FakeApi, int], client_ca: tuple[Any, Any], tmp_path: Path
) -> None:
    fake, _ = api
    cert = _client_cert(tmp_path, client_ca, "jane", ("dev",))
    with pytest.raises(LabError, match="not both"):
        kube.request("GET", "/api", credentials=cert, user="bob")
    with pytest.raises(LabError, match="not both"):
        kube.request("GET", "/api", anonymous=True, groups=["dev"])
    with pytest.raises(LabError, match="no credentials"):
        kube.request("GET", "/api", credentials=cert, anonymous=True)
    with pytest.raises(LabError, match="not both"):
        kube.exec("team", "web", "app", ["id"], credentials=cert, user="bob")
    assert fake.seen == []


def test_exec_with_a_client_certificate_authenticates_as_its_user(
    kube: Kube, api: tuple[FakeApi, int], client_ca: tuple[Any, Any], tmp_path: Path
) -> None:
    fake, _ = api
    fake.exec_frames = [(1, b"ok\n"), (3, json.dumps({"status": "Success"}).encode())]
    cert = _client_cert(tmp_path, client_ca, "dev@example.com", ("developers",))
    result = kube.exec("team", "web", "app", ["id"], credentials=cert, user_agent="cks-lab/r1/s4")
    assert (result.code, result.stdout) == (0, "ok\n")
    seen = fake.seen[-1]
    assert seen.path == "/api/v1/namespaces/team/pods/web/exec"
    assert seen.peer == [("organizationName", "developers"), ("commonName", "dev@example.com")]
    assert seen.headers.get_all("Impersonate-User") is None
    assert seen.headers.get_all("Authorization") is None
    assert seen.headers["User-Agent"] == "cks-lab/r1/s4"
    kube.exec("team", "web", "app", ["id"], anonymous=True)
    assert fake.seen[-1].peer is None and fake.seen[-1].headers.get_all("Authorization") is None


def test_ca_fingerprint_is_the_kubeconfigs_ca(kube: Kube, tls: tuple[bytes, Path, Path]) -> None:
    der = ssl.PEM_cert_to_DER_cert(tls[0].decode())
    assert kube.ca_fingerprint() == hashlib.sha256(der).hexdigest()
