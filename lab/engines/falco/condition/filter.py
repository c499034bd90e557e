"""Compile a condition AST to a predicate over events, as libs' sinsp_filter_compiler.

`compile_filter(expr)` checks every field, operator and value where libs' compiler
does, with its wording and the position libs reports, and returns a Filter whose
`match(event)` is a tree of closures built once (no per-event parsing, patterns
precompiled, set lookups for `in`).

Evaluation follows libs: a check on a field the event does not have is false —
`!=` and `not ... in` included — and only an enclosing `not` makes it true.
Events are Mappings keyed by field name (see lab.engines.falco.fields for the keys
of fields with arguments); None or absent means "not available".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, NamedTuple

from lab.engines.falco.condition import operators as ops
from lab.engines.falco.condition.ast import (
    And,
    BinaryCheck,
    Expr,
    FieldRef,
    FieldValue,
    Identifier,
    ListValue,
    Not,
    Operand,
    Or,
    UnaryCheck,
    Value,
)
from lab.engines.falco.condition.evttypes import evttypes as _evttypes
from lab.engines.falco.condition.evttypes import is_known_event_type
from lab.engines.falco.condition.operands import (
    CompiledOperand,
    compile_operand_ast,
    value_getter,
)
from lab.engines.falco.condition.patterns import compile_glob
from lab.engines.falco.condition.transformers import TRANSFORMERS
from lab.engines.falco.condition.types import (
    INT_WIDTHS,
    event_normalizer,
    kind_of,
    to_output,
)
from lab.engines.falco.condition.types import render as _render
from lab.engines.falco.condition.values import parse_int, parse_value, unhex
from lab.engines.falco.errors import ConditionError
from lab.engines.falco.fields import ResolvedField, is_field

Event = Mapping[str, Any]
Predicate = Callable[[Event], bool]

__all__ = ["Filter", "FilterWarning", "compile_filter", "compile_operand", "operand_type",
           "output_key", "render"]


class FilterWarning(NamedTuple):
    """A compiler warning (Falco reports them as LOAD_COMPILE_CONDITION warnings)."""

    message: str
    pos: int


class Filter:
    """A compiled condition. `match(event)` tells whether the event satisfies it."""

    __slots__ = ("match", "evttypes", "warnings")

    def __init__(self, match: Predicate, evttypes: frozenset[str] | None,
                 warnings: tuple[FilterWarning, ...]) -> None:
        self.match: Predicate = match
        # event types the condition can match; None: every type (as libs' event codes)
        self.evttypes = evttypes
        self.warnings = warnings


# ----------------------------------------------------------------------------- checks

def _check_first(operand: CompiledOperand, cmp: Callable[[Any], bool]) -> Predicate:
    field = operand.field
    if operand.transforms or field.is_list or field.mode != "first" or len(field.keys[0]) > 1:
        get = value_getter(operand)

        def check(ev: Event) -> bool:
            value = get(ev)
            return value is not None and cmp(value)

        return check
    key = field.key
    norm = event_normalizer(field.type)
    kind = kind_of(field.type)
    if kind == "str":
        def check_str(ev: Event) -> bool:
            x = ev.get(key)
            if x.__class__ is str:
                return cmp(x)
            if x is None:
                return False
            x = norm(x)
            return x is not None and cmp(x)

        return check_str
    if kind == "int":
        bits, signed = INT_WIDTHS[field.type]
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)

        def check_int(ev: Event) -> bool:
            x = ev.get(key)
            if x.__class__ is int and lo <= x <= hi:
                return cmp(x)
            if x is None:
                return False
            x = norm(x)
            return x is not None and cmp(x)

        return check_int

    if kind == "bool":
        def check_bool(ev: Event) -> bool:
            x = ev.get(key)
            if x is True or x is False:
                return cmp(x)
            if x is None:
                return False
            x = norm(x)
            return x is not None and cmp(x)

        return check_bool

    def check_any_kind(ev: Event) -> bool:
        x = ev.get(key)
        if x is None:
            return False
        x = norm(x)
        return x is not None and cmp(x)

    return check_any_kind


def _check_groups(field: ResolvedField, cmp: Callable[[Any], bool]) -> Predicate:
    """fd.ip-style "either" fields and "any ancestor" chains."""
    groups = field.keys
    chain = field.mode == "chain"
    norm = event_normalizer(field.type)

    def check(ev: Event) -> bool:
        for group in groups:
            x = None
            for k in group:
                x = ev.get(k)
                if x is not None:
                    break
            if x is None:
                if chain:
                    return False
                continue
            x = norm(x)
            if x is not None and cmp(x):
                return True
        return False

    return check


def _check(operand: CompiledOperand, cmp: Callable[[Any], bool]) -> Predicate:
    if operand.field.mode in ("any", "chain"):
        return _check_groups(operand.field, cmp)
    return _check_first(operand, cmp)


def _fast_string_check(operand: CompiledOperand, op: str, values: list[Any]) -> Predicate | None:
    """Specialised closures for `=`, `!=` and `in` on plain string fields."""
    field = operand.field
    if operand.transforms or field.mode != "first" or len(field.keys[0]) > 1 \
            or kind_of(field.type) != "str" or field.is_list or not values:
        return None
    key = field.key
    norm = event_normalizer(field.type)
    if op in ("=", "=="):
        v = values[0]

        def eq(ev: Event) -> bool:
            x = ev.get(key)
            if x.__class__ is str:
                return x == v
            return x is not None and norm(x) == v

        return eq
    if op == "!=":
        v = values[0]

        def ne(ev: Event) -> bool:
            x = ev.get(key)
            if x.__class__ is str:
                return x != v
            if x is None:
                return False
            x = norm(x)
            return x is not None and x != v

        return ne
    if op in ("in", "intersects"):
        members = frozenset(values)

        def member(ev: Event) -> bool:
            x = ev.get(key)
            if x.__class__ is str:
                return x in members
            if x is None:
                return False
            return norm(x) in members

        return member
    return None


# ----------------------------------------------------------------------------- compiler

class _Compiler:
    def __init__(self) -> None:
        self.warnings: list[FilterWarning] = []

    def compile(self, expr: Expr) -> Predicate:
        if isinstance(expr, And):
            return _all([self.compile(c) for c in _flatten(expr, And)])
        if isinstance(expr, Or):
            return _any([self.compile(c) for c in _flatten(expr, Or)])
        if isinstance(expr, Not):
            child = self.compile(expr.child)
            return lambda ev: not child(ev)
        if isinstance(expr, Identifier):
            raise ConditionError(f"Undefined macro '{expr.name}' used in filter.", expr.pos)
        if isinstance(expr, UnaryCheck):
            return self.unary(expr)
        if isinstance(expr, BinaryCheck):
            return self.binary(expr)
        raise ConditionError("filter error: unexpected expression", int(getattr(expr, "pos", 0)))

    def unary(self, expr: UnaryCheck) -> Predicate:
        left = compile_operand_ast(expr.left)
        if expr.op != "exists":
            raise ConditionError(f"unrecognized filter comparison operator '{expr.op}'",
                                 left.pos)
        return _check(left, lambda x: True)

    def binary(self, expr: BinaryCheck) -> Predicate:
        left = compile_operand_ast(expr.left)
        parts = expr.op.split()
        base = parts[0] if parts else expr.op
        mod = parts[1] if len(parts) == 2 else None
        if base not in ops.BINARY_OPS or len(parts) > 2 \
                or (mod is not None and (mod not in ops.MODIFIERS
                                         or base not in ops.MODIFIABLE_OPS)):
            raise ConditionError(f"unrecognized filter comparison operator '{expr.op}'",
                                 left.pos)
        err = ops.comparable_error(base, left.ftype, left.is_list)
        if err:
            raise ConditionError(f"filter error: {err}", left.pos)
        if isinstance(expr.right, FieldValue):
            return self.field_comparison(left, base, expr.right)
        return self.value_comparison(left, base, mod, expr.right)

    # -- constant right-hand side

    def value_comparison(self, left: CompiledOperand, op: str, mod: str | None,
                         right: Value | ListValue) -> Predicate:
        texts = [right.text] if isinstance(right, Value) else [v.text for v in right.items]
        pos = right.pos
        values = [self.parse_one(left, op, text, pos) for text in texts]
        field = left.field
        if field.mode == "around":
            return _around_check(int(field.arg or 0), values[0] if values else 0)
        kind = kind_of(left.ftype)
        if mod is not None:
            cmp = ops.with_modifier(mod, [ops.scalar_compare(op, kind, [v]) for v in values])
            return _check(left, cmp)
        if left.is_list:
            return _check(left, ops.list_compare(op, kind, values))
        fast = _fast_string_check(left, op, values)
        if fast is not None:
            return fast
        return _check(left, ops.scalar_compare(op, kind, values))

    def parse_one(self, left: CompiledOperand, op: str, text: str, pos: int) -> Any:
        self.add_warnings(op, pos, text)
        field = left.field
        try:
            if op in ("bcontains", "bstartswith"):
                return unhex(text)
            if field.mode == "around":
                if ops.op_name(op) != "=":
                    raise ValueError("evt.around supports only '=' comparison operator")
                return parse_int(text, "UINT64")
            value = parse_value(text, left.ftype)
        except ValueError as err:
            raise ConditionError(str(err), pos) from None
        if field.name == "evt.type" and not is_known_event_type(text):
            raise ConditionError(f"unknown event type {text}", pos)
        return value

    def add_warnings(self, op: str, pos: int, value: str) -> None:
        nospaces = "".join(c for c in value if c not in " \t\n\r\v\f")
        if op == "regex" and _regex_is_trivial(value):
            self.warnings.append(FilterWarning(
                f"regex check with '{value}' may be optimized with simpler operators such as "
                "'=', 'contains', 'startswith', 'endswith'", pos))
        if is_field(nospaces):
            self.warnings.append(FilterWarning(
                f"'{value}' may be a valid field misused as a const string value", pos))
        for t in ("val", *TRANSFORMERS):
            if len(nospaces) >= len(t) + 2 and nospaces.startswith(t + "(") \
                    and nospaces.endswith(")"):
                self.warnings.append(FilterWarning(
                    f"'{value}' may be a valid field transformer misused as a const string "
                    "value", pos))

    # -- another field on the right-hand side

    def field_comparison(self, left: CompiledOperand, op: str, right: FieldValue) -> Predicate:
        rhs = compile_operand_ast(right.operand)
        name = op.upper() if op in ("pmatch", "regex") else None
        if name is not None:
            raise ConditionError(f"operator '{name}' doesn't support right-hand side fields",
                                 rhs.pos)
        if kind_of(left.ftype) == "net":
            raise ConditionError("field type 'IPNET' doesn't support right-hand side fields",
                                 rhs.pos)
        if "no_rhs" in left.field.info.flags:
            raise ConditionError(
                f"field '{left.field.name}' doesn't support right-hand side fields", rhs.pos)
        if "no_rhs" in rhs.field.info.flags:
            raise ConditionError(
                f"field '{rhs.field.name}' can't be used as a right-hand side field", rhs.pos)
        if (left.ftype, left.is_list) != (rhs.ftype, rhs.is_list):
            raise ConditionError(
                f"field '{left.field.name}' has type '{left.ftype}"
                f"{' (list)' if left.is_list else ''}' while the right-hand side field "
                f"'{rhs.field.name}' has incompatible type '{rhs.ftype}"
                f"{' (list)' if rhs.is_list else ''}'", rhs.pos)
        lget = value_getter(left)
        rget = value_getter(rhs)
        kind = kind_of(left.ftype)
        is_list = left.is_list

        def check(ev: Event) -> bool:
            x = lget(ev)
            if x is None:
                return False
            y = rget(ev)
            if y is None:
                return False
            values = y if isinstance(y, list) else [y]
            if is_list:
                return ops.list_compare(op, kind, values)(x)
            return _dynamic_compare(op, kind, values)(x)

        return check


def _flatten(expr: And | Or, kind: type[And] | type[Or]) -> list[Expr]:
    """The children of nested and-s (or or-s) in one list: `(a and b) and c` is a, b, c."""
    out: list[Expr] = []
    for child in expr.children:
        if isinstance(child, kind):
            out.extend(_flatten(child, kind))
        else:
            out.append(child)
    return out


def _regex_is_trivial(v: str) -> bool:
    """libs' hint: a regex with no special character inside (beyond ^ $ and leading or
    trailing .* .+ .?) could be written with =, contains, startswith or endswith."""
    n = len(v)
    i = 0
    while i < n:
        c = v[i]
        if (i == 0 and c == "^") or (i == n - 1 and c == "$"):
            i += 1
            continue
        if ((i == 0 and n > 1) or i == n - 2) and c == "." and v[i + 1] in "+*?":
            i += 2
            continue
        if c in ".+*?^$()[]{}|\\":
            return False
        i += 1
    return True


@lru_cache(maxsize=1024)
def _cached_glob(pattern: str, casefold: bool) -> Callable[[str], bool]:
    return compile_glob(pattern, casefold)


def _dynamic_compare(op: str, kind: str, values: list[Any]) -> Callable[[Any], bool]:
    """A comparison against values known only per event (right-hand fields)."""
    if op in ("glob", "iglob"):
        matcher = _cached_glob(values[0], op == "iglob")
        return lambda x: matcher(x)
    return ops.scalar_compare(op, kind, values)


def _around_check(when: int, delta_ms: int) -> Predicate:
    delta = delta_ms * 1_000_000

    def around(ev: Event) -> bool:
        ts = ev.get("evt.rawtime")
        if ts.__class__ is not int:
            return False
        return bool(ts - delta <= when <= ts + delta)

    return around


def _all(preds: list[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda ev: a(ev) and b(ev)
    if len(preds) == 3:
        a, b, c = preds
        return lambda ev: a(ev) and b(ev) and c(ev)
    items = tuple(preds)

    def all_of(ev: Event) -> bool:
        for p in items:
            if not p(ev):
                return False
        return True

    return all_of


def _any(preds: list[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda ev: a(ev) or b(ev)
    if len(preds) == 3:
        a, b, c = preds
        return lambda ev: a(ev) or b(ev) or c(ev)
    items = tuple(preds)

    def any_of(ev: Event) -> bool:
        for p in items:
            if p(ev):
                return True
        return False

    return any_of


# ----------------------------------------------------------------------------- public API

def compile_filter(expr: Expr) -> Filter:
    """Compile a condition (macros already resolved) into a Filter; ConditionError when
    libs' compiler would refuse it."""
    compiler = _Compiler()
    match = compiler.compile(expr)
    return Filter(match, _evttypes(expr), tuple(compiler.warnings))


def compile_operand(op: Operand) -> Callable[[Event], Any]:
    """The value of an output operand (`%proc.aname[2]`, `%tolower(fd.name)`) for an
    event, JSON-ready as Falco puts it in output_fields; None when not available.
    Refuses filter-only fields as Falco's formatter does."""
    operand = compile_operand_ast(op, display=True)
    if operand.field.mode in ("any", "chain", "around"):
        return lambda ev: None
    get = value_getter(operand)
    ftype = operand.ftype

    def value(ev: Event) -> Any:
        return to_output(get(ev), ftype)

    return value


def operand_type(op: Operand) -> tuple[str, bool]:
    """(libs type name, is_list) of an operand after its transformers."""
    operand = compile_operand_ast(op)
    return operand.ftype, operand.is_list


def output_key(op: Operand) -> str:
    """The key Falco uses in json output_fields: the operand as written, e.g.
    "proc.aname[2]", "evt.arg.flags", "tolower(fd.name)"."""
    if isinstance(op, FieldRef):
        return op.name if op.arg is None else f"{op.name}[{op.arg}]"
    return f"{op.name}({output_key(op.arg)})"


def render(value: Any, ftype: str) -> str:
    """How Falco prints a value in an output line (`<NA>` when not available)."""
    return _render(value, ftype)
