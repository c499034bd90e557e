"""Operands of a condition compiled once: a field (with its transformers) and how
its value is read from an event, normalised to its type and transformed.

Used by the filter compiler for both sides of a check, and by output formats.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lab.engines.falco.condition.ast import FieldRef, Operand, Transformer
from lab.engines.falco.condition.transformers import TRANSFORMERS, transform_type, value_function
from lab.engines.falco.condition.types import event_normalizer, split_list
from lab.engines.falco.errors import ConditionError
from lab.engines.falco.fields import ResolvedField, resolve

Event = Mapping[str, Any]


@dataclass
class CompiledOperand:
    """A resolved field, the transformers applied to it and the resulting type."""

    field: ResolvedField
    ftype: str  # after transformers
    is_list: bool  # after transformers
    pos: int  # position of the innermost field: where libs reports errors
    transforms: list[Callable[[Any], Any]]
    text: str


def compile_operand_ast(op: Operand, display: bool = False) -> CompiledOperand:
    """Resolve the field and check each transformer as libs' add_transformer does."""
    if isinstance(op, FieldRef):
        field = resolve(op, display=display)
        return CompiledOperand(field, field.type, field.is_list, op.pos, [], field.text)
    if not isinstance(op, Transformer):
        raise ConditionError("filter error: missing field in left-hand of check", _pos(op))
    inner = compile_operand_ast(op.arg, display)
    text = f"{op.name}({inner.text})"
    if op.name == "val":  # a syntactic construct: the identity
        inner.text = text
        return inner
    if op.name not in TRANSFORMERS:
        raise ConditionError(f"unsupported field transformer '{op.name}'", inner.pos)
    name = inner.field.name
    if "no_transformer" in inner.field.info.flags:
        raise ConditionError(f"field '{name}' does not support transformers", inner.pos)
    result = transform_type(op.name, inner.ftype, inner.is_list)
    if result is None:
        raise ConditionError(
            f"can't add field transformer: type '{inner.ftype}' is not supported by "
            f"'{op.name}' transformer applied on {'list ' if inner.is_list else ''}field "
            f"'{name}'", inner.pos)
    inner.transforms.append(value_function(op.name, inner.is_list))
    inner.ftype, inner.is_list = result
    inner.text = text
    return inner


def _pos(node: object) -> int:
    return int(getattr(node, "pos", 0))


def _raw_getter(field: ResolvedField) -> Callable[[Event], Any]:
    """The field's first available raw value (mode "first")."""
    group = field.keys[0]
    if len(group) == 1:
        key = group[0]
        return lambda ev: ev.get(key)

    def get(ev: Event) -> Any:
        for k in group:
            value = ev.get(k)
            if value is not None:
                return value
        return None

    return get


def _normalizer(field: ResolvedField) -> Callable[[Any], Any]:
    norm = event_normalizer(field.type)
    if not field.is_list:
        return norm

    def items(raw: Any) -> Any:
        values = split_list(raw)
        if values is None:
            return None
        out = [norm(v) for v in values if v is not None]
        return out if len(out) == len(values) else None

    return items


def value_getter(operand: CompiledOperand) -> Callable[[Event], Any]:
    """Extracted, normalised and transformed value of a "first"/"type_is" operand."""
    field = operand.field
    if field.mode == "type_is":
        target = field.arg

        def type_is(ev: Event) -> Any:
            etype = ev.get("evt.type")
            return None if etype is None else int(etype == target)

        base: Callable[[Event], Any] = type_is
    else:
        raw = _raw_getter(field)
        norm = _normalizer(field)

        def base(ev: Event) -> Any:
            value = raw(ev)
            return None if value is None else norm(value)

    transforms = list(operand.transforms)
    if not transforms:
        return base

    def transformed(ev: Event) -> Any:
        value = base(ev)
        for t in transforms:
            if value is None:
                return None
            value = t(value)
        return value

    return transformed
