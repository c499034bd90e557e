"""AppArmor checks, graded by effect: the profile is loaded on the node, the pod runs
confined by it in enforce mode, the attack's accesses are denied and the workload's
still allowed. They read only AppArmorEvidence: the sim names the deciding rules, the
kind backend only the outcome, and the explanations use what is there.
"""

from __future__ import annotations

import difflib
import posixpath
from collections.abc import Iterable
from typing import Literal

from lab.evidence import (
    AppArmorAccess,
    AppArmorBrokenFile,
    AppArmorContainer,
    AppArmorEvidence,
    AppArmorNode,
    AppArmorStep,
)
from lab.grading.checks.base import Context, Outcome, Params, register
from lab.grading.checks.falco import describe_step
from lab.schema import Loc, record

Mode = Literal["enforce", "complain"]
SHOWN = 4  # accesses named in one explanation; the rest are counted
PROFILE_DIR = "/etc/apparmor.d"


def _apparmor(ctx: Context) -> AppArmorEvidence:
    if ctx.evidence.apparmor is None:
        raise RuntimeError("AppArmor checks need AppArmor evidence; the backend collected none")
    return ctx.evidence.apparmor


def _load_hint(node: AppArmorNode, name: str) -> str:
    return f"load it on node {node.node}: apparmor_parser -r {node.defined.get(name, 'FILE')}"


def _as_file(name: str) -> str:
    """The file a localhostProfile value would be if it were taken for one."""
    return posixpath.normpath(name) if name.startswith("/") else f"{PROFILE_DIR}/{name}"


def _file_name_trap(node: AppArmorNode, name: str) -> str | None:
    """When `name` is a file in /etc/apparmor.d (by its name or its full path) rather than
    a profile name: say so, and what Kubernetes does with it."""
    if name in node.defined or _broken_for(node, name) is not None:
        return None
    file = _as_file(name)
    inside = sorted(p for p, f in node.defined.items() if f == file)
    broken = next((b for b in node.broken if b.file == file), None)
    if not inside and broken is not None:
        inside = list(broken.names)
    if not inside:
        return None
    names = ", ".join(inside)
    text = (f"{file} is a file; the profile it defines is named {names}: a profile's name is "
            "the word after `profile` in the file, not the file's name (localhostProfile and "
            "aa-status use that name)")
    if name.startswith("/"):
        text += ("; the API server accepts any localhostProfile that is not empty and "
                 "nothing reads the file: containerd looks for a loaded profile named exactly "
                 f"{name} and finds none (a file path is what seccomp's localhostProfile "
                 f"takes, not AppArmor's): set localhostProfile: {inside[0]}")
    if broken is not None:
        text += f"; and {file} does not compile: {broken.error}"
    return text


def _broken_for(node: AppArmorNode, name: str) -> AppArmorBrokenFile | None:
    """A file in /etc/apparmor.d that would define `name` but does not compile."""
    return next((b for b in node.broken if name in b.names), None)


def _why_not_loaded(ev: AppArmorEvidence, node: AppArmorNode, name: str) -> str:
    """Why a profile is not in a node's kernel, and what would put it there."""
    trap = _file_name_trap(node, name)
    if trap:
        return trap
    if name in node.defined:
        return (f"it is written in {node.defined[name]} on node {node.node} but was never "
                "loaded: a file in /etc/apparmor.d does nothing until apparmor_parser loads "
                f"it; {_load_hint(node, name)}")
    broken = _broken_for(node, name)
    if broken is not None:
        return (f"{broken.file} on node {node.node} would define it, but it does not compile, "
                f"so apparmor_parser loads nothing of it: {broken.error}; fix the file, then "
                f"load it: apparmor_parser -r {broken.file}")
    elsewhere = sorted(n.node for n in ev.nodes.values() if n.profile(name) and n is not node)
    if elsewhere:
        return (f"it is loaded on node {', '.join(elsewhere)}, not on node {node.node}: a "
                "profile must be loaded on the node where the pod runs")
    loaded = [p.name for p in node.loaded]
    close = difflib.get_close_matches(name, loaded + list(node.defined), n=1, cutoff=0.75)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    shown = ", ".join(loaded) or "none"
    text = (f"no profile of that name is loaded on node {node.node} (loaded: {shown}) or "
            f"defined in its /etc/apparmor.d{hint}")
    if name.startswith("/"):
        text += ("; a path names a profile only when the profile is declared by it "
                 "(`/usr/sbin/nginx {`): localhostProfile takes the name after `profile` in "
                 "the file, not the file's path")
    if node.broken:
        files = ", ".join(b.file for b in node.broken[:SHOWN])
        text += f"; note: these files there do not compile: {files}"
    return text


# --- apparmor_profile_loaded ---------------------------------------------------------------


@record
class LoadedParams(Params):
    node: str
    profile: str
    mode: Mode | None = None  # any mode when absent


def _loaded_title(p: LoadedParams) -> str:
    mode = f" in {p.mode} mode" if p.mode else ""
    return f"AppArmor profile {p.profile} is loaded on node {p.node}{mode}"


@register("apparmor_profile_loaded", LoadedParams, _loaded_title)
def apparmor_profile_loaded(p: LoadedParams, ctx: Context) -> Outcome:
    ev = _apparmor(ctx)
    node = ev.nodes.get(p.node)
    if node is None:
        return Outcome(False, f"there is no node {p.node!r}")
    if not node.enabled:
        return Outcome(False, f"node {p.node} has no AppArmor (apparmor module is not loaded), "
                              "so no profile can be loaded there")
    got = node.profile(p.profile)
    if got is None:
        return Outcome(False, f"profile {p.profile} is not loaded on node {p.node}: "
                              + _why_not_loaded(ev, node, p.profile))
    if p.mode and got.mode != p.mode:
        how = ("remove `complain` from the profile's flags=(...) and load it again without -C"
               if got.mode == "complain" else "load it again in complain mode")
        return Outcome(False, f"profile {p.profile} is loaded on node {p.node} in {got.mode} "
                              f"mode; the task wants {p.mode} mode: {how}")
    note = ""
    if got.stale:
        note = (f"; note: {got.file} changed after it was loaded, and the kernel still "
                f"enforces the version loaded then (apparmor_parser -r {got.file} reloads it)")
    return Outcome(True, f"profile {p.profile} is loaded on node {p.node} in {got.mode} mode"
                         + note)


# --- apparmor_pod_confined -----------------------------------------------------------------


@record
class ConfinedParams(Params):
    pod: str
    namespace: str = "default"
    container: str | None = None  # the pod's first container when absent
    profile: str
    mode: Mode = "enforce"


def _confined_title(p: ConfinedParams) -> str:
    which = f"container {p.container} of pod" if p.container else "pod"
    return (f"{which} {p.namespace}/{p.pod} runs confined by AppArmor profile {p.profile} "
            f"in {p.mode} mode")


def _not_running(ev: AppArmorEvidence, c: AppArmorContainer) -> str:
    """Why a container does not run, in kubectl's words, and what would fix it."""
    what = f"pod {c.namespace}/{c.pod}"
    if c.state == "waiting":
        text = (f"{what} is not running: container {c.container} is stuck in {c.reason} on node "
                f"{c.node} ({c.message})")
        node = ev.nodes.get(c.node or "")
        if node is not None and c.localhost and "apparmor profile not found" in c.message:
            text += "; " + _why_not_loaded(ev, node, c.localhost)
        return text
    if c.state == "rejected":
        return (f"the kubelet on node {c.node} rejects {what} (status {c.reason}): {c.message}")
    if c.state == "invalid":
        return f"{what} was never created: {c.message}"
    if c.state == "pending":
        return f"{what} stays Pending: {c.message}"
    return f"{what} does not exist: {c.message}"


def _confine_fix(c: AppArmorContainer, want: str) -> str:
    """What in the manifest would run the container under profile `want`."""
    if "annotations[" in c.requested:
        # the annotation wins over the pod's field: change the annotation itself
        return f"set that annotation to localhost/{want}"
    return f"set securityContext.appArmorProfile to type Localhost, localhostProfile {want}"


def _cause(c: AppArmorContainer) -> str:
    return f"pod {c.namespace}/{c.pod} is not running ({c.reason}): {c.message}"


@register("apparmor_pod_confined", ConfinedParams, _confined_title)
def apparmor_pod_confined(p: ConfinedParams, ctx: Context) -> Outcome:
    ev = _apparmor(ctx)
    c = ev.container(p.namespace, p.pod, p.container)
    if c is None:
        return Outcome(False, f"no container {p.container or ''} in pod {p.namespace}/{p.pod}")
    if not c.running:
        return Outcome(False, _not_running(ev, c))
    where = f"container {c.container} of pod {c.namespace}/{c.pod} runs on node {c.node}"
    asked = f"; its spec asks for {c.requested}" if c.requested else ""
    if c.profile is None:
        node = ev.nodes.get(c.node or "")
        if node is not None and not node.enabled:
            return Outcome(False, f"{where} unconfined: the node has no AppArmor")
        fix = (" (a privileged container gets no runtime default profile)"
               if c.requested.startswith("RuntimeDefault") else "")
        return Outcome(False, f"{where} unconfined{asked}{fix}; the task wants profile "
                              f"{p.profile}: {_confine_fix(c, p.profile)}")
    if c.profile != p.profile:
        from lab.engines.apparmor.podspec import RUNTIME_DEFAULT_PROFILE

        which, why = "profile ", ""
        if c.profile == RUNTIME_DEFAULT_PROFILE:
            which = "containerd's default profile "
            why = (" (RuntimeDefault, or no AppArmor setting at all, gives containerd's "
                   "default profile)")
        return Outcome(False, f"{where} confined by {which}{c.profile}{asked}; the task wants "
                              f"profile {p.profile}: {_confine_fix(c, p.profile)}{why}")
    if c.mode != p.mode:
        why = (": complain mode only logs what the profile would deny, it blocks nothing"
               if c.mode == "complain" else "")
        return Outcome(False, f"{where} confined by {c.profile} in {c.mode} mode{why}; the "
                              f"task wants {p.mode} mode")
    node = ev.nodes.get(c.node or "")
    state = node.profile(c.profile) if node else None
    note = ""
    if state is not None and state.stale:
        note = (f"; note: {state.file} changed after it was loaded: the kernel enforces the "
                f"version loaded then until you run apparmor_parser -r {state.file}")
    return Outcome(True, f"{where} confined by {c.profile} in {c.mode} mode{note}")


# --- apparmor_denied / apparmor_allowed ---------------------------------------------------


@record
class AccessParams(Params):
    step: str
    # which accesses of the step ("r /etc/shadow", "x /bin/sh", "network inet raw",
    # "capability net_raw"); all of them when absent
    access: str | list[str] | None = None

    @property
    def wanted(self) -> list[str]:
        if self.access is None:
            return []
        items = [self.access] if isinstance(self.access, str) else self.access
        return [_normal(a) for a in items]

    def _problems(self) -> Iterable[tuple[Loc, str]]:
        # the engine is imported here: grading a scenario without AppArmor need not load it
        from lab.engines.apparmor import AccessError, parse_access

        items = [self.access] if isinstance(self.access, str) else (self.access or [])
        for i, text in enumerate(items):
            try:
                parse_access(text)
            except AccessError as e:
                loc: Loc = ("access",) if isinstance(self.access, str) else ("access", i)
                yield loc, e.message
        if isinstance(self.access, list) and not self.access:
            yield ("access",), "needs at least one access (or leave it out: every access)"


def _normal(text: str) -> str:
    words = text.split()
    if words[:1] == ["capability"] and len(words) == 2:
        return f"capability {words[1].lower().removeprefix('cap_')}"
    return " ".join(words)


def _access_words(text: str) -> str:
    """`r /etc/shadow` as words: "read of /etc/shadow"."""
    head, _, rest = text.partition(" ")
    if head == "capability":
        return f"capability {rest}"
    if head == "network":
        return f"a network {rest} socket"
    names = {"r": "read", "w": "write", "a": "append", "x": "exec", "l": "link", "k": "lock",
             "m": "mmap"}
    verbs = " and ".join(names.get(ch, ch) for ch in head if ch in names)
    return f"{verbs} of {rest}" if verbs else text


def _why(a: AppArmorAccess) -> str:
    """The deciding rules, as the evidence has them (the kind backend has none)."""
    from lab.engines.apparmor.podspec import RUNTIME_DEFAULT_PROFILE

    if a.profile == RUNTIME_DEFAULT_PROFILE:
        # the lab's stand-in for it: its line numbers mean nothing to the learner
        rules = ", ".join(f"`{r.text}`" for r in a.rules)
        return f"containerd's default profile {a.profile} " + (
            f"({rules})" if rules else "decided it")
    if a.reason:
        return a.reason.removeprefix("allowed: ").removeprefix("denied: ")
    if a.rules:
        return "; ".join(f"line {r.line} `{r.text}` {r.role}" for r in a.rules)
    return f"profile {a.profile}" if a.profile else "the process is not confined by AppArmor"


_DID = {"r": "read", "w": "wrote", "a": "appended to", "x": "ran"}


def _line(a: AppArmorAccess, note: str = "") -> str:
    words = _access_words(a.access)
    head, _, seen = a.access.partition(" ")
    if a.written and head in _DID:
        # the step's own words, then the path the kernel resolved them to
        words += f" (the step {_DID[head]} {a.written}; in this image AppArmor sees {seen})"
    return f"`{a.by}`: {words} was {a.outcome}: {_why(a)}{note}"


class _StaleNotes:
    """Says, once per profile, that the rules cited are those of the text the kernel
    loaded, when the profile's file has changed since."""

    def __init__(self, stale: dict[str, str]) -> None:
        self.stale = stale  # profile -> its file, for those whose file changed after loading
        self.said: set[str] = set()

    def __call__(self, a: AppArmorAccess) -> str:
        name = a.profile or ""
        file = self.stale.get(name)
        if file is None or a.reason.startswith("not tried"):
            return ""
        if name in self.said:
            return " (as loaded)"
        self.said.add(name)
        return (f" — in the profile as you loaded it; {file} has changed since: reload it "
                f"with apparmor_parser -r {file}")


def _stale_notes(ctx: Context, step: str) -> _StaleNotes:
    ev = _apparmor(ctx)
    st = ev.steps.get(step)
    c = ev.container(st.namespace, st.pod, st.container) if st else None
    node = ev.nodes.get(c.node or "") if c else None
    loaded = node.loaded if node is not None else []
    return _StaleNotes({p.name: p.file for p in loaded if p.stale and p.file})


def _select(st: AppArmorStep, wanted: list[str]) -> tuple[list[AppArmorAccess], list[str]]:
    if not wanted:
        return list(st.accesses), []
    chosen = [a for a in st.accesses
              if _normal(a.access) in wanted or any(_normal(x) in wanted for x in a.aliases)]
    seen = {_normal(x) for a in chosen for x in (a.access, *a.aliases)}
    return chosen, [w for w in wanted if w not in seen]


def _step_accesses(p: AccessParams, ctx: Context) -> tuple[list[AppArmorAccess], Outcome | None]:
    ev = _apparmor(ctx)
    what = describe_step(ctx.scenario.step(p.step), p.step)
    st = ev.steps.get(p.step)
    if st is None:
        return [], Outcome(False, f"{what} happens in no pod: AppArmor does not see it")
    if not st.ran:
        c = ev.container(st.namespace, st.pod, st.container)
        cause = _cause(c) if c else None
        return [], Outcome(False, f"{what} could not run: its container is not running, so "
                                  "nothing of it can be tested", cause)
    chosen, missing = _select(st, p.wanted)
    if missing:
        made = ", ".join(dict.fromkeys(a.access for a in st.accesses)) or "none"
        return [], Outcome(False, f"{what} makes no access {', '.join(missing)} (it makes: "
                                  f"{made})")
    if not chosen:
        return [], Outcome(False, f"{what} makes no access AppArmor mediates")
    return chosen, None


def _listing(lines: list[str]) -> str:
    more = f"; and {len(lines) - SHOWN} more" if len(lines) > SHOWN else ""
    return "; ".join(lines[:SHOWN]) + more


def _what(p: AccessParams) -> str:
    return ", ".join(p.wanted) if p.wanted else "every access"


def _denied_title(p: AccessParams) -> str:
    return f"AppArmor blocks {_what(p)} of attack step {p.step!r}"


@register("apparmor_denied", AccessParams, _denied_title, steps=lambda p: [p.step])
def apparmor_denied(p: AccessParams, ctx: Context) -> Outcome:
    chosen, failed = _step_accesses(p, ctx)
    if failed:
        return failed
    through = [a for a in chosen if a.outcome != "DENIED"]
    note = _stale_notes(ctx, p.step)
    if through:
        lines = [_line(a, note(a)) + "; the task wants it denied" for a in through]
        return Outcome(False, _listing(lines))
    return Outcome(True, _listing([_line(a, note(a)) for a in chosen]))


def _allowed_title(p: AccessParams) -> str:
    return f"AppArmor still allows {_what(p)} of step {p.step!r} (the workload works)"


@register("apparmor_allowed", AccessParams, _allowed_title, steps=lambda p: [p.step])
def apparmor_allowed(p: AccessParams, ctx: Context) -> Outcome:
    chosen, failed = _step_accesses(p, ctx)
    if failed:
        return failed
    blocked = [a for a in chosen if a.outcome == "DENIED"]
    note = _stale_notes(ctx, p.step)
    if blocked:
        lines = [_line(a, note(a)) + "; the workload needs it" for a in blocked]
        return Outcome(False, _listing(lines))
    return Outcome(True, _listing([_line(a, note(a)) for a in chosen]))
