"""The rules files a node's Falco loads, in falco.yaml's order, through the Falco engine.

As Falco 0.44 does: an entry that does not exist is skipped; a folder contributes
its regular files in name order; only *.yaml and *.yml files are loaded; loading
stops at the first invalid file, and Falco then exits.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from lab.backends.sim.falco_config import FalcoConfig
from lab.backends.sim.falco_files import FalcoFiles
from lab.engines.falco.engine import PRIORITIES, LoadResult, Ruleset, load_rules
from lab.engines.falco.priorities import parse_priority
from lab.errors import LabError
from lab.evidence import FalcoMessage, FalcoRule, FalcoRulesFile

RULES_LIMIT = 8 * 1024 * 1024  # the official ruleset is ~150 KB
NO_RULES = (
    "You must specify at least one rules file/directory via -r or a rules_files entry in "
    "falco.yaml"
)


@dataclass
class RulesetFacts:
    """What loading the rules gave: per-file status, the ruleset Falco runs, and facts."""

    files: list[FalcoRulesFile] = field(default_factory=list)
    ruleset: Ruleset | None = None
    # The same rules without falco.yaml's filters (priority: debug, rule_matching: all),
    # to tell which alerts those filters dropped.
    unfiltered: Ruleset | None = None
    rules: list[FalcoRule] = field(default_factory=list)
    min_priority: str = "Debug"
    notes: list[str] = field(default_factory=list)
    error: str | None = None  # why Falco exits at start-up
    error_lines: list[str] = field(default_factory=list)  # what it prints then

    def below_minimum(self, priority: str) -> bool:
        """Whether falco.yaml's `priority` drops a rule of this priority."""
        rank = {p.lower(): i for i, p in enumerate(PRIORITIES)}
        return rank.get(priority.lower(), 0) > rank.get(self.min_priority.lower(), 99)


def _is_yaml(path: str) -> bool:
    return fnmatch.fnmatchcase(path, "*.yaml") or fnmatch.fnmatchcase(path, "*.yml")


def rules_file_paths(files: FalcoFiles, entries: list[str]) -> tuple[list[str], list[str]]:
    """The node paths of the files Falco loads for falco.yaml's entries, and notes."""
    paths: list[str] = []
    notes: list[str] = []
    for entry in entries:
        node_path = entry if entry.startswith("/") else "/" + entry
        kind = files.kind(node_path)
        if kind is None:
            # A missing folder (the stock rules.d) is normal; a missing .yaml is likely a typo.
            if _is_yaml(node_path):
                notes.append(f"rules file {entry} (in falco.yaml) does not exist: Falco skips it")
            continue
        if kind == "dir":
            names = [p for p in files.entries(node_path) if files.kind(p) == "file"]
            paths += [p for p in names if _is_yaml(p)]
            skipped = [p for p in names if not _is_yaml(p)]
        else:
            paths += [node_path] if _is_yaml(node_path) else []
            skipped = [] if _is_yaml(node_path) else [node_path]
        notes += [f"{p} is not a .yaml or .yml file: Falco does not load it" for p in skipped]
    return paths, notes


def _read(files: FalcoFiles, node_path: str) -> str:
    try:
        raw = files.read(node_path, RULES_LIMIT)
    except (OSError, LabError) as e:
        why = e.message if isinstance(e, LabError) else (e.strerror or str(e))
        raise LabError(f"Could not open file {node_path} for reading: {why}") from None
    if len(raw) > RULES_LIMIT:
        raise LabError(f"Could not read file {node_path}: it is larger than {RULES_LIMIT} bytes")
    return raw.decode("utf-8", errors="replace")


def _message(p: Any) -> FalcoMessage:
    return FalcoMessage(
        severity=str(p.severity),
        message=str(p.message),
        file=p.file,
        line=p.line,
        item=p.item,
        code=p.code,
    )


def rule_facts(ruleset: Ruleset) -> list[FalcoRule]:
    """Every loaded rule, enabled or not, in load order (as `falco -L` lists them)."""
    rules = getattr(ruleset, "rules", None)
    if rules is None:  # only the contract's names: no priority or state to tell
        return [FalcoRule(name, "") for name in ruleset.rule_names]
    out = []
    for r in rules:
        priority = r.priority
        out.append(
            FalcoRule(
                name=str(r.name),
                priority=PRIORITIES[priority] if isinstance(priority, int) else str(priority),
                enabled=bool(r.enabled),
                output=str(getattr(r, "output", "")),
                file=getattr(r, "file", None),
                tags=tuple(getattr(r, "tags", ())),
            )
        )
    return out


@lru_cache(maxsize=16)
def _load(sources: tuple[tuple[str, str], ...]) -> LoadResult:
    """The engine's load without falco.yaml's filters, kept for the same files: every
    check starts Falco afresh (and again after a package upgrade) on files that mostly
    did not change. A ruleset only reads its rules, so one can serve several runs."""
    return load_rules(sources, min_priority="debug", rule_matching="all")


def load_node_rules(files: FalcoFiles, cfg: FalcoConfig) -> RulesetFacts:
    facts = RulesetFacts(min_priority=cfg.priority)
    paths, facts.notes = rules_file_paths(files, cfg.rules_files)
    if not paths:
        facts.error, facts.error_lines = NO_RULES, [NO_RULES]
        return facts
    try:
        sources = [(p, _read(files, p)) for p in paths]
    except LabError as e:
        facts.files = [FalcoRulesFile(p, "Not loaded") for p in paths]
        facts.error, facts.error_lines = e.message, [e.message]
        return facts
    result = _load(tuple(sources))
    failed: str | None = None
    for report in result.reports:
        if failed is not None:  # Falco stops at the first invalid file
            facts.files.append(FalcoRulesFile(report.name, "Not loaded"))
            continue
        messages = [_message(p) for p in report.problems]
        facts.files.append(FalcoRulesFile(report.name, report.status, messages))
        if report.status == "Invalid":
            failed = report.name
            errors = [m for m in messages if m.severity == "error"]
            first = f": {errors[0]}" if errors else ""
            more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
            facts.error = f"{report.name}: Invalid{first}{more}"
            # Falco's summary, "1 Errors:" included.
            count = f"{len(errors)} Errors:"
            facts.error_lines = [f"{report.name}: Invalid", count, *(str(m) for m in errors)]
    if result.ruleset is None:
        facts.error = facts.error or "the rules files did not load"
        return facts
    # falco.yaml's filters only pick which compiled rules run: the same rules serve
    # the ruleset Falco runs and the unfiltered one that tells what they dropped.
    facts.ruleset = result.ruleset
    if cfg.priority != "Debug" or cfg.rule_matching != "all":
        facts.unfiltered = result.ruleset
        minimum = parse_priority(cfg.priority)
        assert minimum is not None  # parse_config checked it
        facts.ruleset = Ruleset(result.ruleset.rules, min_priority=minimum,
                                rule_matching=cfg.rule_matching)
    facts.rules = rule_facts(result.ruleset)
    return facts
