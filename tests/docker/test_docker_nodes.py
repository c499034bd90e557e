"""LabNodes against a real Docker engine: exec, files, limits and the label guard.

The containers stand in for kind nodes: they carry kind's labels for the cluster
cks-lab-dockertest (plus decoys that must stay untouched). Checks read the
containers back through the plain docker SDK, not through the code under test.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from lab.backends.kind.node_files import KindNodeFiles
from lab.backends.sim.node_files import MAX_ANSWER_BYTES, SimNodeFiles
from lab.errors import LabError
from lab.evidence import FileFact
from lab.kind.names import KIND_CLUSTER_LABEL, KIND_ROLE_LABEL
from lab.kind.nodes import (
    ExecTimeout,
    LabNodes,
    NodeContainer,
    NodeFileError,
    node_container_names,
)

CLUSTER = "cks-lab-dockertest"
CONTROL_PLANE = f"{CLUSTER}-control-plane"
WORKER = f"{CLUSTER}-worker"
MARKER = "/etc/decoy-marker"


def labels(cluster: str, role: str) -> dict[str, str]:
    return {KIND_CLUSTER_LABEL: cluster, KIND_ROLE_LABEL: role}


def raw(container: Any, script: str) -> tuple[int, str]:
    """Run a shell snippet through the plain SDK (the test's own view of the node)."""
    code, out = container.exec_run(["sh", "-c", script])
    return code, out.decode()


# The mounts kind gives its nodes: tmpfs /tmp and /run, an anonymous volume at /var.
KIND_MOUNTS: dict[str, Any] = {"tmpfs": {"/tmp": "", "/run": ""}, "volumes": ["/var"]}


@pytest.fixture(scope="module")
def cluster(containers: Any) -> dict[str, Any]:
    return {
        "control-plane": containers.run(
            CONTROL_PLANE, labels(CLUSTER, "control-plane"), **KIND_MOUNTS
        ),
        "worker": containers.run(WORKER, labels(CLUSTER, "worker"), **KIND_MOUNTS),
        # created, never started: a node of the cluster that is down
        "stopped": containers.run(f"{CLUSTER}-worker2", labels(CLUSTER, "worker"), start=False),
    }


@pytest.fixture(scope="module")
def decoys(containers: Any) -> dict[str, Any]:
    """Containers the lab must refuse: no kind label, another lab cluster, a non-lab cluster."""
    made = {
        "unlabelled": containers.run(f"{CLUSTER}-stray", {}),
        "other-lab": containers.run(
            "cks-lab-other-control-plane", labels("cks-lab-other", "worker")
        ),
        "non-lab": containers.run("cks-lab-dockertest-prod", labels("prod", "control-plane")),
    }
    for container in made.values():
        assert raw(container, f"echo original > {MARKER}")[0] == 0
    return made


@pytest.fixture
def nodes(cluster: dict[str, Any], docker_client: Any) -> LabNodes:
    names = node_container_names(CLUSTER, [("controlplane", "control-plane"), ("node01", "worker")])
    return LabNodes(CLUSTER, names, client=docker_client)


# --- exec -------------------------------------------------------------------


def test_exec_separates_stdout_and_stderr_and_returns_the_exit_code(nodes: LabNodes) -> None:
    result = nodes.exec("controlplane", ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (result.code, result.stdout, result.stderr) == (3, "out\n", "err\n")


def test_exec_passes_env_and_user(nodes: LabNodes) -> None:
    result = nodes.exec("node01", ["sh", "-c", 'echo "$GREETING $(id -u)"'], env={"GREETING": "hi"})
    assert result.stdout == "hi 0\n"
    as_nobody = nodes.exec("node01", ["id", "-u"], user="nobody")
    assert as_nobody.stdout.strip() == "65534"


def test_exec_runs_in_the_mapped_container(nodes: LabNodes, cluster: dict[str, Any]) -> None:
    # a file only that container has, written through the plain SDK
    for role in ("control-plane", "worker"):
        assert raw(cluster[role], f"echo {role} > /etc/which-node")[0] == 0
    assert nodes.exec("node01", ["cat", "/etc/which-node"]).stdout == "worker\n"
    assert nodes.exec("controlplane", ["cat", "/etc/which-node"]).stdout == "control-plane\n"


def test_exec_as_a_missing_user_says_why(nodes: LabNodes) -> None:
    # docker, not the command, refuses: its reason arrives on stdout
    result = nodes.exec("node01", ["true"], user="no-such-user")
    assert result.code != 0
    assert "unable to find user no-such-user" in result.why()


def test_file_errors_carry_dockers_reason(
    containers: Any, docker_client: Any, node_image: str
) -> None:
    """When docker itself cannot start the command (here: the node has no `timeout`),
    put_file and remove say what docker said, not nothing."""
    other = "cks-lab-dockerbroken"  # a cluster of its own: the others' listing stays as it is
    broken = containers.run(f"{other}-control-plane", labels(other, "control-plane"))
    assert raw(broken, "rm /bin/timeout")[0] == 0
    nodes = LabNodes(other, client=docker_client)
    with pytest.raises(LabError, match=r"cannot remove /etc/x in node .*: .*timeout.*not found"):
        nodes.remove(broken.name, "/etc/x")
    with pytest.raises(LabError, match=r"cannot create folder /etc/new .*: .*timeout.*not found"):
        nodes.put_file(broken.name, "/etc/new/file", b"x")


def test_exec_decodes_bad_utf8_with_replacement(nodes: LabNodes) -> None:
    result = nodes.exec("controlplane", ["printf", "ok\\377"])
    assert result.stdout == "ok\ufffd"


def test_exec_of_a_missing_command_is_a_failed_result(nodes: LabNodes) -> None:
    result = nodes.exec("controlplane", ["no-such-command"])
    assert result.code == 127


def test_exec_large_output_arrives_whole(nodes: LabNodes) -> None:
    # Many multiplexed frames: the reader must stitch them back in order.
    result = nodes.exec("controlplane", ["sh", "-c", "seq 1 200000"])
    lines = result.stdout.splitlines()
    assert result.code == 0 and len(lines) == 200000 and lines[-1] == "200000"


def test_exec_times_out_and_kills_the_command(nodes: LabNodes, cluster: dict[str, Any]) -> None:
    started = time.monotonic()
    with pytest.raises(ExecTimeout, match="did not finish within 1 s"):
        nodes.exec("controlplane", ["sleep", "47"], timeout=1)
    assert time.monotonic() - started < 5
    time.sleep(0.3)
    code, procs = raw(cluster["control-plane"], "ps -o args")
    assert code == 0 and "sleep 3600" in procs and "sleep 47" not in procs


def test_exec_on_a_stopped_node_says_it_is_not_running(docker_client: Any) -> None:
    stopped = LabNodes(CLUSTER, {"node02": f"{CLUSTER}-worker2"}, client=docker_client)
    with pytest.raises(LabError, match="is not running.*cks-lab up"):
        stopped.exec("node02", ["true"])


def test_a_missing_node_container_points_at_cks_lab_up(docker_client: Any) -> None:
    gone = LabNodes("cks-lab-dockertest-absent", client=docker_client)
    with pytest.raises(LabError, match="does not exist.*cks-lab up"):
        gone.exec("cks-lab-dockertest-absent-control-plane", ["true"])


# --- files ------------------------------------------------------------------


def test_put_file_creates_parents_with_mode_and_exact_bytes(
    nodes: LabNodes, cluster: dict[str, Any]
) -> None:
    data = bytes(range(256)) * 3
    nodes.put_file("node01", "/opt/cks/deep/er/answer.bin", data, mode=0o600)
    code, out = raw(cluster["worker"], "stat -c '%a %u %s' /opt/cks/deep/er/answer.bin")
    assert (code, out.split()) == (0, ["600", "0", str(len(data))])
    code, md5 = raw(cluster["worker"], "md5sum /opt/cks/deep/er/answer.bin")
    import hashlib

    assert md5.split()[0] == hashlib.md5(data).hexdigest()
    nodes.put_file("node01", "/opt/cks/deep/er/answer.bin", b"second\n")
    assert raw(cluster["worker"], "cat /opt/cks/deep/er/answer.bin") == (0, "second\n")


def test_put_file_never_replaces_a_folder(nodes: LabNodes, cluster: dict[str, Any]) -> None:
    assert raw(cluster["worker"], "mkdir -p /srv/keep && echo x > /srv/keep/inside")[0] == 0
    with pytest.raises(NodeFileError) as info:
        nodes.put_file("node01", "/srv/keep", b"clobber")
    assert info.value.reason == "not-a-file"
    assert raw(cluster["worker"], "cat /srv/keep/inside") == (0, "x\n")


def test_put_file_under_a_file_fails_clearly(nodes: LabNodes, cluster: dict[str, Any]) -> None:
    assert raw(cluster["worker"], "echo f > /srv/plain")[0] == 0
    with pytest.raises(LabError, match="cannot create folder /srv/plain"):
        nodes.put_file("node01", "/srv/plain/child", b"x")


def test_read_file_round_trip_and_exact_limit(nodes: LabNodes) -> None:
    nodes.put_file("controlplane", "/srv/exact", b"a" * 100)
    assert nodes.read_file("controlplane", "/srv/exact", limit=100) == b"a" * 100
    with pytest.raises(NodeFileError) as info:
        nodes.read_file("controlplane", "/srv/exact", limit=99)
    assert info.value.reason == "too-large"


def test_read_file_refuses_a_large_file_quickly(nodes: LabNodes, cluster: dict[str, Any]) -> None:
    assert raw(cluster["control-plane"], "dd if=/dev/zero of=/srv/big bs=1M count=64")[0] == 0
    started = time.monotonic()
    with pytest.raises(NodeFileError, match="larger than 1048576 bytes") as info:
        nodes.read_file("controlplane", "/srv/big")
    assert info.value.reason == "too-large"
    assert time.monotonic() - started < 2  # the 64 MiB were not streamed


@pytest.mark.parametrize(
    ("setup", "path", "reason", "kind"),
    [
        ("true", "/nope/missing", "missing", None),
        ("mkdir -p /srv/adir", "/srv/adir", "not-a-file", "directory"),
        ("mkfifo /srv/fifo", "/srv/fifo", "not-a-file", "named pipe (FIFO)"),
        ("mknod /srv/null c 1 3", "/srv/null", "not-a-file", "character device"),
        ("ln -sf /nowhere /srv/dangling", "/srv/dangling", "missing", None),
        ("ln -sfn /srv/adir /srv/dirlink", "/srv/dirlink", "not-a-file", "directory"),
        # on mounts made inside the node, which docker's archive API cannot see
        ("echo x > /tmp/on-tmpfs", "/tmp/on-tmpfs", "unreachable", None),
        ("ln -sf /run/x /srv/to-run", "/srv/to-run", "unreachable", None),
        ("true", "/dev/null", "unreachable", None),
        ("true", "/proc/1/cmdline", "unreachable", None),
    ],
)
def test_read_file_refusals(
    nodes: LabNodes,
    cluster: dict[str, Any],
    setup: str,
    path: str,
    reason: str,
    kind: str | None,
) -> None:
    assert raw(cluster["control-plane"], setup)[0] == 0
    with pytest.raises(NodeFileError) as info:
        nodes.read_file("controlplane", path)
    assert (info.value.reason, info.value.kind) == (reason, kind)


def test_read_file_follows_a_symlink_inside_the_node(
    nodes: LabNodes, cluster: dict[str, Any]
) -> None:
    # An absolute target means the node's own root, never the host's.
    setup = "mkdir -p /srv/etc; echo node-file > /srv/etc/p; ln -sf /srv/etc/p /srv/l"
    assert raw(cluster["control-plane"], setup)[0] == 0
    assert nodes.read_file("controlplane", "/srv/l") == b"node-file\n"


def test_files_on_kinds_var_volume_are_reachable(nodes: LabNodes, cluster: dict[str, Any]) -> None:
    # The audit log lives under /var, a volume in kind nodes.
    assert (
        raw(cluster["control-plane"], "mkdir -p /var/log/k && echo line > /var/log/k/a.log")[0] == 0
    )
    assert nodes.read_file("controlplane", "/var/log/k/a.log") == b"line\n"
    nodes.put_file("controlplane", "/var/lib/cks-lab/saved.yaml", b"kind: Pod\n")
    assert raw(cluster["control-plane"], "cat /var/lib/cks-lab/saved.yaml") == (0, "kind: Pod\n")


def test_put_file_refuses_a_tmpfs_path_instead_of_hiding_the_file(
    nodes: LabNodes, cluster: dict[str, Any]
) -> None:
    with pytest.raises(NodeFileError, match="/tmp mount") as info:
        nodes.put_file("controlplane", "/tmp/answer.txt", b"x")
    assert info.value.reason == "unreachable"
    assert raw(cluster["control-plane"], "test -e /tmp/answer.txt")[0] == 1


def test_read_node_bytes_reads_the_mounts_docker_cannot_copy_from_exactly(
    nodes: LabNodes, cluster: dict[str, Any]
) -> None:
    # not UTF-8: the bytes come back as the node has them, not re-encoded text
    assert raw(cluster["control-plane"], "printf 'caf\\351\\377\\n' > /run/latin1")[0] == 0
    assert nodes.read_node_bytes("controlplane", "/run/latin1") == b"caf\xe9\xff\n"
    assert nodes.read_node_bytes("controlplane", "/proc/1/cmdline") == b"sleep\x003600\x00"
    # a reachable file: through docker's file copy, the same bytes
    nodes.put_file("controlplane", "/srv/latin1", b"caf\xe9\n")
    assert nodes.read_node_bytes("controlplane", "/srv/latin1") == b"caf\xe9\n"


@pytest.mark.parametrize(
    ("setup", "path", "limit", "reason", "kind"),
    [
        ("true", "/tmp/absent", 100, "missing", None),
        ("printf 12345 > /tmp/five", "/tmp/five", 4, "too-large", None),
    ],
)
def test_read_node_bytes_refusals_on_the_mounts(
    nodes: LabNodes,
    cluster: dict[str, Any],
    setup: str,
    path: str,
    limit: int,
    reason: str,
    kind: str | None,
) -> None:
    assert raw(cluster["control-plane"], setup)[0] == 0
    with pytest.raises(NodeFileError) as info:
        nodes.read_node_bytes("controlplane", path, limit)
    assert (info.value.reason, info.value.kind) == (reason, kind)


def test_read_node_bytes_reads_exactly_the_limit(nodes: LabNodes, cluster: dict[str, Any]) -> None:
    assert raw(cluster["control-plane"], "printf 1234 > /tmp/four")[0] == 0
    assert nodes.read_node_bytes("controlplane", "/tmp/four", 4) == b"1234"


def test_read_file_rejects_relative_paths(nodes: LabNodes) -> None:
    with pytest.raises(NodeFileError) as info:
        nodes.read_file("controlplane", "etc/passwd")
    assert info.value.reason == "bad-path"


def test_remove_deletes_a_file_and_tolerates_absence(
    nodes: LabNodes, cluster: dict[str, Any]
) -> None:
    nodes.put_file("node01", "/etc/lab/gone.txt", b"x")
    nodes.remove("node01", "/etc/lab/gone.txt")
    assert raw(cluster["worker"], "test -e /etc/lab/gone.txt")[0] == 1
    nodes.remove("node01", "/etc/lab/gone.txt")  # absent: no error
    assert raw(cluster["worker"], "mkdir -p /etc/lab/dir && touch /etc/lab/dir/f")[0] == 0
    with pytest.raises(LabError, match="(?i)is a directory"):
        nodes.remove("node01", "/etc/lab/dir")
    assert raw(cluster["worker"], "test -f /etc/lab/dir/f")[0] == 0


# --- containers and the guard -------------------------------------------------


def test_containers_lists_only_this_clusters_nodes(
    nodes: LabNodes, cluster: dict[str, Any], decoys: dict[str, Any]
) -> None:
    assert nodes.containers() == [
        NodeContainer(CONTROL_PLANE, "control-plane", cluster["control-plane"].id, "running"),
        NodeContainer(WORKER, "worker", cluster["worker"].id, "running"),
        NodeContainer(f"{CLUSTER}-worker2", "worker", cluster["stopped"].id, "created"),
    ]


def test_shell_argv_names_the_container(nodes: LabNodes) -> None:
    assert nodes.shell_argv("controlplane") == ["docker", "exec", "-it", CONTROL_PLANE, "bash"]


@pytest.mark.parametrize(
    ("decoy", "why"),
    [
        ("unlabelled", "no io.x-k8s.kind.cluster label"),
        ("other-lab", "belongs to kind cluster 'cks-lab-other'"),
        ("non-lab", "belongs to kind cluster 'prod'"),
    ],
)
def test_guard_refuses_containers_of_other_owners_and_leaves_them_alone(
    docker_client: Any, decoys: dict[str, Any], decoy: str, why: str
) -> None:
    target = decoys[decoy]
    nodes = LabNodes(CLUSTER, {"n": target.name}, client=docker_client)
    calls = [
        lambda: nodes.exec("n", ["sh", "-c", f"echo pwned > {MARKER}"]),
        lambda: nodes.put_file("n", MARKER, b"pwned"),
        lambda: nodes.put_file("n", "/new-file", b"pwned"),
        lambda: nodes.remove("n", MARKER),
        lambda: nodes.read_file("n", MARKER),
        lambda: nodes.shell_argv("n"),
    ]
    for call in calls:
        with pytest.raises(LabError, match=f"refusing to touch container '{target.name}': .*{why}"):
            call()
    assert raw(target, f"cat {MARKER}; test -e /new-file || echo no-new-file") == (
        0,
        "original\nno-new-file\n",
    )
    target.reload()
    assert target.status == "running"


def test_a_non_lab_cluster_name_is_refused_before_docker_is_asked(
    docker_client: Any, decoys: dict[str, Any]
) -> None:
    with pytest.raises(LabError, match="not a lab cluster name"):
        LabNodes("prod", client=docker_client)
    assert raw(decoys["non-lab"], f"cat {MARKER}") == (0, "original\n")


# --- KindNodeFiles: the sim's answers, from a real node ----------------------------


class _SimTree:
    def __init__(self, root: Path) -> None:
        self.root = root

    def node_root(self, node: str) -> Path:
        return self.root / node


def test_kind_node_files_answer_like_the_sim(
    nodes: LabNodes, cluster: dict[str, Any], tmp_path: Path
) -> None:
    """Same node state in a sim tree and in a container -> the same FileFact."""
    files: dict[str, bytes] = {
        "/answers/ok.txt": b"k8s-deny-write\n",
        "/answers/latin1.txt": b"caf\xe9\n",
        "/answers/big.txt": b"x" * (MAX_ANSWER_BYTES + 1),
        "/answers/edge.txt": b"y" * MAX_ANSWER_BYTES,
        "/answers/empty.txt": b"",
    }
    sim_root = tmp_path / "controlplane"
    for path, data in files.items():
        target = sim_root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        nodes.put_file("controlplane", path, data)
    (sim_root / "answers/folder").mkdir()
    os.mkfifo(sim_root / "answers/pipe")
    assert raw(cluster["control-plane"], "mkdir -p /answers/folder; mkfifo /answers/pipe")[0] == 0

    sim = SimNodeFiles(_SimTree(tmp_path))  # type: ignore[arg-type]
    kind = KindNodeFiles(nodes)
    paths = [*files, "/answers/folder", "/answers/pipe", "/answers/absent.txt"]
    facts = {p: kind.read("controlplane", p) for p in paths}
    assert facts == {p: sim.read("controlplane", p) for p in paths}
    # and the answers are the meaningful ones, not merely equal
    assert facts["/answers/ok.txt"] == FileFact(exists=True, text="k8s-deny-write\n")
    assert facts["/answers/absent.txt"] == FileFact(exists=False)
    assert facts["/answers/big.txt"].error == f"it is larger than {MAX_ANSWER_BYTES} bytes"


def test_kind_node_files_read_an_answer_on_tmpfs(nodes: LabNodes, cluster: dict[str, Any]) -> None:
    # kind's /tmp is a tmpfs docker's file copy cannot see; the sim reads it all the same
    assert raw(cluster["control-plane"], "echo answer > /tmp/answer.txt")[0] == 0
    kind = KindNodeFiles(nodes)
    assert kind.read("controlplane", "/tmp/answer.txt") == FileFact(exists=True, text="answer\n")
    assert kind.read("controlplane", "/tmp/none.txt") == FileFact(exists=False)
