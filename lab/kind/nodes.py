"""The docker layer under the kind backend: run commands in and move files to/from node containers.

kind runs each node as a docker container labelled ``io.x-k8s.kind.cluster=<cluster>``.
Everything here goes through :class:`LabNodes`, which checks that label (and that the
cluster is a lab cluster) before every call, so the lab cannot exec into or write to
a container it does not own.

Exec does not use ``Container.exec_run``: docker-py reads the exec stream with no
timeout at all, so a command that never ends would hang the lab. Instead the command
runs under the node's ``timeout -s KILL`` (kind nodes ship coreutils, which kills the
whole process group) and the stream is read against a deadline as a backstop.

Files move through docker's archive API, which sees the node's root file system and
volumes (kind's /var) but not mounts made inside the node: kind's tmpfs /tmp and
/run, and /proc, /sys, /dev. Those paths are refused; ``read_node_bytes`` reads
them with a command in the node.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import os
import posixpath
import select
import struct
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from lab.errors import LabError
from lab.kind.names import KIND_CLUSTER_LABEL, check_cluster_name, kind_node_role

# How long past the in-node `timeout` the client waits before giving up on the stream.
EXEC_GRACE_SECONDS = 5.0
# An exec's stdout or stderr beyond this is a runaway command, not evidence.
MAX_EXEC_OUTPUT = 32 << 20

# Mounted by the container runtime inside the node; invisible to the archive API.
_PSEUDO_MOUNTS = ("/proc", "/sys", "/dev")

_KIND_SUFFIX = {"control-plane": "control-plane", "worker": "worker"}

# Go's io/fs.FileMode bits, as docker's archive stat header reports them.
_GO_DIR = 1 << 31
_GO_SYMLINK = 1 << 27
_GO_DEVICE = 1 << 26
_GO_PIPE = 1 << 25
_GO_SOCKET = 1 << 24
_GO_CHAR = 1 << 21
_GO_IRREGULAR = 1 << 19


@dataclass(frozen=True)
class ExecResult:
    code: int
    stdout: str
    stderr: str

    def why(self) -> str:
        """Why the command failed. docker itself reports on stdout (exit 126/127: "unable
        to find user", "executable file not found"), the command on stderr."""
        return (self.stderr or self.stdout).strip() or f"exit {self.code}"


@dataclass(frozen=True)
class ExecBytes:
    """An exec's output as the node wrote it, not decoded (a file's exact bytes)."""

    code: int
    stdout: bytes
    stderr: bytes

    def text(self) -> ExecResult:
        return ExecResult(
            self.code,
            self.stdout.decode("utf-8", errors="replace"),
            self.stderr.decode("utf-8", errors="replace"),
        )


@dataclass(frozen=True)
class NodeContainer:
    name: str
    role: str
    id: str
    status: str


class NodeFileError(LabError):
    """A node file that cannot be read or written as asked.

    ``reason`` is one of "missing", "not-a-file" (``kind`` says what it is),
    "too-large", "bad-path", "unreachable" (on a mount docker cannot copy from) or
    "unreadable".
    """

    def __init__(self, message: str, *, reason: str, path: str, kind: str | None = None) -> None:
        super().__init__(message, file=path)
        self.reason = reason
        self.kind = kind


class ExecTimeout(LabError):
    """A command in a node that did not finish within its timeout."""


def node_container_names(cluster: str, nodes: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Map scenario nodes [(name, role)] to kind's container names, in scenario order.

    kind names the first node of a role ``<cluster>-<role>``, the next ones
    ``<cluster>-<role>2``, ``<cluster>-<role>3``...
    """
    check_cluster_name(cluster)
    seen: dict[str, int] = {}
    names: dict[str, str] = {}
    for node, role in nodes:
        if role not in _KIND_SUFFIX:
            raise LabError(f"node {node!r} has role {role!r}; kind knows control-plane and worker")
        if node in names:
            raise LabError(f"node {node!r} is listed twice")
        seen[role] = seen.get(role, 0) + 1
        index = "" if seen[role] == 1 else str(seen[role])
        names[node] = f"{cluster}-{_KIND_SUFFIX[role]}{index}"
    return names


def docker_endpoint(run: Callable[..., Any] | None = None) -> str | None:
    """The daemon the `docker` CLI (and so kind) talks to: DOCKER_HOST, else the CLI's
    current context (Docker Desktop, Colima, rootless Docker use one). docker-py's
    from_env() reads only DOCKER_HOST and the default socket, so without this the lab
    could look for kind's nodes on another daemon than the one kind made them on.
    None: use docker-py's default."""
    if os.environ.get("DOCKER_HOST"):
        return None  # from_env() reads it (with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH)
    run = run or subprocess.run
    try:
        res = run(
            ["docker", "context", "inspect", "--format", "{{.Endpoints.docker.Host}}"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    host = res.stdout.strip() if res.returncode == 0 else ""
    return host if host.startswith(("unix://", "npipe://", "tcp://", "ssh://")) else None


class LabNodes:
    """The node containers of one lab kind cluster, and nothing else."""

    def __init__(
        self, cluster: str, names: Mapping[str, str] | None = None, client: Any = None
    ) -> None:
        check_cluster_name(cluster)
        self.cluster = cluster
        self.names = dict(names) if names is not None else None
        self._client = client

    # --- containers ---------------------------------------------------------

    def containers(self) -> list[NodeContainer]:
        """This cluster's node containers (found by kind's label), sorted by name."""
        label = f"{KIND_CLUSTER_LABEL}={self.cluster}"
        with self._docker_errors("listing the cluster's node containers"):
            found = self.client.containers.list(all=True, filters={"label": label})
        nodes = []
        for c in found:
            role = kind_node_role(_labels(c), self.cluster)
            if role is None:
                continue  # the daemon filtered already; never trust a stray match
            nodes.append(NodeContainer(name=c.name, role=role, id=c.id, status=c.status))
        return sorted(nodes, key=lambda n: n.name)

    def container_name(self, node: str) -> str:
        if self.names is None:
            return node
        try:
            return self.names[node]
        except KeyError:
            known = ", ".join(sorted(self.names)) or "none"
            raise LabError(f"unknown node {node!r} (this scenario's nodes: {known})") from None

    def shell_argv(self, node: str) -> list[str]:
        """The command a learner runs to get a shell in the node."""
        container = self._guarded(node)
        return ["docker", "exec", "-it", container.name, "bash"]

    # --- exec ---------------------------------------------------------------

    def exec(
        self,
        node: str,
        argv: Sequence[str],
        *,
        timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
        user: str = "root",
    ) -> ExecResult:
        """Run ``argv`` in the node; ExecTimeout when it outlives ``timeout`` seconds.
        Output is decoded as UTF-8, a bad byte replaced."""
        return self.exec_bytes(node, argv, timeout=timeout, env=env, user=user).text()

    def exec_bytes(
        self,
        node: str,
        argv: Sequence[str],
        *,
        timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
        user: str = "root",
    ) -> ExecBytes:
        """:meth:`exec`, with the output as the raw bytes the command wrote."""
        if not argv:
            raise LabError("no command to run in the node")
        if not timeout > 0:
            raise LabError(f"exec timeout must be positive, not {timeout}")
        container = self._guarded(node)
        return self._exec(container, node, list(argv), timeout, env, user)

    def _exec(
        self,
        container: Any,
        node: str,
        argv: list[str],
        timeout: float,
        env: Mapping[str, str] | None,
        user: str,
    ) -> ExecBytes:
        api = self.client.api
        shown = " ".join(argv)
        wrapped = ["timeout", "-s", "KILL", str(max(1, math.ceil(timeout))), *argv]
        environment = [f"{k}={v}" for k, v in (env or {}).items()] or None
        started = time.monotonic()
        with self._docker_errors(f"running `{shown}` in node {node!r}", container):
            exec_id = api.exec_create(
                container.id,
                wrapped,
                stdout=True,
                stderr=True,
                stdin=False,
                tty=False,
                environment=environment,
                user=user,
            )["Id"]
            sock = api.exec_start(exec_id, socket=True)
            try:
                out, err, finished = read_frames(
                    sock, started + timeout + EXEC_GRACE_SECONDS, MAX_EXEC_OUTPUT
                )
            finally:
                sock.close()
            if not finished:
                raise ExecTimeout(
                    f"`{shown}` in node {node!r} ({container.name}) did not finish "
                    f"within {timeout:g} s"
                )
            code = self._exit_code(api, exec_id)
        # `timeout` exits 124 (coreutils) or the command dies of SIGKILL (137, busybox).
        if code in (124, 137) and time.monotonic() - started >= timeout:
            raise ExecTimeout(
                f"`{shown}` in node {node!r} ({container.name}) did not finish "
                f"within {timeout:g} s and was killed"
            )
        return ExecBytes(code, out, err)

    @staticmethod
    def _exit_code(api: Any, exec_id: str) -> int:
        # The stream can close a moment before the daemon records the exit code.
        for _ in range(50):
            info = api.exec_inspect(exec_id)
            if not info.get("Running") and info.get("ExitCode") is not None:
                return int(info["ExitCode"])
            time.sleep(0.05)
        raise LabError("docker did not report the command's exit code")

    # --- files --------------------------------------------------------------

    def put_file(self, node: str, path: str, data: bytes, mode: int = 0o644) -> None:
        """Write ``data`` to ``path`` in the node (owner root), creating parent folders."""
        path = _node_path(path)
        parent, base = posixpath.split(path)
        container = self._guarded(node)
        _check_reachable(container, path, node)
        made = self._exec(container, node, ["mkdir", "-p", parent], 30.0, None, "root").text()
        if made.code != 0:
            raise LabError(f"cannot create folder {parent} in node {node!r}: {made.why()}")
        # Docker's extraction deletes whatever is in the way, a whole folder included.
        with self._archive(container, path, node) as (stat, _):
            if stat is not None and stat["mode"] & _GO_DIR:
                raise NodeFileError(
                    f"is a directory in node {node!r}; not replacing it with a file",
                    reason="not-a-file",
                    path=path,
                    kind="directory",
                )
        with self._docker_errors(f"writing {path} in node {node!r}", container):
            ok = self.client.api.put_archive(container.id, parent, _tar_one(base, data, mode))
        if not ok:
            raise LabError(f"docker refused to write {path} in node {node!r}")

    def read_file(self, node: str, path: str, limit: int = 1 << 20) -> bytes:
        """The bytes of a regular file in the node (a symlink is followed inside the node).

        NodeFileError: missing, not a regular file, larger than ``limit`` (refused
        from the size docker reports, before reading the content), bad path.
        """
        path = _node_path(path)
        container = self._guarded(node)
        _check_reachable(container, path, node)
        target = path
        for _ in range(2):
            with self._archive(container, target, node) as (stat, stream):
                if stat is None:
                    raise NodeFileError(
                        f"does not exist in node {node!r}", reason="missing", path=path
                    )
                if stat["mode"] & _GO_SYMLINK:
                    # Docker resolves the link inside the container's root.
                    target = stat.get("linkTarget") or ""
                    if not target.startswith("/"):
                        break
                    _check_reachable(container, target, node)
                    continue
                return read_tar_member(stream, stat, limit, path, node)
        raise NodeFileError(
            f"is a symbolic link in node {node!r} that does not resolve",
            reason="not-a-file",
            path=path,
            kind="symbolic link",
        )

    def read_node_bytes(self, node: str, path: str, limit: int = 1 << 20) -> bytes:
        """:meth:`read_file`, and on the mounts docker's file copy cannot reach (kind's
        tmpfs /tmp and /run, /proc, /sys: the kernel's AppArmor profiles list, a
        process's label) the exact bytes ``head -c`` reads in the node.

        NodeFileError as read_file's: "missing", "not-a-file", "too-large" (more than
        ``limit`` bytes), "unreadable", "bad-path".
        """
        try:
            return self.read_file(node, path, limit)
        except NodeFileError as err:
            if err.reason != "unreachable":
                raise
        r = self.exec_bytes(node, ["head", "-c", str(limit + 1), "--", path])
        if r.code != 0:
            raise _head_error(r.text().why(), node, path)
        if len(r.stdout) > limit:
            raise NodeFileError(
                f"is larger than {limit} bytes in node {node!r}", reason="too-large", path=path
            )
        return r.stdout

    def remove(self, node: str, path: str) -> None:
        """Remove a file from the node; nothing to do when it is absent."""
        path = _node_path(path)
        container = self._guarded(node)
        # rm without -r never removes a folder: it fails, and says so.
        done = self._exec(container, node, ["rm", "-f", "--", path], 30.0, None, "root").text()
        if done.code != 0:
            raise LabError(f"cannot remove {path} in node {node!r}: {done.why()}")

    # --- docker plumbing ----------------------------------------------------

    @property
    def client(self) -> Any:
        if self._client is None:
            import docker  # lazily: docker-py is slow to import and only the kind backend needs it

            with self._docker_errors("connecting to Docker"):
                host = docker_endpoint()
                self._client = docker.DockerClient(base_url=host) if host else docker.from_env()
        return self._client

    def _guarded(self, node: str) -> Any:
        """The node's container, only if it carries this lab cluster's kind label."""
        import docker.errors

        name = self.container_name(node)
        with self._docker_errors(f"looking up node container {name!r}"):
            try:
                container = self.client.containers.get(name)
            except docker.errors.NotFound:
                container = None
        if container is None:
            raise LabError(
                f"node container {name!r} does not exist: is the cluster {self.cluster!r} up? "
                "(`cks-lab up`, `cks-lab status`)"
            )
        # `containers.get` also matches an id prefix: insist on the exact name.
        if container.name != name:
            raise LabError(
                f"refusing container {container.name!r}: it was found for {name!r}, "
                "which is not its name"
            )
        owner = _labels(container).get(KIND_CLUSTER_LABEL)
        if owner != self.cluster:
            why = (
                f"it has no {KIND_CLUSTER_LABEL} label, so it is not a kind node"
                if owner is None
                else f"it belongs to kind cluster {owner!r}, not the lab cluster {self.cluster!r}"
            )
            raise LabError(f"refusing to touch container {name!r}: {why}")
        return container

    @contextmanager
    def _archive(
        self, container: Any, path: str, node: str
    ) -> Iterator[tuple[dict[str, Any] | None, Any]]:
        """GET the archive of ``path``: (stat or None when absent, raw tar stream).

        The response is streamed and closed on exit, so a refused file is never read.
        """
        api = self.client.api
        with self._docker_errors(f"reading {path} in node {node!r}", container):
            # docker-py's get_archive hides the response, which then cannot be closed
            # unread; the same request by hand keeps it in reach.
            res = api.get(
                api._url("/containers/{0}/archive", container.id),
                params={"path": path},
                headers={"Accept-Encoding": "identity"},
                stream=True,
            )
        try:
            if res.status_code == 404:
                yield None, None
                return
            if res.status_code != 200:
                raise NodeFileError(
                    f"cannot be read in node {node!r}: {_api_message(res)}",
                    reason="unreadable",
                    path=path,
                )
            yield _decode_stat(res.headers.get("X-Docker-Container-Path-Stat", "")), res.raw
        finally:
            res.close()

    @contextmanager
    def _docker_errors(self, doing: str, container: Any = None) -> Iterator[None]:
        """Turn docker and connection failures into LabErrors a learner can act on."""
        import docker.errors
        import requests.exceptions

        try:
            yield
        except (requests.exceptions.ConnectionError, ConnectionError) as err:
            raise LabError(
                f"{doing}: cannot reach the Docker daemon ({err}); start Docker and run "
                "`cks-lab doctor`"
            ) from err
        except docker.errors.NotFound as err:
            raise LabError(f"{doing}: {_explain(err)}") from err
        except docker.errors.APIError as err:
            detail = _explain(err)
            if container is not None and "is not running" in detail:
                detail = (
                    f"node container {container.name!r} is not running; start the cluster "
                    "with `cks-lab up`"
                )
            raise LabError(f"{doing}: {detail}") from err
        except docker.errors.DockerException as err:
            raise LabError(
                f"{doing}: cannot reach the Docker daemon ({err}); start Docker and run "
                "`cks-lab doctor`"
            ) from err


def read_frames(sock: Any, deadline: float, limit: int) -> tuple[bytes, bytes, bool]:
    """Read docker's multiplexed exec stream until EOF or ``deadline`` (time.monotonic).

    Frames are an 8-byte header (stream 1=stdout 2=stderr, 3 zero bytes, big-endian
    length) then the payload. Returns (stdout, stderr, finished before the deadline).
    """
    outs = {1: bytearray(), 2: bytearray()}
    buf = bytearray()
    while True:
        chunk = _recv(sock, deadline)
        if chunk is None:
            return bytes(outs[1]), bytes(outs[2]), False
        if not chunk:
            return bytes(outs[1]), bytes(outs[2]), True
        buf += chunk
        while len(buf) >= 8:
            stream, size = struct.unpack(">BxxxL", buf[:8])
            if len(buf) < 8 + size:
                break
            target = outs.get(stream)
            if target is not None:
                target += buf[8 : 8 + size]
                if len(target) > limit:
                    raise LabError(f"the command printed more than {limit} bytes; stopped it")
            del buf[: 8 + size]


def _recv(sock: Any, deadline: float) -> bytes | None:
    """Up to 64 KiB from the socket; b"" at EOF; None when the deadline passes first."""
    while True:
        pending = getattr(sock, "pending", None)  # TLS sockets buffer data select cannot see
        if not (pending and pending()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([sock], [], [], remaining)
            if not ready:
                return None
        data = sock.recv(65536) if hasattr(sock, "recv") else sock.read(65536)
        if data is not None:  # None: a non-blocking read found nothing after all
            return bytes(data)


def read_tar_member(stream: Any, stat: dict[str, Any], limit: int, path: str, node: str) -> bytes:
    """The single regular file in docker's archive stream, refusing it before reading when
    the stat says it is not a regular file or larger than ``limit``."""
    kind = go_mode_kind(int(stat.get("mode", 0)))
    if kind != "regular file":
        raise NodeFileError(
            f"is a {kind} in node {node!r}, not a file", reason="not-a-file", path=path, kind=kind
        )
    if int(stat.get("size", 0)) > limit:
        raise NodeFileError(
            f"is larger than {limit} bytes in node {node!r}", reason="too-large", path=path
        )
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        member = tar.next()
        # The file may have changed between the stat and the archive.
        if member is None or not member.isreg():
            raise NodeFileError(
                f"changed while it was read in node {node!r}", reason="unreadable", path=path
            )
        if member.size > limit:
            raise NodeFileError(
                f"is larger than {limit} bytes in node {node!r}", reason="too-large", path=path
            )
        handle = tar.extractfile(member)
        return handle.read() if handle is not None else b""


def go_mode_kind(mode: int) -> str:
    """What a Go FileMode (docker's stat header) is, in lab.nodefs's words."""
    if mode & _GO_DIR:
        return "directory"
    if mode & _GO_SYMLINK:
        return "symbolic link"
    if mode & _GO_PIPE:
        return "named pipe (FIFO)"
    if mode & _GO_SOCKET:
        return "socket"
    if mode & _GO_DEVICE:
        return "character device" if mode & _GO_CHAR else "block device"
    if mode & _GO_IRREGULAR:
        return "file of unknown type"
    return "regular file"


def _node_path(path: str) -> str:
    if not path.startswith("/") or "\0" in path:
        raise NodeFileError(
            "is not an absolute node path", reason="bad-path", path=path.replace("\0", "\\0")
        )
    clean = posixpath.normpath(path)
    if clean.startswith("//"):
        clean = "/" + clean.lstrip("/")
    if clean == "/":
        raise NodeFileError("is the node's root folder, not a file", reason="bad-path", path=path)
    return clean


def _check_reachable(container: Any, path: str, node: str) -> None:
    """Refuse a path docker's archive API cannot see.

    The archive API works on the container's root file system and its volumes, not
    on the mounts made inside the container: tmpfs (kind mounts /tmp and /run so)
    and the kernel's /proc, /sys, /dev. A file put there would land hidden under
    the mount; one read there would look absent.
    """
    attrs = container.attrs
    roots = set(_PSEUDO_MOUNTS) | set((attrs.get("HostConfig") or {}).get("Tmpfs") or {})
    roots |= {
        m.get("Destination", "") for m in attrs.get("Mounts") or [] if m.get("Type") == "tmpfs"
    }
    for root in sorted(r.rstrip("/") for r in roots if r.startswith("/")):
        if root and (path == root or path.startswith(root + "/")):
            raise NodeFileError(
                f"is on the {root} mount of node {node!r}, which docker's file copy cannot "
                "reach; read it with a command in the node",
                reason="unreachable",
                path=path,
            )


def _tar_one(name: str, data: bytes, mode: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = mode & 0o7777
        info.mtime = int(time.time())
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _decode_stat(header: str) -> dict[str, Any]:
    try:
        stat = json.loads(base64.b64decode(header))
    except (binascii.Error, ValueError):
        stat = None
    if not isinstance(stat, dict) or not isinstance(stat.get("mode"), int):
        raise LabError("docker sent an archive without a readable file stat")
    return stat


def _api_message(res: Any) -> str:
    try:
        return str(res.json().get("message", res.reason))
    except ValueError:
        return str(res.reason)


def _head_error(why: str, node: str, path: str) -> NodeFileError:
    """What `head` failing on a node path means: GNU head and busybox both end with the
    system's error text ("No such file or directory", "Is a directory")."""
    if "No such file or directory" in why:
        return NodeFileError(f"does not exist in node {node!r}", reason="missing", path=path)
    if "Is a directory" in why:
        return NodeFileError(
            f"is a directory in node {node!r}, not a file",
            reason="not-a-file",
            path=path,
            kind="directory",
        )
    return NodeFileError(f"cannot be read in node {node!r}: {why}", reason="unreadable", path=path)


def _labels(container: Any) -> dict[str, str]:
    labels = (container.attrs.get("Config") or {}).get("Labels") or {}
    return dict(labels)


def _explain(err: Any) -> str:
    return str(getattr(err, "explanation", None) or err)
