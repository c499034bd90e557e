"""Kube.logs asks the API server for the kubelet's time stamps only when told to:
the Falco reload check times Falco's (re)starts by them (lab/backends/kind/falco_reload.py).
Against test_kind_kube.py's fake API server."""

from __future__ import annotations

from test_kind_kube import FakeApi, api, client_ca, kube, tls  # noqa: F401  (fixtures)

from lab.kind.kube import Kube


def test_logs_asks_for_time_stamps_when_told(kube: Kube, api: tuple[FakeApi, int]) -> None:  # noqa: F811
    fake, _ = api
    fake.logs = "2025-11-27T10:00:00.050312417Z Falco version: 0.44.1 (x86_64)\n"
    assert kube.logs("cks-lab-falco", "falco-x7k2p", container="falco", timestamps=True) == (
        fake.logs
    )
    assert fake.seen[-1].query["timestamps"] == ["true"]
    kube.logs("cks-lab-falco", "falco-x7k2p", container="falco")
    assert "timestamps" not in fake.seen[-1].query
