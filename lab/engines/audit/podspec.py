"""The kube-apiserver static pod as kubelet's file source decodes and validates it.

Decoding follows the JSON decoder kubelet runs on the YAML (its type errors,
its scheme lookup); validation is the part of ValidatePodCreate that volumes
and mounts can fail. pkg/kubelet/config (file.go, common.go), core validation.
"""

from __future__ import annotations

import json
from typing import Any

from lab.engines.audit.gojson import find_kind_error, type_error
from lab.engines.audit.gotext import go_quote
from lab.engines.audit.goyaml import Lines
from lab.engines.audit.hostpath import HOST_PATH_TYPES, Mount
from lab.engines.audit.validation import is_dns1123_label
from lab.nodefs import normalize_node_path


def _json_default(value: Any) -> Any:
    return str(value)


def decode_pod(doc: Any, lines: Lines) -> tuple[str | None, int | None]:
    """Why kubelet's decoder refuses ``doc`` as a Pod (message, line), or (None, None)."""
    if doc is None:
        return "Object 'Kind' is missing in 'null'", 1
    if not isinstance(doc, dict):
        return find_kind_error(doc), 1
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
    meta = doc.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        return type_error(meta, "Pod", "metadata", "v1.ObjectMeta"), lines.of("metadata")
    for key in ("name", "namespace"):
        val = (meta or {}).get(key)
        if val is not None and not isinstance(val, str):
            return type_error(val, "ObjectMeta", f"metadata.{key}", "string"), lines.of(
                "metadata", key)
    spec = doc.get("spec")
    if spec is None:
        return None, None
    if not isinstance(spec, dict):
        return type_error(spec, "Pod", "spec", "v1.PodSpec"), lines.of("spec")
    for key, gotype in (("containers", "[]v1.Container"), ("volumes", "[]v1.Volume")):
        val = spec.get(key)
        if val is not None and not isinstance(val, list):
            return type_error(val, "PodSpec", f"spec.{key}", gotype), lines.of("spec", key)
    for ci, c in enumerate(spec.get("containers") or []):
        if not isinstance(c, dict):
            return type_error(c, "PodSpec", "spec.containers", "v1.Container"), lines.of(
                "spec", "containers", ci
            )
        for key in ("command", "args"):
            val = c.get(key)
            if val is None:
                continue
            if not isinstance(val, list):
                return type_error(
                    val, "Container", f"spec.containers.{key}", "[]string"
                ), lines.of("spec", "containers", ci, key)
            for ai, arg in enumerate(val):
                if arg is not None and not isinstance(arg, str):
                    return type_error(
                        arg, "Container", f"spec.containers.{key}", "string"
                    ), lines.of("spec", "containers", ci, key, ai)
        if c.get("name") is not None and not isinstance(c.get("name"), str):
            return type_error(c["name"], "Container", "spec.containers.name", "string"), lines.of(
                "spec", "containers", ci, "name"
            )
        vms = c.get("volumeMounts")
        if vms is not None and not isinstance(vms, list):
            return type_error(
                vms, "Container", "spec.containers.volumeMounts", "[]v1.VolumeMount"
            ), lines.of("spec", "containers", ci, "volumeMounts")
        for mi, vm in enumerate(vms or []):
            where = ("spec", "containers", ci, "volumeMounts", mi)
            if not isinstance(vm, dict):
                return type_error(
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
                    return type_error(
                        val, "VolumeMount", f"spec.containers.volumeMounts.{key}", gotype
                    ), lines.of(*where, key)
    for vi, v in enumerate(spec.get("volumes") or []):
        vwhere = ("spec", "volumes", vi)
        if not isinstance(v, dict):
            return type_error(v, "PodSpec", "spec.volumes", "v1.Volume"), lines.of(*vwhere)
        if v.get("name") is not None and not isinstance(v["name"], str):
            return type_error(v["name"], "Volume", "spec.volumes.name", "string"), lines.of(
                *vwhere, "name"
            )
        hp = v.get("hostPath")
        if hp is None:
            continue
        if not isinstance(hp, dict):
            return type_error(
                hp, "Volume", "spec.volumes.hostPath", "v1.HostPathVolumeSource"
            ), lines.of(*vwhere, "hostPath")
        for key, gotype in (("path", "string"), ("type", "v1.HostPathType")):
            val = hp.get(key)
            if val is not None and not isinstance(val, str):
                return type_error(
                    val, "HostPathVolumeSource", f"spec.volumes.hostPath.{key}", gotype
                ), lines.of(*vwhere, "hostPath", key)
    return None, None


# validateVolumeSource checks the sources in this order: the first one set is the
# volume's type, each later one is "may not specify more than 1 volume type" at
# the path given here (upstream's own spelling, typos included).
_VOLUME_SOURCE_TABLE = (
    ("emptyDir", "emptyDir"),
    ("hostPath", "hostPath"),
    ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk"),
    ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"),
    ("nfs", "nfs"),
    ("iscsi", "iscsi"),
    ("glusterfs", "glusterfs"),
    ("flocker", "flocker"),
    ("persistentVolumeClaim", "persistentVolumeClaim"),
    ("rbd", "rbd"),
    ("cinder", "cinder"),
    ("cephfs", "cephFS"),
    ("quobyte", "quobyte"),
    ("downwardAPI", "downwarAPI"),
    ("fc", "fc"),
    ("flexVolume", "flexVolume"),
    ("configMap", "configMap"),
    ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"),
    ("storageos", "storageos"),
    ("projected", "projected"),
    ("scaleIO", "scaleIO"),
    ("csi", "csi"),
    ("ephemeral", "ephemeral"),
    ("image", "image"),
)
VOLUME_SOURCES = tuple(field for field, _ in _VOLUME_SOURCE_TABLE)


def _validate_volume_source(v: dict[str, Any], p: str) -> list[tuple[str, tuple[Any, ...]]]:
    """validateVolumeSource, as far as kubelet's file source can fail it here."""
    errs: list[tuple[str, tuple[Any, ...]]] = []
    kind = None
    for field, forbidden_at in _VOLUME_SOURCE_TABLE:
        if v.get(field) is None:
            continue
        if kind is not None:
            errs.append((f"{p}.{forbidden_at}: Forbidden: may not specify more than 1 volume type",
                         (field,)))
            continue
        kind = field
        hp = v.get("hostPath")
        if field == "hostPath" and isinstance(hp, dict):
            errs += _validate_host_path(hp, f"{p}.hostPath")
    if kind is None:
        errs.append((f"{p}: Required value: must specify a volume type", ()))
    return errs


def _validate_host_path(hp: dict[str, Any], p: str) -> list[tuple[str, tuple[Any, ...]]]:
    """validateHostPathVolumeSource: path required (nothing else checked then), no '..'."""
    path = hp.get("path") or ""
    if not path:
        return [(f"{p}.path: Required value", ("hostPath",))]
    errs: list[tuple[str, tuple[Any, ...]]] = []
    if ".." in path.split("/"):
        errs.append((f"{p}.path: Invalid value: {go_quote(path)}: must not contain '..'",
                     ("hostPath", "path")))
    htype = hp.get("type")
    if htype is not None and htype not in HOST_PATH_TYPES:
        supported = ", ".join(go_quote(t) for t in HOST_PATH_TYPES)
        errs.append((f"{p}.type: Unsupported value: {go_quote(htype)}: supported values: "
                     f"{supported}", ("hostPath", "type")))
    return errs


def _validate_local_descending_path(value: str, p: str) -> list[str]:
    """validateLocalDescendingPath: relative, and no '..' (both can be reported)."""
    errs = []
    if value.startswith("/"):
        errs.append(f"{p}: Invalid value: {go_quote(value)}: must be a relative path")
    if ".." in value.split("/"):
        errs.append(f"{p}: Invalid value: {go_quote(value)}: must not contain '..'")
    return errs


def validate_pod(spec: dict[str, Any], lines: Lines) -> tuple[list[str], int | None]:
    """ValidatePodCreate errors kubelet would print, in upstream's order, and the first's line.

    ValidateVolumes first: each volume's source errors, then its name (required,
    an RFC 1123 label, unique); only a volume without errors can be mounted.
    Then validateContainers: at least one container, and per container its
    volumeMounts (name required and naming a valid volume, mountPath required
    and unique, subPath relative without '..').
    """
    errs: list[str] = []
    first_line: int | None = None

    def add(msg: str, *path: Any) -> None:
        nonlocal first_line
        errs.append(msg)
        if first_line is None:
            first_line = lines.of(*path)

    valid: set[str] = set()  # upstream's allNames: volumes without errors only
    for vi, v in enumerate(spec.get("volumes") or []):
        p = f"spec.volumes[{vi}]"
        where: tuple[Any, ...] = ("spec", "volumes", vi)
        found = [(msg, (*where, *sub)) for msg, sub in _validate_volume_source(v, p)]
        name = v.get("name") or ""
        if not name:
            found.append((f"{p}.name: Required value", where))
        else:
            found += [(f"{p}.name: Invalid value: {go_quote(name)}: {msg}", (*where, "name"))
                      for msg in is_dns1123_label(name)]
        if name in valid:
            found.append((f"{p}.name: Duplicate value: {go_quote(name)}", (*where, "name")))
        if found:
            for msg, at in found:
                add(msg, *at)
        else:
            valid.add(name)
    containers = spec.get("containers") or []
    if not containers:
        add("spec.containers: Required value", "spec")
    for ci, c in enumerate(containers):
        seen: set[str] = set()
        base = f"spec.containers[{ci}].volumeMounts"
        for mi, vm in enumerate(c.get("volumeMounts") or []):
            p = f"{base}[{mi}]"
            mount_at = ("spec", "containers", ci, "volumeMounts", mi)
            name = vm.get("name") or ""
            if not name:
                add(f"{p}.name: Required value", *mount_at)
            if name not in valid:
                add(f"{p}.name: Not found: {go_quote(name)}", *mount_at, "name")
            mp = vm.get("mountPath") or ""
            if not mp:
                add(f"{p}.mountPath: Required value", *mount_at)
            if mp in seen:
                add(f"{p}.mountPath: Invalid value: {go_quote(mp)}: must be unique",
                    *mount_at, "mountPath")
            seen.add(mp)
            sub = vm.get("subPath") or ""
            if sub:
                # Upstream uses the list's path here, not the item's: "volumeMounts.subPath".
                for msg in _validate_local_descending_path(sub, f"{base}.subPath"):
                    add(msg, *mount_at, "subPath")
    return errs, first_line


def pod_key(doc: dict[str, Any]) -> tuple[str, str] | None:
    """(namespace, name) kubelet keys a decoded static pod by; None: it has no name.

    tryDecodeSinglePod refuses a pod without a name ("invalid pod: name is needed
    for the pod"); applyDefaults then suffixes the node name (the same for every
    file, so left out here) and defaults the namespace to "default".
    """
    meta = doc.get("metadata") or {}
    name = meta.get("name") or ""
    return (meta.get("namespace") or "default", name) if name else None


def find_container(spec: dict[str, Any], name: str) -> int | None:
    """Index of the container called ``name`` in a decoded pod spec."""
    containers = spec.get("containers") or []
    return next((i for i, c in enumerate(containers) if c.get("name") == name), None)


def command_line(
    container: dict[str, Any], lines: Lines, cpath: tuple[Any, ...]
) -> list[tuple[str, int | None]]:
    """``command + args`` with the manifest line of each item."""
    argv: list[tuple[str, int | None]] = []
    for key in ("command", "args"):
        for ai, arg in enumerate(container.get(key) or []):
            argv.append(("" if arg is None else arg, lines.of(*cpath, key, ai)))
    return argv


def container_mounts(
    spec: dict[str, Any], container: dict[str, Any], lines: Lines, cpath: tuple[Any, ...]
) -> list[Mount]:
    """The container's volumeMounts as written, joined with the pod volumes by name.

    Works on any decoded pod, valid or not: a mount naming no volume has
    ``host_path``, ``host_type`` and ``volume_kind`` None, of two volumes with
    one name the first is taken (validation refuses the second), and a mount
    without a mountPath is left out (it would put nothing anywhere). For a valid
    pod this is exactly what kubelet mounts.
    """
    volumes: dict[Any, dict[str, Any]] = {}
    for v in spec.get("volumes") or []:
        volumes.setdefault(v.get("name"), v)
    mounts: list[Mount] = []
    for mi, vm in enumerate(container.get("volumeMounts") or []):
        name = vm.get("name") or ""
        vol = volumes.get(name) if name else None
        hp = vol.get("hostPath") if vol is not None else None
        host = hp.get("path") if isinstance(hp, dict) else None
        mount_path = vm.get("mountPath") or ""
        if not mount_path:
            continue
        mounts.append(
            Mount(
                name=name,
                mount_path=normalize_node_path(mount_path),
                read_only=bool(vm.get("readOnly", False)),
                host_path=normalize_node_path(host) if host else None,
                host_type=(hp.get("type") or "") if isinstance(hp, dict) else None,
                sub_path=vm.get("subPath") or None,
                volume_kind=None if vol is None else next(
                    (s for s in VOLUME_SOURCES if vol.get(s) is not None), None),
                line=lines.of(*cpath, "volumeMounts", mi),
            )
        )
    return mounts
