"""Conformance table for analyse_apiserver, plus nodefs and the Go-isms behind it."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from lab.engines.audit.flags import APISERVER_FLAGS, FlagError, parse_flags
from lab.engines.audit.gotext import go_parse_duration, go_parse_int, klog_line
from lab.engines.audit.manifest import DEFAULT_MANIFEST, analyse_apiserver, apply_host_changes
from lab.engines.audit.nodefs import NodePathError, node_path, resolve_in_node
from lab.errors import LabError

HERE = Path(__file__).parent
FIXTURE = HERE / "fixtures" / "kube-apiserver.yaml"
TABLE = yaml.safe_load((HERE / "cases" / "manifest.yaml").read_text())
CASES = TABLE["cases"]

FLAG_ANCHOR = "    - --tls-private-key-file=/etc/kubernetes/pki/apiserver.key\n"
MOUNT_ANCHOR = "      name: usr-share-ca-certificates\n      readOnly: true\n"
VOLUME_ANCHOR = "status: {}\n"


# --------------------------------------------------------------------------- building a node


def _yaml_scalar(value: str) -> str:
    # Quote only what YAML would misread; keep "- --flag: value" as the mapping it is.
    if value == "-" or value == "" or value[:1] in "*&!%@`{[":
        return f'"{value}"'
    return value


def _patched_manifest(case: dict[str, Any]) -> str:
    if "raw" in case:
        return str(case["raw"])
    text = FIXTURE.read_text()
    flags = "".join(f"    - {_yaml_scalar(str(f))}\n" for f in case.get("add_flags", []))
    text = text.replace(FLAG_ANCHOR, FLAG_ANCHOR + flags)
    for name in case.get("remove_flags", []):
        text = re.sub(rf"    - --{re.escape(name)}(=[^\n]*)?\n", "", text)
    mounts, volumes = "", ""
    for m in case.get("mounts", []):
        only = m.get("only")
        if only != "volume":
            mounts += f"    - mountPath: {m['mountPath']}\n      name: {m['name']}\n"
            if "readOnly" in m:
                ro = m["readOnly"]
                mounts += f"      readOnly: {str(ro).lower() if isinstance(ro, bool) else ro}\n"
        if only != "mount":
            if m.get("emptyDir"):
                volumes += f"  - emptyDir: {{}}\n    name: {m['name']}\n"
            else:
                volumes += f"  - hostPath:\n      path: {m['hostPath']}\n"
                if m.get("type") is not None:
                    volumes += f"      type: {m['type']}\n"
                volumes += f"    name: {m['name']}\n"
    text = text.replace(MOUNT_ANCHOR, MOUNT_ANCHOR + mounts)
    text = text.replace(VOLUME_ANCHOR, volumes + VOLUME_ANCHOR)
    for name in case.get("remove_mounts", []):
        text = re.sub(
            rf"    - mountPath: [^\n]*\n      name: {re.escape(name)}\n(      readOnly: [^\n]*\n)?",
            "",
            text,
        )
        text = re.sub(
            r"  - hostPath:\n      path: [^\n]*\n(      type: [^\n]*\n)?"
            rf"    name: {re.escape(name)}\n",
            "",
            text,
        )
    for old, new in case.get("replace", []):
        assert old in text, f"replace target not in manifest: {old!r}"
        text = text.replace(old, new)
    return text


def build_node(root: Path, case: dict[str, Any]) -> Path:
    node = root / "nodes" / "controlplane"
    manifest = node / DEFAULT_MANIFEST.lstrip("/")
    manifest.parent.mkdir(parents=True)
    manifest.write_text(_patched_manifest(case))
    dirs = [] if case.get("no_default_dirs") else list(TABLE["defaults"]["dirs"])
    for d in dirs + list(case.get("dirs", [])):
        (node / d.lstrip("/")).mkdir(parents=True, exist_ok=True)
    for path, content in (case.get("files") or {}).items():
        if isinstance(content, str) and content.startswith("policy:"):
            content = TABLE["policies"][content.removeprefix("policy:")]
        target = node / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    for link, target in (case.get("symlinks") or {}).items():
        real = node / link.lstrip("/")
        real.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, real)
    return node


def _as_list(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]


# --------------------------------------------------------------------------- the table


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_manifest_case(case: dict[str, Any], tmp_path: Path) -> None:
    node = build_node(tmp_path, case)
    before = sorted(str(p) for p in node.rglob("*"))
    state = analyse_apiserver(node, now=datetime(2026, 5, 1, 12, 0, tzinfo=UTC))
    exp = case["expect"]
    context = f"error={state.error!r} notes={state.notes}"

    assert state.running is exp["running"], context
    if state.running:
        assert state.error is None and state.lab_error() is None
    else:
        assert state.error, "a stopped apiserver must say why"
        assert isinstance(state.lab_error(), LabError)
    if "error_exact" in exp:
        assert state.error == exp["error_exact"]
    for part in _as_list(exp.get("error", [])):
        assert part in (state.error or ""), context
    if "error_source" in exp:
        assert state.error_source == exp["error_source"]
    if "error_file" in exp:
        assert state.error_file == exp["error_file"]
    if "error_line" in exp:
        assert state.error_line == exp["error_line"], context
    if "log_line" in exp:
        assert exp["log_line"] in (state.log_line or ""), state.log_line

    if "log_path" in exp:
        assert (state.log.path if state.log else None) == exp["log_path"]
    if "log_node_path" in exp:
        got = state.log.node_path if state.log else None
        assert got == exp["log_node_path"]
        if got is not None:
            assert state.log is not None and state.log.host_path == resolve_in_node(node, got)
        elif state.log is not None:
            assert state.log.host_path is None
    for key in ("format", "mode", "maxsize"):
        if f"log_{key}" in exp:
            assert state.log is not None and getattr(state.log, key) == exp[f"log_{key}"]
    if "policy_file" in exp:
        assert state.policy_file == exp["policy_file"]
    if "policy_loaded" in exp:
        assert (state.policy is not None) is exp["policy_loaded"]
    if "notes" in exp:
        if exp["notes"] == []:
            assert state.notes == []
        for part in exp["notes"]:
            assert any(part in n for n in state.notes), state.notes
    changed = {c.path for c in state.host_changes}
    for path in exp.get("host_changes", []):
        assert path in changed, sorted(changed)
    for path in exp.get("no_host_changes", []):
        assert path not in changed, sorted(changed)
    for name, value in (exp.get("flags") or {}).items():
        assert state.flags.get(name) == value, state.flags
    for name, line in (exp.get("flag_lines") or {}).items():
        assert state.flag_lines.get(name) == line, state.flag_lines
    if exp.get("flags_empty"):
        assert state.flags == {} and state.flag_lines == {}
    elif "flags_empty" in exp:
        assert state.flags

    # Analysis never touches the tree; apply_host_changes makes exactly those paths.
    assert sorted(str(p) for p in node.rglob("*")) == before
    made = apply_host_changes(node, state)
    for change, real in zip(state.host_changes, made, strict=True):
        assert real.is_dir() if change.kind == "dir" else real.is_file()
        assert node_path(node, real) == change.path
    # A restart on the node as it now is ends the same way and creates nothing more.
    again = analyse_apiserver(node)
    assert (again.running, again.error) == (state.running, state.error)
    assert again.host_changes == []


def test_table_covers_the_required_behaviours() -> None:
    names = {c["name"] for c in CASES}
    assert len(CASES) >= 40
    for needed in (
        "baseline",
        "unknown-flag",
        "bad-int-maxage",
        "invalid-format",
        "invalid-mode",
        "policy-not-mounted",
        "log-dir-mount-read-only",
        "log-path-not-mounted",
        "log-to-stdout",
        "mount-names-missing-volume",
        "yaml-syntax-error",
        "policy-untyped-missing-becomes-directory",
        "bad-value-is-still-reported-as-written",
    ):
        assert needed in names


def test_fixture_is_what_kubeadm_writes() -> None:
    doc = yaml.safe_load(FIXTURE.read_text())
    c = doc["spec"]["containers"][0]
    flags = c["command"][1:]
    # kubeadm sorts its arguments; every one is a flag kube-apiserver knows.
    assert flags == sorted(flags)
    assert all(f.split("=", 1)[0][2:] in APISERVER_FLAGS for f in flags)
    assert [m["name"] for m in c["volumeMounts"]] == [
        "ca-certs",
        "etc-ca-certificates",
        "k8s-certs",
        "usr-local-share-ca-certificates",
        "usr-share-ca-certificates",
    ]
    assert all(m["readOnly"] for m in c["volumeMounts"])
    assert {v["hostPath"]["type"] for v in doc["spec"]["volumes"]} == {"DirectoryOrCreate"}
    assert c["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert c["startupProbe"]["failureThreshold"] == 24
    assert doc["spec"]["priorityClassName"] == "system-node-critical"
    shared = HERE.parents[1] / "scenarios" / "_shared" / "kube-apiserver.yaml"
    if shared.exists():
        assert shared.read_text() == FIXTURE.read_text()


def test_every_audit_flag_is_known() -> None:
    for name in (
        "audit-policy-file",
        "audit-log-path",
        "audit-log-maxage",
        "audit-log-maxbackup",
        "audit-log-maxsize",
        "audit-log-format",
        "audit-log-mode",
        "audit-log-compress",
        "audit-log-version",
        "audit-log-batch-buffer-size",
        "audit-log-truncate-enabled",
        "audit-webhook-config-file",
        "audit-webhook-initial-backoff",
        "audit-webhook-mode",
        "audit-webhook-version",
    ):
        assert name in APISERVER_FLAGS


def test_missing_manifest(tmp_path: Path) -> None:
    state = analyse_apiserver(tmp_path)
    assert not state.running
    assert state.error_source == "kubelet"
    assert "no static pod manifest" in (state.error or "")


def test_webhook_is_noted_not_simulated(tmp_path: Path) -> None:
    node = build_node(
        tmp_path, {"add_flags": ["--audit-webhook-config-file=/etc/kubernetes/wh.yaml"]}
    )
    state = analyse_apiserver(node)
    assert state.running
    assert state.webhook_config == "/etc/kubernetes/wh.yaml"
    assert any("webhook" in n for n in state.notes)


def test_flag_lines_point_at_the_last_occurrence(tmp_path: Path) -> None:
    node = build_node(tmp_path, {"add_flags": ["--audit-log-path=/a.log", "--audit-log-path=-"]})
    state = analyse_apiserver(node)
    assert state.flag_lines["audit-log-path"] == 44
    assert state.flag_lines["etcd-servers"] == 24
    assert state.manifest_line == 13
    assert [m.name for m in state.mounts][:1] == ["ca-certs"]
    assert state.mounts[2].host_path == "/etc/kubernetes/pki"
    assert state.mounts[2].read_only and state.mounts[2].host_type == "DirectoryOrCreate"


def test_kubelet_log_line_shape() -> None:
    line = klog_line(
        "command failed",
        [("err", 'open "x": no such file')],
        where="run.go:74",
        now=datetime(2026, 1, 19, 20, 2, 18, 462305, tzinfo=UTC),
    )
    head = "E0119 20:02:18.462305       1 run.go:74] "
    assert line == head + '"command failed" err="open \\"x\\": no such file"'


# --------------------------------------------------------------------------- Go parsing


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("42", 42),
        ("-7", -7),
        ("+7", 7),
        ("0x1F", 31),
        ("010", 8),
        ("0o10", 8),
        ("0b101", 5),
        ("1_000", 1000),
        ("0_7", 7),
        ("0x_1f", 31),
    ],
)
def test_go_parse_int_accepts(text: str, value: int) -> None:
    assert go_parse_int(text) == value


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "invalid syntax"),
        ("x", "invalid syntax"),
        ("1.5", "invalid syntax"),
        ("08", "invalid syntax"),
        ("_1", "invalid syntax"),
        ("1_", "invalid syntax"),
        ("1__0", "invalid syntax"),
        (" 1", "invalid syntax"),
        ("9223372036854775808", "value out of range"),
        ("-9223372036854775809", "value out of range"),
    ],
)
def test_go_parse_int_rejects(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        go_parse_int(text)


def testgo_parse_duration() -> None:
    assert go_parse_duration("1h30m") == 5400 * 10**9
    assert go_parse_duration("1.5s") == 1_500_000_000
    assert go_parse_duration("0") == 0
    with pytest.raises(ValueError, match='time: missing unit in duration "5"'):
        go_parse_duration("5")
    with pytest.raises(ValueError, match='time: invalid duration ""'):
        go_parse_duration("")


# --------------------------------------------------------------------------- flags as written


def test_flags_as_written_survive_a_parse_error() -> None:
    argv = [
        ("--audit-log-maxage=ten", 1),
        ("--audit-log-path", 2),
        ("/var/log/audit.log", 3),
        ("-audit-policy-file=/p.yaml", 4),
        ("--no-such-flag", 5),
        ("--secure-port", 6),
    ]
    with pytest.raises(FlagError, match='invalid argument "ten"'):
        parse_flags(argv)
    written = parse_flags(argv, strict=False)
    assert written.values == {
        "audit-log-maxage": "ten",
        "audit-log-path": "/var/log/audit.log",
        "no-such-flag": "",
        "secure-port": "",
    }
    assert written.lines["audit-log-path"] == 2


_ARGS = st.sampled_from(
    [
        "--audit-log-path=-",
        "--audit-log-path",
        "/var/log/a.log",
        "--audit_log_maxage=7",
        "--audit-log-maxage",
        "0x10",
        "--audit-log-maxage=ten",
        "--audit-log-compress",
        "--audit-log-compress=false",
        "--help=false",
        "--version=false",
        "-v=2",
        "-v",
        "3",
        "-h",
        "--unknown",
        "--",
        "x",
        "",
    ]
)


@given(st.lists(_ARGS, max_size=8))
def test_lenient_parse_agrees_with_pflag(args: list[str]) -> None:
    argv: list[tuple[str, int | None]] = [(a, i) for i, a in enumerate(args)]
    try:
        strict = parse_flags(argv)
    except FlagError:
        return
    assert parse_flags(argv, strict=False) == strict


# --------------------------------------------------------------------------- nodefs


def test_resolve_maps_into_the_tree(tmp_path: Path) -> None:
    root = tmp_path / "node"
    (root / "etc").mkdir(parents=True)
    assert (
        resolve_in_node(root, "/etc/kubernetes/x.yaml") == root.resolve() / "etc/kubernetes/x.yaml"
    )
    assert resolve_in_node(root, "/") == root.resolve()
    assert resolve_in_node(root, "/etc/../etc/./a") == root.resolve() / "etc/a"


@pytest.mark.parametrize("bad", ["/../etc/passwd", "/etc/../../x", "relative/path", ""])
def test_resolve_refuses_escapes_and_relative(tmp_path: Path, bad: str) -> None:
    with pytest.raises(NodePathError):
        resolve_in_node(tmp_path, bad)


def test_resolve_symlinks_use_node_root(tmp_path: Path) -> None:
    root = tmp_path / "node"
    (root / "srv").mkdir(parents=True)
    (root / "srv" / "p.yaml").write_text("x")
    (root / "etc").mkdir()
    os.symlink("/srv/p.yaml", root / "etc" / "abs")
    os.symlink("../srv/p.yaml", root / "etc" / "rel")
    os.symlink("../../../outside", root / "etc" / "escape")
    os.symlink(str(tmp_path), root / "etc" / "hostabs")  # absolute: read from the node root
    assert resolve_in_node(root, "/etc/abs") == (root / "srv/p.yaml").resolve()
    assert resolve_in_node(root, "/etc/rel") == (root / "srv/p.yaml").resolve()
    assert resolve_in_node(root, "/etc/abs", follow_final=False) == root.resolve() / "etc/abs"
    with pytest.raises(NodePathError, match="outside the node"):
        resolve_in_node(root, "/etc/escape")
    inside = resolve_in_node(root, "/etc/hostabs")
    assert str(inside).startswith(str(root.resolve()))


def test_resolve_symlink_loop(tmp_path: Path) -> None:
    os.symlink("/b", tmp_path / "a")
    os.symlink("/a", tmp_path / "b")
    with pytest.raises(NodePathError, match="too many levels"):
        resolve_in_node(tmp_path, "/a/x")


def test_resolve_error_is_a_lab_error(tmp_path: Path) -> None:
    with pytest.raises(LabError):
        resolve_in_node(tmp_path, "/..")


def test_messages_keep_the_path_as_written(tmp_path: Path) -> None:
    case = {
        "add_flags": ["--audit-log-path=/var/log/kubernetes/audit/"],
        "mounts": [
            {
                "name": "audit-log",
                "hostPath": "/var/log/kubernetes/audit",
                "mountPath": "/var/log/kubernetes/audit",
                "type": "DirectoryOrCreate",
            }
        ],
    }
    state = analyse_apiserver(build_node(tmp_path, case))
    assert state.error == "ensureLogFile: open /var/log/kubernetes/audit/: is a directory"
    assert state.log is not None and state.log.path == "/var/log/kubernetes/audit"


def test_alias_bomb_is_refused(tmp_path: Path) -> None:
    rows = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(9):
        prev, cur = chr(97 + i), chr(98 + i)
        rows.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    state = analyse_apiserver(build_node(tmp_path, {"raw": "\n".join(rows) + "\n"}))
    assert not state.running
    assert "excessive aliasing" in (state.error or "")


@pytest.mark.parametrize(
    "content, says",
    [
        ("a: " + "[" * 5000 + "]" * 5000, "nesting deeper than 100 levels"),
        ("\x00\x01binary", "unacceptable character #x0000"),
    ],
    ids=["deep nesting", "binary"],
)
def test_hostile_manifest_is_a_kubelet_error_not_a_crash(
    tmp_path: Path, content: str, says: str
) -> None:
    manifest = tmp_path / "etc/kubernetes/manifests/kube-apiserver.yaml"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(content)
    state = analyse_apiserver(tmp_path)
    assert not state.running
    assert state.error is not None and "couldn't parse as pod" in state.error
    assert says in state.error
