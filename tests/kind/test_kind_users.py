"""lab.kind.users: client certificates for a scenario's users, issued by kubeadm on
the control-plane node and cached in the cluster's folder.

The node is a fake that answers `kubeadm kubeconfig user` with
samples/kubeadm-kubeconfig-user.yaml (kubeadm's output shape, test-only PEM blobs)."""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from lab.errors import LabError
from lab.kind.nodes import ExecResult
from lab.kind.users import (
    KUBEADM_CONFIG,
    MAX_AGE_SECONDS,
    Identity,
    UserCerts,
    cache_key,
    identity,
    kubeadm_argv,
    parse_kubeconfig,
)

SAMPLE = Path(__file__).parent / "samples" / "kubeadm-kubeconfig-user.yaml"
T0 = 1_764_237_600.0


def _b64pem(kubeconfig: str, *path: str | int) -> bytes:
    node: object = yaml.safe_load(kubeconfig)
    for part in path:
        node = node[part]  # type: ignore[index]
    return base64.b64decode(str(node))


def _sha(pem: bytes) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem.decode())).hexdigest()


SAMPLE_TEXT = SAMPLE.read_text()
SAMPLE_CERT = _b64pem(SAMPLE_TEXT, "users", 0, "user", "client-certificate-data")
SAMPLE_KEY = _b64pem(SAMPLE_TEXT, "users", 0, "user", "client-key-data")
SAMPLE_CA = _b64pem(SAMPLE_TEXT, "clusters", 0, "cluster", "certificate-authority-data")


def _other_ca_kubeconfig() -> str:
    """The sample as a cluster recreated under the same name would print it."""
    other = b"-----BEGIN CERTIFICATE-----\nT1RIRVItQ0EgdGVzdCBvbmx5\n-----END CERTIFICATE-----\n"
    data = yaml.safe_load(SAMPLE_TEXT)
    data["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(other).decode()
    return yaml.safe_dump(data)


@dataclass
class Node:
    """The control-plane node: answers kubeadm, records every command."""

    stdout: str = SAMPLE_TEXT
    code: int = 0
    stderr: str = ""
    calls: list[tuple[str, list[str]]] = field(default_factory=list)

    def exec(
        self,
        node: str,
        argv: Sequence[str],
        *,
        timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
        user: str = "root",
    ) -> ExecResult:
        self.calls.append((node, list(argv)))
        return ExecResult(self.code, self.stdout, self.stderr)


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def certs(node: Node, tmp_path: Path, **kw: object) -> UserCerts:
    return UserCerts(node, "controlplane", tmp_path, clock=kw.pop("clock", Clock()), **kw)  # type: ignore[arg-type]


# -- the command --------------------------------------------------------------------


def test_kubeadm_argv_one_org_per_group_and_kinds_config() -> None:
    assert kubeadm_argv("system:node:cks-lab-worker", ["system:nodes", "system:authenticated"]) == [
        "kubeadm",
        "kubeconfig",
        "user",
        f"--config={KUBEADM_CONFIG}",
        "--client-name=system:node:cks-lab-worker",
        "--org=system:nodes",
        "--org=system:authenticated",
    ]
    assert KUBEADM_CONFIG == "/kind/kubeadm.conf"
    # no groups: no --org at all; a name starting with "-" stays the flag's value
    assert kubeadm_argv("-x", [])[3:] == [f"--config={KUBEADM_CONFIG}", "--client-name=-x"]


@pytest.mark.parametrize(
    ("user", "groups", "match"),
    [
        ("jane\n--org=system:masters", [], "control character"),
        ("jane\x00", [], "control character"),
        ("jane\u202e", [], "control character"),  # a bidi override: looks like another name
        ("", [], "must not be empty"),
        ("  ", [], "must not be empty"),
        ("jane", ["dev,system:masters"], "comma"),  # --org would make it two groups
        ("jane", ['"dev"'], "quote"),
        ("jane", ["dev\r"], "control character"),
        ("j" * 513, [], "longer than"),
    ],
)
def test_bad_names_are_refused_before_anything_runs(
    tmp_path: Path, user: str, groups: list[str], match: str
) -> None:
    node = Node()
    with pytest.raises(LabError, match=match):
        certs(node, tmp_path).client_cert(user, groups)
    assert node.calls == []
    assert not (tmp_path / "users").exists()


# -- kubeadm's output ------------------------------------------------------------------


def test_parse_takes_the_certificate_key_and_ca_not_the_server() -> None:
    issued = parse_kubeconfig(SAMPLE_TEXT)
    assert issued.cert_pem == SAMPLE_CERT and issued.cert_pem.startswith(b"-----BEGIN CERTIFICATE")
    assert issued.key_pem == SAMPLE_KEY and b"PRIVATE KEY-----" in issued.key_pem
    assert issued.ca_sha256 == _sha(SAMPLE_CA)
    assert not hasattr(issued, "server")  # kind's in-cluster name: never used


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d.pop("users"), "exactly one user"),
        (lambda d: d["users"].append(d["users"][0]), "exactly one user"),
        (lambda d: d["users"][0]["user"].pop("client-key-data"), "no client-key-data"),
        (lambda d: d["users"][0]["user"].update({"client-certificate-data": "%%%"}), "not base64"),
        (
            lambda d: d["users"][0]["user"].update(
                {"client-key-data": base64.b64encode(b"hello").decode()}
            ),
            "not PEM",
        ),
        (lambda d: d["clusters"][0]["cluster"].pop("certificate-authority-data"), "no certif"),
    ],
)
def test_parse_refuses_what_is_not_kubeadms_kubeconfig(edit, match: str) -> None:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(SAMPLE_TEXT)
    edit(data)
    with pytest.raises(LabError, match=match):
        parse_kubeconfig(yaml.safe_dump(data))


# -- issuing and caching ----------------------------------------------------------------


def test_a_certificate_is_issued_once_then_reused_from_the_cluster_folder(tmp_path: Path) -> None:
    node = Node()
    groups = ["system:nodes", "system:authenticated"]
    first = certs(node, tmp_path).client_cert("system:node:cks-lab-worker", groups)
    assert node.calls == [("controlplane", kubeadm_argv("system:node:cks-lab-worker", groups))]
    assert (first.user, first.groups) == ("system:node:cks-lab-worker", tuple(groups))
    assert first.cert_file.read_bytes() == SAMPLE_CERT
    assert first.key_file.read_bytes() == SAMPLE_KEY
    assert first.fingerprint == _sha(SAMPLE_CERT)
    folder = tmp_path / "users"
    key = cache_key("system:node:cks-lab-worker", groups)
    entry = json.loads((folder / f"{key}.json").read_text())
    assert entry["user"] == "system:node:cks-lab-worker" and entry["groups"] == groups
    assert entry["ca_sha256"] == _sha(SAMPLE_CA) and entry["issued_at"] == T0
    assert first.cert_file.parent == folder
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700

    # a later check (another process: a new UserCerts) runs nothing on the node
    again = certs(node, tmp_path).client_cert("system:node:cks-lab-worker", groups)
    assert again == first and len(node.calls) == 1
    # its files are put back when something removed them
    first.key_file.unlink()
    assert certs(node, tmp_path).client_cert("system:node:cks-lab-worker", groups) == first
    assert first.key_file.read_bytes() == SAMPLE_KEY and len(node.calls) == 1
    # other groups are another identity: another certificate
    certs(node, tmp_path).client_cert("system:node:cks-lab-worker", ["system:nodes"])
    assert len(node.calls) == 2


def test_a_certificate_of_another_ca_or_too_old_is_issued_again(tmp_path: Path) -> None:
    node = Node()
    clock = Clock()
    ca = _sha(SAMPLE_CA)
    certs(node, tmp_path, trusted_ca=ca, clock=clock).client_cert("jane", ["dev"])
    certs(node, tmp_path, trusted_ca=ca, clock=clock).client_cert("jane", ["dev"])
    assert len(node.calls) == 1
    clock.now = T0 + MAX_AGE_SECONDS + 1
    certs(node, tmp_path, trusted_ca=ca, clock=clock).client_cert("jane", ["dev"])
    assert len(node.calls) == 2
    # the cluster was recreated under the same name: the lab's kubeconfig trusts the
    # new CA, the cached certificate (old CA) is worthless and issued again
    node.stdout = _other_ca_kubeconfig()
    new_ca = hashlib.sha256(b"OTHER-CA test only").hexdigest()  # the DER inside its PEM
    cert = certs(node, tmp_path, trusted_ca=new_ca, clock=clock).client_cert("jane", ["dev"])
    assert len(node.calls) == 3 and cert.cert_file.read_bytes() == SAMPLE_CERT
    entry = json.loads((tmp_path / "users" / f"{cache_key('jane', ['dev'])}.json").read_text())
    assert entry["ca_sha256"] == new_ca
    # a node whose CA the lab does not trust issues nothing the lab keeps
    with pytest.raises(LabError, match="signed by another CA"):
        certs(node, tmp_path, trusted_ca=ca, clock=clock).client_cert("jane", ["dev"])
    assert len(node.calls) == 4
    entry = json.loads((tmp_path / "users" / f"{cache_key('jane', ['dev'])}.json").read_text())
    assert entry["ca_sha256"] == new_ca


def test_a_corrupt_cache_entry_is_replaced(tmp_path: Path) -> None:
    node = Node()
    folder = tmp_path / "users"
    folder.mkdir()
    (folder / f"{cache_key('jane', ['dev'])}.json").write_text("{not json")
    cert = certs(node, tmp_path).client_cert("jane", ["dev"])
    assert len(node.calls) == 1 and cert.cert_file.read_bytes() == SAMPLE_CERT


def test_kubeadm_failing_says_why(tmp_path: Path) -> None:
    node = Node(stdout="", code=1, stderr="error: open /kind/kubeadm.conf: no such file\n")
    with pytest.raises(LabError, match=r"kubeadm exited 1\): error: open /kind/kubeadm.conf"):
        certs(node, tmp_path).client_cert("jane", ["dev"])
    assert not (tmp_path / "users").exists() or not any((tmp_path / "users").iterdir())


# -- who needs a certificate ----------------------------------------------------------------


def test_anonymous_sends_no_credentials_and_needs_no_node(tmp_path: Path) -> None:
    node = Node()
    c = certs(node, tmp_path)
    assert c.identity(None) == Identity(anonymous=True)
    assert c.identity("system:anonymous", ["system:unauthenticated"]) == Identity(anonymous=True)
    assert identity("system:anonymous", []).anonymous
    with pytest.raises(LabError, match="cannot be in system:masters"):
        c.identity("system:anonymous", ["system:masters"])
    assert node.calls == []


def test_kinds_admin_is_the_labs_own_client(tmp_path: Path) -> None:
    node = Node()
    c = certs(node, tmp_path)
    admin = c.identity("kubernetes-admin", ["kubeadm:cluster-admins", "system:authenticated"])
    assert admin.admin and admin.credentials is None and not admin.anonymous
    assert c.identity("kubernetes-admin", ["kubeadm:cluster-admins"]).admin
    assert node.calls == []
    # the same name in other groups is someone else: a certificate of its own
    other = c.identity("kubernetes-admin", ["developers"])
    assert other.credentials is not None and other.credentials.groups == ("developers",)
    assert len(node.calls) == 1


def test_a_user_without_an_issuer_is_refused() -> None:
    with pytest.raises(LabError, match="no control-plane node"):
        identity("system:kube-proxy", ["system:authenticated"])
