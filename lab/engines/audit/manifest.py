"""Decide what kubelet and kube-apiserver make of the kube-apiserver static pod.

Given a sim node tree and its ``kube-apiserver.yaml`` manifest, replay the
steps a kind control-plane node goes through when the file changes:

0. kubelet reads every file of the manifests directory, and the pod it runs
   may come from another file than ``kube-apiserver.yaml`` (a backup copy
   sorted after it: :func:`running_manifest`);
1. kubelet's file source decodes and validates the manifest (:mod:`podspec`);
2. kubelet sets up every hostPath volume (:mod:`hostpath`), creating
   DirectoryOrCreate/FileOrCreate paths; containerd creates a missing untyped
   hostPath as a directory;
3. the runtime starts ``command + args``;
4. kube-apiserver parses flags with pflag (:mod:`flags`; cobra prints
   ``Error: ...``), validates options and, at start, builds the audit backend
   (:mod:`startup`) and exits with ``"command failed" err="..."`` on failure.

The result says whether the apiserver runs, the error a learner would see and
where it points, the flags and mounts as written, where audit events go, and which paths
the node gained. Nothing is written to the tree; :func:`apply_host_changes`
does that.
"""

from __future__ import annotations

import difflib
import os
import posixpath
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from lab.engines.audit.flags import FlagError, ParsedFlags, parse_flags
from lab.engines.audit.gotext import (
    ENOENT,
    go_file_mode,
    go_quote,
    klog_line,
    os_error_text,
    path_error,
)
from lab.engines.audit.goyaml import GoYAMLError, Lines, load_document
from lab.engines.audit.hostpath import ContainerFS, HostChange, Mount, NodeView, setup_pod_volumes
from lab.engines.audit.podspec import (
    command_line,
    container_mounts,
    decode_pod,
    find_container,
    pod_key,
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
    "running_manifest",
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
    # The container's flags as written (last occurrence wins) and its volumeMounts
    # joined to the volumes by name (host_path None where none is named), also when
    # the pod never starts; empty only when kubelet cannot read a kube-apiserver container.
    flags: dict[str, str] = field(default_factory=dict)
    mounts: list[Mount] = field(default_factory=list)
    policy: Policy | None = None
    policy_file: str | None = None  # container path from --audit-policy-file
    policy_host_path: Path | None = None
    log: AuditLogConfig | None = None
    webhook_config: str | None = None
    notes: list[str] = field(default_factory=list)
    host_changes: list[HostChange] = field(default_factory=list)
    manifest_file: str = DEFAULT_MANIFEST  # the file whose pod kubelet runs (see notes)

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
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.source = source
        self.file = file
        self.line = line
        self.log_line = log_line
        self.reason = reason or message  # why kubelet skips the file, said on its own


def analyse_apiserver(
    node_root: Path,
    manifest_path: str = DEFAULT_MANIFEST,
    *,
    now: datetime | None = None,
) -> ApiserverState:
    """What happens to kube-apiserver on this node with its current static pod manifests.

    ``manifest_path`` is the canonical file; its directory is kubelet's
    staticPodPath, and every file in it counts (:func:`running_manifest`). The
    file analysed, ``state.manifest_file``, is the one whose pod kubelet runs.
    """
    node = NodeView(Path(node_root))
    manifest_path, notes, decoded = _scan(node, manifest_path, now)
    state = ApiserverState(running=False, manifest_file=manifest_path, notes=notes)
    try:
        _analyse(node, manifest_path, state, now, decoded.get(manifest_path))
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


# ----------------------------------------------------------- the static pod directory


def running_manifest(
    node: NodeView | Path, manifest: str = DEFAULT_MANIFEST, *, now: datetime | None = None
) -> tuple[str, list[str]]:
    """The file kubelet runs the kube-apiserver pod from, and notes when it is not ``manifest``.

    kubelet's file source (pkg/kubelet/config/file.go, listConfig) reads the whole
    staticPodPath: extractFromDir globs ``[^.]*`` (dot-files are skipped), sorts
    the paths, stats each (following symlinks), skips directories and anything
    not a regular file, and decodes every regular file as a pod; a file it
    cannot read, decode or validate is logged and skipped, the others still run.
    The pods go to an UndeltaStore keyed by namespace/name (``replaceStore``:
    cache.Replace fills a map in list order), so of two files defining the same
    pod the one last by name wins: ``kube-apiserver.yaml.bak`` beats
    ``kube-apiserver.yaml``. (An inotify event for the edited file adds its pod
    at once, but the next periodic re-list, every fileCheckFrequency, puts the
    winner back.)

    The kube-apiserver pod is the one ``manifest`` defines (kubeadm's
    kube-system/kube-apiserver if it has no readable name). Without a directory
    listing, or when no file kubelet accepts defines that pod, ``manifest`` is
    analysed as it is, so its own error is reported.
    """
    view = node if isinstance(node, NodeView) else NodeView(Path(node))
    path, notes, _ = _scan(view, manifest, now)
    return path, notes


_Decoded = tuple[Any, Lines]


def _scan(
    node: NodeView, manifest: str, now: datetime | None
) -> tuple[str, list[str], dict[str, _Decoded]]:
    """:func:`running_manifest`, plus the files it decoded (not to parse them twice)."""
    decoded: dict[str, _Decoded] = {}
    directory, _ = posixpath.split(manifest)
    names = node.list_dir(directory)
    if names is None:
        return manifest, [], decoded
    target: tuple[str, str] | None = None
    canonical_refused: str | None = None
    canonical_seen = False
    accepted: dict[tuple[str, str], str] = {}  # key -> file, later files overwrite
    apiservers: dict[tuple[str, str], str] = {}  # pods with a kube-apiserver container
    for name in sorted((n for n in names if not n.startswith(".")), key=os.fsencode):
        path = posixpath.join(directory, name)
        is_canonical = path == manifest
        canonical_seen = canonical_seen or is_canonical
        try:
            doc, lines = decoded[path] = _read_pod(node, path, now)
            key = pod_key(doc)
            if is_canonical:
                target = key
            if key is None:
                raise _Stop(_NO_NAME, SOURCE_KUBELET)
            spec = doc.get("spec") or {}
            errs, _ = validate_pod(spec, lines)
            if errs:
                raise _Stop(_invalid_pod(errs), SOURCE_KUBELET)
        except _Stop as stop:
            if is_canonical:
                canonical_refused = stop.reason
            continue
        accepted[key] = path
        if find_container(spec, CONTAINER_NAME) is not None:
            apiservers[key] = path
        else:
            apiservers.pop(key, None)
    target = target or KUBEADM_POD
    winner = accepted.get(target)
    others = {key: path for key, path in apiservers.items() if key != target}
    if winner is None:
        if not others:
            return manifest, [], decoded
        # That pod does not run, but another one has a kube-apiserver container.
        target, winner = max(others.items(), key=lambda kv: os.fsencode(kv[1]))
        del others[target]
    notes = [
        f"{path} defines another static pod ({'/'.join(key)}) with a kube-apiserver "
        f"container: kubelet runs it too, next to the one from {winner}"
        for key, path in others.items()
    ]
    if winner == manifest:
        return manifest, notes, decoded
    runs = f"kubelet runs the kube-apiserver pod from {winner}"
    every = f"every file in {directory} is a static pod manifest"
    if canonical_refused is not None:
        why = f"it skips {manifest} ({canonical_refused}), and {every}"
    elif canonical_seen:  # accepted, so target is its pod, and a later file redefines it
        why = (f"{every}, and of two files that define the same pod "
               f"({'/'.join(target)}) the last one by name wins")
    else:
        why = f"there is no {manifest}, but {every}"
    notes.insert(0, f"{runs}: {why}; move backups out of {directory}")
    return winner, notes, decoded


KUBEADM_POD = ("kube-system", "kube-apiserver")
_NO_NAME = "invalid pod: name is needed for the pod"


def _invalid_pod(errs: list[str]) -> str:
    return f"invalid pod: [{' '.join(errs)}]"


# ------------------------------------------------------------------------ one manifest


def _analyse(
    node: NodeView,
    manifest: str,
    state: ApiserverState,
    now: datetime | None,
    decoded: _Decoded | None = None,
) -> None:
    # ---- 1. kubelet reads, decodes and validates the static pod file
    doc, lines = decoded or _read_pod(node, manifest, now)
    spec = doc.get("spec") or {}
    index = find_container(spec, CONTAINER_NAME)
    if index is not None:
        # Graders report the flags and mounts a learner wrote even when the pod never starts.
        cpath = ("spec", "containers", index)
        container = spec["containers"][index]
        argv = command_line(container, lines, cpath)
        state.flags = _written_flags(container, argv)
        state.mounts = container_mounts(spec, container, lines, cpath)
    if pod_key(doc) is None:
        raise _kubelet_manifest_error(_NO_NAME, manifest, lines.of("metadata"), now)
    errs, line = validate_pod(spec, lines)
    if errs:
        state.notes.extend(_unjoined_mount_notes(spec, state.mounts))
        raise _kubelet_manifest_error(_invalid_pod(errs), manifest, line, now)
    if index is None:
        raise _Stop(
            f'static pod in {manifest} has no container named "{CONTAINER_NAME}"',
            SOURCE_KUBELET,
            file=manifest,
            line=lines.of("spec", "containers"),
        )
    # From here on the container exists: cpath, container and argv are set above.

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


def _unjoined_mount_notes(spec: dict[str, Any], mounts: list[Mount]) -> list[str]:
    """For each volumeMount naming no volume, the volume it probably meant."""
    names = [v["name"] for v in spec.get("volumes") or [] if isinstance(v.get("name"), str)]
    notes = []
    for m in mounts:
        if m.volume_kind is not None or not m.name:
            continue
        note = f"volumeMount {go_quote(m.name)} ({m.mount_path}) names no volume of the pod"
        close = difflib.get_close_matches(m.name, names, n=1, cutoff=0.6)
        if close:
            note += (f"; the pod has a volume {go_quote(close[0])}: a volumeMount's name "
                     "must be the volume's name exactly")
        notes.append(note)
    return notes


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
            reason="it does not exist: a dangling symlink",  # listed, so os.Stat failed
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
            reason=f"it is a {exc.kind}",
        ) from None
    except OSError as exc:
        err = path_error("open", manifest, os_error_text(exc))
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


def _written_flags(
    container: dict[str, Any], argv: list[tuple[str, int | None]]
) -> dict[str, str]:
    """The flags as the manifest gives them (``argv``: command + args), errors and all."""
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
