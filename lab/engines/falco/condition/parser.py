"""The Falco condition parser: libsinsp's filter grammar (libs 0.25, Falco 0.44) to the AST.

A recursive descent that follows libsinsp's `filter/parser.cpp` function by function,
so that the same texts are accepted, the same AST comes out and a rejected text gets
libsinsp's message at the offset where libsinsp stopped (Falco reports that offset):

    Expr  ::= Or
    Or    ::= And ('or' (blank And | '(' Expr ')'))*
    And   ::= Not ('and' (blank Not | '(' Expr ')'))*
    Not   ::= ('not' blank)* ('not(' Expr ')' | Check)
    Check ::= '(' Expr ')' | Operand (unary-op | op Rhs) | identifier

`a and b or c` is legal (`or` binds loosest); a run of `and`s makes one `And` node.
Two things the fixed AST cannot hold are parsed (so syntax errors stay libsinsp's)
but then refused: transformers with several arguments or with a literal or a
parenthesised list as argument (`join("-", (a.b, c.d))`, `concat(...)`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
    Rhs,
    Transformer,
    UnaryCheck,
    Value,
)
from lab.engines.falco.condition.lexer import (
    BARE_STRING,
    BLANKS,
    FIELD_ARG_BARE,
    FIELD_NAME,
    HEX_NUMBER,
    IDENTIFIER,
    LIST_OPS,
    MODIFIERS,
    NOT_BLANK,
    NUM_OPS,
    NUMBER,
    OPERATORS_TEXT,
    STR_OPS,
    TRANSFORMERS_TEXT,
    UNARY_OPS,
    VAL,
    Lexer,
)
from lab.engines.falco.errors import ConditionError

__all__ = ["parse"]


def parse(text: str) -> Expr:
    """Parse a condition as Falco does; raises ConditionError(message, offset)."""
    return _Parser(text).parse()


@dataclass
class _ArgList:
    """A parenthesised transformer argument list, `(a.b, "x")`: parsed, never in the AST."""

    items: list[_Arg]
    pos: int


_Arg = FieldRef | Transformer | Value | _ArgList


class _Parser(Lexer):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.unsupported: ConditionError | None = None

    def parse(self) -> Expr:
        if not self.text:
            raise ConditionError("filter input string is empty", 0)
        try:
            result = self.parse_or()
        except RecursionError:
            # libsinsp's depth guard is a no-op, Falco only stops when its stack runs out.
            raise self.error("condition nests too deeply") from None
        if self.idx != len(self.text):
            raise self.error(f"unexpected token after '{self.last}', expecting 'or', 'and'")
        if self.unsupported is not None:
            raise self.unsupported
        return result

    # -- boolean structure ------------------------------------------------------------

    def parse_or(self) -> Expr:
        pos = self.idx
        self.lex_blank()
        children = [self.parse_and()]
        self.lex_blank()
        while self.lex_str("or"):
            children.append(self._after_keyword("or", self.parse_and))
            self.lex_blank()
        return Or(tuple(children), pos) if len(children) > 1 else children[0]

    def parse_and(self) -> Expr:
        pos = self.idx
        self.lex_blank()
        children = [self.parse_not()]
        self.lex_blank()
        while self.lex_str("and"):
            children.append(self._after_keyword("and", self.parse_not))
            self.lex_blank()
        return And(tuple(children), pos) if len(children) > 1 else children[0]

    def _after_keyword(self, keyword: str, operand: Callable[[], Expr]) -> Expr:
        if self.lex_blank():
            return operand()
        # `a and(b)`: the parenthesis goes straight to the group, skipping `not`/`and`
        # (so `a or(b) and c` leaves `and c` unparsed, as in libsinsp).
        if self.lex_str("("):
            return self.parse_embedded_remainder()
        raise self.error(f"expected blank or '(' after '{keyword}'")

    def parse_not(self) -> Expr:
        pos = self.idx
        negate = False
        self.lex_blank()
        while self.lex_rgx(NOT_BLANK):
            negate = not negate
        if self.lex_str("not("):
            negate = not negate
            child = self.parse_embedded_remainder()
        else:
            child = self.parse_check()
        # An even number of `not`s leaves no node at all: `not not a` is `a`.
        return Not(child, pos) if negate else child

    def parse_embedded_remainder(self) -> Expr:
        self.lex_blank()
        child = self.parse_or()
        self.lex_blank()
        if not self.lex_str(")"):
            raise self.error("expected a ')' token")
        return child

    def parse_check(self) -> Expr:
        pos = self.idx
        self.lex_blank()
        if self.lex_str("("):
            return self.parse_embedded_remainder()
        if self.lex_rgx(FIELD_NAME):
            return self.parse_condition(self.parse_field_remainder(self.last, pos), pos)
        name = self.lex_transformer()
        if name is not None:
            self.lex_blank()
            return self.parse_condition(self.parse_transformer_remainder(name, pos), pos)
        if self.lex_rgx(IDENTIFIER):
            return Identifier(self.last, pos)
        raise self.error("expected a '(' token, a field check, or an identifier")

    # -- operands ---------------------------------------------------------------------

    def parse_field_remainder(self, name: str, pos: int) -> FieldRef:
        arg: str | None = None
        if self.lex_str("["):
            if not (self.lex_quoted_str() or self.lex_rgx(FIELD_ARG_BARE)):
                raise self.error(
                    "expected a valid field argument: a quoted string or a bare string")
            arg = self.last
            if not self.lex_str("]"):
                raise self.error("expected a ']' token")
        # libsinsp's AST stores "" both for `f` and `f[""]`: one meaning, one node here too.
        return FieldRef(name, arg or None, pos)

    def parse_transformer_remainder(self, name: str, pos: int) -> Transformer:
        """The arguments and ")" of a transformer whose "name(" was just read."""
        self.lex_blank()
        args = [self.parse_transformer_arg(self.idx)]
        self.lex_blank()
        while self.lex_str(","):
            args.append(self.parse_transformer_arg(self.idx))
            self.lex_blank()
        self.lex_blank()
        if not self.lex_str(")"):
            raise self.error("expected a ')' token closing the transformer")
        if len(args) == 1 and isinstance(args[0], FieldRef | Transformer):
            return Transformer(name, args[0], pos)
        if self.unsupported is None:
            self.unsupported = ConditionError(
                f"transformer '{name}' is used with arguments this engine does not support "
                "(it takes one field or transformer)", pos)
        return Transformer(name, FieldRef("", None, pos), pos)  # never returned from parse()

    def parse_transformer_arg(self, pos: int) -> _Arg:
        self.lex_blank()
        if self.lex_rgx(HEX_NUMBER) or self.lex_rgx(NUMBER):
            return Value(self.last, pos)
        if self.lex_quoted_str():
            return Value(self.last, pos)
        if self.lex_str("("):
            return self.parse_transformer_list(pos)
        name = self.lex_transformer()
        if name is not None:
            return self.parse_transformer_remainder(name, pos)
        if self.lex_rgx(FIELD_NAME):
            return self.parse_field_remainder(self.last, pos)
        raise self.error("expected field transformer argument: "
                         "field, transformer, quoted string, number, or transformer list")

    def parse_transformer_list(self, pos: int) -> _ArgList:
        items: list[_Arg] = []
        self.lex_blank()
        if self.lex_str(")"):
            return _ArgList(items, pos)
        items.append(self.parse_transformer_list_arg(pos))
        self.lex_blank()
        while self.lex_str(","):
            self.lex_blank()
            items.append(self.parse_transformer_list_arg(pos))
            self.lex_blank()
        if not self.lex_str(")"):
            raise self.error("expected ')'")
        return _ArgList(items, pos)

    def parse_transformer_list_arg(self, pos: int) -> _Arg:
        if self.lex_rgx(FIELD_NAME):
            return self.parse_field_remainder(self.last, pos)
        name = self.lex_transformer()
        if name is not None:
            self.lex_blank()
            return self.parse_transformer_remainder(name, pos)
        if self.lex_quoted_str():
            return Value(self.last, pos)
        if self.lex_rgx(HEX_NUMBER) or self.lex_rgx(NUMBER):
            return Value(self.last, pos)
        raise self.error(
            "expected transformer list argument: field, transformer, quoted string, or number")

    # -- checks -----------------------------------------------------------------------

    def parse_condition(self, left: Operand, pos: int) -> Expr:
        self.lex_blank()
        if self.lex_operator(UNARY_OPS):
            return UnaryCheck(left, self.last.strip(), pos)
        self.lex_blank()
        right: Rhs
        if self.lex_operator(NUM_OPS):
            op = self.last
            right = self.parse_num_value()
        elif self.lex_operator(STR_OPS):
            op = self.last
            modifier = self.lex_modifier()
            if modifier is not None:
                op = f"{op} {modifier}"
                right = self.parse_list_remainder(self.idx - 1)
            else:
                right = self.parse_str_value()
        elif self.lex_operator(LIST_OPS):
            op = self.last
            right = self.parse_list_value()
        else:
            raise self.error(f"expected a valid check operator: one of {OPERATORS_TEXT}")
        return BinaryCheck(left, op.strip(), right, pos)

    def lex_modifier(self) -> str | None:
        """`oneof`/`anyof`/`allof` and the "(" of their list, if both are there.

        libsinsp's code for this (libs#2984) was not available to read; the modifier is
        taken only when a list follows, so `x = anyof` stays the bare string it was.
        """
        text = self.text
        i = self.idx
        while i < len(text) and text[i] in BLANKS:
            i += 1
        for modifier in MODIFIERS:
            if text.startswith(modifier, i):
                j = i + len(modifier)
                while j < len(text) and text[j] in BLANKS:
                    j += 1
                if text.startswith("(", j):
                    self.idx = j + 1
                    self.last = "("
                    return modifier
        return None

    def parse_num_value(self) -> Rhs:
        self.lex_blank()
        pos = self.idx
        field = self.try_parse_field_value()
        if field is not None:
            return field
        if self.lex_rgx(HEX_NUMBER) or self.lex_rgx(NUMBER):
            return Value(self.last, pos)
        raise self.error("expected a number value or a field with a valid transformer: "
                         + TRANSFORMERS_TEXT)

    def parse_str_value(self) -> Rhs:
        self.lex_blank()
        pos = self.idx
        field = self.try_parse_field_value()
        if field is not None:
            return field
        if self.lex_quoted_str() or self.lex_rgx(BARE_STRING):
            return Value(self.last, pos)
        raise self.error("expected a string value or a field with a valid transformer: "
                         + TRANSFORMERS_TEXT)

    def parse_list_item(self) -> Value:
        self.lex_blank()
        pos = self.idx
        if self.lex_quoted_str() or self.lex_rgx(BARE_STRING):
            return Value(self.last, pos)
        raise self.error("expected a string value")

    def parse_list_value(self) -> Rhs:
        self.lex_blank()
        pos = self.idx
        if self.lex_str("("):
            return self.parse_list_remainder(pos)
        field = self.try_parse_field_value()
        if field is not None:
            return field
        if self.lex_rgx(IDENTIFIER):
            # `x in some_list` without parentheses: a one-word value (an undefined list).
            return Value(self.last, pos)
        raise self.error("expected a list, an identifier, or a field with a valid transformer: "
                         + TRANSFORMERS_TEXT)

    def parse_list_remainder(self, pos: int) -> ListValue:
        """The items and ")" of a list whose "(" was just read."""
        self.lex_blank()
        items: list[Value] = []
        try:
            first: Value | None = self.parse_list_item()
        except ConditionError:
            # libsinsp reads a list whose first item fails as an empty one, then wants
            # ")" wherever the cursor stopped: `x in ("\q")` is `x in ()`.
            first = None
        if first is not None:
            items.append(first)
            self.lex_blank()
            while self.lex_str(","):
                items.append(self.parse_list_item())
                self.lex_blank()
        if not self.lex_str(")"):
            raise self.error("expected a ')' token")
        return ListValue(tuple(items), pos)

    def try_parse_field_value(self) -> FieldValue | None:
        """`val(field)` or a transformer on the right-hand side, if one starts here."""
        self.lex_blank()
        pos = self.idx
        if self.lex_str(VAL + "("):
            self.lex_blank()
            self.last = VAL
            field_pos = self.idx
            if not self.lex_rgx(FIELD_NAME):
                raise self.error(f"expected a field within '{VAL}' transformer")
            field = self.parse_field_remainder(self.last, field_pos)
            self.lex_blank()
            if not self.lex_str(")"):
                raise self.error("expected a ')' token closing the transformer")
            return FieldValue(field, pos)
        name = self.lex_transformer()
        if name is not None:
            self.lex_blank()
            return FieldValue(self.parse_transformer_remainder(name, pos), pos)
        return None
