"""The wheel ships every package, the scenarios and the kind configs."""

from __future__ import annotations

import tomllib
from pathlib import Path

import lab
from lab.paths import kind_configs_dir
from lab.yamlsafe import parse_one

REPO = Path(lab.__file__).parent.parent


def test_every_lab_package_is_listed_in_pyproject() -> None:
    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "lab").rglob("__init__.py")
    }
    assert found - listed == set(), "add these to [tool.setuptools] packages"


def test_kind_configs_are_kind_v1alpha4_with_kubeadm_v1beta4_patches() -> None:
    configs = sorted(kind_configs_dir().glob("*.yaml"))
    assert configs
    for path in configs:
        cfg = parse_one(path.read_bytes(), str(path)).data
        assert cfg["kind"] == "Cluster" and cfg["apiVersion"] == "kind.x-k8s.io/v1alpha4"
        roles = [n["role"] for n in cfg["nodes"]]
        assert roles.count("control-plane") == 1 and "worker" in roles
        for node in cfg["nodes"]:
            for patch in node.get("kubeadmConfigPatches", []):
                doc = parse_one(patch, f"{path} patch").data
                # kind 0.32 renders kubeadm v1beta4 for Kubernetes 1.36; any other
                # apiVersion would be dropped silently.
                assert doc["apiVersion"] == "kubeadm.k8s.io/v1beta4", path
                args = doc.get("apiServer", {}).get("extraArgs", [])
                assert isinstance(args, list), "v1beta4 extraArgs is a list of {name, value}"
                for arg in args:
                    assert set(arg) == {"name", "value"} and isinstance(arg["value"], str)
                    assert not arg["name"].startswith("-")
                for vol in doc.get("apiServer", {}).get("extraVolumes", []):
                    assert {"name", "hostPath", "mountPath"} <= set(vol)


def test_audit_enabled_config_matches_the_scenario_that_uses_it() -> None:
    # The sim seed of audit-policy-secrets must start in the state this kind config
    # produces: the same audit flags.
    cfg = parse_one((kind_configs_dir() / "audit-enabled.yaml").read_bytes(), "cfg").data
    patch = parse_one(cfg["nodes"][0]["kubeadmConfigPatches"][0], "patch").data
    args = {a["name"]: a["value"] for a in patch["apiServer"]["extraArgs"]}
    seed = (REPO / "scenarios/audit-policy-secrets/files/kube-apiserver.yaml").read_text()
    for name, value in args.items():
        assert f"--{name}={value}" in seed
