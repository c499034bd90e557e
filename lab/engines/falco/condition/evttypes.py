"""Which event types a condition can match: libs' event-code search on the AST.

Falco indexes rules by event type with this (libs' `ppm_event_codes`):

- `evt.type` (or `syscall.type`) without argument or transformer, compared with
  `=`, `==`, `!=` or `in` against literal values, yields those types (`!=` yields
  all the others); `evt.type exists` yields every type;
- every other check is neutral: all types (and stays all under `not`);
- `and` intersects, `or` unites; `not` is pushed down to the leaves (De Morgan), so
  `not evt.type=open` is every type but open.

Types are held as event names. The difference from libs: libs counts event codes,
where syscalls without their own event share the generic code; here each name
stands for itself. `too_many_evttypes` estimates libs' code count for Falco's
"Rule matches too many evt.type values" warning.
"""

from __future__ import annotations

from lab.engines.falco.condition.ast import (
    And,
    BinaryCheck,
    Expr,
    FieldRef,
    Identifier,
    ListValue,
    Not,
    Or,
    UnaryCheck,
    Value,
)
from lab.engines.falco.condition.event_table import (
    EVENT_NAMES,
    GENERIC_SYSCALL_NAMES,
    SINGLE_CODE_EVENTS,
    SYSCALL_ALIASES,
)

ALL_EVENT_TYPES: frozenset[str] = frozenset(EVENT_NAMES - set(SYSCALL_ALIASES))
_EVTTYPE_OPS = frozenset({"=", "==", "!=", "in"})
_GENERIC = frozenset(GENERIC_SYSCALL_NAMES)


def is_known_event_type(name: str) -> bool:
    """True for names libs accepts as `evt.type` values (event or syscall names)."""
    return name in EVENT_NAMES


def _names_to_types(names: list[str]) -> frozenset[str]:
    return frozenset(SYSCALL_ALIASES.get(n, n) for n in names if n in EVENT_NAMES)


def _is_evttype_field(op: object) -> bool:
    return isinstance(op, FieldRef) and op.name in ("evt.type", "syscall.type") \
        and op.arg is None


def _leaf(expr: Expr, negated: bool) -> frozenset[str]:
    if isinstance(expr, BinaryCheck) and expr.op in _EVTTYPE_OPS \
            and _is_evttype_field(expr.left) and isinstance(expr.right, (Value, ListValue)):
        if isinstance(expr.right, Value):
            names = [expr.right.text]
        else:
            names = [v.text for v in expr.right.items]
        types = _names_to_types(names)
        if expr.op == "!=":
            negated = not negated
        return ALL_EVENT_TYPES - types if negated else types
    if isinstance(expr, UnaryCheck) and expr.op == "exists" and _is_evttype_field(expr.left):
        return frozenset() if negated else ALL_EVENT_TYPES
    return ALL_EVENT_TYPES  # neutral checks (and unresolved macros) match every type


def _types(expr: Expr, negated: bool) -> frozenset[str]:
    if isinstance(expr, Not):
        return _types(expr.child, not negated)
    if isinstance(expr, (And, Or)):
        conjunction = isinstance(expr, And) != negated
        result = ALL_EVENT_TYPES if conjunction else frozenset()
        for child in expr.children:
            sub = _types(child, negated)
            result = result & sub if conjunction else result | sub
        return result
    if isinstance(expr, Identifier):
        return ALL_EVENT_TYPES
    return _leaf(expr, negated)


def evttypes(expr: Expr) -> frozenset[str] | None:
    """The event types `expr` can match; None when it can match every type."""
    types = _types(expr, False)
    return None if types == ALL_EVENT_TYPES else types


def _codes(name: str) -> int:
    return 1 if name in SINGLE_CODE_EVENTS else 2


_ALL_CODES = sum(_codes(n) for n in ALL_EVENT_TYPES - _GENERIC) + 2


def code_count(types: frozenset[str] | None) -> int:
    """Estimated number of libs event codes for a set of types (enter + exit codes;
    syscalls without their own event share the two generic codes)."""
    if types is None:
        return _ALL_CODES
    own = sum(_codes(n) for n in types if n not in _GENERIC)
    return own + (2 if types & _GENERIC else 0)


def too_many_evttypes(types: frozenset[str] | None) -> bool:
    """Falco's LOAD_NO_EVTTYPE condition: no type at all, or more than 100 codes."""
    return (types is not None and not types) or code_count(types) > 100
