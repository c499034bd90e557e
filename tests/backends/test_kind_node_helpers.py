"""The kind backend's node-file helpers: one stat, one lister, one reader, as the
audit, snapshot and package-upgrade code use them."""

from __future__ import annotations

import pytest
from kind_fakes import FakeNodes, sample

from lab.backends.kind import snapshot
from lab.backends.kind.falco_upgrade import read_kept
from lab.backends.kind.steps import STAT_FORMAT, NodeStat, list_files, node_stat, read_text
from lab.errors import LabError
from lab.kind.nodes import ExecResult

RULES = "/etc/falco/falco_rules.yaml"


def test_node_stat_reads_stats_output() -> None:
    lines = sample("stat-node-format.txt").splitlines()
    got = [NodeStat.parse(line) for line in lines]
    assert got == [
        NodeStat("file", 0o4755, 1795795689.170300874, 1),
        NodeStat("file", 0o644, 1795795689.170300874, 0),
        NodeStat("dir", 0o1777, 1795795689.173183778, 4096),
        NodeStat("symlink", 0o777, 1795795689.173183778, 1),
        NodeStat("file", 0o4755, 1795795689.170300874, 1),
        NodeStat("other", 0o644, 1795795689.173183778, 0),
        NodeStat("other", 0o666, 1795201621.856621641, 0),
    ]
    assert NodeStat.parse("") is None and NodeStat.parse("stat: missing operand") is None


def test_node_stat_follows_links_unless_asked_not_to() -> None:
    nodes = FakeNodes(files={"worker": {"/etc/a": b"xy"}})
    nodes.modes[("worker", "/etc/a")] = 0o600
    assert node_stat(nodes, "worker", "/etc/a") == NodeStat("file", 0o600, nodes.ctime, 2)  # type: ignore[arg-type]
    assert node_stat(nodes, "worker", "/etc/none") is None  # type: ignore[arg-type]
    node_stat(nodes, "worker", "/etc/a", follow=False)  # type: ignore[arg-type]
    assert nodes.commands() == [
        ["stat", "-L", "-c", STAT_FORMAT, "--", "/etc/a"],
        ["stat", "-L", "-c", STAT_FORMAT, "--", "/etc/none"],
        ["stat", "-c", STAT_FORMAT, "--", "/etc/a"],
    ]


def test_list_files_to_a_depth() -> None:
    tree = {p: b"x" for p in ("/d/a", "/d/b/c", "/d/b/e/f", "/dx/no")}
    nodes = FakeNodes(files={"cp": tree})
    assert list_files(nodes, "cp", "/d") == ["/d/a"]  # type: ignore[arg-type]
    assert list_files(nodes, "cp", "/d/", depth=2) == ["/d/a", "/d/b/c"]  # type: ignore[arg-type]
    assert list_files(nodes, "cp", "/d", depth=None) == ["/d/a", "/d/b/c", "/d/b/e/f"]  # type: ignore[arg-type]
    assert list_files(nodes, "cp", "/absent") == []  # type: ignore[arg-type]
    # a find that printed a path outside the folder (a folder named with a newline, say)
    nodes.canned[("find", "/e", "-maxdepth", "1", "-type", "f")] = ExecResult(
        0, "/e/a\n/elsewhere\n/e/b/c\n", ""
    )
    assert list_files(nodes, "cp", "/e") == ["/e/a"]  # type: ignore[arg-type]


def test_unreachable_files_are_read_raw_and_refused_as_read_file_refuses() -> None:
    big = b"x" * (snapshot.MAX_FILE + 1)
    tree = {"/run/latin1": b"caf\xe9\n", "/run/big": big, "/run/d/f": b""}
    nodes = FakeNodes(files={"cp": tree})
    # not UTF-8 on a tmpfs: the snapshot keeps the very bytes
    assert snapshot._read(nodes, "cp", "/run/latin1") == (b"caf\xe9\n", None)  # type: ignore[arg-type]
    assert snapshot._read(nodes, "cp", "/run/big") == (None, "larger than 1 MiB: not saved")  # type: ignore[arg-type]
    assert snapshot._read(nodes, "cp", "/run/none") == (None, None)  # type: ignore[arg-type]
    assert snapshot._read(nodes, "cp", "/run/d") == (  # type: ignore[arg-type]
        None,
        "not saved: is a directory in node 'cp', not a file",
    )
    assert read_text(nodes, "cp", "/run/latin1") == "caf\ufffd\n"  # type: ignore[arg-type]
    assert read_text(nodes, "cp", "/run/big", snapshot.MAX_FILE) is None  # type: ignore[arg-type]
    assert ["head", "-c", str(snapshot.MAX_FILE + 1), "--", "/run/latin1"] in nodes.commands()


def test_a_snapshot_keeps_permissions_without_special_bits() -> None:
    nodes = FakeNodes(files={"cp": {"/etc/a": b"x"}})
    nodes.modes[("cp", "/etc/a")] = 0o4750
    assert snapshot._mode(nodes, "cp", "/etc/a", 0o600) == 0o750  # type: ignore[arg-type]
    assert snapshot._mode(nodes, "cp", "/etc/none", 0o600) == 0o600  # type: ignore[arg-type]


def test_an_upgrade_keeps_the_learners_file_with_its_special_bits() -> None:
    nodes = FakeNodes(files={"worker": {RULES: b"mine\n"}})
    nodes.modes[("worker", RULES)] = 0o2640
    kept = read_kept(nodes, "worker", RULES)  # type: ignore[arg-type]
    assert (kept.data, kept.mode, kept.link) == (b"mine\n", 0o2640, None)
    assert read_kept(nodes, "worker", "/etc/falco/none.yaml").data is None  # type: ignore[arg-type]


def test_an_upgrade_keeps_a_symbolic_link_as_a_link() -> None:
    nodes = FakeNodes(files={"worker": {RULES: b"through the link\n"}})
    nodes.canned[("stat", "-c", STAT_FORMAT, "--", RULES)] = ExecResult(
        0, "a1ff 24 1764237600.000000000\n", ""
    )
    nodes.canned[("readlink", "--", RULES)] = ExecResult(0, "/etc/falco/mine/rules.yaml\n", "")
    kept = read_kept(nodes, "worker", RULES)  # type: ignore[arg-type]
    assert (kept.link, kept.data, kept.mode) == (
        "/etc/falco/mine/rules.yaml",
        b"through the link\n",
        0o777,
    )


def test_an_upgrade_refuses_a_file_over_its_limit() -> None:
    nodes = FakeNodes(files={"worker": {RULES: b"x" * ((1 << 20) + 1)}})
    with pytest.raises(LabError, match="larger than 1 MiB: the lab does not upgrade it"):
        read_kept(nodes, "worker", RULES)  # type: ignore[arg-type]
