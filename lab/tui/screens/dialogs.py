"""Modal dialogs: confirm, a text/Markdown page, the `:` command line, help."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Label, Static

from lab.tui.commands import COMMANDS


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question; `y`/enter confirm, `n`/esc cancel."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, title: str, message: str, yes: str = "Yes") -> None:
        super().__init__(classes="dialog")
        self._title, self._message, self._yes = title, message, yes

    def compose(self) -> ComposeResult:
        with Vertical(id="box"):
            yield Label(self._title, id="title")
            yield Static(self._message, id="message")
            with Horizontal(id="buttons"):
                yield Button(f"{self._yes} (y)", id="yes", variant="primary")
                yield Button("Cancel (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()  # a stray enter never confirms

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class TextScreen(ModalScreen[None]):
    """A scrollable page: Markdown (a hint, help) or plain text that wraps, with
    diff lines coloured (a solution, a diff: long lines stay readable without a mouse)."""

    BINDINGS = [Binding("escape,q", "close", "Close")]

    def __init__(self, title: str, body: str, *, tall: bool = True, plain: bool = False) -> None:
        super().__init__(classes="dialog")
        self._title, self._body, self._tall, self._plain = title, body, tall, plain

    def compose(self) -> ComposeResult:
        with Vertical(id="box", classes="page tall" if self._tall else "page"):
            yield Label(self._title, id="title")
            with VerticalScroll(id="page"):
                if self._plain:
                    yield Static(diff_colored(self._body))
                else:
                    from textual.widgets import Markdown  # markdown-it loads on first use

                    yield Markdown(self._body)
            yield Label("esc: close · ↑ ↓ pgup pgdn: scroll", id="foot")

    def on_mount(self) -> None:
        self.query_one("#page").focus()

    def action_close(self) -> None:
        self.dismiss(None)


def diff_colored(text: str) -> Text:
    """Plain text with unified-diff lines coloured; Markdown code fences dropped."""
    out = Text()
    for line in text.splitlines():
        if line.startswith("```"):
            continue
        style = ""
        if line.startswith(("+++", "---")):
            style = "bold"
        elif line.startswith("+"):
            style = "green"
        elif line.startswith("-"):
            style = "red"
        elif line.startswith("@@"):
            style = "cyan"
        elif line.startswith("## "):
            line, style = line[3:], "bold underline"
        out.append(line + "\n", style)
    return out


class ChoiceScreen(ModalScreen[str | None]):
    """Pick one of a few things (which node a shell opens on); enter picks, esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, options: list[tuple[str, str]], default: str) -> None:
        super().__init__(classes="dialog")
        self._title, self._options, self._default = title, options, default

    def compose(self) -> ComposeResult:
        from textual.widgets import OptionList
        from textual.widgets.option_list import Option

        with Vertical(id="box"):
            yield Label(self._title, id="title")
            yield OptionList(*[Option(label, id=key) for key, label in self._options], id="choices")
            yield Label("enter: choose · esc: cancel", id="foot")

    def on_mount(self) -> None:
        from textual.widgets import OptionList

        choices = self.query_one("#choices", OptionList)
        keys = [k for k, _ in self._options]
        choices.highlighted = keys.index(self._default) if self._default in keys else 0
        choices.focus()

    def on_option_list_option_selected(self, event: object) -> None:
        option = getattr(event, "option", None)
        self.dismiss(getattr(option, "id", None))

    def action_cancel(self) -> None:
        self.dismiss(None)


class CommandLineScreen(ModalScreen[str | None]):
    """`:` then a command, at the bottom of the screen; tab completes."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("tab", "complete", "Complete", priority=True),  # not focus-next here
    ]

    def __init__(self, completions: list[str]) -> None:
        super().__init__(id="command-line-screen")
        self._completions = completions

    def compose(self) -> ComposeResult:
        with Horizontal(id="command-line"):
            yield Label(":")
            yield Input(
                placeholder="scenario ID · results · backend NAME · help · q",
                suggester=SuggestFromList(self._completions, case_sensitive=False),
                id="command",
            )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_complete(self) -> None:
        box = self.query_one("#command", Input)
        suggestion = getattr(box, "_suggestion", "")  # what the suggester shows dimmed
        if suggestion and suggestion != box.value:
            box.value = suggestion
            box.cursor_position = len(suggestion)

    def action_cancel(self) -> None:
        self.dismiss(None)


def help_markdown(keys: list[tuple[str, str]]) -> str:
    rows = "\n".join(f"| `{k}` | {d} |" for k, d in keys)
    cmds = "\n".join(
        f"| `:{name}{' ' + arg if arg else ''}` | {what}"
        + (f" (also {', '.join(':' + a for a in aliases)})" if aliases else "")
        + " |"
        for name, (aliases, arg, what) in COMMANDS.items()
    )
    return (
        "## Keys here\n\n| key | action |\n|---|---|\n" + rows + "\n\n"
        "## Everywhere\n\n| key | action |\n|---|---|\n"
        "| `?` | this help |\n| `:` | command line (tab completes) |\n"
        "| `ctrl+p` | command palette: every action, searchable |\n"
        "| `esc` | back |\n| `q` | quit (on the catalog) |\n| `ctrl+q` | quit, anywhere |\n\n"
        "## Commands (`:`)\n\n| command | does |\n|---|---|\n" + cmds + "\n"
    )
