"""The hand-off of a run's live-only events from its engine thread to the UI, bounded.

Everything else a live run shows is read from its log (``tui.sources.LiveSource``
follows ``events.jsonl`` like ``replay --follow``); what the log cannot give in
time comes through ``LiveBuffer``: model deltas (never written to the log) and
tool output chunks (written, but faster than the log is polled). It is a bus
sink: called on the engine thread, it only appends to a queue under a lock, and
ignores every other event. The app drains it on a timer (about every 100 ms)
and applies the whole batch at once. The text is coalesced as it arrives and
only the newest ``max_chars`` of a stream are kept, so a tool printing gigabytes
between two drains costs at most that much memory. ``LineRing`` turns streamed
text into display lines, keeping the last ``max_lines`` (each cut to
``max_line_chars``).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

from agentdeck.engine.events import Event, ModelDelta, ToolOutputChunk


@dataclass
class StreamText:
    """Coalesced streaming text: tool output of one call, or model text of one step."""

    kind: str  # "output" or "delta"
    key: tuple[object, ...]  # (call_id, stream, step) or (step, block_index, kind)
    #: The first event of the run of text: its fields (call, stream, step...) name it.
    event: ToolOutputChunk | ModelDelta
    parts: list[str] = field(default_factory=list)
    chars: int = 0
    dropped: int = 0

    @property
    def text(self) -> str:
        return "".join(self.parts)


class LiveBuffer:
    """A thread-safe, bounded queue of streamed text for the UI (use as a bus sink)."""

    def __init__(self, max_chars: int = 1 << 20) -> None:
        self.max_chars = max_chars
        self._lock = threading.Lock()
        self._items: deque[StreamText] = deque()
        self.dropped_chars = 0
        self.received = 0

    def __call__(self, event: Event) -> None:
        if isinstance(event, ToolOutputChunk):
            self._add_text("output", (event.call_id, event.stream, event.step), event)
        elif isinstance(event, ModelDelta):
            self._add_text("delta", (event.step, event.block_index, event.kind), event)

    def _add_text(
        self, kind: str, key: tuple[object, ...], event: ToolOutputChunk | ModelDelta
    ) -> None:
        text = event.text
        with self._lock:
            self.received += 1
            last = self._items[-1] if self._items else None
            if last is None or last.kind != kind or last.key != key:
                last = StreamText(kind, key, event)
                self._items.append(last)
            last.parts.append(text)
            last.chars += len(text)
            if last.chars > 2 * self.max_chars:
                joined = "".join(last.parts)
                cut = len(joined) - self.max_chars
                last.parts = [joined[cut:]]
                last.chars = self.max_chars
                last.dropped += cut
                self.dropped_chars += cut

    def drain(self) -> list[StreamText]:
        with self._lock:
            items = list(self._items)
            self._items.clear()
        return items


class LineRing:
    """The last ``max_lines`` lines of a stream, fed piecewise.

    ``\\r`` (progress bars) rewinds the current line; a line longer than
    ``max_line_chars`` is cut, saying how much was cut.
    """

    def __init__(self, max_lines: int = 5000, max_line_chars: int = 2000) -> None:
        self.max_lines = max_lines
        self.max_line_chars = max_line_chars
        self.lines: deque[str] = deque(maxlen=max_lines)
        self.partial = ""
        self._partial_cut = 0
        self.total_lines = 0
        self.total_chars = 0

    def clear(self) -> None:
        self.lines.clear()
        self.partial = ""
        self._partial_cut = 0

    def feed(self, text: str) -> list[str]:
        """Add text; returns the lines it completed (at most ``max_lines``)."""
        self.total_chars += len(text)
        pieces = text.split("\n")
        done: list[str] = []
        for i, piece in enumerate(pieces):
            if "\r" in piece:
                tail = piece.rsplit("\r", 1)[1]
                if tail or i < len(pieces) - 1:
                    self.partial, self._partial_cut = "", 0
                piece = tail
            self._extend_partial(piece)
            if i < len(pieces) - 1:
                line = self.partial
                if self._partial_cut:
                    line += f" … [{self._partial_cut:,} more characters]"
                done.append(line)
                self.partial, self._partial_cut = "", 0
        self.total_lines += len(done)
        if len(done) > self.max_lines:
            done = done[-self.max_lines :]
        self.lines.extend(done)
        return done

    def _extend_partial(self, piece: str) -> None:
        room = self.max_line_chars - len(self.partial)
        if len(piece) <= room:
            self.partial += piece
        else:
            self.partial += piece[: max(0, room)]
            self._partial_cut += len(piece) - max(0, room)
