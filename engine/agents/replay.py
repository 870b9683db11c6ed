"""The replay agent: re-issues the assistant messages recorded in a log.

``replay:LOG`` plays every recorded step against a fresh sandbox, so a run can
be reproduced (or a task's tools re-checked) without a model. ``replay:LOG@N``
plays steps 1..N, then hands the conversation, with the fresh tool results,
to another agent (``--fork-agent``, default ``claude``) from step N+1: a fork
of the run. LOG is a JSONL log or a seed-format markdown log.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentdeck.engine.agents.base import Agent, AgentContext, AgentError, AgentReply, ModelRequest
from agentdeck.engine.events import Usage
from agentdeck.engine.log import LogError, RunLog

if TYPE_CHECKING:
    from agentdeck.engine.task import TaskInstance


def parse_spec(spec: str) -> tuple[Path, int | None]:
    m = re.fullmatch(r"(.+?)@(\d+)", spec)
    if m:
        return Path(m.group(1)), int(m.group(2))
    return Path(spec), None


def recorded_messages(path: Path) -> list[dict[str, Any]]:
    """The assistant messages of a log, in step order."""
    try:
        with RunLog.open(path) as log:
            out = []
            for n in log.step_numbers:
                resp = log.step(n).response
                if resp is not None:
                    out.append(
                        {
                            "id": resp.message_id,
                            "content": resp.content,
                            "stop_reason": resp.stop_reason,
                        }
                    )
            return out
    except LogError as e:
        raise AgentError(f"replay: {e}") from e


class ReplayAgent:
    name = "replay"

    def __init__(
        self, messages: list[dict[str, Any]], *, until: int | None = None, then: Agent | None = None
    ) -> None:
        if until is not None and until > len(messages):
            raise AgentError(
                f"replay: the log has {len(messages)} steps, cannot fork at step {until}"
            )
        self.messages = messages if until is None else messages[:until]
        self.then = then
        self.model = then.model if then is not None else None

    def respond(self, request: ModelRequest, ctx: AgentContext) -> AgentReply:
        i = sum(1 for m in request.messages if m["role"] == "assistant")
        if i < len(self.messages):
            t0 = time.perf_counter()
            rec = self.messages[i]
            return AgentReply(
                message_id=f"replay_{rec['id']}",
                content=rec["content"],
                stop_reason=rec["stop_reason"],
                usage=Usage(),
                latency_s=time.perf_counter() - t0,
                cost_usd=0.0,
            )
        if self.then is None:
            raise AgentError(
                f"replay: all {len(self.messages)} recorded steps were replayed "
                "and the run has not ended",
                code="policy_exhausted",
            )
        return self.then.respond(request, ctx)

    def close(self) -> None:
        if self.then is not None:
            self.then.close()


def make_replay_factory(
    spec: str, *, model: str | None = None, **options: Any
) -> Callable[[TaskInstance], Agent]:
    path, until = parse_spec(spec)
    messages = recorded_messages(path)
    if not messages:
        raise AgentError(f"replay: {path} has no recorded steps")
    if until is not None and not 0 <= until <= len(messages):
        raise AgentError(
            f"replay:{path}@{until}: the log has {len(messages)} recorded step"
            f"{'s' if len(messages) != 1 else ''}; fork at a step from 0 to {len(messages)}"
        )
    then_factory = None
    if until is not None:
        from agentdeck.engine.agents import make_agent_factory

        fork = options.pop("fork_agent", None) or "claude"
        if fork.startswith("replay:"):
            raise AgentError("replay: --fork-agent cannot itself be a replay")
        then_factory = make_agent_factory(fork, model=model, **options)

    def factory(inst: TaskInstance) -> Agent:
        then = then_factory(inst) if then_factory is not None else None
        return ReplayAgent(messages, until=until, then=then)

    return factory
