"""A fake `Runner` that plays kind and docker for lab.kind.cluster, from real output samples.

It keeps the little state the real tools would (which clusters exist, their node
containers) and replays tests/kind/samples/kind-create-*.txt line by line through
`on_line`, as the real runner streams kind's stderr.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from lab.kind.runner import CommandNotFound, CommandResult

SAMPLES = Path(__file__).parent / "samples"


def sample(name: str) -> str:
    """A sample without its '# ' header (what produced it), as the tool printed it."""
    lines = (SAMPLES / name).read_text(encoding="utf-8").splitlines(keepends=True)
    while lines and lines[0].startswith("# "):
        lines.pop(0)
    return "".join(lines)


KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- cluster: {{certificate-authority-data: AAAA, server: 'https://127.0.0.1:39753'}}
  name: kind-{name}
contexts:
- context: {{cluster: kind-{name}, user: kind-{name}}}
  name: kind-{name}
current-context: kind-{name}
users:
- name: kind-{name}
  user: {{client-certificate-data: BBBB, client-key-data: CCCC}}
"""


WORKER_ID, PLANE_ID = "0b1f7d2c9a44", "c3e8a1f56d20"  # the IDs in kind-docker-ps-running.txt


def _stopped(row: str, state: str) -> str:
    return row.replace('"State":"running"', f'"State":"{state}"').replace(
        '"Status":"Up 12 minutes"', '"Status":"Exited (137) 3 minutes ago"'
    )


def ps_rows(name: str, worker: str = "running", plane: str = "running") -> str:
    """docker ps JSON lines for `name`'s two nodes (worker first, as in the
    real-format sample), either of them stopped when asked."""
    rows = sample("kind-docker-ps-running.txt").replace("cks-lab", name).splitlines()
    if worker != "running":
        rows[0] = _stopped(rows[0], worker)
    if plane != "running":
        rows[1] = _stopped(rows[1], plane)
    return "\n".join(rows) + "\n"


class FakeKind:
    def __init__(self, create_sample: str = "kind-create-success.txt") -> None:
        self.calls: list[list[str]] = []
        self.clusters: dict[str, str] = {}  # name -> worker container state
        self.planes: dict[str, str] = {}  # name -> control-plane container state
        self.create_sample = create_sample
        self.create_code = 1 if ("failure" in create_sample or "exists" in create_sample) else 0
        self.cancel_after: int | None = None  # set the cancel event after this many lines
        self.cancel_delete = False  # a cancel arrives while kind deletes
        self.missing: set[str] = set()
        self.docker_down = False  # docker answers, but its daemon does not
        self.apparmor = True  # the Docker daemon lists name=apparmor
        self.nodes_ready: list[bool] = []  # kubectl get nodes answers, one per call; then ready
        self.start_fails = False  # `docker start` cannot start the container
        self.on_create: Callable[[], None] | None = None
        # argv prefix -> what the real runner would raise for it (a CommandTimeout for a
        # hung kind, an OSError for a binary that cannot be executed)
        self.raises: dict[tuple[str, ...], Exception] = {}

    def commands(self, *prefix: str) -> list[list[str]]:
        return [c for c in self.calls if c[: len(prefix)] == list(prefix)]

    def _flag(self, argv: Sequence[str], flag: str) -> str:
        return argv[list(argv).index(flag) + 1]

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        on_line: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> CommandResult:
        argv = list(argv)
        self.calls.append(argv)
        if argv[0] in self.missing:
            raise CommandNotFound(argv[0])
        for prefix, error in self.raises.items():
            if tuple(argv[: len(prefix)]) == prefix:
                raise error
        if argv[:3] == ["kind", "get", "clusters"]:
            if not self.clusters:
                return CommandResult(0, "", "No kind clusters found.\n")
            return CommandResult(0, "".join(f"{n}\n" for n in sorted(self.clusters)), "")
        if argv[:2] == ["docker", "ps"] and self.docker_down:
            return CommandResult(
                1, "", "Cannot connect to the Docker daemon at unix:///var/run/docker.sock.\n"
            )
        if argv[:2] == ["docker", "ps"]:
            name = argv[argv.index("--filter") + 1].rpartition("=")[2]
            if name not in self.clusters:
                return CommandResult(0, "", "")
            return CommandResult(
                0, ps_rows(name, self.clusters[name], self.planes.get(name, "running")), ""
            )
        if argv[:2] == ["docker", "info"]:
            which = "apparmor" if self.apparmor else "none"
            return CommandResult(0, sample(f"kind-docker-info-security-{which}.txt"), "")
        if argv[:2] == ["docker", "start"]:
            return self._start(argv[2])
        if argv[:2] == ["docker", "exec"] and "get" in argv and "nodes" in argv:
            return self._get_nodes(argv[2])
        if argv[:3] == ["kind", "delete", "cluster"]:
            name = self._flag(argv, "--name")
            if self.cancel_delete and cancel is not None:
                cancel.set()  # Ctrl-C while kind deletes: killed, the nodes stay
                return CommandResult(-15, "", f'Deleting cluster "{name}" ...\n', cancelled=True)
            self.clusters.pop(name, None)
            self.planes.pop(name, None)
            return CommandResult(0, "", f'Deleting cluster "{name}" ...\n')
        if argv[:3] == ["kind", "create", "cluster"]:
            return self._create(argv, on_line, cancel)
        raise AssertionError(f"unexpected command {argv}")

    def _only_cluster(self) -> str:
        (name,) = self.clusters  # the fake's container IDs are one cluster's
        return name

    def _start(self, container: str) -> CommandResult:
        name = self._only_cluster()
        if self.start_fails:
            return CommandResult(
                1,
                "",
                f"Error response from daemon: driver failed programming external connectivity "
                f"on endpoint {name}-control-plane: Bind for 127.0.0.1:39753 failed: port is "
                "already allocated\nError: failed to start containers: " + container + "\n",
            )
        if container == WORKER_ID:
            self.clusters[name] = "running"
        elif container == PLANE_ID:
            self.planes[name] = "running"
        else:
            return CommandResult(
                1, "", f"Error response from daemon: No such container: {container}\n"
            )
        return CommandResult(0, container + "\n", "")

    def _get_nodes(self, container: str) -> CommandResult:
        name = self._only_cluster()
        if container != PLANE_ID:
            raise AssertionError(f"kubectl asked in {container}, not the control plane")
        if self.planes.get(name, "running") != "running":
            return CommandResult(
                1, "", f"Error response from daemon: container {PLANE_ID} is not running\n"
            )
        ready = self.nodes_ready.pop(0) if self.nodes_ready else True
        which = "ready" if ready else "notready"
        return CommandResult(0, sample(f"kind-kubectl-get-nodes-{which}.json"), "")

    def _create(
        self,
        argv: list[str],
        on_line: Callable[[str], None] | None,
        cancel: threading.Event | None,
    ) -> CommandResult:
        name = self._flag(argv, "--name")
        if name in self.clusters:
            text = sample("kind-create-exists.txt")
            return CommandResult(1, "", text)
        seen: list[str] = []
        for i, line in enumerate(sample(self.create_sample).splitlines(keepends=True)):
            if self.cancel_after is not None and i == self.cancel_after and cancel is not None:
                cancel.set()  # as the TUI's cancel button or Ctrl-C would
            if cancel is not None and cancel.is_set():
                # kind killed half-way: its node containers exist, not yet a cluster
                self.clusters[name] = "running"
                return CommandResult(-15, "", "".join(seen), cancelled=True)
            seen.append(line)
            if on_line is not None:
                on_line(line.rstrip("\n"))
        if self.create_code == 0:
            Path(self._flag(argv, "--kubeconfig")).write_text(KUBECONFIG.format(name=name))
            self.clusters[name] = "running"
        if self.on_create is not None:
            self.on_create()
        return CommandResult(self.create_code, "", "".join(seen))
