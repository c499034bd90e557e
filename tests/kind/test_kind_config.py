"""Rendering the bundled kind configs and checking the shape kind v0.32 needs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lab.errors import LabError
from lab.kind.config import SECURITYFS, check_config, drop_mounts, file_volumes, render_config
from lab.paths import kind_configs_dir

CLUSTER_DIR = Path("/srv/lab home/clusters/cks-lab")

AUDIT_FLAGS = [
    {"name": "audit-policy-file", "value": "/etc/kubernetes/audit/policy.yaml"},
    {"name": "audit-log-path", "value": "/var/log/kubernetes/audit/audit.log"},
    {"name": "audit-log-maxage", "value": "10"},
    {"name": "audit-log-maxbackup", "value": "2"},
    {"name": "audit-log-maxsize", "value": "100"},
]


@pytest.mark.parametrize("config", ["audit.yaml", "audit-enabled.yaml"])
def test_bundled_configs_render_with_absolute_paths_and_pass(config: str) -> None:
    text = render_config(kind_configs_dir() / config, CLUSTER_DIR, "cks-lab-audit")
    assert check_config(text) == []
    assert "{{" not in text
    cfg = yaml.safe_load(text)
    assert cfg["name"] == "cks-lab-audit"
    assert cfg["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert [n["role"] for n in cfg["nodes"]] == ["control-plane", "worker"]
    mounts = cfg["nodes"][0]["extraMounts"]
    assert [m["hostPath"] for m in mounts] == [
        "/srv/lab home/clusters/cks-lab/audit-policy",
        "/srv/lab home/clusters/cks-lab/audit-log",
        "/sys/kernel/security",
    ]
    assert [m["containerPath"] for m in mounts] == [
        "/etc/kubernetes/audit",
        "/var/log/kubernetes/audit",
        "/sys/kernel/security",
    ]
    # every node sees the host's AppArmor interface, or profiles cannot load there
    for node in cfg["nodes"]:
        assert {"hostPath": "/sys/kernel/security", "containerPath": "/sys/kernel/security"} in (
            node["extraMounts"]
        )


def test_audit_enabled_carries_the_audit_flags_as_a_v1beta4_list() -> None:
    text = render_config(kind_configs_dir() / "audit-enabled.yaml", CLUSTER_DIR, "cks-lab")
    cfg = yaml.safe_load(text)
    patches = cfg["nodes"][0]["kubeadmConfigPatches"]
    assert len(patches) == 1
    patch = yaml.safe_load(patches[0])
    assert patch["apiVersion"] == "kubeadm.k8s.io/v1beta4"
    assert patch["apiServer"]["extraArgs"] == AUDIT_FLAGS
    assert [v["name"] for v in patch["apiServer"]["extraVolumes"]] == ["audit-policy", "audit-log"]


def test_the_plain_audit_config_leaves_auditing_off() -> None:
    cfg = yaml.safe_load(render_config(kind_configs_dir() / "audit.yaml", CLUSTER_DIR, "cks-lab"))
    assert all("kubeadmConfigPatches" not in n for n in cfg["nodes"])


def test_name_is_added_when_the_template_has_none(tmp_path: Path) -> None:
    tpl = tmp_path / "t.yaml"
    tpl.write_text(
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n"
        "  - role: control-plane\n  - role: worker\n"
    )
    text = render_config(tpl, CLUSTER_DIR, "cks-lab-x1")
    assert yaml.safe_load(text)["name"] == "cks-lab-x1"
    assert check_config(text) == []


GOOD = (kind_configs_dir() / "audit-enabled.yaml").read_text()

# Each broken variant of audit-enabled.yaml and the words its problem must carry.
BROKEN_CHECKS = {
    "v1beta3 patch": (
        ("apiVersion: kubeadm.k8s.io/v1beta4", "apiVersion: kubeadm.k8s.io/v1beta3"),
        "patch apiVersion is 'kubeadm.k8s.io/v1beta3'; kind v0.32 generates kubeadm.k8s.io/"
        "v1beta4 for Kubernetes 1.36 and silently drops",
    ),
    "map extraArgs": (
        (
            GOOD[GOOD.index("          extraArgs:") : GOOD.index("          extraVolumes:")],
            "          extraArgs:\n"
            "            audit-policy-file: /etc/kubernetes/audit/policy.yaml\n",
        ),
        "apiServer.extraArgs is a map (the v1beta3 shape)",
    ),
    "two control planes": (
        ("  - role: worker", "  - role: control-plane\n  - role: worker"),
        "expected exactly one control-plane node, found 2",
    ),
    "relative hostPath": (
        ('"{{ .ClusterDir }}/audit-log"', "audit-log"),
        "nodes[0].extraMounts[1].hostPath: hostPath 'audit-log' is not absolute after rendering",
    ),
    "volume without mountPath": (
        ("              mountPath: /var/log/kubernetes/audit\n", ""),
        "apiServer.extraVolumes[1] is missing mountPath",
    ),
    "unquoted number flag": (
        ('value: "10"', "value: 10"),
        "extraArgs[2].value 10 must be a string",
    ),
    "wrong kind apiVersion": (
        ("apiVersion: kind.x-k8s.io/v1alpha4", "apiVersion: kind.x-k8s.io/v1alpha3"),
        "apiVersion is 'kind.x-k8s.io/v1alpha3', expected 'kind.x-k8s.io/v1alpha4'",
    ),
    "patch not YAML": (
        ("        kind: ClusterConfiguration\n", "        kind: [ClusterConfiguration\n"),
        "patch is not valid YAML (its line 2: invalid YAML",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN_CHECKS))
def test_broken_variants_are_reported_specifically(tmp_path: Path, case: str) -> None:
    (old, new), expected = BROKEN_CHECKS[case]
    assert old in GOOD
    tpl = tmp_path / "broken.yaml"
    tpl.write_text(GOOD.replace(old, new, 1))
    problems = check_config(render_config(tpl, CLUSTER_DIR, "cks-lab"))
    assert len(problems) == 1, problems
    assert expected in problems[0]
    assert problems[0].startswith("line ")


def test_no_worker_and_a_map_extra_args_are_both_reported() -> None:
    text = GOOD.replace("  - role: worker\n", "").replace("{{ .ClusterDir }}", "/x")
    text = text.replace("name: cks-lab", "name: prod")
    problems = check_config(text)
    assert any("expected at least one worker node, found none" in p for p in problems)
    assert any("cluster name 'prod' is not a lab cluster name" in p for p in problems)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("prod", "not a lab cluster name"),
        ("cks-lab_2", "not a lab cluster name"),
        ("CKS-LAB", "not a lab cluster name"),
        ("kind-cks-lab", "not a lab cluster name"),
        ("cks-lab-x-", "cannot end with '-'"),
        ("cks-lab--x", "contain '--'"),
        ("cks-lab-" + "a" * 60, "at most 49"),
    ],
)
def test_bad_names_are_refused(name: str, message: str) -> None:
    with pytest.raises(LabError, match=message):
        render_config(kind_configs_dir() / "audit.yaml", CLUSTER_DIR, name)


def test_unknown_placeholder_is_refused_with_its_line(tmp_path: Path) -> None:
    tpl = tmp_path / "t.yaml"
    tpl.write_text(GOOD.replace('"{{ .ClusterDir }}/audit-log"', '"{{ .HostDir }}/audit-log"'))
    with pytest.raises(LabError, match=r"unknown placeholder '\{\{ \.HostDir \}\}'") as err:
        render_config(tpl, CLUSTER_DIR, "cks-lab")
    assert err.value.file == str(tpl)
    assert (
        err.value.line
        == GOOD.splitlines().index('      - hostPath: "{{ .ClusterDir }}/audit-log"') + 1
    )


@pytest.mark.parametrize(
    ("folder", "message"),
    [
        (Path("clusters/cks-lab"), "not an absolute path"),
        (Path('/tmp/a"b'), "cannot be passed to docker"),
        (Path("/tmp/a:b"), "cannot be passed to docker"),
        (Path("/tmp/a\nb"), "cannot be passed to docker"),
        (Path("/tmp/../etc"), "contains '..'"),
    ],
)
def test_cluster_folder_must_be_a_plain_absolute_path(folder: Path, message: str) -> None:
    with pytest.raises(LabError, match=message):
        render_config(kind_configs_dir() / "audit.yaml", folder, "cks-lab")


def test_template_naming_the_cluster_twice_is_refused(tmp_path: Path) -> None:
    tpl = tmp_path / "t.yaml"
    tpl.write_text(GOOD + "name: other\n")
    with pytest.raises(LabError, match="sets the cluster name more than once"):
        render_config(tpl, CLUSTER_DIR, "cks-lab")


def test_binary_template_is_a_located_error(tmp_path: Path) -> None:
    tpl = tmp_path / "t.yaml"
    tpl.write_bytes(b"kind: Cluster\x00\n")
    with pytest.raises(LabError, match="binary") as err:
        render_config(tpl, CLUSTER_DIR, "cks-lab")
    assert err.value.file == str(tpl)


def test_check_config_reports_invalid_yaml_with_its_line() -> None:
    problems = check_config("kind: Cluster\nnodes: [\n")
    assert len(problems) == 1 and "invalid YAML" in problems[0]


# --- what `up` derives from a rendered config -------------------------------------------


def test_file_volumes_are_the_kubeadm_files_through_the_nodes_mounts() -> None:
    enabled = render_config(kind_configs_dir() / "audit-enabled.yaml", CLUSTER_DIR, "cks-lab")
    assert file_volumes(enabled) == [
        ("/etc/kubernetes/audit/policy.yaml", f"{CLUSTER_DIR}/audit-policy/policy.yaml")
    ]
    plain = render_config(kind_configs_dir() / "audit.yaml", CLUSTER_DIR, "cks-lab")
    assert file_volumes(plain) == []  # auditing off: no File volume


def test_file_volumes_take_the_deepest_mount_and_none_for_the_images_own(tmp_path: Path) -> None:
    text = """\
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
name: cks-lab
kubeadmConfigPatches:
  - |
    kind: ClusterConfiguration
    apiVersion: kubeadm.k8s.io/v1beta4
    scheduler:
      extraVolumes:
        - {name: a, hostPath: /etc/kubernetes/lab/deep/a.yaml, mountPath: /a, pathType: File}
        - {name: b, hostPath: /etc/kubernetes/pki/ca.crt, mountPath: /b, pathType: File}
        - {name: c, hostPath: /etc/kubernetes/lab/dir, mountPath: /c, pathType: Directory}
nodes:
  - role: control-plane
    extraMounts:
      - {hostPath: /h/lab, containerPath: /etc/kubernetes/lab}
      - {hostPath: /h/deep, containerPath: /etc/kubernetes/lab/deep}
  - role: worker
"""
    assert file_volumes(text) == [
        ("/etc/kubernetes/lab/deep/a.yaml", "/h/deep/a.yaml"),
        ("/etc/kubernetes/pki/ca.crt", None),
    ]


def test_drop_mounts_removes_only_that_mount_and_keeps_the_rest() -> None:
    text = render_config(kind_configs_dir() / "audit-enabled.yaml", CLUSTER_DIR, "cks-lab")
    out = drop_mounts(text, SECURITYFS, "why it was dropped\nsecond line")
    assert out.startswith("# why it was dropped\n# second line\n")
    assert check_config(out) == []
    before, after = yaml.safe_load(text), yaml.safe_load(out)
    for node in before["nodes"]:
        kept = [m for m in node["extraMounts"] if m["containerPath"] != SECURITYFS]
        if kept:
            node["extraMounts"] = kept
        else:
            del node["extraMounts"]
    assert after == before  # the kubeadm patch, the audit folders, names: all as rendered
    assert "kubeadmConfigPatches:\n  - |\n    kind: ClusterConfiguration\n" in out, "a block"
    assert drop_mounts(out, SECURITYFS, "again") == out  # nothing left to drop: unchanged
