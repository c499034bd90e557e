"""Canonical text of a condition AST: what the lab shows as a compiled condition.

`parse(to_text(e)) == e` for every AST `parse` can produce: values are quoted when
the lexer would not read them back bare, and parentheses are added where the
structure (an `And` inside an `And`, `not not`) would otherwise change on reparse.
`And` groups inside `Or` are parenthesised too, only for the reader's sake.
"""

from __future__ import annotations

from lab.engines.falco.condition.ast import (
    And,
    BinaryCheck,
    Expr,
    FieldRef,
    FieldValue,
    ListValue,
    Not,
    Operand,
    Or,
    Rhs,
    Transformer,
    UnaryCheck,
)
from lab.engines.falco.condition.lexer import (
    BARE_STRING,
    BLANKS,
    FIELD_ARG_BARE,
    LIST_OPS,
    MODIFIERS,
    NUM_OPS,
    quote,
)

__all__ = ["to_text"]


def to_text(expr: Expr) -> str:
    """One-line condition text that parses back to `expr`."""
    if isinstance(expr, Or):
        return " or ".join(_grouped(c, (Or, And)) for c in expr.children)
    if isinstance(expr, And):
        return " and ".join(_grouped(c, (Or, And)) for c in expr.children)
    if isinstance(expr, Not):
        return "not " + _grouped(expr.child, (Or, And, Not))
    if isinstance(expr, UnaryCheck):
        return f"{operand_text(expr.left)} {expr.op}"
    if isinstance(expr, BinaryCheck):
        return f"{operand_text(expr.left)} {expr.op} {_rhs_text(expr.op, expr.right)}"
    # A lone `not` followed by a blank would read as negation.
    return "(not)" if expr.name == "not" else expr.name


def _grouped(expr: Expr, kinds: tuple[type, ...]) -> str:
    text = to_text(expr)
    return f"({text})" if isinstance(expr, kinds) else text


def operand_text(operand: Operand) -> str:
    """`proc.aname[2]`, `tolower(fd.name)`: a field or transformer as written."""
    if isinstance(operand, Transformer):
        return f"{operand.name}({operand_text(operand.arg)})"
    return _field_text(operand)


def _field_text(field: FieldRef) -> str:
    if field.arg is None:
        return field.name
    arg = field.arg if FIELD_ARG_BARE.fullmatch(field.arg) else quote(field.arg)
    return f"{field.name}[{arg}]"


def _rhs_text(op: str, rhs: Rhs) -> str:
    if isinstance(rhs, ListValue):
        return "(" + ", ".join(_string_text(v.text) for v in rhs.items) + ")"
    if isinstance(rhs, FieldValue):
        if isinstance(rhs.operand, FieldRef):
            return f"val({_field_text(rhs.operand)})"
        return operand_text(rhs.operand)
    if op in NUM_OPS or op in LIST_OPS:
        # Numbers (and the bare word after `in`) were lexed as such: they print as read.
        return rhs.text
    return _string_text(rhs.text)


def _string_text(text: str) -> str:
    # A leading backspace would be skipped as a blank before the value is read, and the
    # modifier words are quoted so they can never be taken for a modifier.
    if BARE_STRING.fullmatch(text) and text[0] not in BLANKS and text not in MODIFIERS:
        return text
    return quote(text)
