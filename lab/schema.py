"""Typed records for data files: validation with field paths, and JSON Schema.

Scenario files and check parameters are frozen dataclasses declared with
`@record`. `load(cls, data)` checks plain YAML data against the type hints and
returns the record, or raises SchemaError with every problem and its field
path. `json_schema(cls)` derives the schema editors use for completion.

Why not pydantic: importing it and building the models cost about a third of
`cks-lab check`'s run time, for a handful of shapes this module covers.
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, get_args, get_origin

Loc = tuple[str | int, ...]
T = TypeVar("T")


@dataclass(frozen=True)
class Meta:
    """Constraints and docs for a field, used as `Annotated[int, Meta(ge=0)]`."""

    doc: str = ""
    ge: int | None = None
    le: int | None = None
    pattern: str | None = None
    min_items: int | None = None
    alias: str | None = None  # the key in the file, when it differs from the name


class SchemaError(Exception):
    def __init__(self, errors: list[tuple[Loc, str]]) -> None:
        super().__init__(
            "; ".join(f"{format_loc(loc)}: {msg}" if loc else msg for loc, msg in errors)
        )
        self.errors = errors

    def first(self) -> str:
        """The first error, located, and how many more: for a one-line message."""
        loc, msg = self.errors[0]
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        return (f"{format_loc(loc)}: " if loc else "") + msg + more


def format_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def record(cls: type[T] | None = None, *, extra: str | None = None) -> Any:
    """Make a frozen keyword-only dataclass; `extra` names a dict field that
    collects unknown keys (otherwise unknown keys are errors)."""

    def wrap(c: type[T]) -> type[T]:
        d = dataclass(frozen=True, kw_only=True)(c)
        d.__record_extra__ = extra  # type: ignore[attr-defined]
        return d

    return wrap(cls) if cls is not None else wrap


# A record may define `_problems(self) -> Iterable[tuple[Loc, str]]` for rules
# that span fields; the locations are relative to the record.
Problems = Callable[[Any], Iterable[tuple[Loc, str]]]

_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls, include_extras=True)
    return _HINTS[cls]


def _split(tp: Any) -> tuple[Any, Meta]:
    if get_origin(tp) is typing.Annotated:
        base, *extras = get_args(tp)
        meta = next((m for m in extras if isinstance(m, Meta)), Meta())
        return base, meta
    return tp, Meta()


def key_of(f: dataclasses.Field[Any], hints: dict[str, Any]) -> str:
    return _split(hints[f.name])[1].alias or f.name


def record_keys(cls: type) -> list[str]:
    """The keys a record accepts in a file, in declaration order."""
    hints = _hints(cls)
    extra = getattr(cls, "__record_extra__", None)
    return [key_of(f, hints) for f in dataclasses.fields(cls) if f.name != extra]


def _describe(value: Any) -> str:
    names = {str: "a string", bool: "a boolean", int: "an integer", float: "a number",
             list: "a list", dict: "a mapping", type(None): "empty"}  # fmt: skip
    return names.get(type(value), type(value).__name__)


def _type_name(tp: Any) -> str:
    base = _split(tp)[0]
    origin = get_origin(base)
    if origin is Literal:
        return "one of " + ", ".join(repr(c) for c in get_args(base))
    if origin is list:
        return "a list"
    if origin is dict or dataclasses.is_dataclass(base):
        return "a mapping"
    return {str: "a string", int: "an integer", bool: "true or false"}.get(base, str(base))


def _constrain(value: Any, meta: Meta, loc: Loc, errors: list[tuple[Loc, str]]) -> None:
    if meta.ge is not None and value < meta.ge:
        errors.append((loc, f"must be at least {meta.ge}"))
    if meta.le is not None and value > meta.le:
        errors.append((loc, f"must be at most {meta.le}"))
    if meta.pattern is not None and not re.fullmatch(meta.pattern, value):
        errors.append((loc, f"{value!r} does not match {meta.pattern}"))
    if meta.min_items is not None and len(value) < meta.min_items:
        what = "item" if meta.min_items == 1 else "items"
        errors.append((loc, f"needs at least {meta.min_items} {what}"))


_MISSING = object()


def _convert(tp: Any, value: Any, loc: Loc, errors: list[tuple[Loc, str]]) -> Any:
    base, meta = _split(tp)
    n = len(errors)
    out = _convert_base(base, value, loc, errors)
    if len(errors) == n and out is not None:
        _constrain(out, meta, loc, errors)
    return out


def _convert_base(tp: Any, value: Any, loc: Loc, errors: list[tuple[Loc, str]]) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        choices = get_args(tp)
        # True == 1 in Python: a choice only counts if its type is the value's.
        if not any(value == c and type(value) is type(c) for c in choices):
            errors.append((loc, "must be one of " + ", ".join(repr(c) for c in choices)))
        return value
    if origin in (types.UnionType, typing.Union):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return _convert(options[0], value, loc, errors)
        for option in options:
            trial: list[tuple[Loc, str]] = []
            out = _convert(option, value, loc, trial)
            if not trial:
                return out
        wanted = " or ".join(_type_name(o) for o in options)
        errors.append((loc, f"must be {wanted}, not {_describe(value)}"))
        return None
    if origin is list:
        if not isinstance(value, list):
            errors.append((loc, f"must be a list, not {_describe(value)}"))
            return []
        (item,) = get_args(tp)
        return [_convert(item, v, (*loc, i), errors) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            errors.append((loc, f"must be a mapping, not {_describe(value)}"))
            return {}
        _, item = get_args(tp)
        return {str(k): _convert(item, v, (*loc, str(k)), errors) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return _load(tp, value, loc, errors)  # type: ignore[arg-type]
    if tp is bool:
        if not isinstance(value, bool):
            errors.append((loc, f"must be true or false, not {_describe(value)}"))
        return value
    if tp is int:
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append((loc, f"must be an integer, not {_describe(value)}"))
            return None
        return value
    if tp is str:
        if not isinstance(value, str):
            errors.append((loc, f"must be a string, not {_describe(value)}"))
            return None
        return value
    raise TypeError(f"schema: unsupported type {tp!r}")  # a bug in a record, not in data


def _load(cls: type[T], data: Any, loc: Loc, errors: list[tuple[Loc, str]]) -> T | None:
    if not isinstance(data, dict):
        errors.append((loc, f"must be a mapping, not {_describe(data)}"))
        return None
    hints = _hints(cls)
    extra_field = getattr(cls, "__record_extra__", None)
    n = len(errors)
    values: dict[str, Any] = {}
    known = set()
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name == extra_field:
            continue
        key = key_of(f, hints)
        known.add(key)
        raw = data.get(key, _MISSING)
        if raw is _MISSING:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                errors.append(((*loc, key), "required field is missing"))
            continue
        values[f.name] = _convert(hints[f.name], raw, (*loc, key), errors)
    unknown = {k: v for k, v in data.items() if k not in known}
    if extra_field:
        values[extra_field] = unknown
    else:
        for k in unknown:
            errors.append(((*loc, str(k)), "unknown field"))
    if len(errors) > n:
        return None
    obj = cls(**values)
    problems: Problems | None = getattr(cls, "_problems", None)
    if problems is not None:
        errors.extend(((*loc, *sub), msg) for sub, msg in problems(obj))
    return obj if len(errors) == n else None


def load(cls: type[T], data: Any) -> T:
    """`data` (plain YAML/JSON values) as a `cls` record, or SchemaError."""
    errors: list[tuple[Loc, str]] = []
    obj = _load(cls, data, (), errors)
    if errors or obj is None:
        raise SchemaError(errors or [((), "invalid")])
    return obj


# --- JSON Schema ---------------------------------------------------------------


def json_schema(cls: type, title: str | None = None) -> dict[str, Any]:
    defs: dict[str, Any] = {}
    _schema(cls, defs)
    name = cls.__name__
    # The document itself, not a reference to it; kept in $defs too when it
    # refers to itself.
    root = defs[name]
    if f'"#/$defs/{name}"' not in json.dumps(defs):
        del defs[name]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": title or cls.__name__, **root, "$defs": defs}  # fmt: skip


def _schema(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    base, meta = _split(tp)
    out = _schema_base(base, defs)
    if meta.doc:
        out["description"] = meta.doc
    for key, name in (("ge", "minimum"), ("le", "maximum"), ("pattern", "pattern"),
                      ("min_items", "minItems")):  # fmt: skip
        if getattr(meta, key) is not None:
            out[name] = getattr(meta, key)
    return out


def _schema_base(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    origin = get_origin(tp)
    if tp is Any:
        return {}
    if origin is Literal:
        return {"enum": list(get_args(tp))}
    if origin in (types.UnionType, typing.Union):
        return {"anyOf": [_schema(a, defs) for a in get_args(tp)]}
    if origin is list:
        return {"type": "array", "items": _schema(get_args(tp)[0], defs)}
    if origin is dict:
        return {"type": "object", "additionalProperties": _schema(get_args(tp)[1], defs)}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        name = tp.__name__
        if name not in defs:
            defs[name] = {}  # placeholder against recursion
            hints = _hints(tp)
            extra = getattr(tp, "__record_extra__", None)
            props, required = {}, []
            for f in dataclasses.fields(tp):
                if f.name == extra:
                    continue
                key = key_of(f, hints)
                props[key] = _schema(hints[f.name], defs)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    required.append(key)
                elif f.default is not dataclasses.MISSING and f.default is not None:
                    props[key]["default"] = f.default
            defs[name] = {"type": "object", "properties": props, "required": required,
                          "additionalProperties": bool(extra)}  # fmt: skip
            if tp.__doc__ and not tp.__doc__.startswith(f"{name}("):
                defs[name]["description"] = tp.__doc__.strip()
        return {"$ref": f"#/$defs/{name}"}
    if tp is type(None):
        return {"type": "null"}
    return {"type": {bool: "boolean", int: "integer", str: "string"}[tp]}
