"""The step loop with in-process tools and scripted agents (no sandbox, no network)."""

from __future__ import annotations

import threading

import pytest

from agentdeck.engine.agents.base import AgentError, AgentReply
from agentdeck.engine.bus import EventBus
from agentdeck.engine.events import (
    ErrorEvent,
    Grade,
    ModelResponse,
    StepStart,
    ToolCall,
    ToolResult,
)
from agentdeck.engine.log import RunDir
from agentdeck.engine.loop import Limits, StepLoop
from agentdeck.engine.tools import ToolOutcome, ToolSpec


class FakeAgent:
    """Answers from a list of content lists; records every request it saw."""

    name = "fake"
    model = None

    def __init__(self, turns, usage=None, cost=0.0):
        self.turns = list(turns)
        self.requests = []
        self.usage = usage or {"input_tokens": 10, "output_tokens": 5}
        self.cost = cost

    def respond(self, request, ctx):
        self.requests.append([dict(m) for m in request.messages])
        i = len(self.requests) - 1
        turn = self.turns[i] if i < len(self.turns) else self.turns[-1]
        if isinstance(turn, Exception):
            raise turn
        content = [dict(b) for b in turn]
        for k, b in enumerate(content):
            if b["type"] == "tool_use":
                b.setdefault("id", f"toolu_{request.step}_{k}")
        stop = "tool_use" if any(b["type"] == "tool_use" for b in content) else "end_turn"
        return AgentReply(
            message_id=f"msg_{request.step}",
            content=content,
            stop_reason=stop,
            usage=dict(self.usage),
            cost_usd=self.cost,
        )

    def close(self):
        pass


def use(name, **inp):
    return {"type": "tool_use", "name": name, "input": inp}


def text(t):
    return {"type": "text", "text": t}


def make_tools(calls):
    def echo(inp, ctx):
        calls.append(inp)
        return ToolOutcome(output={"result": inp.get("x"), "error": None})

    def boom(inp, ctx):
        raise RuntimeError("handler bug")

    def submit(inp, ctx):
        if inp["ok"] != "yes":
            return ToolOutcome(output={"error": "bad submission"}, error="bad submission")
        return ToolOutcome(
            output={"message": "graded"}, grade=Grade(metrics={"f1": 1.0}, passed=True)
        )

    obj = {"type": "object"}
    return [
        ToolSpec("echo", "echo x", {**obj, "properties": {"x": {"type": "string"}}}, echo),
        ToolSpec("boom", "always fails", obj, boom),
        ToolSpec(
            "submit",
            "submit",
            {**obj, "properties": {"ok": {"type": "string"}}, "required": ["ok"]},
            submit,
        ),
    ]


def run_loop(tmp_path, agent, *, max_steps=5, stop=None, **limits):
    events = []
    bus = EventBus([events.append])
    calls = []
    loop = StepLoop(
        agent=agent,
        bus=bus,
        run_dir=RunDir.create(tmp_path, "r"),
        system="sys",
        prompt="do it",
        tools=make_tools(calls),
        submit_tool="submit",
        limits=Limits(max_steps=max_steps, **limits),
        stop=stop,
    )
    outcome = loop.run()
    return outcome, events, loop


def test_submit_completes_and_grade_follows_the_result(tmp_path):
    agent = FakeAgent([[text("hi"), use("echo", x="a")], [use("submit", ok="yes")]])
    outcome, events, _loop = run_loop(tmp_path, agent)
    assert outcome.status == "completed" and outcome.grade.passed
    types = [e.TYPE for e in events]
    assert types == [
        "step_start",
        "model_response",
        "tool_call",
        "tool_result",
        "step_start",
        "model_response",
        "tool_call",
        "tool_result",
        "grade",
    ]
    call = next(e for e in events if isinstance(e, ToolCall))
    assert call.block_index == 2  # after the text block, as the seed counts
    assert outcome.totals.steps == 2 and outcome.totals.input_tokens == 20


def test_conversation_shape(tmp_path):
    agent = FakeAgent([[use("echo", x="a"), use("echo", x="b")], [use("submit", ok="yes")]])
    _, _, _loop = run_loop(tmp_path, agent)
    msgs = agent.requests[1]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"]
    ids = [b["id"] for b in msgs[1]["content"]]
    results = msgs[2]["content"]
    assert [b["tool_use_id"] for b in results] == ids
    assert all(b["type"] == "tool_result" and "is_error" not in b for b in results)


def test_max_steps_and_reminders(tmp_path):
    agent = FakeAgent([[use("echo", x="a")]])
    outcome, events, loop = run_loop(tmp_path, agent, max_steps=4, remind_steps_left=2)
    assert outcome.status == "max_steps_reached"
    assert sum(isinstance(e, StepStart) for e in events) == 4
    notes = [
        b["text"]
        for m in loop.messages
        if m["role"] == "user"
        for b in m["content"]
        if b["type"] == "text" and "[agentdeck]" in b["text"]
    ]
    assert notes == [
        "[agentdeck] 2 steps left. Save your result and call submit before the steps run out; "
        "an unsubmitted run fails.",
        "[agentdeck] 1 step left. Save your result and call submit before the steps run out; "
        "an unsubmitted run fails.",
    ]


def test_reminders_off(tmp_path):
    agent = FakeAgent([[use("echo", x="a")]])
    _, _, loop = run_loop(tmp_path, agent, max_steps=3, remind_steps_left=0)
    assert not any("[agentdeck]" in str(m["content"]) for m in loop.messages)


def test_tool_errors_go_back_to_the_agent_and_the_run_goes_on(tmp_path):
    agent = FakeAgent(
        [
            [use("nope")],
            [use("boom")],
            [use("submit", ok="no")],
            [use("submit")],
            [use("echo", x=3)],
            [use("submit", ok="yes")],
        ]
    )
    outcome, events, loop = run_loop(tmp_path, agent, max_steps=6)
    assert outcome.status == "completed"
    results = [e for e in events if isinstance(e, ToolResult)]
    assert "unknown tool 'nope'; the tools are: echo, boom, submit" in results[0].error
    assert "failed inside agentdeck" in results[1].error
    assert results[2].error == "bad submission"
    assert "missing required input 'ok'" in results[3].error
    assert "must be of type string" in results[4].error
    crash = [e for e in events if isinstance(e, ErrorEvent)]
    assert len(crash) == 1 and crash[0].code == "tool_crash" and crash[0].recoverable
    errs = [
        b for m in loop.messages if m["role"] == "user" for b in m["content"] if b.get("is_error")
    ]
    assert len(errs) == 5


def test_text_only_reply_gets_a_nudge(tmp_path):
    agent = FakeAgent([[text("I think I am done")], [use("submit", ok="yes")]])
    outcome, _, loop = run_loop(tmp_path, agent)
    assert outcome.status == "completed"
    assert "No tool was called" in loop.messages[2]["content"][0]["text"]


def test_agent_error_ends_with_error(tmp_path):
    agent = FakeAgent([[use("echo", x="a")], AgentError("the API said no", code="api")])
    outcome, events, _ = run_loop(tmp_path, agent)
    assert outcome.status == "error" and outcome.message == "the API said no"
    assert isinstance(events[-1], ErrorEvent) and events[-1].code == "api"


@pytest.mark.parametrize(
    ("limits", "match"),
    [
        ({"token_limit": 40}, "token limit of 40 reached"),
        ({"cost_limit_usd": 0.25}, "cost limit of $0.25 reached"),
        ({"wall_time_s": 1e-9}, "wall time limit"),
    ],
)
def test_limits(tmp_path, limits, match):
    agent = FakeAgent([[use("echo", x="a")]], cost=0.1)
    outcome, events, _ = run_loop(tmp_path, agent, max_steps=10, **limits)
    assert outcome.status == "limit_exceeded"
    assert match in outcome.message
    assert sum(isinstance(e, ModelResponse) for e in events) < 10


def test_stop_request_interrupts(tmp_path):
    stop = threading.Event()

    class StopAfterTwo(FakeAgent):
        def respond(self, request, ctx):
            if request.step == 2:
                stop.set()
            return super().respond(request, ctx)

    outcome, events, _ = run_loop(tmp_path, StopAfterTwo([[use("echo", x="a")]]), stop=stop)
    assert outcome.status == "interrupted"
    assert sum(isinstance(e, StepStart) for e in events) == 2
    # the tool of the stopped step is answered in the transcript but not run
    assert [e.TYPE for e in events].count("tool_call") == 1
