"""Modal dialogs: confirm, a text/Markdown page, the `:` command line, help."""

from __future__ import annotations

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
    """A scrollable page of Markdown (a hint, the solution, a diff)."""

    BINDINGS = [Binding("escape,q", "close", "Close")]

    def __init__(self, title: str, markdown: str, *, tall: bool = True) -> None:
        super().__init__(classes="dialog")
        self._title, self._markdown, self._tall = title, markdown, tall

    def compose(self) -> ComposeResult:
        from textual.widgets import Markdown  # markdown-it loads when a page is first shown

        with Vertical(id="box", classes="page tall" if self._tall else "page"):
            yield Label(self._title, id="title")
            with VerticalScroll(id="page"):
                yield Markdown(self._markdown)
            yield Label("esc: close", id="foot")

    def on_mount(self) -> None:
        self.query_one("#page").focus()

    def action_close(self) -> None:
        self.dismiss(None)


class CommandLineScreen(ModalScreen[str | None]):
    """`:` then a command, at the bottom of the screen; tab completes."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

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
        "| `esc` | back |\n| `q` | quit (on the catalog) |\n\n"
        "## Commands (`:`)\n\n| command | does |\n|---|---|\n" + cmds + "\n"
    )
