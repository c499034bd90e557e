"""`cks-lab doctor`: the checks fed real command output through a fake Probe."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

from lab.cli import main
from lab.kind import doctor
from lab.kind.doctor import Check, render_text, run_checks, to_json

# `docker version --format '{{json .}}'` against a running Docker Engine 28.2.2
DOCKER_OK = json.dumps({
    "Client": {"Version": "28.2.2", "ApiVersion": "1.50", "DefaultAPIVersion": "1.50",
               "GitCommit": "e6534b4", "GoVersion": "go1.24.3", "Os": "linux",
               "Arch": "amd64", "BuildTime": "Fri May 30 12:07:14 2025", "Context": "default"},
    "Server": {"Platform": {"Name": "Docker Engine - Community"},
               "Components": [{"Name": "Engine", "Version": "28.2.2",
                               "Details": {"ApiVersion": "1.50", "MinAPIVersion": "1.24"}}],
               "Version": "28.2.2", "ApiVersion": "1.50", "MinAPIVersion": "1.24",
               "GitCommit": "45873be", "GoVersion": "go1.24.3", "Os": "linux",
               "Arch": "amd64", "KernelVersion": "6.8.0-49-generic",
               "BuildTime": "2025-05-30T12:07:14.000000000+00:00"},
})
# the same with no daemon: exit 1, "Server":null on stdout, the reason on stderr
DOCKER_DOWN_OUT = ('{"Client":{"Version":"28.2.2","ApiVersion":"1.50","DefaultAPIVersion":"1.50",'
                   '"GitCommit":"e6534b4","GoVersion":"go1.24.3","Os":"linux","Arch":"amd64",'
                   '"BuildTime":"Fri May 30 12:07:14 2025","Context":"default"},"Server":null}\n')
DOCKER_DOWN_ERR = ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
                   "Is the docker daemon running?\n")
DOCKER_DENIED_ERR = (
    "permission denied while trying to connect to the Docker daemon socket at "
    'unix:///var/run/docker.sock: Get "http://%2Fvar%2Frun%2Fdocker.sock/v1.50/version": '
    "dial unix /var/run/docker.sock: connect: permission denied\n")

KIND_OK = "kind v0.32.0 go1.25.5 linux/amd64\n"
KIND_OLD = "kind v0.20.0 go1.20.4 linux/amd64\n"


def kubectl_json(minor: str, git_version: str) -> str:
    return json.dumps({
        "clientVersion": {"major": "1", "minor": minor, "gitVersion": git_version,
                          "gitCommit": "4cb5f0764b8d5f425645c6f433394fede34a8a26",
                          "gitTreeState": "clean", "buildDate": "2026-04-22T15:10:12Z",
                          "goVersion": "go1.26.2", "compiler": "gc", "platform": "linux/amd64"},
        "kustomizeVersion": "v5.7.1",
    }, indent=2)


MEMINFO = ("MemTotal:       16318412 kB\nMemFree:         2113440 kB\n"
           "MemAvailable:    9873220 kB\nBuffers:          412908 kB\n")
MEMINFO_LOW = MEMINFO.replace("9873220", "2097152")  # 2 GiB

GIB = 1024**3


class FakeProbe:
    """A host described by data: commands' (rc, out, err), files' text, free disk."""

    def __init__(self, *, system: str = "Linux", free: int = 50 * GIB) -> None:
        self.commands: dict[str, tuple[int, str, str]] = {
            "docker": (0, DOCKER_OK, ""),
            "kind": (0, KIND_OK, ""),
            "kubectl": (0, kubectl_json("36", "v1.36.0"), ""),
        }
        self.files: dict[str, str] = {
            doctor.APPARMOR_ENABLED: "Y\n",
            doctor.BTF: "",
            doctor.CGROUP_ROOT: "",
            doctor.CGROUP_V2: "cpuset cpu io memory hugetlb pids rdma misc\n",
            doctor.MEMINFO: MEMINFO,
        }
        self._system = system
        self.free = free
        self.ran: list[list[str]] = []
        self.measured: list[str] = []

    def run(self, argv: Sequence[str]) -> tuple[int, str, str]:
        self.ran.append(list(argv))
        if argv[0] not in self.commands:
            raise FileNotFoundError(argv[0])
        return self.commands[argv[0]]

    def read_text(self, path: str) -> str | None:
        return self.files.get(path)

    def exists(self, path: str) -> bool:
        return path in self.files

    def disk_free(self, path: str) -> int:
        self.measured.append(path)
        return self.free

    def system(self) -> str:
        return self._system


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def test_a_ready_linux_host_is_all_ok(tmp_path: Path) -> None:
    probe = FakeProbe()
    checks = run_checks(probe, tmp_path)
    assert [c.name for c in checks] == ["docker", "kind", "kubectl", "apparmor", "btf",
                                        "cgroup", "memory", "disk"]
    assert {c.name: c.status for c in checks} == dict.fromkeys(by_name(checks), "ok")
    got = by_name(checks)
    assert got["docker"].found == "CLI 28.2.2; daemon 28.2.2 reachable"
    assert got["kind"].found == "kind v0.32.0 go1.25.5 linux/amd64"
    assert got["kubectl"].found == "client v1.36.0"
    assert got["memory"].found == "9.4 GiB available"
    assert got["cgroup"].found == "v2 (unified)"
    assert probe.measured == [str(tmp_path)]
    assert ["docker", "version", "--format", "{{json .}}"] in probe.ran
    assert ["kubectl", "version", "--client", "-o", "json"] in probe.ran
    assert not doctor.failed(checks)
    assert to_json(checks)["ok"] is True
    assert render_text(checks).splitlines()[-1] == "8 ok: ready for the kind backend"


def test_docker_missing_fails_with_the_install_hint(tmp_path: Path) -> None:
    probe = FakeProbe()
    del probe.commands["docker"]
    docker = by_name(run_checks(probe, tmp_path))["docker"]
    assert docker.status == "fail"
    assert docker.found == "docker CLI not found on PATH"
    assert "install Docker Engine" in docker.fix and "Docker Desktop" in docker.fix


def test_daemon_not_running_shows_dockers_reason_and_how_to_start_it(tmp_path: Path) -> None:
    probe = FakeProbe()
    probe.commands["docker"] = (1, DOCKER_DOWN_OUT, DOCKER_DOWN_ERR)
    checks = run_checks(probe, tmp_path)
    docker = by_name(checks)["docker"]
    assert docker.status == "fail"
    assert docker.found == ("CLI 28.2.2; daemon not reachable: Cannot connect to the Docker "
                            "daemon at unix:///var/run/docker.sock. Is the docker daemon running?")
    assert "systemctl start docker" in docker.fix
    assert doctor.failed(checks)
    text = render_text(checks)
    assert "FAIL  docker" in text and "fix: start the daemon" in text
    assert text.splitlines()[-1].startswith("7 ok, 1 fail:")


def test_daemon_permission_denied_says_to_join_the_docker_group(tmp_path: Path) -> None:
    probe = FakeProbe()
    probe.commands["docker"] = (1, DOCKER_DOWN_OUT, DOCKER_DENIED_ERR)
    docker = by_name(run_checks(probe, tmp_path))["docker"]
    assert docker.status == "fail"
    assert "usermod -aG docker" in docker.fix


def test_kind_too_old_warns_with_the_upgrade_hint(tmp_path: Path) -> None:
    probe = FakeProbe()
    probe.commands["kind"] = (0, KIND_OLD, "")
    checks = run_checks(probe, tmp_path)
    kind = by_name(checks)["kind"]
    assert kind.status == "warn"
    assert kind.found.startswith("kind v0.20.0 go1.20.4 linux/amd64: older than v0.32.0")
    assert "go install sigs.k8s.io/kind@v0.32.0" in kind.fix
    assert not doctor.failed(checks)  # a warning does not fail


def test_kind_missing_fails(tmp_path: Path) -> None:
    probe = FakeProbe()
    del probe.commands["kind"]
    kind = by_name(run_checks(probe, tmp_path))["kind"]
    assert kind.status == "fail" and "sim backend works without it" in kind.found


@pytest.mark.parametrize(("text", "version"), [
    ("kind v0.32.0 go1.25.5 linux/amd64", (0, 32, 0)),
    ("kind v0.33.1-alpha.12+abcdef go1.26.0 darwin/arm64", (0, 33, 1)),
    ("kind v0.9.0 go1.15.2 linux/amd64", (0, 9, 0)),
    ("something else", None),
])
def test_parse_kind_version(text: str, version: tuple[int, int, int] | None) -> None:
    assert doctor.parse_kind_version(text) == version


def test_kubectl_outside_the_skew_warns_and_vendor_minor_parses(tmp_path: Path) -> None:
    probe = FakeProbe()
    probe.commands["kubectl"] = (0, kubectl_json("32+", "v1.32.4-eks-1"), "")
    kubectl = by_name(run_checks(probe, tmp_path))["kubectl"]
    assert kubectl.status == "warn" and "v1.32.4-eks-1" in kubectl.found
    probe.commands["kubectl"] = (0, kubectl_json("35+", "v1.35.2-gke.1"), "")
    assert by_name(run_checks(probe, tmp_path))["kubectl"].status == "ok"


def test_apparmor_off_or_absent_sends_those_scenarios_to_sim(tmp_path: Path) -> None:
    probe = FakeProbe()
    probe.files[doctor.APPARMOR_ENABLED] = "N\n"
    checks = run_checks(probe, tmp_path)
    apparmor = by_name(checks)["apparmor"]
    assert apparmor.status == "warn"
    assert "disabled" in apparmor.found and "sim backend" in apparmor.found
    assert "apparmor=1" in apparmor.fix
    assert not doctor.failed(checks)
    del probe.files[doctor.APPARMOR_ENABLED]
    apparmor = by_name(run_checks(probe, tmp_path))["apparmor"]
    assert apparmor.status == "warn" and "no AppArmor in this kernel" in apparmor.found


def test_no_btf_cgroup_v1_low_memory_and_disk(tmp_path: Path) -> None:
    probe = FakeProbe(free=3 * GIB)
    del probe.files[doctor.BTF], probe.files[doctor.CGROUP_V2]
    probe.files[doctor.MEMINFO] = MEMINFO_LOW
    got = {c.name: c for c in run_checks(probe, tmp_path)}
    assert got["btf"].status == "warn" and "CONFIG_DEBUG_INFO_BTF" in got["btf"].fix
    assert got["cgroup"].status == "fail" and got["cgroup"].found.startswith("v1")
    assert got["memory"].status == "warn" and got["memory"].found.startswith("2.0 GiB")
    assert got["disk"].status == "warn" and "CKS_LAB_HOME" in got["disk"].fix


def test_macos_skips_the_host_kernel_checks_with_the_reason(tmp_path: Path) -> None:
    probe = FakeProbe(system="Darwin")
    probe.files.clear()  # no /sys, no /proc on macOS
    checks = run_checks(probe, tmp_path)
    status = {c.name: c.status for c in checks}
    assert status == {"docker": "ok", "kind": "ok", "kubectl": "ok", "apparmor": "skip",
                      "btf": "skip", "cgroup": "skip", "memory": "skip", "disk": "ok"}
    got = by_name(checks)
    assert "Docker Desktop" in got["apparmor"].found and "sim backend" in got["apparmor"].found
    assert "Docker Desktop" in got["btf"].found
    assert "Settings > Resources" in got["memory"].fix
    assert not doctor.failed(checks)


def test_host_probe_reports_a_missing_command_and_measures_a_future_dir(tmp_path: Path) -> None:
    probe = doctor.HostProbe()
    with pytest.raises(FileNotFoundError):
        probe.run(["cks-lab-no-such-command-xyz"])
    assert probe.disk_free(str(tmp_path / "not" / "yet")) > 0
    assert probe.read_text(str(tmp_path / "absent")) is None


def test_cli_json_and_exit_status(monkeypatch: pytest.MonkeyPatch) -> None:
    ready = FakeProbe()
    monkeypatch.setattr(doctor, "HostProbe", lambda: ready)
    out = CliRunner().invoke(main, ["doctor", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["ok"] is True and len(data["checks"]) == 8
    assert data["checks"][0] == {"name": "docker", "status": "ok",
                                 "found": "CLI 28.2.2; daemon 28.2.2 reachable", "fix": ""}

    down = FakeProbe()
    down.commands["docker"] = (1, DOCKER_DOWN_OUT, DOCKER_DOWN_ERR)
    monkeypatch.setattr(doctor, "HostProbe", lambda: down)
    out = CliRunner().invoke(main, ["doctor"])
    assert out.exit_code == 1
    assert "FAIL  docker" in out.output and "Is the docker daemon running?" in out.output


@pytest.mark.parametrize(
    ("docker_host", "context", "status"),
    [
        ("", "unix:///var/run/docker.sock", "ok"),
        ("", "unix:///Users/ana/.docker/run/docker.sock", "ok"),
        ("tcp://127.0.0.1:2375", "", "ok"),
        ("", "tcp://localhost:2375", "ok"),
        ("tcp://10.0.0.5:2376", "", "warn"),  # kind's API port would open over there
        ("", "ssh://ana@build-box", "warn"),
    ],
)
def test_a_daemon_on_another_machine_is_a_warning(
    monkeypatch: pytest.MonkeyPatch, docker_host: str, context: str, status: str
) -> None:
    probe = FakeProbe()
    version = probe.commands["docker"]

    def run(argv: Sequence[str]) -> tuple[int, str, str]:
        probe.ran.append(list(argv))
        if list(argv[:3]) == ["docker", "context", "inspect"]:
            return (0, context + "\n", "")
        return version

    monkeypatch.setattr(probe, "run", run)
    if docker_host:
        monkeypatch.setenv("DOCKER_HOST", docker_host)
    else:
        monkeypatch.delenv("DOCKER_HOST", raising=False)
    check = doctor.check_docker(probe)
    assert check.status == status, check
    if status == "warn":
        assert "cannot reach" in check.found and "docker context use default" in check.fix
