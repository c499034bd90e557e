"""kube-apiserver's start-up once its flags parse, as far as auditing goes.

Options Validate() (all errors aggregated), the key and certificate files
kubeadm's flags name, then Audit.ApplyTo: the policy first, then the log
backend's ensureLogFile (apiserver pkg/server/options/audit.go). A failure is a
:class:`StartupError`, which kube-apiserver logs as ``"command failed" err=...``.
"""

from __future__ import annotations

import difflib
import posixpath
import stat
from dataclasses import dataclass
from pathlib import Path

from lab.engines.audit.gotext import (
    EISDIR,
    ENOENT,
    ENOTDIR,
    ENXIO,
    EROFS,
    go_aggregate,
    go_parse_bool,
    go_parse_int,
    go_quote,
    os_error_text,
    path_error,
)
from lab.engines.audit.hostpath import ContainerFS, Mount, NodeView
from lab.engines.audit.logfile import LOG_FORMATS
from lab.engines.audit.policy import (
    MAX_POLICY_BYTES,
    Policy,
    PolicyError,
    apiserver_policy_error,
    load_policy_head,
    refused_non_regular,
)
from lab.nodefs import NotRegularFile, normalize_node_path

# Files kubeadm's flags point at: if none of the container's mounts cover one,
# the apiserver cannot read it. Checked in this order.
_CERT_FILE_FLAGS = (
    "service-account-key-file",
    "service-account-signing-key-file",
    "tls-cert-file",
    "tls-private-key-file",
    "client-ca-file",
    "requestheader-client-ca-file",
    "proxy-client-cert-file",
    "proxy-client-key-file",
    "kubelet-client-certificate",
    "kubelet-client-key",
    "etcd-cafile",
    "etcd-certfile",
    "etcd-keyfile",
)

_ALLOWED_MODES = ("batch", "blocking", "blocking-strict")


class StartupError(Exception):
    """Why kube-apiserver exited: located at ``flag``'s line, or at ``file``:``line``."""

    def __init__(
        self,
        message: str,
        *,
        flag: str | None = None,
        file: str | None = None,
        line: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.flag = flag
        self.file = file
        self.line = line


@dataclass
class AuditLogConfig:
    """Where the log backend writes, and its options (defaults per upstream)."""

    path: str  # container path, or "-" for stdout
    host_path: Path | None  # where it lands in the node tree; None for stdout / unmounted
    mount: Mount | None
    maxage: int | None
    maxbackup: int | None
    maxsize: int | None
    format: str = "json"
    mode: str = "blocking"
    compress: bool = False
    node_path: str | None = None  # host_path as a node path ("/var/log/...")
    raw_path: str = ""  # the flag value as written; Go's error messages quote it unchanged

    @property
    def to_stdout(self) -> bool:
        return self.path == "-"


def audit_log_config(flags: dict[str, str]) -> AuditLogConfig | None:
    """The log backend's options; None when --audit-log-path leaves it disabled."""
    path = flags.get("audit-log-path", "")
    if not path:
        return None

    def opt_int(name: str) -> int | None:
        return go_parse_int(flags[name]) if name in flags else None

    return AuditLogConfig(
        path=path if path == "-" else normalize_node_path(path),
        raw_path=path,
        host_path=None,
        mount=None,
        maxage=opt_int("audit-log-maxage"),
        maxbackup=opt_int("audit-log-maxbackup"),
        maxsize=opt_int("audit-log-maxsize"),
        format=flags.get("audit-log-format", "json"),
        mode=flags.get("audit-log-mode", "blocking"),
        compress=go_parse_bool(flags.get("audit-log-compress", "false")),
    )


def validate_options(flags: dict[str, str], log_cfg: AuditLogConfig | None) -> None:
    """Options Validate(); raises one StartupError aggregating every error."""
    errs: list[tuple[str, str]] = []
    if not flags.get("etcd-servers"):
        errs.append(("--etcd-servers must be specified", "etcd-servers"))
    if log_cfg is not None:
        errs.extend(_validate_backend("log", flags))
        for name, value in (
            ("audit-log-maxage", log_cfg.maxage),
            ("audit-log-maxbackup", log_cfg.maxbackup),
            ("audit-log-maxsize", log_cfg.maxsize),
        ):
            if value is not None and value < 0:
                errs.append((f"--{name} {value} can't be a negative number", name))
    if flags.get("audit-webhook-config-file"):
        errs.extend(_validate_backend("webhook", flags))
    if errs:
        raise StartupError(go_aggregate([m for m, _ in errs]), flag=errs[0][1])


def _validate_backend(plugin: str, flags: dict[str, str]) -> list[tuple[str, str]]:
    """AuditLogOptions/AuditWebhookOptions.Validate for mode, batch, truncate, version, format."""
    errs: list[tuple[str, str]] = []
    mode_flag = f"audit-{plugin}-mode"
    mode = flags.get(mode_flag, "blocking" if plugin == "log" else "batch")
    if mode not in _ALLOWED_MODES:
        allowed = go_quote(",".join(_ALLOWED_MODES))
        errs.append((f"invalid audit {plugin} mode {mode}, allowed modes are {allowed}", mode_flag))
    elif mode == "batch":
        buf_flag = f"audit-{plugin}-batch-buffer-size"
        max_flag = f"audit-{plugin}-batch-max-size"
        buf = _int_flag(flags, buf_flag, 10000)
        mx = _int_flag(flags, max_flag, 1 if plugin == "log" else 400)
        if buf <= 0:
            errs.append(
                (
                    f"invalid audit batch {plugin} buffer size {buf}, must be a positive number",
                    buf_flag,
                )
            )
        elif mx <= 0:
            errs.append(
                (
                    f"invalid audit batch {plugin} max batch size {mx}, must be a positive number",
                    max_flag,
                )
            )
    event_flag = f"audit-{plugin}-truncate-max-event-size"
    batch_flag = f"audit-{plugin}-truncate-max-batch-size"
    max_event = _int_flag(flags, event_flag, 100 * 1024)
    max_batch = _int_flag(flags, batch_flag, 10 * 1024 * 1024)
    if max_event <= 0:
        errs.append(
            (
                f"invalid audit truncate {plugin} max event size {max_event}, "
                "must be a positive number",
                event_flag,
            )
        )
    elif max_batch < max_event:
        errs.append(
            (
                f"invalid audit truncate {plugin} max batch size {max_batch}, must be greater than "
                f"max event size ({max_event})",
                batch_flag,
            )
        )
    version_flag = f"audit-{plugin}-version"
    gv = flags.get(version_flag, "audit.k8s.io/v1")
    if gv.count("/") > 1:
        errs.append((f"unexpected GroupVersion string: {gv}", version_flag))
    elif gv != "audit.k8s.io/v1":
        errs.append(
            ('invalid group version, allowed versions are ["audit.k8s.io/v1"]', version_flag)
        )
    fmt = flags.get("audit-log-format", "json")
    if plugin == "log" and fmt not in LOG_FORMATS:
        allowed = go_quote(",".join(LOG_FORMATS))
        errs.append(
            (f"invalid audit log format {fmt}, allowed formats are {allowed}", "audit-log-format")
        )
    return errs


def _int_flag(flags: dict[str, str], name: str, default: int) -> int:
    # The flag parser has already checked the value.
    return go_parse_int(flags[name]) if name in flags else default


def check_flag_files(flags: dict[str, str], cfs: ContainerFS) -> None:
    """The first key or certificate file no volume mount brings into the container."""
    for name in _CERT_FILE_FLAGS:
        for path in [p for p in flags.get(name, "").split(",") if p]:
            cpath = normalize_node_path(path)
            mount, _ = cfs.locate(cpath)
            if mount is None:
                raise StartupError(path_error("open", cpath, ENOENT), flag=name)


def policy_source(policy_file: str, cfs: ContainerFS, notes: list[str]) -> str:
    """The node path behind --audit-policy-file; raises if the container cannot read it."""
    cp = normalize_node_path(policy_file)
    mount, host = cfs.locate(cp)
    kind = cfs.kind(cp)
    read_err = None
    if kind == "missing":
        read_err = path_error("open", policy_file, ENOENT)
    elif kind == "notdir":
        read_err = path_error("open", policy_file, ENOTDIR)
    elif kind == "dir":
        read_err = path_error("read", policy_file, EISDIR)
    if read_err is not None:
        if mount is None:
            notes.append(_unmounted_policy_note(cp, cfs.node))
        raise StartupError(
            "loading audit policy file: failed to read file path "
            f"{go_quote(policy_file)}: {read_err}",
            flag="audit-policy-file",
        )
    assert host is not None  # readable, so on a hostPath
    return host


def _unmounted_policy_note(cp: str, node: NodeView) -> str:
    """Why a policy file outside every volumeMount is missing, judged from the node too."""
    where = f"--audit-policy-file {cp} is not under any volumeMount"
    on_node = node.kind(cp)
    if on_node == "file":
        return (f"{where}: the file only exists on the node, not inside the apiserver "
                "container")
    if on_node == "dir":
        return (f"{where}, and on the node {cp} is a directory, not a file: it exists "
                "neither inside the apiserver container nor as a file on the node")
    if on_node == "other":
        return f"{where}: {cp} is not a regular file on the node either"
    note = (f"{where}, and the node has no {cp} either: the file exists neither on the node "
            "nor inside the apiserver container (check the path for a typo)")
    parent, name = posixpath.split(cp)
    near = difflib.get_close_matches(name, node.list_dir(parent) or [], n=1, cutoff=0.75)
    if near:
        note += f"; the node has {posixpath.join(parent, near[0])}"
    return note


def load_audit_policy(node: NodeView, host: str, policy_file: str) -> Policy:
    """Load the policy at node path ``host``; an invalid one stops the apiserver.

    Only a regular file is read, and only as much as the lab's policy limit: on
    a FIFO or a device the real os.ReadFile would hang or never end.
    """
    prefix = f"loading audit policy file: failed to read file path {go_quote(policy_file)}"
    try:
        data = node.read_bytes(host, MAX_POLICY_BYTES)
    except NotRegularFile as exc:
        if stat.S_ISSOCK(exc.st_mode):  # open(2) on a socket fails with ENXIO
            raise StartupError(
                f"{prefix}: {path_error('open', policy_file, ENXIO)}", file=host
            ) from None
        raise StartupError(
            f"{prefix}: {refused_non_regular(policy_file, exc.kind)}", file=host
        ) from None
    except OSError as exc:
        error = path_error("open", policy_file, os_error_text(exc))
        raise StartupError(f"{prefix}: {error}", file=host) from None
    try:
        return load_policy_head(data, policy_file)
    except PolicyError as exc:
        raise StartupError(apiserver_policy_error(exc), file=host, line=exc.line) from None


def ensure_log_file(
    log_cfg: AuditLogConfig, cfs: ContainerFS, node: NodeView, notes: list[str]
) -> None:
    """ensureLogFile: make the log's directory and file; fills in where it lands on the node."""
    lp = normalize_node_path(log_cfg.path)
    mount, host = cfs.locate(lp)
    log_cfg.mount = mount
    err = cfs.mkdir_all(posixpath.dirname(lp), "kube-apiserver creates the audit log directory")
    if err is None:
        k = cfs.kind(lp)
        if k == "dir":
            err = path_error("open", log_cfg.raw_path, EISDIR)
        elif k == "notdir":
            err = path_error("open", log_cfg.raw_path, ENOTDIR)
        elif cfs.read_only(lp):
            err = path_error("open", log_cfg.raw_path, EROFS)
        elif k == "missing":
            cfs.create(lp, "file", "kube-apiserver creates the audit log file")
    if err is not None:
        raise StartupError(f"ensureLogFile: {err}", flag="audit-log-path")
    if host is not None:
        log_cfg.node_path = host
        log_cfg.host_path = node.real(host)
    else:
        what = "an emptyDir volume" if mount is not None else "the container's own filesystem"
        notes.append(
            f"audit log {lp} is on {what}, not on a hostPath volume: events are written "
            "inside the container only and are lost when it restarts; "
            "nothing appears on the node"
        )


def audit_notes(
    log_cfg: AuditLogConfig | None, policy: Policy | None, webhook_config: str | None
) -> list[str]:
    """What an audit setup that starts amounts to, where that is not what it looks like."""
    notes = []
    if log_cfg is not None and policy is None:
        notes.append(
            "--audit-log-path is set but --audit-policy-file is not: with no policy the apiserver "
            "records no events (the log file stays empty)"
        )
    if log_cfg is None and policy is not None and not webhook_config:
        notes.append(
            "--audit-policy-file is set but --audit-log-path is not: the policy loads, "
            "but there is no backend, so nothing is logged"
        )
    if log_cfg is not None and log_cfg.to_stdout:
        notes.append("--audit-log-path=- writes events to the apiserver's stdout (crictl logs)")
    return notes
