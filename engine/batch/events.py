"""The batch's own events (``agentdeck batch --json`` prints them as NDJSON).

They are not run-log events: each run keeps its ordinary log. The batch says when a
run starts and ends (with its grade), notes (a limit reached, a retry), and the
summary at the end.
"""

from __future__ import annotations

from typing import Any

import msgspec


class BatchEvent(msgspec.Struct, kw_only=True, tag_field="type"):
    t: float = 0.0


class BatchStarted(BatchEvent, tag="batch_start", kw_only=True):
    batch_id: str
    dir: str
    runs: int
    #: Runs this invocation will execute (the others were finished before: resumed).
    to_run: int
    resumed: bool
    executor: str
    configs: list[dict[str, Any]] = msgspec.field(default_factory=list)


class RunStarted(BatchEvent, tag="run_started", kw_only=True):
    run_id: str
    config: str
    label: str
    epoch: int
    seed: int
    attempt: int
    node: str | None = None


class RunEnded(BatchEvent, tag="run_ended", kw_only=True):
    run_id: str
    config: str
    label: str
    epoch: int
    seed: int
    attempt: int
    status: str
    passed: bool | None = None
    submitted: bool | None = None
    metrics: dict[str, float] = msgspec.field(default_factory=dict)
    steps: int = 0
    tokens: dict[str, int] = msgspec.field(default_factory=dict)
    cost_usd: float | None = None
    wall_s: float = 0.0
    exit_code: int = 0
    message: str | None = None
    log: str | None = None
    #: It will be run again (an infrastructure error with retries left).
    retrying: bool = False


class BatchNote(BatchEvent, tag="batch_note", kw_only=True):
    message: str
    level: str = "info"


class BatchEnded(BatchEvent, tag="batch_end", kw_only=True):
    exit_code: int
    stopped: str | None = None
    summary: dict[str, Any] = msgspec.field(default_factory=dict)


AnyBatchEvent = BatchStarted | RunStarted | RunEnded | BatchNote | BatchEnded


def encode(event: BatchEvent) -> str:
    return msgspec.json.encode(event).decode()


__all__ = [
    "AnyBatchEvent",
    "BatchEnded",
    "BatchEvent",
    "BatchNote",
    "BatchStarted",
    "RunEnded",
    "RunStarted",
    "encode",
]
