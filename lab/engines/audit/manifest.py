"""Decide what kubelet and kube-apiserver make of the kube-apiserver static pod.

Given a sim node tree and its ``kube-apiserver.yaml`` manifest, replay the
steps a kind control-plane node goes through when the file changes:

1. kubelet's file source decodes and validates the manifest (:mod:`podspec`);
2. kubelet sets up every hostPath volume (:mod:`hostpath`), creating
   DirectoryOrCreate/FileOrCreate paths; containerd creates a missing untyped
   hostPath as a directory;
3. the runtime starts ``command + args``;
4. kube-apiserver parses flags with pflag (:mod:`flags`; cobra prints
   ``Error: ...``), validates options and, at start, builds the audit backend
   (:mod:`startup`) and exits with ``"command failed" err="..."`` on failure.

The result says whether the apiserver runs, the error a learner would see and
where it points, the flags as written, where audit events go, and which paths
the node gained. Nothing is written to the tree; :func:`apply_host_changes`
does that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from lab.engines.audit.flags import FlagError, ParsedFlags, parse_flags
from lab.engines.audit.gotext import ENOENT, go_file_mode, go_quote, klog_line, path_error
from lab.engines.audit.goyaml import GoYAMLError, Lines, load_document
from lab.engines.audit.hostpath import ContainerFS, HostChange, Mount, NodeView, setup_pod_volumes
from lab.engines.audit.podspec import (
    command_line,
    container_mounts,
    decode_pod,
    find_container,
    validate_pod,
)
from lab.engines.audit.policy import Policy
from lab.engines.audit.startup import (
    AuditLogConfig,
    StartupError,
    audit_log_config,
    audit_notes,
    check_flag_files,
    ensure_log_file,
    load_audit_policy,
    policy_source,
    validate_options,
)
from lab.errors import LabError
from lab.nodefs import (
    NodePathError,
    NotRegularFile,
    normalize_node_path,
    resolve_in_node,
)

__all__ = [
    "DEFAULT_MANIFEST",
    "ApiserverState",
    "AuditLogConfig",
    "HostChange",
    "Mount",
    "analyse_apiserver",
    "apply_host_changes",
]

DEFAULT_MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
CONTAINER_NAME = "kube-apiserver"
KUBERNETES_VERSION = "v1.36.0"
MAX_MANIFEST_BYTES = 10 * 1024 * 1024  # kubelet's maxConfigLength

# What the learner sees, by who reported the failure.
SOURCE_KUBELET = "kubelet"
SOURCE_RUNTIME = "runtime"
SOURCE_APISERVER = "kube-apiserver"


@dataclass
class ApiserverState:
    running: bool
    error: str | None = None  # what crictl logs / the kubelet journal says
    error_source: str | None = None  # kubelet | runtime | kube-apiserver
    error_file: str | None = None  # node path the error points at
    error_line: int | None = None
    log_line: str | None = None  # the error as the log line a learner reads
    # The container's flags as written (last occurrence wins), also when the pod
    # never starts; empty only when kubelet cannot read a kube-apiserver container.
    flags: dict[str, str] = field(default_factory=dict)
    mounts: list[Mount] = field(default_factory=list)
    policy: Policy | None = None
    policy_file: str | None = None  # container path from --audit-policy-file
    policy_host_path: Path | None = None
    log: AuditLogConfig | None = None
    webhook_config: str | None = None
    notes: list[str] = field(default_factory=list)
    host_changes: list[HostChange] = field(default_factory=list)
    manifest_file: str = DEFAULT_MANIFEST

    @property
    def auditing(self) -> bool:
        """True when requests are actually written to a log backend."""
        return self.running and self.log is not None and self.policy is not None

    def lab_error(self) -> LabError | None:
        """The failure as a located LabError (None while running)."""
        if self.running or self.error is None:
            return None
        return LabError(
            self.error, file=self.error_file, line=self.error_line, item=self.error_source
        )


class _Stop(Exception):
    """Internal: the pod or process stopped; carries the failure."""

    def __init__(
        self,
        message: str,
        source: str,
        *,
        file: str | None = None,
        line: int | None = None,
        log_line: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.source = source
        self.file = file
        self.line = line
        self.log_line = log_line


def analyse_apiserver(
    node_root: Path,
    manifest_path: str = DEFAULT_MANIFEST,
    *,
    now: datetime | None = None,
) -> ApiserverState:
    """What happens to kube-apiserver on this node with its current manifest."""
    node = NodeView(Path(node_root))
    state = ApiserverState(running=False, manifest_file=manifest_path)
    try:
        _analyse(node, manifest_path, state, now)
        state.running = True
    except _Stop as stop:
        state.running = False
        state.error = stop.message
        state.error_source = stop.source
        state.error_file = (
            stop.file
            if stop.file is not None
            else (manifest_path if stop.line is not None else None)
        )
        state.error_line = stop.line
        state.log_line = stop.log_line
    state.host_changes = list(node.changes)
    return state


def apply_host_changes(node_root: Path, state: ApiserverState) -> list[Path]:
    """Create on disk the paths the start-up created on the node (dirs, empty files)."""
    made: list[Path] = []
    for change in state.host_changes:
        real = resolve_in_node(node_root, change.path)
        if change.kind == "dir":
            real.mkdir(parents=True, exist_ok=True)
        else:
            real.parent.mkdir(parents=True, exist_ok=True)
            real.touch(exist_ok=True)
        made.append(real)
    return made


def _analyse(node: NodeView, manifest: str, state: ApiserverState, now: datetime | None) -> None:
    # ---- 1. kubelet reads, decodes and validates the static pod file
    doc, lines = _read_pod(node, manifest, now)
    spec = doc.get("spec") or {}
    index = find_container(spec, CONTAINER_NAME)
    if index is not None:
        # Graders report the flags a learner wrote even when the pod never starts.
        state.flags = _written_flags(spec["containers"][index], lines, index)
    errs, line = validate_pod(spec, lines)
    if errs:
        raise _kubelet_manifest_error(f"invalid pod: [{' '.join(errs)}]", manifest, line, now)
    if index is None:
        raise _Stop(
            f'static pod in {manifest} has no container named "{CONTAINER_NAME}"',
            SOURCE_KUBELET,
            file=manifest,
            line=lines.of("spec", "containers"),
        )
    cpath = ("spec", "containers", index)
    container = spec["containers"][index]
    argv = command_line(container, lines, cpath)
    state.mounts = container_mounts(spec, container, lines, cpath)

    # ---- 2. kubelet sets up the pod's volumes
    failure = setup_pod_volumes(node, spec.get("volumes") or [], state.mounts)
    if failure is not None:
        vi, message = failure
        raise _Stop(message, SOURCE_KUBELET, file=manifest, line=lines.of("spec", "volumes", vi))

    # ---- 3. the runtime starts command + args
    if not container.get("command"):
        raise _Stop(
            f'container "{CONTAINER_NAME}" has no command: kube-apiserver is not started with '
            "the cluster's flags (kubeadm puts the whole command line in command:)",
            SOURCE_RUNTIME,
            file=manifest,
            line=lines.of(*cpath),
        )
    exe, exe_line = argv[0]
    if exe not in ("kube-apiserver", "/usr/local/bin/kube-apiserver"):
        where = "executable file not found in $PATH" if "/" not in exe else ENOENT
        msg = (
            "failed to create containerd task: failed to create shim task: OCI runtime create "
            "failed: runc create failed: unable to start container process: error during "
            f"container init: exec: {go_quote(exe)}: {where}: unknown"
        )
        raise _Stop(msg, SOURCE_RUNTIME, file=manifest, line=exe_line)

    # ---- 4. kube-apiserver parses its flags, then starts
    parsed = _parse_command_line(argv, manifest)
    _start(node, parsed, state, manifest, now)


def _read_pod(node: NodeView, manifest: str, now: datetime | None) -> tuple[Any, Lines]:
    """The manifest decoded as a Pod (a dict), or the kubelet error that refuses it.

    kubelet's file source stats every entry of the manifests directory and reads
    only regular files, at most maxConfigLength bytes (utilio.ReadAtMost, which
    fails once the limit is reached).
    """
    try:
        data = node.read_bytes(manifest, MAX_MANIFEST_BYTES)
    except NodePathError as exc:
        raise _Stop(exc.message, SOURCE_KUBELET, file=manifest) from None
    except (FileNotFoundError, NotADirectoryError):
        raise _Stop(
            f"no static pod manifest at {manifest}: kubelet runs no kube-apiserver pod",
            SOURCE_KUBELET,
            file=manifest,
        ) from None
    except NotRegularFile as exc:
        # extractFromDir logs these with a nil error and skips the entry.
        if exc.kind == "directory":
            message = "Provided manifest path is a directory, not recursing into manifest path"
            kv, where = [("path", manifest)], "file.go:182"
        else:
            message = "Manifest path is not a directory or file"
            kv = [("path", manifest), ("mode", go_file_mode(exc.st_mode))]
            where = "file.go:193"
        raise _Stop(
            f"{message}: {manifest} is a {exc.kind}; kubelet runs no kube-apiserver pod",
            SOURCE_KUBELET,
            file=manifest,
            log_line=klog_line(message, kv, where=where, pid=700, now=now),
        ) from None
    except OSError as exc:
        err = path_error("open", manifest, (exc.strerror or str(exc)).lower())
        raise _kubelet_manifest_error(err, manifest, None, now) from None
    if len(data) >= MAX_MANIFEST_BYTES:
        raise _kubelet_manifest_error(
            "the read limit is reached", manifest, None, now,
            shown=f"the read limit is reached (kubelet reads at most {MAX_MANIFEST_BYTES} "
            f"bytes of {manifest})",
        )
    try:
        doc, lines = load_document(data.decode("utf-8", errors="replace"))
    except GoYAMLError as exc:
        err = f"{manifest}: couldn't parse as pod({exc.message}), please check config file"
        raise _kubelet_manifest_error(err, manifest, exc.line, now) from None
    problem, line = decode_pod(doc, lines)
    if problem is not None:
        err = f"{manifest}: couldn't parse as pod({problem}), please check config file"
        raise _kubelet_manifest_error(err, manifest, line, now)
    return doc, lines


def _written_flags(container: dict[str, Any], lines: Lines, index: int) -> dict[str, str]:
    """The flags as the manifest gives them, errors and all."""
    argv = command_line(container, lines, ("spec", "containers", index))
    # Without command: the args follow the image's entrypoint, so all are arguments.
    return parse_flags(argv[1:] if container.get("command") else argv, strict=False).values


def _kubelet_manifest_error(
    err: str, manifest: str, line: int | None, now: datetime | None, *, shown: str | None = None
) -> _Stop:
    """kubelet's "Could not process manifest file" ``err``; ``shown`` rewords it for learners."""
    return _Stop(
        shown or err,
        SOURCE_KUBELET,
        file=manifest,
        line=line,
        log_line=klog_line(
            "Could not process manifest file",
            [("err", err), ("path", manifest)],
            where="file.go:187",
            pid=700,
            now=now,
        ),
    )


def _parse_command_line(argv: list[tuple[str, int | None]], manifest: str) -> ParsedFlags:
    """pflag's parse and cobra's checks; a flag the binary refuses stops it."""
    try:
        parsed = parse_flags(argv[1:])
    except FlagError as exc:
        raise _Stop(
            exc.message, SOURCE_APISERVER, line=exc.line, log_line=f"Error: {exc.message}"
        ) from None
    if parsed.help:
        raise _Stop(
            "kube-apiserver printed its usage (--help) and exited; the container keeps restarting",
            SOURCE_APISERVER,
            file=manifest,
            line=parsed.lines.get("help"),
            log_line="Usage:\n  kube-apiserver [flags]",
        )
    if parsed.version:
        raise _Stop(
            f"kube-apiserver printed its version (Kubernetes {KUBERNETES_VERSION}) and exited; "
            "the container keeps restarting",
            SOURCE_APISERVER,
            file=manifest,
            line=parsed.lines.get("version"),
            log_line=f"Kubernetes {KUBERNETES_VERSION}",
        )
    extra = [a for a in parsed.positional if a]
    if extra:
        quoted = "[" + " ".join(go_quote(a) for a in parsed.positional) + "]"
        msg = f'"kube-apiserver" does not take any arguments, got {quoted}'
        line = next((ln for a, ln in argv[1:] if a == extra[0]), None)
        raise _Stop(msg, SOURCE_APISERVER, file=manifest, line=line, log_line=f"Error: {msg}")
    return parsed


def _start(
    node: NodeView,
    parsed: ParsedFlags,
    state: ApiserverState,
    manifest: str,
    now: datetime | None,
) -> None:
    """Options validation and the audit backend, filling ``state`` as far as it gets."""
    flags = parsed.values
    cfs = ContainerFS(state.mounts, node)
    try:
        log_cfg = audit_log_config(flags)
        validate_options(flags, log_cfg)
        check_flag_files(flags, cfs)
        policy_file = flags.get("audit-policy-file") or None
        state.policy_file = normalize_node_path(policy_file) if policy_file else None
        state.log = log_cfg
        if policy_file:
            host = policy_source(policy_file, cfs, state.notes)
            state.policy_host_path = node.real(host)
            state.policy = load_audit_policy(node, host, policy_file)
        if log_cfg is not None and not log_cfg.to_stdout:
            ensure_log_file(log_cfg, cfs, node, state.notes)
    except StartupError as exc:
        if exc.file is not None:
            file, line = exc.file, exc.line
        else:
            file, line = manifest, parsed.lines.get(exc.flag) if exc.flag else None
        raise _Stop(
            exc.message,
            SOURCE_APISERVER,
            file=file,
            line=line,
            log_line=klog_line(
                "command failed", [("err", exc.message)], where="run.go:74", now=now
            ),
        ) from None

    # The webhook backend is noted, its delivery not simulated.
    webhook = flags.get("audit-webhook-config-file")
    if webhook:
        state.webhook_config = normalize_node_path(webhook)
        state.notes.append("an audit webhook is configured; webhook delivery is not simulated")
    state.notes.extend(audit_notes(state.log, state.policy, state.webhook_config))
