"""RunState: what the run screen knows about a run, folded from its events.

One reducer for every source, fed from the log's lines (a replayed log once, a
followed log or a live run's own log as it grows) plus, for a live run, the
model's streamed text (``ModelDelta``, which is never written to the log). It
keeps only compact, per-step numbers (token usage, metric points, the gist of
the step in progress), never tool outputs or step records (the log has those),
so its size does not depend on how much the tools printed.
"""

from __future__ import annotations

import math
import re
import time
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntFlag
from typing import TypeVar

from agentdeck.engine.events import (
    ErrorEvent,
    Event,
    Grade,
    Metric,
    ModelDelta,
    ModelResponse,
    RunEnd,
    RunStart,
    StepStart,
    ToolCall,
    ToolResult,
    Usage,
    WarningEvent,
)
from agentdeck.tui.stepdata import StepSummary, input_text

#: Context windows by model-name prefix (tokens).
CONTEXT_WINDOWS: tuple[tuple[str, int], ...] = (("claude", 200_000),)
MAX_LIVE_TEXT = 200_000


def context_window(model: str | None) -> int | None:
    """The model's context window in tokens, or None when unknown."""
    if not model:
        return None
    for prefix, size in CONTEXT_WINDOWS:
        if model.lower().startswith(prefix):
            return size
    return None


class Changed(IntFlag):
    NONE = 0
    STATUS = 1
    STEPS = 2
    TOKENS = 4
    METRICS = 8
    GRADE = 16
    CALL = 32
    TEXT = 64
    ALL = 127


class Phase:
    STARTING = "starting"
    WAITING = "waiting for model"
    STREAMING = "model responding"
    TOOL = "running tool"
    RETRYING = "retrying"
    STOPPING = "stopping"
    FINISHED = "finished"


#: Where a metric comes from, as the metrics pane groups them (``MetricSeries.group``):
#: the agent's own code (``log_metric`` in the sandbox), the engine's trainer, the
#: run's system gauges (CPU, memory); any other source is its own group, before system.
SOURCE_GROUPS = ("agent", "trainer", "system")


def source_group(source: str) -> str:
    """The group of a ``metric`` event's source: sandbox (or none) is the agent's."""
    return "agent" if source in ("", "sandbox", "agent") else source


def group_rank(group: str) -> int:
    """Sort key of a source group: agent, trainer, the others, system."""
    if group == "system":
        return 9
    return SOURCE_GROUPS.index(group) if group in SOURCE_GROUPS else 5


T = TypeVar("T")
_FOLD = re.compile(r"(^|/)fold\d+/")


def group_series(items: Iterable[tuple[str, T]]) -> dict[str, list[tuple[str, T]]]:
    """Series that differ only in a ``foldN/`` part (the trainer's cross-fitting:
    ``cnn/fold1/val_acc`` ... ``cnn/fold5/val_acc``) go together, as ``cnn/fold*/val_acc``."""
    groups: dict[str, list[tuple[str, T]]] = {}
    for name, item in items:
        groups.setdefault(_FOLD.sub(r"\1fold*/", name), []).append((name, item))
    return groups


@dataclass
class MetricSeries:
    name: str
    source: str = ""
    xs: array[float] = field(default_factory=lambda: array("d"))
    ys: array[float] = field(default_factory=lambda: array("d"))
    #: Step each point was logged in (-1: none).
    steps: array[int] = field(default_factory=lambda: array("i"))

    def add(self, x: float, y: float, step: int | None) -> None:
        self.xs.append(x)
        self.ys.append(y)
        self.steps.append(-1 if step is None else step)

    def __len__(self) -> int:
        return len(self.xs)

    @property
    def last(self) -> float | None:
        return self.ys[-1] if self.ys else None

    @property
    def group(self) -> str:
        """agent, trainer, system (or another source's name): see ``source_group``."""
        return source_group(self.source)


@dataclass
class _LiveStep:
    """The row of the step in progress, kept as its events are folded (O(1) to draw,
    however many output lines the step's tool has written to the log)."""

    step: int
    t_start: float
    tools: list[str] = field(default_factory=list)
    #: Set by the step's model response (None until it arrives).
    usage: Usage | None = None
    cost: float | None = None
    error: bool = False
    retried: bool = False
    gist: str = ""


class RunState:
    def __init__(self) -> None:
        self.header: RunStart | None = None
        self.phase = Phase.STARTING
        self.phase_detail = ""
        self.current_step: int | None = None
        self.step_order: list[int] = []
        self._step_pos: dict[int, int] = {}
        # per-step usage, parallel to step_order (0 where a step had no response)
        self.u_in = array("q")
        self.u_out = array("q")
        self.u_cw = array("q")
        self.u_cr = array("q")
        self.u_cost = array("d")
        self.totals = Usage()
        self.total_cost: float | None = None
        self.metrics: dict[str, MetricSeries] = {}
        self.grade: Grade | None = None
        self.end: RunEnd | None = None
        self.last_t: float | None = None
        self.errors: list[str] = []
        self.live: _LiveStep | None = None
        self._live_text: list[str] = []
        self._live_text_len = 0
        self.active_call: ToolCall | None = None
        self.events_seen = 0

    # -- folding --------------------------------------------------------------------

    def apply_all(self, events: list[Event]) -> Changed:
        changed = Changed.NONE
        for ev in events:
            changed |= self.apply(ev)
        return changed

    def apply(self, ev: Event) -> Changed:
        self.events_seen += 1
        if ev.t:
            self.last_t = ev.t if self.last_t is None else max(self.last_t, ev.t)
        if isinstance(ev, ModelDelta):
            live = self.live
            if live is None or ev.step != live.step or live.usage is not None:
                # streamed text of a step whose response (or a later step) the log has
                # already given: stale, the response holds the text now
                return Changed.NONE
            if self.phase in (Phase.WAITING, Phase.RETRYING):
                self.phase = Phase.STREAMING
                self.phase_detail = ""
            if ev.kind == "text":
                self._add_live_text(ev.text)
            return Changed.TEXT | Changed.STATUS
        if isinstance(ev, RunStart):
            self.header = ev
            self.phase = Phase.STARTING
            return Changed.ALL
        if isinstance(ev, StepStart):
            return self._step_start(ev)
        if isinstance(ev, ModelResponse):
            return self._response(ev)
        if isinstance(ev, ToolCall):
            if self.live is not None and self.live.step == ev.step:
                self.live.tools.append(ev.name)
                if not self.live.gist:
                    self.live.gist = _first_line(ev)
            self.active_call = ev
            self.phase = Phase.TOOL
            self.phase_detail = ev.name
            return Changed.STATUS | Changed.STEPS | Changed.CALL
        if isinstance(ev, ToolResult):
            if self.live is not None and self.live.step == ev.step:
                self.live.error = self.live.error or bool(ev.error)
            if self.phase != Phase.STOPPING and self.end is None:
                self.phase = Phase.WAITING
                self.phase_detail = ""
            return Changed.STATUS | Changed.STEPS
        if isinstance(ev, Metric):
            if ev.value is None or not math.isfinite(ev.value):
                return Changed.NONE
            series = self.metrics.get(ev.name)
            if series is None:
                series = self.metrics[ev.name] = MetricSeries(ev.name, ev.source)
            if ev.x is not None:
                x = float(ev.x)
            elif ev.step is not None:
                x = float(ev.step)
            else:
                x = float(len(series))
            series.add(x, float(ev.value), ev.step)
            return Changed.METRICS
        if isinstance(ev, Grade):
            self.grade = ev
            return Changed.GRADE | Changed.STATUS | Changed.METRICS
        if isinstance(ev, WarningEvent):
            if ev.code == "retry":
                self.phase = Phase.RETRYING
                self.phase_detail = ev.message
                if self.live is not None:
                    self.live.retried = True
                return Changed.STATUS | Changed.STEPS
            return Changed.NONE
        if isinstance(ev, ErrorEvent):
            self.errors.append(f"{ev.where}: {ev.message}")
            del self.errors[:-20]
            if self.live is not None:
                self.live.error = True
            return Changed.STATUS | Changed.STEPS
        if isinstance(ev, RunEnd):
            self.end = ev
            self.phase = Phase.FINISHED
            self.phase_detail = ev.status
            self.active_call = None
            self.live = None
            return Changed.ALL
        return Changed.NONE

    def _step_start(self, ev: StepStart) -> Changed:
        self.current_step = ev.step
        if ev.step not in self._step_pos:
            self._step_pos[ev.step] = len(self.step_order)
            self.step_order.append(ev.step)
            for arr in (self.u_in, self.u_out, self.u_cw, self.u_cr):
                arr.append(0)
            self.u_cost.append(math.nan)
        self.live = _LiveStep(ev.step, ev.t)
        self._live_text = []
        self._live_text_len = 0
        self.active_call = None
        if self.phase != Phase.STOPPING:
            self.phase = Phase.WAITING
            self.phase_detail = ""
        return Changed.STATUS | Changed.STEPS | Changed.TEXT

    def _response(self, ev: ModelResponse) -> Changed:
        u = ev.usage
        pos = self._step_pos.get(ev.step)
        if pos is None:
            self._step_start(StepStart(step=ev.step, t=ev.t))
            pos = self._step_pos[ev.step]
        self.u_in[pos] = u.input_tokens
        self.u_out[pos] = u.output_tokens
        self.u_cw[pos] = u.cache_creation_input_tokens
        self.u_cr[pos] = u.cache_read_input_tokens
        self.totals.add(u)
        if ev.cost_usd is not None:
            self.u_cost[pos] = ev.cost_usd
            self.total_cost = (self.total_cost or 0.0) + ev.cost_usd
        if self.live is not None and self.live.step == ev.step:
            self.live.usage = u
            self.live.cost = ev.cost_usd
        if self.phase != Phase.STOPPING:
            uses_tools = any(b.get("type") == "tool_use" for b in ev.content)
            self.phase = Phase.TOOL if uses_tools else Phase.WAITING
            self.phase_detail = ""
        return Changed.STATUS | Changed.STEPS | Changed.TOKENS

    def _add_live_text(self, text: str) -> None:
        self._live_text.append(text)
        self._live_text_len += len(text)
        if self._live_text_len > 2 * MAX_LIVE_TEXT:
            joined = "".join(self._live_text)[-MAX_LIVE_TEXT:]
            self._live_text = [joined]
            self._live_text_len = len(joined)

    # -- queries ----------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.end is not None

    @property
    def live_text(self) -> str:
        text = "".join(self._live_text)
        return text[-MAX_LIVE_TEXT:]

    @property
    def model(self) -> str | None:
        return self.header.model if self.header else None

    def live_summary(self, step: int) -> StepSummary | None:
        """The row of a step still in progress, from what the stream has said so far."""
        live = self.live
        if live is None or live.step != step:
            return None
        u = live.usage or Usage()
        end = self.last_t if self.last_t is not None else time.time()
        return StepSummary(
            step=step,
            tools=tuple(live.tools),
            duration_s=max(0.0, end - live.t_start),
            usage=u,
            cost_usd=live.cost,
            error=live.error,
            retried=live.retried,
            finished=False,
            gist=live.gist,
        )

    def position(self, step: int) -> int | None:
        return self._step_pos.get(step)

    def cumulative(self, upto_pos: int | None = None) -> tuple[Usage, float | None]:
        """Token usage and cost over steps [0, upto_pos] (all steps when None)."""
        if upto_pos is None:
            return self.totals.usage(), self.total_cost
        n = upto_pos + 1
        costs = [c for c in self.u_cost[:n] if not math.isnan(c)]
        return Usage(
            input_tokens=sum(self.u_in[:n]),
            output_tokens=sum(self.u_out[:n]),
            cache_creation_input_tokens=sum(self.u_cw[:n]),
            cache_read_input_tokens=sum(self.u_cr[:n]),
        ), (sum(costs) if costs else None)

    def context_used(self, pos: int | None = None) -> int | None:
        """Prompt tokens of the step at ``pos`` (latest step with a response when None)."""
        if not self.step_order:
            return None
        if pos is None:
            for p in range(len(self.step_order) - 1, -1, -1):
                if self.u_in[p] or self.u_cr[p] or self.u_cw[p]:
                    pos = p
                    break
            else:
                return None
        if not 0 <= pos < len(self.step_order):
            return None
        return self.u_in[pos] + self.u_cw[pos] + self.u_cr[pos]

    def elapsed(self, now: float | None = None) -> float | None:
        if self.header is None:
            return None
        if self.end is not None:
            wall = self.end.totals.wall_s if self.end.totals else None
            if isinstance(wall, int | float) and wall > 0:
                return float(wall)
            span = (self.last_t or self.header.t) - self.header.t
            return span if span > 0 else None  # None: the log has no timing
        now = time.time() if now is None else now
        return max(0.0, now - self.header.t)


def _first_line(call: ToolCall) -> str:
    for line in input_text(call)[0].splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return line
    return ""
