"""The ? screen: every key active where it was pressed, as currently mapped."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from agentdeck.tui.widgets.scroll import KeyScroll

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


def pane_sections(screen: Screen) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """(title, rows) for each scrollable pane the screen names in ``HELP_PANES``: its
    keys work once it has focus, so they are not among the screen's active bindings
    (unless it has focus now: then they are, and its section is left out)."""
    app = screen.app
    out: list[tuple[str, list[tuple[str, str, str]]]] = []
    for selector in getattr(screen, "HELP_PANES", ()):
        try:
            pane = screen.query_one(selector)
        except NoMatches:
            continue
        if pane.has_focus_within:
            continue
        bindings = pane._bindings.copy()  # the pane's own keys, as remapped (keymap.toml)
        keymap = app._keymap
        if keymap:
            bindings.apply_keymap(keymap)
        grouped: dict[str, tuple[list[str], str]] = {}
        for key, blist in bindings.key_to_bindings.items():
            for b in blist:
                if not b.description or b.system or not b.id:
                    continue  # Textual's own scroll keys (left/right) are not the pane's
                keys, _ = grouped.setdefault(b.description, ([], b.id or ""))
                label = _key_label(app, key)
                if label not in keys:
                    keys.append(label)
        title = getattr(pane, "HELP_TITLE", type(pane).__name__)
        rows = [(" ".join(keys), desc, ident) for desc, (keys, ident) in grouped.items()]
        if rows and all(title != t for t, _ in out):
            out.append((title, rows))
    return out


def _table(rows: list[tuple[str, str, str]], *, header: bool) -> Table:
    # the same column widths in every section, so the sections line up
    table = Table(box=None, padding=(0, 1), show_header=header, header_style="bold", expand=True)
    table.add_column("keys", style="bold", width=14, overflow="fold")
    table.add_column("does", ratio=3)
    table.add_column("binding id (for keymap.toml)", style="dim", ratio=2)
    for keys, desc, ident in rows:
        table.add_row(keys, desc, ident)
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close help", id="help.close")]

    def __init__(self, for_screen: Screen) -> None:
        super().__init__()
        self.sections = [("", binding_rows(for_screen)), *pane_sections(for_screen)]
        #: Every row of every section: (keys, description, binding id).
        self.rows = [row for _, rows in self.sections for row in rows]
        self.screen_name = getattr(for_screen, "HELP_TITLE", type(for_screen).__name__)

    def compose(self) -> ComposeResult:
        with KeyScroll(id="help"):
            yield Static(Text(f"Keys: {self.screen_name}", style="bold"), id="help-title")
            for i, (title, rows) in enumerate(self.sections):
                if title:
                    yield Static(Text(f"in {title}:", style="bold"), classes="help-section")
                yield Static(_table(rows, header=i == 0), classes="help-table")
            yield Static(
                Text(
                    "Keys can be remapped by binding id: see docs/tui.md. "
                    "j/k scroll, escape closes.",
                    style="dim",
                ),
                id="help-foot",
            )

    def on_mount(self) -> None:
        self.query_one("#help", KeyScroll).focus()

    def action_close(self) -> None:
        self.dismiss(None)
