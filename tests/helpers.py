"""Small builders for tests: a synthetic run written with the real writer."""

from __future__ import annotations

from pathlib import Path

from agentdeck.engine.bus import EventBus
from agentdeck.engine.events import (
    Grade,
    Metric,
    ModelResponse,
    RunEnd,
    RunStart,
    StepStart,
    ToolCall,
    ToolOutputChunk,
    ToolResult,
)
from agentdeck.engine.log import LogWriter


def write_run(
    path: Path,
    steps: int = 3,
    *,
    end: bool = True,
    passed: bool = True,
    t0: float = 1_700_000_000.0,
) -> list:
    """Write a small complete run; returns the events (with seq and t set)."""
    events = []
    writer = LogWriter(path)
    clock = iter(t0 + i * 0.5 for i in range(10_000))

    def emit(ev):
        ev.t = next(clock)
        bus.emit(ev)
        events.append(ev)

    bus = EventBus([writer])
    emit(
        RunStart(
            run_id="r1",
            task="noisy-labels",
            agent="scripted",
            max_steps=steps + 2,
            prompt="Find the noisy labels.",
            tools=[],
            started_at="2025-11-08T23:11:27",
        )
    )
    for s in range(1, steps + 1):
        emit(StepStart(step=s))
        cid = f"toolu_{s}"
        emit(
            ModelResponse(
                step=s,
                message_id=f"msg_{s}",
                stop_reason="tool_use",
                content=[
                    {"type": "text", "text": f"step {s} text"},
                    {
                        "type": "tool_use",
                        "id": cid,
                        "name": "python_expression",
                        "input": {"code": f"print({s})"},
                    },
                ],
                usage={
                    "input_tokens": 100 * s,
                    "output_tokens": 10 * s,
                    "cache_creation_input_tokens": 5,
                    "cache_read_input_tokens": 50,
                },
                cost_usd=0.001 * s,
            )
        )
        emit(
            ToolCall(
                step=s,
                call_id=cid,
                name="python_expression",
                input={"code": f"print({s})"},
                block_index=2,
            )
        )
        emit(ToolOutputChunk(step=s, call_id=cid, stream="stdout", text=f"{s}\n"))
        emit(Metric(name="loss", value=1.0 / s, step=s, x=float(s)))
        emit(
            ToolResult(
                step=s,
                call_id=cid,
                name="python_expression",
                output={"result": f"{s}\n", "error": None},
                duration_s=0.25,
            )
        )
    if end:
        emit(
            Grade(
                metrics={"f1": 0.9},
                criteria="F1 >= 0.65",
                passed=passed,
                step=steps,
                checks=[{"name": "f1", "text": "F1 >= 0.65", "value": 0.9, "met": passed}],
            )
        )
        emit(
            RunEnd(
                status="completed",
                totals={
                    "steps": steps,
                    "input_tokens": sum(100 * s for s in range(1, steps + 1)),
                    "output_tokens": sum(10 * s for s in range(1, steps + 1)),
                    "cache_creation_input_tokens": 5 * steps,
                    "cache_read_input_tokens": 50 * steps,
                    "cost_usd": sum(0.001 * s for s in range(1, steps + 1)),
                    "wall_s": 3.0,
                },
            )
        )
    writer.close()
    return events
