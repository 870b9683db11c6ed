"""The event bus: one ordered stream, many consumers.

The engine calls ``EventBus.emit``; the bus stamps ``t`` and ``seq`` (persistent
events only, so the log's ``seq`` runs 0, 1, 2, ... without gaps) and hands the
event to every subscriber in order. The log writer, the headless printer, the
NDJSON printer and the TUI are all subscribers; none of them is special.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from engine.events import Event

Sink = Callable[[Event], None]


class EventBus:
    def __init__(self, sinks: list[Sink] | None = None) -> None:
        self._lock = threading.RLock()
        self._seq = 0
        self._sinks: list[Sink] = list(sinks or [])

    def subscribe(self, sink: Sink) -> None:
        with self._lock:
            self._sinks.append(sink)

    def unsubscribe(self, sink: Sink) -> None:
        with self._lock:
            if sink in self._sinks:
                self._sinks.remove(sink)

    @property
    def next_seq(self) -> int:
        return self._seq

    def emit(self, event: Event) -> Event:
        """Stamp and deliver one event; thread-safe, delivery order is emit order."""
        with self._lock:
            if not event.t:
                event.t = time.time()
            if event.PERSIST:
                event.seq = self._seq
                self._seq += 1
            for sink in list(self._sinks):
                sink(event)
        return event
