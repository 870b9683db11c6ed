"""The replay scrubber: where the playhead is in the run; click to jump."""

from __future__ import annotations

from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual import events
from textual.message import Message
from textual.widget import Widget


class Scrubber(Widget):
    COMPONENT_CLASSES = {"scrubber--done", "scrubber--todo", "scrubber--head", "scrubber--label"}
    DEFAULT_CSS = """
    Scrubber {
        height: 1;
        & > .scrubber--done { color: $accent; }
        & > .scrubber--todo { color: $text-muted; }
        & > .scrubber--head { color: $accent; text-style: bold; }
        & > .scrubber--label { color: $text-muted; }
    }
    """

    @dataclass
    class Seek(Message):
        """The user clicked the bar: go to the step at ``index``."""

        index: int

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.index = 0
        self.count = 0
        self.playing = False
        self.speed = 1.0
        self.label = ""

    def set_position(
        self, index: int, count: int, *, playing: bool, speed: float, label: str = ""
    ) -> None:
        changed = (index, count, playing, speed, label) != (
            self.index,
            self.count,
            self.playing,
            self.speed,
            self.label,
        )
        self.index, self.count, self.playing, self.speed, self.label = (
            index,
            count,
            playing,
            speed,
            label,
        )
        if changed:
            self.refresh()

    def _bar_geometry(self) -> tuple[int, int]:
        left = len(self._prefix())
        right = len(self._suffix())
        return left, max(4, self.size.width - left - right)

    def _prefix(self) -> str:
        return f" {'▶' if self.playing else '⏸'} {self.speed:g}× "

    def _suffix(self) -> str:
        return f" {self.index + 1 if self.count else 0}/{self.count} {self.label}"

    def render(self) -> Text:
        _left, w = self._bar_geometry()
        text = Text(self._prefix(), style=self._style("scrubber--label"))
        head = 0 if self.count <= 1 else round(self.index / (self.count - 1) * (w - 1))
        text.append("━" * head, self._style("scrubber--done"))
        text.append("●", self._style("scrubber--head"))
        text.append("─" * max(0, w - head - 1), self._style("scrubber--todo"))
        text.append(self._suffix(), self._style("scrubber--label"))
        return text

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(name, partial=True)

    def on_click(self, event: events.Click) -> None:
        left, w = self._bar_geometry()
        if self.count == 0 or not left <= event.x < left + w:
            return
        frac = (event.x - left) / max(1, w - 1)
        self.post_message(self.Seek(round(frac * (self.count - 1))))
