"""The docker node layer without a daemon: name mapping, the label guard, exec framing,
archive reading and the answers KindNodeFiles gives (a fake docker client records calls)."""

from __future__ import annotations

import io
import socket
import struct
import tarfile
import threading
import time
from typing import Any

import pytest

from lab.backends.kind.node_files import KindNodeFiles
from lab.backends.sim.node_files import MAX_ANSWER_BYTES
from lab.errors import LabError
from lab.evidence import FileFact
from lab.kind.names import KIND_CLUSTER_LABEL, KIND_ROLE_LABEL, kind_node_role
from lab.kind.nodes import (
    ExecResult,
    ExecTimeout,
    LabNodes,
    NodeContainer,
    NodeFileError,
    _head_error,
    go_mode_kind,
    node_container_names,
    read_frames,
    read_tar_member,
)


def frame(stream: int, data: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(data)) + data


class FakeContainer:
    def __init__(self, name: str, labels: dict[str, str], *, tmpfs: dict[str, str] | None = None):
        self.name = name
        self.id = f"{abs(hash(name)):016x}"
        self.status = "running"
        self.attrs = {"Config": {"Labels": labels}, "HostConfig": {"Tmpfs": tmpfs}, "Mounts": []}


class FakeContainers:
    def __init__(self, items: list[FakeContainer]) -> None:
        self.items = items

    def get(self, name: str) -> FakeContainer:
        import docker.errors

        for c in self.items:
            if c.name == name or c.id.startswith(name):  # docker matches id prefixes too
                return c
        raise docker.errors.NotFound(f"No such container: {name}")

    def list(self, all: bool, filters: dict[str, str]) -> list[FakeContainer]:
        # Deliberately sloppy (returns everything) so LabNodes' own filter is tested.
        return list(self.items)


class FakeAPI:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.output = frame(1, b"out\n") + frame(2, b"err\n")
        self.exit_code = 0
        self.runs_for = 0.0  # how long the fake command takes

    def exec_create(self, cid: str, cmd: list[str], **kw: Any) -> dict[str, str]:
        self.calls.append(("exec_create", (cid, cmd, kw)))
        return {"Id": "exec-1"}

    def exec_start(self, exec_id: str, socket: bool) -> Any:
        self.calls.append(("exec_start", exec_id))
        time.sleep(self.runs_for)
        return _socket_with(self.output)

    def exec_inspect(self, exec_id: str) -> dict[str, Any]:
        return {"Running": False, "ExitCode": self.exit_code}

    def put_archive(self, *args: Any) -> bool:
        self.calls.append(("put_archive", args))
        return True

    def _url(self, template: str, *args: str) -> str:
        return template.format(*args)

    def get(self, url: str, **kw: Any) -> Any:
        self.calls.append(("get", (url, kw)))
        raise AssertionError("the archive API was not expected here")


class FakeClient:
    def __init__(self, items: list[FakeContainer]) -> None:
        self.containers = FakeContainers(items)
        self.api = FakeAPI()


def _socket_with(data: bytes) -> socket.socket:
    ours, theirs = socket.socketpair()
    theirs.sendall(data)
    theirs.close()
    return ours


def lab(cluster: str, role: str = "control-plane") -> dict[str, str]:
    return {KIND_CLUSTER_LABEL: cluster, KIND_ROLE_LABEL: role}


@pytest.fixture
def client() -> FakeClient:
    return FakeClient(
        [
            FakeContainer("cks-lab-control-plane", lab("cks-lab"), tmpfs={"/tmp": "", "/run": ""}),
            FakeContainer("cks-lab-worker", lab("cks-lab", "worker")),
            FakeContainer("cks-lab-other-control-plane", lab("cks-lab-other")),
            FakeContainer("registry", {}),
            FakeContainer("prod-control-plane", lab("prod")),
        ]
    )


# --- names --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nodes", "expected"),
    [
        (
            [("controlplane", "control-plane"), ("node01", "worker")],
            {"controlplane": "cks-lab-x-control-plane", "node01": "cks-lab-x-worker"},
        ),
        (
            [("w1", "worker"), ("cp", "control-plane"), ("w2", "worker"), ("w3", "worker")],
            {
                "w1": "cks-lab-x-worker",
                "cp": "cks-lab-x-control-plane",
                "w2": "cks-lab-x-worker2",
                "w3": "cks-lab-x-worker3",
            },
        ),
    ],
)
def test_node_container_names_follow_kinds_naming(
    nodes: list[tuple[str, str]], expected: dict[str, str]
) -> None:
    assert node_container_names("cks-lab-x", nodes) == expected


@pytest.mark.parametrize(
    ("cluster", "nodes", "message"),
    [
        ("prod", [("cp", "control-plane")], "not a lab cluster name"),
        ("cks-lab", [("cp", "master")], "role 'master'"),
        ("cks-lab", [("cp", "control-plane"), ("cp", "worker")], "listed twice"),
    ],
)
def test_node_container_names_refusals(
    cluster: str, nodes: list[tuple[str, str]], message: str
) -> None:
    with pytest.raises(LabError, match=message):
        node_container_names(cluster, nodes)


def test_unknown_scenario_node_lists_the_known_ones(client: FakeClient) -> None:
    nodes = LabNodes("cks-lab", {"controlplane": "cks-lab-control-plane"}, client=client)
    with pytest.raises(LabError, match="unknown node 'node9'.*controlplane"):
        nodes.exec("node9", ["true"])


@pytest.mark.parametrize("cluster", ["prod", "kind", "cks-lab-", "cks-lab--x", "CKS-LAB"])
def test_lab_nodes_only_for_lab_clusters(cluster: str, client: FakeClient) -> None:
    with pytest.raises(LabError):
        LabNodes(cluster, client=client)


# --- the guard ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("container", "why"),
    [
        ("registry", "has no io.x-k8s.kind.cluster label"),
        ("cks-lab-other-control-plane", "belongs to kind cluster 'cks-lab-other'"),
        ("prod-control-plane", "belongs to kind cluster 'prod'"),
    ],
)
def test_guard_refuses_before_any_call_on_the_container(
    client: FakeClient, container: str, why: str
) -> None:
    nodes = LabNodes("cks-lab", {"n": container}, client=client)
    for call in (
        lambda: nodes.exec("n", ["true"]),
        lambda: nodes.put_file("n", "/etc/x", b"x"),
        lambda: nodes.read_file("n", "/etc/x"),
        lambda: nodes.remove("n", "/etc/x"),
        lambda: nodes.shell_argv("n"),
    ):
        with pytest.raises(LabError, match=f"refusing to touch container '{container}': .*{why}"):
            call()
    assert client.api.calls == []


def test_guard_refuses_an_id_prefix_match(client: FakeClient) -> None:
    prefix = client.containers.items[3].id[:6]  # the unlabelled "registry"
    nodes = LabNodes("cks-lab", {"n": prefix}, client=client)
    with pytest.raises(LabError, match="refusing container 'registry'"):
        nodes.exec("n", ["true"])
    assert client.api.calls == []


def test_missing_container_says_bring_the_cluster_up(client: FakeClient) -> None:
    nodes = LabNodes("cks-lab-gone", client=client)
    with pytest.raises(LabError, match="'cks-lab-gone-control-plane' does not exist.*cks-lab up"):
        nodes.exec("cks-lab-gone-control-plane", ["true"])


def test_containers_keeps_only_this_clusters_labelled_nodes(client: FakeClient) -> None:
    found = LabNodes("cks-lab", client=client).containers()
    assert [(c.name, c.role, c.status) for c in found] == [
        ("cks-lab-control-plane", "control-plane", "running"),
        ("cks-lab-worker", "worker", "running"),
    ]
    assert all(isinstance(c, NodeContainer) for c in found)


def test_an_unreachable_daemon_points_at_doctor() -> None:
    import docker

    client = docker.DockerClient(base_url="unix:///nonexistent/docker.sock", version="1.41")
    nodes = LabNodes("cks-lab", client=client)
    with pytest.raises(LabError, match="cannot reach the Docker daemon.*cks-lab doctor"):
        nodes.containers()
    with pytest.raises(LabError, match="cannot reach the Docker daemon.*cks-lab doctor"):
        nodes.exec("cks-lab-control-plane", ["true"])


def test_no_docker_at_all_points_at_doctor(monkeypatch: pytest.MonkeyPatch) -> None:
    import docker
    import docker.errors

    def refuse(*args: object, **kw: object) -> None:
        raise docker.errors.DockerException("Error while fetching server API version")

    monkeypatch.setattr(docker, "from_env", refuse)  # no context: the default socket
    monkeypatch.setattr(docker, "DockerClient", refuse)  # the CLI's context's endpoint
    with pytest.raises(LabError, match="connecting to Docker: cannot reach.*cks-lab doctor"):
        LabNodes("cks-lab").containers()


# --- exec -----------------------------------------------------------------------


def test_exec_runs_under_timeout_with_env_and_user(client: FakeClient) -> None:
    nodes = LabNodes("cks-lab", client=client)
    client.api.exit_code = 2
    result = nodes.exec(
        "cks-lab-worker", ["cat", "/etc/x"], timeout=2.5, env={"A": "1"}, user="nobody"
    )
    assert result == ExecResult(code=2, stdout="out\n", stderr="err\n")
    name, (cid, cmd, kw) = client.api.calls[0]
    assert name == "exec_create" and cid == client.containers.items[1].id
    assert cmd == ["timeout", "-s", "KILL", "3", "cat", "/etc/x"]
    assert kw["environment"] == ["A=1"] and kw["user"] == "nobody" and kw["tty"] is False


def test_a_killed_command_past_its_timeout_is_a_timeout(client: FakeClient) -> None:
    nodes = LabNodes("cks-lab", client=client)
    client.api.exit_code = 137
    client.api.runs_for = 0.05
    with pytest.raises(ExecTimeout, match="did not finish within 0.01 s"):
        nodes.exec("cks-lab-worker", ["sleep", "9"], timeout=0.01)
    # a command that dies of SIGKILL on its own, well inside its time, is just a result
    assert nodes.exec("cks-lab-worker", ["sh", "-c", "kill -9 $$"]).code == 137


def test_exec_needs_a_command_and_a_positive_timeout(client: FakeClient) -> None:
    nodes = LabNodes("cks-lab", client=client)
    with pytest.raises(LabError, match="no command"):
        nodes.exec("cks-lab-worker", [])
    with pytest.raises(LabError, match="must be positive"):
        nodes.exec("cks-lab-worker", ["true"], timeout=0)


def test_read_frames_demultiplexes_across_chunk_boundaries() -> None:
    data = frame(1, b"a" * 70000) + frame(2, b"e1") + frame(1, b"b") + frame(2, b"e2")
    ours, theirs = socket.socketpair()

    def write() -> None:
        with theirs:
            for i in range(0, len(data), 7):  # header and payload split everywhere
                theirs.sendall(data[i : i + 7])

    writer = threading.Thread(target=write)
    writer.start()
    try:
        out, err, finished = read_frames(ours, time.monotonic() + 10, 1 << 20)
    finally:
        writer.join()
        ours.close()
    assert (out, err, finished) == (b"a" * 70000 + b"b", b"e1e2", True)


def test_read_frames_gives_up_at_the_deadline() -> None:
    ours, theirs = socket.socketpair()
    try:
        theirs.sendall(frame(1, b"partial"))
        started = time.monotonic()
        out, err, finished = read_frames(ours, started + 0.3, 1 << 20)
        assert (out, finished) == (b"partial", False)
        assert 0.25 < time.monotonic() - started < 2
    finally:
        ours.close()
        theirs.close()


def test_read_frames_stops_a_runaway_command() -> None:
    ours = _socket_with(frame(1, b"x" * 100) + frame(1, b"x" * 100))
    with pytest.raises(LabError, match="more than 150 bytes"):
        read_frames(ours, time.monotonic() + 5, 150)
    ours.close()


# --- files ----------------------------------------------------------------------


def _tar(name: str, data: bytes, kind: bytes = tarfile.REGTYPE) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.size = len(data) if kind == tarfile.REGTYPE else 0
        tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    buf.seek(0)
    return buf


def test_read_tar_member_returns_the_bytes() -> None:
    stat = {"name": "a", "size": 5, "mode": 0o644}
    assert read_tar_member(_tar("a", b"hello"), stat, 5, "/a", "n") == b"hello"


def test_read_tar_member_refuses_from_the_stat_without_reading() -> None:
    class Unreadable(io.RawIOBase):
        def read(self, n: int = -1) -> bytes:
            raise AssertionError("the stream was read")

    with pytest.raises(NodeFileError) as info:
        read_tar_member(Unreadable(), {"size": 11, "mode": 0o644}, 10, "/a", "n")
    assert info.value.reason == "too-large"
    with pytest.raises(NodeFileError) as info:
        read_tar_member(Unreadable(), {"size": 0, "mode": (1 << 31) | 0o755}, 10, "/d", "n")
    assert (info.value.reason, info.value.kind) == ("not-a-file", "directory")


def test_read_tar_member_checks_the_archive_again() -> None:
    # The file grew (or became a folder) between docker's stat and its archive.
    with pytest.raises(NodeFileError) as info:
        read_tar_member(_tar("a", b"x" * 20), {"size": 5, "mode": 0o644}, 10, "/a", "n")
    assert info.value.reason == "too-large"
    with pytest.raises(NodeFileError) as info:
        read_tar_member(_tar("a", b"", tarfile.DIRTYPE), {"size": 5, "mode": 0o644}, 10, "/a", "n")
    assert info.value.reason == "unreadable"


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        (0o644, "regular file"),
        ((1 << 31) | 0o755, "directory"),
        ((1 << 27) | 0o777, "symbolic link"),
        ((1 << 25) | 0o644, "named pipe (FIFO)"),
        ((1 << 24) | 0o755, "socket"),
        ((1 << 26) | (1 << 21) | 0o666, "character device"),
        ((1 << 26) | 0o660, "block device"),
        ((1 << 19) | 0o644, "file of unknown type"),
    ],
)
def test_go_file_modes_in_the_sims_words(mode: int, kind: str) -> None:
    assert go_mode_kind(mode) == kind


@pytest.mark.parametrize("path", ["etc/x", "", "/", "/..", "/etc/\0x"])
def test_bad_node_paths_are_refused_before_docker(client: FakeClient, path: str) -> None:
    nodes = LabNodes("cks-lab", client=client)
    for call in (
        lambda: nodes.put_file("cks-lab-worker", path, b"x"),
        lambda: nodes.read_file("cks-lab-worker", path),
        lambda: nodes.remove("cks-lab-worker", path),
    ):
        with pytest.raises(NodeFileError) as info:
            call()
        assert info.value.reason == "bad-path"
    assert client.api.calls == []


@pytest.mark.parametrize("path", ["/tmp/a", "/run/x/y", "/tmp", "/proc/1/status", "/dev/null"])
def test_paths_on_in_node_mounts_are_refused(client: FakeClient, path: str) -> None:
    nodes = LabNodes("cks-lab", client=client)
    with pytest.raises(NodeFileError, match="cannot reach") as info:
        nodes.read_file("cks-lab-control-plane", path)
    assert info.value.reason == "unreachable"
    with pytest.raises(NodeFileError):
        nodes.put_file("cks-lab-control-plane", path, b"x")
    assert client.api.calls == []


# --- KindNodeFiles --------------------------------------------------------------


class FailingNodes:
    def __init__(self, error: NodeFileError | None, data: bytes = b"") -> None:
        self.error = error
        self.data = data
        self.limits: list[int] = []

    def read_node_bytes(self, node: str, path: str, limit: int = 1 << 20) -> bytes:
        self.limits.append(limit)
        if self.error is not None:
            raise self.error
        return self.data


@pytest.mark.parametrize(
    ("error", "data", "fact"),
    [
        (None, b"ok\n", FileFact(exists=True, text="ok\n")),
        (None, b"\xff", FileFact(exists=True, error="it is not UTF-8 text")),
        (NodeFileError("m", reason="missing", path="/a"), b"", FileFact(exists=False)),
        (
            NodeFileError("m", reason="not-a-file", path="/a", kind="directory"),
            b"",
            FileFact(exists=True, error="it is a directory, not a file"),
        ),
        (
            NodeFileError("m", reason="too-large", path="/a"),
            b"",
            FileFact(exists=True, error=f"it is larger than {MAX_ANSWER_BYTES} bytes"),
        ),
        (
            NodeFileError("is not an absolute node path", reason="bad-path", path="a"),
            b"",
            FileFact(exists=False, error="is not an absolute node path"),
        ),
    ],
)
def test_kind_node_files_answers(error: NodeFileError | None, data: bytes, fact: FileFact) -> None:
    nodes = FailingNodes(error, data)
    assert KindNodeFiles(nodes).read("controlplane", "/a") == fact  # type: ignore[arg-type]
    assert nodes.limits == [MAX_ANSWER_BYTES]


class _Ran:
    def __init__(self, code: int, out: str, err: str = "") -> None:
        self.returncode, self.stdout, self.stderr = code, out, err


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (_Ran(0, "unix:///Users/ana/.docker/run/docker.sock\n"), "unix:///Users/ana/.docker/run/docker.sock"),
        (_Ran(0, "unix:///var/run/docker.sock\n"), "unix:///var/run/docker.sock"),
        (_Ran(1, "", 'context "x": context not found'), None),
        (_Ran(0, "<no value>\n"), None),  # a context without a docker endpoint
    ],
)  # fmt: skip
def test_the_docker_clis_current_context_is_the_daemon_used(
    monkeypatch: pytest.MonkeyPatch, answer: _Ran, expected: str | None
) -> None:
    # Docker Desktop, Colima and rootless Docker are reached through a CLI context;
    # docker-py alone would look at /var/run/docker.sock, where kind's nodes are not.
    from lab.kind.nodes import docker_endpoint

    monkeypatch.delenv("DOCKER_HOST", raising=False)
    seen: list[list[str]] = []

    def run(argv: list[str], **kw: object) -> _Ran:
        seen.append(argv)
        return answer

    assert docker_endpoint(run) == expected
    assert seen == [["docker", "context", "inspect", "--format", "{{.Endpoints.docker.Host}}"]]


def test_docker_host_wins_and_no_docker_cli_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    from lab.kind.nodes import docker_endpoint

    def missing(argv: list[str], **kw: object) -> _Ran:
        raise FileNotFoundError("docker")

    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    assert docker_endpoint(missing) is None  # docker-py's from_env() reads DOCKER_HOST itself
    monkeypatch.delenv("DOCKER_HOST")
    assert docker_endpoint(missing) is None


# --- what failed commands say -------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "why"),
    [
        (
            ExecResult(1, "", "rm: cannot remove '/x': Is a directory\n"),
            "rm: cannot remove '/x': Is a directory",
        ),
        # docker's own refusals come on stdout (exit 126: docker 20.10's words)
        (
            ExecResult(
                126, "unable to find user ghost: no matching entries in passwd file\r\n", ""
            ),
            "unable to find user ghost: no matching entries in passwd file",
        ),
        (ExecResult(2, "", ""), "exit 2"),
    ],
)
def test_a_failed_command_says_why(result: ExecResult, why: str) -> None:
    assert result.why() == why


@pytest.mark.parametrize(
    ("said", "reason", "kind"),
    [
        # GNU coreutils 9.1 head (kind's node image)
        ("head: cannot open '/run/x' for reading: No such file or directory", "missing", None),
        ("head: error reading '/run/d': Is a directory", "not-a-file", "directory"),
        ("head: cannot open '/proc/1/environ' for reading: Permission denied", "unreadable", None),
        # busybox head
        ("head: /tmp/nope: No such file or directory", "missing", None),
    ],
)
def test_head_failures_read_as_node_file_errors(said: str, reason: str, kind: str | None) -> None:
    err = _head_error(said, "controlplane", "/run/x")
    assert (err.reason, err.kind) == (reason, kind)
    if reason == "unreadable":
        assert said in err.message


def test_kind_node_role_only_for_the_clusters_own_containers() -> None:
    assert kind_node_role(lab("cks-lab", "worker"), "cks-lab") == "worker"
    assert kind_node_role({KIND_CLUSTER_LABEL: "cks-lab"}, "cks-lab") == ""
    assert kind_node_role(lab("cks-lab-other"), "cks-lab") is None
    assert kind_node_role({}, "cks-lab") is None
