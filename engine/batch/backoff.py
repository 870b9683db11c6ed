"""The batch's shared backoff: one file that every worker of the batch reads.

A shared backoff, not a token bucket: agentdeck does not know an account's rate
limits, but the API says when they are hit. When a run's call is answered 429 or
529, its agent writes ``until = now + wait`` into ``<batch_dir>/.backoff`` (the
later of that and what is there; under an ``flock``), and every agent of the batch
checks the file before each call and waits until then. So the workers back off
together instead of each discovering the limit on its own.

Readers need no lock: the file is replaced atomically. On a Ray cluster the file is
shared when the batch directory is (a shared path); with logs streamed back, each
node has its own file, so runs on the same node back off together.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from pathlib import Path


class FileBackoff:
    """``SharedBackoff`` (``agentdeck.engine.agents.backoff``) through a file."""

    def __init__(self, path: Path, *, owner: str = "") -> None:
        self.path = path
        self.owner = owner

    def pause(self, seconds: float, reason: str) -> None:
        until = time.time() + max(0.0, seconds)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path.with_name(self.path.name + ".lock"), "a+") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                current = self._read()
                if until <= current:
                    return
                tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
                tmp.write_text(
                    json.dumps({"until": until, "reason": reason, "by": self.owner}),
                    encoding="utf-8",
                )
                os.replace(tmp, self.path)
        except OSError:
            return  # the backoff is an optimisation; the run's own retry still waits

    def remaining(self) -> float:
        return max(0.0, self._read() - time.time())

    def _read(self) -> float:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return 0.0
        with contextlib.suppress(TypeError, ValueError, AttributeError):
            return float(data.get("until", 0.0))
        return 0.0

    def state(self) -> dict[str, object] | None:
        """The pause in force (until, reason, by) or None."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or float(data.get("until", 0.0)) <= time.time():
            return None
        return data


__all__ = ["FileBackoff"]
