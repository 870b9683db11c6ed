"""Real Inspect AI logs for tests and benchmarks, made by Inspect itself.

``make_inspect_log`` runs an Inspect eval with Inspect's ``mockllm`` model: each
sample is an agent loop (``basic_agent``) whose model calls a tool for ``turns``
turns, then submits. Every ``ModelOutput`` has its usage set explicitly (else
mockllm counts tokens, which downloads a tokenizer) and names a Claude model,
so agentdeck prices it. Options add what real logs hold:

- ``tool_error_every``: every N-th turn's tool raises ``ToolError`` (a tool
  error the model sees);
- ``crash_sample``: that sample's tool raises ``RuntimeError`` at turn 2 (the
  sample ends with an error; the eval goes on);
- ``runaway_sample``: that sample never submits and runs into the message limit;
- ``epochs`` and ``log_format`` (``"eval"`` or ``"json"``).

Samples whose id is odd answer right (score C), even ones wrong (I).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The model the mock outputs say they are (priced by agentdeck's table).
MODEL = "claude-haiku-4-5"


@dataclass(frozen=True)
class Spec:
    samples: int = 3
    turns: int = 4
    epochs: int = 1
    log_format: str = "eval"
    tool_error_every: int = 0
    crash_sample: int | None = None
    runaway_sample: int | None = None
    message_limit: int = 60
    #: Bytes of tool output per turn (a training-loop printout).
    output_bytes: int = 200


def usage_for(turn: int) -> dict[str, int]:
    """The usage the mock reports at ``turn`` (0-based): cache writes at the first
    turn, cache reads after it."""
    return {
        "input_tokens": 120 + 7 * turn,
        "output_tokens": 30 + turn % 5,
        "input_tokens_cache_write": 900 if turn == 0 else 0,
        "input_tokens_cache_read": 0 if turn == 0 else 900 + 50 * turn,
    }


def make_inspect_log(log_dir: Path, spec: Spec = Spec()) -> Path:
    """Run the eval; the path of the log Inspect wrote."""
    from inspect_ai import Task, eval
    from inspect_ai.dataset import Sample
    from inspect_ai.model import ChatMessageAssistant, ModelOutput, ModelUsage, get_model
    from inspect_ai.scorer import includes
    from inspect_ai.solver import basic_agent
    from inspect_ai.tool import ToolError, tool

    @tool
    def python_expression() -> Any:
        async def execute(code: str) -> str:
            """Run Python code and return what it prints.

            Args:
              code: the code to run
            """
            turn = int(code.split("turn=", 1)[1].split(";", 1)[0])
            sample = int(code.split("sample=", 1)[1].split(";", 1)[0])
            if spec.crash_sample == sample and turn == 2:
                raise RuntimeError(f"the sandbox died at turn {turn}")
            if spec.tool_error_every and turn % spec.tool_error_every == spec.tool_error_every - 1:
                raise ToolError(f"NameError: name 'x{turn}' is not defined")
            line = f"epoch {turn} loss {1 / (turn + 1):.4f} acc {turn / (turn + 1):.4f}\n"
            return (line * (spec.output_bytes // len(line) + 1))[: spec.output_bytes]

        return execute

    def outputs(messages: list[Any], tools: Any, tool_choice: Any, config: Any) -> Any:
        turn = sum(1 for m in messages if isinstance(m, ChatMessageAssistant))
        first_user = next(m for m in messages if m.role == "user")
        sample = int(first_user.text.split("#", 1)[1].split(":", 1)[0])
        if turn < spec.turns or spec.runaway_sample == sample:
            out = ModelOutput.for_tool_call(
                MODEL,
                "python_expression",
                {"code": f"turn={turn}; sample={sample}; print(train(epochs={turn + 1}))"},
                tool_call_id=f"call_{sample}_{turn}",
                content=f"Turn {turn}: train a little longer and look at the loss.",
            )
        else:
            answer = "42" if sample % 2 else "41"
            out = ModelOutput.for_tool_call(
                MODEL,
                "submit",
                {"answer": answer},
                tool_call_id=f"call_{sample}_submit",
                content=f"The answer is {answer}.",
            )
        u = usage_for(turn)
        out.usage = ModelUsage(
            input_tokens=u["input_tokens"],
            output_tokens=u["output_tokens"],
            input_tokens_cache_write=u["input_tokens_cache_write"] or None,
            input_tokens_cache_read=u["input_tokens_cache_read"] or None,
            total_tokens=sum(u.values()),
        )
        return out

    task = Task(
        dataset=[
            Sample(id=i, input=f"Question #{i}: what is 6 x 7?", target="42")
            for i in range(1, spec.samples + 1)
        ],
        solver=basic_agent(tools=[python_expression()], max_attempts=1),
        scorer=includes(),
        message_limit=spec.message_limit,
        name="mock-tools",
    )
    logs = eval(
        task,
        model=get_model("mockllm/model", custom_outputs=outputs),
        log_dir=str(log_dir),
        log_format=spec.log_format,  # type: ignore[arg-type]
        display="none",
        epochs=spec.epochs,
        fail_on_error=False,
        max_samples=min(spec.samples, 10),
    )
    location = logs[0].location
    return Path(location)
