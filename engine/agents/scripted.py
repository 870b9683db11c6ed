"""The scripted agent: plays a task's reference policy, one tool call a step.

It is the offline default (no key, no network) and a baseline: each step's
message is a text block (what the step does) and one ``tool_use`` block, with
zero tokens and no cost. When the policy is exhausted without the run having
ended, the agent raises ``AgentError``: a fixed policy cannot recover.
"""

from __future__ import annotations

import time
from typing import Any

from agentdeck.engine.agents.base import AgentContext, AgentError, AgentReply, ModelRequest
from agentdeck.engine.events import Usage
from agentdeck.engine.task import ScriptedStep


class ScriptedAgent:
    name = "scripted"
    model: str | None = None

    def __init__(self, steps: list[ScriptedStep]) -> None:
        if not steps:
            raise AgentError("this task has no reference policy, so --agent scripted cannot run it")
        self.steps = steps

    def respond(self, request: ModelRequest, ctx: AgentContext) -> AgentReply:
        t0 = time.perf_counter()
        i = sum(1 for m in request.messages if m["role"] == "assistant")
        if i >= len(self.steps):
            raise AgentError(
                f"the reference policy's {len(self.steps)} steps are done and the run has not "
                "ended (a tool call failed or the submission was rejected; see the steps above)",
                code="policy_exhausted",
            )
        s = self.steps[i]
        content: list[dict[str, Any]] = []
        if s.text:
            content.append({"type": "text", "text": s.text})
        content.append(
            {
                "type": "tool_use",
                "id": f"toolu_scripted_{request.step:04d}",
                "name": s.tool,
                "input": s.input,
            }
        )
        return AgentReply(
            message_id=f"scripted_{request.step:04d}",
            content=content,
            stop_reason="tool_use",
            usage=Usage(),
            model=None,
            latency_s=time.perf_counter() - t0,
            cost_usd=0.0,
        )

    def close(self) -> None:
        pass
