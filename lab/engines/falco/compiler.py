"""The compiler: lists, macros and exceptions -> one filter per rule (rule_loader_compiler.cpp).

The steps are Falco's, in Falco's order:
- lists: an item naming an earlier list is replaced by that list's items (one level);
- every condition (macro or rule) gets each list name replaced *as text* by its
  quoted items, then is parsed;
- macros are resolved on the AST: a macro sees the macros defined before its own
  (last) definition; a rule sees them all; loops and unknown names are errors;
- a rule's exceptions are appended to its condition as text before parsing;
- output, then condition, are compiled; `skip-if-unknown-filter` turns an unknown
  field into a warning that drops the rule.
The first error stops the compile (and the unused list/macro warnings with it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from lab.engines.falco.collector import (
    LIST_OPERATORS,
    SYSCALL_SOURCE,
    Collector,
    CondContext,
    Context,
    ExceptionInfo,
    Issues,
    RuleLoadError,
    throw_if,
)
from lab.engines.falco.condition.ast import (
    And,
    BinaryCheck,
    Expr,
    FieldRef,
    FieldValue,
    Identifier,
    Not,
    Operand,
    Or,
    Transformer,
    UnaryCheck,
)
from lab.errors import LabError

CONTAINER_INFO = "%container.info"
CONTAINER_INFO_WARNING = (
    "%container.info is deprecated and no more useful, and will be dropped by Falco 1.0.0. "
    "The container plugin will automatically add required fields to the output message."
)

# Fields whose values went away with enter events (Falco >= 0.42), in Falco's order.
DEPRECATED_FIELDS = (
    "evt.dir", "evt.latency", "evt.latency.s", "evt.latency.ns", "evt.latency.human",
    "evt.wait_latency",
)
_LATENCY_DESC = "field is not available due to the drop of enter events."
DEPRECATED_FIELD_DESC = {
    "evt.dir": "due to the drop of enter events, 'evt.dir = <' always evaluates to true, and "
    "'evt.dir = >' always evaluates to false. The rule expression can be simplified by "
    "removing the condition on 'evt.dir'",
    **{f: _LATENCY_DESC for f in DEPRECATED_FIELDS[1:]},
}

# Parts of libsinsp error messages that mean "unknown field or event type".
_UNKNOWN_MARKERS = ("nonexistent field", "invalid formatting token", "unknown event type",
                    "unknown filter:")

# Above this many event types a rule "matches too many" (LOAD_NO_EVTTYPE); libs counts
# event codes, a backend may estimate those (Backend.too_many_evttypes).
MAX_EVTTYPES = 100


class FilterLike(Protocol):
    evttypes: frozenset[str] | None

    def match(self, event: Mapping[str, Any]) -> bool: ...


@dataclass(frozen=True)
class Backend:
    """The condition language and output formatter the compiler drives."""

    parse: Callable[[str], Expr]
    compile_filter: Callable[[Expr], FilterLike]
    compile_output: Callable[[str], Any]
    # Whether a field exists ("proc.aname[2]" as written), for exception fields.
    is_field_defined: Callable[[str], bool] = lambda _name: True
    # Falco's LOAD_NO_EVTTYPE test on a filter's event types (None: all types).
    too_many_evttypes: Callable[[frozenset[str] | None], bool] = (
        lambda types: types is None or not types or len(types) > MAX_EVTTYPES)


@dataclass
class CompiledList:
    name: str
    items: list[str]
    used: bool = False


@dataclass
class CompiledMacro:
    name: str
    ast: Expr
    used: bool = False


@dataclass
class CompiledRule:
    name: str
    source: str
    desc: str
    priority: int
    tags: tuple[str, ...]
    output: str
    output_format: Any
    condition: str  # the text parsed: exceptions built in, lists substituted
    ast: Expr  # macros resolved
    filter: FilterLike
    enabled: bool
    exception_fields: frozenset[str] = frozenset()


@dataclass
class CompileOutput:
    lists: list[CompiledList] = field(default_factory=list)
    macros: dict[str, CompiledMacro] = field(default_factory=dict)
    rules: list[CompiledRule] = field(default_factory=list)


# --- lists -------------------------------------------------------------------------


def quote_item(item: str) -> str:
    """An item with a space is double-quoted unless it already starts with a quote."""
    if " " in item and item[:1] not in ('"', "'"):
        return f'"{item}"'
    return item


def compile_lists(col: Collector) -> list[CompiledList]:
    """Inline items naming a list defined before this one's last definition (one level)."""
    out: list[CompiledList] = []
    used: list[str] = []
    for info in col.lists.values():
        items: list[str] = []
        for item in info.items:
            ref = col.lists.get(item)
            if ref is not None and ref.index < info.visibility:
                used.append(ref.name)
                items.extend(ref.items)
            else:
                items.append(item)
        out.append(CompiledList(info.name, items))
    by_name = {c.name: c for c in out}
    for name in used:
        by_name[name].used = True
    return out


_BLANKS = " \t\n\r"
_DELIMS = _BLANKS + "(),="


def resolve_list(cnd: str, name: str, items: list[str]) -> tuple[str, bool]:
    """Replace each stand-alone `name` in a condition's text by the list's items.

    A port of Falco's text substitution, quirks included: the name must be bounded
    by blanks, parentheses, commas or '=' (so it is replaced outside `in (...)` too),
    surrounding blanks are eaten, and an empty list takes a neighbouring comma with it.
    """
    used = False
    start = cnd.find(name)
    while start != -1:
        end = start + len(name)
        if (start == 0 or cnd[start - 1] in _DELIMS) and (
            end >= len(cnd) or cnd[end] in _DELIMS
        ):
            while start > 0 and cnd[start - 1] in _BLANKS:
                start -= 1
            while end < len(cnd) and cnd[end] in _BLANKS:
                end += 1
            sub = ", ".join(quote_item(v) for v in items)
            if not sub:
                if start > 0 and cnd[start - 1] == ",":
                    start -= 1
                elif end < len(cnd) and cnd[end] == ",":
                    end += 1
            new = (cnd[:start] + " " if start > 0 else "") + sub + " " + cnd[end:]
            cnd = new
            start += len(sub) + 1
            used = True
        start = cnd.find(name, start + 1)
    return cnd, used


# --- exceptions ----------------------------------------------------------------------


def _paren_item(item: str) -> str:
    return item if item[:1] == "(" else f"({item})"


def build_exceptions(condition: str, exceptions: list[ExceptionInfo]) -> tuple[str, set[str]]:
    """`(cond) and not <ex1> and not <ex2> ...`, as Falco writes them out."""
    fields: set[str] = set()
    condition = f"({condition})"
    for ex in exceptions:
        icond = ""
        if not ex.fields.is_list:
            for val in ex.values:
                throw_if(val.is_list, "LOAD_ERR_VALIDATE",
                         "Expected values array to contain a list of strings", ex.ctx)
                icond += f"({ex.fields.item} {ex.comps.item} (" if not icond else ", "
                fields.add(ex.fields.item)
                icond += quote_item(val.item)
            icond += "))" if icond else ""
        else:
            icond = "("
            for values in ex.values:
                throw_if(len(ex.fields.items) != len(values.items), "LOAD_ERR_VALIDATE",
                         "Fields and values lists must have equal length", ex.ctx)
                icond += "" if icond == "(" else " or "
                icond += "("
                for k, fld in enumerate(ex.fields.items):
                    icond += "" if k == 0 else " and "
                    value = values.items[k]
                    comp = ex.comps.items[k].item
                    if value.is_list:
                        istr = "(" + ", ".join(quote_item(v.item) for v in value.items) + ")"
                    elif comp in LIST_OPERATORS:
                        istr = _paren_item(value.item)
                    else:
                        istr = quote_item(value.item)
                    icond += f" {fld.item} {comp} {istr}"
                    fields.add(fld.item)
                icond += ")"
            icond += ")"
            if icond == "()":
                icond = ""
        condition += f" and not {icond}" if icond else ""
    return condition, fields


# --- macros ----------------------------------------------------------------------------


@dataclass
class MacroResolution:
    errors: list[tuple[str, int]] = field(default_factory=list)
    unknown: list[tuple[str, int]] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)


def resolve_macros(expr: Expr, table: Mapping[str, Expr]) -> tuple[Expr, MacroResolution]:
    """Replace macro references by their conditions (filter_macro_resolver.cpp).

    Only bare names directly under and/or/not are macro references; a name already
    on the current expansion path is a reference loop.
    """
    res = MacroResolution()
    path: list[str] = []

    def visit(node: Expr) -> Expr:
        if isinstance(node, (And, Or)):
            children = tuple(visit(c) for c in node.children)
            if all(a is b for a, b in zip(children, node.children, strict=True)):
                return node
            return type(node)(children, node.pos)
        if isinstance(node, Not):
            child = visit(node.child)
            return node if child is node.child else Not(child, node.pos)
        if isinstance(node, Identifier):
            macro = table.get(node.name)
            if macro is None:
                res.unknown.append((node.name, node.pos))
                return node
            if node.name in path:
                res.errors.append((f"reference loop in macro '{node.name}'", node.pos))
                res.unknown.append((node.name, node.pos))
                return node
            path.append(node.name)
            new = visit(macro)
            res.resolved.append(node.name)
            path.pop()
            return new
        return node

    return visit(expr), res


def walk_operands(expr: Expr) -> list[FieldRef]:
    """Every field a condition names, transformers and val() included."""
    out: list[FieldRef] = []

    def operand(op: Operand) -> None:
        while isinstance(op, Transformer):
            op = op.arg
        out.append(op)

    def visit(node: Expr) -> None:
        if isinstance(node, (And, Or)):
            for c in node.children:
                visit(c)
        elif isinstance(node, Not):
            visit(node.child)
        elif isinstance(node, (UnaryCheck, BinaryCheck)):
            operand(node.left)
            if isinstance(node, BinaryCheck) and isinstance(node.right, FieldValue):
                operand(node.right.operand)

    visit(expr)
    return out


def is_unknown_type_or_field(message: str) -> bool:
    return any(m in message for m in _UNKNOWN_MARKERS)


# --- the compile ------------------------------------------------------------------------


@dataclass
class CompileCache:
    """What does not change between the compiles of one load (Falco compiles everything
    collected so far after each file): parses by text, filters by resolved AST,
    outputs by text."""

    parses: dict[str, Expr] = field(default_factory=dict)
    filters: dict[Expr, FilterLike] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Compiler:
    col: Collector
    issues: Issues
    backend: Backend
    cache: CompileCache
    out: CompileOutput = field(default_factory=CompileOutput)

    def parse_condition(self, condition: str, where: CondContext) -> tuple[str, Expr]:
        for lst in self.out.lists:
            condition, used = resolve_list(condition, lst.name, lst.items)
            lst.used |= used
        ast = self.cache.parses.get(condition)
        if ast is None:
            try:
                ast = self.backend.parse(condition)
            except LabError as exc:
                raise RuleLoadError(
                    "LOAD_ERR_COMPILE_CONDITION", exc.message,
                    where.at_offset(condition, getattr(exc, "pos", None)),
                ) from None
            self.cache.parses[condition] = ast
        return condition, ast

    def resolve(self, ast: Expr, table: Mapping[str, Expr], condition: str,
                where: CondContext) -> Expr:
        new, res = resolve_macros(ast, table)
        if res.errors or res.unknown:
            msg, pos = res.errors[0] if res.errors else (
                f"Undefined macro '{res.unknown[0][0]}' used in filter.", res.unknown[0][1])
            raise RuleLoadError("LOAD_ERR_VALIDATE", msg, where.at_offset(condition, pos))
        for name in res.resolved:
            self.out.macros[name].used = True
        return new

    def compile_macros(self) -> None:
        texts: dict[str, str] = {}
        for info in self.col.macros.values():
            text, ast = self.parse_condition(info.cond, info.cond_ctx)
            texts[info.name] = text
            self.out.macros[info.name] = CompiledMacro(info.name, ast)
        infos = list(self.col.macros.values())
        for macro in self.out.macros.values():
            info = self.col.macros[macro.name]
            table = {m.name: self.out.macros[m.name].ast for m in infos
                     if m.index < info.visibility}
            macro.ast = self.resolve(macro.ast, table, texts[macro.name],
                                     CondContext(info.ctx))

    def warn_deprecated(self, ast: Expr, where: Context) -> None:
        names = {f.name for f in walk_operands(ast)}
        for name in DEPRECATED_FIELDS:
            if name in names:
                self.issues.add_warning("LOAD_DEPRECATED_ITEM", DEPRECATED_FIELD_DESC[name], where)

    def compile_rules(self) -> None:
        table = {name: m.ast for name, m in self.out.macros.items()}
        for r in self.col.rules.values():
            if r.unknown_source:
                continue
            condition, exception_fields = r.cond, set[str]()
            if r.exceptions:
                condition, exception_fields = build_exceptions(condition, r.exceptions)
            output = r.output
            output_ctx = r.output_ctx or r.ctx
            if CONTAINER_INFO in output:
                self.issues.add_warning("LOAD_DEPRECATED_ITEM", CONTAINER_INFO_WARNING, r.ctx)
                output = output.replace(CONTAINER_INFO, "")
            try:
                fmt = self.cache.outputs.get(output)
                if fmt is None:
                    fmt = self.cache.outputs[output] = self.backend.compile_output(output)
            except LabError as exc:
                if is_unknown_type_or_field(exc.message) and r.skip_if_unknown_filter:
                    self.issues.add_warning("LOAD_UNKNOWN_FILTER", exc.message, output_ctx)
                    continue
                raise RuleLoadError("LOAD_ERR_COMPILE_OUTPUT", exc.message, output_ctx) from None
            for name in DEPRECATED_FIELDS:
                if name in output:
                    self.issues.add_warning(
                        "LOAD_DEPRECATED_ITEM",
                        f"usage of deprecated field '{name}' has been detected in the rule output",
                        output_ctx,
                    )
            cond_ctx = r.cond_ctx or CondContext(r.ctx)
            text, ast = self.parse_condition(condition, cond_ctx)
            ast = self.resolve(ast, table, text, CondContext(r.ctx))
            self.warn_deprecated(ast, cond_ctx.ctx)
            try:
                flt = self.cache.filters.get(ast)
                if flt is None:
                    flt = self.cache.filters[ast] = self.backend.compile_filter(ast)
            except LabError as exc:
                where = cond_ctx.at_offset(text, getattr(exc, "pos", None))
                if is_unknown_type_or_field(exc.message) and r.skip_if_unknown_filter:
                    self.issues.add_warning("LOAD_UNKNOWN_FILTER", exc.message, where)
                    continue
                raise RuleLoadError("LOAD_ERR_COMPILE_CONDITION", exc.message, where) from None
            for msg, pos in getattr(flt, "warnings", ()) or ():
                self.issues.add_warning("LOAD_COMPILE_CONDITION", msg,
                                        cond_ctx.at_offset(text, pos))
            if r.source == SYSCALL_SOURCE and r.warn_evttypes:
                if self.backend.too_many_evttypes(flt.evttypes):
                    self.issues.add_warning(
                        "LOAD_NO_EVTTYPE",
                        "Rule matches too many evt.type values. This has a significant "
                        "performance penalty.",
                        r.ctx,
                    )
            self.out.rules.append(CompiledRule(
                name=r.name, source=r.source, desc=r.desc, priority=r.priority,
                tags=tuple(sorted(r.tags)), output=output, output_format=fmt,
                condition=text, ast=ast, filter=flt, enabled=r.enabled,
                exception_fields=frozenset(exception_fields),
            ))


def compile_all(col: Collector, issues: Issues, backend: Backend,
                cache: CompileCache | None = None) -> CompileOutput | None:
    """Compile everything collected so far; None (and an error in issues) on failure."""
    comp = _Compiler(col, issues, backend, CompileCache() if cache is None else cache)
    try:
        comp.out.lists = compile_lists(col)
        comp.compile_macros()
        comp.compile_rules()
    except RuleLoadError as exc:
        issues.add_error(exc.code, exc.message, exc.ctx)
        return None
    for macro in comp.out.macros.values():
        if not macro.used:
            issues.add_warning("LOAD_UNUSED_MACRO", "Macro not referred to by any other rule/macro",
                               col.macros[macro.name].ctx)
    for lst in comp.out.lists:
        if not lst.used:
            issues.add_warning("LOAD_UNUSED_LIST", "List not referred to by any other rule/macro",
                               col.lists[lst.name].ctx)
    return comp.out
