"""Which profile a container runs under: API validation, kubelet order, containerd.

Table: tests/apparmor/cases/podspec.yaml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.engines.apparmor import podspec

CASES = yaml.safe_load((Path(__file__).parent / "cases" / "podspec.yaml").read_text())


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_podspec(case: dict[str, Any]) -> None:
    tpl = podspec.pod_template(yaml.safe_load(case["manifest"]))
    assert tpl is not None
    exp = case["expect"]
    errors = podspec.validate(tpl)
    if "invalid" in exp:
        assert errors, "the object should be refused"
        assert podspec.invalid_message(tpl, errors) == exp["invalid"]
    else:
        assert errors == [], [str(e) for e in errors]
    # A workload applies; its controller's pod create is what the mismatch check refuses.
    on_create = [str(e) for e in podspec.validate_pod_create(tpl)]
    assert on_create == exp.get("invalid_on_pod_create", [])
    cname = case.get("container") or podspec.containers(tpl)[0].name
    conf = podspec.resolve(tpl, cname)
    for key in ("type", "profile", "source", "field"):
        if key in exp:
            assert getattr(conf, key) == exp[key], conf
    if "warnings" in exp:
        assert len(podspec.warnings(tpl)) == exp["warnings"]
    host = exp.get("host_apparmor", True)
    if "admit" in exp:
        assert podspec.admit(tpl, host) == exp["admit"]
    if "runtime" in exp:
        rt = exp["runtime"]
        container = next(c for c in podspec.containers(tpl) if c.name == cname)
        got = podspec.runtime_profile(conf, privileged=container.privileged,
                                      host_apparmor=host, loaded=set(rt["loaded"]))
        assert got.profile == rt["profile"]
        assert got.error == rt.get("error")


def test_kinds_without_pods_have_no_template() -> None:
    assert podspec.pod_template({"kind": "Service", "metadata": {"name": "s"}}) is None
    assert podspec.pod_template("not a mapping") is None
    assert podspec.pod_template({"kind": 3}) is None


def test_broken_shapes_do_not_crash() -> None:
    tpl = podspec.pod_template({"kind": "Pod", "metadata": "x", "spec": {
        "containers": [3, {"name": "a", "securityContext": "no"}],
        "securityContext": {"appArmorProfile": "Localhost"}}})
    assert tpl is not None
    assert [c.name for c in podspec.containers(tpl)] == ["a"]
    errors = podspec.validate(tpl)
    assert [str(e) for e in errors] == [
        'spec.securityContext.appArmorProfile: Invalid value: "Localhost": must be an object']
    assert podspec.resolve(tpl, "a").type == ""


def test_annotation_warning_text() -> None:
    tpl = podspec.pod_template({"kind": "Pod", "metadata": {"name": "p", "annotations": {
        podspec.ANNOTATION_PREFIX + "a": "unconfined"}}, "spec": {"containers": [{"name": "a"}]}})
    assert tpl is not None
    assert podspec.warnings(tpl) == [
        "metadata.annotations[container.apparmor.security.beta.kubernetes.io/a]: deprecated "
        'since v1.30; use the "appArmorProfile" field instead']
