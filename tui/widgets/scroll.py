"""A scrollable pane with the keys of the rest of the app (j/k, g/G, page keys)."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll


def scroll_bindings(prefix: str) -> list[BindingType]:
    """The scrolling keys of a pane, with binding ids ``PREFIX.down`` ... for keymap.toml."""
    return [
        Binding("j,down", "scroll_down", "Scroll down", show=False, id=f"{prefix}.down"),
        Binding("k,up", "scroll_up", "Scroll up", show=False, id=f"{prefix}.up"),
        Binding(
            "pagedown,ctrl+f",
            "page_down",
            "Scroll a page down",
            show=False,
            id=f"{prefix}.page_down",
        ),
        Binding("pageup,ctrl+b", "page_up", "Scroll a page up", show=False, id=f"{prefix}.page_up"),
        Binding("g,home", "scroll_home", "Scroll to the top", show=False, id=f"{prefix}.top"),
        Binding("G,end", "scroll_end", "Scroll to the bottom", show=False, id=f"{prefix}.bottom"),
    ]


class KeyScroll(VerticalScroll):
    """A ``VerticalScroll`` that scrolls with j/k/g/G and the page keys once focused.

    ``HELP_TITLE`` names the pane in ``?`` (which lists its keys even when it is not
    focused: see ``tui/screens/help.py``)."""

    BINDINGS: ClassVar[list[BindingType]] = scroll_bindings("pane")
    HELP_TITLE = "pane"
