"""Which scenarios the kind backend serves on a host, from the doctor's real checks.

The hosts are fake Probes answering as real ones do (a Linux laptop with
AppArmor and BTF, an SELinux host, a kernel without BTF, macOS with Docker
Desktop, a host whose docker daemon is down); the doctor's own check functions
turn them into rows, and availability reads those rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from lab.kind import doctor
from lab.kind.availability import backend_blockers, backend_for_scenario, host_limits
from lab.kind.doctor import Check, to_json

DOCKER_OK = '{"Client":{"Version":"28.2.2"},"Server":{"Version":"28.2.2"}}'
KUBECTL = '{"clientVersion":{"major":"1","minor":"36","gitVersion":"v1.36.1"}}'
MEMINFO = "MemTotal:       16318412 kB\nMemAvailable:    9873220 kB\n"


class Host:
    def __init__(
        self,
        system: str = "Linux",
        apparmor: str | None = "Y\n",
        btf: bool = True,
        docker_up: bool = True,
    ) -> None:
        self._system, self._apparmor, self._btf, self._docker_up = system, apparmor, btf, docker_up

    def run(self, argv: Sequence[str]) -> tuple[int, str, str]:
        if argv[0] == "docker":
            if self._docker_up:
                return 0, DOCKER_OK, ""
            return (
                1,
                '{"Client":{"Version":"28.2.2"},"Server":null}',
                (
                    "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
                    "Is the docker daemon running?\n"
                ),
            )
        if argv[0] == "kind":
            return 0, "kind v0.32.0 go1.25.5 linux/amd64\n", ""
        return 0, KUBECTL, ""

    def read_text(self, path: str) -> str | None:
        if path == doctor.APPARMOR_ENABLED:
            return self._apparmor
        if path == doctor.MEMINFO:
            return MEMINFO
        return None

    def exists(self, path: str) -> bool:
        if path == doctor.BTF:
            return self._btf
        return path in (doctor.CGROUP_V2, doctor.CGROUP_ROOT)

    def disk_free(self, path: str) -> int:
        return 100 * 1024**3

    def system(self) -> str:
        return self._system


def checks(**host: object) -> list[Check]:
    return doctor.run_checks(Host(**host), Path("/tmp/lab"))  # type: ignore[arg-type]


def test_a_linux_host_with_apparmor_and_btf_serves_everything() -> None:
    limits = host_limits(checks())
    assert limits == {}
    for skills in (["apparmor"], ["falco"], ["audit-logging"], ["seccomp", "apparmor"]):
        assert backend_for_scenario(skills, limits) == ("kind", None)


def test_an_selinux_host_offers_apparmor_on_sim() -> None:
    limits = host_limits(checks(apparmor=None))  # no /sys/module/apparmor: SELinux host
    assert set(limits) == {"apparmor"}
    assert limits["apparmor"].startswith("AppArmor scenarios need AppArmor enabled on the host")
    backend, reason = backend_for_scenario(["apparmor"], limits)
    assert backend == "sim"
    assert reason is not None and reason.startswith("offered on the sim backend: AppArmor")
    assert "no AppArmor in this kernel" in reason
    assert backend_for_scenario(["falco"], limits) == ("kind", None)
    assert backend_for_scenario(["audit-logging"], limits) == ("kind", None)


def test_apparmor_disabled_at_boot_is_limited_too() -> None:
    limits = host_limits(checks(apparmor="N\n"))
    assert "AppArmor is disabled" in limits["apparmor"]


def test_a_kernel_without_btf_offers_falco_on_sim() -> None:
    limits = host_limits(checks(btf=False))
    assert set(limits) == {"falco"}
    backend, reason = backend_for_scenario(["falco"], limits)
    assert backend == "sim" and reason is not None
    assert "Falco's modern eBPF driver needs the kernel's BTF" in reason
    assert "/sys/kernel/btf/vmlinux missing" in reason


def test_macos_docker_desktop_has_no_apparmor_but_falco_is_tried() -> None:
    limits = host_limits(checks(system="Darwin"))
    assert set(limits) == {"apparmor"}
    assert "Docker Desktop's VM has no AppArmor" in limits["apparmor"]
    assert backend_for_scenario(["falco"], limits) == ("kind", None)


def test_no_docker_daemon_offers_every_scenario_on_sim() -> None:
    report = checks(docker_up=False)
    assert backend_blockers(report) == [
        "docker: CLI 28.2.2; daemon not reachable: Cannot connect to the Docker daemon at "
        "unix:///var/run/docker.sock. Is the docker daemon running?"
    ]
    limits = host_limits(report, ["audit-logging"])
    backend, reason = backend_for_scenario(["audit-logging"], limits)
    assert backend == "sim" and reason is not None
    assert reason.startswith("offered on the sim backend: the kind backend cannot run here: docker")


def test_the_json_report_reads_the_same() -> None:
    report = checks(apparmor=None, btf=False)
    assert host_limits(to_json(report)) == host_limits(report)


@pytest.mark.parametrize("skills", [["apparmor", "falco"], ["falco", "apparmor", "falco"]])
def test_every_reason_once(skills: list[str]) -> None:
    limits = host_limits(checks(apparmor=None, btf=False))
    _, reason = backend_for_scenario(skills, limits)
    assert reason is not None
    assert reason.count("AppArmor scenarios need") == 1
    assert reason.count("Falco's modern eBPF driver needs") == 1


def test_which_backend_serves_a_scenario_here_and_on_this_cluster() -> None:
    from lab import service
    from lab.fsutil import atomic_write_json
    from lab.kind.cluster import cluster_handle
    from lab.scenarios.catalog import Catalog

    catalog = Catalog([Path(__file__).parents[2] / "scenarios"])
    aa = service.scenario_by_ref(catalog, "apparmor-deny-write")
    falco = service.scenario_by_ref(catalog, "falco-shell-alert")
    assert service.scenario_backend(aa, None, checks()) == ("kind", None)
    backend, why = service.scenario_backend(aa, None, checks(apparmor=None))
    assert backend == "sim" and why and "AppArmor" in why
    # the host has AppArmor, but the cluster was made where the daemon had none
    handle = cluster_handle("cks-lab")
    atomic_write_json(handle.state_file, {"name": "cks-lab", "phase": "ready", "apparmor": False})
    backend, why = service.scenario_backend(aa, None, checks())
    assert backend == "sim" and why and "made without the host's AppArmor" in why
    assert service.scenario_backend(falco, None, checks()) == ("kind", None)
