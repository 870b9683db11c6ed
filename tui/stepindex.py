"""StepIndex: the rows of the steps pane, one a step of a RunLog.

The rows are the log's steps and nothing else: a step is in the log as soon as
its ``step_start`` is written (the writer flushes per event), so the step in
progress is simply the log's last step while the log has no ``run_end``.
Finished steps are summarised from the log on demand (``read_step``, tool
output chunks skipped) and kept in an LRU cache; the step in progress is drawn
from ``RunState.live_summary`` (folded from the same log lines, O(1) however
much its tool prints), or read from the log while the state is still loading.
"""

from __future__ import annotations

import time
from dataclasses import replace

from textual.cache import LRUCache

from agentdeck.engine.events import EventError
from agentdeck.engine.log import RunLog
from agentdeck.tui.runstate import RunState
from agentdeck.tui.stepdata import StepSummary, read_step, summarize

_ROW_TYPES = ("step_start", "model_response", "tool_call", "tool_result", "warning", "error")


class StepIndex:
    def __init__(
        self,
        log: RunLog | None,
        state: RunState,
        *,
        wall_clock: bool = False,
        cache_size: int = 4096,
    ) -> None:
        self.log = log
        self.state = state
        #: The step in progress lasts until now (a run this app is watching live), not
        #: until the log's last event (a log some other process may have stopped writing).
        self.wall_clock = wall_clock
        self.log_ended = bool(log is not None and log.end is not None)
        #: Imported markdown logs carry no timing: durations are unknown, not 0.
        self.timed = log is None or log.format != "markdown"
        self._cache: LRUCache[int, StepSummary] = LRUCache(cache_size)

    def attach(self, log: RunLog) -> None:
        self.log = log
        self.timed = log.format != "markdown"
        self.log_ended = log.end is not None

    def after_refresh(self) -> None:
        """Call after ``log.refresh()`` added lines."""
        if self.log is not None and not self.log_ended:
            self.log_ended = self.log.end is not None

    # -- step numbers -------------------------------------------------------------------

    @property
    def log_steps(self) -> list[int]:
        return self.log.step_numbers if self.log is not None else []

    @property
    def count(self) -> int:
        return len(self.log_steps)

    def step_at(self, index: int) -> int:
        return self.log_steps[index]

    def index_of(self, step: int) -> int | None:
        steps = self.log_steps
        if 0 < step <= len(steps) and steps[step - 1] == step:
            return step - 1
        try:
            return steps.index(step)
        except ValueError:
            return None

    def is_finished(self, index: int) -> bool:
        steps = self.log_steps
        if index + 1 < len(steps):
            return True
        return index < len(steps) and self.log_ended

    # -- rows ---------------------------------------------------------------------------

    def summary(self, index: int) -> StepSummary:
        step = self.step_at(index)
        if self.is_finished(index):
            cached = self._cache.get(step)
            if cached is None:
                cached = self._read(step, finished=True)
                self._cache[step] = cached
            return cached
        live = self.state.live_summary(step)
        if live is not None:
            if self.wall_clock and self.state.live is not None:
                live = replace(live, duration_s=max(0.0, time.time() - self.state.live.t_start))
            return live
        return self._read(step, finished=False)

    def _read(self, step: int, *, finished: bool) -> StepSummary:
        assert self.log is not None
        try:
            s = summarize(read_step(self.log, step, types=_ROW_TYPES), finished=finished)
            return s if self.timed else replace(s, duration_s=None)
        except (EventError, KeyError, IndexError):
            return StepSummary(step=step, finished=finished, error=True, gist="(unreadable)")
