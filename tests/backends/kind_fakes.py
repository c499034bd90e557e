"""Fakes of LabNodes and Kube for the kind backend's tests: in-memory node file
systems, the node commands the backend runs answered as the real tools answer them
(outputs from tests/kind/samples where the shape matters), and a Kube that records
what it was asked and plays a small API server.

FakeNodes refuses any node it was not given: a test hands it the scenario's nodes
only, so a call on another node fails the test.
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from lab.backends.kind.steps import STAT_FORMAT
from lab.kind.kube import ContainerInfo, PodInfo
from lab.kind.nodes import ExecBytes, ExecResult, LabNodes, NodeFileError

SAMPLES = Path(__file__).parents[1] / "kind" / "samples"

UNREACHABLE = ("/sys/", "/proc/", "/dev/", "/tmp/", "/run/")  # kind node mounts


def sample(name: str) -> str:
    """A sample of tests/kind/samples without its '# ' header."""
    lines = (SAMPLES / name).read_text(encoding="utf-8").splitlines(keepends=True)
    while lines and lines[0].startswith("# "):
        lines.pop(0)
    return "".join(lines)


OK = ExecResult(0, "", "")


class FakeClock:
    """Returns the scripted times in order, then one second later at each call."""

    def __init__(self, start: datetime, script: Iterable[datetime] = ()) -> None:
        self.now = start
        self.script = list(script)

    def __call__(self) -> datetime:
        if self.script:
            self.now = self.script.pop(0)
        else:
            self.now = self.now + timedelta(seconds=1)
        return self.now


@dataclass
class FakeNodes:
    """LabNodes over in-memory node trees, by scenario node name."""

    files: dict[str, dict[str, bytes]]  # node -> path -> content
    dirs: dict[str, set[str]] = field(default_factory=dict)  # empty folders that exist
    ctime: float = 1764237600.25  # every file's change time (stat's %Z)...
    ctimes: dict[str, float] = field(default_factory=dict)  # ... but these paths'
    crictl_ps: str = '{"containers": []}'
    crictl_logs: dict[str, str] = field(default_factory=dict)  # container id -> its log
    # container id -> `crictl inspect -o json` of it; others: the runtime's "not found"
    crictl_inspect: dict[str, str] = field(default_factory=dict)
    aa_broken: dict[str, str] = field(default_factory=dict)  # profile file -> parser error
    aa_names: dict[str, list[str]] = field(default_factory=dict)  # profile file -> names
    canned: dict[tuple[str, ...], ExecResult] = field(default_factory=dict)
    calls: list[tuple[str, list[str]]] = field(default_factory=list)
    removed: list[tuple[str, str]] = field(default_factory=list)
    modes: dict[tuple[str, str], int] = field(default_factory=dict)  # (node, path) -> mode

    def _node(self, node: str) -> dict[str, bytes]:
        if node not in self.files:
            raise AssertionError(f"the backend touched node {node!r}, not one of the scenario's")
        return self.files[node]

    # -- file system --------------------------------------------------------------------

    def _is_dir(self, node: str, path: str) -> bool:
        path = path.rstrip("/") or "/"
        if path in self.dirs.get(node, set()):
            return True
        prefix = path + "/" if path != "/" else "/"
        return any(p.startswith(prefix) for p in self._node(node)) or any(
            d.startswith(prefix) for d in self.dirs.get(node, set())
        )

    def put_file(self, node: str, path: str, data: bytes, mode: int = 0o644) -> None:
        self._node(node)[path] = data
        self.modes[(node, path)] = mode

    def read_file(self, node: str, path: str, limit: int = 1 << 20) -> bytes:
        tree = self._node(node)
        if path.startswith(UNREACHABLE):  # as LabNodes: docker's file copy cannot see these
            raise NodeFileError(
                "is on a mount docker cannot copy from", reason="unreachable", path=path
            )
        if path not in tree:
            raise NodeFileError(f"{path}: no such file", reason="missing", path=path)
        if len(tree[path]) > limit:
            raise NodeFileError(f"is larger than {limit} bytes", reason="too-large", path=path)
        return tree[path]

    # LabNodes's own: read_file, else `head -c` through exec_bytes
    read_node_bytes = LabNodes.read_node_bytes

    def remove(self, node: str, path: str) -> None:
        self._node(node).pop(path, None)
        self.removed.append((node, path))

    # -- commands -------------------------------------------------------------------------

    def exec(
        self,
        node: str,
        argv: Sequence[str],
        *,
        timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
        user: str = "root",
    ) -> ExecResult:
        tree = self._node(node)
        argv = list(argv)
        self.calls.append((node, argv))
        if tuple(argv) in self.canned:
            return self.canned[tuple(argv)]
        cmd = argv[0]
        if cmd == "head" and argv[1] == "-c":
            return self._head(node, argv).text()
        if cmd == "stat":
            # the one format the backend asks for (steps.node_stat); symlinks: none here
            assert argv[argv.index("-c") + 1] == STAT_FORMAT, argv
            path = argv[-1]
            if path in tree:
                raw = stat.S_IFREG | self.modes.get((node, path), 0o644)
                size = len(tree[path])
            elif self._is_dir(node, path):
                raw, size = stat.S_IFDIR | 0o755, 4096
            else:
                return ExecResult(
                    1, "", f"stat: cannot statx '{path}': No such file or directory\n"
                )
            ctime = self.ctimes.get(path, self.ctime)
            return ExecResult(0, f"{raw:x} {size} {ctime:.9f}\n", "")
        if cmd == "find":
            folder = argv[1].rstrip("/")
            if not self._is_dir(node, folder):
                return ExecResult(1, "", f"find: '{folder}': No such file or directory\n")
            depth = int(argv[argv.index("-maxdepth") + 1]) if "-maxdepth" in argv else None
            inside = sorted(
                p
                for p in tree
                if p.startswith(folder + "/")
                and (depth is None or p[len(folder) + 1 :].count("/") < depth)
            )
            return ExecResult(0, "".join(p + "\n" for p in inside), "")
        if cmd == "truncate":
            for p in argv[argv.index("--") + 1 :]:
                if p in tree:
                    tree[p] = b""
            return OK
        if cmd == "grep":
            marker = argv[argv.index("-e") + 1]
            paths = argv[argv.index("--") + 1 :]
            lines = []
            for p in paths:
                if p not in tree:
                    return ExecResult(2, "", f"grep: {p}: No such file or directory\n")
                lines += [ln for ln in tree[p].decode().splitlines() if marker in ln]
            return ExecResult(0 if lines else 1, "".join(ln + "\n" for ln in lines), "")
        if argv[:2] == ["crictl", "ps"]:
            return ExecResult(0, self.crictl_ps, "")
        if argv[:2] == ["crictl", "inspect"]:
            cid = argv[-1]
            if cid in self.crictl_inspect:
                return ExecResult(0, self.crictl_inspect[cid], "")
            return ExecResult(
                1,
                "",
                f'E1127 10:00:00.000000    4242 remote_runtime.go:432] "ContainerStatus from '
                f'runtime service failed" err="rpc error: code = NotFound desc = an error '
                f'occurred when try to find container \\"{cid}\\": not found"\n',
            )
        if argv[:3] == ["kubeadm", "kubeconfig", "user"]:  # lab.kind.users issuing a cert
            return ExecResult(0, sample("kubeadm-kubeconfig-user.yaml"), "")
        if argv[:2] == ["crictl", "logs"]:
            return ExecResult(0, "", self.crictl_logs.get(argv[-1], ""))
        if cmd == "apparmor_parser":
            path = argv[-1]
            if "-N" in argv:
                return ExecResult(0, "".join(n + "\n" for n in self.aa_names.get(path, [])), "")
            if path in self.aa_broken:
                return ExecResult(1, "", self.aa_broken[path])
            return OK
        return OK

    def exec_bytes(self, node: str, argv: Sequence[str], **kw: Any) -> ExecBytes:
        if argv[0] == "head" and tuple(argv) not in self.canned:
            self._node(node)
            self.calls.append((node, list(argv)))
            return self._head(node, list(argv))
        r = self.exec(node, argv, **kw)
        return ExecBytes(r.code, r.stdout.encode(), r.stderr.encode())

    def _head(self, node: str, argv: list[str]) -> ExecBytes:
        """GNU head's answers: the first bytes as they are, or why not."""
        path = argv[-1]
        tree = self._node(node)
        if path in tree:
            return ExecBytes(0, tree[path][: int(argv[2])], b"")
        if self._is_dir(node, path):
            return ExecBytes(1, b"", f"head: error reading '{path}': Is a directory\n".encode())
        why = f"head: cannot open '{path}' for reading: No such file or directory\n"
        return ExecBytes(1, b"", why.encode())

    def shell_argv(self, node: str) -> list[str]:
        self._node(node)
        return ["docker", "exec", "-it", f"cks-lab-{node}", "bash"]

    def commands(self, node: str | None = None) -> list[list[str]]:
        return [argv for n, argv in self.calls if node is None or n == node]


@dataclass
class ExecCall:
    namespace: str
    pod: str
    container: str
    argv: list[str]
    user: str | None
    groups: list[str]
    user_agent: str | None
    stdin: bytes | None = None
    tty: bool = False


ADMIN = ("kubernetes-admin", ["kubeadm:cluster-admins", "system:authenticated"])


def _who(
    user: str | None, groups: Sequence[str], credentials: Any, anonymous: bool
) -> tuple[str | None, list[str]]:
    """The user and groups the API server authenticates (or impersonates) for a call."""
    if credentials is not None:
        return credentials.user, list(credentials.groups)
    if anonymous:
        return "system:anonymous", ["system:unauthenticated"]
    if user:
        return user, list(groups)
    return ADMIN[0], list(ADMIN[1])


@dataclass
class FakeKube:
    """A Kube that answers from its fields and records every call, with the user the
    API server would see: a client certificate's, anonymous, impersonated, else the
    lab's admin."""

    pods_: dict[tuple[str, str], PodInfo] = field(default_factory=dict)
    labels: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    exec_results: dict[tuple[str, ...], ExecResult] = field(default_factory=dict)
    logs_: dict[str, str] = field(default_factory=dict)  # pod -> its log
    ready: bool = True
    refuse: dict[str, str] = field(default_factory=dict)  # object name -> API error
    # the fake apiserver: called with (method, uri, user, groups, user agent) of every
    # request and exec, so a test can write what a real one would log
    on_request: Callable[[str, str, str | None, list[str], str | None], None] | None = None
    applied: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    deleted: list[tuple[str, str, str]] = field(default_factory=list)
    requests: list[tuple[str, str, str | None, list[str], str | None]] = field(default_factory=list)
    execs: list[ExecCall] = field(default_factory=list)
    # GET uri -> the object the API returns (a ReplicaSet, say)
    objects: dict[str, Any] = field(default_factory=dict)
    # (kind, namespace, name) -> what rollout() says at each call; the last one stays
    rollouts: dict[tuple[str, str, str], list[Any]] = field(default_factory=dict)
    # called after a delete is recorded: a test plays a controller starting a new pod
    on_delete: Callable[[str, str, str], None] | None = None

    def apply(self, docs: Sequence[dict[str, Any]], *, source: str = "") -> list[str]:
        from lab.errors import LabError

        self.applied.append((source, list(docs)))
        for d in docs:
            name = d.get("metadata", {}).get("name", "")
            if name in self.refuse:
                raise LabError(self.refuse[name])
        return [f"{str(d.get('kind')).lower()}/{d['metadata']['name']} created" for d in docs]

    def delete(self, kind: str, namespace: str, name: str, *, wait: float = 60) -> None:
        self.deleted.append((kind, namespace, name))
        if self.on_delete is not None:
            self.on_delete(kind, namespace, name)

    def pod(self, namespace: str, name: str) -> PodInfo | None:
        return self.pods_.get((namespace, name))

    def pods(self, namespace: str, label_selector: str) -> list[PodInfo]:
        want = dict(kv.split("=", 1) for kv in label_selector.split(",") if kv)
        return [
            info
            for key, info in self.pods_.items()
            if key[0] == namespace
            and all(
                {**info.labels, **self.labels.get(key, {})}.get(k) == v for k, v in want.items()
            )
        ]

    def rollout(self, kind: str, namespace: str, name: str) -> Any:
        script = self.rollouts.get((kind, namespace, name))
        if not script:
            return None
        return script.pop(0) if len(script) > 1 else script[0]

    def readyz(self) -> bool:
        return self.ready

    def ca_fingerprint(self) -> str | None:
        return None  # no CA to compare an issued certificate's with

    def request(
        self,
        method: str,
        uri: str,
        *,
        body: Any = None,
        user: str | None = None,
        groups: Sequence[str] = (),
        user_agent: str | None = None,
        credentials: Any = None,
        anonymous: bool = False,
    ) -> tuple[int, Any]:
        user, who_groups = _who(user, groups, credentials, anonymous)
        self.requests.append((method, uri, user, who_groups, user_agent))
        if self.on_request is not None:
            self.on_request(method, uri, user, who_groups, user_agent)
        if method == "GET" and uri in self.objects:
            return 200, self.objects[uri]
        if uri.startswith("/apis/apps/v1/namespaces/cks-lab-falco/daemonsets/"):
            return 200, {
                "metadata": {"generation": 1},
                "status": {
                    "observedGeneration": 1,
                    "desiredNumberScheduled": 2,
                    "numberReady": 2,
                    "updatedNumberScheduled": 2,
                },
            }
        return 200, {}

    def exec(
        self,
        namespace: str,
        pod: str,
        container: str,
        argv: Sequence[str],
        *,
        user: str | None = None,
        groups: Sequence[str] = (),
        user_agent: str | None = None,
        timeout: float = 60,
        stdin: bytes | None = None,
        tty: bool = False,
        credentials: Any = None,
        anonymous: bool = False,
    ) -> ExecResult:
        user, who_groups = _who(user, groups, credentials, anonymous)
        self.execs.append(
            ExecCall(
                namespace, pod, container, list(argv), user, who_groups, user_agent, stdin, tty
            )
        )
        if user_agent and self.on_request is not None:
            uri = f"/api/v1/namespaces/{namespace}/pods/{pod}/exec"
            self.on_request("GET", uri, user, who_groups, user_agent)
        return self.exec_results.get((pod, *argv), OK)

    def logs(
        self,
        namespace: str,
        pod: str,
        *,
        container: str | None = None,
        since: datetime | None = None,
        timestamps: bool = False,
    ) -> str:
        return self.logs_.get(pod, "")


def running_pod(
    namespace: str, name: str, node: str, containers: Sequence[str], cid: str = "abc"
) -> PodInfo:
    return PodInfo(
        namespace,
        name,
        node,
        "Running",
        [
            ContainerInfo(c, "running", container_id=f"containerd://{cid}{i}")
            for i, c in enumerate(containers)
        ],
    )
