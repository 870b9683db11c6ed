"""Reading steps out of a RunLog for display: full records and one-row summaries.

Both read only the lines they need (``RunLog.line_types``): a step's
``tool_output_chunk`` lines, which a tool printing megabytes can fill, are
skipped unless asked for, so a row or a detail view costs the same however
much the tool printed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from engine.events import (
    Artifact,
    ErrorEvent,
    EventError,
    Metric,
    ModelResponse,
    StepStart,
    ToolCall,
    ToolOutputChunk,
    ToolResult,
    WarningEvent,
    usage_of,
)
from engine.runlog import CallRecord, RunLog, StepRecord
from tui.format import output_text

_SKIP_ALWAYS = {"run_end", "grade", "run_start"}


def read_step(log: RunLog, step: int, *, chunks: bool = False,
              types: Iterable[str] | None = None) -> StepRecord:
    """Parse one step of ``log``; ``types`` limits which event types are parsed."""
    first, end = log.line_range(step)
    want = set(types) if types is not None else None
    rec = StepRecord(step=step)
    calls: dict[str, CallRecord] = {}
    last_t: float | None = None
    for offset, etype in enumerate(log.line_types(first, end)):
        if etype in _SKIP_ALWAYS or (etype == "tool_output_chunk" and not chunks):
            continue
        if want is not None and etype not in want and etype != "step_start":
            continue
        try:
            ev = log.event_at(first + offset)
        except EventError as e:
            rec.problems.append(str(e))
            continue
        last_t = ev.t
        if isinstance(ev, StepStart):
            rec.start = ev
            rec.t_start = ev.t
        elif isinstance(ev, ModelResponse):
            rec.response = ev
        elif isinstance(ev, ToolCall):
            calls[ev.call_id] = CallRecord(ev)
            rec.calls.append(calls[ev.call_id])
        elif isinstance(ev, ToolOutputChunk):
            if ev.call_id in calls:
                calls[ev.call_id].chunks.append(ev)
        elif isinstance(ev, ToolResult):
            if ev.call_id in calls:
                calls[ev.call_id].result = ev
        elif isinstance(ev, Metric):
            rec.metrics.append(ev)
        elif isinstance(ev, Artifact):
            rec.artifacts.append(ev)
        elif isinstance(ev, WarningEvent):
            rec.warnings.append(ev)
        elif isinstance(ev, ErrorEvent):
            rec.errors.append(ev)
    numbers = log.step_numbers
    pos = _position(log, step)
    if pos is not None and pos + 1 < len(numbers):
        nxt_first, _ = log.line_range(numbers[pos + 1])
        try:
            rec.t_end = log.event_at(nxt_first).t
        except EventError:
            rec.t_end = last_t
    else:
        rec.t_end = last_t
    return rec


def _position(log: RunLog, step: int) -> int | None:
    numbers = log.step_numbers
    # steps are almost always 1..N in order
    if 0 < step <= len(numbers) and numbers[step - 1] == step:
        return step - 1
    try:
        return numbers.index(step)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class StepSummary:
    """What one row of the steps pane shows."""

    step: int
    tools: tuple[str, ...] = ()
    duration_s: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write: int = 0
    cache_read: int = 0
    cost_usd: float | None = None
    error: bool = False
    retried: bool = False
    finished: bool = True
    #: A short text: the first line of the first tool input (or the assistant text).
    gist: str = ""

    @property
    def prompt_tokens(self) -> int:
        """Tokens the model read this step (context used)."""
        return self.input_tokens + self.cache_write + self.cache_read


def summarize(rec: StepRecord, *, finished: bool = True) -> StepSummary:
    usage = usage_of(rec.response) if rec.response else None
    errored = bool(rec.errors) or any(c.result is not None and c.result.error for c in rec.calls)
    return StepSummary(
        step=rec.step,
        tools=tuple(rec.tool_names),
        duration_s=rec.duration_s,
        input_tokens=usage["input_tokens"] if usage else 0,
        output_tokens=usage["output_tokens"] if usage else 0,
        cache_write=usage["cache_creation_input_tokens"] if usage else 0,
        cache_read=usage["cache_read_input_tokens"] if usage else 0,
        cost_usd=rec.response.cost_usd if rec.response else None,
        error=errored,
        retried=rec.retried,
        finished=finished,
        gist=gist_of(rec),
    )


def input_text(call: ToolCall) -> tuple[str, str]:
    """A tool input as (text, lexer): code inputs as Python, the rest as JSON."""
    inp = call.input
    if len(inp) == 1:
        (key, val), = inp.items()
        if isinstance(val, str) and key in ("code", "source", "python", "script", "command"):
            return val.strip("\n"), "bash" if key == "command" else "python"
    if not inp:
        return "{}", "json"
    return json.dumps(inp, indent=2, ensure_ascii=False, default=str), "json"


def gist_of(rec: StepRecord) -> str:
    for c in rec.calls:
        text, _ = input_text(c.call)
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith("#") and line not in ("{}", "{", "}"):
                return line
        if text == "{}":
            return "{}"
    return rec.text.strip().split("\n", 1)[0] if rec.text else ""


def step_search_text(rec: StepRecord) -> str:
    """Everything a person reads in a step, for ``/`` search."""
    parts = [rec.text]
    for c in rec.calls:
        parts.append(c.call.name)
        parts.append(input_text(c.call)[0])
        if c.result is not None:
            parts.append(output_text(c.result.output))
            if c.result.error:
                parts.append(c.result.error)
    parts.extend(e.message for e in rec.errors)
    parts.extend(w.message for w in rec.warnings)
    return "\n".join(p for p in parts if p)


def call_signature(call: ToolCall) -> tuple[str, str]:
    """What makes two tool calls "the same" when comparing runs."""
    return call.name, json.dumps(call.input, sort_keys=True, ensure_ascii=False, default=str)
