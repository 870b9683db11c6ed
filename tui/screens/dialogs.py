"""Small modal screens: confirm, jump-to-step prompt, full text viewer."""

from __future__ import annotations

from rich.console import RenderableType
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Log, Static

from agentdeck.tui.widgets.scroll import KeyScroll


class ConfirmScreen(ModalScreen[bool]):
    """Ask a yes/no question; y/enter says yes, n/escape no."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    def __init__(self, question: str, *, yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self.question, self.yes, self.no = question, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.question, id="dialog-question")
            with Horizontal(id="dialog-buttons"):
                yield Button(f"{self.yes} (y)", variant="error", id="yes")
                yield Button(f"{self.no} (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class JumpScreen(ModalScreen[int | None]):
    """Prompt for a step number."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="jump.cancel")]

    def __init__(self, first: int, last: int) -> None:
        super().__init__()
        self.first, self.last = first, last

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"Jump to step ({self.first}–{self.last}):")
            yield Input(placeholder="step number", type="integer", id="jump-input")
            yield Static("", id="jump-error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        try:
            n = int(event.value)
        except ValueError:
            self.query_one("#jump-error", Static).update("type a whole number")
            return
        self.dismiss(n)

    def action_cancel(self) -> None:
        self.dismiss(None)


class FullTextScreen(ModalScreen[None]):
    """The full text of a long output, scrollable; q/escape closes."""

    BINDINGS = [
        Binding("escape,q,v", "close", "Close", id="fulltext.close"),
        Binding("g", "top", "Top", show=False, id="fulltext.top"),
        Binding("G", "bottom", "Bottom", show=False, id="fulltext.bottom"),
        Binding("j", "down", "Down", show=False, id="fulltext.down"),
        Binding("k", "up", "Up", show=False, id="fulltext.up"),
    ]

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.title_text, self.text = title, text

    def compose(self) -> ComposeResult:
        with Vertical(id="fulltext"):
            yield Label(self.title_text, id="fulltext-title")
            yield Log(id="fulltext-log", auto_scroll=False)

    def on_mount(self) -> None:
        log = self.query_one(Log)
        log.write_lines(self.text.splitlines() or ["(empty)"])
        log.scroll_home(animate=False)
        log.focus()

    def action_close(self) -> None:
        self.dismiss(None)

    def action_top(self) -> None:
        self.query_one(Log).scroll_home(animate=False)

    def action_bottom(self) -> None:
        self.query_one(Log).scroll_end(animate=False)

    def action_down(self) -> None:
        self.query_one(Log).scroll_down(animate=False)

    def action_up(self) -> None:
        self.query_one(Log).scroll_up(animate=False)


class RenderableScreen(ModalScreen[None]):
    """Any Rich renderable (a table, say) in a scrollable box; escape or q closes."""

    BINDINGS = [Binding("escape,q", "close", "Close", id="renderable.close")]

    def __init__(self, title: str, renderable: RenderableType) -> None:
        super().__init__()
        self.title_text, self.renderable = title, renderable

    def compose(self) -> ComposeResult:
        with Vertical(id="fulltext"):
            yield Label(self.title_text, id="fulltext-title")
            with KeyScroll(id="renderable-body"):
                yield Static(self.renderable)

    def on_mount(self) -> None:
        self.query_one(KeyScroll).focus()

    def action_close(self) -> None:
        self.dismiss(None)
