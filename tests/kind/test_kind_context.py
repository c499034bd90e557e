"""The kubeconfig guard: only a local lab kind cluster's context, picked by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.errors import LabError
from lab.kind.context import LAB_CONTEXT_PREFIX, assert_lab_context, lab_context

# As `kind get kubeconfig --name cks-lab` prints it (certificate data shortened).
KIND_KUBECONFIG = """\
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSURCVENDQWUyZ0F3SUJBZ0lJ
    server: https://127.0.0.1:41235
  name: kind-cks-lab
contexts:
- context:
    cluster: kind-cks-lab
    user: kind-cks-lab
  name: kind-cks-lab
current-context: kind-cks-lab
kind: Config
preferences: {}
users:
- name: kind-cks-lab
  user:
    client-certificate-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSURLVENDQWhHZ0F3SUJBZ0lJ
    client-key-data: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFb3dJQkFBS0NBUUVBdWhq
"""

PROD = {
    "cluster": {"server": "https://k8s.prod.example.com:6443"},
    "name": "prod",
}


def _write(tmp_path: Path, data: dict[str, Any] | str) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def _config() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(KIND_KUBECONFIG)
    return data


def test_kind_kubeconfig_gives_a_kubeconfig_with_only_the_lab_context(tmp_path: Path) -> None:
    got = lab_context(_write(tmp_path, KIND_KUBECONFIG), "cks-lab")
    full = _config()
    assert got == {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": full["clusters"],
        "contexts": full["contexts"],
        "users": full["users"],
        "current-context": "kind-cks-lab",
    }
    assert got["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:41235"


def test_the_current_context_is_irrelevant_the_context_is_picked_by_name(tmp_path: Path) -> None:
    data = _config()
    data["clusters"].insert(0, PROD)
    data["users"].insert(0, {"name": "prod-admin", "user": {"token": "secret"}})
    data["contexts"].insert(
        0, {"name": "prod", "context": {"cluster": "prod", "user": "prod-admin"}}
    )
    data["current-context"] = "prod"
    got = lab_context(_write(tmp_path, data), "cks-lab")
    assert got["current-context"] == "kind-cks-lab"
    assert [c["name"] for c in got["clusters"]] == ["kind-cks-lab"]
    assert [u["name"] for u in got["users"]] == ["kind-cks-lab"]
    assert "prod" not in yaml.safe_dump(got)


def test_a_second_lab_cluster_is_picked_by_its_own_name(tmp_path: Path) -> None:
    text = KIND_KUBECONFIG.replace("kind-cks-lab", "kind-cks-lab-exam").replace("41235", "40001")
    got = lab_context(_write(tmp_path, text), "cks-lab-exam")
    assert got["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:40001"
    with pytest.raises(LabError, match="context 'kind-cks-lab' not found"):
        lab_context(_write(tmp_path, text), "cks-lab")


@pytest.mark.parametrize("server", ["https://localhost:6443", "https://[::1]:34567"])
def test_other_local_addresses_are_accepted(tmp_path: Path, server: str) -> None:
    text = KIND_KUBECONFIG.replace("https://127.0.0.1:41235", server)
    assert lab_context(_write(tmp_path, text), "cks-lab")["clusters"][0]["cluster"]["server"] == (
        server
    )


@pytest.mark.parametrize(
    "server",
    [
        "https://k8s.prod.example.com:6443",
        "https://10.0.0.5:6443",
        "https://0.0.0.0:6443",
        "https://127.0.0.1.nip.io:6443",
        "http://127.0.0.1:41235",  # kind serves TLS; plain http is something else
        "https://127.0.0.1",  # kind always publishes a port
        "https://127.0.0.1:99999",
        "https://[::1:6443",
        "127.0.0.1:41235",
    ],
)
def test_a_lab_named_context_pointing_elsewhere_is_refused(tmp_path: Path, server: str) -> None:
    text = KIND_KUBECONFIG.replace("https://127.0.0.1:41235", server)
    with pytest.raises(LabError, match="not a local kind API server") as err:
        lab_context(_write(tmp_path, text), "cks-lab")
    assert repr(server) in err.value.message
    assert err.value.file == str(tmp_path / "kubeconfig")
    assert err.value.line == 5  # the server line


@pytest.mark.parametrize("cluster", ["prod", "kind-cks-lab", "cks-lab_x", "default"])
def test_non_lab_cluster_names_are_refused_before_reading(tmp_path: Path, cluster: str) -> None:
    # The file does not exist: the name is refused before anything is read.
    with pytest.raises(LabError, match=f"refusing cluster '{cluster}'"):
        lab_context(tmp_path / "missing", cluster)


def test_missing_context_names_what_is_there(tmp_path: Path) -> None:
    data = _config()
    data["contexts"] = [{"name": "prod", "context": {"cluster": "prod", "user": "x"}}]
    with pytest.raises(LabError, match=r"'kind-cks-lab' not found; contexts here: \['prod'\]"):
        lab_context(_write(tmp_path, data), "cks-lab")


def test_context_pointing_at_a_missing_cluster_entry_is_refused(tmp_path: Path) -> None:
    data = _config()
    data["contexts"][0]["context"]["cluster"] = "prod"
    with pytest.raises(LabError, match="cluster of context 'kind-cks-lab', 'prod' not found"):
        lab_context(_write(tmp_path, data), "cks-lab")


def test_context_pointing_at_a_missing_user_entry_is_refused(tmp_path: Path) -> None:
    data = _config()
    data["users"] = []
    with pytest.raises(LabError, match="user of context 'kind-cks-lab', 'kind-cks-lab' not found"):
        lab_context(_write(tmp_path, data), "cks-lab")


def test_context_without_a_user_is_refused(tmp_path: Path) -> None:
    data = _config()
    del data["contexts"][0]["context"]["user"]
    with pytest.raises(LabError, match="does not name both a cluster and a user"):
        lab_context(_write(tmp_path, data), "cks-lab")


def test_a_lab_context_reaching_prod_through_its_cluster_entry_is_refused(tmp_path: Path) -> None:
    # The context has the right name but its cluster entry is production's.
    data = _config()
    data["clusters"].append(PROD)
    data["contexts"][0]["context"]["cluster"] = "prod"
    with pytest.raises(LabError, match="'https://k8s.prod.example.com:6443', not a local"):
        lab_context(_write(tmp_path, data), "cks-lab")


def test_duplicate_context_is_refused_as_ambiguous(tmp_path: Path) -> None:
    data = _config()
    data["contexts"].append(
        {"name": "kind-cks-lab", "context": {"cluster": "prod", "user": "kind-cks-lab"}}
    )
    with pytest.raises(LabError, match="defined 2 times") as err:
        lab_context(_write(tmp_path, data), "cks-lab")
    assert err.value.line is not None


def test_proxy_and_exec_plugins_are_refused(tmp_path: Path) -> None:
    data = _config()
    data["clusters"][0]["cluster"]["proxy-url"] = "http://proxy.example.com:3128"
    with pytest.raises(LabError, match="proxy-url"):
        lab_context(_write(tmp_path, data), "cks-lab")
    data = _config()
    data["users"][0]["user"] = {"exec": {"command": "aws", "apiVersion": "x"}}
    with pytest.raises(LabError, match="'exec' plugin"):
        lab_context(_write(tmp_path, data), "cks-lab")


@pytest.mark.parametrize(
    "change",
    [
        {"certificate-authority-data": None},  # no CA: anything on the port would do
        {"insecure-skip-tls-verify": True},  # verification off, CA or not
    ],
)
def test_a_cluster_without_its_ca_pinned_is_refused(tmp_path: Path, change: dict[str, Any]) -> None:
    data = _config()
    body = data["clusters"][0]["cluster"]
    for key, value in change.items():
        if value is None:
            body.pop(key)
        else:
            body[key] = value
    with pytest.raises(LabError, match="no certificate authority"):
        lab_context(_write(tmp_path, data), "cks-lab")


def test_huge_kubeconfig_is_a_located_error(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(KIND_KUBECONFIG + "#" * (2 * 1024 * 1024))
    with pytest.raises(LabError, match="too large") as err:
        lab_context(path, "cks-lab")
    assert err.value.file == str(path)


def test_binary_kubeconfig_is_a_located_error(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00")
    with pytest.raises(LabError, match="binary") as err:
        lab_context(path, "cks-lab")
    assert err.value.file == str(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- just\n- a list\n", "expected a kubeconfig mapping"),
        ("apiVersion: v1\nkind: Config\n", "no contexts list"),
        ("contexts: [\n", "invalid YAML"),
    ],
)
def test_not_a_kubeconfig_is_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(LabError, match=message):
        lab_context(_write(tmp_path, text), "cks-lab")


def test_assert_lab_context() -> None:
    assert LAB_CONTEXT_PREFIX == "kind-cks-lab"
    assert assert_lab_context("kind-cks-lab") == "cks-lab"
    assert assert_lab_context("kind-cks-lab-exam") == "cks-lab-exam"
    for name in ("prod", "kind-prod", "cks-lab", "kind-cks-labx", "kind-cks-lab-", ""):
        with pytest.raises(LabError, match=f"refusing kubeconfig context '{name}'"):
            assert_lab_context(name)
