"""kube-apiserver's command-line flags and pflag's parse of them.

The table lists the flags of kube-apiserver 1.36 with their value type; the
parser follows pflag (as wired by cobra and component-base/cli): ``--name=value``
or ``--name value``, the last occurrence wins, ``_`` in names reads as ``-``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from lab.engines.audit.gotext import (
    GO_FALSE,
    GO_TRUE,
    go_parse_bool,
    go_parse_duration,
    go_parse_float,
    go_parse_int,
    go_quote,
    go_rune,
)

# Flag name -> pflag value type, for kube-apiserver 1.36. Only the value types
# that can fail to parse matter: b(ool), i(nt), f(loat), d(uration); s is any
# string-like type (string, strings, ip, mapStringString, ...); v is verflag's
# --version, a bool that also takes "raw" or a version. Every flag
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


class FlagError(Exception):
    """The first error pflag reports; cobra prints it as ``Error: <message>``."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass
class ParsedFlags:
    values: dict[str, str] = field(default_factory=dict)  # name -> last value as written
    lines: dict[str, int] = field(default_factory=dict)  # name -> manifest line of that value
    positional: list[str] = field(default_factory=list)
    help: bool = False
    version: bool = False


def parse_flags(argv: list[tuple[str, int | None]], *, strict: bool = True) -> ParsedFlags:
    """Parse ``(argument, manifest line)`` pairs as kube-apiserver does.

    ``strict`` raises :class:`FlagError` on the first error, as the binary exits.
    Otherwise parsing goes on past errors, so ``values`` holds every flag as
    written (a bad value, an unknown name) for reporting on a pod that failed.
    Where both succeed they agree.
    """
    out = ParsedFlags()

    def problem(msg: str, line: int | None) -> None:
        if strict:
            raise FlagError(msg, line)

    def set_value(name: str, value: str, line: int | None) -> None:
        kind = APISERVER_FLAGS.get(name)
        if strict and kind is not None:
            _check_value(name, kind, value, line)
        if name == "help" and value in GO_TRUE:
            out.help = True
        # verflag: "raw" or anything ParseBool reads as true prints the version.
        if name == "version" and value not in GO_FALSE:
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
                problem(f"bad flag syntax: {arg}", line)
                continue
            name, eq, value = body.partition("=")
            norm = name.replace("_", "-")  # cli.Run's WordSepNormalizeFunc
            kind = APISERVER_FLAGS.get(norm)
            if kind is None:
                problem(f"unknown flag: --{name}", line)
            if not eq:
                if kind in ("b", "v"):
                    value = "true"
                elif i < len(argv) and (kind is not None or not argv[i][0].startswith("-")):
                    # pflag takes the next argument whatever it is; for a name it does
                    # not know, only a non-flag can be meant as its value.
                    value, _ = argv[i]
                    i += 1
                else:
                    problem(f"flag needs an argument: --{name}", line)
                    value = ""
            set_value(norm, value, line)
            continue
        # Shorthand cluster: -v=2, -v2, -v 2, -h
        shorts = arg[1:]
        while shorts:
            c = shorts[0]
            if c not in _SHORTHANDS:
                problem(f"unknown shorthand flag: {go_rune(c)} in -{arg[1:]}", line)
                break
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
                problem(f"flag needs an argument: {go_rune(c)} in -{arg[1:]}", line)
                value = ""
            set_value(name, value, line)
            break
    return out


_PARSERS: dict[str, tuple[str | None, Callable[[str], object]]] = {
    "i": ("ParseInt", go_parse_int),
    "b": ("ParseBool", go_parse_bool),
    "f": ("ParseFloat", go_parse_float),
    "d": (None, go_parse_duration),
}


def _check_value(name: str, kind: str, value: str, line: int | None) -> None:
    if kind not in _PARSERS:
        return
    fn, parse = _PARSERS[kind]
    try:
        parse(value)
    except ValueError as exc:
        cause = f"strconv.{fn}: parsing {go_quote(value)}: {exc}" if fn else str(exc)
        short = next((s for s, long in _SHORTHANDS.items() if long == name), None)
        label = f"-{short}, --{name}" if short else f"--{name}"
        raise FlagError(
            f"invalid argument {go_quote(value)} for {go_quote(label)} flag: {cause}", line
        ) from None
