"""Check a profile file the way `cks-lab apparmor validate` needs: with the real
apparmor_parser when it is installed (and not told otherwise), else with the lab's own
parser -- and say which one was used."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lab.engines.apparmor.compiler import REAL_COMPILER_MISSING, compile_real
from lab.engines.apparmor.errors import ProfileError
from lab.engines.apparmor.includes import IncludeResolver, read_profile_file
from lab.engines.apparmor.parser import parse_text
from lab.engines.apparmor.policy import ProfileSet, build

BUILTIN = "builtin"
REAL = "apparmor_parser"


@dataclass(frozen=True, slots=True)
class Validation:
    ok: bool
    errors: tuple[ProfileError, ...]
    compiler: str  # REAL or BUILTIN
    note: str | None = None  # why the built-in parser was used, or a disagreement
    profiles: ProfileSet | None = None  # the lab's reading, when it parses


def validate_profile(path: Path | str, include_path: Sequence[Path | str] = (), *,
                     builtin: bool = False, root: Path | None = None) -> Validation:
    """Validate a profile file; the lab's own parse is always attempted too."""
    p = Path(path)
    dirs = [Path(d) for d in include_path]
    own_error: ProfileError | None = None
    pset: ProfileSet | None = None
    try:
        text = read_profile_file(p)
        resolver = IncludeResolver(dirs, base_dir=p.parent, root=root)
        pset = build(parse_text(text, str(p), resolver), str(p))
    except ProfileError as err:
        own_error = err
    except RecursionError:
        own_error = ProfileError("the profile nests too deeply", file=str(p))
    own = Validation(own_error is None, (own_error,) if own_error else (), BUILTIN,
                     None, pset)
    if builtin:
        return own
    real = compile_real(p, dirs)
    if real is None:
        return Validation(own.ok, own.errors, BUILTIN, REAL_COMPILER_MISSING, pset)
    note = None
    if real.ok != own.ok:
        note = ("the lab's own parser disagrees with apparmor_parser here"
                + (f" ({own_error})" if own_error else ""))
    return Validation(real.ok, real.errors, REAL, note, pset)
