"""Compile a condition AST to a predicate over events, as libs' sinsp_filter_compiler.

`compile_filter(expr)` checks every field, operator and value where libs' compiler
does, with its wording and the position libs reports, and returns a Filter: a plan
of the condition whose checks are closures built once (no per-event parsing,
patterns precompiled, set lookups for `in`). `match(event)` runs the plan as one
generated Python function; `compile_matcher(filters, evt_type)` runs a ruleset's
conditions for one event type in one function, as Falco's engine runs the rules
its evt.type index gives (see "plan" below).

Evaluation follows libs: a check on a field the event does not have is false —
`!=` and `not ... in` included — and only an enclosing `not` makes it true.
Events are Mappings keyed by field name (see lab.engines.falco.fields for the keys
of fields with arguments); None or absent means "not available".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any, NamedTuple, Protocol

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

__all__ = ["Filter", "FilterWarning", "compile_filter", "compile_matcher", "compile_operand",
           "operand_type", "output_key", "render", "renderer"]


class FilterLike(Protocol):
    def match(self, event: Event) -> bool: ...


class FilterWarning(NamedTuple):
    """A compiler warning (Falco reports them as LOAD_COMPILE_CONDITION warnings)."""

    message: str
    pos: int


class Filter:
    """A compiled condition. `match(event)` tells whether the event satisfies it."""

    __slots__ = ("_match", "evttypes", "warnings", "_plan")

    def __init__(self, plan: Plan, evttypes: frozenset[str] | None,
                 warnings: tuple[FilterWarning, ...]) -> None:
        self._plan = plan
        self._match: Predicate | None = None
        # event types the condition can match; None: every type (as libs' event codes)
        self.evttypes = evttypes
        self.warnings = warnings

    @property
    def match(self) -> Predicate:
        # Made on first use: a ruleset runs its rules through compile_matcher, and a
        # disabled rule (most of a default ruleset) never runs at all.
        if self._match is None:
            self._match = _function(self._plan)
        return self._match


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


# ----------------------------------------------------------------------------- plan

# The compiler builds a plan: the and/or/not tree with, at each check, its closure
# (the check's exact semantics, as above) and, for the common checks on a plain
# string, integer or boolean field, what it takes to write the check inline. The plan
# then becomes one Python function per condition (_function below): in CPython most
# of a condition's cost is the calls from closure to closure, and an and-chain of
# inline comparisons makes none. Anything not inlined is a call of its closure.


def _true(_x: Any) -> bool:
    return True


class _Inline(NamedTuple):
    """A check on one plain field, written inline on values of the field's own kind."""

    key: str
    kind: str  # "str", "int" or "bool": the values taken without normalising
    lo: int  # the range an int value is taken as is (else it is narrowed)
    hi: int
    op: str  # "=", "!=", "<", ..., "in", "startswith", "exists"; "call": cmp(x)
    value: Any  # the right-hand value (a frozenset for "in")
    cmp: Callable[[Any], bool]
    slow: Callable[[Any], bool]  # the whole check on a raw value not of that kind


class _Check:
    __slots__ = ("pred", "inline", "type_only", "node")

    def __init__(self, pred: Predicate, inline: _Inline | None = None,
                 type_only: bool = False) -> None:
        self.pred = pred
        self.inline = inline
        self.type_only = type_only  # reads nothing but evt.type: decided per event type
        # The check as written: equal checks compile alike, so a function evaluating
        # several conditions evaluates a check they share once (see _Writer.shared).
        self.node: Expr | None = None


class _Bool:
    __slots__ = ("is_and", "children")

    def __init__(self, is_and: bool, children: list[Plan]) -> None:
        self.is_and = is_and
        self.children = children


class _Neg:
    __slots__ = ("child",)

    def __init__(self, child: Plan) -> None:
        self.child = child


Plan = _Check | _Bool | _Neg

# The operators written as Python expressions on a value `x` of the field's kind,
# with the same result as operators.scalar_compare's function for that value.
_INLINE_OPS = {
    "str": {"=": "x == {v}", "!=": "x != {v}", "<": "x < {v}", "<=": "x <= {v}",
            ">": "x > {v}", ">=": "x >= {v}", "contains": "{v} in x",
            "startswith": "x.startswith({v})", "endswith": "x.endswith({v})"},
    "int": {"=": "x == {v}", "!=": "x != {v}", "<": "x < {v}", "<=": "x <= {v}",
            ">": "x > {v}", ">=": "x >= {v}"},
    "bool": {"=": "x == {v}", "!=": "x != {v}"},
}
_GUARDS = {  # when the raw value is used as is (what _check_first takes as is)
    "str": "(x := get({key})).__class__ is str",
    "int": "(x := get({key})).__class__ is int and {lo} <= x <= {hi}",
    "bool": "(x := get({key})) is True or x is False",
}


def _inline(left: CompiledOperand, op: str, values: list[Any],
            cmp: Callable[[Any], bool]) -> _Inline | None:
    field = left.field
    kind = kind_of(left.ftype)
    if left.transforms or left.is_list or field.mode != "first" or len(field.keys[0]) != 1 \
            or kind not in _INLINE_OPS:
        return None
    op = ops.op_name(op)
    value: Any = None
    if op in ("in", "intersects"):
        op, value = "in", frozenset(values)
    elif op in _INLINE_OPS[kind] and values:
        value = values[0]
    elif op != "exists":
        op = "call"
    lo, hi = 0, 0
    if kind == "int":
        bits, signed = INT_WIDTHS[left.ftype]
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    norm = event_normalizer(left.ftype)

    def slow(x: Any) -> bool:
        if x is None:
            return False
        x = norm(x)
        return x is not None and cmp(x)

    return _Inline(field.key, kind, lo, hi, op, value, cmp, slow)


def _reads_only_type(left: CompiledOperand) -> bool:
    return all(k == "evt.type" for group in left.field.keys for k in group) \
        and left.field.mode in ("first", "type_is")


def _closure(plan: Plan) -> Predicate:
    """The plan as a tree of closures (the fallback of _function)."""
    if isinstance(plan, _Check):
        return plan.pred
    if isinstance(plan, _Neg):
        child = _closure(plan.child)
        return lambda ev: not child(ev)
    preds = [_closure(c) for c in plan.children]
    return _all(preds) if plan.is_and else _any(preds)


def _checks(plan: Plan) -> Iterator[_Check]:
    if isinstance(plan, _Check):
        yield plan
    elif isinstance(plan, _Neg):
        yield from _checks(plan.child)
    else:
        for c in plan.children:
            yield from _checks(c)


class _Writer:
    """Writes plans as Python expressions over `get` (the event's get method)."""

    def __init__(self, evt_type: str | None, plans: Sequence[Plan] = ()) -> None:
        self.evt_type = evt_type
        self.values: list[Any] = []
        self.texts: dict[Expr, str] = {}
        # Checks that occur more than once (the macros rules share: open_read,
        # container ...): each is evaluated at most once per event, into a variable
        # that starts as None.
        seen: set[Expr] = set()
        self.shared: dict[Expr, str] = {}
        for plan in plans:
            for check in _checks(plan):
                node = check.node
                if node is None or (check.type_only and evt_type is not None):
                    continue
                if node in seen and node not in self.shared:
                    self.shared[node] = f"_v{len(self.shared)}"
                seen.add(node)

    def const(self, value: Any) -> str:
        if value.__class__ in (str, int):  # a literal: repr() gives back the same value
            return repr(value)
        self.values.append(value)
        return f"_k{len(self.values) - 1}"

    def write(self, plan: Plan) -> str | bool:
        """The expression, or True/False when the plan is decided already."""
        if isinstance(plan, _Check):
            return self.check(plan)
        if isinstance(plan, _Neg):
            child = self.write(plan.child)
            return (not child) if isinstance(child, bool) else f"(not {child})"
        parts: list[str] = []
        for c in plan.children:
            part = self.write(c)
            if isinstance(part, bool):
                if part != plan.is_and:  # false in an and, true in an or: decided
                    return part  # checks have no side effects: skipping the rest is exact
                continue
            parts.append(part)
        if not parts:
            return plan.is_and
        return parts[0] if len(parts) == 1 else \
            "(" + (" and " if plan.is_and else " or ").join(parts) + ")"

    def check(self, check: _Check) -> str | bool:
        if check.type_only and self.evt_type is not None:
            return bool(check.pred({"evt.type": self.evt_type}))
        node = check.node
        text = self.texts.get(node) if node is not None else None
        if text is None:
            if check.inline is None:
                text = f"{self.const(check.pred)}(ev)"
            else:
                text = self.inline(check.inline)
            if node is not None:
                self.texts[node] = text
        var = self.shared.get(node) if node is not None else None
        if var is None:
            return text
        return f"({var} if {var} is not None else ({var} := {text}))"

    def inline(self, check: _Inline) -> str:
        guard = _GUARDS[check.kind].format(key=repr(check.key), lo=check.lo, hi=check.hi)
        if check.op == "exists":
            fast = "True"
        elif check.op == "in":
            fast = f"x in {self.const(check.value)}"
        elif check.op == "call":
            fast = f"{self.const(check.cmp)}(x)"
        else:
            fast = _INLINE_OPS[check.kind][check.op].format(v=self.const(check.value))
        # a missing field (None) is the usual other case: false without a call
        return f"({fast} if {guard} else x is not None and {self.const(check.slow)}(x))"


def _never(_ev: Event) -> bool:
    return False


def _always(_ev: Event) -> bool:
    return True


def _define(writer: _Writer, body: list[str]) -> Callable[[Event], Any] | None:
    """`def f(ev): get = ev.get; <body>` with the writer's constants; None when CPython
    refuses it (an expression deeper than its parser takes: hundreds of parentheses)."""
    names = ", ".join(f"_k{i}" for i in range(len(writer.values)))
    if writer.shared:
        body = [" = ".join([*writer.shared.values(), "None"]), *body]
    # Only repr() literals, constant names and fixed text go into the source.
    source = "\n".join([f"def _make({names}):", "    def f(ev):", "        get = ev.get",
                        *(f"        {line}" for line in body), "    return f", ""])
    try:
        namespace: dict[str, Any] = {}
        exec(compile(source, "<falco condition>", "exec"), namespace)
        fn: Callable[[Event], Any] = namespace["_make"](*writer.values)
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        return None
    return fn


def _function(plan: Plan) -> Predicate:
    """The plan as one function."""
    writer = _Writer(None, [plan])
    expr = writer.write(plan)
    if isinstance(expr, bool):
        return _always if expr else _never
    return _define(writer, [f"return {expr}"]) or _closure(plan)


Matcher = Callable[[Event], Sequence[int]]
_NONE: tuple[int, ...] = ()


def compile_matcher(filters: Sequence[FilterLike], evt_type: str | None = None,
                    first: bool = True, *, generate: bool = True) -> Matcher:
    """One function for a list of filters: the indices of those an event matches, in
    order (only the first one when `first`). With `evt_type`, every event given has
    that evt.type (a str), and checks of evt.type alone are decided once here.

    generate=False makes no code, only a loop over the filters' closures: quicker to
    make (microseconds, not milliseconds), slower to run. Filters of another backend
    (without a plan) are called as they are."""
    plans: list[Plan | None] = [getattr(flt, "_plan", None) for flt in filters]
    if generate:
        fn = _generate_matcher(filters, plans, evt_type, first)
        if fn is not None:
            return fn
    matches = [flt.match if plan is None else _closure(plan)
               for flt, plan in zip(filters, plans, strict=True)]

    def loop(ev: Event) -> Sequence[int]:
        out = []
        for i, match in enumerate(matches):
            if match(ev):
                out.append(i)
                if first:
                    break
        return out

    return loop


def _generate_matcher(filters: Sequence[FilterLike], plans: list[Plan | None],
                      evt_type: str | None, first: bool) -> Matcher | None:
    writer = _Writer(evt_type, [p for p in plans if p is not None])
    none = writer.const(_NONE)
    body = [] if first else ["out = []"]
    for i, (flt, plan) in enumerate(zip(filters, plans, strict=True)):
        expr = writer.write(plan) if plan is not None else f"{writer.const(flt.match)}(ev)"
        if expr is False:
            continue
        hit = f"return ({i},)" if first else f"out.append({i})"
        if expr is True:
            body.append(hit)
            if first:
                break
        else:
            body += [f"if {expr}:", f"    {hit}"]
    body.append(f"return {none}" if first else "return out")
    return _define(writer, body)


# ----------------------------------------------------------------------------- compiler

class _Compiler:
    def __init__(self) -> None:
        self.warnings: list[FilterWarning] = []

    def compile(self, expr: Expr) -> Plan:
        if isinstance(expr, And):
            return _Bool(True, [self.compile(c) for c in _flatten(expr, And)])
        if isinstance(expr, Or):
            return _Bool(False, [self.compile(c) for c in _flatten(expr, Or)])
        if isinstance(expr, Not):
            return _Neg(self.compile(expr.child))
        if isinstance(expr, Identifier):
            raise ConditionError(f"Undefined macro '{expr.name}' used in filter.", expr.pos)
        if isinstance(expr, UnaryCheck | BinaryCheck):
            check = self.unary(expr) if isinstance(expr, UnaryCheck) else self.binary(expr)
            check.node = expr
            return check
        raise ConditionError("filter error: unexpected expression", int(getattr(expr, "pos", 0)))

    def unary(self, expr: UnaryCheck) -> _Check:
        left = compile_operand_ast(expr.left)
        if expr.op != "exists":
            raise ConditionError(f"unrecognized filter comparison operator '{expr.op}'",
                                 left.pos)
        exists = _true
        return _Check(_check(left, exists), _inline(left, "exists", [], exists),
                      _reads_only_type(left))

    def binary(self, expr: BinaryCheck) -> _Check:
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
            return _Check(self.field_comparison(left, base, expr.right))
        return self.value_comparison(left, base, mod, expr.right)

    # -- constant right-hand side

    def value_comparison(self, left: CompiledOperand, op: str, mod: str | None,
                         right: Value | ListValue) -> _Check:
        texts = [right.text] if isinstance(right, Value) else [v.text for v in right.items]
        pos = right.pos
        values = [self.parse_one(left, op, text, pos) for text in texts]
        field = left.field
        if field.mode == "around":
            return _Check(_around_check(int(field.arg or 0), values[0] if values else 0))
        kind = kind_of(left.ftype)
        type_only = _reads_only_type(left)
        if mod is not None:
            cmp = ops.with_modifier(mod, [ops.scalar_compare(op, kind, [v]) for v in values])
            return _Check(_check(left, cmp), None, type_only)
        if left.is_list:
            return _Check(_check(left, ops.list_compare(op, kind, values)), None, type_only)
        cmp = ops.scalar_compare(op, kind, values)
        pred = _fast_string_check(left, op, values) or _check(left, cmp)
        return _Check(pred, _inline(left, op, values, cmp), type_only)

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
        nospaces = value.translate(_NO_BLANKS)
        if op == "regex" and _regex_is_trivial(value):
            self.warnings.append(FilterWarning(
                f"regex check with '{value}' may be optimized with simpler operators such as "
                "'=', 'contains', 'startswith', 'endswith'", pos))
        if is_field(nospaces):
            self.warnings.append(FilterWarning(
                f"'{value}' may be a valid field misused as a const string value", pos))
        if nospaces.endswith(")"):
            for t in ("val", *TRANSFORMERS):
                if len(nospaces) >= len(t) + 2 and nospaces.startswith(t + "("):
                    self.warnings.append(FilterWarning(
                        f"'{value}' may be a valid field transformer misused as a const "
                        "string value", pos))

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


_NO_BLANKS = str.maketrans("", "", " \t\n\r\v\f")


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
    plan = compiler.compile(expr)
    return Filter(plan, _evttypes(expr), tuple(compiler.warnings))


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

    field = operand.field
    kind = kind_of(ftype)
    if operand.transforms or operand.is_list or field.mode != "first" \
            or len(field.keys[0]) != 1 or kind not in ("str", "int", "bool"):
        return value
    # A plain field whose raw value is already of its kind is its own output value
    # (as value() would make it): most output fields of most alerts.
    key = field.key
    if kind == "str":
        def str_value(ev: Event) -> Any:
            x = ev.get(key)
            return x if x.__class__ is str else value(ev)

        return str_value
    if kind == "bool":
        def bool_value(ev: Event) -> Any:
            x = ev.get(key)
            return x if x is True or x is False else value(ev)

        return bool_value
    bits, signed = INT_WIDTHS[ftype]
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)

    def int_value(ev: Event) -> Any:
        x = ev.get(key)
        return x if x.__class__ is int and lo <= x <= hi else value(ev)

    return int_value


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


def renderer(ftype: str) -> Callable[[Any], str]:
    """render() for one type, quicker on the values most fields hold (str, int)."""
    kind = kind_of(ftype)
    if kind == "str":
        return lambda value: value if value.__class__ is str else _render(value, ftype)
    if kind == "int":
        return lambda value: str(value) if value.__class__ is int else _render(value, ftype)
    return lambda value: _render(value, ftype)
