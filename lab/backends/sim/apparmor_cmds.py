"""The node commands that change or show a sim node's AppArmor state, with the real
tools' options, output and exit codes (`cks-lab node exec` runs them):

* `apparmor_parser [-a|-r|-R] [-C] [-v] [-Q] [-N] [-I DIR] FILE|DIR...` -- checks each
  profile file (with the real apparmor_parser when installed, and always with the
  lab's parser, which the sim decides with), then adds, replaces or removes its
  profiles in the node's kernel (lab/backends/sim/apparmor_kernel.py);
* `aa-status` (AppArmor 3.0's output) -- what is loaded, in which mode, and the
  confined processes.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from lab.backends.sim import apparmor_kernel as kernel
from lab.backends.sim.apparmor_kernel import LoadedProfile, ParsedFile
from lab.engines.apparmor import ProfileError, compile_real
from lab.engines.apparmor.includes import skipped
from lab.engines.apparmor.podspec import RUNTIME_DEFAULT_PROFILE
from lab.nodefs import NodePathError, normalize_node_path, resolve_in_node
from lab.scenarios.loader import LoadedScenario
from lab.workspace import Workspace, now_iso

HOME = "/root"  # where `ssh NODE` starts: relative paths are taken from here
PARSER = "apparmor_parser"
PARSER_VERSION = "AppArmor parser version 3.0.8"
NO_SECURITYFS = ("Warning: unable to find a suitable fs in /proc/mounts, is it mounted?\n"
                 "Use --subdomainfs to override.\n")


@dataclass
class ExecResult:
    """What a command printed, and its exit status."""

    stdout: str = ""
    stderr: str = ""
    code: int = 0

    def out(self, text: str) -> None:
        self.stdout += text + "\n"

    def err(self, text: str) -> None:
        self.stderr += text + "\n"


_SHORT = {"a": "add", "r": "replace", "R": "remove", "C": "complain", "v": "verbose",
          "q": "quiet", "Q": "skip-kernel-load", "N": "names", "K": "skip-cache",
          "T": "skip-read-cache", "W": "write-cache", "h": "help", "V": "version"}
_LONG = {"add", "replace", "remove", "complain", "verbose", "quiet", "skip-kernel-load",
         "names", "skip-cache", "skip-read-cache", "write-cache", "help", "version",
         "Include"}


@dataclass
class _Options:
    action: str = "add"
    flags: set[str] = field(default_factory=set)
    includes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def _parse_args(args: list[str], res: ExecResult) -> _Options | None:
    """getopt_long's reading of apparmor_parser's options; None after a usage error."""
    opts = _Options()

    def flag(name: str) -> None:
        if name in ("add", "replace", "remove"):
            opts.action = name
        else:
            opts.flags.add(name)

    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            opts.files += args[i:]
            break
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            if name not in _LONG:
                res.err(f"{PARSER}: unrecognized option '{arg}'")
                return None
            if name == "Include":
                if not eq:
                    if i >= len(args):
                        res.err(f"{PARSER}: option '--Include' requires an argument")
                        return None
                    value, i = args[i], i + 1
                opts.includes.append(value)
            else:
                flag(name)
        elif arg.startswith("-") and len(arg) > 1:
            j = 1
            while j < len(arg):
                ch = arg[j]
                j += 1
                if ch == "I":
                    value = arg[j:]
                    if not value:
                        if i >= len(args):
                            res.err(f"{PARSER}: option requires an argument -- 'I'")
                            return None
                        value, i = args[i], i + 1
                    opts.includes.append(value)
                    break
                if ch not in _SHORT:
                    res.err(f"{PARSER}: invalid option -- '{ch}'")
                    return None
                flag(_SHORT[ch])
        else:
            opts.files.append(arg)
    return opts


def _node_path(arg: str) -> str:
    return normalize_node_path(arg if arg.startswith("/") else f"{HOME}/{arg}")


class ParserRun:
    """One apparmor_parser invocation on a node."""

    def __init__(self, ws: Workspace, node: str, enabled: bool) -> None:
        self.ws = ws
        self.node = node
        self.root = ws.node_root(node)
        self.enabled = enabled
        self.res = ExecResult()

    def run(self, args: list[str]) -> ExecResult:
        res = self.res
        opts = _parse_args(args, res)
        if opts is None:
            res.code = 1
            return res
        if "version" in opts.flags:
            res.out(PARSER_VERSION)
            return res
        if "help" in opts.flags:
            res.out(f"Usage: {PARSER} [options] [profile]")
            return res
        if not opts.files:
            res.err(f"{PARSER}: give the profile file to load (cks-lab node exec passes no "
                    "standard input)")
            res.code = 1
            return res
        self.opts = opts
        loads_kernel = not ({"skip-kernel-load", "names"} & opts.flags)
        if loads_kernel and not self.enabled:
            res.stderr += NO_SECURITYFS
            res.code = 1
            return res
        for arg in opts.files:
            for node_path, shown in self._expand(arg):
                self._one(node_path, shown, loads_kernel)
        return res

    def _expand(self, arg: str) -> list[tuple[str, str]]:
        """A file argument as node paths; a folder gives its files, in name order."""
        node_path = _node_path(arg)
        try:
            host = resolve_in_node(self.root, node_path)
        except NodePathError:
            return [(node_path, arg)]
        if host.is_dir():
            names = sorted(p.name for p in host.iterdir()
                           if p.is_file() and not skipped(p.name))
            return [(f"{node_path.rstrip('/')}/{n}", f"{arg.rstrip('/')}/{n}") for n in names]
        return [(node_path, arg)]

    def _fail(self, code: int, text: str) -> None:
        self.res.err(text)
        self.res.code = max(self.res.code, code)

    def _one(self, node_path: str, shown: str, loads_kernel: bool) -> None:
        search = [_node_path(d) for d in self.opts.includes] + [kernel.PROFILE_DIR]
        try:
            parsed = kernel.parse_node_profile(self.root, node_path, search)
        except FileNotFoundError:
            self._fail(2, f"File {shown} not found, skipping...")
            return
        except ProfileError as err:
            if err.file == node_path:
                err.file = shown
            self._fail(1, kernel.located(err, shown))
            return
        if self._real_errors(parsed, shown):
            return
        if kernel.snapshot_size(parsed) > kernel.MAX_SNAPSHOT_CHARS:
            self._fail(1, f"{PARSER}: {shown}: the profile and its includes are larger than the "
                       f"lab keeps ({kernel.MAX_SNAPSHOT_CHARS} characters)")
            return
        if "names" in self.opts.flags:
            for name in parsed.profiles.names():
                self.res.out(name)
            return
        self._apply(parsed, loads_kernel)

    def _real_errors(self, parsed: ParsedFile, shown: str) -> bool:
        """Compile with the real apparmor_parser too, when it is installed; True if it
        refused. It compiles a copy of exactly what the lab read (the file and its
        includes, from inside the node), so it never reads the host's own files."""
        if any(key.startswith('"/') for key in parsed.includes):
            return False  # an absolute include: the real parser would read it on the host
        with tempfile.TemporaryDirectory(prefix="cks-lab-apparmor-") as tmp:
            inc, tree = Path(tmp) / "include", Path(tmp) / "node"
            main = tree / parsed.node_path.lstrip("/")
            files = {main: parsed.text}
            for key, entries in parsed.includes.items():
                for name, text in entries:
                    files[inc / name if key.startswith("<") else tree / name.lstrip("/")] = text
            for path, text in files.items():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
            real = compile_real(main, [inc])
            if real is None or real.ok:
                return False
            for err in real.errors:
                err.file = _shown_file(err.file, main, shown, inc, tree)
                self._fail(1, kernel.located(err, shown))
        return True

    def _apply(self, parsed: ParsedFile, loads_kernel: bool) -> None:
        action = self.opts.action
        now = now_iso()
        current = kernel.loaded(self.ws, self.node)
        names = {lp.name for lp in current}
        verb = {"add": "Addition", "replace": "Replacement", "remove": "Removal"}[action]
        changed = list(current)
        if not loads_kernel:  # -Q: compiled only, the kernel is not asked
            for prof in parsed.profiles.profiles:
                if "verbose" in self.opts.flags:
                    self.res.out(f'{verb} succeeded for "{prof.name}".')
            return
        for prof in parsed.profiles.profiles:  # top-level: children go with their parent
            family = [p for p in parsed.profiles.all_profiles()
                      if p.full_name == prof.name or p.full_name.startswith(prof.name + "//")]
            if action == "remove":
                if prof.name not in names:
                    self._fail(1, f'{PARSER}: Unable to remove "{prof.name}".  '
                               "Profile doesn't exist")
                    continue
                gone = {p.full_name for p in family}
                changed = [lp for lp in changed if lp.name not in gone]
            else:
                if action == "add" and prof.name in names:
                    self._fail(1, f'{PARSER}: Unable to add "{prof.name}".  '
                               "Profile already exists")
                    continue
                gone = {prof.name} | {lp.name for lp in changed
                                      if lp.name.startswith(prof.name + "//")}
                changed = [lp for lp in changed if lp.name not in gone]
                for p in family:
                    mode = "complain" if "complain" in self.opts.flags else p.mode
                    changed.append(LoadedProfile(p.full_name, mode, parsed.node_path, now,
                                                 parsed.text, parsed.includes))
            if "verbose" in self.opts.flags:
                self.res.out(f'{verb} succeeded for "{prof.name}".')
        if changed != current:
            kernel.store(self.ws, self.node, changed)


def _shown_file(file: str | None, main: Path, shown: str, inc: Path, tree: Path) -> str:
    """A path in the real compiler's message, as the node names it."""
    if not file or file == str(main):
        return shown
    for base, prefix in ((inc, ""), (tree, "/")):
        try:
            return prefix + str(Path(file).relative_to(base))
        except ValueError:
            continue
    return file


# --- aa-status -------------------------------------------------------------------------------


def aa_status(profiles: list[LoadedProfile], enabled: bool, args: list[str],
              processes: list[tuple[str, str, str]]) -> ExecResult:
    """aa-status (AppArmor 3.0) for a node's loaded profiles and confined processes."""
    res = ExecResult()
    if not enabled:
        res.out("apparmor module is not loaded.")
        res.code = 1
        return res
    if args and args[0] == "--enabled":
        return res
    res.out("apparmor module is loaded.")
    modes = {p.name: p.mode for p in profiles}
    if any(p[2] == RUNTIME_DEFAULT_PROFILE for p in processes):
        # containerd loads its default profile itself, the first time a container needs it
        modes.setdefault(RUNTIME_DEFAULT_PROFILE, "enforce")
    res.out(f"{len(modes)} profiles are loaded.")
    for mode in ("enforce", "complain"):
        names = sorted(name for name, m in modes.items() if m == mode)
        res.out(f"{len(names)} profiles are in {mode} mode.")
        for name in names:
            res.out(f"   {name}")
    res.out(f"{len(processes)} processes have profiles defined.")
    for mode in ("enforce", "complain"):
        mine = sorted((p for p in processes if modes.get(p[2]) == mode),
                      key=lambda p: (p[2], p[0]))
        res.out(f"{len(mine)} processes are in {mode} mode.")
        for exe, pid, prof in mine:
            res.out(f"   {exe} ({pid}) {prof}")
    res.out("0 processes are unconfined but have a profile defined.")
    return res


def load_setup_profiles(ws: Workspace, sc: LoadedScenario) -> list[str]:
    """A fresh boot: nothing loaded, then `apparmor_parser -r` of setup.load_profiles.

    Returns the problems (a scenario's own profile that does not load)."""
    kernel.unload_all(ws)
    enabled = {n.name: n.apparmor for n in sc.model.cluster.nodes}
    if sc.model.needs_apparmor:
        # The apparmor package's profile folder, which every AppArmor node has: a learner
        # writes the new profile there, as on the exam.
        for node in (name for name, on in enabled.items() if on):
            folder = resolve_in_node(ws.node_root(node), kernel.PROFILE_DIR)
            folder.mkdir(parents=True, exist_ok=True)
    problems = []
    for ref in sc.model.setup.load_profiles:
        res = ParserRun(ws, ref.node, enabled.get(ref.node, True)).run(["-r", ref.path])
        if res.code:
            problems.append(f"setup.load_profiles {ref.node}:{ref.path}: {res.stderr.strip()}")
    return problems
