"""A backoff shared by the runs of a batch, so that rate limits slow all of them.

When one run's Claude call is answered 429 (rate limited) or 529 (overloaded), the
API is telling the whole account to slow down, not only that run: ``ClaudeAgent``
calls ``pause(seconds)`` on the shared backoff it was given, and before every
attempt each agent sharing it waits out ``remaining()`` (plus a little jitter, so
they do not come back all at once). The batch's implementation is a file in the
batch directory (``agentdeck.engine.batch.backoff.FileBackoff``), shared by its
worker processes; ``ThreadBackoff`` is the same for agents in one process.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class SharedBackoff(Protocol):
    def pause(self, seconds: float, reason: str) -> None:
        """Everyone sharing this waits until ``seconds`` from now (or longer, if set)."""

    def remaining(self) -> float:
        """Seconds left of the shared pause (0 when there is none)."""


class ThreadBackoff:
    """A shared backoff for the agents of one process."""

    def __init__(self) -> None:
        self._until = 0.0
        self._lock = threading.Lock()
        self.reason = ""

    def pause(self, seconds: float, reason: str) -> None:
        with self._lock:
            until = time.time() + max(0.0, seconds)
            if until > self._until:
                self._until, self.reason = until, reason

    def remaining(self) -> float:
        return max(0.0, self._until - time.time())


__all__ = ["SharedBackoff", "ThreadBackoff"]
