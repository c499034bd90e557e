"""`cks-lab down` first unloads the AppArmor profiles the lab and the learner loaded:
kind's nodes share the host kernel, so deleting them would leave those on the host."""

from __future__ import annotations

from pathlib import Path

from kind_fakes import FakeNodes

from lab.backends.kind import reset as lab_reset
from lab.errors import LabError


def test_profiles_beyond_the_baseline_are_unloaded_before_the_cluster_goes(
    tmp_path: Path,
) -> None:
    state = lab_reset.LabState(
        scenario="apparmor-deny-write",
        apparmor={"cks-lab-worker": ["/etc/apparmor.d/usr.sbin.ntpd"]},  # shipped: stays
    )
    lab_reset.save_state(tmp_path, state)
    nodes = FakeNodes(
        files={
            "cks-lab-worker": {
                "/etc/apparmor.d/usr.sbin.ntpd": b"profile ntpd {}\n",
                "/etc/apparmor.d/k8s-deny-write": b"profile k8s-deny-write {}\n",
            }
        }
    )
    said: list[str] = []
    done = lab_reset.release_host_profiles(tmp_path, "cks-lab", said.append, nodes)
    assert done == ["cks-lab-worker:/etc/apparmor.d/k8s-deny-write"]
    assert ["apparmor_parser", "-R", "/etc/apparmor.d/k8s-deny-write"] in nodes.commands()
    assert ["apparmor_parser", "-R", "/etc/apparmor.d/usr.sbin.ntpd"] not in nodes.commands()
    assert any("from the host kernel" in m for m in said)


def test_nothing_to_release_without_apparmor_and_a_gone_node_is_a_warning(
    tmp_path: Path,
) -> None:
    assert lab_reset.release_host_profiles(tmp_path, "cks-lab", print) == []  # no record

    class GoneNodes(FakeNodes):
        def exec(self, node: str, argv: object, **kw: object) -> object:  # type: ignore[override]
            raise LabError(f"node container {node!r} does not exist")

    lab_reset.save_state(tmp_path, lab_reset.LabState(apparmor={"cks-lab-worker": []}))
    said: list[str] = []
    gone = GoneNodes(files={"cks-lab-worker": {}})
    assert lab_reset.release_host_profiles(tmp_path, "cks-lab", said.append, gone) == []
    assert said and "could not unload" in said[0]
