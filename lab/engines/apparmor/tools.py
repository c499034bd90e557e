"""What `cks-lab apparmor validate` and `cks-lab apparmor eval` do and print.

Both read one profile file. Includes (`<tunables/global>`, `<abstractions/base>`)
are looked up in the `-I` folders, then in the node tree's /etc/apparmor.d when the
file sits in one (a workspace's `nodes/NODE/etc/apparmor.d/`, or the host's
`/etc/apparmor.d/`), then in the lab's own minimal copies; the real compiler gets the
same list, so both compilers read the same include files.

Every bad input (a missing file, a folder, a huge or binary file, a bad access, an
unknown profile name) is a LabError raised before anything is printed; the CLI turns
it into one line and exit 2.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lab.engines.apparmor import parse_profile_text
from lab.engines.apparmor.access import Access, parse_access
from lab.engines.apparmor.compiler import REAL_COMPILER_MISSING, compile_real
from lab.engines.apparmor.decide import ALLOW, COMPLAIN, DENY, Decision, decide
from lab.engines.apparmor.errors import AccessError, ProfileError
from lab.engines.apparmor.includes import BUNDLED_DIR, read_profile_file
from lab.engines.apparmor.model import Profile
from lab.engines.apparmor.policy import ProfileSet
from lab.errors import LabError

VERDICT_WIDTH = len(COMPLAIN)
# an access longer than this does not widen the column for the others
MAX_ACCESS_COLUMN = 40
_ENFORCE_CLAUSE = "anything not allowed is denied (enforce mode)"


# -- reading the profile -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Includes:
    """Where a profile's includes are looked up."""

    dirs: tuple[Path, ...]
    root: Path | None  # the node tree quoted absolute includes map into (None: the host)


def includes_for(profile: Path, extra: Sequence[Path] = ()) -> Includes:
    """`-I` folders, the node tree's /etc/apparmor.d when the file is in one, the lab's copies."""
    dirs = [Path(d) for d in extra]
    for d in dirs:
        if not d.is_dir():
            raise LabError("no such folder (given with -I)", file=str(d))
    root: Path | None = None
    for parent in Path(os.path.abspath(profile)).parents:
        if parent.name == "apparmor.d" and parent.parent.name == "etc":
            dirs.append(parent)
            node = parent.parent.parent
            root = None if node == Path("/") else node
            break
    dirs.append(BUNDLED_DIR)
    return Includes(tuple(dict.fromkeys(dirs)), root)


def read_checked(path: Path) -> str:
    """A profile file's text; refuses a missing file, a folder, a special, huge or binary one."""
    shown = str(path)
    try:
        mode = os.stat(path).st_mode
    except OSError as err:
        raise LabError(err.strerror or str(err), file=shown) from None
    if stat.S_ISDIR(mode):
        raise LabError("is a folder, not a profile file (name one file in it)", file=shown)
    if not stat.S_ISREG(mode):
        raise LabError("is not a regular file", file=shown)
    return read_profile_file(path, shown)  # size and binary checks


def parse(path: Path, text: str, inc: Includes) -> ProfileSet:
    """The lab's reading of the file; quoted relative includes are found from the working
    folder, as apparmor_parser finds them."""
    return parse_profile_text(text, name=str(path), include_path=inc.dirs, base_dir=Path.cwd(),
                              root=inc.root)


def load_profiles(path: Path, include_dirs: Sequence[Path] = ()) -> ProfileSet:
    """The file's profiles as the lab's parser reads them; LabError if it does not compile."""
    text = read_checked(path)
    try:
        return parse(path, text, includes_for(path, include_dirs))
    except ProfileError as err:
        raise ProfileError(f"{err.message} (the profile does not compile; nothing was "
                           "evaluated)", file=err.file, line=err.line, item=err.item) from None


def select_profile(pset: ProfileSet, name: str | None) -> Profile:
    """The profile to evaluate: the file's only one, or the one named `name`."""
    if name is None and len(pset.profiles) != 1:
        if not pset.profiles:
            raise LabError("defines no profile to evaluate", file=pset.file)
        names = ", ".join(pset.names())
        raise LabError(f"defines {len(pset.profiles)} profiles ({names}): "
                       "say which one with --profile-name NAME", file=pset.file)
    return pset.profile(name)


# -- validate ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ValidateReport:
    ok: bool
    lines: tuple[str, ...]  # what validate prints, in order
    compiler: str  # "apparmor_parser" or "builtin"


def validate(path: Path, include_dirs: Sequence[Path] = (), *,
             builtin: bool = False) -> ValidateReport:
    """Check a profile file with apparmor_parser when installed (unless `builtin`),
    else with the lab's parser; the lab's parse is always done too, to compare."""
    text = read_checked(path)
    shown = str(path)
    inc = includes_for(path, include_dirs)
    own_error: ProfileError | None = None
    pset: ProfileSet | None = None
    try:
        pset = parse(path, text, inc)
    except ProfileError as err:
        own_error = err
    own_errors = (own_error,) if own_error else ()

    notes: list[str] = []
    if builtin:
        return _report(shown, own_error is None, own_errors, "the lab's own parser (--builtin)",
                       pset, notes, "builtin")
    try:
        real = compile_real(path, inc.dirs)
    except UnicodeDecodeError:
        # apparmor_parser echoes a stray byte of the file in its message
        notes.append("apparmor_parser's message is not UTF-8 text, so the lab's own parser's "
                     "verdict is shown")
        return _report(shown, own_error is None, own_errors, "the lab's own parser", pset,
                       notes, "builtin")
    if real is None:
        notes.append(REAL_COMPILER_MISSING)
        return _report(shown, own_error is None, own_errors, "the lab's own parser", pset,
                       notes, "builtin")
    if real.returncode is None:  # it did not run or did not finish: not the profile's fault
        raise LabError(real.message)
    if real.ok and own_error is not None:
        notes.append(f"the lab's own parser disagrees: it reports {own_error}; "
                     "apparmor_parser decides")
    elif not real.ok and own_error is None:
        notes.append("the lab's own parser disagrees: it accepts this profile; "
                     "apparmor_parser decides")
    elif not real.ok and own_error is not None and own_error.line is not None \
            and all(e.line is None for e in real.errors):
        notes.append(f"the lab's own parser places the error: {own_error}")
    return _report(shown, real.ok, real.errors, f"apparmor_parser ({real.command[0]})",
                   pset if real.ok else None, notes, "apparmor_parser")


def _report(shown: str, ok: bool, errors: Sequence[ProfileError], by: str,
            pset: ProfileSet | None, notes: list[str], compiler: str) -> ValidateReport:
    lines = [f"{shown}: {'valid' if ok else 'invalid'}, checked by {by}"]
    lines += [str(e) for e in errors]
    if ok and pset is not None:
        lines.append(f"{shown}: {profiles_line(pset)}")
    lines += [f"note: {n}" for n in notes]
    return ValidateReport(ok, tuple(lines), compiler)


def profiles_line(pset: ProfileSet) -> str:
    """`defines profile k8s-deny-write (enforce mode)`: the names pods refer to."""
    shown = [f"{p.full_name} ({p.mode} mode)" for p in pset.all_profiles()]
    if not shown:
        return "defines no profile (only variables, aliases or includes)"
    return f"defines profile{'s' if len(shown) > 1 else ''} {', '.join(shown)}"


# -- eval ----------------------------------------------------------------------------


def parse_accesses(texts: Sequence[str]) -> list[Access]:
    """Read every --access first, so a bad one stops eval before anything is printed."""
    out = []
    for n, text in enumerate(texts, 1):
        try:
            out.append(parse_access(text))
        except AccessError as err:
            raise LabError(err.message, item=f"--access #{n}") from None
    return out


def evaluate(profile: Profile, accesses: Sequence[Access]) -> list[Decision]:
    return [decide(profile, a) for a in accesses]


def json_lines(decisions: Sequence[Decision]) -> list[str]:
    """One object per decision: access, decision, rules (line, text, role, file), reason...

    ASCII only (\\uXXXX escapes): a learner's control characters never reach a terminal.
    """
    return [json.dumps(d.as_dict()) for d in decisions]


def text_lines(decisions: Sequence[Decision], main: str) -> list[str]:
    """`DENY      w /etc/passwd   line 7: deny /etc/** w,`, one result per access;
    an explanation of several parts goes on the lines below, in the same column.

    `main` is the profile's file: rules from other (included) files are named with theirs.
    """
    width = min(max((len(d.access.text) for d in decisions), default=0), MAX_ACCESS_COLUMN)
    lines: list[str] = []
    for d in decisions:
        head = f"{d.verdict:<{VERDICT_WIDTH}}  {d.access.text:<{width}}  "
        parts = explanation(d, main)
        lines.append(head + parts[0])
        lines += [" " * len(head) + p for p in parts[1:]]
    return lines


def explanation(d: Decision, main: str) -> list[str]:
    """What decided: the allowing or denying rules, else the engine's reason in parts."""
    deciding = list(d.rules)
    if d.verdict == DENY:
        deciding = [r for r in d.rules if r.role.startswith("denies")]
    if deciding and d.verdict in (ALLOW, DENY):
        if len(deciding) > 1:
            return [f"{_rule(r.line, r.text, r.file, main)}  ({r.role})" for r in deciding]
        shown = _rule(deciding[0].line, deciding[0].text, deciding[0].file, main)
        mode = d.exec_mode if d.verdict == ALLOW else None
        if mode and not re.search(rf"(?<![\w-]){re.escape(mode)}(?![\w-])", deciding[0].text):
            shown += f"  (exec mode {mode})"  # e.g. `file,` allows exec as ix
        return [shown]
    # DENY already says what enforce mode does with what is not allowed
    return [c for c in _clauses(d.reason) if c != _ENFORCE_CLAUSE]


def _rule(line: int, text: str, file: str, main: str) -> str:
    where = f"line {line}" if file == main else f"{file} line {line}"
    return f"{where}: {' '.join(text.split())}"


def _clauses(reason: str) -> list[str]:
    """The reason's `; `-separated clauses, never splitting inside a `quoted rule`."""
    parts: list[str] = []
    start = 0
    quoted = False
    for i, ch in enumerate(reason):
        if ch == "`":
            quoted = not quoted
        elif not quoted and reason.startswith("; ", i):
            parts.append(reason[start:i])
            start = i + 2
    parts.append(reason[start:])
    return [p for p in parts if p]
