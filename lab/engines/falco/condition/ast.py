"""The condition AST, shaped like libsinsp's filter AST (libsinsp/filter/ast.h).

Every node carries `pos`, the 0-based character offset of its first character in
the condition text, so errors can point at the place.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldRef:
    """A field as written: `proc.aname[2]` is name "proc.aname", arg "2".

    The parser cannot tell a dotted argument from a field name, so `evt.arg.flags`
    arrives as name "evt.arg.flags", arg None; the field catalog splits it.
    """

    name: str
    arg: str | None = None  # the text between [ and ], when there is one
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Transformer:
    """`tolower(fd.name)`, nested: `tolower(basename(fd.name))`."""

    name: str  # tolower, toupper, b64, basename, len, ...
    arg: FieldRef | Transformer
    pos: int = field(default=0, compare=False)


Operand = FieldRef | Transformer


@dataclass(frozen=True)
class Value:
    """A right-hand literal exactly as the parser decoded it (quotes and escapes removed)."""

    text: str
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class ListValue:
    """`(a, b, "c d")`; items are Values, or FieldRefs where upstream allows them."""

    items: tuple[Value, ...]
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class FieldValue:
    """A right-hand side naming another field: `val(proc.pname)` (or a transformer of one)."""

    operand: Operand
    pos: int = field(default=0, compare=False)


Rhs = Value | ListValue | FieldValue


@dataclass(frozen=True)
class UnaryCheck:
    """`fd.name exists`."""

    left: Operand
    op: str
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class BinaryCheck:
    """`left op right`; `op` is the operator as upstream spells it, lowercase."""

    left: Operand
    op: str
    right: Rhs
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Identifier:
    """A bare name: a macro reference, resolved by the rules compiler."""

    name: str
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class And:
    children: tuple[Expr, ...]
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Or:
    children: tuple[Expr, ...]
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Not:
    child: Expr
    pos: int = field(default=0, compare=False)


Expr = And | Or | Not | UnaryCheck | BinaryCheck | Identifier
