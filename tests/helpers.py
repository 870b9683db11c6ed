"""Small builders for tests: a synthetic run written with the real writer, a wait on
a condition, and a small budget for the noisy-labels reference detector."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def replay_log(path: Path, codes: list[str], *, run_id: str = "r", prompt: str = "p") -> Path:
    """A JSONL log whose steps are one python_expression call each, to play with
    ``--agent replay:LOG``."""
    with LogWriter(path) as w:
        events: list = [
            RunStart(
                run_id=run_id,
                task="noisy-labels",
                agent="claude",
                max_steps=len(codes),
                prompt=prompt,
            )
        ]
        for i, code in enumerate(codes, start=1):
            events.append(StepStart(step=i))
            events.append(
                ModelResponse(
                    step=i,
                    message_id=f"msg_{i}",
                    stop_reason="tool_use",
                    content=[
                        {
                            "type": "tool_use",
                            "id": f"toolu_{i}",
                            "name": "python_expression",
                            "input": {"code": code},
                        }
                    ],
                )
            )
        for seq, ev in enumerate(events):
            ev.seq, ev.t = seq, 1_700_000_000.0 + seq
            w(ev)
    return path


def wait_for(
    cond: Callable[[], object], what: str, timeout: float = 10.0, interval: float = 0.02
) -> None:
    """Poll ``cond`` until it is true; fail with ``what`` after ``timeout`` seconds.

    For waiting on another process or thread, in place of a sleep that hopes it was
    long enough.
    """
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(interval)


#: A reference-detector budget for tests of a run's plumbing (it runs, streams, submits a
#: valid file, is graded), not of detection quality: 2 folds, CNN 5 / MLP 10 epochs, 1 round.
#: On digits with the task's symmetric noise (seeds 1, 3, 5, 7) it graded F1 0.90-0.96,
#: well clear of the pass bar (0.65), so such a run still passes. Fewer epochs are not
#: enough: with 2-4, undertrained models make the noise-rate estimate low and F1 fell to
#: 0.52-0.66 on some seeds.
SMALL_DETECTOR: dict[str, Any] = {"folds": 2, "epochs": 5, "rounds": 1}


def small_detector(monkeypatch: Any, **budget: Any) -> str:
    """Make the noisy-labels scripted policy run the reference detector with a small
    budget (``SMALL_DETECTOR``, updated by ``budget``).

    The task builds its policy from ``reference.detection_code(seed=0)`` when a run is
    set up, so this patches that function for the rest of the test (``monkeypatch``: a
    ``pytest.MonkeyPatch``). Returns the code the policy will send, so a test can
    check that the run really used it.
    """
    from agentdeck.tasks.noisy_labels import reference

    full = reference.detection_code
    kw = {**SMALL_DETECTOR, **budget}

    def code(**given: Any) -> str:
        return full(**{**given, **kw})

    monkeypatch.setattr(reference, "detection_code", code)
    return code(seed=0)
