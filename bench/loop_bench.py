"""Engine overhead per step: the step loop with an agent that answers at once.

    python bench/loop_bench.py [--steps 2000] [--repeat 5]

The agent returns a text block and one tool call instantly; the tool returns
at once. What is measured is everything the engine adds per step: building
the request, five events through the bus, each written and flushed to a real
events.jsonl, the tool-result message. Target: <= 5 ms per step.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from agentdeck.engine.agents.base import AgentReply
from agentdeck.engine.bus import EventBus
from agentdeck.engine.events import Usage
from agentdeck.engine.log import LogWriter, RunDir
from agentdeck.engine.loop import Limits, StepLoop
from agentdeck.engine.tools import ToolOutcome, ToolSpec


class InstantAgent:
    name = "instant"
    model = None

    def respond(self, request, ctx):
        return AgentReply(
            message_id=f"msg_{request.step}",
            stop_reason="tool_use",
            content=[
                {"type": "text", "text": "Next I will print the shapes."},
                {
                    "type": "tool_use",
                    "id": f"toolu_{request.step}",
                    "name": "echo",
                    "input": {"code": "print(X_train.shape)"},
                },
            ],
            usage=Usage(input_tokens=1000, output_tokens=50),
        )

    def close(self):
        pass


def echo(inp, ctx):
    return ToolOutcome(output={"result": "(60000, 784)\n", "error": None})


def one_run(steps: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        rd = RunDir.create(tmp, "bench")
        writer = LogWriter(rd.events)
        loop = StepLoop(
            agent=InstantAgent(),
            bus=EventBus([writer]),
            run_dir=rd,
            system="",
            prompt="go",
            tools=[ToolSpec("echo", "echo", {"type": "object"}, echo)],
            submit_tool="submit",
            limits=Limits(max_steps=steps, remind_steps_left=0),
        )
        t0 = time.perf_counter()
        loop.run()
        dt = time.perf_counter() - t0
        writer.close()
    return dt / steps * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    per_step = [one_run(a.steps) for _ in range(a.repeat)]
    print(
        f"engine overhead: {statistics.median(per_step):.3f} ms/step median over {a.repeat} "
        f"runs of {a.steps} steps (min {min(per_step):.3f}, max {max(per_step):.3f})  "
        "target <= 5 ms"
    )


if __name__ == "__main__":
    main()
