"""VirtualList: a keyboard-driven list of any length, drawn with the Line API.

The widget's virtual height is its row count; only the rows on screen are
rendered, each on demand through ``render_row`` and kept in an LRU cache of
strips. Opening 10,000 rows costs the same as opening 20. Subclasses supply
``render_row`` and call ``set_count`` / ``invalidate`` as their data grows.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip


class VirtualList(ScrollView, can_focus=True, inherit_bindings=False):
    BINDINGS = [
        Binding("down,j", "cursor_down", "Next row", show=False, id="list.down"),
        Binding("up,k", "cursor_up", "Previous row", show=False, id="list.up"),
        Binding("pagedown,ctrl+f", "page_down_rows", "Page down", show=False, id="list.page_down"),
        Binding("pageup,ctrl+b", "page_up_rows", "Page up", show=False, id="list.page_up"),
        Binding("home,g", "first", "First row", show=False, id="list.first"),
        Binding("end,G", "last", "Last row", show=False, id="list.last"),
        Binding("enter", "select", "Open row", show=False, id="list.select"),
    ]
    COMPONENT_CLASSES = {
        "virtual-list--cursor",
        "virtual-list--cursor-blur",
        "virtual-list--mark",
        "virtual-list--dim",
    }
    DEFAULT_CSS = """
    VirtualList {
        overflow-x: hidden;
        overflow-y: auto;
        & > .virtual-list--cursor { background: $block-cursor-background; color: $block-cursor-foreground; text-style: bold; }
        & > .virtual-list--cursor-blur { background: $block-cursor-blurred-background; }
        & > .virtual-list--mark { background: $warning 25%; }
        & > .virtual-list--dim { color: $text-muted; }
    }
    """

    cursor: reactive[int] = reactive(0, repaint=False, init=False)

    @dataclass
    class Highlighted(Message):
        """The cursor moved to ``index``."""

        list: VirtualList
        index: int

        @property
        def control(self) -> VirtualList:
            return self.list

    @dataclass
    class Selected(Message):
        """Enter (or a double click) on ``index``."""

        list: VirtualList
        index: int

        @property
        def control(self) -> VirtualList:
            return self.list

    def __init__(
        self,
        *,
        cache_size: int = 256,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.count = 0
        self._strips: LRUCache[tuple[int, int, int, bool, int], Strip] = LRUCache(cache_size)
        self._generation = 0
        self.marked: set[int] = set()

    # -- data -------------------------------------------------------------------------

    def render_row(self, index: int, width: int) -> Text:  # pragma: no cover - abstract
        raise NotImplementedError

    def set_count(self, count: int) -> None:
        old = self.count
        self.count = count
        self.virtual_size = Size(self.scrollable_content_region.width, count)
        if count < old:
            self.invalidate()
        if self.cursor >= count > 0:
            self.cursor = count - 1
        self.refresh()

    def invalidate(self, index: int | None = None) -> None:
        """Forget rendered rows (all of them, or one) so they are drawn again."""
        if index is None:
            self._generation += 1
            self._strips.clear()
        else:
            for state in (0, 1, 2):
                for marked in (False, True):
                    self._strips.discard((index, self.size.width, state, marked, self._generation))
        self.refresh()

    def set_marks(self, marked: set[int]) -> None:
        self.marked = set(marked)
        self.refresh()

    # -- cursor ----------------------------------------------------------------------

    def move_to(self, index: int, *, center: bool = False) -> None:
        if self.count == 0:
            return
        index = max(0, min(self.count - 1, index))
        if index != self.cursor:
            self.cursor = index
        self.scroll_cursor_visible(center=center)
        self.refresh()

    def watch_cursor(self, old: int, new: int) -> None:
        self.post_message(self.Highlighted(self, new))

    def scroll_cursor_visible(self, *, center: bool = False) -> None:
        height = self.scrollable_content_region.height or 1
        top = int(self.scroll_y)
        if center and not top <= self.cursor < top + height:
            self.scroll_to(y=max(0, self.cursor - height // 2), animate=False, force=True)
        elif self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, force=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, force=True)

    def action_cursor_down(self) -> None:
        self.move_to(self.cursor + 1)

    def action_cursor_up(self) -> None:
        self.move_to(self.cursor - 1)

    def action_page_down_rows(self) -> None:
        self.move_to(self.cursor + max(1, self.scrollable_content_region.height - 1))

    def action_page_up_rows(self) -> None:
        self.move_to(self.cursor - max(1, self.scrollable_content_region.height - 1))

    def action_first(self) -> None:
        self.move_to(0)

    def action_last(self) -> None:
        self.move_to(self.count - 1)

    def action_select(self) -> None:
        if self.count:
            self.post_message(self.Selected(self, self.cursor))

    # -- mouse ------------------------------------------------------------------------

    def on_click(self, event: events.Click) -> None:
        index = int(self.scroll_y) + event.y
        if 0 <= index < self.count:
            self.move_to(index)
            if event.chain >= 2:
                self.action_select()

    # -- rendering ----------------------------------------------------------------------

    def on_resize(self) -> None:
        self.virtual_size = Size(self.scrollable_content_region.width, self.count)
        self.scroll_cursor_visible()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        index = int(self.scroll_y) + y
        if index >= self.count or width <= 0:
            return Strip.blank(width, self.rich_style)
        state = 0
        if index == self.cursor:
            state = 1 if self.has_focus else 2
        marked = index in self.marked
        key = (index, width, state, marked, self._generation)
        strip = self._strips.get(key)
        if strip is None:
            text = self.render_row(index, width)
            base = self.rich_style
            if marked:
                base = base + self.get_component_rich_style("virtual-list--mark")
            if state == 1:
                base = base + self.get_component_rich_style("virtual-list--cursor")
            elif state == 2:
                base = base + self.get_component_rich_style("virtual-list--cursor-blur")
            text.stylize_before(base)
            text.truncate(width, overflow="ellipsis", pad=True)
            segments = list(text.render(self.app.console))
            strip = Strip(segments, text.cell_len).adjust_cell_length(width, base)
            self._strips[key] = strip
        return strip

    def style_of(self, component: str) -> Style:
        """A component class's style without its background (rows keep the cursor's)."""
        return self.get_component_rich_style(component, partial=True)


def blank_strip(width: int, style: Style) -> Strip:
    return Strip([Segment(" " * width, style)], width)
