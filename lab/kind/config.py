"""Render the bundled kind configs and check the shape kind v0.32 expects.

kind v0.32 generates kubeadm v1beta4 for Kubernetes 1.36 and silently drops a
kubeadmConfigPatches entry whose apiVersion does not match, so a wrong patch
does not fail: the cluster just comes up without the flags. ``check_config``
catches that (and the v1beta3 map-shaped ``extraArgs``) before kind runs.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from lab.errors import LabError
from lab.kind.names import CLUSTER_NAME_RE, check_cluster_name
from lab.yamlsafe import Document, check_text, parse_one, read_bytes

KIND_API_VERSION = "kind.x-k8s.io/v1alpha4"
KUBEADM_API_VERSION = "kubeadm.k8s.io/v1beta4"

# The only placeholder the configs use, in kind's own Go-template spelling.
_PLACEHOLDER_RE = re.compile(r"\{\{(.*?)\}\}")
_KNOWN_PLACEHOLDERS = {".ClusterDir"}
# The rendered path sits inside a double-quoted YAML string and ends up in
# docker's "host:container:options" mount syntax.
_FORBIDDEN_PATH_CHARS = set('"\\:,') | {chr(c) for c in range(32)} | {"\x7f"}
_TOP_LEVEL_NAME_RE = re.compile(r"^name:.*$", re.MULTILINE)


def _check_cluster_dir(cluster_dir: Path) -> str:
    text = str(cluster_dir)
    if not cluster_dir.is_absolute():
        raise LabError(
            f"cluster folder {text!r} is not an absolute path; kind resolves relative "
            "mount paths against its own working directory"
        )
    bad = sorted({c for c in text if c in _FORBIDDEN_PATH_CHARS})
    if bad:
        raise LabError(
            f"cluster folder {text!r} contains {', '.join(repr(c) for c in bad)}, which "
            "cannot be passed to docker as a mount path; set CKS_LAB_HOME to a plainer path"
        )
    if ".." in cluster_dir.parts:
        raise LabError(f"cluster folder {text!r} contains '..'; pass a normalised path")
    return text


def render_config(template: Path, cluster_dir: Path, name: str) -> str:
    """The kind config in ``template`` with ``{{ .ClusterDir }}`` replaced by the
    absolute per-cluster folder and the cluster ``name`` set.

    Only renders: run ``check_config`` on the result before handing it to kind.
    """
    check_cluster_name(name)
    folder = _check_cluster_dir(cluster_dir)
    source = str(template)
    text = check_text(read_bytes(template), source)

    for match in _PLACEHOLDER_RE.finditer(text):
        key = match.group(1).strip()
        if key not in _KNOWN_PLACEHOLDERS:
            raise LabError(
                f"unknown placeholder {match.group(0)!r}; the only one is "
                "'{{ .ClusterDir }}' (the absolute per-cluster folder)",
                file=source,
                line=text.count("\n", 0, match.start()) + 1,
            )
    text = _PLACEHOLDER_RE.sub(folder, text)

    names = list(_TOP_LEVEL_NAME_RE.finditer(text))
    if len(names) > 1:
        raise LabError(
            "the config sets the cluster name more than once",
            file=source,
            line=text.count("\n", 0, names[1].start()) + 1,
        )
    if names:
        text = _TOP_LEVEL_NAME_RE.sub(f"name: {name}", text)
    else:
        # A column-0 key at the end closes any block above it, so appending is safe.
        text = text.rstrip("\n") + f"\nname: {name}\n"

    data = parse_one(text, f"{source} (rendered)").data
    if not isinstance(data, dict) or data.get("name") != name:
        raise LabError(
            "could not set the cluster name: the config is not a top-level mapping",
            file=source,
        )
    return text


def _fmt(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top)"


class _Problems:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.items: list[str] = []

    def add(self, path: tuple[str | int, ...], message: str) -> None:
        line = self.doc.line_of(path)
        where = f"line {line}: {_fmt(path)}" if line else _fmt(path)
        self.items.append(f"{where}: {message}")


def _is_abs_posix(value: object) -> bool:
    return isinstance(value, str) and PurePosixPath(value).is_absolute()


def check_config(text: str) -> list[str]:
    """Problems with a rendered kind config, each located; empty when kind
    v0.32 would build the cluster the lab expects from it."""
    try:
        doc = parse_one(text, "kind config")
    except LabError as err:
        return [str(err)]
    out = _Problems(doc)
    cfg = doc.data
    if not isinstance(cfg, dict):
        out.add((), "expected a mapping (a kind Cluster config)")
        return out.items
    if cfg.get("kind") != "Cluster":
        out.add(("kind",), f"kind is {cfg.get('kind')!r}, expected 'Cluster'")
    if cfg.get("apiVersion") != KIND_API_VERSION:
        out.add(
            ("apiVersion",),
            f"apiVersion is {cfg.get('apiVersion')!r}, expected {KIND_API_VERSION!r} (kind v0.32)",
        )
    name = cfg.get("name")
    if not isinstance(name, str) or not CLUSTER_NAME_RE.match(name):
        out.add(("name",), f"cluster name {name!r} is not a lab cluster name ('cks-lab…')")

    _check_patches(out, ("kubeadmConfigPatches",), cfg.get("kubeadmConfigPatches"))
    nodes = cfg.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        out.add(("nodes",), "expected a list of nodes (one control-plane, at least one worker)")
        return out.items
    roles = [n.get("role") if isinstance(n, dict) else None for n in nodes]
    planes = roles.count("control-plane")
    if planes != 1:
        out.add(("nodes",), f"expected exactly one control-plane node, found {planes}")
    if "worker" not in roles:
        out.add(("nodes",), "expected at least one worker node, found none")
    for i, node in enumerate(nodes):
        if not isinstance(node, dict):
            out.add(("nodes", i), "expected a mapping with a role")
            continue
        if node.get("role") not in ("control-plane", "worker"):
            out.add(
                ("nodes", i, "role"),
                f"role is {node.get('role')!r}, expected 'control-plane' or 'worker'",
            )
        _check_mounts(out, ("nodes", i, "extraMounts"), node.get("extraMounts"))
        _check_patches(out, ("nodes", i, "kubeadmConfigPatches"), node.get("kubeadmConfigPatches"))
    return out.items


def _check_mounts(out: _Problems, path: tuple[str | int, ...], mounts: Any) -> None:
    if mounts is None:
        return
    if not isinstance(mounts, list):
        out.add(path, "expected a list of {hostPath, containerPath}")
        return
    for j, mount in enumerate(mounts):
        if not isinstance(mount, dict):
            out.add((*path, j), "expected a mapping with hostPath and containerPath")
            continue
        host = mount.get("hostPath")
        if not _is_abs_posix(host):
            out.add(
                (*path, j, "hostPath"),
                f"hostPath {host!r} is not absolute after rendering; kind would resolve it "
                "against its working directory",
            )
        if not _is_abs_posix(mount.get("containerPath")):
            out.add(
                (*path, j, "containerPath"),
                f"containerPath {mount.get('containerPath')!r} is not an absolute path",
            )


def _check_patches(out: _Problems, path: tuple[str | int, ...], patches: Any) -> None:
    if patches is None:
        return
    if not isinstance(patches, list):
        out.add(path, "expected a list of kubeadm patches (YAML strings)")
        return
    for j, patch in enumerate(patches):
        where = (*path, j)
        if not isinstance(patch, str):
            out.add(where, "expected a kubeadm patch as a YAML string (use '- |')")
            continue
        try:
            data = parse_one(patch, "patch").data
        except LabError as err:
            at = f"its line {err.line}: " if err.line else ""
            out.add(where, f"patch is not valid YAML ({at}{err.message})")
            continue
        if not isinstance(data, dict):
            out.add(where, "patch is not a mapping")
            continue
        version = data.get("apiVersion")
        if version != KUBEADM_API_VERSION:
            out.add(
                where,
                f"patch apiVersion is {version!r}; kind v0.32 generates {KUBEADM_API_VERSION} "
                "for Kubernetes 1.36 and silently drops a patch that does not match",
            )
        for component in ("apiServer", "controllerManager", "scheduler"):
            section = data.get(component)
            if not isinstance(section, dict):
                continue
            _check_extra_args(out, where, component, section.get("extraArgs"))
            _check_extra_volumes(out, where, component, section.get("extraVolumes"))


def _check_extra_args(out: _Problems, where: tuple[str | int, ...], comp: str, args: Any) -> None:
    if args is None:
        return
    if isinstance(args, dict):
        out.add(
            where,
            f"{comp}.extraArgs is a map (the v1beta3 shape); v1beta4 wants a list of "
            "{name, value}",
        )
        return
    if not isinstance(args, list):
        out.add(where, f"{comp}.extraArgs must be a list of {{name, value}}")
        return
    for k, arg in enumerate(args):
        if not isinstance(arg, dict) or set(arg) != {"name", "value"}:
            out.add(where, f"{comp}.extraArgs[{k}] must have exactly name and value")
            continue
        if not isinstance(arg["name"], str) or arg["name"].startswith("-"):
            out.add(
                where, f"{comp}.extraArgs[{k}].name {arg['name']!r}: the flag name without '--'"
            )
        if not isinstance(arg["value"], str):
            out.add(
                where,
                f"{comp}.extraArgs[{k}].value {arg['value']!r} must be a string (quote it)",
            )


def _check_extra_volumes(
    out: _Problems, where: tuple[str | int, ...], comp: str, volumes: Any
) -> None:
    if volumes is None:
        return
    if not isinstance(volumes, list):
        out.add(where, f"{comp}.extraVolumes must be a list")
        return
    for k, vol in enumerate(volumes):
        missing = (
            sorted({"name", "hostPath", "mountPath"} - set(vol))
            if isinstance(vol, dict)
            else ["name", "hostPath", "mountPath"]
        )
        if missing:
            out.add(where, f"{comp}.extraVolumes[{k}] is missing {', '.join(missing)}")


# The host's AppArmor interface, which the bundled configs mount into every node.
SECURITYFS = "/sys/kernel/security"


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (the kubeadm patches) as `|` blocks, as in the templates."""


def _str_block(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str_block)


def drop_mounts(text: str, container_path: str, why: str) -> str:
    """The rendered config without the extraMounts onto `container_path`; unchanged
    text when there are none. `why` becomes a comment at the top of the result."""
    data = parse_one(text, "kind config (rendered)").data
    nodes = data.get("nodes") if isinstance(data, dict) else None
    dropped = False
    for node in nodes if isinstance(nodes, list) else []:
        mounts = node.get("extraMounts") if isinstance(node, dict) else None
        if not isinstance(mounts, list):
            continue
        kept = [
            m
            for m in mounts
            if not (isinstance(m, dict) and m.get("containerPath") == container_path)
        ]
        if len(kept) != len(mounts):
            dropped = True
            if kept:
                node["extraMounts"] = kept
            else:
                del node["extraMounts"]
    if not dropped:
        return text
    body = yaml.dump(data, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True)
    note = "".join(f"# {ln}\n" for ln in why.splitlines())
    return note + body


def node_count(text: str) -> int:
    """How many nodes the rendered config asks kind for."""
    data = parse_one(text, "kind config (rendered)").data
    nodes = data.get("nodes") if isinstance(data, dict) else None
    return len(nodes) if isinstance(nodes, list) else 0


def file_volumes(text: str) -> list[tuple[str, str | None]]:
    """The kubeadm extraVolumes of pathType File in the rendered config, as
    (node path, host path): the host path through the node's extraMounts, or None
    when no mount covers it (the file is the node image's own).

    kubeadm refuses to start a control plane whose File volume is missing, so
    these must exist before `kind create cluster` runs."""
    data = parse_one(text, "kind config (rendered)").data
    if not isinstance(data, dict):
        return []
    top = data.get("kubeadmConfigPatches")
    top_patches = top if isinstance(top, list) else []
    out: list[tuple[str, str | None]] = []
    nodes = data.get("nodes")
    for node in nodes if isinstance(nodes, list) else []:
        if not isinstance(node, dict) or node.get("role") != "control-plane":
            continue
        own = node.get("kubeadmConfigPatches")
        mounts = node.get("extraMounts")
        for patch in top_patches + (own if isinstance(own, list) else []):
            for path in _file_volume_paths(patch):
                out.append((path, _host_path(path, mounts if isinstance(mounts, list) else [])))
    return out


def _file_volume_paths(patch: Any) -> list[str]:
    if not isinstance(patch, str):
        return []
    try:
        data = parse_one(patch, "patch").data
    except LabError:
        return []  # check_config reports it
    if not isinstance(data, dict):
        return []
    paths = []
    for component in ("apiServer", "controllerManager", "scheduler"):
        section = data.get(component)
        volumes = section.get("extraVolumes") if isinstance(section, dict) else None
        for vol in volumes if isinstance(volumes, list) else []:
            if isinstance(vol, dict) and vol.get("pathType") == "File":
                if isinstance(vol.get("hostPath"), str):
                    paths.append(vol["hostPath"])
    return paths


def _host_path(node_path: str, mounts: list[Any]) -> str | None:
    best: tuple[int, str] | None = None
    for m in mounts:
        if not isinstance(m, dict):
            continue
        cp, hp = m.get("containerPath"), m.get("hostPath")
        if not (isinstance(cp, str) and isinstance(hp, str)):
            continue
        cp = cp.rstrip("/") or "/"
        if node_path == cp or node_path.startswith(cp.rstrip("/") + "/"):
            rest = node_path[len(cp) :].lstrip("/")
            host = str(PurePosixPath(hp, rest)) if rest else hp
            if best is None or len(cp) > best[0]:
                best = (len(cp), host)
    return best[1] if best else None
