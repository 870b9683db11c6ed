"""The live tool output pane: a bounded ring of the newest lines of the running tool."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Log, Static

from agentdeck.tui.live import LineRing

MAX_LINES = 5000


class ToolOutput(Vertical):
    """Shows stdout/stderr of the running tool as it streams; memory is bounded by
    ``LineRing`` (the newest ``MAX_LINES`` lines, each cut to 2,000 characters)."""

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.ring = LineRing(MAX_LINES)
        self.title = "no tool has run yet"
        self.call_id: str | None = None
        self.dropped = 0

    def compose(self) -> ComposeResult:
        yield Static(id="output-title")
        yield Log(max_lines=MAX_LINES, id="output-log", auto_scroll=True)
        yield Static(id="output-partial")

    def on_mount(self) -> None:
        self._update_title()

    def start_call(self, call_id: str, title: str) -> None:
        if call_id == self.call_id:
            return
        self.call_id = call_id
        self.title = title
        self.ring.clear()
        self.ring.total_chars = self.ring.total_lines = 0
        self.dropped = 0
        self.query_one(Log).clear()
        self._update_title()
        self._update_partial()

    def feed(self, text: str, *, stream: str = "stdout", dropped: int = 0) -> None:
        """Append streamed text (one batch); ``dropped`` characters were already
        discarded upstream to keep memory bounded."""
        self.dropped += dropped
        if stream == "stderr":
            text = "".join(
                f"[stderr] {line}" if line.strip() else line
                for line in text.splitlines(keepends=True)
            )
        lines = self.ring.feed(text)
        if lines:
            self.query_one(Log).write_lines(lines)
        self._update_partial()
        self._update_title()

    def show_text(self, title: str, text: str) -> None:
        """Show a finished output (replay): the newest ``MAX_LINES`` lines of ``text``."""
        self.call_id = None
        self.title = title
        self.ring.clear()
        self.ring.total_chars = self.ring.total_lines = 0
        self.dropped = 0
        log = self.query_one(Log)
        log.clear()
        self.feed(text if text.endswith("\n") or not text else text + "\n")
        log.scroll_home(animate=False)

    def _update_title(self) -> None:
        r = self.ring
        t = Text(self.title, style="bold")
        if r.total_chars:
            t.append(
                f" · {r.total_lines:,} lines, {r.total_chars + self.dropped:,} chars", style="dim"
            )
            if r.total_lines > r.max_lines or self.dropped:
                t.append(f" (newest {r.max_lines:,} lines kept)", style="dim")
        self.query_one("#output-title", Static).update(t)

    def _update_partial(self) -> None:
        partial = self.query_one("#output-partial", Static)
        partial.display = bool(self.ring.partial)
        if self.ring.partial:
            partial.update(Text(self.ring.partial[-500:], style="dim"))
