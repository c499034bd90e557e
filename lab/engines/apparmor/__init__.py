"""AppArmor's profile language (apparmor.d(5), AppArmor 3.x) and its access decisions.

Stages, each its own module: lexer (apparmor_parser's tokens and lexer modes) ->
parser (grammar -> model, every rule with its text and line; includes via includes,
`@{VAR}` via variables) -> policy (expansion, glob checks, exec conflicts) ->
decide (access decisions). compiler wraps the real apparmor_parser.
Knows nothing of scenarios, backends or the TUI.

Public API::

    pset = parse_profile_text(text, name="k8s-deny-write", include_path=[...])
    pset = parse_profile_file(path, include_path=[...])    # ProfileError on bad input
    prof = pset.profile("k8s-deny-write")                   # or pset.profile() if one
    d = decide(prof, "w /tmp/x")      # or decide(prof, Access); "owner w /tmp/x" when
                                      # the task owns the file (default: it does not)
    d.verdict            # "ALLOW" | "DENY" | "COMPLAIN"
    d.rules              # (RuleRef(line, text, role, file), ...)
    d.reason             # one sentence naming the deciding rules
    parse_access("network inet raw")                        # AccessError on bad input
    compile_real(path, include_dirs)  # CompileResult, or None without apparmor_parser
    validate_profile(path, include_dirs, builtin=False)
        # Validation(ok, errors, compiler="apparmor_parser"|"builtin", note, profiles)

Include search paths: `default_search_path(node_root)` gives a node tree's
/etc/apparmor.d then the lab's minimal copies (the `abstractions/` folder here).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lab.engines.apparmor.access import Access, parse_access
from lab.engines.apparmor.compiler import (
    REAL_COMPILER_MISSING,
    CompileResult,
    compile_real,
    find_apparmor_parser,
)
from lab.engines.apparmor.decide import ALLOW, COMPLAIN, DENY, Decision, RuleRef, decide
from lab.engines.apparmor.errors import AccessError, ProfileError
from lab.engines.apparmor.includes import (
    BUNDLED_DIR,
    MAX_INCLUDE_BYTES,
    IncludeResolver,
    default_search_path,
    read_profile_file,
)
from lab.engines.apparmor.model import Profile
from lab.engines.apparmor.parser import parse_text
from lab.engines.apparmor.policy import ProfileSet, build
from lab.engines.apparmor.validate import Validation, validate_profile

__all__ = [
    "ALLOW", "BUNDLED_DIR", "COMPLAIN", "DENY", "REAL_COMPILER_MISSING", "Access",
    "AccessError", "CompileResult", "Decision", "Profile", "ProfileError", "ProfileSet",
    "RuleRef", "Validation", "compile_real", "decide", "default_search_path",
    "find_apparmor_parser", "parse_access", "parse_profile_file", "parse_profile_text",
    "validate_profile",
]


def parse_profile_text(text: str, *, name: str = "<profile>",
                       include_path: Sequence[Path | str] | None = None,
                       base_dir: Path | None = None, root: Path | None = None) -> ProfileSet:
    """Parse and check a profile file's text; raises ProfileError with file and line.

    `include_path` is searched for `<...>` includes (default: the lab's own copies);
    `base_dir` resolves relative `"..."` includes; `root` is a node tree the includes
    found in it are confined to (absolute `"/..."` includes and symlinks are the node's).
    """
    if len(text) > MAX_INCLUDE_BYTES:
        raise ProfileError(
            f"file is too large for a profile ({len(text)} characters, "
            f"limit {MAX_INCLUDE_BYTES})", file=name)
    if "\0" in text:
        raise ProfileError("binary file, not an AppArmor profile", file=name)
    dirs = [Path(p) for p in include_path] if include_path is not None else [BUNDLED_DIR]
    resolver = IncludeResolver(dirs, base_dir=base_dir, root=root)
    try:
        return build(parse_text(text, name, resolver), name)
    except RecursionError:
        raise ProfileError("the profile nests blocks, conditions or variables too deeply",
                           file=name) from None


def parse_profile_file(path: Path | str, *, include_path: Sequence[Path | str] | None = None,
                       root: Path | None = None, name: str | None = None) -> ProfileSet:
    """Read (size- and binary-checked) and parse a profile file."""
    p = Path(path)
    shown = name or str(p)
    return parse_profile_text(read_profile_file(p, shown), name=shown,
                              include_path=include_path, base_dir=p.parent, root=root)
