"""The `:` command line, as in k9s: `:scenario ID`, `:backend kind`, `:q`."""

from __future__ import annotations

from dataclasses import dataclass

# name -> (aliases, argument, what it does); the order is the help's order
COMMANDS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "scenario": (("s", "open", "sc"), "ID", "open a scenario"),
    "catalog": (("home", "list", "ls"), "", "the scenario catalog"),
    "results": (("progress", "stats"), "", "your attempts, scores and time, per skill"),
    "exam": (("mock",), "", "the mock exam: start one, or back to the running one"),
    "backend": (("be",), "NAME", "use another backend (sim, kind)"),
    "start": ((), "", "start the open scenario (creates its workspace)"),
    "check": (("grade",), "", "run the attack again and grade your work"),
    "hint": ((), "", "the next hint (costs points; asks first)"),
    "shell": (("sh",), "[NODE]", "a shell in a node's files"),
    "solution": (("sol",), "", "the reference solution (asks first)"),
    "diff": ((), "", "your files against the solution (asks first)"),
    "reset": ((), "", "back to the starting state (asks first; files backed up)"),
    "help": (("h", "?"), "", "keys and commands"),
    "quit": (("q", "q!", "qa", "exit"), "", "leave the lab"),
}

_ALIASES = {alias: name for name, (aliases, _, _) in COMMANDS.items() for alias in aliases}


@dataclass(frozen=True)
class Command:
    name: str
    args: tuple[str, ...]


class CommandError(ValueError):
    pass


def parse(text: str) -> Command:
    """`:scenario x` / `scenario x` / `:q` -> Command; a CommandError says what is wrong."""
    words = text.strip().lstrip(":").split()
    if not words:
        raise CommandError("empty command; try :help")
    word, args = words[0].lower(), tuple(words[1:])
    name = word if word in COMMANDS else _ALIASES.get(word)
    if name is None:
        raise CommandError(f"unknown command :{word}; try :help")
    wanted = COMMANDS[name][1]
    if wanted and not wanted.startswith("[") and not args:
        raise CommandError(f":{name} needs {wanted}, e.g. :{name} {_example(name)}")
    if len(args) > (1 if wanted else 0):
        raise CommandError(f":{name} takes {wanted or 'no arguments'}")
    return Command(name, args)


def _example(name: str) -> str:
    return {"scenario": "falco-shell-alert", "backend": "sim"}.get(name, "")


def suggestions(scenario_ids: list[str]) -> list[str]:
    """What the command line completes (`:sc` -> `:scenario falco-…`)."""
    out = [f"scenario {i}" for i in scenario_ids]
    out += [f"backend {b}" for b in ("sim", "kind")]
    out += [n for n, (_, arg, _) in COMMANDS.items() if not arg or arg.startswith("[")]
    return out
