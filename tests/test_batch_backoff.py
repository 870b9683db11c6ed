"""The shared rate-limit backoff: one agent's 429 pauses the others (no sandbox)."""

from __future__ import annotations

import threading
import time

from agentdeck.engine.agents.backoff import ThreadBackoff
from agentdeck.engine.agents.base import AgentContext, ModelRequest
from agentdeck.engine.agents.claude import ClaudeAgent
from agentdeck.engine.batch.backoff import FileBackoff

from mock_anthropic import Fault, MockAnthropic, Reply

TOOLS = [{"name": "run", "description": "x", "input_schema": {"type": "object"}}]


def request() -> ModelRequest:
    return ModelRequest(
        step=1,
        max_steps=3,
        system="",
        messages=[{"role": "user", "content": "go"}],
        tools=TOOLS,
    )


def test_file_backoff_is_shared_and_keeps_the_later_deadline(tmp_path):
    a = FileBackoff(tmp_path / ".backoff", owner="a")
    b = FileBackoff(tmp_path / ".backoff", owner="b")
    assert a.remaining() == 0 and b.state() is None
    a.pause(2.0, "rate limited")
    b.pause(0.5, "overloaded")  # an earlier deadline does not shorten the pause
    assert 1.5 < b.remaining() <= 2.0
    assert b.state()["by"] == "a" and b.state()["reason"] == "rate limited"


def test_a_429_to_one_agent_pauses_the_others():
    first = {"t": None}

    def policy(req):
        if first["t"] is None:
            first["t"] = time.monotonic()
            return Fault.rate_limited(retry_after=1.5)
        return Reply.text("ok")

    shared = ThreadBackoff()
    events: dict[str, list] = {"a": [], "b": []}
    with MockAnthropic(policy=policy, check_growth=False) as api:

        def agent(name: str, after_pause: bool) -> None:
            if after_pause:  # b starts once a has been told to back off, and records it
                deadline = time.monotonic() + 10
                while shared.remaining() == 0 and time.monotonic() < deadline:
                    time.sleep(0.01)
            ag = ClaudeAgent(
                base_url=api.base_url, api_key="test-key", shared_backoff=shared, seed=1
            )
            ctx = AgentContext(emit=events[name].append, step=1)
            ag.respond(request(), ctx)
            ag.close()

        ta = threading.Thread(target=agent, args=("a", False))
        tb = threading.Thread(target=agent, args=("b", True))  # starts while a backs off
        ta.start()
        tb.start()
        ta.join(20)
        tb.join(20)
    api.assert_valid()
    t429 = first["t"]
    later = [r.received_at - t429 for r in api.requests[1:]]
    assert len(later) == 2 and min(later) >= 1.45, later  # b waited for a's pause too
    assert any(getattr(e, "code", None) == "retry" for e in events["a"])
    assert any(getattr(e, "code", None) == "shared_backoff" for e in events["b"])
