"""Who an attack step's request really comes from on a kind cluster: a client
certificate of the step's own user, issued by the cluster's CA.

Impersonation is not enough: kube-apiserver runs its audit filter between
authentication and impersonation, so the audit policy sees the lab's admin, not
the impersonated user (kubernetes/kubernetes#120677, tested by #135607). A rule
for `users: [system:kube-proxy]` or `userGroups: [system:nodes]` would never match.
With a certificate whose CN is the user and whose O entries are the groups (the
x509 authenticator's mapping), the apiserver authenticates the step's user itself.

The certificate is issued on the control-plane node by `kubeadm kubeconfig user`
with kind's own kubeadm configuration (kind writes it to /kind/kubeadm.conf on
every node), so the CA key never leaves the node. Certificates are cached in the
cluster's folder (users/, 0600), so later checks reuse them; `cks-lab down`
removes the folder and with it the cache.

An anonymous step sends no credentials at all: kubeadm leaves anonymous
authentication on, and such a request is system:anonymous in system:unauthenticated.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import ssl
import time
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lab.errors import LabError
from lab.fsutil import atomic_write_bytes, read_bytes_nofollow
from lab.yamlsafe import parse_one

if TYPE_CHECKING:
    from lab.kind.nodes import ExecResult

KUBEADM_CONFIG = "/kind/kubeadm.conf"
# kind's admin kubeconfig (kubeadm >= 1.29): this identity is the lab's own client
ADMIN_USER = "kubernetes-admin"
ADMIN_GROUPS = ("kubeadm:cluster-admins", "system:authenticated")
ANONYMOUS_USER = "system:anonymous"
ANONYMOUS_GROUP = "system:unauthenticated"
AUTHENTICATED_GROUP = "system:authenticated"  # the apiserver adds it to every cert user
USERS_DIR = "users"
# kubeadm's certificates are valid for a year; a cached one is replaced well before.
MAX_AGE_SECONDS = 90 * 24 * 3600
MAX_NAME = 512
ISSUE_TIMEOUT = 60.0
_MAX_CACHE_BYTES = 64 << 10


class NodeExec(Protocol):
    def exec(
        self,
        node: str,
        argv: Sequence[str],
        *,
        timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
        user: str = "root",
    ) -> ExecResult: ...


@dataclass(frozen=True)
class ClientCert:
    """A user's client certificate and key, as files ssl can load (0600)."""

    user: str
    groups: tuple[str, ...]
    cert_file: Path
    key_file: Path
    fingerprint: str  # sha256 of the certificate (DER): one per issued certificate


@dataclass(frozen=True)
class Identity:
    """How one request authenticates: a client certificate, no credentials at all
    (anonymous), or — neither — the lab's own admin credentials."""

    credentials: ClientCert | None = None
    anonymous: bool = False

    @property
    def admin(self) -> bool:
        return self.credentials is None and not self.anonymous


def check_name(value: str, what: str) -> str:
    """A user or group name kubeadm can put in a certificate as it is."""
    if not isinstance(value, str) or not value.strip():
        raise LabError(f"{what} name must not be empty")
    if len(value) > MAX_NAME:
        raise LabError(f"{what} name is longer than {MAX_NAME} characters: {value[:40]!r}...")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in value):
        raise LabError(f"{what} name {value!r} holds a control character")
    if what == "group" and ("," in value or '"' in value):
        # kubeadm's --org is a comma-separated list flag: "a,b" would become two groups
        raise LabError(
            f"group name {value!r} holds a comma or a quote, which kubeadm's --org splits"
        )
    return value


def kubeadm_argv(user: str, groups: Sequence[str]) -> list[str]:
    """The command that prints a kubeconfig for ``user`` in ``groups`` (one --org each)."""
    check_name(user, "user")
    argv = ["kubeadm", "kubeconfig", "user", f"--config={KUBEADM_CONFIG}", f"--client-name={user}"]
    argv += [f"--org={check_name(g, 'group')}" for g in groups]
    return argv


def _pem(data: Any, field: str, marker: str) -> bytes:
    if not isinstance(data, str) or not data:
        raise LabError(f"kubeadm's kubeconfig has no {field}")
    try:
        pem = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise LabError(f"kubeadm's kubeconfig: {field} is not base64") from None
    if not pem.isascii() or f"-----BEGIN {marker}".encode() not in pem:
        raise LabError(f"kubeadm's kubeconfig: {field} is not PEM")
    return pem


def _der_sha256(cert_pem: bytes, field: str) -> str:
    try:
        der = ssl.PEM_cert_to_DER_cert(cert_pem.decode("ascii"))
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise LabError(f"kubeadm's kubeconfig: {field} is not a PEM certificate") from None
    return hashlib.sha256(der).hexdigest()


@dataclass(frozen=True)
class IssuedCert:
    cert_pem: bytes
    key_pem: bytes
    ca_sha256: str  # of the CA certificate that signed it (DER)


def parse_kubeconfig(text: str) -> IssuedCert:
    """The client certificate, key and CA of `kubeadm kubeconfig user`'s output.

    Its server is the in-cluster name of the control plane (unreachable from the
    host) and is ignored: the lab keeps its own server URL and CA.
    """
    doc = parse_one(text, "kubeadm kubeconfig user")
    data = doc.data if isinstance(doc.data, dict) else {}
    users = data.get("users")
    clusters = data.get("clusters")
    if not isinstance(users, list) or len(users) != 1 or not isinstance(users[0], dict):
        raise LabError("kubeadm's kubeconfig does not hold exactly one user")
    if not isinstance(clusters, list) or len(clusters) != 1 or not isinstance(clusters[0], dict):
        raise LabError("kubeadm's kubeconfig does not hold exactly one cluster")
    user = users[0].get("user") or {}
    cluster = clusters[0].get("cluster") or {}
    if not isinstance(user, dict) or not isinstance(cluster, dict):
        raise LabError("kubeadm's kubeconfig has no credentials")
    cert = _pem(user.get("client-certificate-data"), "client-certificate-data", "CERTIFICATE")
    _der_sha256(cert, "client-certificate-data")
    key = _pem(user.get("client-key-data"), "client-key-data", "")
    if b"PRIVATE KEY-----" not in key:
        raise LabError("kubeadm's kubeconfig: client-key-data is not a PEM private key")
    ca = _pem(
        cluster.get("certificate-authority-data"), "certificate-authority-data", "CERTIFICATE"
    )
    return IssuedCert(cert, key, _der_sha256(ca, "certificate-authority-data"))


def ca_sha256(ca_pem: bytes) -> str:
    """The fingerprint a cache entry is checked against: sha256 of the CA's DER."""
    return _der_sha256(ca_pem, "the CA certificate")


def cache_key(user: str, groups: Sequence[str]) -> str:
    return hashlib.sha256(json.dumps([user, list(groups)]).encode()).hexdigest()


def is_admin(user: str, groups: Sequence[str]) -> bool:
    """The identity kind's admin kubeconfig already has: no certificate needed."""
    return user == ADMIN_USER and set(groups) | {AUTHENTICATED_GROUP} == set(ADMIN_GROUPS)


def identity(
    user: str | None, groups: Sequence[str] = (), certs: UserCerts | None = None
) -> Identity:
    """How a request as ``user`` in ``groups`` authenticates; None: anonymous. A user
    who is neither anonymous nor kind's admin needs ``certs`` to issue its certificate."""
    if user is None or user == ANONYMOUS_USER:
        extra = [g for g in groups if g != ANONYMOUS_GROUP]
        if extra:
            raise LabError(
                f"an anonymous request is only in group {ANONYMOUS_GROUP}; "
                f"it cannot be in {', '.join(extra)}"
            )
        return Identity(anonymous=True)
    if is_admin(user, groups):
        return Identity()
    if certs is None:
        raise LabError(f"no control-plane node to issue a client certificate for {user}")
    return Identity(credentials=certs.client_cert(user, groups))


class UserCerts:
    """Client certificates of one lab cluster, issued on its control-plane node."""

    def __init__(
        self,
        nodes: NodeExec,
        node: str,
        cluster_dir: Path,
        *,
        trusted_ca: str | None = None,
        clock: Any = time.time,
    ) -> None:
        """``node``: the control-plane node (as ``nodes`` names it). ``trusted_ca``:
        sha256 of the CA the lab's kubeconfig trusts; a certificate of another CA (a
        cluster recreated under the same name) is issued again."""
        self.nodes = nodes
        self.node = node
        self.cluster_dir = Path(cluster_dir)
        self.trusted_ca = trusted_ca
        self.clock = clock

    @property
    def folder(self) -> Path:
        return self.cluster_dir / USERS_DIR

    def identity(self, user: str | None, groups: Sequence[str] = ()) -> Identity:
        return identity(user, groups, self)

    def client_cert(self, user: str, groups: Sequence[str]) -> ClientCert:
        """The cached certificate of (user, groups), issued on the node when missing,
        too old, or signed by a CA the lab does not trust."""
        check_name(user, "user")
        groups = tuple(check_name(g, "group") for g in groups)
        key = cache_key(user, groups)
        entry = self._cached(key, user, groups)
        if entry is None:
            entry = self._issue(user, groups)
            self._write(f"{key}.json", (json.dumps(entry, indent=2) + "\n").encode())
        cert_pem, key_pem = entry["cert"].encode(), entry["key"].encode()
        cert_file, key_file = self.folder / f"{key}.crt", self.folder / f"{key}.key"
        for path, data in ((cert_file, cert_pem), (key_file, key_pem)):
            if self._read(path) != data:
                self._write(path.name, data)
        return ClientCert(user, groups, cert_file, key_file, _der_sha256(cert_pem, "cached"))

    # -- the cache ----------------------------------------------------------------

    def _read(self, path: Path) -> bytes | None:
        try:
            return read_bytes_nofollow(path, _MAX_CACHE_BYTES)
        except (OSError, LabError):
            return None

    def _write(self, name: str, data: bytes) -> None:
        try:
            atomic_write_bytes(self.folder / name, data, 0o600, within=self.cluster_dir)
            os.chmod(self.folder, 0o700)
        except OSError as err:
            raise LabError(
                f"cannot store a user certificate: {err.strerror or err}", file=str(self.folder)
            ) from None

    def _cached(self, key: str, user: str, groups: tuple[str, ...]) -> dict[str, Any] | None:
        raw = self._read(self.folder / f"{key}.json")
        if raw is None:
            return None
        try:
            entry = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(entry, dict):
            return None
        fresh = isinstance(entry.get("issued_at"), int | float) and (
            0 <= self.clock() - entry["issued_at"] < MAX_AGE_SECONDS
        )
        same = entry.get("user") == user and entry.get("groups") == list(groups)
        trusted = self.trusted_ca is None or entry.get("ca_sha256") == self.trusted_ca
        texts = all(isinstance(entry.get(k), str) and entry[k] for k in ("cert", "key"))
        return entry if fresh and same and trusted and texts else None

    def _issue(self, user: str, groups: tuple[str, ...]) -> dict[str, Any]:
        argv = kubeadm_argv(user, groups)
        r = self.nodes.exec(self.node, argv, timeout=ISSUE_TIMEOUT)
        if r.code != 0:
            tail = " ".join((r.stderr or r.stdout).strip().splitlines()[-3:])
            raise LabError(
                f"cannot issue a client certificate for {user} on the control plane "
                f"(kubeadm exited {r.code}): {tail or 'no output'}"
            )
        issued = parse_kubeconfig(r.stdout)
        if self.trusted_ca is not None and issued.ca_sha256 != self.trusted_ca:
            raise LabError(
                f"the certificate issued for {user} is signed by another CA than the "
                "cluster's kubeconfig trusts; recreate the cluster (`cks-lab down`, `cks-lab up`)"
            )
        return {
            "user": user,
            "groups": list(groups),
            "cert": issued.cert_pem.decode("ascii"),
            "key": issued.key_pem.decode("ascii"),
            "ca_sha256": issued.ca_sha256,
            "issued_at": self.clock(),
        }
