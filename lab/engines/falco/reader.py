"""The reader: a rules file's YAML -> items handed to the collector (rule_loader_reader.cpp).

Each item is decoded from yaml-cpp-like raw nodes (yamlnodes.py) with the reader's
checks and wording, then defined in, appended to or replaced in the collector.
Reading stops at the first error, as Falco's does; warnings accumulate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lab.engines.falco.collector import (
    ERROR_OVERRIDE_APPEND,
    WARNING_APPEND,
    WARNING_ENABLED,
    Collector,
    CondContext,
    Context,
    Entry,
    ExceptionInfo,
    Issues,
    ListInfo,
    MacroInfo,
    PluginRequirement,
    RuleInfo,
    RuleLoadError,
    RuleUpdate,
    parse_version,
)
from lab.engines.falco.priorities import parse_priority
from lab.engines.falco.yamlnodes import (
    Map,
    Node,
    Scalar,
    Seq,
    YamlError,
    decode_bool,
    decode_uint32,
    is_null,
    parse_documents,
)
from lab.yamlsafe import MAX_EXPANDED_NODES

# Name checks of the reader (libsinsp parser tokens); a mismatch is only a warning.
RGX_IDENTIFIER = "([a-zA-Z]+[a-zA-Z0-9_]*)"
RGX_BARESTR = "([^()\"'[:space:]=,]+)"
_IDENTIFIER = re.compile(r"[a-zA-Z]+[a-zA-Z0-9_]*")
_BARESTR = re.compile(r"[^()\"'\s=,]+")

# Keys each item may carry; anything else is LOAD_UNKNOWN_KEY (a warning).
RULE_KEYS = frozenset(
    {"rule", "desc", "condition", "output", "priority", "source", "enabled", "tags",
     "exceptions", "warn_evttypes", "skip-if-unknown-filter", "override", "append",
     "capture", "capture_duration"}
)
MACRO_KEYS = frozenset({"macro", "condition", "override", "append"})
LIST_KEYS = frozenset({"list", "items", "override", "append"})
EXCEPTION_KEYS = frozenset({"name", "fields", "comps", "values"})
PLUGIN_KEYS = frozenset({"name", "version", "alternatives"})

RULE_APPENDABLE = ("condition", "exceptions", "output", "desc", "tags")
RULE_REPLACEABLE = (
    "condition", "exceptions", "output", "desc", "tags", "priority", "enabled",
    "warn_evttypes", "skip-if-unknown-filter",
)

@dataclass
class _Reader:
    """One file's read: holds its name, the issues sink and the collector."""

    name: str
    collector: Collector
    issues: Issues
    budget: int = MAX_EXPANDED_NODES

    def ctx(self, node: Node | None, item: str | None = None, base: Context | None = None
            ) -> Context:
        line = node.line if node is not None else None
        if base is not None:
            return base.at(line)
        return Context(self.name, line, item)

    @staticmethod
    def fail(message: str, ctx: Context) -> RuleLoadError:
        return RuleLoadError("LOAD_ERR_YAML_VALIDATE", message, ctx)

    # decode_val / decode_optional_val ------------------------------------------------

    def scalar(self, item: Map, key: str, ctx: Context, optional: bool = False) -> str | None:
        val = item.get(key)
        if val is None:
            if optional:
                return None
            raise self.fail(f"Item has no mapping for key '{key}'", ctx)
        if is_null(val):
            raise self.fail(f"Mapping for key '{key}' is empty", ctx)
        vctx = ctx.at(val.line)
        if not isinstance(val, Scalar):
            raise self.fail("Value is not a scalar value", vctx)
        if val.value == "":
            raise self.fail("Value must be non-empty", vctx)
        return val.value

    def string(self, item: Map, key: str, ctx: Context) -> str:
        value = self.scalar(item, key, ctx)
        assert value is not None
        return value

    def boolean(self, item: Map, key: str, ctx: Context, optional: bool = False) -> bool | None:
        text = self.scalar(item, key, ctx, optional)
        if text is None:
            return None
        value = decode_bool(text)
        if value is None:
            node = item.get(key)
            raise self.fail("Can't decode YAML scalar value", ctx.at(node.line if node else None))
        return value

    def sequence(self, item: Map, key: str, ctx: Context, optional: bool) -> list[str] | None:
        val = item.get(key)
        if val is None:
            if optional:
                return None
            raise self.fail(f"Item has no mapping for key '{key}'", ctx)
        if not isinstance(val, Seq):
            raise self.fail("Value is not a sequence", ctx.at(val.line))
        out = []
        for v in val.items:
            if not isinstance(v, Scalar) or v.is_null:
                raise self.fail("sequence value is not scalar", ctx.at(v.line))
            out.append(v.value)
        return out

    def tags(self, item: Map, ctx: Context) -> set[str] | None:
        values = self.sequence(item, "tags", ctx, optional=True)
        return None if values is None else set(values)

    def warn_unknown_keys(self, item: Map, known: frozenset[str], ctx: Context) -> None:
        for key, line in item.keys():
            if key not in known:
                self.issues.add_warning(
                    "LOAD_UNKNOWN_KEY", f"Unknown key '{key}'. It will be ignored.", ctx.at(line)
                )

    # override -----------------------------------------------------------------------

    def overrides(self, item: Map, appendable: tuple[str, ...] | frozenset[str],
                  replaceable: tuple[str, ...] | frozenset[str], ctx: Context
                  ) -> tuple[set[str], set[str]]:
        out_append: set[str] = set()
        out_replace: set[str] = set()
        val = item.get("override")
        if val is None or isinstance(val, Scalar):
            return out_append, out_replace  # yaml-cpp iterates nothing here
        if isinstance(val, Seq):
            raise RuleLoadError(
                "LOAD_ERR_VALIDATE",
                "invalid node; this may result from using a map iterator as a sequence "
                "iterator, or vice-versa",
                Context(self.name),
            )
        assert isinstance(val, Map)
        for k, v in val.pairs:
            if not isinstance(k, Scalar) or not isinstance(v, Scalar):
                raise RuleLoadError("LOAD_ERR_VALIDATE", "bad conversion", ctx.at(k.line))
            key, operation = k.value, v.value
            can_append = key in appendable
            can_replace = key in replaceable
            if operation == "append":
                if not can_append:
                    raise self.fail(
                        f"Key '{key}' cannot be appended to, use 'replace' instead", ctx.at(k.line)
                    )
                out_append.add(key)
            elif operation == "replace":
                if not can_replace:
                    raise self.fail(f"Key '{key}' cannot be replaced", ctx.at(k.line))
                out_replace.add(key)
            else:
                allowed = ("append " if can_append else "") + ("replace " if can_replace else "")
                raise self.fail(
                    f"Invalid override operation for key '{key}': '{operation}'. "
                    f"Allowed values are: {allowed}",
                    ctx.at(v.line),
                )
        return out_append, out_replace

    # exceptions -----------------------------------------------------------------------

    def exception_entry(self, val: Node | None, key: str | None, ctx: Context,
                        optional: bool) -> Entry:
        out = Entry()
        if val is None:
            if optional:
                return out
            raise self.fail(f"Item has no mapping for key '{key}'", ctx)
        self.budget -= 1
        if self.budget < 0:
            raise self.fail(
                f"exception values expand to more than {MAX_EXPANDED_NODES} entries "
                "through aliases; refusing them", ctx.at(val.line))
        vctx = ctx.at(val.line)
        if isinstance(val, Scalar) and not val.is_null:
            if val.value == "":
                raise self.fail("Value must be non-empty", vctx)
            out.item = val.value
        elif isinstance(val, Seq):
            out.is_list = True
            for v in val.items:
                out.items.append(self.exception_entry(v, None, vctx, optional=False))
        return out

    def exceptions(self, item: Map, ctx: Context, append: bool) -> list[ExceptionInfo]:
        exs = item.get("exceptions")
        result: list[ExceptionInfo] = []
        if exs is None or is_null(exs):
            return result
        if not isinstance(exs, Seq):
            raise self.fail("Rule exceptions must be a sequence", ctx.at(exs.line))
        for ex in exs.items:
            if not isinstance(ex, Map):
                raise self.fail("Rule exception must be a mapping", ctx.at(ex.line))
            name = self.string(ex, "name", ctx.at(ex.line))
            ex_ctx = ctx.at(ex.line)
            self.warn_unknown_keys(ex, EXCEPTION_KEYS, ex_ctx)
            if any(e.name == name for e in result):
                self.issues.add_warning(
                    "LOAD_EXCEPTION_NAME_NOT_UNIQUE",
                    f"Multiple definitions of exception '{name}' in the same rule",
                    ex_ctx,
                )
            info = ExceptionInfo(name, ex_ctx)
            # fields are optional when appending
            info.fields = self.exception_entry(ex.get("fields"), "fields", ex_ctx, append)
            info.comps = self.exception_entry(ex.get("comps"), "comps", ex_ctx, True)
            values = ex.get("values")
            if values is not None:
                if not isinstance(values, Seq):
                    raise self.fail("Rule exception values must be a sequence",
                                    ctx.at(values.line))
                for v in values.items:
                    info.values.append(self.exception_entry(v, None, ctx.at(v.line), False))
            elif append:
                self.issues.add_warning(
                    "LOAD_APPEND_NO_VALUES", "Overriding/appending exception with no values",
                    ex_ctx,
                )
            result.append(info)
        return result

    # items ----------------------------------------------------------------------------

    def read_item(self, item: Node) -> None:
        if not isinstance(item, Map):
            raise self.fail(
                "Unexpected element type. Each element should be a yaml associative array.",
                self.ctx(item, "rules content item"),
            )
        if item.get("required_engine_version") is not None:
            self.read_engine_version(item)
        elif item.get("required_plugin_versions") is not None:
            self.read_plugin_versions(item)
        elif item.get("list") is not None:
            self.read_list(item)
        elif item.get("macro") is not None:
            self.read_macro(item)
        elif item.get("rule") is not None:
            self.read_rule(item)
        else:
            self.issues.add_warning(
                "LOAD_UNKNOWN_ITEM", "Unknown top level item", self.ctx(item, "rules content item")
            )

    def read_engine_version(self, item: Map) -> None:
        ctx = self.ctx(item, "required_engine_version")
        text = self.string(item, "required_engine_version", ctx)
        number = decode_uint32(text)
        if number is not None:
            version = (0, number, 0)  # the implicit form of a bare number
            shown = f"0.{number}.0"
        else:
            parsed = parse_version(text)
            if parsed is None:
                raise self.fail(
                    f"Unable to parse engine version '{text}' as a semver string. "
                    'Expected "x.y.z" semver format.',
                    ctx,
                )
            version, shown = parsed, ".".join(str(v) for v in parsed)
        self.collector.require_engine_version(version, shown, ctx)

    def read_plugin_versions(self, item: Map) -> None:
        reqs = item.get("required_plugin_versions")
        assert reqs is not None
        ctx = self.ctx(reqs, "required plugin versions")
        if not isinstance(reqs, Seq):
            raise self.fail("Value of required_plugin_versions must be a sequence", ctx)
        for plugin in reqs.items:
            pctx = ctx.at(plugin.line)
            if not isinstance(plugin, Map):
                raise self.fail("Plugin version must be a mapping", pctx)
            name = self.string(plugin, "name", pctx)
            pctx = Context(self.name, plugin.line, f"required plugin versions entry '{name}'")
            version = self.string(plugin, "version", pctx)
            self.warn_unknown_keys(plugin, PLUGIN_KEYS, pctx)
            alternatives = [PluginRequirement(name, version)]
            alts = plugin.get("alternatives")
            if alts is not None:
                if not isinstance(alts, Seq):
                    raise self.fail("Value of plugin version alternatives must be a sequence",
                                    pctx)
                for alt in alts.items:
                    actx = pctx.at(alt.line)
                    if not isinstance(alt, Map):
                        raise self.fail("Plugin version alternative must be a mapping", actx)
                    alt_name = self.string(alt, "name", actx)
                    alternatives.append(
                        PluginRequirement(alt_name, self.string(alt, "version", actx))
                    )
            self.collector.require_plugins(alternatives, pctx)

    def read_list(self, item: Map) -> None:
        name = self.string(item, "list", self.ctx(item, "list"))
        ctx = self.ctx(item, f"list '{name}'")
        if not _BARESTR.fullmatch(name):
            self.issues.add_warning(
                "LOAD_INVALID_LIST_NAME",
                "List has an invalid name. List names should match a regular expression: "
                + RGX_BARESTR,
                ctx,
            )
        items = self.sequence(item, "items", ctx, optional=False)
        assert items is not None
        self.warn_unknown_keys(item, LIST_KEYS, ctx)
        append = bool(self.boolean(item, "append", ctx, optional=True))
        if append:
            self.issues.add_warning("LOAD_DEPRECATED_ITEM", WARNING_APPEND, ctx)
        over_append, over_replace = self.overrides(item, ("items",), ("items",), ctx)
        if append and (over_append or over_replace):
            raise self.fail(ERROR_OVERRIDE_APPEND, ctx)
        info = ListInfo(name, items, ctx)
        if append or "items" in over_append:
            self.collector.append_list(info)
        else:
            self.collector.define_list(info)

    def read_macro(self, item: Map) -> None:
        name = self.string(item, "macro", self.ctx(item, "macro"))
        ctx = self.ctx(item, f"macro '{name}'")
        if not _IDENTIFIER.fullmatch(name):
            self.issues.add_warning(
                "LOAD_INVALID_MACRO_NAME",
                "Macro has an invalid name. Macro names should match a regular expression: "
                + RGX_IDENTIFIER,
                ctx,
            )
        cond = self.string(item, "condition", ctx)
        cond_ctx = self.cond_context(item, ctx)
        self.warn_unknown_keys(item, MACRO_KEYS, ctx)
        append = bool(self.boolean(item, "append", ctx, optional=True))
        if append:
            self.issues.add_warning("LOAD_DEPRECATED_ITEM", WARNING_APPEND, ctx)
        over_append, over_replace = self.overrides(item, ("condition",), ("condition",), ctx)
        if append and (over_append or over_replace):
            raise self.fail(ERROR_OVERRIDE_APPEND, ctx)
        info = MacroInfo(name, cond, ctx, cond_ctx)
        if append or "condition" in over_append:
            self.collector.append_macro(info)
        else:
            self.collector.define_macro(info)

    def cond_context(self, item: Map, ctx: Context) -> CondContext:
        node = item.get("condition")
        if isinstance(node, Scalar) and node.literal:
            return CondContext(ctx.at(node.line + 1), literal=True)
        return CondContext(ctx.at(node.line if node is not None else None))

    def priority(self, item: Map, ctx: Context) -> int:
        text = self.string(item, "priority", ctx)
        value = parse_priority(text)
        if value is None:
            node = item.get("priority")
            raise self.fail("Invalid priority", ctx.at(node.line if node else None))
        return value

    def read_rule(self, item: Map) -> None:
        name = self.string(item, "rule", self.ctx(item, "rule"))
        ctx = self.ctx(item, f"rule '{name}'")
        self.warn_unknown_keys(item, RULE_KEYS, ctx)
        has_append_flag = bool(self.boolean(item, "append", ctx, optional=True))
        if has_append_flag:
            self.issues.add_warning("LOAD_DEPRECATED_ITEM", WARNING_APPEND, ctx)
        over_append, over_replace = self.overrides(item, RULE_APPENDABLE, RULE_REPLACEABLE, ctx)
        if has_append_flag and (over_append or over_replace):
            raise self.fail(ERROR_OVERRIDE_APPEND, ctx)
        if over_append or over_replace:
            self.read_rule_overrides(item, name, ctx, over_append, over_replace)
        elif has_append_flag:
            update = RuleUpdate(name, ctx)
            if item.get("condition") is not None:
                update.cond = self.string(item, "condition", ctx)
            if item.get("exceptions") is not None:
                update.exceptions = self.exceptions(item, ctx, append=True)
            self.collector.append_rule(update)
        elif all(item.get(k) is None for k in ("condition", "output", "desc", "priority")):
            # Only `enabled`: switch an earlier rule on or off (deprecated form).
            enabled = self.boolean(item, "enabled", ctx)
            self.issues.add_warning("LOAD_DEPRECATED_ITEM", WARNING_ENABLED, ctx)
            self.collector.enable_rule(name, bool(enabled), ctx)
        else:
            self.read_new_rule(item, name, ctx)

    def read_new_rule(self, item: Map, name: str, ctx: Context) -> None:
        info = RuleInfo(name, ctx)
        info.cond = self.string(item, "condition", ctx)
        info.cond_ctx = self.cond_context(item, ctx)
        info.output = self.string(item, "output", ctx).strip(" \t\n\r\f\v")
        out_node = item.get("output")
        info.output_ctx = ctx.at(out_node.line if out_node else None)
        info.desc = self.string(item, "desc", ctx)
        info.priority = self.priority(item, ctx)
        source = self.scalar(item, "source", ctx, optional=True)
        if source is not None:
            info.source = source
        for key, attr in (("enabled", "enabled"), ("warn_evttypes", "warn_evttypes"),
                          ("skip-if-unknown-filter", "skip_if_unknown_filter"),
                          ("capture", None)):
            value = self.boolean(item, key, ctx, optional=True)
            if value is not None and attr is not None:
                setattr(info, attr, value)
        info.tags = self.tags(item, ctx) or set()
        info.exceptions = self.exceptions(item, ctx, append=False)
        self.collector.define_rule(info, self.issues)

    def read_rule_overrides(self, item: Map, name: str, ctx: Context,
                            over_append: set[str], over_replace: set[str]) -> None:
        # The keys the item defines among those that may be overridden: each must be
        # claimed by an override entry, and each override entry must have its key.
        expected = {k for k in (*RULE_APPENDABLE, *RULE_REPLACEABLE) if item.get(k) is not None}

        def claim(overrides: set[str], kind: str, key: str) -> bool:
            if key not in overrides:
                return False
            if key not in expected:
                raise self.fail(
                    f"An {kind} override for '{key}' was specified but '{key}' is not defined",
                    ctx,
                )
            expected.discard(key)
            return True

        if over_append:
            update = RuleUpdate(name, ctx)
            self.fill_update(item, update, ctx, over_append, "append", claim)
            self.collector.append_rule(update)
        if over_replace:
            update = RuleUpdate(name, ctx)
            self.fill_update(item, update, ctx, over_replace, "replace", claim)
            self.collector.replace_rule(update)
        for key in sorted(expected):
            node = item.get(key)
            raise self.fail(
                f"Unexpected key '{key}': no corresponding entry under 'override' is defined.",
                ctx.at(node.line if node else None),
            )

    def fill_update(self, item: Map, update: RuleUpdate, ctx: Context, overrides: set[str],
                    kind: str, claim: object) -> None:
        assert callable(claim)
        if claim(overrides, kind, "condition"):
            update.cond = self.string(item, "condition", ctx)
        if claim(overrides, kind, "exceptions"):
            update.exceptions = self.exceptions(item, ctx, append=kind == "append")
        if claim(overrides, kind, "output"):
            update.output = self.string(item, "output", ctx)
        if claim(overrides, kind, "desc"):
            update.desc = self.string(item, "desc", ctx)
        if claim(overrides, kind, "tags"):
            update.tags = self.tags(item, ctx)
        if kind != "replace":
            return
        if claim(overrides, kind, "priority"):
            update.priority = self.priority(item, ctx)
        if claim(overrides, kind, "enabled"):
            update.enabled = self.boolean(item, "enabled", ctx)
        if claim(overrides, kind, "warn_evttypes"):
            update.warn_evttypes = self.boolean(item, "warn_evttypes", ctx)
        if claim(overrides, kind, "skip-if-unknown-filter"):
            update.skip_if_unknown_filter = self.boolean(item, "skip-if-unknown-filter", ctx)


def read(name: str, text: str, collector: Collector, issues: Issues) -> bool:
    """Read one rules file into the collector; False (with an error in issues) on failure.

    Items before the failing one stay collected, as in Falco.
    """
    file_ctx = Context(name)
    try:
        docs = parse_documents(text)
    except YamlError as exc:
        issues.add_error("LOAD_ERR_YAML_PARSE", exc.message, file_ctx.at(exc.line))
        return False
    reader = _Reader(name, collector, issues)
    for doc in docs:
        if doc is None or is_null(doc):
            continue
        try:
            if not isinstance(doc, (Map, Seq)):
                raise reader.fail("Rules content is not yaml", file_ctx)
            if not isinstance(doc, Seq):
                raise reader.fail("Rules content is not yaml array of objects", file_ctx)
            for item in doc.items:
                if not is_null(item):
                    reader.read_item(item)
        except RuleLoadError as exc:
            issues.add_error(exc.code, exc.message, exc.ctx)
            return False
    return True
