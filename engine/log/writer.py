"""The JSONL log writer: one line per persistent event, flushed per event, so even
``kill -9`` leaves every earlier event readable."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from agentdeck.engine.events import Event, encode_event_bytes
from agentdeck.engine.log.seal import Sealer


class LogWriter:
    """Appends one JSON line per persistent event and flushes each.

    Use as a bus sink: ``bus.subscribe(writer)``. Live-only events are skipped.
    """

    def __init__(self, path: str | os.PathLike[str], *, sealer: Sealer | None = None) -> None:
        self.path = Path(path)
        self._f = open(self.path, "ab")  # noqa: SIM115 - closed by close()
        self.closed = False
        #: Seals the log when it is closed (an HMAC over every byte written).
        self.sealer = sealer

    def __call__(self, event: Event) -> None:
        self.write(event)

    def write(self, event: Event) -> None:
        if not event.PERSIST or self.closed:
            return
        data = encode_event_bytes(event) + b"\n"
        self._f.write(data)
        self._f.flush()
        if self.sealer is not None:
            self.sealer.update(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._f.flush()
            with contextlib.suppress(OSError):
                os.fsync(self._f.fileno())
            self._f.close()
            if self.sealer is not None:
                self.sealer.finish(self.path)

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
