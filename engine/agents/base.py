"""The agent interface: given the conversation so far, return the next assistant message.

The conversation is in the Anthropic Messages API shape (``system``, ``messages``
with text / tool_use / tool_result blocks, ``tools``), whatever the agent is,
so a scripted policy, a replayed log and Claude are interchangeable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from agentdeck.engine.events import Event, Usage


@dataclass
class ModelRequest:
    step: int
    max_steps: int
    system: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]


@dataclass
class AgentReply:
    """One assistant message, as the Messages API returns it."""

    message_id: str
    content: list[dict[str, Any]]
    stop_reason: str | None
    usage: Usage = field(default_factory=Usage)
    model: str | None = None
    latency_s: float | None = None
    cost_usd: float | None = None


class AgentError(Exception):
    """The agent cannot produce a message. The run ends with status ``error``.

    ``str()`` is shown to the user as is: say what failed and what to do.
    """

    def __init__(self, message: str, *, code: str = "agent_error") -> None:
        super().__init__(message)
        self.code = code


@dataclass
class AgentContext:
    """What an agent may use while answering: the bus (for live deltas and
    retry warnings) and the run's stop flag (Ctrl-C / quit)."""

    emit: Callable[[Event], Event]
    step: int
    stop: threading.Event = field(default_factory=threading.Event)
    #: ``time.monotonic()`` when the run's wall-time limit falls (None: no limit); an
    #: agent past it raises ``AgentError(code="limit_exceeded")``.
    deadline: float | None = None
    #: Called with the usage of the message being received as soon as the agent knows
    #: it (mid-stream); a returned reason ends the call: ``AgentError(code="limit_exceeded")``.
    check_budget: Callable[[Usage], str | None] | None = None

    def over_limit(self, usage: Usage | None = None) -> str | None:
        """Why this call must stop now (a limit reached), or None."""
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return "wall time limit reached while waiting for the model"
        if usage is not None and self.check_budget is not None:
            return self.check_budget(usage)
        return None


@runtime_checkable
class Agent(Protocol):
    #: "claude", "scripted", "replay", ...
    name: str
    #: model id for the log and the price table (None for offline agents)
    model: str | None

    def respond(self, request: ModelRequest, ctx: AgentContext) -> AgentReply: ...

    def close(self) -> None: ...
