"""Run the kind and docker CLIs: lines as they come, a timeout, and cancel.

The cluster lifecycle (lab.kind.cluster) drives `kind` and `docker` through a
`Runner`, so its tests replay real command output through a fake one. The real
`SubprocessRunner` starts each command in its own process group: a cancel (or
Ctrl-C) kills kind *and* the docker commands it started, not just kind.

Its own group also means a SIGTERM or SIGHUP to cks-lab (the terminal closed, the
TUI killed) does not reach kind. In the main thread the runner catches both while
a command runs, kills the group and then ends as the signal would. Python runs
signal handlers in the main thread only, so a command run in another thread (the
TUI's workers, `cks-lab up`'s) is stopped through its `cancel` event: whoever
owns that thread sets it (see `on_termination`).
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, Protocol

from lab.errors import LabError

POLL = 0.1  # seconds between looks at cancel/timeout while a command runs
# kind picks its node provider from this variable (podman, nerdctl, ...); the lab's
# node layer talks to docker, so kind must make docker nodes whatever the user set.
KIND_ENV = {"KIND_EXPERIMENTAL_PROVIDER": "docker"}
KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL

OnLine = Callable[[str], None]
TERMINATING = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


@dataclass(frozen=True)
class CommandResult:
    code: int
    stdout: str
    stderr: str
    cancelled: bool = False  # the cancel event was set and the command was killed

    @property
    def lines(self) -> list[str]:
        """stderr then stdout, line by line (kind logs its progress on stderr)."""
        return self.stderr.splitlines() + self.stdout.splitlines()


class CommandNotFound(LabError):
    """The program is not installed (not on PATH)."""

    def __init__(self, program: str) -> None:
        super().__init__(
            f"{program} not found on PATH; `cks-lab doctor` says what the kind backend needs"
        )
        self.program = program


class CommandTimeout(LabError):
    """The command ran past its timeout and was killed."""


class Runner(Protocol):
    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        on_line: OnLine | None = None,
        cancel: threading.Event | None = None,
    ) -> CommandResult:
        """Run argv to the end. `on_line` gets each line of stderr and stdout (in
        the caller's thread) as it is printed; a set `cancel` kills the command
        and returns with `cancelled` true. CommandNotFound, CommandTimeout."""
        ...


def _pump(stream: IO[str], name: str, out: queue.Queue[tuple[str, str | None]]) -> None:
    for line in stream:
        out.put((name, line))
    out.put((name, None))


@contextmanager
def on_termination(action: Callable[[int], None]) -> Iterator[None]:
    """While the block runs in the main thread, SIGTERM and SIGHUP call `action(signum)`
    instead of ending the process; the previous handlers are back after it. A signal
    that was ignored (nohup) stays ignored. In another thread nothing changes: Python
    delivers signals to the main thread only, and only it may set handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}  # signal.getsignal's answers
    for sig in TERMINATING:
        old = signal.getsignal(sig)
        if old is None or old == signal.SIG_IGN:  # set from C, or ignored: leave it
            continue
        previous[sig] = old
        signal.signal(sig, lambda signum, _frame: action(signum))
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def end_as_signalled(signum: int) -> None:
    """Deliver `signum` again now that its handler is the previous one: the default
    ends the process as the signal would have; a handler of the caller's runs."""
    signal.raise_signal(signum)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGTERM the command's process group, SIGKILL it if it lingers."""
    for sig, wait in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, KILL_GRACE)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


class SubprocessRunner:
    """The real thing: a child process in its own session, its output streamed."""

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        on_line: OnLine | None = None,
        cancel: threading.Event | None = None,
    ) -> CommandResult:
        argv = list(argv)
        if shutil.which(argv[0]) is None:
            raise CommandNotFound(argv[0])
        env = None
        if os.path.basename(argv[0]) == "kind":
            env = {**os.environ, **KIND_ENV}
        proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,  # its own group, so a kill reaches its children
        )
        assert proc.stdout is not None and proc.stderr is not None
        lines: queue.Queue[tuple[str, str | None]] = queue.Queue()
        pumps = [
            threading.Thread(target=_pump, args=(proc.stdout, "stdout", lines), daemon=True),
            threading.Thread(target=_pump, args=(proc.stderr, "stderr", lines), daemon=True),
        ]
        for t in pumps:
            t.start()
        captured: dict[str, list[str]] = {"stdout": [], "stderr": []}
        open_streams = 2
        deadline = None if timeout is None else time.monotonic() + timeout
        cancelled = timed_out = False
        signalled: list[int] = []  # SIGTERM/SIGHUP that arrived meanwhile
        with on_termination(signalled.append):
            try:
                while open_streams and not signalled:
                    try:
                        name, line = lines.get(timeout=POLL)
                    except queue.Empty:
                        name, line = "", ""
                    if name:
                        if line is None:
                            open_streams -= 1
                        else:
                            captured[name].append(line)
                            if on_line is not None:
                                on_line(line.rstrip("\r\n"))
                    if cancel is not None and cancel.is_set():
                        cancelled = True
                        break
                    if deadline is not None and time.monotonic() > deadline:
                        timed_out = True
                        break
            except BaseException:  # Ctrl-C or a failing on_line: never leave kind running
                _kill_group(proc)
                raise
            if cancelled or timed_out or signalled:
                _kill_group(proc)
            code = proc.wait()
        if signalled:
            end_as_signalled(signalled[0])
            cancelled = True  # the caller's own handler returned: the command was stopped
        for t in pumps:
            t.join(1.0)
        if timed_out:
            raise CommandTimeout(f"`{' '.join(argv[:3])}` did not finish within {timeout:.0f} s")
        return CommandResult(
            code, "".join(captured["stdout"]), "".join(captured["stderr"]), cancelled
        )
