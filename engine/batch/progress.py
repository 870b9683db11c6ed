"""Live state of each run of a batch, followed from its log as the worker writes it.

``LogTail`` reads the lines appended to a run's ``events.jsonl`` since the last poll
(a torn last line waits for the next poll) and folds them into ``RunProgress``: the
step k/max, the last metric, tokens, cost, and the grade once it is there. The
batch screen and the progress line show these; the outcome of a finished run is
read from its closed log (``summary.outcome_from_log``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentdeck.engine.events import (
    EventError,
    Grade,
    Metric,
    ModelResponse,
    RunEnd,
    RunStart,
    StepStart,
    decode_event,
)

#: Run states besides the run_end statuses.
QUEUED, STARTING, RUNNING = "queued", "starting", "running"


@dataclass
class RunProgress:
    run_id: str
    config: str
    epoch: int
    seed: int
    state: str = QUEUED
    attempt: int = 0
    step: int = 0
    max_steps: int = 0
    last_metric: tuple[str, float] | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: float | None = 0.0
    passed: bool | None = None
    submitted: bool | None = None
    grade_metrics: dict[str, float] | None = None
    started_at: float | None = None
    ended_at: float | None = None
    node: str | None = None
    message: str | None = None
    #: The log being followed (None until the run has one).
    log_path: Path | None = None

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def active(self) -> bool:
        return self.state in (STARTING, RUNNING)

    @property
    def done(self) -> bool:
        return self.state not in (QUEUED, STARTING, RUNNING)

    def reset(self) -> None:
        """Back to queued (a rerun): the counters start again."""
        fresh = RunProgress(self.run_id, self.config, self.epoch, self.seed, attempt=self.attempt)
        self.__dict__.update(fresh.__dict__)


def progress_counts(progress: Iterable[RunProgress]) -> dict[str, int]:
    """total, done, running, queued, passed, evaluated and errors among these runs."""
    from agentdeck.engine.batch.summary import EVALUATED

    ps = list(progress)
    return {
        "total": len(ps),
        "done": sum(1 for p in ps if p.done),
        "running": sum(1 for p in ps if p.active),
        "queued": sum(1 for p in ps if p.state == QUEUED),
        "passed": sum(1 for p in ps if p.passed and p.state in EVALUATED),
        "evaluated": sum(1 for p in ps if p.state in EVALUATED),
        "errors": sum(1 for p in ps if p.state in ("error", "incomplete")),
    }


def config_rates(
    config_ids: Iterable[str], progress: Iterable[RunProgress]
) -> dict[str, tuple[int, int]]:
    """config id -> (passed, evaluated) so far."""
    from agentdeck.engine.batch.summary import EVALUATED

    out: dict[str, tuple[int, int]] = {c: (0, 0) for c in config_ids}
    for p in progress:
        if p.state in EVALUATED and p.config in out:
            ok, n = out[p.config]
            out[p.config] = (ok + (1 if p.passed else 0), n + 1)
    return out


def total_cost(progress: Iterable[RunProgress]) -> float | None:
    total = 0.0
    for p in progress:
        if p.cost_usd is None:
            return None
        total += p.cost_usd
    return total


class LogTail:
    """Follow one log file from where the last poll stopped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self._partial = b""

    def poll(self, p: RunProgress, max_bytes: int = 8 << 20) -> bool:
        """Fold new lines into ``p``; True when something was read."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read(max_bytes)
        except OSError:
            return False
        if not data:
            return False
        self.offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            if line.strip():
                with contextlib.suppress(EventError, ValueError):
                    fold(p, decode_event(line))
        return True


def fold(p: RunProgress, ev: object) -> None:
    if isinstance(ev, RunStart):
        p.max_steps = ev.max_steps
        if p.state in (QUEUED, STARTING):
            p.state = RUNNING
    elif isinstance(ev, StepStart):
        p.step = ev.step
    elif isinstance(ev, ModelResponse):
        u = ev.usage
        p.input_tokens += u.input_tokens
        p.output_tokens += u.output_tokens
        p.cache_write_tokens += u.cache_creation_input_tokens
        p.cache_read_tokens += u.cache_read_input_tokens
        if ev.cost_usd is None:
            p.cost_usd = None
        elif p.cost_usd is not None:
            p.cost_usd += ev.cost_usd
    elif isinstance(ev, Metric):
        if ev.value is not None:
            p.last_metric = (ev.name, float(ev.value))
    elif isinstance(ev, Grade):
        p.passed, p.submitted = ev.passed, ev.submitted
        p.grade_metrics = {
            k: float(v)
            for k, v in ev.metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
    elif isinstance(ev, RunEnd):
        p.state = ev.status
        if ev.message:
            p.message = ev.message
        if ev.totals is None:
            return
        t = ev.totals
        p.step = max(p.step, t.steps)
        p.input_tokens, p.output_tokens = t.input_tokens, t.output_tokens
        p.cache_write_tokens = t.cache_creation_input_tokens
        p.cache_read_tokens = t.cache_read_input_tokens
        p.cost_usd = t.cost_usd


class BatchFollower:
    """The live state of a batch another process runs (or ran), from its files alone:
    each run's log followed with a ``LogTail``; runs without a log are queued, or
    what the journal says (a task that could not be set up, a worker that died)."""

    def __init__(self, batch_dir: Any, manifest: Any) -> None:
        self.batch_dir = batch_dir
        self.manifest = manifest
        self.progress: dict[str, RunProgress] = {
            s.run_id: RunProgress(s.run_id, s.config, s.epoch, s.seed) for s in manifest.runs
        }
        self._tails: dict[str, LogTail] = {}
        self._journal_size = -1
        self._ends: dict[str, dict[str, Any]] = {}
        self.ended = False

    def refresh(self) -> None:
        from agentdeck.engine.log import EVENTS_FILE

        journal = None
        try:
            size = self.batch_dir.journal_path.stat().st_size
        except OSError:
            size = 0
        if size != self._journal_size:
            self._journal_size = size
            journal = self.batch_dir.read_journal()
        for rid, p in self.progress.items():
            path = self.batch_dir.run_path(rid) / EVENTS_FILE
            tail = self._tails.get(rid)
            if tail is None and path.is_file():
                tail = self._tails[rid] = LogTail(path)
                p.log_path = path
                if p.state == QUEUED:
                    p.state = RUNNING
            if tail is not None:
                tail.poll(p)
        if journal is not None:
            self._ends = {}
            for entry in journal:
                kind = entry.get("kind")
                run = self.progress.get(str(entry.get("run_id")))
                t = entry.get("t")
                if run is not None and isinstance(t, int | float):
                    if kind == "start":  # the latest attempt's times
                        run.started_at, run.ended_at = float(t), None
                    elif kind == "end":
                        run.ended_at = float(t)
                if kind == "end" and isinstance(entry.get("run_id"), str):
                    self._ends[entry["run_id"]] = entry
                elif kind == "batch_start":
                    self.ended = False
                elif kind == "batch_end":
                    self.ended = True
        for rid, entry in self._ends.items():
            q = self.progress.get(rid)
            status = entry.get("status")
            if q is None or not status:
                continue
            if rid not in self._tails or (self.ended and not q.done):
                # no log (a task that could not start) or one the worker never closed
                q.state = str(status)
                q.message = entry.get("message")
        if self.ended:
            for q in self.progress.values():
                if q.state == QUEUED:
                    q.state = "not_run"
                elif q.state == RUNNING:
                    q.state = "incomplete"


__all__ = [
    "QUEUED",
    "RUNNING",
    "STARTING",
    "BatchFollower",
    "LogTail",
    "RunProgress",
    "config_rates",
    "fold",
    "progress_counts",
    "total_cost",
]
