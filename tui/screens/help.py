"""The ? screen: every key active where it was pressed, as currently mapped."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

#: Keys handled by widgets without a Binding (documented here so ? lists them).
EXTRA_KEYS: dict[str, list[tuple[str, str]]] = {
    "RunScreen": [("mouse", "click a step, a tab or the scrubber; wheel scrolls")],
    "RunsScreen": [("mouse", "click a run; click a column header to sort by it")],
}


def _key_label(app: App[Any], key: str) -> str:
    return app.get_key_display(Binding(key, ""))


def binding_rows(screen: Screen) -> list[tuple[str, str, str]]:
    """(keys, description, binding id) for every binding active on ``screen``."""
    app = screen.app
    grouped: dict[tuple[str, str], list[str]] = {}
    ids: dict[tuple[str, str], str] = {}
    order: list[tuple[str, str]] = []
    for key, active in screen.active_bindings.items():
        b = active.binding
        desc = b.description or b.action
        if b.system or not b.description:
            continue
        ident = (desc, b.action)
        if ident not in grouped:
            grouped[ident] = []
            ids[ident] = b.id or ""
            order.append(ident)
        label = _key_label(app, key)
        if label not in grouped[ident]:
            grouped[ident].append(label)
    rows = [(" ".join(grouped[i]), i[0], ids[i]) for i in order]
    rows += [(k, d, "") for k, d in EXTRA_KEYS.get(type(screen).__name__, [])]
    return rows


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close help", id="help.close")]

    def __init__(self, for_screen: Screen) -> None:
        super().__init__()
        self.rows = binding_rows(for_screen)
        self.screen_name = getattr(for_screen, "HELP_TITLE", type(for_screen).__name__)

    def compose(self) -> ComposeResult:
        table = Table(box=None, padding=(0, 2), show_header=True, header_style="bold")
        table.add_column("keys", style="bold", no_wrap=True)
        table.add_column("does")
        table.add_column("binding id (for keymap.toml)", style="dim")
        for keys, desc, ident in self.rows:
            table.add_row(keys, desc, ident)
        with VerticalScroll(id="help"):
            yield Static(Text(f"Keys: {self.screen_name}", style="bold"), id="help-title")
            yield Static(table, id="help-table")
            yield Static(
                Text(
                    "Keys can be remapped by binding id: see docs/tui.md. escape closes.",
                    style="dim",
                ),
                id="help-foot",
            )

    def action_close(self) -> None:
        self.dismiss(None)
