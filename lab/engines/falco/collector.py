"""The collector: rule/macro/list definitions in load order (rule_loader_collector.cpp).

The reader decodes each YAML item into one of the *Info records below and calls
define / append / selective_replace / enable; the collector merges them the way
Falco does, raising RuleLoadError with Falco's wording when a merge is invalid.
It also holds the load-problem plumbing (Context, Issues) the stages share.

Order matters as in Falco: every define/append/replace takes the next index; a
redefinition keeps the *position* (index) of the first definition and records
the new index as its "visibility", which decides which earlier lists/macros it
may refer to.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

# Error and warning codes, as Falco names them (falco_load_result.cpp).
ERROR_TEXT = {
    "LOAD_ERR_FILE_READ": "File read error",
    "LOAD_ERR_YAML_PARSE": "YAML parse error",
    "LOAD_ERR_YAML_VALIDATE": "Error validating internal structure of YAML file",
    "LOAD_ERR_COMPILE_CONDITION": "Error compiling condition",
    "LOAD_ERR_COMPILE_OUTPUT": "Error compiling output",
    "LOAD_ERR_VALIDATE": "Error validating rule/macro/list/exception objects",
    "LOAD_ERR_EXTENSION": "Error in extension item",
}
WARNING_TEXT = {
    "LOAD_UNKNOWN_SOURCE": "Unknown event source",
    "LOAD_UNSAFE_NA_CHECK": "Unsafe <NA> comparison in condition",
    "LOAD_NO_EVTTYPE": "Condition has no event-type restriction",
    "LOAD_UNKNOWN_FILTER": "Unknown field or event-type in condition or output",
    "LOAD_UNUSED_MACRO": "Unused macro",
    "LOAD_UNUSED_LIST": "Unused list",
    "LOAD_UNKNOWN_ITEM": "Unknown rules file item",
    "LOAD_DEPRECATED_ITEM": "Used deprecated item",
    "LOAD_WARNING_EXTENSION": "Warning in extension item",
    "LOAD_APPEND_NO_VALUES": "Overriding/appending with no values",
    "LOAD_EXCEPTION_NAME_NOT_UNIQUE": "Multiple exceptions defined with the same name",
    "LOAD_INVALID_MACRO_NAME": "Invalid macro name",
    "LOAD_INVALID_LIST_NAME": "Invalid list name",
    "LOAD_COMPILE_CONDITION": "Warning in rule condition",
    "LOAD_UNKNOWN_KEY": "Unknown key in item definition",
}

# Messages shared by reader and collector (rule_loading_messages.h).
WARNING_APPEND = (
    "'append' key is deprecated. Add an 'append' entry (e.g. 'condition: append') "
    "under 'override' instead."
)
WARNING_ENABLED = (
    "The standalone 'enabled' key usage is deprecated. The correct approach requires "
    "also a 'replace' entry under the 'override' key (i.e. 'enabled: replace')."
)
ERROR_OVERRIDE_APPEND = (
    "Keys 'override' and 'append: true' cannot be used together. Add an 'append' entry "
    "(e.g. 'condition: append') under 'override' instead."
)
ERROR_NO_PREVIOUS_MACRO = (
    "Macro uses 'append' or 'override.condition: append' but no macro by that name "
    "already exists"
)
ERROR_NO_PREVIOUS_LIST = (
    "List uses 'append' or 'override.items: append' but no list by that name already exists"
)
ERROR_NO_PREVIOUS_RULE_APPEND = (
    "Rule uses 'append' or 'override.<key>: append' but no rule by that name already exists"
)
ERROR_NO_PREVIOUS_RULE_REPLACE = (
    "An 'override.<key>: replace' to a rule was requested but no rule by that name "
    "already exists"
)

# Every operator libsinsp's parser knows (parser::supported_operators()).
OPERATORS = frozenset(
    {"exists", "<=", "<", ">=", ">", "==", "=", "!=", "glob", "iglob", "contains",
     "icontains", "bcontains", "startswith", "bstartswith", "endswith", "regex",
     "intersects", "in", "pmatch"}
)
LIST_OPERATORS = frozenset({"intersects", "in", "pmatch"})

SYSCALL_SOURCE = "syscall"


@dataclass(frozen=True)
class Context:
    """Where a problem is: file, 1-based line, and the item ("rule 'x'") it belongs to."""

    file: str
    line: int | None = None
    item: str | None = None

    def at(self, line: int | None) -> Context:
        return Context(self.file, line if line is not None else self.line, self.item)


@dataclass(frozen=True)
class CondContext:
    """A condition's place: its first content line, and whether its newlines are kept
    (literal block, `|`), so an offset inside it can be turned into a line."""

    ctx: Context
    literal: bool = False

    def at_offset(self, text: str, pos: int | None) -> Context:
        if pos is None or not self.literal or self.ctx.line is None:
            return self.ctx
        return self.ctx.at(self.ctx.line + text.count("\n", 0, max(0, pos)))


Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Issue:
    severity: Severity
    code: str
    message: str
    ctx: Context


class Issues(list[Issue]):
    """The problems of loading one file (Falco's load_result)."""

    def add_error(self, code: str, message: str, ctx: Context) -> None:
        self.append(Issue("error", code, message, ctx))

    def add_warning(self, code: str, message: str, ctx: Context) -> None:
        self.append(Issue("warning", code, message, ctx))

    @property
    def successful(self) -> bool:
        return not any(i.severity == "error" for i in self)


class RuleLoadError(Exception):
    """Stops reading or compiling, as Falco's rule_load_exception does."""

    def __init__(self, code: str, message: str, ctx: Context) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ctx = ctx


def throw_if(cond: bool, code: str, message: str, ctx: Context) -> None:
    if cond:
        raise RuleLoadError(code, message, ctx)


@dataclass
class Entry:
    """An exception's fields/comps/values entry: a string or a (nested) list of them."""

    is_list: bool = False
    item: str = ""
    items: list[Entry] = field(default_factory=list)

    def is_valid(self) -> bool:
        return bool(self.items) if self.is_list else bool(self.item)


@dataclass
class ExceptionInfo:
    name: str
    ctx: Context
    fields: Entry = field(default_factory=Entry)
    comps: Entry = field(default_factory=Entry)
    values: list[Entry] = field(default_factory=list)


@dataclass
class ListInfo:
    name: str
    items: list[str]
    ctx: Context
    index: int = 0
    visibility: int = 0


@dataclass
class MacroInfo:
    name: str
    cond: str
    ctx: Context
    cond_ctx: CondContext
    index: int = 0
    visibility: int = 0


@dataclass
class RuleInfo:
    name: str
    ctx: Context
    cond: str = ""
    cond_ctx: CondContext | None = None
    output: str = ""
    output_ctx: Context | None = None
    desc: str = ""
    priority: int = 7
    source: str = SYSCALL_SOURCE
    enabled: bool = True
    warn_evttypes: bool = True
    skip_if_unknown_filter: bool = False
    tags: set[str] = field(default_factory=set)
    exceptions: list[ExceptionInfo] = field(default_factory=list)
    index: int = 0
    visibility: int = 0
    unknown_source: bool = False


@dataclass
class RuleUpdate:
    """A partial rule: what an append or a selective replace carries (rule_update_info)."""

    name: str
    ctx: Context
    cond: str | None = None
    output: str | None = None
    desc: str | None = None
    tags: set[str] | None = None
    exceptions: list[ExceptionInfo] | None = None
    priority: int | None = None
    enabled: bool | None = None
    warn_evttypes: bool | None = None
    skip_if_unknown_filter: bool | None = None

    def has_any_value(self) -> bool:
        return any(
            v is not None
            for v in (self.cond, self.output, self.desc, self.tags, self.exceptions,
                      self.priority, self.enabled, self.warn_evttypes,
                      self.skip_if_unknown_filter)
        )


Version = tuple[int, int, int]


@dataclass
class PluginRequirement:
    name: str
    version: str


@dataclass
class Collector:
    """Definitions in load order, shared by every file loaded into one engine."""

    engine_version: Version
    sources: frozenset[str] = frozenset({SYSCALL_SOURCE})
    # Whether a field (as written, "proc.aname[2]") exists for the syscall source.
    is_field_defined: Callable[[str], bool] = lambda _name: True
    lists: dict[str, ListInfo] = field(default_factory=dict)
    macros: dict[str, MacroInfo] = field(default_factory=dict)
    rules: dict[str, RuleInfo] = field(default_factory=dict)
    required_plugin_versions: list[list[PluginRequirement]] = field(default_factory=list)
    _cur_index: int = 0

    def _next_index(self) -> int:
        self._cur_index += 1
        return self._cur_index - 1

    def require_engine_version(self, version: Version, text: str, ctx: Context) -> None:
        mine = self.engine_version
        compatible = mine[0] == version[0] and mine >= version
        throw_if(
            not compatible,
            "LOAD_ERR_VALIDATE",
            f"Rules require engine version {text}, but engine version is "
            f"{'.'.join(str(v) for v in mine)}",
            ctx,
        )

    def require_plugins(self, alternatives: list[PluginRequirement], ctx: Context) -> None:
        names: set[str] = set()
        for req in alternatives:
            throw_if(
                parse_version(req.version) is None,
                "LOAD_ERR_VALIDATE",
                f"Invalid required version '{req.version}' for plugin '{req.name}'",
                ctx,
            )
            throw_if(
                req.name in names,
                "LOAD_ERR_VALIDATE",
                f"Defined multiple alternative version requirements for plugin '{req.name}'",
                ctx,
            )
            names.add(req.name)
        self.required_plugin_versions.append(alternatives)

    def define_list(self, info: ListInfo) -> None:
        _define(self.lists, info, self._next_index())

    def append_list(self, info: ListInfo) -> None:
        prev = self.lists.get(info.name)
        throw_if(prev is None, "LOAD_ERR_VALIDATE", ERROR_NO_PREVIOUS_LIST, info.ctx)
        assert prev is not None
        prev.items.extend(info.items)
        prev.visibility = self._next_index()

    def define_macro(self, info: MacroInfo) -> None:
        _define(self.macros, info, self._next_index())

    def append_macro(self, info: MacroInfo) -> None:
        prev = self.macros.get(info.name)
        throw_if(prev is None, "LOAD_ERR_VALIDATE", ERROR_NO_PREVIOUS_MACRO, info.ctx)
        assert prev is not None
        prev.cond += " " + info.cond
        prev.visibility = self._next_index()

    def define_rule(self, info: RuleInfo, issues: Issues) -> None:
        prev = self.rules.get(info.name)
        throw_if(
            prev is not None and prev.source != info.source,
            "LOAD_ERR_VALIDATE",
            "Rule has been re-defined with a different source",
            info.ctx,
        )
        known = info.source in self.sources
        if not known:
            info.unknown_source = True
            issues.add_warning(
                "LOAD_UNKNOWN_SOURCE", f"Unknown source {info.source}, skipping", info.ctx
            )
        for ex in info.exceptions:
            throw_if(
                not ex.fields.is_valid(),
                "LOAD_ERR_VALIDATE",
                "Rule exception item must have fields property with a list of fields",
                ex.ctx,
            )
            self._validate_exception(ex, known)
        _define(self.rules, info, self._next_index())

    def append_rule(self, info: RuleUpdate) -> None:
        prev = self.rules.get(info.name)
        throw_if(prev is None, "LOAD_ERR_VALIDATE", ERROR_NO_PREVIOUS_RULE_APPEND, info.ctx)
        assert prev is not None
        throw_if(
            not info.has_any_value(),
            "LOAD_ERR_VALIDATE",
            "Appended rule must have exceptions or condition property",
            info.ctx,
        )
        known = not prev.unknown_source
        if info.cond:
            prev.cond += " " + info.cond
        if info.output:
            prev.output += " " + info.output
        if info.desc:
            prev.desc += " " + info.desc
        if info.tags is not None:
            prev.tags |= info.tags
        for ex in info.exceptions or ():
            prev_ex = next((e for e in prev.exceptions if e.name == ex.name), None)
            if prev_ex is None:
                throw_if(
                    not ex.fields.is_valid(),
                    "LOAD_ERR_VALIDATE",
                    "Rule exception must have fields property with a list of fields",
                    ex.ctx,
                )
                throw_if(
                    not ex.values,
                    "LOAD_ERR_VALIDATE",
                    "Rule exception must have values property with a list of values",
                    ex.ctx,
                )
                self._validate_exception(ex, known)
                prev.exceptions.append(ex)
            else:
                throw_if(
                    ex.fields.is_valid(),
                    "LOAD_ERR_VALIDATE",
                    "Can not append exception fields to existing exception, only values",
                    ex.ctx,
                )
                throw_if(
                    ex.comps.is_valid(),
                    "LOAD_ERR_VALIDATE",
                    "Can not append exception comps to existing exception, only values",
                    ex.ctx,
                )
                prev_ex.values.extend(ex.values)
        prev.visibility = self._next_index()

    def replace_rule(self, info: RuleUpdate) -> None:
        prev = self.rules.get(info.name)
        throw_if(prev is None, "LOAD_ERR_VALIDATE", ERROR_NO_PREVIOUS_RULE_REPLACE, info.ctx)
        assert prev is not None
        throw_if(
            not info.has_any_value(),
            "LOAD_ERR_VALIDATE",
            "The rule must have at least one field that can be replaced",
            info.ctx,
        )
        if info.cond is not None:
            prev.cond = info.cond
        if info.output is not None:
            prev.output = info.output
        if info.desc is not None:
            prev.desc = info.desc
        if info.tags is not None:
            prev.tags = set(info.tags)
        if info.exceptions is not None:
            # Falco 0.44 stores replaced exceptions as given; validating them here
            # keeps a bad replacement an error instead of a broken condition later.
            for ex in info.exceptions:
                throw_if(
                    not ex.fields.is_valid(),
                    "LOAD_ERR_VALIDATE",
                    "Rule exception item must have fields property with a list of fields",
                    ex.ctx,
                )
                self._validate_exception(ex, not prev.unknown_source)
            prev.exceptions = list(info.exceptions)
        if info.priority is not None:
            prev.priority = info.priority
        if info.enabled is not None:
            prev.enabled = info.enabled
        if info.warn_evttypes is not None:
            prev.warn_evttypes = info.warn_evttypes
        if info.skip_if_unknown_filter is not None:
            prev.skip_if_unknown_filter = info.skip_if_unknown_filter
        prev.visibility = self._next_index()

    def enable_rule(self, name: str, enabled: bool, ctx: Context) -> None:
        prev = self.rules.get(name)
        throw_if(
            prev is None,
            "LOAD_ERR_VALIDATE",
            "Rule has 'enabled' key but no rule by that name already exists",
            ctx,
        )
        assert prev is not None
        prev.enabled = enabled

    def _validate_exception(self, ex: ExceptionInfo, check_fields: bool) -> None:
        """Default comps and check them, as validate_exception_info does."""
        if ex.fields.is_list:
            if not ex.comps.is_valid():
                ex.comps = Entry(is_list=True, items=[Entry(item="=") for _ in ex.fields.items])
            throw_if(
                len(ex.fields.items) != len(ex.comps.items),
                "LOAD_ERR_VALIDATE",
                "Fields and comps lists must have equal length",
                ex.ctx,
            )
            for comp in ex.comps.items:
                throw_if(
                    comp.item not in OPERATORS,
                    "LOAD_ERR_VALIDATE",
                    f"'{comp.item}' is not a supported comparison operator",
                    ex.ctx,
                )
            if check_fields:
                for f in ex.fields.items:
                    throw_if(
                        not self.is_field_defined(f.item),
                        "LOAD_ERR_VALIDATE",
                        f"'{f.item}' is not a supported filter field",
                        ex.ctx,
                    )
        else:
            if not ex.comps.is_valid():
                ex.comps = Entry(item="in")
            throw_if(
                ex.comps.is_list,
                "LOAD_ERR_VALIDATE",
                "Fields and comps must both be strings",
                ex.ctx,
            )
            throw_if(
                ex.comps.item not in LIST_OPERATORS,
                "LOAD_ERR_VALIDATE",
                "When fields is a single value, comps must be one of (in, pmatch, intersects)",
                ex.ctx,
            )
            if check_fields:
                throw_if(
                    not self.is_field_defined(ex.fields.item),
                    "LOAD_ERR_VALIDATE",
                    f"'{ex.fields.item}' is not a supported filter field",
                    ex.ctx,
                )


_Info = TypeVar("_Info", ListInfo, MacroInfo, RuleInfo)


def _define(infos: dict[str, _Info], info: _Info, index: int) -> None:
    """A redefinition replaces the old one but keeps its position (Falco's define_info)."""
    prev = infos.get(info.name)
    info.index = prev.index if prev is not None else index
    info.visibility = index
    infos[info.name] = info


def parse_version(text: str) -> Version | None:
    """"x.y.z" as libsinsp's sinsp_version reads it (anything after z is ignored)."""
    m = re.match(r"\s*(\d+)\.(\d+)\.(\d+)", text)
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3))
