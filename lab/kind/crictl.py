"""What crictl says about the kube-apiserver in a kind control-plane node.

A learner's edit of the static pod manifest makes kubelet start a new pod (new
sandbox, new container id); an apiserver that cannot start exits and kubelet
restarts it with a growing ``attempt``. These pure functions read
``crictl ps -a --name kube-apiserver -o json`` and ``crictl logs`` output; the
backend runs the commands.

``crictl ps -o json`` prints the CRI ListContainersResponse through protojson:
lowerCamelCase keys, enums by name (``CONTAINER_RUNNING``), int64 values such as
``createdAt`` (nanoseconds since the epoch) as JSON strings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lab.errors import LabError

RUNNING = "CONTAINER_RUNNING"
EXITED = "CONTAINER_EXITED"
APISERVER = "kube-apiserver"


@dataclass(frozen=True)
class CriContainer:
    id: str
    name: str
    state: str  # CONTAINER_CREATED | CONTAINER_RUNNING | CONTAINER_EXITED | CONTAINER_UNKNOWN
    attempt: int  # kubelet's restart count of this container within its pod sandbox
    created_at: int  # ns since the epoch
    pod_sandbox_id: str
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.state == RUNNING


def as_int(value: Any, default: int = 0) -> int:
    """A JSON number or numeric string as an int (protojson writes int64 as a string and
    uint32 as a number; the Kubernetes API mixes both too); ``default`` for anything else."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _container(raw: Any) -> CriContainer | None:
    if not isinstance(raw, dict):
        return None
    meta = raw.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    labels = raw.get("labels")
    labels = labels if isinstance(labels, dict) else {}
    return CriContainer(
        id=str(raw.get("id", "")),
        name=str(meta.get("name", "")),
        state=str(raw.get("state", "")),
        attempt=as_int(meta.get("attempt", 0)),
        created_at=as_int(raw.get("createdAt", 0)),
        pod_sandbox_id=str(raw.get("podSandboxId", "")),
        labels={str(k): str(v) for k, v in labels.items()},
    )


def parse_ps_json(text: str) -> list[CriContainer]:
    """The containers of ``crictl ps [-a] -o json``, in the order crictl printed them."""
    try:
        data = json.loads(text)
    except ValueError:
        first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "(no output)")
        raise LabError(f"crictl ps did not print JSON: {first}") from None
    if not isinstance(data, dict):
        raise LabError("crictl ps printed JSON without a 'containers' list")
    raws = data.get("containers") or []
    if not isinstance(raws, list):
        raise LabError("crictl ps printed JSON without a 'containers' list")
    return [c for c in map(_container, raws) if c is not None]


def newest(containers: Iterable[CriContainer], name: str) -> CriContainer | None:
    """The most recently created container called ``name`` (ties: the higher attempt)."""
    mine = [c for c in containers if c.name == name]
    return max(mine, key=lambda c: (c.created_at, c.attempt), default=None)


@dataclass
class ApiserverRun:
    running: bool
    container: CriContainer | None  # the newest kube-apiserver container
    restarted: bool  # it is not the container that ran before the learner's change
    crash_looping: bool  # it exited again after kubelet restarted it
    error_lines: list[str] = field(default_factory=list)  # why it exited (crictl logs)


def apiserver_run(before_id: str | None, ps_json: str, logs_text: str | None) -> ApiserverRun:
    """The apiserver's state after a manifest change.

    ``before_id``: the container that ran before (None: unknown, so ``restarted``
    stays False); ``logs_text``: ``crictl logs`` of the newest container, read only
    when it is not running.
    """
    containers = parse_ps_json(ps_json)
    current = newest(containers, APISERVER)
    if current is None:
        return ApiserverRun(running=False, container=None, restarted=False, crash_looping=False)
    restarted = before_id is not None and current.id != before_id
    running = current.running
    # kubelet restarts an exited container in the same sandbox with attempt + 1: a
    # second exit there is a crash loop, not a single slow start.
    same_pod = [
        c for c in containers if c.name == APISERVER and c.pod_sandbox_id == current.pod_sandbox_id
    ]
    exits = sum(1 for c in same_pod if c.state == EXITED)
    crash_looping = current.state == EXITED and (current.attempt >= 1 or exits >= 2)
    lines = explain_apiserver_logs(logs_text) if (logs_text and not running) else []
    return ApiserverRun(running, current, restarted, crash_looping, lines)


# klog's text header: severity, MMDD, time, pid, file:line]
_KLOG_RE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ [^\]\s]+\] ")
# The kubelet's on-disk CRI log prefix, when a log file is read instead of crictl logs.
_CRI_PREFIX_RE = re.compile(r"^\d{4}-\d\d-\d\dT\S+ (?:stdout|stderr) [FP] ")
_COMMAND_FAILED = '"command failed"'


def _strip(line: str) -> str:
    return _CRI_PREFIX_RE.sub("", line.rstrip("\r\n"), count=1)


def explain_apiserver_logs(text: str) -> list[str]:
    """The lines of an exited apiserver's log that say why it stopped.

    Decisive lines: klog's ``"command failed" err=...`` (with the indented lines of
    a multi-line ``err=<`` value), ``Error: ...`` (flag parse errors, printed after
    the usage text, before logging starts) and fatal ``F`` lines. Without any, the
    last error line, else the last line: the best clue left.
    """
    lines = [_strip(ln) for ln in text.splitlines()]
    found: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        head = _KLOG_RE.match(line)
        decisive = (head is not None and (head.group(1) == "F" or _COMMAND_FAILED in line)) or (
            line.startswith("Error: ")
        )
        if decisive:
            found.append(line)
            if line.endswith("=<"):  # klog's multi-line value: tab-indented, ends with " >"
                while i + 1 < len(lines) and (
                    lines[i + 1].startswith("\t") or lines[i + 1] == " >"
                ):
                    i += 1
                    found.append(lines[i])
        i += 1
    if found:
        return found
    errors = [ln for ln in lines if (m := _KLOG_RE.match(ln)) and m.group(1) == "E"]
    if errors:
        return errors[-1:]
    rest = [ln for ln in lines if ln.strip()]
    return rest[-1:]


_GO_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
               "\\": "\\", '"': '"', "'": "'"}  # fmt: skip


def _go_unquote(body: str) -> str:
    """The inside of a Go strconv.Quote string, unescaped."""
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\" or i + 1 == len(body):
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        width = {"x": 2, "u": 4, "U": 8}.get(nxt)
        if nxt in _GO_ESCAPES:
            out.append(_GO_ESCAPES[nxt])
            i += 2
        elif width and re.fullmatch(r"[0-9a-fA-F]+", body[i + 2 : i + 2 + width] or "-"):
            out.append(chr(int(body[i + 2 : i + 2 + width], 16)))
            i += 2 + width
        elif re.fullmatch(r"[0-7]{3}", body[i + 1 : i + 4]):
            out.append(chr(int(body[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(ch)
            i += 1
    return "".join(out)


_ERR_QUOTED_RE = re.compile(r'\berr="((?:[^"\\]|\\.)*)"')


def error_message(lines: list[str]) -> str | None:
    """The error itself, as the apiserver worded it, from ``explain_apiserver_logs`` lines.

    ``E... run.go:72] "command failed" err="loading audit policy file: ..."`` gives
    ``loading audit policy file: ...``; ``Error: unknown flag: --x`` gives
    ``unknown flag: --x``; anything else its line as is.
    """
    for i, line in enumerate(lines):
        if _COMMAND_FAILED in line:
            m = _ERR_QUOTED_RE.search(line)
            if m:
                return _go_unquote(m.group(1))
            if line.endswith("err=<"):
                body = []
                for more in lines[i + 1 :]:
                    if not more.startswith("\t"):
                        break
                    body.append(more[1:])
                return "\n".join(body)
        if line.startswith("Error: "):
            return line[len("Error: ") :]
    if not lines:
        return None
    head = _KLOG_RE.match(lines[0])
    return lines[0][head.end() :] if head else lines[0]
