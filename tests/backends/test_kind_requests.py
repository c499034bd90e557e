"""The kind backend's API steps: node names on a cluster of another name, and the
objects an attack creates removed after the run (or the next check's create is a 409)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kind_fakes import FakeKube, FakeNodes, sample

from lab.backends.kind.steps import Issuer, created_uri, for_cluster, send_api
from lab.engines.audit.checker import RequestAttributes, UserInfo
from lab.scenarios.loader import load_scenario
from lab.scenarios.requests import ApiCall, api_call

REPO = Path(__file__).parents[2]


@pytest.mark.parametrize(
    ("value", "cluster", "expected"),
    [
        ("system:node:cks-lab-worker", "cks-lab", "system:node:cks-lab-worker"),
        ("system:node:cks-lab-worker", "cks-lab-e2e", "system:node:cks-lab-e2e-worker"),
        ("system:node:cks-lab-control-plane", "cks-lab-x", "system:node:cks-lab-x-control-plane"),
        ("/api/v1/pods?fieldSelector=spec.nodeName%3Dcks-lab-worker2", "cks-lab-b",
         "/api/v1/pods?fieldSelector=spec.nodeName%3Dcks-lab-b-worker2"),
        ("cks-lab-e2e-worker", "cks-lab-e2e", "cks-lab-e2e-worker"),  # already its own
        ("cks-lab-workers-guide", "cks-lab-x", "cks-lab-workers-guide"),  # not a node name
        ({"spec": {"nodeName": "cks-lab-worker"}, "n": 1}, "cks-lab-y",
         {"spec": {"nodeName": "cks-lab-y-worker"}, "n": 1}),
    ],
)  # fmt: skip
def test_node_names_follow_the_cluster(value: Any, cluster: str, expected: Any) -> None:
    assert for_cluster(value, cluster) == expected


def _call(verb: str, uri: str, subresource: str = "") -> ApiCall:
    attrs = RequestAttributes(
        user=UserInfo("admin", ()), verb=verb, path=uri, is_resource_request=True,
        resource="secrets", subresource=subresource, namespace="default",
    )  # fmt: skip
    return ApiCall("s", attrs, uri, None, 201)


@pytest.mark.parametrize(
    ("call", "status", "answer", "expected"),
    [
        (_call("create", "/api/v1/namespaces/default/secrets"), 201,
         {"metadata": {"name": "payment-gateway"}},
         "/api/v1/namespaces/default/secrets/payment-gateway"),
        (_call("create", "/api/v1/namespaces/default/secrets"), 409,
         {"reason": "AlreadyExists"}, None),
        (_call("create", "/api/v1/namespaces/default/secrets"), 403, {}, None),
        (_call("get", "/api/v1/namespaces/default/secrets/x"), 200,
         {"metadata": {"name": "x"}}, None),
        (_call("create", "/api/v1/namespaces/default/pods/web/exec", "exec"), 200,
         {"metadata": {"name": "web"}}, None),  # a subresource creates no object
        (_call("create", "/api/v1/namespaces/default/secrets"), 201,
         {"metadata": {"name": "../x"}}, None),
    ],
)  # fmt: skip
def test_what_an_attack_created(
    call: ApiCall, status: int, answer: Any, expected: str | None
) -> None:
    assert created_uri(call, status, answer) == expected


class CreatingKube(FakeKube):
    def request(self, method: str, uri: str, **kw: Any) -> tuple[int, Any]:
        super().request(method, uri, **kw)
        if method == "POST":
            body = kw.get("body") or {}
            return 201, {"metadata": {"name": body.get("metadata", {}).get("name", "x")}}
        return 200, {}


def test_a_secret_the_attack_created_is_removed_after_the_run(tmp_path: Path) -> None:
    from test_kind_backend import backend, workspace

    sc = load_scenario(REPO / "scenarios" / "audit-policy-secrets")
    nodes = FakeNodes(
        files={"controlplane": {}, "worker": {}},
        crictl_ps=sample("crictl-ps-apiserver-restarted.json"),
    )
    kube = CreatingKube()
    backend(tmp_path, nodes, kube).run_attack(sc, workspace(tmp_path, sc))
    creates = [c for c in (api_call(s) for s in sc.model.attack) if c and c.attrs.verb == "create"]
    assert creates, "the scenario has a create step"
    posts = [r for r in kube.requests if r[0] == "POST"]
    # the lab's own deletes go as the admin, without the attack's user agent: never
    # in the run's evidence
    cleanup = [r for r in kube.requests if r[0] == "DELETE" and r[4] is None]
    assert len(cleanup) == len(posts) >= 1
    assert all(d[2] == "kubernetes-admin" for d in cleanup)
    assert [d[1].rsplit("/", 1)[0] for d in cleanup] == [p[1].split("?")[0] for p in posts]


def test_send_api_names_this_clusters_nodes(tmp_path: Path) -> None:
    sc = load_scenario(REPO / "scenarios" / "audit-policy-secrets")
    kube = FakeKube()
    nodes = FakeNodes(files={"controlplane": {}, "worker": {}})
    issuer = Issuer(nodes, "controlplane", tmp_path)  # type: ignore[arg-type]
    for step in sc.model.attack:
        call = api_call(step)
        if call is not None:
            send_api(kube, call, "r1", "cks-lab-e2e", issuer)
    node_users = {r[2] for r in kube.requests if r[2] and r[2].startswith("system:node:")}
    assert node_users == {"system:node:cks-lab-e2e-worker", "system:node:cks-lab-e2e-control-plane"}
    # the nodes' certificates were issued for this cluster's names
    names = {a[4] for a in nodes.commands("controlplane") if a[:2] == ["kubeadm", "kubeconfig"]}
    assert "--client-name=system:node:cks-lab-e2e-worker" in names
    assert all("nodeName%3Dcks-lab-worker" not in r[1] for r in kube.requests)


def test_falco_is_placed_on_the_nodes_the_scenario_configures(tmp_path: Path) -> None:
    # falco-shell-alert puts /etc/falco/falco.yaml on worker only: Falco must not be
    # scheduled on the control plane, where it would crash-loop without a configuration
    from test_kind_backend import backend, workspace

    sc = load_scenario(REPO / "scenarios" / "falco-shell-alert")
    nodes = FakeNodes(
        files={"controlplane": {}, "worker": {}},
        crictl_ps=sample("crictl-ps-apiserver-restarted.json"),
    )
    labels: dict[str, Any] = {}

    class LabellingKube(FakeKube):
        def request(self, method: str, uri: str, **kw: Any) -> tuple[int, Any]:
            if method == "PATCH" and uri.startswith("/api/v1/nodes/"):
                labels[uri.rsplit("/", 1)[1]] = kw["body"]["metadata"]["labels"]
            return super().request(method, uri, **kw)

    backend(tmp_path, nodes, LabellingKube()).prepare(sc, workspace(tmp_path, sc))
    assert labels == {
        "cks-lab-control-plane": {"cks-lab.io/falco": None},  # removed: no Falco there
        "cks-lab-worker": {"cks-lab.io/falco": "true"},
    }
