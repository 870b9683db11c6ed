"""Agents by name: ``scripted`` (offline reference policy), ``claude`` (Anthropic API),
``replay:LOG`` (re-issue a log's tool calls) and ``replay:LOG@N`` (then hand over)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agentdeck.engine.agents.base import Agent, AgentContext, AgentError, AgentReply, ModelRequest

if TYPE_CHECKING:
    from agentdeck.engine.task import TaskInstance

AGENTS = ("scripted", "claude", "replay:LOG[@N]")

NO_KEY = (
    "ANTHROPIC_API_KEY is not set: export ANTHROPIC_API_KEY=sk-ant-... (from "
    "console.anthropic.com) to run Claude, or use --agent scripted to run offline"
)


def _is_placeholder(key: str) -> bool:
    """The README's ``sk-ant-...`` and the like, pasted as they are."""
    k = key.strip()
    return (
        k.endswith(("...", "…"))
        or any(c in k for c in "<>{} ")
        or k.lower() in ("sk-ant-", "your-api-key", "your_api_key", "changeme", "xxx", "key")
        or (k.startswith("sk-ant-") and len(k) < 20)
    )


def make_agent_factory(
    spec: str, *, model: str | None = None, **options: Any
) -> Callable[[TaskInstance], Agent]:
    """Check an agent spec now; build the agent once the task instance exists.

    Raises ``AgentError`` for an unknown agent or a missing API key.
    """
    if spec == "scripted":
        from agentdeck.engine.agents.scripted import ScriptedAgent

        return lambda inst: ScriptedAgent(inst.reference_policy)
    if spec == "claude":
        key = options.get("api_key") or os.environ.get("ANTHROPIC_API_KEY")
        if not (key or os.environ.get("ANTHROPIC_AUTH_TOKEN")):
            raise AgentError(NO_KEY, code="no_api_key")
        if key and _is_placeholder(key):
            raise AgentError(
                f"ANTHROPIC_API_KEY is a placeholder ({key!r}), not a key: export your own "
                "(console.anthropic.com/settings/keys), or use --agent scripted to run offline",
                code="no_api_key",
            )
        from agentdeck.engine.agents.claude import ClaudeAgent

        kwargs = {k: v for k, v in options.items() if v is not None and k != "fork_agent"}
        return lambda inst: ClaudeAgent(model=model or "claude-haiku-4-5", **kwargs)
    if spec.startswith("replay:"):
        from agentdeck.engine.agents.replay import make_replay_factory

        return make_replay_factory(spec[len("replay:") :], model=model, **options)
    raise AgentError(f"unknown agent {spec!r}; the agents are: {', '.join(AGENTS)}")


__all__ = [
    "AGENTS",
    "Agent",
    "AgentContext",
    "AgentError",
    "AgentReply",
    "ModelRequest",
    "make_agent_factory",
]
