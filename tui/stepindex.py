"""StepIndex: the rows of the steps pane, from a RunLog plus the live RunState.

Finished steps are summarised from the log on demand (``read_step``, tool
output chunks skipped) and kept in an LRU cache; the step still in progress
is summarised from the stream (``RunState.live_summary``), so a live run's
newest row moves without re-reading the log.
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
        self, log: RunLog | None, state: RunState, *, live: bool = False, cache_size: int = 4096
    ) -> None:
        self.log = log
        self.state = state
        self.live = live
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

    def _extra(self) -> int | None:
        cur = self.state.current_step
        if not self.live or cur is None or self.state.finished:
            return None
        steps = self.log_steps
        if steps and cur <= steps[-1]:
            return None
        return cur

    @property
    def count(self) -> int:
        return len(self.log_steps) + (1 if self._extra() is not None else 0)

    def step_at(self, index: int) -> int:
        steps = self.log_steps
        if index < len(steps):
            return steps[index]
        extra = self._extra()
        if extra is None:
            raise IndexError(index)
        return extra

    def index_of(self, step: int) -> int | None:
        steps = self.log_steps
        if 0 < step <= len(steps) and steps[step - 1] == step:
            return step - 1
        try:
            return steps.index(step)
        except ValueError:
            return len(steps) if self._extra() == step else None

    def in_log(self, index: int) -> bool:
        return index < len(self.log_steps)

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
            if self.live and live.duration_s is not None:
                live = _with_duration(live, time.time() - self.state.live.t_start)  # type: ignore[union-attr]
            return live
        if self.in_log(index):
            return self._read(step, finished=False)
        return StepSummary(step=step, finished=False)

    def _read(self, step: int, *, finished: bool) -> StepSummary:
        assert self.log is not None
        try:
            s = summarize(read_step(self.log, step, types=_ROW_TYPES), finished=finished)
            return s if self.timed else replace(s, duration_s=None)
        except (EventError, KeyError, IndexError):
            return StepSummary(step=step, finished=finished, error=True, gist="(unreadable)")


def _with_duration(s: StepSummary, d: float) -> StepSummary:
    return replace(s, duration_s=max(0.0, d))
