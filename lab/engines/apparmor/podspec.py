"""Which AppArmor profile a container of a Pod runs under, as Kubernetes decides it.

Three parties, each with its own words when it refuses:

* the API server validates the object on create (`securityContext.appArmorProfile`
  at pod and container level, the deprecated per-container annotation, and that the
  two agree): `The Pod "web" is invalid: ...`, as kubectl prints it;
* the kubelet (>= 1.30) resolves a container's profile -- the container's field,
  then the annotation, then the pod's field -- and refuses to admit a pod that
  needs AppArmor on a host without it ("Cannot enforce AppArmor: ...");
* containerd turns the profile into the container's label: `Localhost` must be
  loaded on the node ("apparmor profile not found NAME", CreateContainerError);
  `RuntimeDefault`, and no profile at all, mean its own default profile, except for
  privileged containers, which run unconfined.

Works on plain manifest data (a dict from safe YAML): a Pod, or the pod template of a
Deployment, ReplicaSet, DaemonSet, StatefulSet, Job or CronJob.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
LOCALHOST, RUNTIME_DEFAULT, UNCONFINED = "Localhost", "RuntimeDefault", "Unconfined"
TYPES = (LOCALHOST, RUNTIME_DEFAULT, UNCONFINED)
# the annotation's values
ANN_RUNTIME_DEFAULT, ANN_UNCONFINED, ANN_LOCALHOST = "runtime/default", "unconfined", "localhost/"
# containerd's own profile, used for RuntimeDefault and when nothing is asked for
RUNTIME_DEFAULT_PROFILE = "cri-containerd.apparmor.d"
MAX_PROFILE_NAME = 4095  # PATH_MAX - 1

# kind -> where its pod template is
TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


def _quote(value: Any) -> str:
    """A value as Go's %v/%q shows it in a field error."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


@dataclass(frozen=True)
class FieldError:
    """One error of the API server's validation, printed as kubectl prints it."""

    field: str
    kind: str  # "Required value" | "Invalid value" | "Unsupported value" | "Forbidden" | "Too long"
    detail: str = ""
    value: Any = None

    def __str__(self) -> str:
        if self.kind == "Invalid value":
            return f"{self.field}: Invalid value: {_quote(self.value)}: {self.detail}"
        if self.kind == "Unsupported value":
            supported = ", ".join(_quote(t) for t in TYPES)
            return (f"{self.field}: Unsupported value: {_quote(self.value)}: "
                    f"supported values: {supported}")
        if self.kind == "Too long":
            return f"{self.field}: Too long: may not be more than {MAX_PROFILE_NAME} bytes"
        return f"{self.field}: {self.kind}: {self.detail}" if self.detail else \
            f"{self.field}: {self.kind}"


@dataclass(frozen=True)
class PodTemplate:
    """A Pod, or the pod template inside a workload object."""

    kind: str
    name: str
    namespace: str | None
    metadata: Mapping[str, Any]
    spec: Mapping[str, Any]
    prefix: str  # field path of the template: "" for a Pod, "spec.template." for a Deployment

    @property
    def annotations(self) -> Mapping[str, Any]:
        ann = self.metadata.get("annotations")
        return ann if isinstance(ann, Mapping) else {}

    @property
    def labels(self) -> Mapping[str, Any]:
        lab = self.metadata.get("labels")
        return lab if isinstance(lab, Mapping) else {}

    def field(self, rest: str) -> str:
        return self.prefix + rest


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    field: str  # "spec.containers[0]"
    data: Mapping[str, Any]

    @property
    def privileged(self) -> bool:
        sc = self.data.get("securityContext")
        return isinstance(sc, Mapping) and sc.get("privileged") is True


@dataclass(frozen=True)
class Confinement:
    """What the kubelet asks the runtime for, and where that was written."""

    type: str  # Localhost | RuntimeDefault | Unconfined; "" when nothing was asked for
    profile: str | None = None  # localhostProfile
    source: str = "default"  # "container field" | "annotation" | "pod field" | "default"
    field: str = ""  # the field or annotation that set it

    def describe(self) -> str:
        what = {LOCALHOST: f"Localhost profile {self.profile!r}",
                RUNTIME_DEFAULT: "RuntimeDefault", UNCONFINED: "Unconfined"}.get(
                    self.type, "no AppArmor profile")
        return f"{what} (from {self.field})" if self.field else what


@dataclass(frozen=True)
class RuntimeOutcome:
    """How a container starts: confined by `profile` (None: unconfined), or an error."""

    profile: str | None
    error: str | None = None
    reason: str = ""  # "CreateContainerError" | "AppArmor" (kubelet admission)


def pod_template(obj: Any) -> PodTemplate | None:
    """The pod template of a manifest object; None for kinds that make no pods."""
    if not isinstance(obj, Mapping):
        return None
    kind = obj.get("kind")
    if not isinstance(kind, str) or kind not in TEMPLATE_PATHS:
        return None
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    assert isinstance(meta, Mapping)
    name = meta.get("name") if isinstance(meta.get("name"), str) else ""
    namespace = meta.get("namespace") if isinstance(meta.get("namespace"), str) else None
    node: Any = obj
    for key in TEMPLATE_PATHS[kind]:
        node = node.get(key) if isinstance(node, Mapping) else None
    if not isinstance(node, Mapping):
        node = {}
    tmeta = node.get("metadata") if isinstance(node.get("metadata"), Mapping) else {}
    spec = node.get("spec") if isinstance(node.get("spec"), Mapping) else {}
    assert isinstance(tmeta, Mapping) and isinstance(spec, Mapping)
    prefix = "".join(f"{k}." for k in TEMPLATE_PATHS[kind])
    return PodTemplate(kind, str(name), namespace, tmeta, spec, prefix)


def containers(tpl: PodTemplate) -> list[ContainerSpec]:
    """Init containers, then containers, as the kubelet visits them."""
    out = []
    for key in ("initContainers", "containers"):
        items = tpl.spec.get(key)
        if not isinstance(items, list):
            continue
        for i, c in enumerate(items):
            if isinstance(c, Mapping) and isinstance(c.get("name"), str):
                out.append(ContainerSpec(c["name"], tpl.field(f"spec.{key}[{i}]"), c))
    return out


def _profile_field(holder: Any) -> Any:
    sc = holder.get("securityContext") if isinstance(holder, Mapping) else None
    return sc.get("appArmorProfile") if isinstance(sc, Mapping) else None


# --- the API server ------------------------------------------------------------------


def _validate_field(profile: Any, path: str) -> Iterator[FieldError]:
    """The API server's check of one `appArmorProfile` (ValidateAppArmorProfileField)."""
    if profile is None:
        return
    if not isinstance(profile, Mapping):
        yield FieldError(path, "Invalid value", "must be an object", profile)
        return
    ptype = profile.get("type")
    local = profile.get("localhostProfile")
    if ptype == LOCALHOST:
        if local is None:
            yield FieldError(f"{path}.localhostProfile", "Required value",
                             "must be set when AppArmor type is Localhost")
        elif not isinstance(local, str):
            yield FieldError(f"{path}.localhostProfile", "Invalid value", "must be a string",
                             local)
        else:
            if local.strip() != local:
                yield FieldError(f"{path}.localhostProfile", "Invalid value",
                                 "must not be padded with whitespace", local)
            elif not local:
                yield FieldError(f"{path}.localhostProfile", "Required value",
                                 "must be set when AppArmor type is Localhost")
            if len(local.encode()) > MAX_PROFILE_NAME:
                yield FieldError(f"{path}.localhostProfile", "Too long")
    elif ptype in (RUNTIME_DEFAULT, UNCONFINED):
        if local is not None:
            yield FieldError(f"{path}.localhostProfile", "Invalid value",
                             "can only be set when AppArmor type is Localhost", local)
    elif ptype is None or ptype == "":
        yield FieldError(f"{path}.type", "Required value",
                         "type is required when appArmorProfile is set")
    else:
        yield FieldError(f"{path}.type", "Unsupported value", value=ptype)


def _annotation_format(value: Any) -> str | None:
    """Why an annotation value is not a profile reference (ValidateAppArmorProfileFormat)."""
    if not isinstance(value, str):
        return "must be a string"
    if value in ("", ANN_RUNTIME_DEFAULT, ANN_UNCONFINED):
        return None
    if not value.startswith(ANN_LOCALHOST):
        return f"invalid AppArmor profile name: {_quote(value)}"
    return None


def _annotation_key(tpl: PodTemplate, key: str) -> str:
    return tpl.field(f"metadata.annotations[{key}]")


def validate(tpl: PodTemplate) -> list[FieldError]:
    """The AppArmor part of the API server's validation of a new object, in its order."""
    errors: list[FieldError] = []
    names = {c.name for c in containers(tpl)}
    for key, value in tpl.annotations.items():
        if not isinstance(key, str) or not key.startswith(ANNOTATION_PREFIX):
            continue
        cname = key[len(ANNOTATION_PREFIX):]
        if cname not in names:
            errors.append(FieldError(_annotation_key(tpl, key), "Invalid value",
                                     "container not found", cname))
        problem = _annotation_format(value)
        if problem:
            errors.append(FieldError(_annotation_key(tpl, key), "Invalid value", problem, value))
    errors += _validate_field(_profile_field(tpl.spec),
                              tpl.field("spec.securityContext.appArmorProfile"))
    for c in containers(tpl):
        errors += _validate_field(_profile_field(c.data),
                                  f"{c.field}.securityContext.appArmorProfile")
    if tpl.kind == "Pod":
        errors += _mismatches(tpl)
    return errors


def validate_pod_create(tpl: PodTemplate) -> list[FieldError]:
    """What the API server refuses only when a workload's controller creates the pod.

    The annotation/field match is checked on pod create (ValidatePodCreate), not on
    pod templates: the Deployment applies, its ReplicaSet then fails to create pods.
    The paths are the pod's own ("spec.containers[0]...").
    """
    if tpl.kind == "Pod":
        return []
    strip = len(tpl.prefix)
    return [FieldError(e.field[strip:], e.kind, e.detail, e.value) for e in _mismatches(tpl)]


def _mismatches(tpl: PodTemplate) -> Iterator[FieldError]:
    """Annotation and field of a container must agree (validateAppArmorAnnotationsAndFields-
    MatchOnCreate); the pod's field stands in for a container without one."""
    os_name = tpl.spec.get("os")
    if isinstance(os_name, Mapping) and os_name.get("name") == "windows":
        return
    pod_profile = _profile_field(tpl.spec)
    for c in containers(tpl):
        profile = _profile_field(c.data)
        if profile is None:
            profile = pod_profile
        if not isinstance(profile, Mapping):
            continue
        ann = tpl.annotations.get(ANNOTATION_PREFIX + c.name)
        if not isinstance(ann, str):
            continue
        path = f"{c.field}.securityContext.appArmorProfile"
        ptype = profile.get("type")
        if ptype == UNCONFINED and ann != ANN_UNCONFINED or \
                ptype == RUNTIME_DEFAULT and ann != ANN_RUNTIME_DEFAULT or \
                ptype == LOCALHOST and not ann.startswith(ANN_LOCALHOST):
            yield FieldError(f"{path}.type", "Forbidden",
                             "apparmor type in annotation and field must match")
        elif ptype == LOCALHOST and ann[len(ANN_LOCALHOST):] != profile.get("localhostProfile"):
            yield FieldError(f"{path}.localhostProfile", "Forbidden",
                             "apparmor profile in annotation and field must match")


def invalid_message(tpl: PodTemplate, errors: list[FieldError]) -> str:
    """kubectl's words for a refused object: one error, or several in brackets."""
    body = str(errors[0]) if len(errors) == 1 else "[" + ", ".join(map(str, errors)) + "]"
    return f'The {tpl.kind} "{tpl.name}" is invalid: {body}'


def warnings(tpl: PodTemplate) -> list[str]:
    """What kubectl prints as `Warning:` for the deprecated annotations (since 1.30)."""
    return [
        f"{_annotation_key(tpl, k)}: deprecated since v1.30; use the \"appArmorProfile\" "
        "field instead"
        for k in tpl.annotations if isinstance(k, str) and k.startswith(ANNOTATION_PREFIX)
    ]


# --- the kubelet -----------------------------------------------------------------------


def _from_annotation(value: Any) -> tuple[str, str | None] | None:
    if not isinstance(value, str):
        return None
    if value == ANN_RUNTIME_DEFAULT:
        return RUNTIME_DEFAULT, None
    if value == ANN_UNCONFINED:
        return UNCONFINED, None
    if value.startswith(ANN_LOCALHOST):
        return LOCALHOST, value[len(ANN_LOCALHOST):]
    return None  # not a profile reference: the kubelet ignores it


def _from_field(profile: Any) -> tuple[str, str | None] | None:
    if not isinstance(profile, Mapping):
        return None
    ptype = profile.get("type")
    local = profile.get("localhostProfile")
    return (str(ptype or ""), local if isinstance(local, str) else None)


def resolve(tpl: PodTemplate, container: str) -> Confinement:
    """The profile the kubelet asks for: container field, annotation, pod field."""
    c = next((c for c in containers(tpl) if c.name == container), None)
    if c is not None:
        got = _from_field(_profile_field(c.data))
        if got:
            return Confinement(*got, "container field",
                               f"{c.field}.securityContext.appArmorProfile")
    key = ANNOTATION_PREFIX + container
    got = _from_annotation(tpl.annotations.get(key))
    if got:
        return Confinement(*got, "annotation", _annotation_key(tpl, key))
    got = _from_field(_profile_field(tpl.spec))
    if got:
        return Confinement(*got, "pod field", tpl.field("spec.securityContext.appArmorProfile"))
    return Confinement("")


def needs_apparmor(tpl: PodTemplate) -> bool:
    """Whether the kubelet must check the host for AppArmor: some profile is not Unconfined."""
    profiles = [_profile_field(tpl.spec)] + [_profile_field(c.data) for c in containers(tpl)]
    if any(isinstance(p, Mapping) and p.get("type") != UNCONFINED for p in profiles):
        return True
    return any(
        isinstance(k, str) and k.startswith(ANNOTATION_PREFIX) and v != ANN_UNCONFINED
        for k, v in tpl.annotations.items()
    )


def admit(tpl: PodTemplate, host_apparmor: bool) -> str | None:
    """The kubelet's admission: the message it rejects the pod with, or None."""
    if not needs_apparmor(tpl):
        return None
    if not host_apparmor:
        return "Cannot enforce AppArmor: AppArmor is not enabled on the host"
    for c in containers(tpl):
        conf = resolve(tpl, c.name)
        if conf.type == LOCALHOST and not (conf.profile or "").strip():
            return (f"Cannot enforce AppArmor: invalid empty AppArmor profile name: "
                    f"{_quote(conf.profile or '')}")
    return None


# --- containerd -------------------------------------------------------------------------


def runtime_profile(conf: Confinement, *, privileged: bool, host_apparmor: bool,
                    loaded: Collection[str]) -> RuntimeOutcome:
    """The label containerd starts the container with, or its CreateContainerError."""
    if not host_apparmor:
        if conf.type not in ("", UNCONFINED):
            return RuntimeOutcome(None, "apparmor is not supported", "CreateContainerError")
        return RuntimeOutcome(None)
    if conf.type == UNCONFINED:
        return RuntimeOutcome(None)
    if conf.type == LOCALHOST:
        name = (conf.profile or "").removeprefix(ANN_LOCALHOST)
        if name and name in loaded:
            return RuntimeOutcome(name)
        detail = (f"apparmor profile not found {name}" if name
                  else "nil apparmor profile is not supported")
        return RuntimeOutcome(
            None, "failed to get container spec opts: failed to generate apparmor spec opts: "
            + detail, "CreateContainerError")
    # RuntimeDefault, or nothing asked for: containerd's default, never for privileged
    return RuntimeOutcome(None if privileged else RUNTIME_DEFAULT_PROFILE)
