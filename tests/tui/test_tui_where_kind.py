"""The scenario screen's "Work here" tab on kind: the nodes are containers."""

from __future__ import annotations

from pathlib import Path

from lab import service
from lab.scenarios.catalog import Catalog
from lab.tui.screens.scenario import where_markdown

REPO = Path(__file__).parents[2]


def test_work_here_names_the_node_containers_on_kind(tmp_path: Path) -> None:
    op, _ = service.start(Catalog([REPO / "scenarios"]), "falco-shell-alert", tmp_path / "ws")
    sim = where_markdown(op, op.sc)
    assert str(op.ws.node_root("worker")) in sim and "docker exec" not in sim
    op.ws.update_state(backend="kind", cluster="cks-lab-x")
    kind = where_markdown(op, op.sc)
    assert "`docker exec -it cks-lab-x-worker bash`" in kind
    assert "`docker exec -it cks-lab-x-control-plane bash`" in kind
    assert "worker: `/etc/falco/falco_rules.local.yaml`" in kind
    assert str(op.ws.node_root("worker")) not in kind  # no folder to edit on kind
