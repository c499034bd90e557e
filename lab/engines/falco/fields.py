"""The field catalog and field resolution, as libs' filtercheck list does it.

`resolve(FieldRef)` finds the field a condition names, checks its argument with
upstream's rules and wording, and says which event keys hold its value.

Event keys (events are Mappings keyed like `sysdig -j -p '*%f1 %f2'` prints them):

- plain fields read their own name: "proc.name", "fd.sip".
- `evt.arg.NAME` reads "evt.arg.NAME"; `evt.arg[N]` reads "evt.arg[N]" (libs only
  takes a number between the brackets); `evt.rawarg.NAME` reads "evt.rawarg.NAME".
- ancestors: `proc.aname[0]` is "proc.name", `proc.aname[1]` is "proc.pname" (or
  "proc.aname[1]"), `proc.aname[N]` is "proc.aname[N]"; the same for proc.apid,
  proc.aexe, proc.aexepath, proc.acmdline. Without an index they mean "any
  ancestor": the parent, then "proc.aname[2]", "[3]" ... up to the first missing one.
- keyed fields use brackets: "container.label[app]" (also read as "container.label.app"),
  "k8s.pod.label[app]", "proc.env[HOME]", "fd.types[0]".
- fd.ip / fd.port / fd.proto / fd.net read the client and the server keys (fd.cip and
  fd.sip ...); fd.snet reads fd.sip (fd.cnet fd.cip, fd.lnet fd.lip, fd.rnet fd.rip).
- evt.type.is.NAME is derived from "evt.type".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from lab.engines.falco.condition.ast import FieldRef
from lab.engines.falco.condition.event_table import (
    EVENT_NAMES,
    PARAM_TYPES,
    longest_param_prefix,
)
from lab.engines.falco.condition.values import parse_int
from lab.engines.falco.errors import ConditionError
from lab.engines.falco.fields_catalog import CLASSES

_FLAG_NAMES = {
    "F": "filter_only", "P": "print_only", "H": "hidden", "R": "arg_required",
    "A": "arg_allowed", "I": "arg_index", "K": "arg_key", "L": "is_list",
    "D": "deprecated", "T": "no_transformer", "N": "no_rhs",
}


@dataclass(frozen=True)
class FieldInfo:
    """One catalog entry, as `falco --list` shows it."""

    name: str
    type: str  # libs' type name: CHARBUF, UINT64, BOOL, IPADDR ...
    desc: str
    field_class: str
    class_index: int  # position of the field class in the list
    plugin: bool  # provided by a plugin (container.*, k8s.*)
    flags: frozenset[str]

    @property
    def arg_required(self) -> bool:
        return "arg_required" in self.flags

    @property
    def arg_allowed(self) -> bool:
        return "arg_allowed" in self.flags or "arg_required" in self.flags

    @property
    def arg_kind(self) -> Literal["none", "index", "key", "index or key", "name"]:
        if not self.arg_allowed:
            return "none"
        index, key = "arg_index" in self.flags, "arg_key" in self.flags
        if index and key:
            return "index or key"
        if index:
            return "index"
        if key:
            return "key"
        return "name"

    @property
    def is_list(self) -> bool:
        return "is_list" in self.flags

    @property
    def tags(self) -> tuple[str, ...]:
        """Tags as `falco --list` prints them before a description."""
        order = (("filter_only", "FILTER_ONLY"), ("deprecated", "EPF_DEPRECATED"),
                 ("no_rhs", "EPF_NO_RHS"), ("no_transformer", "EPF_NO_TRANSFORMER"),
                 ("is_list", "EPF_IS_LIST"))
        tags = [t for f, t in order if f in self.flags]
        if self.arg_required:
            tags.append("ARG_REQUIRED")
        elif self.arg_allowed:
            tags.append("ARG_ALLOWED")
        return tuple(sorted(tags))


Mode = Literal["first", "any", "chain", "type_is", "around"]


@dataclass(frozen=True)
class ResolvedField:
    """A field of a condition, checked, with the event keys its value comes from."""

    name: str  # the catalog name: "proc.aname", "evt.arg", "k8s.pod.label"
    arg: str | None  # the normalised argument: "2", "flags", "app"; None without one
    type: str
    is_list: bool
    info: FieldInfo
    text: str  # the field as written, e.g. "proc.aname[2]": the output_fields key
    # groups of alternative keys (first available value wins within a group)
    keys: tuple[tuple[str, ...], ...]
    # first: one value (keys[0]); any: true when any group's value passes;
    # chain: like any, stopping at the first missing group (ancestors);
    # type_is: 1/0 from evt.type; around: evt.around's own test on evt.rawtime
    mode: Mode = "first"

    @property
    def key(self) -> str:
        """The canonical event key of the value."""
        return self.keys[0][0]


def _parse_catalog() -> tuple[list[FieldInfo], list[list[FieldInfo]]]:
    flat: list[FieldInfo] = []
    by_class: list[list[FieldInfo]] = []
    for idx, cls in enumerate(CLASSES):
        fields = []
        for line in cls.table.strip().splitlines():
            name, ftype, flags, desc = line.split(" ", 3)
            info = FieldInfo(
                name=name, type=ftype, desc=desc, field_class=cls.name, class_index=idx,
                plugin=cls.shortdesc == "plugin",
                flags=frozenset(_FLAG_NAMES[c] for c in flags if c != "-"),
            )
            fields.append(info)
            flat.append(info)
        by_class.append(fields)
    return flat, by_class


_ALL, _BY_CLASS = _parse_catalog()
_BY_NAME = {f.name: f for f in _ALL}

# ancestor fields: (own key, parent key) of level 0 and 1
_ANCESTORS = {
    "proc.aname": ("proc.name", "proc.pname"),
    "proc.apid": ("proc.pid", "proc.ppid"),
    "proc.aexe": ("proc.exe", "proc.pexe"),
    "proc.aexepath": ("proc.exepath", "proc.pexepath"),
    "proc.acmdline": ("proc.cmdline", "proc.pcmdline"),
    "proc.aargs": ("proc.args", None),
    "proc.aenv": ("proc.env", None),
}
MAX_ANCESTORS = 32  # deepest "proc.aname[N]" key read for "any ancestor"

_EITHER = {  # client-or-server fields and the single-side networks
    "fd.ip": ("fd.cip", "fd.sip"), "fd.port": ("fd.cport", "fd.sport"),
    "fd.proto": ("fd.cport", "fd.sport"), "fd.net": ("fd.cip", "fd.sip"),
    "fd.cnet": ("fd.cip",), "fd.snet": ("fd.sip",), "fd.lnet": ("fd.lip",),
    "fd.rnet": ("fd.rip",),
}

_SCANF_INT32 = re.compile(r"[ \t\n\r\f\v]*([+-]?[0-9]+)\Z")


def catalog() -> Iterator[FieldInfo]:
    """Every field, in `falco --list` order (class by class)."""
    return iter(_ALL)


def field_classes() -> list[tuple[str, str, str, list[FieldInfo]]]:
    """(class name, short description, description, fields) in listing order."""
    return [(c.name, c.shortdesc, c.desc, _BY_CLASS[i]) for i, c in enumerate(CLASSES)]


def lookup(name: str) -> FieldInfo | None:
    """The catalog entry of an exact field name (no argument)."""
    return _BY_NAME.get(name)


def _nonexistent(text: str, pos: int) -> ConditionError:
    return ConditionError(f"filter_check called with nonexistent field {text}", pos)


def _roots(fields: list[FieldInfo]) -> tuple[str, ...]:
    """What every field name of a class starts with: "proc." for proc.name ... (a name
    without a dot stands for itself), to rule a class out with one startswith."""
    return tuple({f.name.split(".", 1)[0] + "." if "." in f.name else f.name for f in fields})


_CLASS_ROOTS = [_roots(fields) for fields in _BY_CLASS]


def _longest_in_class(text: str, class_index: int) -> FieldInfo | None:
    if not text.startswith(_CLASS_ROOTS[class_index]):
        return None  # no name of the class is a prefix of text
    best: FieldInfo | None = None
    for f in _BY_CLASS[class_index]:
        if text.startswith(f.name) and (best is None or len(f.name) > len(best.name)):
            best = f
    return best


def _int32(text: str) -> int | None:
    """libs' sinsp_numparser::parsed32, or None when it would throw."""
    m = _SCANF_INT32.match(text)
    return int(m.group(1)) if m else None


def _plain(info: FieldInfo, text: str) -> ResolvedField:
    return ResolvedField(info.name, None, info.type, info.is_list, info, text, ((info.name,),))


def resolve(ref: FieldRef, *, display: bool = False) -> ResolvedField:
    """Resolve a field reference; ConditionError with libs' wording when it is wrong.

    `display=True` resolves for an output format, where filter-only fields are refused.
    """
    text = ref.name if ref.arg is None else f"{ref.name}[{ref.arg}]"
    field = _resolve(text, ref.pos)
    if display and "filter_only" in field.info.flags:
        raise ConditionError(f"{text} is filter only and cannot be used as a display field",
                             ref.pos)
    return field


@lru_cache(maxsize=4096)
def is_field(text: str) -> bool:
    """Whether `text` (a field as written: "proc.aname[2]", "evt.arg.flags") exists."""
    try:
        _resolve(text, 0)
    except ConditionError:
        return False
    return True


def _resolve(text: str, pos: int) -> ResolvedField:
    found = _resolve_text(text)
    if isinstance(found, str):
        raise ConditionError(found, pos)
    return found


@lru_cache(maxsize=4096)
def _resolve_text(text: str) -> ResolvedField | str:
    """The field `text` names, or libs' message refusing it (the position is the
    caller's). Cached: a ruleset names the same few fields hundreds of times."""
    try:
        return _resolve_uncached(text, 0)
    except ConditionError as err:
        return err.message


def _resolve_uncached(text: str, pos: int) -> ResolvedField:
    for idx, cls in enumerate(CLASSES):
        handled = _resolve_in_class(idx, cls.shortdesc == "plugin", text, pos)
        if handled is not None:
            return handled
    raise _nonexistent(text, pos)


def _resolve_in_class(idx: int, plugin: bool, text: str, pos: int) -> ResolvedField | None:
    """The field if this class claims `text`; raises when it claims it but refuses it."""
    cls_name = CLASSES[idx].name
    if cls_name == "evt" and CLASSES[idx].shortdesc == "Syscall events only":
        special = _resolve_event_special(text, pos)
        if special is not None:
            return special
    if cls_name == "process":
        special = _resolve_process_special(text, pos)
        if special is not None:
            return special
    if cls_name == "fd" and text.startswith("fd.types"):
        return _resolve_fd_types(text, pos)
    info = _longest_in_class(text, idx)
    if info is None:
        return None
    if plugin:
        return _resolve_plugin(info, text, pos)
    if text != info.name:
        raise _nonexistent(text, pos)
    if info.name in _EITHER:
        keys = tuple((k,) for k in _EITHER[info.name])
        mode: Mode = "any" if len(keys) > 1 else "first"
        return ResolvedField(info.name, None, info.type, False, info, text, keys, mode)
    return _plain(info, text)


def _resolve_event_special(text: str, pos: int) -> ResolvedField | None:
    if text.startswith("evt.arg") and not text.startswith("evt.args"):
        return _resolve_evt_arg("evt.arg", text, pos)
    if text.startswith("evt.rawarg"):
        return _resolve_evt_arg("evt.rawarg", text, pos)
    if text.startswith("evt.around"):
        info = _BY_NAME["evt.around"]
        rest = text[len("evt.around"):]
        if rest.startswith("."):
            raise ConditionError("wrong syntax for evt.around", pos)
        if not rest.startswith("["):
            raise ConditionError(f"filter syntax error: {text}", pos)
        if not rest.endswith("]"):
            raise _nonexistent(text, pos)
        try:
            when = parse_int(rest[1:-1], "UINT64")
        except ValueError as err:
            raise ConditionError(str(err), pos) from None
        return ResolvedField("evt.around", str(when), "UINT64", False, info, text,
                             (("evt.rawtime",),), "around")
    if text.startswith("evt.abspath"):
        info = _BY_NAME["evt.abspath"]
        for suffix in (".src", ".dst", ""):
            if text.startswith("evt.abspath" + suffix):
                if text != "evt.abspath" + suffix:
                    raise _nonexistent(text, pos)
                return ResolvedField("evt.abspath", suffix[1:] or None, "CHARBUF", False, info,
                                     text, ((text,),))
    if text.startswith("evt.type.is"):
        info = _BY_NAME["evt.type.is"]
        rest = text[len("evt.type.is"):]
        if not rest.startswith("."):
            raise ConditionError(f"filter syntax error: {text}", pos)
        target = rest[1:]
        if target not in EVENT_NAMES and _int32(target) is None:
            raise _nonexistent(text, pos)
        return ResolvedField("evt.type.is", target, "UINT32", False, info, text,
                             (("evt.type",),), "type_is")
    return None


def _resolve_evt_arg(base: str, text: str, pos: int) -> ResolvedField:
    info = _BY_NAME[base]
    rest = text[len(base):]
    if rest.startswith("["):
        if base == "evt.rawarg":
            raise ConditionError("evt.arg fields must be expressed explicitly", pos)
        close = rest.find("]")
        inner = rest[1:close] if close != -1 else rest[1:]
        index = _int32(inner)
        if index is None:
            raise ConditionError(f"{inner} is not a valid number", pos)
        if close != len(rest) - 1:
            raise _nonexistent(text, pos)
        return ResolvedField(base, str(index), info.type, False, info, text,
                             ((f"{base}[{index}]",),))
    if rest.startswith("."):
        param = longest_param_prefix(rest[1:])
        if param is None:
            raise ConditionError(f"unknown event argument {rest[1:]}", pos)
        if rest[1:] != param:
            raise _nonexistent(text, pos)
        ftype = PARAM_TYPES[param] if base == "evt.rawarg" else info.type
        return ResolvedField(base, param, ftype, False, info, text, ((f"{base}.{param}",),))
    raise ConditionError(f"filter syntax error: {text}", pos)


def _resolve_process_special(text: str, pos: int) -> ResolvedField | None:
    for base in ("proc.apid", "proc.aname", "proc.aexepath", "proc.aexe", "proc.acmdline",
                 "proc.aargs", "proc.args", "proc.aenv", "proc.env"):
        if not text.startswith(base):
            continue
        if base == "proc.args" and text.startswith("proc.args") and text != "proc.args" \
                and not text.startswith("proc.args["):
            return None  # e.g. "proc.argsx": the plain lookup reports it
        return _resolve_indexed(_BY_NAME[base], text, pos)
    if text.startswith("thread.cgroup") and not text.startswith("thread.cgroups"):
        info = _BY_NAME["thread.cgroup"]
        rest = text[len("thread.cgroup"):]
        if not rest.startswith("."):
            raise ConditionError(f"filter syntax error: {text}", pos)
        m = re.match(r"[A-Za-z_]*", rest[1:])
        subsystem = m.group(0) if m else ""
        if rest[1:] != subsystem:
            raise _nonexistent(text, pos)
        return ResolvedField("thread.cgroup", subsystem, "CHARBUF", False, info, text,
                             ((text,),))
    return None


def _resolve_indexed(info: FieldInfo, text: str, pos: int) -> ResolvedField:
    """proc.aname[N], proc.apid ..., proc.args[N], proc.env[NAME], proc.aenv[...]."""
    base = info.name
    rest = text[len(base):]
    if rest == "":
        if base in _ANCESTORS:
            return _any_ancestor(info, text)
        return _plain(info, text)
    close = rest.find("]")
    if not rest.startswith("[") or close != len(rest) - 1:
        raise _nonexistent(text, pos)
    inner = rest[1:-1]
    keyed = base in ("proc.env", "proc.aenv")
    if keyed and not (inner.isdigit() and inner.isascii()):
        key = f"{base}[{inner}]"
        return ResolvedField(base, inner, info.type, False, info, text, ((key,),))
    index = _int32(inner)
    if index is None:
        raise _nonexistent(text, pos)
    if index < 0 and base in _ANCESTORS:
        return _any_ancestor(info, text)
    if base in _ANCESTORS and index in (0, 1):
        own = _ANCESTORS[base][index]
        group = (own, f"{base}[{index}]") if own else (f"{base}[{index}]",)
        return ResolvedField(base, str(index), info.type, False, info, text, (group,))
    return ResolvedField(base, str(index), info.type, False, info, text,
                         ((f"{base}[{index}]",),))


def _any_ancestor(info: FieldInfo, text: str) -> ResolvedField:
    base = info.name
    parent = _ANCESTORS[base][1]
    first = (parent, f"{base}[1]") if parent else (f"{base}[1]",)
    groups = (first,) + tuple((f"{base}[{n}]",) for n in range(2, MAX_ANCESTORS + 1))
    return ResolvedField(base, None, info.type, False, info, text, groups, "chain")


def _resolve_fd_types(text: str, pos: int) -> ResolvedField:
    info = _BY_NAME["fd.types"]
    rest = text[len("fd.types"):]
    if rest == "":
        return ResolvedField("fd.types", None, "CHARBUF", True, info, text, (("fd.types",),))
    if not rest.startswith("["):
        raise _nonexistent(text, pos)
    inner = rest[1:rest.find("]")] if "]" in rest else rest[1:]
    try:
        fd = parse_int(inner, "INT64")
    except ValueError as err:
        raise ConditionError(str(err), pos) from None
    if not rest.endswith("]") or rest.find("]") != len(rest) - 1:
        raise _nonexistent(text, pos)
    return ResolvedField("fd.types", str(fd), "CHARBUF", True, info, text,
                         ((f"fd.types[{fd}]",),))


def _resolve_plugin(info: FieldInfo, text: str, pos: int) -> ResolvedField:
    """Plugin fields: `field[arg]`, and `field.KEY` for key-only arguments."""
    fname = info.name
    rest = text[len(fname):]
    keys_only = "arg_key" in info.flags and "arg_index" not in info.flags
    value: str | None = None
    if rest.startswith("["):
        end = rest.find("]")
        if len(rest) == 1:
            raise ConditionError(
                f"filter '{text}': {fname} terminates with incomplete argument brackets", pos)
        if end == -1:
            raise ConditionError(f"filter '{text}': {fname} has unbalanced argument brackets",
                                 pos)
        if end != len(rest) - 1:
            raise _nonexistent(text, pos)
        value = rest[1:end]
        if not info.arg_allowed:
            raise ConditionError(
                f"filter '{text}': {fname} does not allow nor require an argument but one is "
                f"provided: {value}", pos)
        if "arg_index" in info.flags and not ("arg_key" in info.flags and not value.isdigit()):
            _check_plugin_index(value, text, fname, pos)
    elif rest.startswith(".") and keys_only and len(rest) > 1:
        value = rest[1:]
    elif rest:
        raise _nonexistent(text, pos)
    if value is None and info.arg_required:
        raise ConditionError(f"filter '{text}': {fname} requires an argument but none provided",
                             pos)
    if value is None:
        return _plain(info, text)
    keys = (f"{fname}[{value}]", f"{fname}.{value}") if keys_only else (f"{fname}[{value}]",)
    return ResolvedField(fname, value, info.type, info.is_list, info, text, (keys,))


def _check_plugin_index(value: str, text: str, fname: str, pos: int) -> None:
    problem = ""
    if value == "" or (len(value) > 1 and value[0] == "0"):
        problem = " has an invalid index argument starting with 0: "
    if not all(c.isdigit() and c.isascii() for c in value):
        problem = " has an invalid index argument not composed only by digits: "
    elif value and int(value) >= 1 << 64:
        problem = " has an invalid index argument not representable on 64 bit: "
    if problem:
        raise ConditionError(f"filter {text} {fname}{problem}{value}", pos)
