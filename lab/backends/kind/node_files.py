"""Files the learner leaves on the kind nodes (answer files), read for the checks.

Answers the way lab.backends.sim.node_files does, word for word, so a check
grades the same node state the same on either backend.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.backends.sim.node_files import MAX_ANSWER_BYTES
from lab.evidence import FileFact
from lab.kind.nodes import LabNodes, NodeFileError


@dataclass(frozen=True)
class KindNodeFiles:
    nodes: LabNodes

    def read(self, node: str, path: str) -> FileFact:
        try:
            raw = self.nodes.read_node_bytes(node, path, MAX_ANSWER_BYTES)
        except NodeFileError as e:
            if e.reason == "missing":
                return FileFact(exists=False)
            if e.reason == "not-a-file":
                return FileFact(exists=True, error=f"it is a {e.kind}, not a file")
            if e.reason == "too-large":
                return FileFact(exists=True, error=f"it is larger than {MAX_ANSWER_BYTES} bytes")
            if e.reason == "bad-path":
                return FileFact(exists=False, error=e.message)
            return FileFact(exists=True, error=e.message)
        try:
            return FileFact(exists=True, text=raw.decode("utf-8"))
        except UnicodeDecodeError:
            return FileFact(exists=True, error="it is not UTF-8 text")
