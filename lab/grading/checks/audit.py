"""Audit-logging checks: what the apiserver runs with and what its log holds."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Literal

from lab.engines.audit.checker import evaluate, near_misses
from lab.engines.audit.policy import Policy, PolicyError, PolicyRule, load_policy
from lab.engines.audit.stages import STAGES, stages_for
from lab.evidence import AuditEvidence, MountInfo
from lab.grading.checks.base import Context, Outcome, Params, register
from lab.scenarios.requests import ApiCall, api_call
from lab.schema import record

STAGE_ORDER = list(STAGES)
Stage = Literal["RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"]


def _audit(ctx: Context) -> AuditEvidence:
    if ctx.evidence.audit is None:
        raise RuntimeError("audit checks need audit evidence; the backend collected none")
    return ctx.evidence.audit


DOWN = "the kube-apiserver did not come back after your change, so every request failed"


def _down(ev: AuditEvidence) -> Outcome:
    return Outcome(False, DOWN, cause=f"kube-apiserver is not running. {ev.apiserver.error}")


def _flag_name(v: str) -> str:
    return "--" + v.lstrip("-")


# --- apiserver_running -------------------------------------------------------


@record
class NoParams(Params):
    pass


@register("apiserver_running", NoParams, lambda p: "kube-apiserver is running")
def apiserver_running(p: NoParams, ctx: Context) -> Outcome:
    ev = _audit(ctx)
    if not ev.apiserver.running:
        return _down(ev)
    return Outcome(True, "kube-apiserver came back with your manifest")


# --- apiserver_flag ----------------------------------------------------------


@record
class FlagParams(Params):
    flag: str  # with or without the leading dashes
    value: str | None = None

    @property
    def name(self) -> str:
        return _flag_name(self.flag)


def _flag_title(p: FlagParams) -> str:
    return f"kube-apiserver runs with {p.name}" + (f"={p.value}" if p.value is not None else "")


@register("apiserver_flag", FlagParams, _flag_title)
def apiserver_flag(p: FlagParams, ctx: Context) -> Outcome:
    ev = _audit(ctx)
    flags = ev.apiserver.flags
    if not flags and not ev.apiserver.running:
        # kubelet could not read the manifest at all, so there is no command line.
        return Outcome(
            False,
            f"cannot tell whether {p.name} is set: kubelet could not run the manifest",
            cause=f"kube-apiserver is not running. {ev.apiserver.error}",
        )
    if p.name not in flags:
        return Outcome(False, f"{p.name} is not set in the kube-apiserver command")
    got = flags[p.name]
    if p.value is not None and got != p.value:
        return Outcome(False, f"{p.name} is {got!r}; the task wants {p.value!r}")
    return Outcome(True, f"{p.name}={got}")


# --- apiserver_mount ---------------------------------------------------------


@record
class MountParams(Params):
    path: str  # path inside the apiserver container that must come from the node
    host_path: str | None = None  # where on the node (default: the same path)
    writable: bool = False


def _mount_title(p: MountParams) -> str:
    where = p.host_path or p.path
    rw = " read-write" if p.writable else ""
    return f"{p.path} in the apiserver container is{rw} mounted from {where} on the node"


def _covering(mounts: list[MountInfo], path: str) -> MountInfo | None:
    # The deepest mount wins, as in the container's mount table.
    best: MountInfo | None = None
    for m in mounts:
        mp = m.mount_path.rstrip("/") or "/"
        p = path.rstrip("/") or "/"
        if p == mp or p.startswith(mp.rstrip("/") + "/"):
            if best is None or len(mp) > len(best.mount_path.rstrip("/")):
                best = m
    return best


@register("apiserver_mount", MountParams, _mount_title)
def apiserver_mount(p: MountParams, ctx: Context) -> Outcome:
    mounts = _audit(ctx).apiserver.mounts
    want = (p.host_path or p.path).rstrip("/")
    m = _covering(mounts, p.path)
    inner = [x for x in mounts if x.mount_path.startswith(p.path.rstrip("/") + "/")]
    if (m is None or m.host_path is None) and inner:
        files = ", ".join(x.mount_path for x in inner)
        return Outcome(
            False,
            f"only {files} inside {p.path} is mounted, not {p.path} itself; mount the "
            f"directory (hostPath {want}) so the apiserver can create and rotate files in it",
        )
    if m is None or m.host_path is None:
        return Outcome(
            False,
            f"{p.path} is not on any hostPath volume of the kube-apiserver pod, so it does not "
            f"exist in the container; add a hostPath volume for {want} and a volumeMount at "
            f"{p.path}",
        )
    rest = p.path.rstrip("/")[len(m.mount_path.rstrip("/")) :]
    got = (m.host_path.rstrip("/") + rest) or "/"
    if got != want:
        return Outcome(
            False,
            f"{p.path} is mounted (volume {m.name!r}) from {got} on the node; "
            f"the task wants {want}",
        )
    if p.writable and m.read_only:
        return Outcome(
            False,
            f"volume {m.name!r} is mounted readOnly at {m.mount_path}; the apiserver must write "
            "there, remove readOnly: true",
        )
    return Outcome(True, f"{p.path} comes from {got} on the node (volume {m.name!r})")


# --- audit_policy_valid ------------------------------------------------------


@register("audit_policy_valid", NoParams, lambda p: "the apiserver loads your audit policy")
def audit_policy_valid(p: NoParams, ctx: Context) -> Outcome:
    ev = _audit(ctx)
    if not ev.apiserver.running:
        return _down(ev)
    if ev.policy_text is None:
        return Outcome(False, "kube-apiserver runs without --audit-policy-file, so it logs nothing")
    return Outcome(True, f"kube-apiserver loaded {ev.policy_file}")


# --- audit_logged / audit_not_logged -----------------------------------------


def _pipeline_broken(ev: AuditEvidence) -> Outcome | None:
    """Why no request can reach the log at all (a failed Outcome to reword), or None."""
    if not ev.apiserver.running:
        return _down(ev)
    reason = None
    if ev.log_path is None:
        reason = "audit logging is off: kube-apiserver has no --audit-log-path"
    elif ev.policy_text is None:
        reason = "kube-apiserver has no --audit-policy-file; without a policy it logs no request"
    elif ev.log_path == "-":
        reason = "--audit-log-path=- sends the audit log to the apiserver's stdout, not to a file"
    elif ev.log_on_node is None:
        reason = (
            f"--audit-log-path={ev.log_path} is not on a hostPath mount: the log is written inside "
            "the apiserver container and lost when it restarts; mount that directory from the node"
        )
    elif ev.log_error:
        reason = f"the audit log {ev.log_on_node} could not be read: {ev.log_error}"
    return Outcome(False, reason) if reason else None


def _policy(ev: AuditEvidence) -> Policy | None:
    if ev.policy_text is None:
        return None
    return _parsed_policy(ev.policy_text, ev.policy_file or "<policy>")


@functools.lru_cache(maxsize=4)
def _parsed_policy(text: str, source: str) -> Policy | None:
    # Every audit check of a run explains itself from the same policy: parse once.
    try:
        return load_policy(text, source)
    except PolicyError:
        return None


def _list(values: Sequence[str]) -> str:
    return "[" + ", ".join(values) + "]"


def describe_rule(rule: PolicyRule, index: int) -> str:
    """`rule 2 (line 9: level: None, resources: [secrets])` for a learner."""
    parts = [f"level: {rule.level}"]
    if rule.users:
        parts.append(f"users: {_list(rule.users)}")
    if rule.user_groups:
        parts.append(f"userGroups: {_list(rule.user_groups)}")
    if rule.verbs:
        parts.append(f"verbs: {_list(rule.verbs)}")
    for gr in rule.resources:
        res = _list(gr.resources) if gr.resources else "[*]"
        group = f"{gr.group!r} " if gr.group else ""
        parts.append(f"resources: {group}{res}")
    if rule.namespaces:
        parts.append(f"namespaces: {_list([repr(n) if n == '' else n for n in rule.namespaces])}")
    if rule.non_resource_urls:
        parts.append(f"nonResourceURLs: {_list(rule.non_resource_urls)}")
    line = f"line {rule.line}: " if rule.line else ""
    return f"rule {index + 1} ({line}`{', '.join(parts)}`)"


def _why_level(ev: AuditEvidence, call: ApiCall, want: str) -> str:
    policy = _policy(ev)
    if policy is None:
        return ""
    result = evaluate(policy, call.attrs)
    nearly = _near_misses(policy, call, want)
    if result.rule_index is None:
        return f" — no rule of your policy matches it, and the default is None{nearly}"
    rule = describe_rule(policy.rules[result.rule_index], result.rule_index)
    ignored = policy.ignored_in_rule(result.rule_index)
    if ignored:
        fields = ", ".join(f"`{f}`" for f in ignored)
        return f" — your {rule} matched first (kube-apiserver ignored its unknown field {fields})"
    if result.level != "None" and not stages_for(call.attrs, result.level, result.omit_stages):
        return (
            f" — your {rule} matched first, at {result.level}, but omitStages "
            f"{_list(result.omit_stages)} drops every stage this request has"
        )
    return f" — your {rule} matched first{nearly}"


def _near_misses(policy: Policy, call: ApiCall, want: str) -> str:
    """Earlier rules at the level the task wants that failed on one condition
    only: most likely the rule the learner meant for this request."""
    misses = [
        m
        for m in near_misses(policy, call.attrs)
        # A resource rule "nearly" matching a path (or the reverse) is never the one meant.
        if policy.rules[m.rule_index].level == want and m.field != "kind"
    ][:2]
    return "".join(
        f"; rule {m.rule_index + 1} missed it only on {m.field}: {m.detail}" for m in misses
    )


@record
class LoggedParams(Params):
    step: str
    level: Literal["Metadata", "Request", "RequestResponse"]
    stages: list[Stage] | None = None  # exact set of stages expected (None: any)


def _call(ctx: Context, step: str) -> ApiCall:
    s = ctx.scenario.step(step)
    call = api_call(s) if s else None
    if call is None:
        raise RuntimeError(f"attack step {step!r} makes no API request")
    return call


def _step_evidence(ctx: Context, step: str) -> tuple[AuditEvidence, ApiCall, str, Outcome | None]:
    """The evidence, the step's request, how to name it, and why logging is broken."""
    ev = _audit(ctx)
    call = _call(ctx, step)
    return ev, call, call.describe(), _pipeline_broken(ev)


def _logged_title(p: LoggedParams) -> str:
    stages = f", stages {_list(p.stages)}" if p.stages is not None else ""
    return f"attack step {p.step!r} is logged at {p.level}{stages}"


def _sorted_stages(events: list[dict[str, Any]]) -> list[str]:
    seen = {str(e.get("stage")) for e in events}
    return sorted(seen, key=lambda s: STAGE_ORDER.index(s) if s in STAGE_ORDER else 99)


@register("audit_logged", LoggedParams, _logged_title, steps=lambda p: [p.step])
def audit_logged(p: LoggedParams, ctx: Context) -> Outcome:
    ev, call, what, broken = _step_evidence(ctx, p.step)
    if broken:
        return Outcome(False, f"{what} was not logged: {broken.explanation}", broken.cause)
    events = ev.events.get(p.step, [])
    if not events:
        policy = _policy(ev)
        result = evaluate(policy, call.attrs) if policy else None
        if (
            result
            and result.level == p.level
            and stages_for(call.attrs, p.level, result.omit_stages)
        ):
            # The policy is right, yet the events are missing from the file read.
            return Outcome(
                False,
                f"{what} is not in {ev.log_on_node}, although your policy gives it {p.level}: "
                "its events did not reach that file (rotated away, or the file was replaced "
                "while the apiserver wrote it?)",
            )
        return Outcome(
            False,
            f"{what} is not in the audit log{_why_level(ev, call, p.level)}; "
            f"the task wants {p.level}",
        )
    if ev.log_format == "legacy" or any("level" not in e for e in events):
        return Outcome(
            False,
            f"{what} is in the log, but in the legacy format (--audit-log-format=legacy), "
            "which records no level; use the default json format",
        )
    levels = sorted({str(e.get("level")) for e in events})
    if levels != [p.level]:
        got = ", ".join(levels)
        return Outcome(
            False,
            f"{what} was logged at {got}{_why_level(ev, call, p.level)}; the task wants {p.level}",
        )
    stages = _sorted_stages(events)
    if p.stages is not None:
        want = sorted(set(p.stages), key=STAGE_ORDER.index)
        if stages != want:
            extra = [s for s in stages if s not in want]
            missing = [s for s in want if s not in stages]
            how = []
            if extra:
                how.append(f"omit {_list(extra)} (omitStages)")
            if missing:
                how.append(f"stop omitting {_list(missing)}")
            return Outcome(
                False,
                f"{what} was logged at stages {_list(stages)}; the task wants {_list(want)}: "
                + " and ".join(how),
            )
    return Outcome(True, f"{what} was logged at {p.level}, stages {_list(stages)}")


@record
class NotLoggedParams(Params):
    step: str


@register(
    "audit_not_logged",
    NotLoggedParams,
    lambda p: f"attack step {p.step!r} is not logged",
    steps=lambda p: [p.step],
)
def audit_not_logged(p: NotLoggedParams, ctx: Context) -> Outcome:
    ev, call, what, broken = _step_evidence(ctx, p.step)
    if broken:
        # Nothing logged, but because logging is broken: the task is not done.
        return Outcome(
            False, f"cannot tell whether {what} would be logged: {broken.explanation}", broken.cause
        )
    events = ev.events.get(p.step, [])
    if events:
        levels = ", ".join(sorted({str(e.get("level")) for e in events}))
        return Outcome(
            False,
            f"{what} was logged at {levels}{_why_level(ev, call, 'None')}; "
            "the task wants it not logged",
        )
    return Outcome(True, f"{what} was not logged")


@record
class StageOmittedParams(Params):
    stage: Stage


@register(
    "audit_stage_omitted",
    StageOmittedParams,
    lambda p: f"no request of the attack is logged at stage {p.stage}",
)
def audit_stage_omitted(p: StageOmittedParams, ctx: Context) -> Outcome:
    ev = _audit(ctx)
    broken = _pipeline_broken(ev)
    if broken:
        return Outcome(
            False, f"cannot tell which stages are logged: {broken.explanation}", broken.cause
        )
    if not any(ev.events.values()):
        return Outcome(False, "no request of the attack is in the audit log at all")
    steps = sorted(
        s for s, events in ev.events.items() if any(e.get("stage") == p.stage for e in events)
    )
    if steps:
        calls = [_call(ctx, s).describe() for s in steps[:3]]
        more = f" and {len(steps) - 3} more" if len(steps) > 3 else ""
        return Outcome(
            False,
            f"{', '.join(calls)}{more} {'was' if len(steps) == 1 else 'were'} logged at stage "
            f"{p.stage}; omit it for every request (omitStages at the top of the policy)",
        )
    return Outcome(True, f"no event at stage {p.stage}")
