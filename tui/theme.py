"""Colours the Rich renderables take from the app's current Textual theme."""

from __future__ import annotations

from textual.app import App

#: Colours for renderables drawn without an app (the dark theme's).
DEFAULT_PALETTE = {
    "primary": "#0178D4",
    "accent": "#FFA62B",
    "success": "#4EBF71",
    "warning": "#FFA62B",
    "error": "#BA3C5B",
}


def palette(app: App) -> dict[str, str]:
    t = app.current_theme
    return {
        "primary": t.primary,
        "accent": t.accent or t.primary,
        "success": t.success or "green",
        "warning": t.warning or "yellow",
        "error": t.error or "red",
    }


def syntax_theme(app: App) -> str:
    return "monokai" if app.current_theme.dark else "friendly"
