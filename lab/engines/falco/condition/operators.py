"""Comparison operators: which types take which operator, and the comparisons.

Mirrors libs' filter_compare (flt_is_comparable, flt_compare) and
sinsp_filter_check::compare_rhs. A comparison here gets the field's value already
extracted and normalised (never None: a missing value fails every check before
this point, `!=` included).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lab.engines.falco.condition.pathprefix import PathPrefixSearch
from lab.engines.falco.condition.patterns import compile_glob, compile_regex
from lab.engines.falco.condition.types import INT_WIDTHS, IP_TYPES, NET_TYPES, STRING_TYPES

Compare = Callable[[Any], bool]

# operator spellings as libs' cmpop_to_str prints them
OP_NAMES = {"==": "="}
BINARY_OPS = frozenset({
    "=", "==", "!=", "<", "<=", ">", ">=", "contains", "icontains", "bcontains",
    "startswith", "bstartswith", "endswith", "glob", "iglob", "regex", "pmatch", "in",
    "intersects",
})
LIST_OPS = frozenset({"in", "intersects", "pmatch"})
MODIFIERS = frozenset({"oneof", "anyof", "allof"})
# base operators a oneof/anyof/allof modifier may follow
MODIFIABLE_OPS = frozenset({
    "=", "==", "!=", "contains", "icontains", "bcontains", "startswith", "bstartswith",
    "endswith", "glob", "iglob", "regex",
})

_NUMERIC_OPS = frozenset({"=", "!=", "<", "<=", ">", ">=", "in", "intersects", "exists"})
_BOOL_OPS = frozenset({"=", "!=", "in", "intersects", "exists"})
_IP_OPS = frozenset({"=", "!=", "in", "intersects", "exists"})
_STRING_OPS = frozenset({
    "=", "!=", "<", "<=", ">", ">=", "contains", "in", "exists", "icontains", "startswith",
    "glob", "pmatch", "endswith", "intersects", "iglob", "regex",
})
_BUFFER_OPS = frozenset({
    "=", "!=", "contains", "in", "exists", "startswith", "endswith", "intersects",
    "bcontains", "bstartswith",
})
_LIST_TYPES = frozenset({"CHARBUF", "UINT64", "RELTIME", "ABSTIME", "BOOL", "IPADDR", "IPNET"})
_NUMERIC_TYPES = frozenset(INT_WIDTHS) - {"UID", "GID", "L4PROTO", "SIGSET"} | {"DOUBLE"}


def op_name(op: str) -> str:
    return OP_NAMES.get(op, op)


def comparable_error(op: str, ftype: str, is_list: bool) -> str | None:
    """libs' flt_is_comparable: None when `op` works on the type, else the message."""
    op = op_name(op)
    if op == "exists":
        return None
    if is_list:
        if ftype not in _LIST_TYPES:
            return f"list filters are not supported for type '{ftype}'"
        if op in ("in", "intersects"):
            return None
        return f"'{op}' operator not supported list filters"
    if ftype in _NUMERIC_TYPES:
        ok, what = op in _NUMERIC_OPS, "numeric"
    elif ftype == "BOOL":
        ok, what = op in _BOOL_OPS, "numeric"
    elif ftype in IP_TYPES or ftype in NET_TYPES:
        ok, what = op in _IP_OPS, "ip address and network"
    elif ftype in STRING_TYPES:
        ok, what = op in _STRING_OPS, "string"
    elif ftype == "BYTEBUF":
        ok, what = op in _BUFFER_OPS, "buffer"
    else:
        return f"'{op}' operator not supported for type '{ftype}'"
    return None if ok else f"'{op}' operator not supported for {what} filters"


def _ascii_casefold(s: str) -> str:
    return s.lower() if s.isascii() else "".join(
        chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in s)


def _net_contains(net: tuple[int, int, int]) -> Compare:
    version, addr, bits = net
    width = 32 if version == 4 else 128
    shift = width - bits
    prefix = addr >> shift

    def contains(ip: tuple[int, int]) -> bool:
        return ip[0] == version and ip[1] >> shift == prefix

    return contains


def scalar_compare(op: str, kind: str, values: list[Any]) -> Compare:
    """The comparison of one extracted value with constant right-hand values.

    `values` are parsed for the field type (for IPNET fields: networks). Operators
    other than in/intersects/pmatch use the first value, as libs does.
    """
    op = op_name(op)
    if op == "exists":
        return lambda x: True
    if op in ("in", "intersects"):
        return _membership(kind, values)
    if op == "pmatch":
        search = PathPrefixSearch([str(v) for v in values])
        return search.match
    if not values:
        return lambda x: False
    v = values[0]
    if kind == "net":
        inside = _net_contains(v)
        if op == "=":
            return inside
        # an address of the other family is never compared, `!=` included
        return lambda ip: ip[0] == v[0] and not inside(ip)
    if kind == "ip":
        if op == "=":
            return v.__eq__
        return lambda ip: ip[0] == v[0] and ip[1] != v[1]
    return _ordered_compare(op, v)


def _any_net(values: list[Any]) -> Compare:
    tests = [_net_contains(n) for n in values]
    if len(tests) == 1:
        return tests[0]

    def in_any(ip: tuple[int, int]) -> bool:
        for t in tests:
            if t(ip):
                return True
        return False

    return in_any


def _membership(kind: str, values: list[Any]) -> Compare:
    if kind == "net":
        return _any_net(values)
    members = frozenset(values)
    return members.__contains__


def _ordered_compare(op: str, v: Any) -> Compare:
    if op == "=":
        return v.__eq__
    if op == "!=":
        return v.__ne__
    if op == "<":
        return lambda x: x < v
    if op == "<=":
        return lambda x: x <= v
    if op == ">":
        return lambda x: x > v
    if op == ">=":
        return lambda x: x >= v
    if op in ("contains", "bcontains"):
        return lambda x: v in x
    if op == "icontains":
        low = _ascii_casefold(v)
        return lambda x: low in _ascii_casefold(x)
    if op in ("startswith", "bstartswith"):
        return lambda x: x.startswith(v)
    if op == "endswith":
        return lambda x: x.endswith(v)
    if op in ("glob", "iglob"):
        matcher = compile_glob(v, casefold=op == "iglob")
        return lambda x: matcher(x)
    if op == "regex":
        rx = compile_regex(v)
        if rx is None:  # RE2 refused the expression: libs never matches it
            return lambda x: False
        return rx
    raise ValueError(f"unknown operator {op}")


def list_compare(op: str, kind: str, values: list[Any]) -> Callable[[list[Any]], bool]:
    """in / intersects / exists on a list-valued field (values extracted as a list)."""
    op = op_name(op)
    if op == "exists":
        return lambda xs: True
    if kind == "net":
        member: Compare = _any_net(values)
    else:
        member = frozenset(values).__contains__
    if op == "in":
        return lambda xs: all(member(x) for x in xs)
    return lambda xs: any(member(x) for x in xs)


def with_modifier(mod: str, compares: list[Compare]) -> Compare:
    """`op oneof/anyof/allof (v1, v2 ...)`: the checks `op v1`, `op v2` ... combined."""
    if mod == "anyof":
        return lambda x: any(c(x) for c in compares)
    if mod == "allof":
        return lambda x: all(c(x) for c in compares)
    return lambda x: sum(1 for c in compares if c(x)) == 1
