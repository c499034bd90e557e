"""Falco checks: the rules load, the attack's steps alert (or stay quiet), with the output
the task asks for. They read only FalcoEvidence: which backend ran Falco is unknown here.
"""

from __future__ import annotations

import difflib
import re
import shlex
from collections.abc import Iterable
from typing import Any

from lab.errors import LabError
from lab.evidence import FalcoEvidence, FalcoMessage, FalcoNode, FalcoRulesFile, FalcoSuppressed
from lab.grading.checks.base import Context, Outcome, Params, register
from lab.grading.checks.falco_format import compare_format
from lab.scenarios.model import AttackStep
from lab.schema import Loc, record
from lab.yamlsafe import parse_all

PRIORITY_NAMES = (
    "Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug",
)  # fmt: skip


def priority_name(text: str) -> str | None:
    """Falco's name for a case-insensitive priority ("info" is Informational)."""
    low = text.lower()
    if low == "info":
        return "Informational"
    return next((p for p in PRIORITY_NAMES if p.lower() == low), None)


def _falco(ctx: Context) -> FalcoEvidence:
    if ctx.evidence.falco is None:
        raise RuntimeError("Falco checks need Falco evidence; the backend collected none")
    return ctx.evidence.falco


def describe_step(step: AttackStep | None, step_id: str) -> str:
    """How a learner would have typed the step: `kubectl exec -it web -n payments -- bash`.

    A secret step (finding out what it is is the task) is named by its id and
    description only, never by its pod, namespace or container.
    """
    if step is None:
        return f"attack step {step_id!r}"
    if step.secret:
        return f"attack step {step_id!r} ({step.description})"
    if step.exec is not None:
        ex = step.exec
        flags = " -it" if ex.tty else ""
        container = f" -c {ex.container}" if ex.container else ""
        cmd = " ".join(_quote(arg) for arg in ex.command)
        return f"`kubectl exec{flags} {ex.pod} -n {ex.namespace}{container} -- {cmd}`"
    if step.workload is not None:
        w = step.workload
        return f"the workload of pod {w.namespace}/{w.pod} ({step.description})"
    return f"attack step {step_id!r} ({step.description})"


def _quote(arg: str) -> str:
    """An argument as a person would type it in a shell: in single quotes, as shlex
    quotes it; one that has a single quote itself in double quotes, when that needs
    no escape (shlex's '"'"' is not what anyone types)."""
    plain = shlex.quote(arg)
    if "'" not in arg or any(c in arg for c in '"$`\\!'):
        return plain
    return f'"{arg}"'


def _cause(ctx: Context, node: FalcoNode) -> str:
    if not node.installed:
        return str(node.error)  # "Falco is not installed on node ...: ..."
    where = ""
    for f in (f for f in node.rules_files if f.status == "Invalid"):
        where = next((s for s in (_changed_at(ctx, node.node, f, m) for m in f.messages) if s), "")
    return f"Falco is not running on node {node.node}: {node.error}{where}"


def _step_falco(ctx: Context, step: str) -> tuple[FalcoEvidence, str, Outcome | None]:
    """The evidence, how to name the step, and why no alert of it can be seen at all."""
    ev = _falco(ctx)
    what = describe_step(ctx.scenario.step(step), step)
    node = ev.node_of(step)
    if node is None:
        return ev, what, Outcome(False, f"{what} happens in no pod: Falco sees no event of it")
    if not node.running:
        up = ev.upgrade_before(step)
        before_up = ev.nodes.get(up.node) if up is not None else None
        if up is not None and before_up is not None and before_up.running:
            _, after = _upgrade_context(ev, step)
            lost = f" restored {', '.join(up.changed)}" if up.changed else ""
            why = (
                f"Falco did not restart after the {up.package} package upgrade "
                f"(attack step {up.step!r}){lost}, so it saw nothing{after}"
            )
            return ev, what, Outcome(False, why, _cause(ctx, node))
        return ev, what, Outcome(False, "Falco did not start, so it saw nothing", _cause(ctx, node))
    return ev, what, None


def _fired(alerts: list[dict[str, Any]], what: str = "it") -> str:
    if not alerts:
        return f"Falco raised no alert for {what}"
    seen: dict[str, str] = {}
    for a in alerts:
        seen.setdefault(str(a.get("rule")), str(a.get("priority")))
    names = ", ".join(f"'{r}' ({p})" for r, p in seen.items())
    return f"Falco raised {names} for {what}"


def _events(ev: FalcoEvidence, step: str, secret: bool = False) -> str:
    """A short account of the step's events, when the backend knows them; of a secret
    step's, only what they did to which file (no process, user, container or pod)."""
    if secret:
        return _secret_events(ev, step)
    parts = []
    for e in ev.events.get(step, [])[:6]:
        etype, proc = e.get("evt.type"), e.get("proc.name")
        if etype in ("execve", "execveat"):
            user = e.get("user.name") or f"uid {e.get('user.uid')}"
            parts.append(
                f"{etype} `{e.get('proc.cmdline')}` (user {user}, parent "
                f"{e.get('proc.pname')}, tty {e.get('proc.tty')})"
            )
        elif etype in ("open", "openat", "openat2"):
            parts.append(f"{etype} {e.get('fd.name')} {e.get('evt.arg.flags')} by {proc}")
        elif etype == "connect":
            parts.append(f"connect to {e.get('fd.sip')}:{e.get('fd.sport')} by {proc}")
        else:
            parts.append(f"{etype} by {proc}")
    if not parts:
        return ""
    c = ev.events[step][0]
    pod = f"{c.get('k8s.ns.name')}/{c.get('k8s.pod.name')}"
    return f" (its events, in container {c.get('container.name')} of pod {pod}: " + (
        "; ".join(parts) + ")"
    )


def _secret_events(ev: FalcoEvidence, step: str) -> str:
    parts = []
    for e in ev.events.get(step, [])[:6]:
        etype = e.get("evt.type")
        if etype in ("open", "openat", "openat2"):
            parts.append(f"{etype} {e.get('fd.name')} {e.get('evt.arg.flags')}")
        else:
            parts.append(str(etype))
    return f" (its events: {'; '.join(parts)})" if parts else ""


def _is_secret(ctx: Context, step: str) -> bool:
    s = ctx.scenario.step(step)
    return s is not None and s.secret


def _upgrade_context(ev: FalcoEvidence, step: str) -> tuple[str, str]:
    """(what to say before, what to say after) an explanation of a step that a Falco
    restarted by a package upgrade saw, when the upgrade undid a change of the learner."""
    up = ev.upgrade_before(step)
    if up is None or not up.changed:
        return "", ""
    lost = ", ".join(up.changed)
    before = f"after the {up.package} package upgrade (attack step {up.step!r}) restored {lost}, "
    rules = {f.path for n in (ev.nodes.get(up.node), up.falco) if n for f in n.rules_files}
    keep = [p for p in rules if p not in up.restored]
    if set(up.changed) <= rules:
        where = min(keep, key=lambda p: (".local." not in p, p)) if keep else None
        fix = (
            f"put it in {where}, with `override` to change a default rule"
            if where
            else "put it in a rules file the package does not ship"
        )
    else:
        fix = "make it in a file the package does not ship"
    return before, f" — your change was made in {lost}, which upgrades overwrite: {fix}"


_ITEM = re.compile(r"^(rule|macro|list) '(.*)'$", re.S)


def _changed_at(ctx: Context, node: str, f: FalcoRulesFile, m: FalcoMessage) -> str:
    """Where the invalid file changed the item an error is located at in another file.

    Falco locates an error in an appended or overridden item where the item was first
    defined (the default rules); the learner's change is in the file that failed.
    """
    item = _ITEM.match(m.item or "")
    files = ctx.evidence.files
    if item is None or m.file in (None, f.path) or files is None:
        return ""
    fact = files.read(node, f.path)
    if fact.text is None:
        return ""
    try:
        docs = parse_all(fact.text.encode(), f.path)
    except LabError:
        return ""
    kind, name = item.groups()
    for doc in docs:
        entries = doc.data if isinstance(doc.data, list) else []
        found = [i for i, e in enumerate(entries) if isinstance(e, dict) and e.get(kind) == name]
        if found:
            line = doc.line_of((found[-1],))
            return f" (the {kind} was changed in {f.path} line {line})"
    return ""


def _load_errors(ctx: Context, n: FalcoNode, f: FalcoRulesFile) -> list[str]:
    return [str(m) + _changed_at(ctx, n.node, f, m) for m in f.messages if m.severity == "error"]


# --- falco_rules_load ------------------------------------------------------------


@record
class RulesLoadParams(Params):
    node: str | None = None  # default: every node that has Falco


def _rules_load_title(p: RulesLoadParams) -> str:
    return "Falco loads every rules file" + (f" on node {p.node}" if p.node else "")


@register("falco_rules_load", RulesLoadParams, _rules_load_title)
def falco_rules_load(p: RulesLoadParams, ctx: Context) -> Outcome:
    ev = _falco(ctx)
    nodes = [n for n in ev.nodes.values() if p.node is None or n.node == p.node]
    nodes = [n for n in nodes if n.installed]
    if not nodes:
        where = f"on node {p.node}" if p.node else "on any node"
        return Outcome(False, f"Falco is not installed {where} (no /etc/falco/falco.yaml)")
    down = [n for n in nodes if not n.running]
    if down:
        return Outcome(False, "; ".join(_why_down(ctx, n) for n in down))
    files = [f for n in nodes for f in n.rules_files]
    warned = [f.path for f in files if f.status != "Ok"]
    paths = ", ".join(dict.fromkeys(f.path for f in files))
    tail = f" ({', '.join(warned)}: with warnings)" if warned else ""
    return Outcome(True, f"Falco loaded {paths}{tail}")


def _why_down(ctx: Context, n: FalcoNode) -> str:
    invalid = [f for f in n.rules_files if f.status == "Invalid"]
    if not invalid:
        return f"Falco does not start on node {n.node}: {n.error}"
    f = invalid[0]
    errors = _load_errors(ctx, n, f)
    return (
        f"{f.path} is invalid, so Falco on node {n.node} would not (re)start with it: "
        + "; ".join(errors or [str(n.error)])
    )


# --- falco_alert -----------------------------------------------------------------


def _priority_problem(priority: str | None) -> Iterable[tuple[Loc, str]]:
    if priority is not None and priority_name(priority) is None:
        yield ("priority",), (
            f"{priority!r} is not a Falco priority (emergency, alert, critical, error, warning, "
            "notice, informational, debug)"
        )


@record
class AlertParams(Params):
    step: str
    rule: str | None = None
    priority: str | None = None
    output_contains: str | list[str] | None = None
    fields: dict[str, Any] | None = None  # output_fields the alert must have, with these values

    def _problems(self) -> Iterable[tuple[Loc, str]]:
        yield from _priority_problem(self.priority)

    @property
    def texts(self) -> list[str]:
        oc = self.output_contains
        return [] if oc is None else [oc] if isinstance(oc, str) else list(oc)


def _alert_title(p: AlertParams) -> str:
    parts = [f"Falco alerts on attack step {p.step!r}"]
    if p.rule:
        parts.append(f"with rule {p.rule!r}")
    if p.priority:
        parts.append(f"at priority {priority_name(p.priority)}")
    title = " ".join(parts)
    wants = [repr(t) for t in p.texts] + [f"{k}={v}" for k, v in (p.fields or {}).items()]
    return title + (f", output with {', '.join(wants)}" if wants else "")


def _mismatches(p: AlertParams, a: dict[str, Any]) -> list[str]:
    out = []
    want = priority_name(p.priority) if p.priority else None
    if want and a.get("priority") != want:
        out.append(f"its priority is {a.get('priority')}; the task wants {want}")
    output = str(a.get("output", ""))
    for text in p.texts:
        if text not in output:
            out.append(f"its output lacks {text!r}")
    fields = a.get("output_fields") or {}
    for key, value in (p.fields or {}).items():
        if key not in fields:
            out.append(f"its output has no %{key}: add it to the rule's output")
        elif str(fields[key]) != str(value):
            out.append(f"%{key} is {fields[key]!r} there; the task wants {value!r}")
    return out


def _missing_rule(node: FalcoNode, rule: str, dropped: list[FalcoSuppressed]) -> str:
    """Why a named rule did not alert on the step."""
    facts = node.rule(rule)
    if facts is None:
        names = [r.name for r in node.rules]
        close = difflib.get_close_matches(rule, names, n=1, cutoff=0.75)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"no rule named {rule!r} is loaded{hint}"
    if not facts.enabled:
        return f"rule {rule!r} is disabled (enabled: false)"
    mine = [d for d in dropped if d.alert.get("rule") == rule]
    if any(d.reason == "priority" for d in mine):
        return (
            f"rule {rule!r} matched, but its priority {facts.priority} is below falco.yaml's "
            f"minimum (priority: {node.min_priority.lower()}), so Falco does not run it"
        )
    first = next((d for d in mine if d.reason == "first-match"), None)
    if first is not None:
        return (
            f"rule {rule!r} matched, but rule {first.by_rule!r} matched the same event first: "
            "with rule_matching: first, an event raises one alert, from the first matching "
            "rule in load order"
        )
    return f"rule {rule!r} is loaded, but its condition did not match the step's events"


@register("falco_alert", AlertParams, _alert_title, steps=lambda p: [p.step])
def falco_alert(p: AlertParams, ctx: Context) -> Outcome:
    ev, what, broken = _step_falco(ctx, p.step)
    if broken:
        return Outcome(False, f"no alert for {what}: {broken.explanation}", broken.cause)
    node = ev.node_of(p.step)
    assert node is not None
    alerts = ev.alerts.get(p.step, [])
    candidates = [a for a in alerts if p.rule is None or a.get("rule") == p.rule]
    for a in candidates:
        if not _mismatches(p, a):
            return Outcome(True, f"Falco raised {a.get('rule')!r} ({a.get('priority')}) for "
                                 f"{what}: {a.get('output')}")  # fmt: skip
    if candidates:
        a = min(candidates, key=lambda c: len(_mismatches(p, c)))  # the nearest miss
        why = "; ".join(_mismatches(p, a))
        return _failed(
            ev, p.step, f"Falco raised {a.get('rule')!r} for {what}, but {why}: {a.get('output')}"
        )
    dropped = ev.suppressed.get(p.step, [])
    secret = _is_secret(ctx, p.step)
    if p.rule is not None:
        why = _missing_rule(node, p.rule, dropped)
        extra = _events(ev, p.step, secret) if why.endswith("the step's events") else ""
        return _failed(ev, p.step, f"{_fired(alerts, what)}; {why}{extra}")
    notes = [_dropped_text(d, node) for d in dropped]
    tail = "; " + "; ".join(notes) if notes else _events(ev, p.step, secret)
    return _failed(ev, p.step, f"Falco raised no alert for {what}{tail}")


def _failed(ev: FalcoEvidence, step: str, explanation: str) -> Outcome:
    """A failure, told with the package upgrade that undid the learner's change, if any."""
    before, after = _upgrade_context(ev, step)
    return Outcome(False, f"{before}{explanation}{after}")


def _dropped_text(d: FalcoSuppressed, node: FalcoNode) -> str:
    rule = d.alert.get("rule")
    if d.reason == "priority":
        return (
            f"rule {rule!r} matched, but its priority {d.alert.get('priority')} is below "
            f"falco.yaml's minimum (priority: {node.min_priority.lower()})"
        )
    return f"rule {rule!r} matched, but {d.by_rule!r} matched the same event first"


# --- falco_no_alert ----------------------------------------------------------------


@record
class NoAlertParams(Params):
    step: str
    rule: str | None = None


def _no_alert_title(p: NoAlertParams) -> str:
    by = f" from rule {p.rule!r}" if p.rule else ""
    return f"Falco raises no alert{by} for attack step {p.step!r}"


@register("falco_no_alert", NoAlertParams, _no_alert_title, steps=lambda p: [p.step])
def falco_no_alert(p: NoAlertParams, ctx: Context) -> Outcome:
    ev, what, broken = _step_falco(ctx, p.step)
    if broken:
        return Outcome(
            False, f"cannot tell whether {what} stays quiet: {broken.explanation}", broken.cause
        )
    alerts = [a for a in ev.alerts.get(p.step, []) if p.rule is None or a.get("rule") == p.rule]
    if not alerts:
        return Outcome(True, f"Falco raised no alert for {what}")
    a = alerts[0]
    more = f" (and {len(alerts) - 1} more alerts)" if len(alerts) > 1 else ""
    return _failed(
        ev,
        p.step,
        f"rule {a.get('rule')!r} fired for {what}, which the task wants quiet{more}: "
        f"{a.get('output')} — make the rule's condition exclude it",
    )


# --- falco_output_format -------------------------------------------------------------


@record
class FormatParams(Params):
    step: str
    format: str  # e.g. "%evt.time,%user.name,%proc.name"
    rule: str | None = None


def _format_title(p: FormatParams) -> str:
    by = f" of rule {p.rule!r}" if p.rule else ""
    return f"the alert{by} for attack step {p.step!r} has the output format `{p.format}`"


@register("falco_output_format", FormatParams, _format_title, steps=lambda p: [p.step])
def falco_output_format(p: FormatParams, ctx: Context) -> Outcome:
    ev, what, broken = _step_falco(ctx, p.step)
    if broken:
        return Outcome(False, f"no alert for {what}: {broken.explanation}", broken.cause)
    all_alerts = ev.alerts.get(p.step, [])
    alerts = [a for a in all_alerts if p.rule is None or a.get("rule") == p.rule]
    if not alerts:
        by = f" from rule {p.rule!r}" if p.rule else ""
        return _failed(ev, p.step, f"no alert{by} for {what} to compare: {_fired(all_alerts)}")
    problems = []
    for a in alerts:
        problem = compare_format(a, p.format)
        if problem is None:
            return Outcome(True, f"{a.get('rule')!r} writes {a.get('output')}")
        problems.append((a, problem))
    a, problem = problems[0]
    return _failed(ev, p.step, f"the alert of rule {a.get('rule')!r} for {what} {problem}")
