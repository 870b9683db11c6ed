"""The event bus: one ordered stream, many consumers.

The engine calls ``EventBus.emit``; the bus stamps ``t`` and ``seq`` (persistent
events only, so the log's ``seq`` runs 0, 1, 2, ... without gaps) and hands the
event to every subscriber in order. The log writer, the headless printer, the
NDJSON printer and the TUI are all subscribers.

Only the *critical* sinks (the log writer) may end a run: an exception there
propagates to the emitter. Any other sink that raises (a printer whose pipe
was closed by ``| head``, a UI that went away) is detached, and a ``warning``
event (code ``sink_failed``) says so; the run goes on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from agentdeck.engine.events import Event, WarningEvent

Sink = Callable[[Event], object]


def sink_name(sink: Sink) -> str:
    name = getattr(sink, "__qualname__", None) or type(sink).__qualname__
    return str(name)


class EventBus:
    def __init__(
        self, sinks: Iterable[Sink] | None = None, *, critical: Iterable[Sink] | None = None
    ) -> None:
        self._lock = threading.RLock()
        self._seq = 0
        self._critical: list[Sink] = list(critical or [])
        self._sinks: list[Sink] = list(sinks or [])
        #: (sink name, error) of each sink that failed and was detached.
        self.detached: list[tuple[str, BaseException]] = []

    def subscribe(self, sink: Sink, *, critical: bool = False) -> None:
        with self._lock:
            (self._critical if critical else self._sinks).append(sink)

    def unsubscribe(self, sink: Sink) -> None:
        with self._lock:
            for group in (self._critical, self._sinks):
                if sink in group:
                    group.remove(sink)

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
            for sink in self._critical:
                sink(event)
            failed: list[tuple[Sink, BaseException]] = []
            for sink in list(self._sinks):
                try:
                    sink(event)
                except (Exception, SystemExit) as e:  # noqa: BLE001 - isolated here
                    # (rich turns a closed pipe into SystemExit; Ctrl-C still propagates)
                    self._sinks.remove(sink)
                    failed.append((sink, e))
            for sink, err in failed:
                self.detached.append((sink_name(sink), err))
                if event.TYPE == "run_end":
                    continue  # nothing follows run_end in a log; ``detached`` keeps the fault
                self.emit(
                    WarningEvent(
                        where="events",
                        code="sink_failed",
                        message=f"the event consumer {sink_name(sink)} failed and was detached "
                        f"({type(err).__name__}: {err}); the run goes on and the log is "
                        "complete",
                    )
                )
        return event
