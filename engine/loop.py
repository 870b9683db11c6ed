"""The step loop: agent -> tools -> events, with limits and a clean stop.

One step is one model call (as the seed log's "Max Steps: 20" counts them):
``step_start``, the agent's message (``model_response``), then for each
``tool_use`` block a ``tool_call``, the tool's run and its ``tool_result``; the
results go back to the agent as the next user message. The loop ends when the
submit tool grades a submission (``completed``), when the steps run out
(``max_steps_reached``), on a wall-time / token / cost limit
(``limit_exceeded``), on a stop request (``interrupted``) or on a failure
(``error``). It returns the status; the runner writes ``run_end``.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from agentdeck.engine.agents.base import Agent, AgentContext, AgentError, ModelRequest
from agentdeck.engine.bus import EventBus
from agentdeck.engine.events import (
    ErrorEvent,
    Grade,
    ModelResponse,
    RunStatus,
    StepStart,
    ToolCall,
    ToolResult,
    Totals,
    Usage,
    WarningEvent,
)
from agentdeck.engine.log import RunDir
from agentdeck.engine.tools import ToolContext, ToolInputError, ToolOutcome, ToolSpec, check_input


@dataclass
class Limits:
    max_steps: int
    #: Wall-clock seconds for the whole run.
    wall_time_s: float | None = None
    #: Input + output tokens (cache tokens included) for the whole run.
    token_limit: int | None = None
    cost_limit_usd: float | None = None
    #: Seconds one tool call may run.
    tool_time_limit_s: float = 600.0
    #: When this many steps remain, tool results carry a reminder (0: off).
    remind_steps_left: int = 2


@dataclass
class LoopOutcome:
    status: RunStatus
    message: str | None = None
    grade: Grade | None = None
    totals: Totals = field(default_factory=Totals)


def tokens_used(t: Totals) -> int:
    return t.total


class StepLoop:
    def __init__(
        self,
        *,
        agent: Agent,
        bus: EventBus,
        run_dir: RunDir,
        system: str,
        prompt: str,
        tools: list[ToolSpec],
        submit_tool: str,
        limits: Limits,
        sandbox: Any = None,
        stop: threading.Event | None = None,
        reveal: dict[str, Any] | None = None,
    ) -> None:
        self.agent = agent
        self.bus = bus
        self.run_dir = run_dir
        self.system = system
        self.prompt = prompt
        self.tools = {t.name: t for t in tools}
        self.tool_schemas = [t.schema() for t in tools]
        self.submit_tool = submit_tool
        self.limits = limits
        self.sandbox = sandbox
        self.stop = stop or threading.Event()
        #: Values hidden until grading (explicit seeds, data paths): added to the grade.
        self.reveal = dict(reveal or {})
        self.messages: list[dict[str, Any]] = [
            {"role": "user", "content": [{"type": "text", "text": prompt}]}
        ]
        self.totals = Totals()
        self.t0 = time.time()
        self._t0_mono = time.monotonic()

    # -- limits ---------------------------------------------------------------------------

    def _limit_reason(self) -> str | None:
        lim = self.limits
        if lim.wall_time_s is not None and time.time() - self.t0 >= lim.wall_time_s:
            return f"wall time limit of {lim.wall_time_s:g} s reached"
        if lim.token_limit is not None and tokens_used(self.totals) >= lim.token_limit:
            return (
                f"token limit of {lim.token_limit:,} reached "
                f"({tokens_used(self.totals):,} tokens used)"
            )
        if (
            lim.cost_limit_usd is not None
            and self.totals.cost_usd is not None
            and self.totals.cost_usd >= lim.cost_limit_usd
        ):
            return (
                f"cost limit of ${lim.cost_limit_usd:.2f} reached "
                f"(${self.totals.cost_usd:.4f} spent)"
            )
        return None

    def _deadline(self) -> float | None:
        """``time.monotonic()`` of the wall-time limit (None: no limit)."""
        if self.limits.wall_time_s is None:
            return None
        return self._t0_mono + self.limits.wall_time_s

    def _tool_time_limit(self) -> float:
        """The tool's own limit, cut to what is left of the run's wall time, so that
        ``--time-limit`` interrupts a running call instead of waiting for it."""
        limit = self.limits.tool_time_limit_s
        deadline = self._deadline()
        if deadline is not None:
            limit = min(limit, max(0.05, deadline - time.monotonic()))
        return limit

    def _budget_reason(self, usage: Usage) -> str | None:
        """Whether the message being received (its usage so far) breaks a limit."""
        lim = self.limits
        if lim.token_limit is not None and tokens_used(self.totals) + usage.total > lim.token_limit:
            return (
                f"token limit of {lim.token_limit:,} reached mid-response "
                f"({tokens_used(self.totals) + usage.total:,} tokens)"
            )
        if lim.cost_limit_usd is not None and self.totals.cost_usd is not None:
            cost = self.agent_cost(usage)
            if cost is not None and self.totals.cost_usd + cost > lim.cost_limit_usd:
                return (
                    f"cost limit of ${lim.cost_limit_usd:.2f} reached mid-response "
                    f"(${self.totals.cost_usd + cost:.4f})"
                )
        return None

    def agent_cost(self, usage: Usage) -> float | None:
        from agentdeck.engine import pricing

        return pricing.cost_usd(self.agent.model, usage)

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> LoopOutcome:
        max_steps = self.limits.max_steps
        for step in range(1, max_steps + 1):
            if self.stop.is_set():
                return self._outcome("interrupted", "stopped by the user")
            reason = self._limit_reason()
            if reason:
                return self._outcome("limit_exceeded", reason)
            self.bus.emit(StepStart(step=step))
            try:
                grade = self._step(step)
            except AgentError as e:
                if self.stop.is_set():
                    return self._outcome("interrupted", "stopped by the user")
                if e.code == "limit_exceeded":
                    self.bus.emit(
                        WarningEvent(where="agent", message=str(e), step=step, code="limit")
                    )
                    return self._outcome("limit_exceeded", str(e))
                self.bus.emit(ErrorEvent(where="agent", message=str(e), step=step, code=e.code))
                return self._outcome("error", str(e))
            if grade is not None:
                return self._outcome("completed", None, grade)
            if self.stop.is_set():
                return self._outcome("interrupted", "stopped by the user")
        reason = self._limit_reason()
        if reason:
            return self._outcome("limit_exceeded", reason)
        return self._outcome(
            "max_steps_reached", f"all {max_steps} steps used without a graded submission"
        )

    def _outcome(
        self, status: RunStatus, message: str | None, grade: Grade | None = None
    ) -> LoopOutcome:
        self.totals.wall_s = time.time() - self.t0
        return LoopOutcome(status=status, message=message, grade=grade, totals=self.totals)

    def _step(self, step: int) -> Grade | None:
        request = ModelRequest(
            step=step,
            max_steps=self.limits.max_steps,
            system=self.system,
            messages=self.messages,
            tools=self.tool_schemas,
        )
        ctx = AgentContext(
            emit=self.bus.emit,
            step=step,
            stop=self.stop,
            deadline=self._deadline(),
            check_budget=self._budget_reason,
        )
        t0 = time.perf_counter()
        reply = self.agent.respond(request, ctx)
        latency = reply.latency_s if reply.latency_s is not None else time.perf_counter() - t0
        resp = ModelResponse(
            step=step,
            message_id=reply.message_id,
            model=reply.model,
            stop_reason=reply.stop_reason,
            content=reply.content,
            usage=reply.usage,
            latency_s=latency,
            cost_usd=reply.cost_usd,
        )
        self.bus.emit(resp)
        self.totals.add_response(resp.usage, resp.cost_usd)
        self.messages.append({"role": "assistant", "content": reply.content})

        results: list[dict[str, Any]] = []
        grade: Grade | None = None
        for pos, block in enumerate(reply.content, start=1):
            if block.get("type") != "tool_use":
                continue
            reason = None if grade is not None or self.stop.is_set() else self._limit_reason()
            if grade is not None or self.stop.is_set() or reason:
                # the run is over; every tool_use still gets an answer in the transcript
                why = f"not run: the run ended ({reason})" if reason else "not run: the run ended"
                results.append(_tool_result_block(block["id"], {"error": why}, True))
                continue
            outcome = self._call_tool(step, pos, block)
            results.append(
                _tool_result_block(block["id"], outcome.output, outcome.error is not None)
            )
            if outcome.grade is not None:
                grade = outcome.grade

        notes: list[str] = []
        if not results:
            notes.append(self._no_tool_note(reply.stop_reason))
        left = self.limits.max_steps - step
        if grade is None and 0 < left <= self.limits.remind_steps_left:
            notes.append(
                f"[agentdeck] {left} step{'s' if left != 1 else ''} left. Save your result and "
                f"call {self.submit_tool} before the steps run out; an unsubmitted run fails."
            )
        content = results + [{"type": "text", "text": n} for n in notes]
        if content:
            self.messages.append({"role": "user", "content": content})
        return grade

    def _no_tool_note(self, stop_reason: str | None) -> str:
        if stop_reason == "max_tokens":
            return (
                "[agentdeck] Your reply was cut off at the max_tokens limit before a complete "
                "tool call. Continue in smaller pieces."
            )
        return (
            f"[agentdeck] No tool was called. Continue with the tools; the task ends only "
            f"when you call {self.submit_tool}."
        )

    def _call_tool(self, step: int, pos: int, block: dict[str, Any]) -> ToolOutcome:
        name = block.get("name", "")
        call_id = block.get("id", f"call_{step}_{pos}")
        tool_input = block.get("input", {})
        self.bus.emit(
            ToolCall(
                step=step,
                call_id=call_id,
                name=name,
                input=tool_input if isinstance(tool_input, dict) else {},
                block_index=pos,
            )
        )
        t0 = time.perf_counter()
        spec = self.tools.get(name)
        if spec is None:
            msg = f"unknown tool {name!r}; the tools are: {', '.join(self.tools)}"
            outcome = ToolOutcome(output={"error": msg}, error=msg)
        else:
            try:
                check_input(spec, tool_input)
                ctx = ToolContext(
                    run_dir=self.run_dir,
                    sandbox=self.sandbox,
                    emit=self.bus.emit,
                    step=step,
                    call_id=call_id,
                    time_limit_s=self._tool_time_limit(),
                    stop=self.stop,
                )
                outcome = spec.handler(tool_input, ctx)
            except ToolInputError as e:
                outcome = ToolOutcome(output={"error": str(e)}, error=str(e))
            except Exception as e:  # noqa: BLE001 - a bug or infrastructure fault in a handler
                tb = traceback.format_exc(limit=6)
                self.bus.emit(
                    ErrorEvent(
                        where=f"tool:{name}",
                        message=f"{e!r}\n{tb}",
                        recoverable=True,
                        step=step,
                        code="tool_crash",
                    )
                )
                msg = f"the tool {name!r} failed inside agentdeck: {e!r}"
                outcome = ToolOutcome(output={"error": msg}, error=msg)
        self.bus.emit(
            ToolResult(
                step=step,
                call_id=call_id,
                name=name,
                output=outcome.output,
                error=outcome.error,
                duration_s=time.perf_counter() - t0,
                truncated_bytes=outcome.truncated_bytes,
            )
        )
        if outcome.grade is not None:
            if outcome.grade.step is None:
                outcome.grade.step = step
            if self.reveal:
                outcome.grade.details.setdefault("revealed", {}).update(self.reveal)
            self.bus.emit(outcome.grade)
        return outcome


def _tool_result_block(tool_use_id: str, output: Any, is_error: bool) -> dict[str, Any]:
    text = (
        output
        if isinstance(output, str)
        else json.dumps(output, indent=2, ensure_ascii=False, default=str)
    )
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_use_id, "content": text}
    if is_error:
        block["is_error"] = True
    return block


def warn(
    bus: EventBus, where: str, message: str, *, step: int | None = None, code: str | None = None
) -> None:
    bus.emit(WarningEvent(where=where, message=message, step=step, code=code))
