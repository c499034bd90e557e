"""Files the learner leaves on the sim's nodes (answer files), read for the checks."""

from __future__ import annotations

from dataclasses import dataclass

from lab.evidence import FileFact
from lab.nodefs import NodePathError, NotRegularFile, read_regular, resolve_in_node
from lab.workspace import Workspace

MAX_ANSWER_BYTES = 64 * 1024


@dataclass(frozen=True)
class SimNodeFiles:
    ws: Workspace

    def read(self, node: str, path: str) -> FileFact:
        try:
            raw = read_regular(resolve_in_node(self.ws.node_root(node), path), MAX_ANSWER_BYTES)
        except FileNotFoundError:
            return FileFact(exists=False)
        except NotRegularFile as e:
            return FileFact(exists=True, error=f"it is a {e.kind}, not a file")
        except NodePathError as e:
            return FileFact(exists=False, error=e.message)
        except OSError as e:
            return FileFact(exists=True, error=e.strerror or str(e))
        if len(raw) > MAX_ANSWER_BYTES:
            return FileFact(exists=True, error=f"it is larger than {MAX_ANSWER_BYTES} bytes")
        try:
            return FileFact(exists=True, text=raw.decode("utf-8"))
        except UnicodeDecodeError:
            return FileFact(exists=True, error="it is not UTF-8 text")
