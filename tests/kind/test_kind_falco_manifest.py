"""The Falco manifest the lab deploys into kind, and the code around it: rollout,
a node's Falco pod, the `falco -V` command line."""

from __future__ import annotations

from typing import Any

import pytest

from lab.errors import LabError
from lab.kind import falco_deploy
from lab.kind.falco_deploy import (
    FALCO_IMAGE,
    FALCO_NAMESPACE,
    MANIFEST,
    deploy,
    falco_container,
    falco_docs,
    falco_pod,
    validate_argv,
)
from lab.kind.kube import KINDS, ContainerInfo, KubeApiError, PodInfo
from lab.yamlsafe import parse_all


def _by_kind() -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in falco_docs()}


def _pod_spec() -> dict[str, Any]:
    spec: dict[str, Any] = _by_kind()["DaemonSet"]["spec"]["template"]["spec"]
    return spec


def _options(args: list[str]) -> dict[str, str]:
    """`-o key=value` pairs of an argv."""
    pairs = [args[i + 1] for i, a in enumerate(args) if a == "-o"]
    return dict(p.split("=", 1) for p in pairs)


def test_every_document_is_an_object_the_lab_can_apply() -> None:
    docs = falco_docs()
    assert [d["kind"] for d in docs] == ["Namespace", "ServiceAccount", "DaemonSet"]
    for doc in docs:
        assert doc["kind"] in KINDS
        assert isinstance(doc["apiVersion"], str) and doc["metadata"]["name"]
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == FALCO_NAMESPACE
    assert docs[0]["metadata"]["name"] == FALCO_NAMESPACE


def test_the_manifest_ships_next_to_the_module_and_loads_safely() -> None:
    assert MANIFEST.is_file()
    assert MANIFEST.parent.name == "manifests" and MANIFEST.parent.parent.name == "kind"
    assert len(parse_all(MANIFEST.read_bytes(), str(MANIFEST))) == 3


def test_image_is_falco_044_pinned_by_tag() -> None:
    container = falco_container()
    assert container["image"] == FALCO_IMAGE
    repo, _, tag = FALCO_IMAGE.rpartition(":")
    assert repo == "docker.io/falcosecurity/falco"
    major, minor, patch = tag.split(".")
    assert (major, minor) == ("0", "44") and patch.isdigit()
    assert container["imagePullPolicy"] == "IfNotPresent"


def test_falco_runs_modern_ebpf_json_with_hot_reload_on_the_nodes_config() -> None:
    container = falco_container()
    assert container["command"] == ["/usr/bin/falco"]
    args = container["args"]
    assert args[:2] == ["-c", "/etc/falco/falco.yaml"]
    options = _options(args)
    assert options["engine.kind"] == "modern_ebpf"
    assert options["json_output"] == "true"
    assert options["json_include_output_property"] == "true"
    assert options["watch_config_files"] == "true"
    assert options["stdout_output.enabled"] == "true"


def test_the_container_plugin_is_loaded_on_the_nodes_cri_socket() -> None:
    import yaml

    args = falco_container()["args"]
    values = [args[i + 1] for i, a in enumerate(args) if a == "-o"]
    assert "load_plugins[]=container" in values
    plugin_opt = next(v for v in values if v.startswith("plugins[]="))
    value = plugin_opt.split("=", 1)[1]
    # Falco parses a value between braces as YAML (flow mapping)
    assert value.startswith("{") and value.endswith("}")
    plugin = yaml.safe_load(value)
    assert plugin["name"] == "container" and plugin["library_path"] == "libcontainer.so"
    engines = plugin["init_config"]["engines"]
    assert engines["cri"] == {"enabled": True, "sockets": ["/run/containerd/containerd.sock"]}
    assert [k for k, v in engines.items() if v["enabled"]] == ["cri"]
    # ... which the pod finds under HOST_ROOT
    env = {e["name"]: e.get("value") for e in falco_container()["env"]}
    assert env["HOST_ROOT"] == "/host"
    mounts = {m["name"]: m for m in falco_container()["volumeMounts"]}
    volumes = {v["name"]: v for v in _pod_spec()["volumes"]}
    sock = mounts["containerd-socket"]
    assert sock["mountPath"] == "/host/run/containerd/containerd.sock"
    assert volumes["containerd-socket"]["hostPath"]["path"] == "/run/containerd/containerd.sock"


def test_nodes_etc_falco_is_mounted_over_the_containers() -> None:
    mounts = {m["mountPath"]: m for m in falco_container()["volumeMounts"]}
    volumes = {v["name"]: v for v in _pod_spec()["volumes"]}
    etc_falco = mounts["/etc/falco"]
    assert volumes[etc_falco["name"]]["hostPath"]["path"] == "/etc/falco"
    # the host's /proc and /etc under HOST_ROOT, as the chart does for modern_ebpf
    for host, inside in (("/proc", "/host/proc"), ("/etc", "/host/etc")):
        assert volumes[mounts[inside]["name"]]["hostPath"]["path"] == host
        assert mounts[inside]["readOnly"] is True
    # every mount has its volume
    assert {m["name"] for m in falco_container()["volumeMounts"]} <= set(volumes)


def test_privileged_on_every_node_and_no_falcoctl() -> None:
    spec = _pod_spec()
    assert falco_container()["securityContext"] == {"privileged": True}
    assert {
        "key": "node-role.kubernetes.io/control-plane",
        "operator": "Exists",
        "effect": "NoSchedule",
    } in spec["tolerations"]
    assert "initContainers" not in spec
    assert [c["name"] for c in spec["containers"]] == ["falco"]
    for container in spec["containers"]:
        assert "falcoctl" not in container["image"]
        assert all("falcoctl" not in str(a) for a in container.get("args", []))


def test_falco_runs_only_on_nodes_the_lab_labels() -> None:
    from lab.kind.falco_deploy import FALCO_NODE_LABEL

    assert _pod_spec()["nodeSelector"] == {FALCO_NODE_LABEL: "true"}


def test_validate_argv_uses_the_pods_config_and_plugins() -> None:
    argv = validate_argv(["/etc/falco/falco_rules.yaml", "/etc/falco/falco_rules.local.yaml"])
    assert argv[:3] == ["/usr/bin/falco", "-c", "/etc/falco/falco.yaml"]
    assert argv[-4:] == [
        "-V",
        "/etc/falco/falco_rules.yaml",
        "-V",
        "/etc/falco/falco_rules.local.yaml",
    ]
    options = _options(argv)
    assert options["json_output"] == "true"
    assert options["load_plugins[]"] == "container"
    assert options["plugins[]"].startswith("{name: container")
    # validation must not start a driver or change outputs
    assert "engine.kind" not in options and "watch_config_files" not in options
    with pytest.raises(LabError, match="no rules files"):
        validate_argv([])


# -- deploy and falco_pod with a fake Kube ------------------------------------------


def _pod(name: str, node: str, state: str = "running", reason: str = "") -> PodInfo:
    phase = "Running" if state == "running" else "Pending"
    return PodInfo(FALCO_NAMESPACE, name, node, phase, [ContainerInfo("falco", state, reason)])


class FakeKube:
    def __init__(self, rollouts: list[dict[str, Any]], pods: list[PodInfo] | None = None) -> None:
        self.rollouts = rollouts
        self.applied: list[tuple[list[dict[str, Any]], str]] = []
        self.pod_list = pods or []
        self.log_text = ""

    def apply(self, docs: list[dict[str, Any]], *, source: str = "") -> list[str]:
        self.applied.append((docs, source))
        return [f"{d['kind'].lower()}/{d['metadata']['name']} created" for d in docs]

    def request(self, method: str, uri: str, **kw: Any) -> tuple[int, Any]:
        assert (method, uri) == (
            "GET",
            "/apis/apps/v1/namespaces/cks-lab-falco/daemonsets/falco",
        )
        status = self.rollouts.pop(0) if len(self.rollouts) > 1 else self.rollouts[0]
        return 200, {"metadata": {"generation": 2}, "status": status}

    def pods(self, namespace: str, label_selector: str) -> list[PodInfo]:
        assert (namespace, label_selector) == (FALCO_NAMESPACE, "app.kubernetes.io/name=falco")
        return self.pod_list

    def logs(self, namespace: str, pod: str, **kw: Any) -> str:
        return self.log_text


def _ds(observed: int, desired: int, updated: int, ready: int) -> dict[str, Any]:
    return {
        "observedGeneration": observed,
        "desiredNumberScheduled": desired,
        "updatedNumberScheduled": updated,
        "numberReady": ready,
    }


def test_deploy_applies_the_manifest_and_waits_for_every_node() -> None:
    kube = FakeKube([_ds(1, 2, 2, 2), _ds(2, 2, 1, 1), _ds(2, 2, 2, 1), _ds(2, 2, 2, 2)])
    events: list[Any] = []
    deploy(kube, events.append, timeout=5, poll=0)  # type: ignore[arg-type]
    assert kube.applied[0][1] == str(MANIFEST)
    assert [d["kind"] for d in kube.applied[0][0]] == ["Namespace", "ServiceAccount", "DaemonSet"]
    assert [str(e) for e in events] == [
        "deploying Falco",
        "namespace/cks-lab-falco created",
        "serviceaccount/falco created",
        "daemonset/falco created",
        "Falco running on 2/2 nodes",  # an old generation's count: not done yet
        "Falco running on 1/2 nodes",
        "Falco running on 2/2 nodes",
    ]
    assert all(e.phase == "falco" for e in events)
    assert (events[-1].done, events[-1].total) == (2, 2)
    assert kube.rollouts == [_ds(2, 2, 2, 2)]  # it stopped polling once rolled out


def test_deploy_timeout_says_the_image_cannot_be_pulled() -> None:
    kube = FakeKube(
        [_ds(2, 2, 2, 1)],
        [
            _pod("falco-a", "cks-lab-control-plane"),
            _pod("falco-b", "cks-lab-worker", "waiting", "ImagePullBackOff"),
        ],
    )
    with pytest.raises(LabError) as err:
        deploy(kube, lambda _m: None, timeout=0, poll=0)  # type: ignore[arg-type]
    text = str(err.value)
    assert "Falco did not start within 0s" in text
    assert "cks-lab-falco/falco-b: Pending [falco waiting (ImagePullBackOff)]" in text
    assert f"kind load docker-image {FALCO_IMAGE}" in text
    assert "falco-a" not in text


def test_deploy_timeout_quotes_a_crashing_falco() -> None:
    kube = FakeKube([_ds(2, 1, 1, 0)], [_pod("falco-a", "n", "waiting", "CrashLoopBackOff")])
    kube.log_text = "Falco version: 0.44.1\nError: failed to open the modern eBPF probe\n"
    with pytest.raises(LabError, match="Falco's last lines: .*Error: failed to open the modern"):
        deploy(kube, lambda _m: None, timeout=0, poll=0)  # type: ignore[arg-type]


def test_falco_pod_is_the_one_on_the_node_preferring_a_running_one() -> None:
    kube = FakeKube(
        [],
        [
            _pod("falco-old", "cks-lab-worker", "terminated", "Completed"),
            _pod("falco-cp", "cks-lab-control-plane"),
            _pod("falco-new", "cks-lab-worker"),
        ],
    )
    assert falco_pod(kube, "cks-lab-worker") == "falco-new"  # type: ignore[arg-type]
    assert falco_pod(kube, "cks-lab-control-plane") == "falco-cp"  # type: ignore[arg-type]
    assert falco_pod(kube, "cks-lab-worker2") is None  # type: ignore[arg-type]


def test_falco_pod_is_none_before_falco_is_deployed() -> None:
    class NoNamespace(FakeKube):
        def pods(self, namespace: str, label_selector: str) -> list[PodInfo]:
            raise KubeApiError("namespaces not found", status=404)

    assert falco_pod(NoNamespace([]), "cks-lab-worker") is None  # type: ignore[arg-type]


def test_the_module_constant_matches_the_manifest_namespace() -> None:
    assert falco_deploy.FALCO_NAMESPACE == _by_kind()["Namespace"]["metadata"]["name"]


def test_alerts_carry_the_labs_matching_fields_outside_the_output_text() -> None:
    # append_output's `key: format` extra_fields go to output_fields only (Falco's
    # formatted fields), so the learner's `output` text stays as the rule makes it.
    import yaml

    from lab.backends.kind.falco import LAB_FIELDS, LAB_PREFIX

    args = falco_container()["args"]
    values = [args[i + 1] for i, a in enumerate(args) if a == "-o"]
    (opt,) = [v for v in values if v.startswith("append_output[]=")]
    entry = yaml.safe_load(opt.split("=", 1)[1])
    assert entry["match"] == {"source": "syscall"}
    assert "extra_output" not in entry and "suggested_output" not in entry
    fields = {k: v for item in entry["extra_fields"] for k, v in item.items()}
    assert fields == {LAB_PREFIX + f: "%" + f for f in LAB_FIELDS}
