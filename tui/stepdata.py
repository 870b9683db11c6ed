"""Reading steps out of a RunLog for display: full records and one-row summaries.

Both read only the lines they need (``RunLog.line_types``): a step's
``tool_output_chunk`` lines, which a tool printing megabytes can fill, are
skipped unless asked for, so a row or a detail view costs the same however
much the tool printed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from agentdeck.engine.events import ToolCall, Usage
from agentdeck.engine.log import RunLog, StepRecord
from agentdeck.tui.format import output_text


def read_step(
    log: RunLog, step: int, *, chunks: bool = False, types: Iterable[str] | None = None
) -> StepRecord:
    """One step of ``log`` for display: without output chunks unless asked
    (the result's output is what the model saw), only ``types`` if given."""
    return log.step(step, chunks=chunks, types=types)


@dataclass(frozen=True, slots=True)
class StepSummary:
    """What one row of the steps pane shows."""

    step: int
    tools: tuple[str, ...] = ()
    duration_s: float | None = None
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None
    error: bool = False
    retried: bool = False
    finished: bool = True
    #: A short text: the first line of the first tool input (or the assistant text).
    gist: str = ""

    @property
    def prompt_tokens(self) -> int:
        """Tokens the model read this step (context used)."""
        return self.usage.prompt


def summarize(rec: StepRecord, *, finished: bool = True) -> StepSummary:
    errored = bool(rec.errors) or any(c.result is not None and c.result.error for c in rec.calls)
    return StepSummary(
        step=rec.step,
        tools=tuple(rec.tool_names),
        duration_s=rec.duration_s,
        usage=rec.response.usage if rec.response else Usage(),
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
        ((key, val),) = inp.items()
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
