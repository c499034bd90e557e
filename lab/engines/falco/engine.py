"""The engine's public face: load rules files in order, then run events through them.

CONTRACT (other modules code against it; keep the names and shapes):

    result = load_rules([("falco_rules.yaml", text1), ("falco_rules.local.yaml", text2)])
    for report in result.reports:      # one per file, in order
        report.status                  # "Ok" | "Ok, with warnings" | "Invalid"
        report.problems                # Problems, errors first, each with file/line/item
    if result.ruleset is not None:     # None when any file is Invalid: Falco would not start
        alerts = result.ruleset.process(event)   # event: Mapping of Falco field -> value

Events are Mappings keyed by Falco field names as `sysdig -j -p '*%f ...'` prints
them ("proc.name", "proc.aname[2]", "evt.arg.flags"); None or absent means the
field is not available for that event. Enter events (evt.dir ">") are skipped.

Loading follows `falco -V a.yaml -V b.yaml` (Falco 0.44): each file is read into
the same collector and then *everything collected so far* is compiled again, so a
file's report can carry warnings about definitions of an earlier file (an unused
macro, say), exactly as Falco's does. Loading goes on after an invalid file so that
every report is filled; the ruleset is the last compile, and only when all loaded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

from lab.engines.falco import compiler, reader
from lab.engines.falco.collector import (
    ERROR_TEXT,
    WARNING_TEXT,
    Collector,
    Context,
    Issue,
    Issues,
    PluginRequirement,
    parse_version,
)
from lab.engines.falco.compiler import Backend, CompiledRule
from lab.engines.falco.output import compile_output, format_evt_time, format_iso8601, parse_time
from lab.engines.falco.priorities import DEBUG, PRIORITIES, parse_priority
from lab.errors import LabError

__all__ = [
    "ENGINE_VERSION", "LOADED_PLUGINS", "PRIORITIES", "Alert", "FileReport", "LoadResult",
    "Problem", "Ruleset", "load_rules",
]

Severity = Literal["error", "warning"]

# The engine version of Falco 0.44 (rules files may require at most this), and the
# plugins a default Falco 0.44 install loads (the container plugin provides
# container.* fields; k8saudit and others are not loaded, so their sources are unknown).
ENGINE_VERSION = (0, 57, 0)
LOADED_PLUGINS = {"container": "0.6.0"}

# Not a load_result code of Falco: Falco exits with this message (no code) when a
# rules file's required_plugin_versions are not met by the loaded plugins.
PLUGIN_REQUIREMENT = "PLUGIN_REQUIREMENT"


@dataclass(frozen=True)
class Problem:
    """One error or warning of loading, located the way Falco locates it.

    str(problem) is one line:

        falco_rules.local.yaml:12: rule 'Shell in pod': LOAD_ERR_COMPILE_CONDITION
        (Error compiling condition): <message>

    i.e. "file[:line]: [item: ]CODE (what the code means): message", with Falco's
    code, its short text and its message; the line is the most precise Falco knows
    (the key or value at fault), the item the rule/macro/list it belongs to.
    """

    severity: Severity
    code: str  # Falco's code: "LOAD_ERR_COMPILE_CONDITION", "LOAD_UNKNOWN_KEY", ...
    message: str  # Falco's wording
    file: str
    line: int | None = None  # 1-based line of the item or key the problem is about
    item: str | None = None  # "rule 'Terminal shell in container'", "macro 'spawned_process'"

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        text = ERROR_TEXT.get(self.code) or WARNING_TEXT.get(self.code)
        code = f"{self.code} ({text})" if text else self.code
        item = f" {self.item}:" if self.item else ""
        # one line: a message quoting a multi-line condition keeps its newlines escaped
        message = self.message.replace("\r", "\\r").replace("\n", "\\n")
        return f"{where}:{item} {code}: {message}"


@dataclass
class FileReport:
    name: str
    problems: list[Problem] = field(default_factory=list)

    @property
    def status(self) -> str:
        """ "Ok", "Ok, with warnings" or "Invalid", as `falco -V` prints it."""
        if any(p.severity == "error" for p in self.problems):
            return "Invalid"
        return "Ok, with warnings" if self.problems else "Ok"

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


@dataclass(frozen=True)
class Alert:
    """One alert, with exactly the keys of Falco's json_output."""

    time: str  # RFC 3339 with nanoseconds, UTC: "2026-11-27T10:00:00.000000000Z"
    rule: str
    priority: str  # one of PRIORITIES
    source: str  # "syscall"
    tags: tuple[str, ...]  # sorted, as Falco keeps them
    hostname: str
    # The whole line as Falco prints it, in text and in JSON alike:
    # "10:00:00.000000000: Warning <the rule's rendered output>".
    output: str
    output_fields: dict[str, Any]  # every %field of the output, and evt.time -> value or None
    message: str = ""  # the rule's rendered output alone (Falco's optional "message")

    def to_json(self) -> dict[str, Any]:
        """Falco's json_output object; keys sorted as Falco (nlohmann::json) writes them."""
        return {
            "hostname": self.hostname,
            "output": self.output,
            "output_fields": dict(sorted(self.output_fields.items())),
            "priority": self.priority,
            "rule": self.rule,
            "source": self.source,
            "tags": list(self.tags),
            "time": self.time,
        }

    def to_text(self) -> str:
        """The line Falco writes with json_output: false."""
        return self.output


class Ruleset:
    """Compiled, enabled rules indexed by evt.type, as Falco's engine holds them."""

    rule_names: list[str]  # every loaded rule, enabled or not, in load order

    def __init__(self, rules: Sequence[CompiledRule], *, min_priority: int = DEBUG,
                 rule_matching: Literal["first", "all"] = "first") -> None:
        self.rules = list(rules)
        self.rule_names = [r.name for r in self.rules]
        self.first = rule_matching == "first"
        active = [_Active(r) for r in self.rules if r.enabled and r.priority <= min_priority]
        types = sorted({t for a in active if a.types is not None for t in a.types})
        # Per event type, the rules that can match it, in load order (Falco's
        # evttype_index_ruleset); rules without an evt.type restriction are in all.
        self._by_type: dict[str, tuple[_Active, ...]] = {
            t: tuple(a for a in active if a.types is None or t in a.types) for t in types
        }
        self._any = tuple(a for a in active if a.types is None)
        # Per event type seen: its rules, and a function telling which of them an event
        # matches (see _candidates), made on first use.
        self._seen: dict[str, _Candidates] = {}
        self._any_candidates: _Candidates | None = None

    def rules_for(self, evt_type: str) -> list[str]:
        return [a.rule.name for a in self._by_type.get(evt_type, self._any)]

    def process(
        self,
        event: Mapping[str, Any],
        *,
        hostname: str = "localhost",
        default_time: str | None = None,
    ) -> list[Alert]:
        """The alerts this event raises (empty, one, or several with rule_matching all)."""
        if event.get("evt.dir") == ">":
            return []
        etype = event.get("evt.type")
        found = self._seen.get(etype) if isinstance(etype, str) else None
        rules, matcher = found or self._candidates(etype)
        hits = matcher(event)
        if not hits:
            return []
        return [rules[i].alert(event, hostname, default_time) for i in hits]

    def _candidates(self, etype: Any) -> _Candidates:
        """The rules for an event type not seen yet, and their matcher."""
        rules = self._by_type.get(etype) if isinstance(etype, str) else None
        if rules is None:  # only the rules without an evt.type restriction
            if self._any_candidates is None:
                self._any_candidates = self._tiered(self._any, None, self._set_any)
            if not self._any and isinstance(etype, str) and len(self._seen) < 4096:
                self._seen[etype] = self._any_candidates  # no rule: a type no rule watches
            return self._any_candidates
        found = self._seen[etype] = self._tiered(rules, etype,
                                                 partial(self._seen.__setitem__, etype))
        return found

    def _set_any(self, candidates: _Candidates) -> None:
        self._any_candidates = candidates

    def _tiered(self, rules: tuple[_Active, ...], etype: str | None,
                replace: Callable[[_Candidates], None]) -> _Candidates:
        """A matcher running the rules' closures, which after COMPILE_AFTER events
        replaces itself with one generated function, with the checks of evt.type alone
        decided for the type: a few times faster, but a few milliseconds to make,
        which a handful of events (a lab check) would not win back."""
        if not rules:
            return rules, _no_hits
        first = self.first
        closures = _matcher(rules, etype, first, False)
        countdown = COMPILE_AFTER

        def warming(event: Mapping[str, Any]) -> Sequence[int]:
            nonlocal countdown
            countdown -= 1
            if countdown == 0:
                replace((rules, _matcher(rules, etype, first, True)))
            return closures(event)

        return rules, warming


COMPILE_AFTER = 1000


def _no_hits(_event: Mapping[str, Any]) -> Sequence[int]:
    return ()
_Candidates = tuple[tuple["_Active", ...], Callable[[Mapping[str, Any]], Sequence[int]]]


def _matcher(actives: Sequence[_Active], etype: str | None, first: bool,
             generate: bool) -> Callable[[Mapping[str, Any]], Sequence[int]]:
    from lab.engines.falco.condition.filter import compile_matcher

    return compile_matcher([a.rule.filter for a in actives], etype, first, generate=generate)


class _Active:
    """A rule in the ruleset: its event types, and how to write its alert."""

    __slots__ = ("rule", "types", "priority")

    def __init__(self, rule: CompiledRule) -> None:
        self.rule = rule
        self.types = rule.filter.evttypes
        self.priority = PRIORITIES[rule.priority]

    def alert(self, event: Mapping[str, Any], hostname: str, default_time: str | None) -> Alert:
        ts = event_time(event, default_time)
        fmt = self.rule.output_format
        message, fields = fmt.alert(event, ts)
        return Alert(
            time=format_iso8601(ts),
            rule=self.rule.name,
            priority=self.priority,
            source=self.rule.source,
            tags=self.rule.tags,
            hostname=hostname,
            output=f"{format_evt_time(ts)}: {self.priority} {message}",
            output_fields=fields,
            message=message,
        )


def event_time(event: Mapping[str, Any], default_time: str | None = None) -> int:
    """The event's timestamp in ns: evt.rawtime, else evt.time, else default_time, else 0."""
    for key in ("evt.rawtime", "evt.time"):
        ts = parse_time(event.get(key))
        if ts is not None:
            return ts
    ts = parse_time(default_time)
    return ts if ts is not None else 0


@dataclass
class LoadResult:
    reports: list[FileReport]
    ruleset: Ruleset | None

    @property
    def ok(self) -> bool:
        return self.ruleset is not None


def default_backend() -> Backend:
    """The lab's condition parser, filter compiler, field catalog and formatter."""
    from lab.engines.falco import fields
    from lab.engines.falco.condition import filter as flt
    from lab.engines.falco.condition.ast import FieldRef, Operand
    from lab.engines.falco.condition.evttypes import too_many_evttypes
    from lab.engines.falco.condition.parser import parse

    def operand(op: Operand) -> tuple[Callable[[Mapping[str, Any]], Any], Callable[[Any], str]]:
        get = flt.compile_operand(op)
        ftype, _ = flt.operand_type(op)
        return get, flt.renderer(ftype)

    def is_field_defined(text: str) -> bool:
        m = _FIELD_TEXT.fullmatch(text)
        if m is None:
            return False
        try:
            fields.resolve(FieldRef(m.group(1), m.group(2)))
        except LabError:
            return False
        return True

    return Backend(
        parse=parse,
        compile_filter=flt.compile_filter,
        compile_output=lambda text: compile_output(text, operand),
        is_field_defined=is_field_defined,
        too_many_evttypes=too_many_evttypes,
    )


# An exception's field as written: name, and the argument between brackets if any.
_FIELD_TEXT = re.compile(r"([^\[\]]+)(?:\[(.*)\])?")


def _problem(issue: Issue) -> Problem:
    ctx = issue.ctx
    return Problem(issue.severity, issue.code, issue.message, ctx.file, ctx.line, ctx.item)


def _version_ok(have: str, want: str) -> bool:
    h, w = parse_version(have), parse_version(want)
    return h is not None and w is not None and h[0] == w[0] and h >= w


def check_plugin_requirements(reqs: list[list[PluginRequirement]],
                              loaded: Mapping[str, str]) -> str | None:
    """Falco's check after loading a rules file: the message of the first unmet one."""
    for alternatives in reqs:
        satisfied = False
        for req in alternatives:
            have = loaded.get(req.name)
            if have is None:
                continue
            if not _version_ok(have, req.version):
                return (f"Plugin '{req.name}' version '{have}' is not compatible with "
                        f"required plugin version '{req.version}'")
            satisfied = True
            break
        if not satisfied:
            wanted = ", ".join(f"{r.name} (>= {r.version})" for r in alternatives)
            return f"Plugin requirement not satisfied, must load one of: {wanted}"
    return None


def load_rules(
    sources: Sequence[tuple[str, str]],
    *,
    min_priority: str = "debug",
    rule_matching: Literal["first", "all"] = "first",
    backend: Backend | None = None,
) -> LoadResult:
    """Load (name, text) rules files in order into one engine, as `falco -r a -r b` does."""
    min_index = parse_priority(min_priority)
    if min_index is None:
        raise LabError(f"invalid priority '{min_priority}'", item="priority")
    if rule_matching not in ("first", "all"):
        raise LabError(f"invalid rule_matching '{rule_matching}': use first or all",
                       item="rule_matching")
    if backend is None:
        backend = default_backend()
    collector = Collector(engine_version=ENGINE_VERSION, is_field_defined=backend.is_field_defined)
    cache = compiler.CompileCache()
    reports: list[FileReport] = []
    last: compiler.CompileOutput | None = None
    all_ok = True
    plugins_failed = False
    for name, text in sources:
        issues = Issues()
        if reader.read(name, text, collector, issues):
            out = compiler.compile_all(collector, issues, backend, cache)
            if out is not None:
                last = out
        if not plugins_failed:
            err = check_plugin_requirements(collector.required_plugin_versions, LOADED_PLUGINS)
            if err is not None:
                plugins_failed = True
                issues.add_error(PLUGIN_REQUIREMENT, err, Context(name))
        all_ok &= issues.successful
        problems = [_problem(i) for i in issues]
        problems.sort(key=lambda p: p.severity != "error")  # errors first, stable
        reports.append(FileReport(name, problems))
    ruleset = None
    if all_ok:
        ruleset = Ruleset(last.rules if last is not None else [], min_priority=min_index,
                          rule_matching=rule_matching)
    return LoadResult(reports, ruleset)

