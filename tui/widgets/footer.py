"""The key footer, fitted to the terminal's width.

Textual's ``Footer`` lays its keys out in one row and cuts whatever does not fit
("? He" at 80 columns). ``AppFooter`` first drops the padding (compact style),
then the command-palette key (ctrl+p still opens it; ``?`` lists it), then the
screen's keys from the last shown towards the first; the quit key and ``?``
(help, which lists every key) always stay.
"""

from __future__ import annotations

from collections.abc import Iterator

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer
from textual.widgets._footer import FooterKey  # not exported by textual.widgets (8.2.8)

#: Actions whose key stays in the footer however narrow it is.
KEEP = ("help", "app.help", "quit", "app.quit", "quit_run")


def fit(
    items: list[tuple[str, str, str]], width: int, palette: int
) -> tuple[bool, list[int], bool]:
    """Which footer items to show in ``width`` columns: (compact, kept indexes, palette key).

    ``items`` are (action, key display, description) in footer order; ``palette`` is the
    width of the command-palette key (0: none)."""

    def size(idx: list[int], compact: bool) -> int:
        pad = 2 if compact else 3
        return sum(len(items[i][1]) + len(items[i][2]) + pad for i in idx)

    every = list(range(len(items)))
    if size(every, False) + palette + 1 <= width:
        return False, every, palette > 0
    if size(every, True) + palette + 1 <= width:
        return True, every, palette > 0
    kept = every
    while len(kept) > 1 and size(kept, True) > width - 1:
        drop = next((i for i in reversed(kept) if items[i][0] not in KEEP), None)
        if drop is None:
            break
        kept = [i for i in kept if i != drop]
    return True, kept, False


class AppFooter(Footer):
    """A ``Footer`` that shows what fits, ``?`` Help always among it."""

    def _shown(self) -> Iterator[tuple[Binding, bool, str]]:
        seen: set[str] = set()
        for _node, binding, enabled, tooltip in self.screen.active_bindings.values():
            if binding.show and binding.action not in seen:
                seen.add(binding.action)
                yield binding, enabled, tooltip

    def _layout(self) -> tuple[list[tuple[Binding, bool, str]], bool, bool]:
        shown = list(self._shown())
        items = [(b.action, self.app.get_key_display(b), b.description) for b, _, _ in shown]
        palette = 0
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            active = self.screen.active_bindings.get(self.app.COMMAND_PALETTE_BINDING)
            if active is not None:
                b = active.binding
                palette = len(self.app.get_key_display(b)) + len(b.description) + 5
        width = self.app.size.width or 80
        compact, kept, with_palette = fit(items, width, palette)
        return [shown[i] for i in kept], compact, with_palette

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        shown, compact, with_palette = self._layout()
        self._fitted = (len(shown), compact, with_palette)
        self.set_reactive(Footer.compact, compact)
        self.set_class(compact, "-compact")
        for binding, enabled, tooltip in shown:
            yield FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                disabled=not enabled,
                tooltip=tooltip,
            ).data_bind(compact=Footer.compact)
        if with_palette:
            active = self.screen.active_bindings[self.app.COMMAND_PALETTE_BINDING]
            b = active.binding
            yield FooterKey(
                b.key,
                self.app.get_key_display(b),
                b.description,
                b.action,
                classes="-command-palette",
                disabled=not active.enabled,
                tooltip=b.tooltip or b.description,
            )

    def on_resize(self) -> None:
        if not self._bindings_ready:
            return
        shown, compact, with_palette = self._layout()
        if getattr(self, "_fitted", None) != (len(shown), compact, with_palette):
            self.call_after_refresh(self.recompose)
