"""Benchmark of the event log: write, index, load one step, peak memory.

    python bench/log_bench.py [--steps 10000] [--repeat 5]

Writes a synthetic run of STEPS steps (about 5 KB of events a step: a model
response with text and code, the tool call, streamed output chunks, the
result, a metric), then reports events written per second, the time to build
the index, the median and p95 time to load a random step, and the peak RSS of
a fresh process that indexes the file. Prints medians over REPEAT runs.
Targets on the 2-core dev machine: index of 50 MB <= 0.5 s, one step <= 5 ms,
peak RSS <= 150 MB while indexing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from agentdeck.engine.bus import EventBus
from agentdeck.engine.events import (
    Metric,
    ModelResponse,
    RunEnd,
    RunStart,
    StepStart,
    ToolCall,
    ToolOutputChunk,
    ToolResult,
    Totals,
    Usage,
)
from agentdeck.engine.log import LogWriter, RunLog

CODE = (
    textwrap.dedent("""
    import numpy as np
    import torch
    from torch import nn
    # train a small model and look at the out-of-fold probabilities
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    for epoch in range({epoch}):
        perm = torch.randperm(len(X))
        for i in range(0, len(X), 256):
            idx = perm[i:i + 256]
            loss = nn.functional.cross_entropy(model(X[idx]), y[idx])
            opt.zero_grad(); loss.backward(); opt.step()
        print(f"epoch {{epoch}} loss {{loss.item():.4f}}")
    probs = torch.softmax(model(X_test), 1).detach().numpy()
    print(probs.shape, probs[:3])
""")
    * 2
)


def output_text(rng: random.Random, lines: int) -> str:
    return "".join(
        f"epoch {i} loss {rng.random():.4f} acc {rng.random():.4f} "
        f"val_loss {rng.random():.4f} val_acc {rng.random():.4f} samples/s {rng.randint(1000, 9000)}\n"
        for i in range(lines)
    )


def write_log(path: Path, steps: int, seed: int = 0) -> tuple[int, float]:
    rng = random.Random(seed)
    writer = LogWriter(path)
    bus = EventBus([writer])
    t0 = time.perf_counter()
    bus.emit(
        RunStart(
            run_id="bench",
            task="noisy-labels",
            agent="claude",
            model="claude-haiku-4-5",
            max_steps=steps,
            prompt="synthetic " * 200,
            tools=[
                {
                    "name": "python_expression",
                    "description": "run code",
                    "input_schema": {"type": "object"},
                }
            ],
        )
    )
    for s in range(1, steps + 1):
        bus.emit(StepStart(step=s))
        code = CODE.format(epoch=s % 17 + 1)
        call_id = f"toolu_{s:06d}"
        bus.emit(
            ModelResponse(
                step=s,
                message_id=f"msg_{s:08d}",
                stop_reason="tool_use",
                content=[
                    {"type": "text", "text": "Let me try another approach. " * 12},
                    {
                        "type": "tool_use",
                        "id": call_id,
                        "name": "python_expression",
                        "input": {"code": code},
                    },
                ],
                usage=Usage(
                    input_tokens=1000 + 40 * s, output_tokens=300, cache_read_input_tokens=900
                ),
                latency_s=1.2,
                cost_usd=0.0012,
            )
        )
        bus.emit(
            ToolCall(
                step=s,
                call_id=call_id,
                name="python_expression",
                input={"code": code},
                block_index=2,
            )
        )
        out = output_text(rng, 10)
        bus.emit(ToolOutputChunk(step=s, call_id=call_id, stream="stdout", text=out[:400]))
        bus.emit(ToolOutputChunk(step=s, call_id=call_id, stream="stdout", text=out[400:]))
        bus.emit(Metric(name="loss", value=rng.random(), step=s, x=float(s), source="sandbox"))
        bus.emit(
            ToolResult(
                step=s,
                call_id=call_id,
                name="python_expression",
                output={"result": out, "error": None},
                duration_s=2.5,
            )
        )
    bus.emit(RunEnd(status="max_steps_reached", totals=Totals(steps=steps)))
    elapsed = time.perf_counter() - t0
    writer.close()
    return bus.next_seq, elapsed


RSS_CHILD = """
import resource, sys, time
from agentdeck.engine.log import RunLog
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
log = RunLog.open({path!r})
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(base / 1024, peak / 1024)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    root = str(Path(__file__).resolve().parents[1])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        rates, index_s, step_ms, rss = [], [], [], []
        for r in range(args.repeat):
            path.unlink(missing_ok=True)
            n, secs = write_log(path, args.steps, seed=r)
            rates.append(n / secs)
            size_mb = path.stat().st_size / 1e6
            t0 = time.perf_counter()
            log = RunLog.open(path)
            index_s.append(time.perf_counter() - t0)
            rng = random.Random(r)
            for _ in range(200):
                s = rng.randint(1, args.steps)
                t0 = time.perf_counter()
                log._step_cache.clear()
                log.step(s)
                step_ms.append((time.perf_counter() - t0) * 1000)
            log.close()
            out = subprocess.run(
                [sys.executable, "-c", RSS_CHILD.format(root=root, path=str(path))],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            rss.append(float(out[1]))
        step_ms.sort()
        print(f"log: {args.steps:,} steps, {n:,} events, {size_mb:.1f} MB; {args.repeat} repeats")
        print(f"write:      {statistics.median(rates):,.0f} events/s (median; flushed per event)")
        print(
            f"index:      {statistics.median(index_s) * 1000:.0f} ms median "
            f"(min {min(index_s) * 1000:.0f}, max {max(index_s) * 1000:.0f})  target <= 500 ms"
        )
        print(
            f"load step:  {statistics.median(step_ms):.2f} ms median, "
            f"p95 {step_ms[int(len(step_ms) * 0.95)]:.2f} ms  target <= 5 ms"
        )
        print(
            f"peak RSS:   {statistics.median(rss):.0f} MB (fresh process: import + index)"
            "  target <= 150 MB"
        )


if __name__ == "__main__":
    main()
