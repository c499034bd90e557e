"""Decide what kubelet and kube-apiserver make of the kube-apiserver static pod.

Given a sim node tree and its ``kube-apiserver.yaml`` manifest, replay the
steps a kind control-plane node goes through when the file changes:

1. kubelet's file source decodes and validates the manifest
   (pkg/kubelet/config/file.go, common.go; ValidatePodCreate);
2. kubelet sets up every hostPath volume (pkg/volume/hostpath checkType),
   creating DirectoryOrCreate/FileOrCreate paths; containerd creates a missing
   untyped hostPath as a directory;
3. the runtime starts ``command + args``;
4. kube-apiserver parses flags with pflag (cobra prints ``Error: ...``),
   validates options and, at start, builds the audit backend
   (pkg/server/options/audit.go: policy first, then ``ensureLogFile``) and
   exits with ``"command failed" err="..."`` on failure.

The result says whether the apiserver runs, the error a learner would see and
where it points, where audit events go, and which paths the node gained.
Nothing is written to the tree; :func:`apply_host_changes` does that.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from lab.engines.audit.events import go_quote
from lab.engines.audit.nodefs import NodePathError, normalize_node_path, resolve_in_node
from lab.errors import LabError

if TYPE_CHECKING:  # the policy loader is written alongside this module
    from lab.engines.audit.policy import Policy

DEFAULT_MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
CONTAINER_NAME = "kube-apiserver"
KUBERNETES_VERSION = "v1.36.0"
MAX_MANIFEST_BYTES = 10 * 1024 * 1024  # kubelet's maxConfigLength

# What the learner sees, by who reported the failure.
SOURCE_KUBELET = "kubelet"
SOURCE_RUNTIME = "runtime"
SOURCE_APISERVER = "kube-apiserver"

HOST_PATH_TYPES = (
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
)

# --------------------------------------------------------------------------- kube-apiserver flags
# Flag name -> pflag value type, for kube-apiserver 1.36. Only the value types
# that can fail to parse matter: b(ool), i(nt), f(loat), d(uration); s is any
# string-like type (string, strings, ip, mapStringString, ...). Every flag
# kubeadm and kind set is here, every --audit-* flag, and the rest of the
# documented set; anything else is "unknown flag" as for the real binary.
APISERVER_FLAGS: dict[str, str] = {
    # generic / server run options
    "advertise-address": "s",
    "cors-allowed-origins": "s",
    "debug-socket-path": "s",
    "emulated-version": "s",
    "emulation-forward-compatible": "b",
    "runtime-config-emulation-forward-compatible": "b",
    "external-hostname": "s",
    "feature-gates": "s",
    "goaway-chance": "f",
    "livez-grace-period": "d",
    "max-mutating-requests-inflight": "i",
    "max-requests-inflight": "i",
    "min-request-timeout": "i",
    "request-timeout": "d",
    "shutdown-delay-duration": "d",
    "shutdown-send-retry-after": "b",
    "shutdown-watch-termination-grace-period": "d",
    "storage-initialization-timeout": "d",
    "strict-transport-security-directives": "s",
    "enable-priority-and-fairness": "b",
    "coordinated-leadership-lease-duration": "d",
    "coordinated-leadership-renew-deadline": "d",
    "coordinated-leadership-retry-period": "d",
    # etcd
    "delete-collection-workers": "i",
    "enable-garbage-collector": "b",
    "encryption-provider-config": "s",
    "encryption-provider-config-automatic-reload": "b",
    "etcd-cafile": "s",
    "etcd-certfile": "s",
    "etcd-compaction-interval": "d",
    "etcd-count-metric-poll-period": "d",
    "etcd-db-metric-poll-interval": "d",
    "etcd-healthcheck-timeout": "d",
    "etcd-keyfile": "s",
    "etcd-prefix": "s",
    "etcd-readycheck-timeout": "d",
    "etcd-servers": "s",
    "etcd-servers-overrides": "s",
    "lease-reuse-duration-seconds": "i",
    "storage-backend": "s",
    "storage-media-type": "s",
    "watch-cache": "b",
    "watch-cache-sizes": "s",
    "default-watch-cache-size": "i",
    # secure serving
    "bind-address": "s",
    "cert-dir": "s",
    "disable-http2-serving": "b",
    "http2-max-streams-per-connection": "i",
    "permit-address-sharing": "b",
    "permit-port-sharing": "b",
    "secure-port": "i",
    "tls-cert-file": "s",
    "tls-cipher-suites": "s",
    "tls-min-version": "s",
    "tls-private-key-file": "s",
    "tls-sni-cert-key": "s",
    # auditing
    "audit-log-batch-buffer-size": "i",
    "audit-log-batch-max-size": "i",
    "audit-log-batch-max-wait": "d",
    "audit-log-batch-throttle-burst": "i",
    "audit-log-batch-throttle-enable": "b",
    "audit-log-batch-throttle-qps": "f",
    "audit-log-compress": "b",
    "audit-log-format": "s",
    "audit-log-maxage": "i",
    "audit-log-maxbackup": "i",
    "audit-log-maxsize": "i",
    "audit-log-mode": "s",
    "audit-log-path": "s",
    "audit-log-truncate-enabled": "b",
    "audit-log-truncate-max-batch-size": "i",
    "audit-log-truncate-max-event-size": "i",
    "audit-log-version": "s",
    "audit-policy-file": "s",
    "audit-webhook-batch-buffer-size": "i",
    "audit-webhook-batch-initial-backoff": "d",
    "audit-webhook-batch-max-size": "i",
    "audit-webhook-batch-max-wait": "d",
    "audit-webhook-batch-throttle-burst": "i",
    "audit-webhook-batch-throttle-enable": "b",
    "audit-webhook-batch-throttle-qps": "f",
    "audit-webhook-config-file": "s",
    "audit-webhook-initial-backoff": "d",
    "audit-webhook-mode": "s",
    "audit-webhook-truncate-enabled": "b",
    "audit-webhook-truncate-max-batch-size": "i",
    "audit-webhook-truncate-max-event-size": "i",
    "audit-webhook-version": "s",
    # features
    "contention-profiling": "b",
    "profiling": "b",
    # authentication
    "anonymous-auth": "b",
    "api-audiences": "s",
    "authentication-config": "s",
    "authentication-token-webhook-cache-ttl": "d",
    "authentication-token-webhook-config-file": "s",
    "authentication-token-webhook-version": "s",
    "client-ca-file": "s",
    "enable-bootstrap-token-auth": "b",
    "oidc-ca-file": "s",
    "oidc-client-id": "s",
    "oidc-groups-claim": "s",
    "oidc-groups-prefix": "s",
    "oidc-issuer-url": "s",
    "oidc-required-claim": "s",
    "oidc-signing-algs": "s",
    "oidc-username-claim": "s",
    "oidc-username-prefix": "s",
    "requestheader-allowed-names": "s",
    "requestheader-client-ca-file": "s",
    "requestheader-extra-headers-prefix": "s",
    "requestheader-group-headers": "s",
    "requestheader-uid-headers": "s",
    "requestheader-username-headers": "s",
    "service-account-extend-token-expiration": "b",
    "service-account-issuer": "s",
    "service-account-jwks-uri": "s",
    "service-account-key-file": "s",
    "service-account-lookup": "b",
    "service-account-max-token-expiration": "d",
    "service-account-signing-endpoint": "s",
    "token-auth-file": "s",
    # authorization
    "authorization-config": "s",
    "authorization-mode": "s",
    "authorization-policy-file": "s",
    "authorization-webhook-cache-authorized-ttl": "d",
    "authorization-webhook-cache-unauthorized-ttl": "d",
    "authorization-webhook-config-file": "s",
    "authorization-webhook-version": "s",
    # api enablement, egress, admission, metrics, logs, traces
    "runtime-config": "s",
    "egress-selector-config-file": "s",
    "admission-control": "s",
    "admission-control-config-file": "s",
    "disable-admission-plugins": "s",
    "enable-admission-plugins": "s",
    "allow-metric-labels": "s",
    "allow-metric-labels-manifest": "s",
    "disabled-metrics": "s",
    "show-hidden-metrics-for-version": "s",
    "log-flush-frequency": "d",
    "log-json-info-buffer-size": "s",
    "log-json-split-stream": "b",
    "log-text-info-buffer-size": "s",
    "log-text-split-stream": "b",
    "logging-format": "s",
    "v": "s",
    "vmodule": "s",
    "tracing-config-file": "s",
    # misc
    "aggregator-reject-forwarding-redirect": "b",
    "allow-privileged": "b",
    "apiserver-count": "i",
    "cloud-config": "s",
    "cloud-provider": "s",
    "enable-aggregator-routing": "b",
    "endpoint-reconciler-type": "s",
    "event-ttl": "d",
    "identity-lease-duration-seconds": "i",
    "identity-lease-renew-interval-seconds": "i",
    "kubelet-certificate-authority": "s",
    "kubelet-client-certificate": "s",
    "kubelet-client-key": "s",
    "kubelet-preferred-address-types": "s",
    "kubelet-timeout": "d",
    "max-connection-bytes-per-sec": "i",
    "peer-advertise-ip": "s",
    "peer-advertise-port": "s",
    "peer-ca-file": "s",
    "proxy-client-cert-file": "s",
    "proxy-client-key-file": "s",
    "service-account-signing-key-file": "s",
    "service-cluster-ip-range": "s",
    "service-node-port-range": "s",
    # global (cobra / verflag)
    "help": "b",
    "version": "v",
}
_SHORTHANDS = {"v": "v", "h": "help"}

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
_ALLOWED_FORMATS = ("legacy", "json")

# --------------------------------------------------------------------------- result types


@dataclass(frozen=True)
class Mount:
    """A volumeMount of the kube-apiserver container and the volume behind it."""

    name: str
    mount_path: str
    read_only: bool
    host_path: str | None  # node path of a hostPath volume, else None
    host_type: str | None  # hostPath.type ("" when unset); None for other volumes
    sub_path: str | None = None
    volume_kind: str | None = "hostPath"  # hostPath, emptyDir, ... or None if missing
    line: int | None = None  # manifest line of the volumeMount


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


@dataclass(frozen=True)
class HostChange:
    """A path kubelet, containerd or the apiserver creates on the node."""

    path: str  # node path
    kind: Literal["dir", "file"]
    by: str  # who creates it and why


@dataclass
class ApiserverState:
    running: bool
    error: str | None = None  # what crictl logs / the kubelet journal says
    error_source: str | None = None  # kubelet | runtime | kube-apiserver
    error_file: str | None = None  # node path the error points at
    error_line: int | None = None
    log_line: str | None = None  # the error as the log line a learner reads
    flags: dict[str, str] = field(default_factory=dict)
    flag_lines: dict[str, int] = field(default_factory=dict)
    mounts: list[Mount] = field(default_factory=list)
    policy: Policy | None = None
    policy_file: str | None = None  # container path from --audit-policy-file
    policy_host_path: Path | None = None
    log: AuditLogConfig | None = None
    webhook_config: str | None = None
    notes: list[str] = field(default_factory=list)
    host_changes: list[HostChange] = field(default_factory=list)
    manifest_file: str = DEFAULT_MANIFEST
    manifest_line: int | None = None  # line of the kube-apiserver container

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


# --------------------------------------------------------------------------- Go-isms


def klog_line(
    message: str,
    kv: list[tuple[str, str]],
    *,
    where: str,
    pid: int = 1,
    now: datetime | None = None,
) -> str:
    """An error line in klog's text format: ``E0102 15:04:05.000000 pid file:line] "msg" k="v"``"""
    ts = (now or datetime.now(UTC)).astimezone(UTC)
    head = f"E{ts:%m%d} {ts:%H:%M:%S}.{ts.microsecond:06d} {pid:>7} {where}] {go_quote(message)}"
    return head + "".join(f" {k}={go_quote(v)}" for k, v in kv)


def _go_parse_int(s: str) -> int:
    """strconv.ParseInt(s, 0, 64); raises ValueError("invalid syntax" | "value out of range")."""
    body = s[1:] if s[:1] in ("+", "-") else s
    neg = s[:1] == "-"
    low = body.lower()
    prefixed = True
    if low.startswith(("0x", "0b", "0o")):
        base, digits = {"x": 16, "b": 2, "o": 8}[low[1]], body[2:]
    elif len(body) > 1 and body[0] == "0":
        base, digits = 8, body[1:]
    else:
        base, digits, prefixed = 10, body, False
    # Base 0 takes Go literal syntax: "_" only between digits or right after a prefix.
    if digits.endswith("_") or "__" in digits or (digits.startswith("_") and not prefixed):
        raise ValueError("invalid syntax")
    clean = digits.replace("_", "")
    if not clean or any(c not in "0123456789abcdef"[:base] for c in clean.lower()):
        raise ValueError("invalid syntax")
    value = -int(clean, base) if neg else int(clean, base)
    if not -(2**63) <= value <= 2**63 - 1:
        raise ValueError("value out of range")
    return value


def _go_parse_bool(s: str) -> bool:
    if s in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if s in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError("invalid syntax")


_FLOAT_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|infinity|nan)$", re.I)


def _go_parse_float(s: str) -> float:
    if not _FLOAT_RE.match(s):
        raise ValueError("invalid syntax")
    return float(s)


_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}


def _go_parse_duration(s: str) -> int:
    """time.ParseDuration; raises ValueError with Go's message."""
    orig = s
    quoted = go_quote(orig)
    if s[:1] in "+-":
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f"time: invalid duration {quoted}")
    total = 0.0
    while s:
        m = re.match(r"(\d*)(\.\d*)?", s)
        if not m or (not m.group(1) and (not m.group(2) or m.group(2) == ".")):
            raise ValueError(f"time: invalid duration {quoted}")
        number = float((m.group(1) or "0") + (m.group(2) or ""))
        s = s[m.end() :]
        u = re.match(r"[^\d.]+", s)
        if not u:
            raise ValueError(f"time: missing unit in duration {quoted}")
        unit = u.group(0)
        if unit not in _DURATION_UNITS:
            raise ValueError(f"time: unknown unit {go_quote(unit)} in duration {quoted}")
        total += number * _DURATION_UNITS[unit]
        s = s[u.end() :]
    return int(total)


def _go_errno(op: str, path: str, errno_text: str) -> str:
    """An *os.PathError message: ``open /x: no such file or directory``."""
    return f"{op} {path}: {errno_text}"


ENOENT = "no such file or directory"
ENOTDIR = "not a directory"
EISDIR = "is a directory"
EROFS = "read-only file system"


# --------------------------------------------------------------------------- YAML with lines


class _ManifestYAMLError(Exception):
    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


_GO_YAML_PROBLEMS = (
    ("mapping values are not allowed here", "mapping values are not allowed in this context"),
    ("that cannot start any token", "found character that cannot start any token"),
    ("could not find expected ':'", "could not find expected ':'"),
    ("found unexpected end of stream", "found unexpected end of stream"),
    ("found unknown escape character", "found unknown escape character"),
    ("did not find expected", None),
    ("found undefined alias", "unknown anchor referenced"),
)


def _go_yaml_error(exc: yaml.YAMLError) -> _ManifestYAMLError:
    """Approximate go-yaml's wording ("yaml: line N: ...") for a PyYAML error."""
    problem = str(getattr(exc, "problem", "") or exc)
    context = str(getattr(exc, "context", "") or "")
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line0 = mark.line if mark is not None else None
    scanner = isinstance(exc, yaml.scanner.ScannerError)
    text = problem
    for needle, go_text in _GO_YAML_PROBLEMS:
        if needle in problem:
            text = go_text or problem
            break
    else:
        if problem.startswith("expected") and "block" in context:
            # The parser's "expected <block end>" is go-yaml's "did not find expected key"
            # in a mapping, or "... '-' indicator" in a sequence.
            text = (
                "did not find expected '-' indicator"
                if "collection" in context or "sequence" in context
                else "did not find expected key"
            )
    user_line = line0 + 1 if line0 is not None else None
    go_line = None
    if line0 is not None:
        # go-yaml reports scanner errors 1-based but parser errors at the 0-based line.
        go_line = line0 + 1 if scanner else line0
    prefix = f"yaml: line {go_line}: " if go_line else "yaml: "
    return _ManifestYAMLError(prefix + text, user_line)


class _Lines:
    """Line numbers (1-based) of nodes in a composed YAML document, by path."""

    def __init__(self) -> None:
        self.map: dict[tuple[Any, ...], int] = {}
        self.nodes = 0  # nodes visited, aliases counted each time they expand

    def of(self, *path: Any) -> int | None:
        p = tuple(path)
        while p:
            if p in self.map:
                return self.map[p]
            p = p[:-1]
        return self.map.get(())


def _construct(
    node: yaml.Node, loader: yaml.SafeLoader, lines: _Lines, path: tuple[Any, ...]
) -> Any:
    lines.map[path] = node.start_mark.line + 1
    lines.nodes += 1
    if lines.nodes > _MAX_NODES:
        # Nested aliases expand exponentially; go-yaml refuses them the same way.
        raise _ManifestYAMLError("yaml: document contains excessive aliasing", None)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for knode, vnode in node.value:
            key = loader.construct_object(knode, deep=True)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise _ManifestYAMLError(
                    f"yaml: line {knode.start_mark.line + 1}: invalid map key: {key!r}",
                    knode.start_mark.line + 1,
                )
            out[key] = _construct(vnode, loader, lines, (*path, key))
            lines.map[(*path, key)] = knode.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(v, loader, lines, (*path, i)) for i, v in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def _load_manifest(text: str) -> tuple[Any, _Lines]:
    lines = _Lines()
    # A billion-laughs manifest would blow up on construction; real ones use no aliases.
    if len(_ALIAS_RE.findall(text)) > 100:
        raise _ManifestYAMLError("yaml: document contains excessive aliasing", None)
    loader = yaml.SafeLoader(text)
    try:
        # go-yaml's Unmarshal decodes the first document and ignores the rest.
        node = loader.get_node() if loader.check_node() else None
        if node is None:
            return None, lines
        return _construct(node, loader, lines, ()), lines
    except yaml.YAMLError as exc:
        raise _go_yaml_error(exc) from None
    finally:
        loader.dispose()


_ALIAS_RE = re.compile(r"(?:^|[\s\[{,])\*[^\s,\]}]+")
_MAX_NODES = 200_000  # a kubeadm manifest has a few hundred


# --------------------------------------------------------------------------- node view


class _NodeView:
    """The node tree plus the paths this start-up would create (nothing is written)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.created: dict[str, Literal["dir", "file"]] = {}
        self.changes: list[HostChange] = []

    def real(self, node_path: str) -> Path:
        return resolve_in_node(self.root, node_path)

    def kind(self, node_path: str) -> str:
        """'dir', 'file', 'other', 'missing', or 'notdir' (an ancestor is not a directory)."""
        path = normalize_node_path(node_path)
        if path == "/":
            return "dir"
        comps = path.strip("/").split("/")
        cur = ""
        for i, comp in enumerate(comps):
            cur = f"{cur}/{comp}"
            k = self._kind_one(cur)
            last = i == len(comps) - 1
            if last:
                return k
            if k == "missing":
                return "missing"
            if k != "dir":
                return "notdir"
        return "dir"

    def _kind_one(self, path: str) -> str:
        if path in self.created:
            return self.created[path]
        try:
            real = self.real(path)
        except NodePathError:
            return "missing"
        try:
            st = os.stat(real)
        except (FileNotFoundError, NotADirectoryError):
            return "missing"
        if stat.S_ISDIR(st.st_mode):
            return "dir"
        if stat.S_ISREG(st.st_mode):
            return "file"
        return "other"

    def create(self, path: str, kind: Literal["dir", "file"], by: str) -> None:
        path = normalize_node_path(path)
        if self._kind_one(path) != "missing":
            return
        self.created[path] = kind
        self.changes.append(HostChange(path=path, kind=kind, by=by))

    def mkdir_all(self, path: str, by: str) -> str | None:
        """os.MkdirAll on the node; returns Go's error text or None."""
        path = normalize_node_path(path)
        cur = ""
        for comp in [c for c in path.split("/") if c]:
            cur = f"{cur}/{comp}"
            k = self._kind_one(cur)
            if k == "dir":
                continue
            if k == "missing":
                self.create(cur, "dir", by)
                continue
            return _go_errno("mkdir", cur, ENOTDIR)
        return None

    def read_bytes(self, path: str) -> bytes:
        if normalize_node_path(path) in self.created:
            return b""
        return self.real(path).read_bytes()


# --------------------------------------------------------------------------- container view


class _ContainerFS:
    """The apiserver container's view: image rootfs plus the volume mounts."""

    def __init__(self, mounts: list[Mount], node: _NodeView) -> None:
        self.node = node
        # Deeper mount paths shadow shallower ones.
        self.mounts = sorted(
            mounts, key=lambda m: len(normalize_node_path(m.mount_path)), reverse=True
        )
        self.in_container: dict[str, str] = {}  # paths created on the container's own rootfs

    def locate(self, path: str) -> tuple[Mount | None, str | None]:
        """The mount covering ``path`` and the node path behind it (None: not on a hostPath)."""
        path = normalize_node_path(path)
        for m in self.mounts:
            mp = normalize_node_path(m.mount_path)
            if path == mp or path.startswith(mp.rstrip("/") + "/"):
                if m.host_path is None:
                    return m, None
                rel = path[len(mp) :].lstrip("/")
                base = m.host_path
                if m.sub_path:
                    base = posixpath.join(base, m.sub_path)
                return m, normalize_node_path(posixpath.join(base, rel) if rel else base)
        return None, None

    def kind(self, path: str) -> str:
        path = normalize_node_path(path)
        if path == "/":
            return "dir"
        comps = path.strip("/").split("/")
        cur = ""
        for i, comp in enumerate(comps):
            cur = f"{cur}/{comp}"
            k = self._kind_one(cur)
            if i == len(comps) - 1:
                return k
            if k == "missing":
                return "missing"
            if k != "dir":
                return "notdir"
        return "dir"

    def _kind_one(self, path: str) -> str:
        mount, host = self.locate(path)
        if mount is not None:
            if mount.host_path is None:  # emptyDir and friends: an empty directory
                return (
                    "dir"
                    if path == normalize_node_path(mount.mount_path)
                    else self.in_container.get(path, "missing")
                )
            assert host is not None
            return self.node.kind(host)
        if path in self.in_container:
            return self.in_container[path]
        # Parents of mount points exist (the runtime creates them).
        for m in self.mounts:
            if normalize_node_path(m.mount_path).startswith(path.rstrip("/") + "/"):
                return "dir"
        return "missing"

    def read_only(self, path: str) -> bool:
        mount, _ = self.locate(path)
        return bool(mount and mount.read_only)

    def create(self, path: str, kind: Literal["dir", "file"], by: str) -> None:
        mount, host = self.locate(path)
        if host is not None:
            self.node.create(host, kind, by)
        else:
            self.in_container[normalize_node_path(path)] = kind

    def mkdir_all(self, path: str, by: str) -> str | None:
        cur = ""
        for comp in [c for c in normalize_node_path(path).split("/") if c]:
            cur = f"{cur}/{comp}"
            k = self._kind_one(cur)
            if k == "dir":
                continue
            if k == "missing":
                if self.read_only(cur):
                    return _go_errno("mkdir", cur, EROFS)
                self.create(cur, "dir", by)
                continue
            return _go_errno("mkdir", cur, ENOTDIR)
        return None


# --------------------------------------------------------------------------- decoding


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _type_error(value: Any, struct: str, path: str, gotype: str) -> str:
    return (
        f"json: cannot unmarshal {_json_type(value)} "
        f"into Go struct field {struct}.{path} of type {gotype}"
    )


def _json_default(value: Any) -> Any:
    return str(value)


def _decode_pod(doc: Any, lines: _Lines) -> tuple[str | None, int | None]:
    """Why kubelet's decoder refuses ``doc`` as a Pod (message, line), or (None, None)."""
    if doc is None:
        return "Object 'Kind' is missing in 'null'", 1
    if not isinstance(doc, dict):
        return (
            "couldn't get version/kind; json parse error: json: cannot unmarshal "
            f"{_json_type(doc)} "
            'into Go value of type struct { APIVersion string "json:\\"apiVersion,omitempty\\""; '
            'Kind string "json:\\"kind,omitempty\\"" }',
            1,
        )
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=_json_default)
    kind = doc.get("kind")
    version = doc.get("apiVersion")
    if not kind:
        return f"Object 'Kind' is missing in '{raw}'", lines.of()
    if not version:
        return f"Object 'apiVersion' is missing in '{raw}'", lines.of()
    if not isinstance(kind, str) or not isinstance(version, str):
        return (
            "couldn't get version/kind; json parse error: wrong type for kind or apiVersion",
            lines.of("kind"),
        )
    if version != "v1" or kind not in (
        "Pod",
        "Service",
        "ConfigMap",
        "Secret",
        "Namespace",
        "PodList",
    ):
        return (
            f'no kind "{kind}" is registered for version "{version}" in scheme '
            '"pkg/api/legacyscheme/scheme.go:30"',
            lines.of("kind"),
        )
    if kind != "Pod":
        return f"invalid pod: &core.{kind}{{...}}", lines.of("kind")
    spec = doc.get("spec")
    if spec is None:
        return None, None
    if not isinstance(spec, dict):
        return _type_error(spec, "Pod", "spec", "v1.PodSpec"), lines.of("spec")
    for key, gotype in (("containers", "[]v1.Container"), ("volumes", "[]v1.Volume")):
        val = spec.get(key)
        if val is not None and not isinstance(val, list):
            return _type_error(val, "PodSpec", f"spec.{key}", gotype), lines.of("spec", key)
    for ci, c in enumerate(spec.get("containers") or []):
        if not isinstance(c, dict):
            return _type_error(c, "PodSpec", "spec.containers", "v1.Container"), lines.of(
                "spec", "containers", ci
            )
        for key in ("command", "args"):
            val = c.get(key)
            if val is None:
                continue
            if not isinstance(val, list):
                return _type_error(
                    val, "Container", f"spec.containers.{key}", "[]string"
                ), lines.of("spec", "containers", ci, key)
            for ai, arg in enumerate(val):
                if arg is not None and not isinstance(arg, str):
                    return _type_error(
                        arg, "Container", f"spec.containers.{key}", "string"
                    ), lines.of("spec", "containers", ci, key, ai)
        if c.get("name") is not None and not isinstance(c.get("name"), str):
            return _type_error(c["name"], "Container", "spec.containers.name", "string"), lines.of(
                "spec", "containers", ci, "name"
            )
        vms = c.get("volumeMounts")
        if vms is not None and not isinstance(vms, list):
            return _type_error(
                vms, "Container", "spec.containers.volumeMounts", "[]v1.VolumeMount"
            ), lines.of("spec", "containers", ci, "volumeMounts")
        for mi, vm in enumerate(vms or []):
            where = ("spec", "containers", ci, "volumeMounts", mi)
            if not isinstance(vm, dict):
                return _type_error(
                    vm, "Container", "spec.containers.volumeMounts", "v1.VolumeMount"
                ), lines.of(*where)
            for key, want, gotype in (
                ("name", str, "string"),
                ("mountPath", str, "string"),
                ("subPath", str, "string"),
                ("readOnly", bool, "bool"),
            ):
                val = vm.get(key)
                if val is not None and not isinstance(val, want):
                    return _type_error(
                        val, "VolumeMount", f"spec.containers.volumeMounts.{key}", gotype
                    ), lines.of(*where, key)
    for vi, v in enumerate(spec.get("volumes") or []):
        vwhere = ("spec", "volumes", vi)
        if not isinstance(v, dict):
            return _type_error(v, "PodSpec", "spec.volumes", "v1.Volume"), lines.of(*vwhere)
        hp = v.get("hostPath")
        if hp is None:
            continue
        if not isinstance(hp, dict):
            return _type_error(
                hp, "Volume", "spec.volumes.hostPath", "v1.HostPathVolumeSource"
            ), lines.of(*vwhere, "hostPath")
        for key, gotype in (("path", "string"), ("type", "v1.HostPathType")):
            val = hp.get(key)
            if val is not None and not isinstance(val, str):
                return _type_error(
                    val, "HostPathVolumeSource", f"spec.volumes.hostPath.{key}", gotype
                ), lines.of(*vwhere, "hostPath", key)
    return None, None


_VOLUME_SOURCES = (
    "hostPath",
    "emptyDir",
    "configMap",
    "secret",
    "projected",
    "downwardAPI",
    "persistentVolumeClaim",
    "nfs",
    "csi",
    "ephemeral",
    "image",
)


def _validate_pod(spec: dict[str, Any], lines: _Lines) -> tuple[list[str], int | None]:
    """ValidatePodCreate errors kubelet would print (volumes first, then mounts)."""
    errs: list[str] = []
    first_line: int | None = None

    def add(msg: str, *path: Any) -> None:
        nonlocal first_line
        errs.append(msg)
        if first_line is None:
            first_line = lines.of(*path)

    names: set[str] = set()
    for vi, v in enumerate(spec.get("volumes") or []):
        p = f"spec.volumes[{vi}]"
        name = v.get("name") or ""
        if not name:
            add(f"{p}.name: Required value", "spec", "volumes", vi)
        elif name in names:
            add(f"{p}.name: Duplicate value: {go_quote(name)}", "spec", "volumes", vi, "name")
        names.add(name)
        sources = [s for s in _VOLUME_SOURCES if v.get(s) is not None]
        if not sources:
            add(f"{p}: Required value: must specify a volume type", "spec", "volumes", vi)
        elif len(sources) > 1:
            add(
                f"{p}.{sources[1]}: Forbidden: may not specify more than 1 volume type",
                "spec",
                "volumes",
                vi,
                sources[1],
            )
        hp = v.get("hostPath")
        if isinstance(hp, dict):
            path = hp.get("path") or ""
            if not path:
                add(f"{p}.hostPath.path: Required value", "spec", "volumes", vi, "hostPath")
            elif ".." in path.split("/"):
                add(
                    f"{p}.hostPath.path: Invalid value: {go_quote(path)}: must not contain '..'",
                    "spec",
                    "volumes",
                    vi,
                    "hostPath",
                    "path",
                )
            htype = hp.get("type")
            if htype is not None and htype not in HOST_PATH_TYPES:
                supported = ", ".join(go_quote(t) for t in HOST_PATH_TYPES)
                add(
                    f"{p}.hostPath.type: Unsupported value: {go_quote(htype)}: "
                    f"supported values: {supported}",
                    "spec",
                    "volumes",
                    vi,
                    "hostPath",
                    "type",
                )
    for ci, c in enumerate(spec.get("containers") or []):
        seen: set[str] = set()
        for mi, vm in enumerate(c.get("volumeMounts") or []):
            p = f"spec.containers[{ci}].volumeMounts[{mi}]"
            where = ("spec", "containers", ci, "volumeMounts", mi)
            name = vm.get("name") or ""
            if not name:
                add(f"{p}.name: Required value", *where)
            if name not in names:
                add(f"{p}.name: Not found: {go_quote(name)}", *where, "name")
            mp = vm.get("mountPath") or ""
            if not mp:
                add(f"{p}.mountPath: Required value", *where)
            if mp in seen:
                add(
                    f"{p}.mountPath: Invalid value: {go_quote(mp)}: must be unique",
                    *where,
                    "mountPath",
                )
            seen.add(mp)
            sub = vm.get("subPath") or ""
            if sub and (sub.startswith("/") or ".." in sub.split("/")):
                add(
                    f"{p}.subPath: Invalid value: {go_quote(sub)}: must be a relative path"
                    if sub.startswith("/")
                    else f"{p}.subPath: Invalid value: {go_quote(sub)}: must not contain '..'",
                    *where,
                    "subPath",
                )
    return errs, first_line


# --------------------------------------------------------------------------- flags


@dataclass
class _ParsedFlags:
    values: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    positional: list[str] = field(default_factory=list)
    help: bool = False
    version: bool = False


def _parse_flags(argv: list[tuple[str, int | None]]) -> _ParsedFlags:
    """pflag's parse of kube-apiserver's arguments; raises _Stop on the first error."""
    out = _ParsedFlags()

    def fail(msg: str, line: int | None) -> _Stop:
        return _Stop(msg, SOURCE_APISERVER, line=line, log_line=f"Error: {msg}")

    def set_value(name: str, value: str, line: int | None) -> None:
        kind = APISERVER_FLAGS[name]
        try:
            if kind == "i":
                _go_parse_int(value)
            elif kind == "b":
                _go_parse_bool(value)
            elif kind == "f":
                _go_parse_float(value)
            elif kind == "d":
                _go_parse_duration(value)
        except ValueError as exc:
            fn = {"i": "ParseInt", "b": "ParseBool", "f": "ParseFloat"}.get(kind)
            cause = f"strconv.{fn}: parsing {go_quote(value)}: {exc}" if fn else str(exc)
            label = f"-{_short_of(name)}, --{name}" if _short_of(name) else f"--{name}"
            raise fail(
                f"invalid argument {go_quote(value)} for {go_quote(label)} flag: {cause}", line
            ) from None
        if name == "help":
            out.help = out.help or _go_parse_bool(value)
        if name == "version" and value not in ("false", "False", "0"):
            out.version = True
        out.values[name] = value
        if line is not None:
            out.lines[name] = line

    i = 0
    while i < len(argv):
        arg, line = argv[i]
        i += 1
        if len(arg) < 2 or arg[0] != "-":
            out.positional.append(arg)
            continue
        if arg == "--":
            out.positional.extend(a for a, _ in argv[i:])
            break
        if arg.startswith("--"):
            body = arg[2:]
            if not body or body[0] in "-=":
                raise fail(f"bad flag syntax: {arg}", line)
            name, eq, value = body.partition("=")
            norm = name.replace("_", "-")  # cli.Run's WordSepNormalizeFunc
            if norm not in APISERVER_FLAGS:
                raise fail(f"unknown flag: --{name}", line)
            if not eq:
                if APISERVER_FLAGS[norm] in ("b", "v"):
                    value = "true"
                elif i < len(argv):
                    value, _ = argv[i]  # pflag takes the next argument whatever it is
                    i += 1
                else:
                    raise fail(f"flag needs an argument: --{name}", line)
            set_value(norm, value, line)
            continue
        # Shorthand cluster: -v=2, -v 2, -h
        shorts = arg[1:]
        while shorts:
            c = shorts[0]
            if c not in _SHORTHANDS:
                raise fail(
                    f"unknown shorthand flag: {_go_rune(c)} in -{arg[1:]}",
                    line,
                )
            name = _SHORTHANDS[c]
            rest = shorts[1:]
            if APISERVER_FLAGS[name] == "b":
                set_value(name, "true", line)
                shorts = rest
                continue
            if rest.startswith("="):
                value = rest[1:]
            elif rest:
                value = rest
            elif i < len(argv):
                value, _ = argv[i]
                i += 1
            else:
                raise fail(
                    f"flag needs an argument: {_go_rune(c)} in -{arg[1:]}",
                    line,
                )
            set_value(name, value, line)
            break
    return out


def _go_rune(c: str) -> str:
    """Go's %q for a rune: single-quoted."""
    inner = go_quote(c)[1:-1].replace('\\"', '"')
    return "'" + (inner if c != "'" else "\\'") + "'"


def _short_of(name: str) -> str | None:
    for short, long in _SHORTHANDS.items():
        if long == name:
            return short
    return None


# --------------------------------------------------------------------------- the analysis


def analyse_apiserver(
    node_root: Path,
    manifest_path: str = DEFAULT_MANIFEST,
    *,
    now: datetime | None = None,
) -> ApiserverState:
    """What happens to kube-apiserver on this node with its current manifest."""
    node = _NodeView(Path(node_root))
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


def _kubelet_manifest_error(
    err: str, manifest: str, line: int | None, now: datetime | None
) -> _Stop:
    return _Stop(
        err,
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


def _analyse(node: _NodeView, manifest: str, state: ApiserverState, now: datetime | None) -> None:
    # ---- 1. kubelet reads and decodes the static pod file
    try:
        real = node.real(manifest)
    except NodePathError as exc:
        raise _Stop(exc.message, SOURCE_KUBELET, file=manifest) from None
    if not real.is_file():
        raise _Stop(
            f"no static pod manifest at {manifest}: kubelet runs no kube-apiserver pod",
            SOURCE_KUBELET,
            file=manifest,
        )
    data = real.read_bytes()
    if len(data) > MAX_MANIFEST_BYTES:
        raise _kubelet_manifest_error(
            f"{manifest}: read {manifest}: file too large", manifest, None, now
        )
    text = data.decode("utf-8", errors="replace")
    try:
        doc, lines = _load_manifest(text)
    except _ManifestYAMLError as exc:
        err = f"{manifest}: couldn't parse as pod({exc.message}), please check config file"
        raise _kubelet_manifest_error(err, manifest, exc.line, now) from None
    problem, line = _decode_pod(doc, lines)
    if problem is not None:
        err = f"{manifest}: couldn't parse as pod({problem}), please check config file"
        raise _kubelet_manifest_error(err, manifest, line, now)
    spec = doc.get("spec") or {}
    errs, line = _validate_pod(spec, lines)
    if not spec.get("containers"):
        errs.insert(0, "spec.containers: Required value")
        line = line or lines.of("spec")
    if errs:
        raise _kubelet_manifest_error(f"invalid pod: [{' '.join(errs)}]", manifest, line, now)

    containers = spec.get("containers") or []
    index = next((i for i, c in enumerate(containers) if c.get("name") == CONTAINER_NAME), None)
    if index is None:
        raise _Stop(
            f'static pod in {manifest} has no container named "{CONTAINER_NAME}"',
            SOURCE_KUBELET,
            file=manifest,
            line=lines.of("spec", "containers"),
        )
    container = containers[index]
    cpath = ("spec", "containers", index)
    state.manifest_line = lines.of(*cpath)

    # ---- mounts: join volumeMounts with pod volumes
    volumes = {v.get("name"): (vi, v) for vi, v in enumerate(spec.get("volumes") or [])}
    mounts: list[Mount] = []
    for mi, vm in enumerate(container.get("volumeMounts") or []):
        vi, vol = volumes[vm["name"]]
        hp = vol.get("hostPath")
        kind = next((s for s in _VOLUME_SOURCES if vol.get(s) is not None), None)
        mounts.append(
            Mount(
                name=vm["name"],
                mount_path=normalize_node_path(vm["mountPath"]),
                read_only=bool(vm.get("readOnly", False)),
                host_path=normalize_node_path(hp["path"]) if isinstance(hp, dict) else None,
                host_type=(hp.get("type") or "") if isinstance(hp, dict) else None,
                sub_path=vm.get("subPath") or None,
                volume_kind=kind,
                line=lines.of(*cpath, "volumeMounts", mi),
            )
        )
    state.mounts = mounts

    # ---- 2. kubelet sets up every volume of the pod; one failing does not stop the
    # others (each is reconciled on its own), but the container never starts.
    first_failure: _Stop | None = None
    for vi, vol in enumerate(spec.get("volumes") or []):
        hp = vol.get("hostPath")
        if not isinstance(hp, dict):
            continue
        setup_err = _setup_host_path(
            node, normalize_node_path(hp["path"]), hp.get("type") or "", vol["name"]
        )
        if setup_err is not None and first_failure is None:
            first_failure = _Stop(
                f'MountVolume.SetUp failed for volume "{vol["name"]}" : {setup_err}',
                SOURCE_KUBELET,
                file=manifest,
                line=lines.of("spec", "volumes", vi),
            )
    if first_failure is not None:
        raise first_failure
    for m in mounts:
        if m.host_path and m.sub_path:
            sub = posixpath.join(m.host_path, m.sub_path)
            if node.kind(sub) == "missing":
                node.create(sub, "dir", f"kubelet creates subPath {m.sub_path} of volume {m.name}")

    # ---- 3. the runtime starts command + args
    command = container.get("command")
    if not command:
        raise _Stop(
            f'container "{CONTAINER_NAME}" has no command: kube-apiserver is not started with '
            "the cluster's flags (kubeadm puts the whole command line in command:)",
            SOURCE_RUNTIME,
            file=manifest,
            line=lines.of(*cpath),
        )
    argv: list[tuple[str, int | None]] = []
    for key in ("command", "args"):
        for ai, arg in enumerate(container.get(key) or []):
            argv.append(("" if arg is None else arg, lines.of(*cpath, key, ai)))
    exe = argv[0][0]
    if exe not in ("kube-apiserver", "/usr/local/bin/kube-apiserver"):
        where = "executable file not found in $PATH" if "/" not in exe else ENOENT
        msg = (
            "failed to create containerd task: failed to create shim task: OCI runtime create "
            "failed: runc create failed: unable to start container process: error during "
            f"container init: exec: {go_quote(exe)}: {where}: unknown"
        )
        raise _Stop(msg, SOURCE_RUNTIME, file=manifest, line=argv[0][1])

    # ---- 4. kube-apiserver parses its flags
    parsed = _parse_flags(argv[1:])
    state.flags = dict(parsed.values)
    state.flag_lines = dict(parsed.lines)
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

    flags = parsed.values

    def command_failed(err: str, *, file: str | None = manifest, line: int | None = None) -> _Stop:
        return _Stop(
            err,
            SOURCE_APISERVER,
            file=file,
            line=line,
            log_line=klog_line("command failed", [("err", err)], where="run.go:74", now=now),
        )

    # ---- options: Validate() (all errors aggregated)
    log_cfg = _log_config(flags)
    verrs: list[tuple[str, str | None]] = []
    if not flags.get("etcd-servers"):
        verrs.append(("--etcd-servers must be specified", "etcd-servers"))
    if log_cfg is not None:
        verrs.extend(_validate_backend("log", flags))
        for name, value in (
            ("audit-log-maxage", log_cfg.maxage),
            ("audit-log-maxbackup", log_cfg.maxbackup),
            ("audit-log-maxsize", log_cfg.maxsize),
        ):
            if value is not None and value < 0:
                verrs.append((f"--{name} {value} can't be a negative number", name))
    if flags.get("audit-webhook-config-file"):
        verrs.extend(_validate_backend("webhook", flags))
    if verrs:
        msgs = list(dict.fromkeys(m for m, _ in verrs))
        err = msgs[0] if len(msgs) == 1 else "[" + ", ".join(msgs) + "]"
        first_flag = verrs[0][1]
        raise command_failed(err, line=parsed.lines.get(first_flag) if first_flag else None)

    cfs = _ContainerFS(mounts, node)

    # ---- files the kubeadm flags need (certificates, keys)
    for name in _CERT_FILE_FLAGS:
        files = flags.get(name)
        if not files:
            continue
        for path in [p for p in files.split(",") if p]:
            cpath_ = normalize_node_path(path)
            mount, _ = cfs.locate(cpath_)
            if mount is None:
                raise command_failed(_go_errno("open", cpath_, ENOENT), line=parsed.lines.get(name))

    # ---- Audit.ApplyTo: 1. policy
    policy_file = flags.get("audit-policy-file") or None
    state.policy_file = normalize_node_path(policy_file) if policy_file else None
    state.log = log_cfg
    if policy_file:
        cp = normalize_node_path(policy_file)
        mount, host = cfs.locate(cp)
        kind = cfs.kind(cp)
        read_err = None
        if kind == "missing":
            read_err = _go_errno("open", policy_file, ENOENT)
        elif kind == "notdir":
            read_err = _go_errno("open", policy_file, ENOTDIR)
        elif kind == "dir":
            read_err = _go_errno("read", policy_file, EISDIR)
        if read_err is not None:
            msg = (
                "loading audit policy file: failed to read file path "
                f"{go_quote(policy_file)}: {read_err}"
            )
            if mount is None:
                state.notes.append(
                    f"--audit-policy-file {cp} is not under any volumeMount: the file only exists "
                    "on the node, not inside the apiserver container"
                )
            raise command_failed(msg, line=parsed.lines.get("audit-policy-file"))
        assert host is not None
        state.policy_host_path = node.real(host)
        from lab.engines.audit.policy import PolicyError, apiserver_policy_error, load_policy

        try:
            state.policy = load_policy(node.read_bytes(host), policy_file)
        except PolicyError as exc:
            raise command_failed(
                apiserver_policy_error(exc), file=host, line=getattr(exc, "line", None)
            ) from None

    # ---- 2. log backend: getWriter() -> ensureLogFile()
    if log_cfg is not None and not log_cfg.to_stdout:
        lp = normalize_node_path(log_cfg.path)
        mount, host = cfs.locate(lp)
        log_cfg.mount = mount
        log_err = cfs.mkdir_all(
            posixpath.dirname(lp), "kube-apiserver creates the audit log directory"
        )
        if log_err is None:
            k = cfs.kind(lp)
            if k == "dir":
                log_err = _go_errno("open", log_cfg.raw_path, EISDIR)
            elif k == "notdir":
                log_err = _go_errno("open", log_cfg.raw_path, ENOTDIR)
            elif cfs.read_only(lp):
                log_err = _go_errno("open", log_cfg.raw_path, EROFS)
            elif k == "missing":
                cfs.create(lp, "file", "kube-apiserver creates the audit log file")
        if log_err is not None:
            raise command_failed(
                f"ensureLogFile: {log_err}", line=parsed.lines.get("audit-log-path")
            )
        if host is not None:
            log_cfg.node_path = host
            log_cfg.host_path = node.real(host)
        else:
            what = "an emptyDir volume" if mount is not None else "the container's own filesystem"
            state.notes.append(
                f"audit log {lp} is on {what}, not on a hostPath volume: events are written "
                "inside the container only and are lost when it restarts; "
                "nothing appears on the node"
            )

    # ---- 3. webhook backend (its delivery is not simulated)
    if flags.get("audit-webhook-config-file"):
        state.webhook_config = normalize_node_path(flags["audit-webhook-config-file"])
        state.notes.append("an audit webhook is configured; webhook delivery is not simulated")

    # ---- what the audit setup amounts to
    if log_cfg is not None and state.policy is None:
        state.notes.append(
            "--audit-log-path is set but --audit-policy-file is not: with no policy the apiserver "
            "records no events (the log file stays empty)"
        )
    if log_cfg is None and state.policy is not None and not state.webhook_config:
        state.notes.append(
            "--audit-policy-file is set but --audit-log-path is not: the policy loads, "
            "but there is "
            "no backend, so nothing is logged"
        )
    if log_cfg is not None and log_cfg.to_stdout:
        state.notes.append(
            "--audit-log-path=- writes events to the apiserver's stdout (crictl logs)"
        )


def _validate_backend(plugin: str, flags: dict[str, str]) -> list[tuple[str, str | None]]:
    """AuditLogOptions/AuditWebhookOptions.Validate for mode, batch, truncate, version, format."""
    errs: list[tuple[str, str | None]] = []
    default_mode = "blocking" if plugin == "log" else "batch"
    mode_flag = f"audit-{plugin}-mode"
    mode = flags.get(mode_flag, default_mode)
    if mode not in _ALLOWED_MODES:
        errs.append(
            (
                f"invalid audit {plugin} mode {mode}, "
                f"allowed modes are {go_quote(','.join(_ALLOWED_MODES))}",
                mode_flag,
            )
        )
    elif mode == "batch":
        default_size = 10000
        default_max = 1 if plugin == "log" else 400
        buf = _int_flag(flags, f"audit-{plugin}-batch-buffer-size", default_size)
        mx = _int_flag(flags, f"audit-{plugin}-batch-max-size", default_max)
        if buf <= 0:
            errs.append(
                (
                    f"invalid audit batch {plugin} buffer size {buf}, must be a positive number",
                    f"audit-{plugin}-batch-buffer-size",
                )
            )
        elif mx <= 0:
            errs.append(
                (
                    f"invalid audit batch {plugin} max batch size {mx}, must be a positive number",
                    f"audit-{plugin}-batch-max-size",
                )
            )
    max_event = _int_flag(flags, f"audit-{plugin}-truncate-max-event-size", 100 * 1024)
    max_batch = _int_flag(flags, f"audit-{plugin}-truncate-max-batch-size", 10 * 1024 * 1024)
    if max_event <= 0:
        errs.append(
            (
                f"invalid audit truncate {plugin} max event size {max_event}, "
                "must be a positive number",
                f"audit-{plugin}-truncate-max-event-size",
            )
        )
    elif max_batch < max_event:
        errs.append(
            (
                f"invalid audit truncate {plugin} max batch size {max_batch}, must be greater than "
                f"max event size ({max_event})",
                f"audit-{plugin}-truncate-max-batch-size",
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
    if plugin == "log":
        fmt = flags.get("audit-log-format", "json")
        if fmt not in _ALLOWED_FORMATS:
            errs.append(
                (
                    f"invalid audit log format {fmt}, allowed formats are "
                    f"{go_quote(','.join(_ALLOWED_FORMATS))}",
                    "audit-log-format",
                )
            )
    return errs


def _int_flag(flags: dict[str, str], name: str, default: int) -> int:
    if name not in flags:
        return default
    return _go_parse_int(flags[name])  # already validated by the flag parser


def _log_config(flags: dict[str, str]) -> AuditLogConfig | None:
    path = flags.get("audit-log-path", "")
    if not path:
        return None

    def opt_int(name: str) -> int | None:
        return _go_parse_int(flags[name]) if name in flags else None

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
        compress=_go_parse_bool(flags["audit-log-compress"])
        if "audit-log-compress" in flags
        else False,
    )


def _setup_host_path(node: _NodeView, path: str, htype: str, volume: str) -> str | None:
    """kubelet's hostPath SetUp (and containerd's bind-mount source creation)."""
    by = f'kubelet (hostPath type {htype}) for volume "{volume}"'
    kind = node.kind(path)
    if htype == "":
        if kind == "missing":
            # No type check; containerd creates a missing bind-mount source as a directory.
            node.mkdir_all(path, f'containerd creates the missing hostPath of volume "{volume}"')
        return None
    if htype == "DirectoryOrCreate":
        if kind in ("missing", "notdir"):
            return node.mkdir_all(path, by)
        return _type_matched(path, kind, "Directory", "directory")
    if htype == "FileOrCreate":
        if kind == "missing":
            parent = posixpath.dirname(path)
            pk = node.kind(parent)
            if pk == "missing":
                return _go_errno("open", path, ENOENT)
            if pk != "dir":
                return _go_errno("open", path, ENOTDIR)
            node.create(path, "file", by)
            return None
        if kind == "notdir":
            return _go_errno("open", path, ENOTDIR)
        return _type_matched(path, kind, "File", "file")
    if htype == "Directory":
        return _type_matched(path, kind, "Directory", "directory")
    if htype == "File":
        return _type_matched(path, kind, "File", "file")
    desc = {
        "Socket": "socket file",
        "CharDevice": "character device",
        "BlockDevice": "block device",
    }
    return _type_matched(path, kind, htype, desc.get(htype, htype))


def _type_matched(path: str, kind: str, expected: str, description: str) -> str | None:
    if kind in ("missing", "notdir"):
        return f"hostPath {path} doesn't exist"
    actual = {"dir": "Directory", "file": "File"}.get(kind, "")
    if actual == expected:
        return None
    actual = actual or "unknown type"
    return f"hostPath type check failed: {path} is not a {description}, it's a {actual}"


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
