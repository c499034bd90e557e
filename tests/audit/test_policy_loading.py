"""Loading audit policies: the loading table, plus file-level guards (size, binary, bombs)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.engines.audit import goyaml, goyamlsyntax
from lab.engines.audit.policy import (
    MAX_POLICY_BYTES,
    GroupResources,
    Policy,
    PolicyError,
    PolicyRule,
    apiserver_policy_error,
    load_policy,
    load_policy_file,
)
from lab.errors import LabError

TABLE = yaml.safe_load((Path(__file__).parent / "cases" / "loading.yaml").read_text())
SOURCE = "/etc/kubernetes/audit/policy.yaml"
LIBYAML = hasattr(yaml, "CSafeLoader")


def expected_upstream(errors: list[str]) -> str:
    agg = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
    return f"loading audit policy file: {agg}: from file {SOURCE}"


def check_case(case: dict[str, Any], errors: list[str]) -> None:
    if "rules" in case:
        policy = load_policy(case["yaml"], SOURCE)
        assert len(policy.rules) == case["rules"]
        assert list(policy.warnings) == case.get("warnings", [])
        if "ignored" in case:
            assert [list(f) for f in policy.ignored_fields] == case["ignored"]
        # The data and the strings say the same: one unknown-field warning per ignored field.
        assert [f'unknown field "{p if i is None else f"rules[{i}].{p}"}"'
                for i, p in policy.ignored_fields] == [
            w for w in policy.warnings if w.startswith("unknown field")]
        return
    with pytest.raises(PolicyError) as info:
        load_policy(case["yaml"], SOURCE)
    err = info.value
    assert err.errors == errors
    assert apiserver_policy_error(err) == expected_upstream(errors)
    if "line" in case:
        assert err.line == case["line"]
    if "lines" in case:
        assert err.lines == case["lines"]
    assert err.file == SOURCE and "\n" not in str(err)


@pytest.mark.parametrize("case", TABLE["cases"], ids=lambda c: c["name"])
def test_loading_table(case: dict[str, Any]) -> None:
    if case.get("libyaml") and not LIBYAML:
        pytest.skip("exact YAML syntax messages need libyaml")
    check_case(case, case.get("errors", []))


@pytest.mark.parametrize("case", TABLE["cases"], ids=lambda c: c["name"])
def test_loading_table_without_libyaml(case: dict[str, Any],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # PyYAML's pure-Python parser, its messages mapped to libyaml's wording.
    monkeypatch.setattr(goyamlsyntax, "_LIBYAML", False)
    check_case(case, case.get("pure_python_errors", case.get("errors", [])))


def test_parsed_policy_matches_reader_test_expectation() -> None:
    text = next(c["yaml"] for c in TABLE["cases"] if c["name"].endswith("v1 loads 3 rules"))
    policy = load_policy(text, "reader_test.yaml")
    assert policy == Policy(
        rules=(
            PolicyRule("None", non_resource_urls=("/healthz*", "/version")),
            PolicyRule("RequestResponse", users=("tim",), user_groups=("testers", "developers"),
                       verbs=("patch", "delete", "create"),
                       resources=(GroupResources(), GroupResources(
                           "rbac.authorization.k8s.io", ("clusterroles", "clusterrolebindings"))),
                       namespaces=("default", "kube-system")),
            PolicyRule("Metadata"),
        ),
        source="reader_test.yaml",
    )
    assert [r.line for r in policy.rules] == [5, 9, 18]


def test_policy_wide_fields_and_rule_override() -> None:
    policy = load_policy(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\n"
        "omitManagedFields: true\nrules:\n- level: Request\n  omitManagedFields: false\n"
        "- level: None\n")
    assert policy.omit_stages == ("RequestReceived",)
    assert policy.omit_managed_fields is True
    assert [r.omit_managed_fields for r in policy.rules] == [False, None]


def test_error_summary_is_one_line_naming_file_and_line() -> None:
    with pytest.raises(PolicyError) as info:
        load_policy("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Loud\n"
                    "- level: Quiet\n", "p.yaml")
    err = info.value
    assert isinstance(err, LabError)
    assert str(err) == ('p.yaml:4: rules[0].level: Unsupported value: "Loud": supported values: '
                        '"None", "Metadata", "Request", "RequestResponse" (and 1 more)')
    assert len(err.errors) == 2 and err.lines == [4, 5]


def test_yaml_bomb_is_refused_fast() -> None:
    bomb = "apiVersion: audit.k8s.io/v1\nkind: Policy\na: &a [" + ",".join(["lol"] * 10) + "]\n"
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        bomb += f"{name}: &{name} [" + ",".join([f"*{prev}"] * 10) + "]\n"
    bomb += "rules: [{level: None, users: *i}]\n"  # 10^9 strings if expanded
    start = time.perf_counter()
    with pytest.raises(PolicyError) as info:
        load_policy(bomb)
    assert time.perf_counter() - start < 1.0
    assert info.value.errors == ["failed decoding: yaml: document contains excessive aliasing"]


def test_alias_fanout_within_goyaml_ratio_still_hits_the_node_cap(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # 5 aliases of a 2000-item list stay under goyaml's alias ratio; the lab's cap
    # (1,000,000 nodes, shrunk here to keep the test fast) still stops the expansion.
    monkeypatch.setattr(goyaml, "MAX_NODES", 5_000)
    text = "x: &x [" + ",".join(["a"] * 2000) + "]\ny: [" + ",".join(["*x"] * 5) + "]\n"
    with pytest.raises(PolicyError) as info:
        load_policy(text)
    assert info.value.errors == [
        "failed decoding: yaml: document expands to more than 5000 nodes (refused by the lab)"]


def test_deep_nesting_is_refused_not_a_crash() -> None:
    with pytest.raises(PolicyError) as info:
        load_policy("rules: " + "[" * 5000 + "]" * 5000)
    # libyaml >= 0.2.6 (PyYAML 6.0.4 wheels) stops at its own depth limit first;
    # older ones reach the lab's. Either way a located refusal, not a RecursionError.
    msg = info.value.errors[0]
    assert "nesting deeper than" in msg or "exceeded maximum nesting depth" in msg


def test_huge_input_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# padding\n" * (MAX_POLICY_BYTES // 10 + 1))
    with pytest.raises(PolicyError) as info:
        load_policy_file(big)
    assert "too large" in str(info.value) and str(big) in str(info.value)
    with pytest.raises(PolicyError):
        load_policy(b"#" * (MAX_POLICY_BYTES + 1))


def test_binary_file_is_refused(tmp_path: Path) -> None:
    binary = tmp_path / "policy.bin"
    binary.write_bytes(b"apiVersion: audit.k8s.io/v1\n\x00\x01\x02\x7fELF")
    with pytest.raises(PolicyError) as info:
        load_policy_file(binary)
    err = info.value
    assert "binary" in str(err) and err.line == 2
    assert apiserver_policy_error(err) == (
        "loading audit policy file: failed decoding: yaml: control characters are not allowed"
        f": from file {binary}")


def test_invalid_utf8_uses_libyaml_reader_error() -> None:
    if not LIBYAML:
        pytest.skip("exact reader message needs libyaml")
    with pytest.raises(PolicyError) as info:
        load_policy(b"apiVersion: audit.k8s.io/v1\nkind: \xff\n")
    assert info.value.errors == ["failed decoding: yaml: invalid leading UTF-8 octet"]
    assert info.value.line == 2


def test_missing_file_and_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(PolicyError) as info:
        load_policy_file(missing)
    assert apiserver_policy_error(info.value) == (
        f'loading audit policy file: failed to read file path "{missing}": '
        f"open {missing}: no such file or directory")
    with pytest.raises(PolicyError) as info:
        load_policy_file(tmp_path)
    assert info.value.upstream == (
        f'failed to read file path "{tmp_path}": read {tmp_path}: is a directory')


def test_load_policy_file_reads_a_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "audit-policy.yaml"
    path.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n")
    policy = load_policy_file(path)
    assert policy.source == str(path) and policy.rules[0].line == 4


def test_unknown_group_version_is_not_a_decoding_error() -> None:
    # reader.go returns it bare; only decoder errors get "failed decoding: ".
    with pytest.raises(PolicyError) as info:
        load_policy("rules: [{level: Metadata}]\n", SOURCE)
    assert apiserver_policy_error(info.value) == (
        "loading audit policy file: unknown group version field audit.k8s.io/__internal, "
        f"Kind=Policy in policy: from file {SOURCE}"
    )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_policy_file_is_refused_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "policy.yaml"
    os.mkfifo(fifo)
    start = time.perf_counter()
    with pytest.raises(PolicyError) as info:
        load_policy_file(fifo)
    assert time.perf_counter() - start < 1.0
    assert info.value.errors == [
        f"{fifo} is a named pipe (FIFO), not a regular file "
        "(kube-apiserver would block reading it; the lab refuses to)"
    ]


def test_ignored_fields_are_data_beside_the_warnings() -> None:
    policy = load_policy(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nspec: {}\nrules:\n"
        "- level: None\n  usergroups: [system:nodes]\n"
        "- level: Metadata\n  resources: [{group: '', resource: [secrets]}]\n", SOURCE)
    assert policy.ignored_fields == ((0, "usergroups"), (1, "resources[0].resource"),
                                     (None, "spec"))
    assert policy.ignored_in_rule(0) == ("usergroups",)
    assert policy.ignored_in_rule(1) == ("resources[0].resource",)
    assert policy.ignored_in_rule(2) == ()
    assert 'unknown field "rules[0].usergroups"' in policy.warnings  # the strings stay
