"""Aligning two runs step by step and finding where they first diverge."""

from __future__ import annotations

from dataclasses import dataclass, field

from agentdeck.engine.events import EventError, ToolCall
from agentdeck.engine.log import RunLog
from agentdeck.tui.stepdata import call_signature

Signature = tuple[tuple[str, str], ...]


def call_signatures(log: RunLog) -> dict[int, Signature]:
    """Each step's tool calls as (name, canonical input JSON), parsing only tool_call lines."""
    sigs: dict[int, list[tuple[str, str]]] = {n: [] for n in log.step_numbers}
    for idx, etype in enumerate(log.line_types()):
        if etype != "tool_call":
            continue
        try:
            ev = log.event_at(idx)
        except EventError:
            continue
        if isinstance(ev, ToolCall):
            sigs.setdefault(ev.step, []).append(call_signature(ev))
    return {k: tuple(v) for k, v in sigs.items()}


@dataclass
class Alignment:
    steps: list[int]
    a: dict[int, Signature] = field(default_factory=dict)
    b: dict[int, Signature] = field(default_factory=dict)
    #: The first step whose tool calls or inputs differ (None: identical).
    divergence: int | None = None

    def differs(self, step: int) -> bool:
        return self.a.get(step) != self.b.get(step)


def align(a: RunLog, b: RunLog) -> Alignment:
    sa, sb = call_signatures(a), call_signatures(b)
    steps = sorted(set(a.step_numbers) | set(b.step_numbers))
    al = Alignment(steps, sa, sb)
    for s in steps:
        if sa.get(s) != sb.get(s):
            al.divergence = s
            break
    return al
