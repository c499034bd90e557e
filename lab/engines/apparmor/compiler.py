"""The real compiler: Debian's `apparmor_parser`, when it is installed.

`apparmor_parser -QK [-I dir] FILE` compiles a profile without loading it (`-Q`) and
without its cache (`-K`), so it works on a machine whose kernel has no AppArmor; the
exit code says whether the profile compiles (stderr always carries a warning about
the cache). `-p`/`-N` alone would miss errors found only while compiling, such as
exec-mode conflicts.

Without a kernel to ask, apparmor_parser falls back to an old default feature set in
which mount, signal, ptrace, dbus and unix rules are skipped unchecked; the features
file its own package ships for ABI 3.0 (`/etc/apparmor.d/abi/3.0`) is passed with
`-M` when present, so the compile checks what a kernel with AppArmor 3.0 would.

Its "AppArmor parser error for FILE in profile X at line N: MSG" lines become located
ProfileErrors (X is the file the error is in, which may be an included file).

apparmor_parser searches its `-I` folders, then its base folder (/etc/apparmor.d).
When the caller names the include folders, the host's /etc/apparmor.d must not fill
in what they lack (the lab's own parser would not find it there): `-b` points the
base at a private folder that holds only the installed parser's ABI files (`abi/`),
which `abi <abi/3.0>,` needs and which are the compiler's, not the host's policy.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lab.engines.apparmor.errors import ProfileError

REAL_COMPILER_MISSING = (
    "apparmor_parser is not installed here, so the lab's own parser checked the profile "
    "(install Debian's 'apparmor' package to compile with the real one)"
)

_LOCATED = re.compile(
    r"AppArmor parser error (?:for (?P<main>.+?)(?: in profile (?P<file>.+?))? )?"
    r"at line (?P<line>\d+): (?P<msg>.*)")
_NOISE = ("Cache read/write disabled", "Warning from ", "Warning: unable to find a suitable fs")
DEFAULT_FEATURES = (Path("/etc/apparmor.d/abi/3.0"),)
HOST_ABI_DIR = Path("/etc/apparmor.d/abi")


@dataclass(frozen=True, slots=True)
class CompileResult:
    ok: bool
    returncode: int | None
    errors: tuple[ProfileError, ...]
    warnings: tuple[str, ...]
    command: tuple[str, ...]

    @property
    def message(self) -> str:
        return "; ".join(str(e) for e in self.errors)


def find_apparmor_parser() -> str | None:
    found = shutil.which("apparmor_parser")
    if found:
        return found
    for cand in ("/sbin/apparmor_parser", "/usr/sbin/apparmor_parser"):
        if os.access(cand, os.X_OK):
            return cand
    return None


def parse_stderr(stderr: str, path: str) -> tuple[list[ProfileError], list[str]]:
    """Split apparmor_parser's stderr into located errors and warnings."""
    errors: list[ProfileError] = []
    warnings: list[str] = []
    for raw in stderr.splitlines():
        line = raw.strip()
        if not line or line.startswith(_NOISE):
            continue
        m = _LOCATED.match(line)
        if m:
            file = m.group("file") or m.group("main") or path
            errors.append(ProfileError(m.group("msg"), file=file, line=int(m.group("line"))))
        elif line.lower().startswith("warning"):
            warnings.append(line)
        else:
            # It prefixes some messages with its own name, sometimes as a full path.
            msg = re.sub(r"^(?:\S*/)?apparmor_parser: ", "", line)
            errors.append(ProfileError(msg, file=path))
    return errors, warnings


def default_features() -> Path | None:
    return next((p for p in DEFAULT_FEATURES if p.is_file()), None)


def compile_real(path: Path | str, include_dirs: Sequence[Path | str] = (), *,
                 timeout: float = 20.0, parser: str | None = None,
                 features: Path | None = None) -> CompileResult | None:
    """Compile with apparmor_parser; None when it is not installed.

    `features`: a kernel features file (default: the ABI 3.0 file, when installed).
    """
    exe = parser or find_apparmor_parser()
    if exe is None:
        return None
    with tempfile.TemporaryDirectory(prefix="cks-lab-aa-base-") as base:
        cmd = [exe, "-Q", "-K"]
        feats = features or default_features()
        if feats is not None:
            cmd += ["-M", str(feats)]
        if include_dirs:
            if HOST_ABI_DIR.is_dir():
                (Path(base) / "abi").symlink_to(HOST_ABI_DIR)
            cmd += ["-b", base]
        for d in include_dirs:
            cmd += ["-I", str(d)]
        cmd.append(str(path))
        return _run(cmd, path, timeout)


def _run(cmd: list[str], path: Path | str, timeout: float) -> CompileResult:
    env = dict(os.environ, LANG="C", LC_ALL="C")
    try:
        # errors="replace": the parser quotes the profile's bytes, which need not be UTF-8.
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                              timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        err = ProfileError(f"apparmor_parser did not finish within {timeout:g}s", file=str(path))
        return CompileResult(False, None, (err,), (), tuple(cmd))
    except OSError as exc:
        err = ProfileError(f"could not run apparmor_parser: {exc.strerror}", file=str(path))
        return CompileResult(False, None, (err,), (), tuple(cmd))
    errors, warnings = parse_stderr(proc.stderr, str(path))
    if proc.returncode != 0 and not errors:
        errors.append(ProfileError(f"apparmor_parser failed (exit {proc.returncode})",
                                   file=str(path)))
    if proc.returncode == 0:
        errors = []
    return CompileResult(proc.returncode == 0, proc.returncode, tuple(errors),
                         tuple(warnings), tuple(cmd))
