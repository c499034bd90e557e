"""Conformance table for analyse_apiserver, plus nodefs and the Go-isms behind it."""

from __future__ import annotations

import os
import re
import socket
import stat
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from lab.engines.audit.flags import APISERVER_FLAGS, FlagError, parse_flags
from lab.engines.audit.gotext import (
    go_aggregate,
    go_file_mode,
    go_parse_duration,
    go_parse_int,
    go_parse_uint,
    klog_line,
)
from lab.engines.audit.manifest import (
    DEFAULT_MANIFEST,
    MAX_MANIFEST_BYTES,
    analyse_apiserver,
    apply_host_changes,
)
from lab.engines.audit.policy import MAX_POLICY_BYTES
from lab.errors import LabError
from lab.nodefs import NodePathError, resolve_in_node

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


def _other_manifest(spec: Any, canonical: str) -> str:
    if spec == "original":
        return FIXTURE.read_text()
    if spec == "same":
        return canonical
    if "raw" in spec:
        return str(spec["raw"])
    return _patched_manifest({k: v for k, v in spec.items() if k != "raw"})


def build_node(root: Path, case: dict[str, Any]) -> Path:
    node = root / "nodes" / "controlplane"
    manifest = node / DEFAULT_MANIFEST.lstrip("/")
    manifest.parent.mkdir(parents=True)
    canonical = _patched_manifest(case)
    if not case.get("no_canonical"):
        manifest.write_text(canonical)
    for name, spec in (case.get("other_manifests") or {}).items():
        other = manifest.parent / name
        other.parent.mkdir(parents=True, exist_ok=True)
        other.write_text(_other_manifest(spec, canonical))
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


def _node_path(node: Path, real: Path) -> str:
    rel = real.relative_to(node.resolve())
    return "/" + rel.as_posix() if rel.parts else "/"


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
    for part in exp.get("no_notes", []):
        assert not any(part in n for n in state.notes), state.notes
    if "manifest_file" in exp:
        assert state.manifest_file == exp["manifest_file"]
    if exp.get("mounts_empty"):
        assert state.mounts == []
    for name in exp.get("no_mounts", []):
        assert name not in [m.name for m in state.mounts]
    for want in exp.get("mounts", []):
        named = [m for m in state.mounts if m.name == want["name"]]
        assert named, [m.name for m in state.mounts]
        for key, value in want.items():
            assert getattr(named[0], key) == value, (key, named[0])
    changed = {c.path for c in state.host_changes}
    for path in exp.get("host_changes", []):
        assert path in changed, sorted(changed)
    for path in exp.get("no_host_changes", []):
        assert path not in changed, sorted(changed)
    for name, value in (exp.get("flags") or {}).items():
        assert state.flags.get(name) == value, state.flags
    if exp.get("flags_empty"):
        assert state.flags == {}
    elif "flags_empty" in exp:
        assert state.flags

    # Analysis never touches the tree; apply_host_changes makes exactly those paths.
    assert sorted(str(p) for p in node.rglob("*")) == before
    made = apply_host_changes(node, state)
    for change, real in zip(state.host_changes, made, strict=True):
        assert real.is_dir() if change.kind == "dir" else real.is_file()
        assert _node_path(node, real) == change.path
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
        "backup-copy-sorted-later-runs-instead",
        "broken-backup-does-not-stop-the-good-manifest",
        "invalid-edit-leaves-the-backup-running",
        "dot-file-is-not-a-manifest",
        "mount-name-typo-keeps-the-mounts",
        "policy-typo-exists-on-neither-side",
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


def test_errors_point_at_the_last_occurrence_of_a_flag(tmp_path: Path) -> None:
    flags = ["--audit-log-path=-", "--audit-log-maxage=1", "--audit-log-maxage=-1"]
    node = build_node(tmp_path, {"add_flags": flags})
    state = analyse_apiserver(node)
    assert state.error == "--audit-log-maxage -1 can't be a negative number"
    assert state.error_line == 45
    assert state.flags["audit-log-maxage"] == "-1"
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


def test_go_parse_uint_and_aggregate_and_file_mode() -> None:
    assert go_parse_uint("0x10") == 16
    assert go_parse_uint("18446744073709551615") == 2**64 - 1
    for bad, reason in (
        ("+1", "invalid syntax"),
        ("-1", "invalid syntax"),
        ("18446744073709551616", "value out of range"),
    ):
        with pytest.raises(ValueError, match=reason):
            go_parse_uint(bad)
    assert go_aggregate(["a"]) == "a"
    assert go_aggregate(["a", "b", "a"]) == "[a, b]"
    assert go_aggregate(["a", "a"]) == "a"
    assert go_file_mode(stat.S_IFIFO | 0o644) == "prw-r--r--"
    assert go_file_mode(stat.S_IFCHR | 0o666) == "Dcrw-rw-rw-"
    assert go_file_mode(stat.S_IFSOCK | 0o755) == "Srwxr-xr-x"
    assert go_file_mode(stat.S_IFREG | stat.S_ISUID | 0o755) == "urwxr-xr-x"


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


def _bomb_rows(levels: int = 9) -> list[str]:
    rows = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(levels):
        prev, cur = chr(97 + i), chr(98 + i)
        rows.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return rows


def _merge_bomb_rows(levels: int = 8) -> list[str]:
    rows = ["m0: &m0 {k0: v, k1: v, k2: v, k3: v, k4: v, k5: v, k6: v, k7: v}"]
    for i in range(1, levels):
        rows.append(f"m{i}: &m{i} {{<<: [" + ", ".join([f"*m{i - 1}"] * 8) + "]}")
    return rows


def _key_bomb_rows() -> list[str]:
    # The expansion hides in a key: never built without counting it.
    return (
        ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
        + [
            f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]"
            for i in range(2)
        ]
        + ["? [" + ", ".join(["*c"] * 400) + "]\n: x"]
    )


@pytest.mark.parametrize(
    "rows", [_bomb_rows(), _merge_bomb_rows(), _key_bomb_rows()], ids=["aliases", "merge", "key"]
)
def test_alias_bomb_is_refused_quickly(tmp_path: Path, rows: list[str]) -> None:
    node = build_node(tmp_path, {"raw": "\n".join(rows) + "\n"})
    start = time.perf_counter()
    state = analyse_apiserver(node)
    assert time.perf_counter() - start < 1.0
    assert not state.running
    assert "excessive aliasing" in (state.error or "")


def test_asterisks_in_comments_are_not_aliases(tmp_path: Path) -> None:
    # The regex pre-check used to count these 101 "*1" as aliases and refuse the pod.
    comments = "".join(f"# step *{i}\n" for i in range(101))
    node = build_node(tmp_path, {"replace": [["apiVersion: v1\n", comments + "apiVersion: v1\n"]]})
    state = analyse_apiserver(node)
    assert state.running, state.error


# --------------------------------------------------------------------------- reading node files


def _manifest_path(node: Path) -> Path:
    return node / DEFAULT_MANIFEST.lstrip("/")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_manifest_fifo_is_skipped_like_kubelet(tmp_path: Path) -> None:
    manifest = _manifest_path(tmp_path)
    manifest.parent.mkdir(parents=True)
    os.mkfifo(manifest, 0o644)
    start = time.perf_counter()
    state = analyse_apiserver(tmp_path, now=datetime(2026, 5, 1, 12, 0, tzinfo=UTC))
    assert time.perf_counter() - start < 1.0  # stat first: the FIFO is never opened
    assert not state.running and state.error_source == "kubelet"
    assert "is a named pipe (FIFO)" in (state.error or "")
    assert state.log_line == (
        'E0501 12:00:00.000000     700 file.go:193] "Manifest path is not a directory or file" '
        'path="/etc/kubernetes/manifests/kube-apiserver.yaml" mode="prw-r--r--"'
    )


def test_manifest_directory_is_skipped_like_kubelet(tmp_path: Path) -> None:
    _manifest_path(tmp_path).mkdir(parents=True)
    state = analyse_apiserver(tmp_path)
    assert not state.running
    assert (
        state.log_line is not None
        and (
            '"Provided manifest path is a directory, not recursing into manifest path" '
            'path="/etc/kubernetes/manifests/kube-apiserver.yaml"'
        )
        in state.log_line
    )


def test_manifest_at_the_read_limit_is_refused(tmp_path: Path) -> None:
    manifest = _manifest_path(tmp_path)
    manifest.parent.mkdir(parents=True)
    # utilio.ReadAtMost fails once it has read maxConfigLength bytes: exactly 10 MiB is too much.
    with manifest.open("wb") as fh:
        fh.truncate(MAX_MANIFEST_BYTES)
    state = analyse_apiserver(tmp_path)
    assert not state.running
    assert (state.error or "").startswith("the read limit is reached")
    assert 'err="the read limit is reached"' in (state.log_line or "")
    with manifest.open("r+b") as fh:
        fh.truncate(MAX_MANIFEST_BYTES - 1)  # one byte less: read, then refused as YAML
    assert "read limit" not in (analyse_apiserver(tmp_path).error or "")


POLICY_CASE = {
    "add_flags": [
        "--audit-policy-file=/etc/kubernetes/audit/policy.yaml",
        "--audit-log-path=/var/log/kubernetes/audit/audit.log",
    ],
    "mounts": [
        {
            "name": "audit",
            "hostPath": "/etc/kubernetes/audit",
            "mountPath": "/etc/kubernetes/audit",
            "type": "DirectoryOrCreate",
        },
        {
            "name": "audit-log",
            "hostPath": "/var/log/kubernetes/audit",
            "mountPath": "/var/log/kubernetes/audit",
            "type": "DirectoryOrCreate",
        },
    ],
    "dirs": ["/etc/kubernetes/audit"],
}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_policy_fifo_is_refused_not_read(tmp_path: Path) -> None:
    node = build_node(tmp_path, POLICY_CASE)
    os.mkfifo(node / "etc/kubernetes/audit/policy.yaml")
    start = time.perf_counter()
    state = analyse_apiserver(node)
    assert time.perf_counter() - start < 1.0
    assert not state.running and state.error_source == "kube-apiserver"
    assert state.error == (
        'loading audit policy file: failed to read file path "/etc/kubernetes/audit/policy.yaml": '
        "/etc/kubernetes/audit/policy.yaml is a named pipe (FIFO), not a regular file "
        "(kube-apiserver would block reading it; the lab refuses to)"
    )


def test_policy_socket_fails_to_open_like_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = build_node(tmp_path, POLICY_CASE)
    monkeypatch.chdir(node / "etc/kubernetes/audit")  # AF_UNIX paths are short: bind relatively
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind("policy.yaml")
        state = analyse_apiserver(node)
    assert state.error == (
        'loading audit policy file: failed to read file path "/etc/kubernetes/audit/policy.yaml": '
        "open /etc/kubernetes/audit/policy.yaml: no such device or address"
    )


def test_oversized_policy_is_read_only_to_the_limit(tmp_path: Path) -> None:
    node = build_node(tmp_path, POLICY_CASE)
    with (node / "etc/kubernetes/audit/policy.yaml").open("wb") as fh:
        fh.truncate(50 * MAX_POLICY_BYTES)
    state = analyse_apiserver(node)
    assert not state.running
    assert f"more than {MAX_POLICY_BYTES} bytes" in (state.error or "")


def test_pod_validation_order() -> None:
    from lab.engines.audit.goyaml import Lines
    from lab.engines.audit.podspec import validate_pod

    spec = {
        "volumes": [
            {"name": "a", "hostPath": {"path": "", "type": "Nope"}},
            {"name": "a", "emptyDir": {}},
            {"emptyDir": {}, "configMap": {}},
        ]
    }
    errs, _ = validate_pod(spec, Lines())
    assert errs == [
        # Empty path: validateHostPathVolumeSource returns before checking the type.
        "spec.volumes[0].hostPath.path: Required value",
        # Volume 0 had errors, so it is not registered: "a" again is no duplicate.
        "spec.volumes[2].configMap: Forbidden: may not specify more than 1 volume type",
        "spec.volumes[2].name: Required value",
        # ValidatePodSpec validates the containers after the volumes.
        "spec.containers: Required value",
    ]


@pytest.mark.parametrize(
    "content, says",
    [
        # libyaml >= 0.2.6 (PyYAML 6.0.4 wheels) refuses first with its own words.
        (
            "a: " + "[" * 5000 + "]" * 5000,
            ("nesting deeper than 100 levels", "exceeded maximum nesting depth"),
        ),
        ("\x00\x01binary", "unacceptable character #x0000"),
    ],
    ids=["deep nesting", "binary"],
)
def test_hostile_manifest_is_a_kubelet_error_not_a_crash(
    tmp_path: Path, content: str, says: str | tuple[str, ...]
) -> None:
    manifest = tmp_path / "etc/kubernetes/manifests/kube-apiserver.yaml"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(content)
    state = analyse_apiserver(tmp_path)
    assert not state.running
    assert state.error is not None and "couldn't parse as pod" in state.error
    options = (says,) if isinstance(says, str) else says
    assert any(o in state.error for o in options), state.error


def test_running_manifest_alone(tmp_path: Path) -> None:
    from lab.engines.audit.manifest import running_manifest

    node = build_node(tmp_path, {"other_manifests": {"kube-apiserver.yaml.bak": "original"}})
    path, notes = running_manifest(node)
    assert path == DEFAULT_MANIFEST + ".bak"
    assert notes and notes[0].startswith(f"kubelet runs the kube-apiserver pod from {path}")
    (node / path.lstrip("/")).unlink()
    assert running_manifest(node) == (DEFAULT_MANIFEST, [])
    assert running_manifest(tmp_path / "empty-node") == (DEFAULT_MANIFEST, [])


@pytest.mark.parametrize("value, prints", [("F", False), ("FALSE", False), ("f", False),
                                           ("true", True), ("raw", True)])
def test_version_flag_values_as_verflag_reads_them(value: str, prints: bool) -> None:
    from lab.engines.audit.flags import parse_flags

    parsed = parse_flags([("kube-apiserver", 1), (f"--version={value}", 2)])
    assert parsed.version is prints
