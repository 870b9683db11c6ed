"""ClaudeAgent against a local Messages API (tests/mock_anthropic.py) through the real SDK."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from agentdeck.engine import pricing
from agentdeck.engine.agents.base import Agent, AgentContext, AgentError, AgentReply, ModelRequest
from agentdeck.engine.agents.claude import ClaudeAgent
from agentdeck.engine.bus import EventBus
from agentdeck.engine.events import Event, ModelDelta, Usage, WarningEvent

from mock_anthropic import (
    Conversation,
    Fault,
    MockAnthropic,
    Reply,
    text_block,
    tool_use_block,
    validate_body,
    validate_growth,
)

pytestmark = pytest.mark.timeout(60)

TOOLS = [
    {
        "name": "python_expression",
        "description": "Run Python code in the sandbox.",
        "input_schema": {
            "type": "object",
            "properties": {"code": {"type": "string"}},
            "required": ["code"],
        },
    },
    {
        "name": "submit_predictions",
        "description": "Submit a predictions file.",
        "input_schema": {
            "type": "object",
            "properties": {"predictions_file": {"type": "string"}},
            "required": ["predictions_file"],
        },
    },
]
SYSTEM = "You are an ML engineer working in a Python sandbox."
PROMPT = "Find the noisy labels."
USAGE = {
    "input_tokens": 1000,
    "output_tokens": 200,
    "cache_creation_input_tokens": 3000,
    "cache_read_input_tokens": 5000,
}
#: Tiny waits so retry tests take milliseconds.
FAST = {"backoff_base_s": 0.001, "backoff_max_s": 0.01, "seed": 0}


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.bus = EventBus([self.events.append])

    def ctx(self, step: int = 1, stop: threading.Event | None = None) -> AgentContext:
        return AgentContext(emit=self.bus.emit, step=step, stop=stop or threading.Event())

    def warnings(self, code: str | None = None) -> list[WarningEvent]:
        return [
            e
            for e in self.events
            if isinstance(e, WarningEvent) and (code is None or e.code == code)
        ]

    def deltas(self) -> list[ModelDelta]:
        return [e for e in self.events if isinstance(e, ModelDelta)]


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def api() -> Iterator[MockAnthropic]:
    """A mock API; the test fails if the client sent anything the real API would reject."""
    with MockAnthropic() as server:
        yield server
    server.assert_valid()


def first_request(prompt: str = PROMPT) -> ModelRequest:
    return ModelRequest(
        step=1,
        max_steps=20,
        system=SYSTEM,
        messages=[{"role": "user", "content": prompt}],
        tools=TOOLS,
    )


def next_request(
    req: ModelRequest, reply: AgentReply, results: list[dict[str, Any]]
) -> ModelRequest:
    """What the step loop sends next: the assistant message, then the tool results."""
    messages = [
        *req.messages,
        {"role": "assistant", "content": reply.content},
        {"role": "user", "content": results},
    ]
    return ModelRequest(
        step=req.step + 1,
        max_steps=req.max_steps,
        system=req.system,
        messages=messages,
        tools=req.tools,
    )


def agent_for(api: MockAnthropic, **kw: Any) -> ClaudeAgent:
    opts: dict[str, Any] = {
        "base_url": api.base_url,
        "api_key": "test-key",
        "timeout_s": 5.0,
        **FAST,
    }
    opts.update(kw)
    return ClaudeAgent(**opts)


# -- streaming and plain calls ---------------------------------------------------


def test_streaming_emits_deltas_and_returns_the_api_content(
    api: MockAnthropic, rec: Recorder
) -> None:
    tool = tool_use_block("python_expression", {"code": "import numpy as np\nprint(np.arange(3))"})
    api.add(
        Reply(
            blocks=[text_block("Let me look at the data first."), tool], usage=USAGE, chunk_chars=5
        )
    )
    agent = agent_for(api)
    assert isinstance(agent, Agent)
    reply = agent.respond(first_request(), rec.ctx(step=1))

    assert reply.content == [
        {"type": "text", "text": "Let me look at the data first."},
        {"type": "tool_use", "id": tool["id"], "name": "python_expression", "input": tool["input"]},
    ]
    assert reply.stop_reason == "tool_use"
    assert reply.message_id == api.requests[0].reply.message_id
    assert reply.model == "claude-haiku-4-5"
    deltas = rec.deltas()
    assert len(deltas) > 4  # it really streamed in pieces
    assert {d.step for d in deltas} == {1}
    text = "".join(d.text for d in deltas if d.kind == "text" and d.block_index == 1)
    tool_json = "".join(d.text for d in deltas if d.kind == "tool_input" and d.block_index == 2)
    assert text == "Let me look at the data first."
    assert json.loads(tool_json) == tool["input"]
    body = api.requests[0].body
    assert body["stream"] is True
    assert body["model"] == "claude-haiku-4-5" and body["max_tokens"] == 4096
    assert [t["name"] for t in body["tools"]] == ["python_expression", "submit_predictions"]
    assert all(t["input_schema"]["type"] == "object" for t in body["tools"])
    assert "temperature" not in body
    agent.close()


def test_non_streaming_call(api: MockAnthropic, rec: Recorder) -> None:
    api.add(
        Reply.tool(
            "submit_predictions", {"predictions_file": "p.npy"}, text="Submitting.", usage=USAGE
        )
    )
    agent = agent_for(api, stream=False, temperature=0.2, max_tokens=1000)
    reply = agent.respond(first_request(), rec.ctx())
    assert [b["type"] for b in reply.content] == ["text", "tool_use"]
    assert reply.content[1]["input"] == {"predictions_file": "p.npy"}
    assert reply.usage.as_dict() == USAGE
    assert rec.deltas() == []
    body = api.requests[0].body
    assert not body.get("stream")
    assert body["temperature"] == 0.2 and body["max_tokens"] == 1000


# -- usage, cost, pricing --------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False])
def test_usage_and_cost_per_step(api: MockAnthropic, rec: Recorder, stream: bool) -> None:
    api.add(Reply.text("ok", usage=USAGE))
    reply = agent_for(api, stream=stream).respond(first_request(), rec.ctx())
    assert reply.usage.as_dict() == USAGE
    # claude-haiku-4-5: $1 in, $5 out, $1.25 cache write, $0.10 cache read per MTok
    expected = (1000 * 1.0 + 200 * 5.0 + 3000 * 1.25 + 5000 * 0.10) / 1e6
    assert reply.cost_usd == pytest.approx(expected)
    assert reply.cost_usd == pytest.approx(pricing.cost_usd("claude-haiku-4-5", Usage(**USAGE)))
    assert reply.latency_s is not None and reply.latency_s >= 0
    assert rec.warnings() == []


def test_missing_cache_counts_are_zero(api: MockAnthropic, rec: Recorder) -> None:
    api.add(
        Reply.text(
            "ok",
            usage={
                "input_tokens": 10,
                "output_tokens": 3,
                "cache_creation_input_tokens": None,
                "cache_read_input_tokens": None,
            },
        )
    )
    reply = agent_for(api, stream=False).respond(first_request(), rec.ctx())
    assert reply.usage.as_dict() == {
        "input_tokens": 10,
        "output_tokens": 3,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def test_unknown_model_has_no_cost_and_one_warning(api: MockAnthropic, rec: Recorder) -> None:
    api.add(Reply.text("one", usage=USAGE), Reply.text("two", usage=USAGE))
    agent = agent_for(api, model="claude-imaginary-9")
    r1 = agent.respond(first_request("a"), rec.ctx(step=1))
    api.new_conversation()
    r2 = agent.respond(first_request("b"), rec.ctx(step=2))
    assert r1.cost_usd is None and r2.cost_usd is None
    assert r1.usage.as_dict() == USAGE
    warnings = rec.warnings()
    assert len(warnings) == 1
    assert warnings[0].where == "pricing" and warnings[0].recoverable
    assert "claude-imaginary-9" in warnings[0].message


@pytest.mark.parametrize(
    "model, canonical",
    [
        ("claude-haiku-4-5", "claude-haiku-4-5"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-sonnet-4-0", "claude-sonnet-4"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("claude-opus-4-5-20251101", "claude-opus-4-5"),
        ("claude-3-7-sonnet-latest", "claude-sonnet-3-7"),
        ("claude-3-5-haiku-20241022", "claude-haiku-3-5"),
        ("claude-3-haiku-20240307", "claude-haiku-3"),
        ("claude-4-opus-20250514", "claude-opus-4"),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
        ("claude-opus-4-1@20250805", "claude-opus-4-1"),
        ("claude-sonnet-4-5[1m]", "claude-sonnet-4-5"),
    ],
)
def test_model_ids_resolve_to_one_row(model: str, canonical: str) -> None:
    assert pricing.canonical_model(model) == canonical
    assert pricing.price_for(model) is pricing.PRICES[canonical]


def test_price_table() -> None:
    assert pricing.price_for("claude-opus-4-1").input == 15.0
    assert pricing.price_for("claude-opus-4-5").output == 25.0
    assert pricing.price_for("claude-sonnet-4-5").cache_read == 0.30
    assert pricing.price_for("claude-haiku-4-5").cache_write == 1.25
    for name, p in pricing.PRICES.items():
        if name != "claude-haiku-3":  # published at $0.30, not 1.25 x $0.25
            assert p.cache_write == pytest.approx(1.25 * p.input), name
        assert 0 < p.cache_read < p.input < p.output, name
    assert pricing.price_for("gpt-4o") is None
    assert pricing.price_for(None) is None
    assert pricing.cost_usd("not-a-model", Usage(**USAGE)) is None
    assert pricing.PRICES_SOURCE.startswith("https://")


def test_cache_savings() -> None:
    usage = Usage(input_tokens=100, output_tokens=10, cache_read_input_tokens=10_000)
    # 10k tokens read at $0.10 instead of $1.00 per MTok on Haiku 4.5
    assert pricing.cache_savings_usd("claude-haiku-4-5", usage) == pytest.approx(10_000 * 0.9 / 1e6)
    writes = Usage(input_tokens=100, output_tokens=10, cache_creation_input_tokens=1000)
    assert pricing.cache_savings_usd("claude-haiku-4-5", writes) == pytest.approx(
        -1000 * 0.25 / 1e6
    )
    assert pricing.cache_savings_usd("nope", usage) is None


# -- prompt caching --------------------------------------------------------------


def _breakpoints(value: Any) -> list[Any]:
    found: list[Any] = []

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            if "cache_control" in v:
                found.append(v["cache_control"])
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(value)
    return found


def test_cache_control_on_tools_system_and_last_user_block(
    api: MockAnthropic, rec: Recorder
) -> None:
    api.add(Reply.tool("python_expression", {"code": "1"}), Reply.text("done"))
    agent = agent_for(api)
    req = first_request()
    before = copy.deepcopy(req)
    r1 = agent.respond(req, rec.ctx(step=1))
    assert req == before  # the loop's conversation is not changed
    req2 = next_request(
        req, r1, [{"type": "tool_result", "tool_use_id": r1.content[0]["id"], "content": "1"}]
    )
    agent.respond(req2, rec.ctx(step=2))

    for body in (api.requests[0].body, api.requests[1].body):
        assert body["tools"][-1]["cache_control"] == {"type": "ephemeral"}
        assert "cache_control" not in body["tools"][0]
        assert body["system"] == [
            {"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}
        ]
        assert body["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
        assert len(_breakpoints(body)) == 3
    # the earlier user message is no longer a breakpoint in step 2
    assert _breakpoints(api.requests[1].body["messages"][0]) == []


def test_cache_off_sends_no_cache_control(api: MockAnthropic, rec: Recorder) -> None:
    api.add(Reply.text("done"))
    req = first_request()
    req.messages[0] = {
        "role": "user",
        "content": [{"type": "text", "text": PROMPT, "cache_control": {"type": "ephemeral"}}],
    }
    agent_for(api, cache=False).respond(req, rec.ctx())
    body = api.requests[0].body
    assert "cache_control" not in json.dumps(body)
    assert body["system"] == SYSTEM


# -- a conversation the way the loop sends it ------------------------------------


def test_policy_plays_a_multi_step_run_with_tool_errors(rec: Recorder) -> None:
    """A policy reads the last tool result and picks the next call; results (errors too) arrive as sent."""

    def policy(request: Any) -> Reply:
        results = request.tool_results()
        if not results:
            return Reply.tool("python_expression", {"code": "x = 1/0"}, text="Try something.")
        if results[0].get("is_error"):
            return Reply.tool("python_expression", {"code": "x = 1"}, text="Fix it.")
        return Reply.tool("submit_predictions", {"predictions_file": "predictions.npy"})

    with MockAnthropic(policy=policy) as api:
        agent = agent_for(api)
        req = first_request()
        seen_errors = []
        for step in range(1, 4):
            req.step = step
            reply = agent.respond(req, rec.ctx(step=step))
            call = next(b for b in reply.content if b["type"] == "tool_use")
            failed = "1/0" in call["input"].get("code", "")
            result = {
                "type": "tool_result",
                "tool_use_id": call["id"],
                "content": "ZeroDivisionError: division by zero" if failed else "ok",
            }
            if failed:
                result["is_error"] = True
            seen_errors.append(failed)
            req = next_request(req, reply, [result])
        assert call["name"] == "submit_predictions"
    api.assert_valid()
    assert seen_errors == [True, False, False]
    second = api.requests[1]
    assert second.tool_results()[0]["is_error"] is True
    assert second.tool_results()[0]["tool_use_id"] == api.requests[0].reply.blocks[1]["id"]
    assert [r.step for r in api.requests] == [1, 2, 3]


def test_server_rejects_a_bad_conversation(rec: Recorder) -> None:
    """The mock's checks can fail: a tool_result for an unknown tool_use is a 400 and a violation."""
    with MockAnthropic([Reply.text("never sent")]) as api:
        agent = agent_for(api)
        req = first_request()
        req.messages = [
            {"role": "user", "content": PROMPT},
            {
                "role": "assistant",
                "content": [tool_use_block("python_expression", {"code": "1"}, id="toolu_a")],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_b", "content": "1"}],
            },
        ]
        with pytest.raises(AgentError) as info:
            agent.respond(req, rec.ctx())
    assert info.value.code == "bad_request"
    assert "toolu_b" in str(info.value)
    assert len(api.requests) == 1  # a 400 is not retried
    with pytest.raises(AssertionError, match="toolu_b"):
        api.assert_valid()


@pytest.mark.parametrize(
    "messages, expected",
    [
        ([{"role": "assistant", "content": "hi"}], "roles must alternate"),
        (
            [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
            "roles must alternate",
        ),
        (
            [
                {"role": "user", "content": "a"},
                {
                    "role": "assistant",
                    "content": [tool_use_block("python_expression", {}, id="t1")],
                },
                {
                    "role": "user",
                    "content": [
                        text_block("note"),
                        {"type": "tool_result", "tool_use_id": "t1", "content": "x"},
                    ],
                },
            ],
            "must come before",
        ),
        (
            [
                {"role": "user", "content": "a"},
                {
                    "role": "assistant",
                    "content": [tool_use_block("python_expression", {}, id="t1")],
                },
                {"role": "user", "content": "no results"},
            ],
            "without tool_result",
        ),
        (
            [
                {"role": "user", "content": "a"},
                {
                    "role": "assistant",
                    "content": [tool_use_block("python_expression", {}, id="t1")],
                },
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "t1", "is_error": "yes"}],
                },
            ],
            "is_error",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [
                        text_block(str(i)) | {"cache_control": {"type": "ephemeral"}}
                        for i in range(5)
                    ],
                }
            ],
            "at most 4",
        ),
    ],
)
def test_validator_catches(messages: list[dict[str, Any]], expected: str) -> None:
    body = {"model": "m", "max_tokens": 10, "messages": messages, "tools": TOOLS}
    assert any(expected in v for v in validate_body(body)), validate_body(body)


def test_validator_needs_tools_and_growth() -> None:
    body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "a"}]}
    assert any("tools" in v for v in validate_body(body))
    bad_tools = dict(body, tools=[{"name": "x", "input_schema": {"type": "string"}}])
    assert any("input_schema" in v for v in validate_body(bad_tools))
    prev = Conversation(
        messages=[{"role": "user", "content": [text_block("a")]}],
        system=None,
        tools=None,
        reply=Reply.text("r"),
    )
    jumped = {
        "messages": [
            {"role": "user", "content": "other"},
            {"role": "assistant", "content": "r"},
            {"role": "user", "content": "b"},
        ]
    }
    assert any("does not extend" in v for v in validate_growth(jumped, prev))
    invented = {
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "made up"},
            {"role": "user", "content": "b"},
        ]
    }
    assert any("not a block of the reply" in v for v in validate_growth(invented, prev))
    ok = {
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "r"},
            {"role": "user", "content": "b"},
        ]
    }
    assert validate_growth(ok, prev) == []


# -- faults ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault, reason",
    [
        (Fault.overloaded(), "overloaded (HTTP 529"),
        (Fault.server_error(500), "server error (HTTP 500"),
        (Fault.server_error(503), "server error (HTTP 503"),
        (Fault.rate_limited(retry_after=None), "rate limited (HTTP 429"),
        (Fault.hang(seconds=30), "timed out"),
        (Fault.cut_stream(after_events=5), "stream broke"),
        (Fault.stream_error(), "error event (overloaded_error"),
    ],
    ids=["529", "500", "503", "429", "hang", "cut", "stream-error"],
)
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "plain"])
def test_fault_is_retried_with_one_warning(
    api: MockAnthropic, rec: Recorder, fault: Fault, reason: str, stream: bool
) -> None:
    if fault.kind == "stream_error" and not stream:
        reason = "overloaded (HTTP 529"  # without streaming the same overload is a 529
    if fault.kind == "cut" and not stream:
        reason = "connection to"  # the SDK reads a plain body whole: a cut is a connection error
    api.add(fault, Reply.text("recovered", usage=USAGE))
    agent = agent_for(api, stream=stream, timeout_s=1.0 if fault.kind == "hang" else 5.0)
    reply = agent.respond(first_request(), rec.ctx(step=3))
    assert reply.content == [{"type": "text", "text": "recovered"}]
    assert reply.usage.as_dict() == USAGE
    warnings = rec.warnings()
    assert len(warnings) == 1, [w.message for w in warnings]
    w = warnings[0]
    assert (w.where, w.code, w.recoverable, w.step) == ("model", "retry", True, 3)
    assert reason in w.message and "attempt 1 of 6" in w.message and "waiting" in w.message
    assert len(api.requests) == 2
    if stream:  # after the retry warning, the step's text streams again from the start
        after = rec.events[rec.events.index(w) + 1 :]
        assert "".join(d.text for d in after if isinstance(d, ModelDelta)) == "recovered"


def test_retry_after_is_honoured(api: MockAnthropic, rec: Recorder) -> None:
    api.add(Fault.rate_limited(retry_after=0.3), Reply.text("ok"))
    agent_for(api, backoff_base_s=0.0, backoff_max_s=0.0).respond(first_request(), rec.ctx())
    (w,) = rec.warnings("retry")
    assert "waiting 0.30 s" in w.message
    gap = api.requests[1].received_at - api.requests[0].received_at
    assert gap >= 0.3


def test_backoff_grows_and_is_capped() -> None:
    agent = ClaudeAgent(
        api_key="k", base_url="http://127.0.0.1:9", backoff_base_s=1.0, backoff_max_s=5.0, seed=1
    )
    waits = [agent._wait_s(k, None) for k in range(1, 7)]
    caps = [1, 2, 4, 5, 5, 5]
    assert all(c / 2 <= w <= c for w, c in zip(waits, caps, strict=True)), waits
    assert agent._wait_s(1, 2.5) == 2.5
    assert agent._wait_s(1, 10_000) == agent.retry_after_max_s


def test_retries_exhausted(api: MockAnthropic, rec: Recorder) -> None:
    api.add(Fault.overloaded(), Fault.overloaded(), Fault.overloaded())
    with pytest.raises(AgentError) as info:
        agent_for(api, max_retries=2).respond(first_request(), rec.ctx())
    err = info.value
    assert err.code == "retries_exhausted"
    assert "3 attempts" in str(err) and "2 retries" in str(err) and "overloaded" in str(err)
    assert len(rec.warnings("retry")) == 2
    assert len(api.requests) == 3


def test_connection_refused_is_retried(rec: Recorder) -> None:
    with MockAnthropic() as gone:
        url = gone.base_url
    agent = ClaudeAgent(base_url=url, api_key="k", max_retries=1, timeout_s=2.0, **FAST)
    with pytest.raises(AgentError) as info:
        agent.respond(first_request(), rec.ctx())
    assert info.value.code == "retries_exhausted"
    assert "could not connect" in str(info.value)
    (w,) = rec.warnings("retry")
    assert "could not connect" in w.message


@pytest.mark.parametrize("fault", [Fault.unauthorized(), Fault.forbidden()], ids=["401", "403"])
def test_rejected_key_is_not_retried(api: MockAnthropic, rec: Recorder, fault: Fault) -> None:
    api.add(fault)
    with pytest.raises(AgentError) as info:
        agent_for(api).respond(first_request(), rec.ctx())
    msg = str(info.value)
    assert info.value.code == "auth"
    assert (
        "rejected the API key" in msg and "ANTHROPIC_API_KEY" in msg and "--agent scripted" in msg
    )
    assert len(api.requests) == 1 and rec.warnings() == []


def test_bad_request_shows_the_api_message(api: MockAnthropic, rec: Recorder) -> None:
    api.add(Fault.bad_request("prompt is too long: 210000 tokens > 200000 maximum"))
    with pytest.raises(AgentError) as info:
        agent_for(api).respond(first_request(), rec.ctx())
    assert info.value.code == "bad_request"
    assert "prompt is too long: 210000 tokens > 200000 maximum" in str(info.value)
    assert len(api.requests) == 1


def test_not_found_names_the_model(api: MockAnthropic, rec: Recorder) -> None:
    api.add(Fault.not_found("model: claude-nope"))
    with pytest.raises(AgentError) as info:
        agent_for(api, model="claude-nope").respond(first_request(), rec.ctx())
    assert info.value.code == "not_found" and "--model claude-nope" in str(info.value)


ANTHROPIC_ENV = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_PROFILE",
    "ANTHROPIC_CONFIG_DIR",
    "ANTHROPIC_IDENTITY_TOKEN",
    "ANTHROPIC_IDENTITY_TOKEN_FILE",
    "ANTHROPIC_FEDERATION_RULE_ID",
    "ANTHROPIC_ORGANIZATION_ID",
    "ANTHROPIC_BASE_URL",
)


def test_no_key_at_all(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for var in ANTHROPIC_ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    with pytest.raises(AgentError) as info:
        ClaudeAgent()
    msg = str(info.value)
    assert info.value.code == "no_api_key"
    assert "ANTHROPIC_API_KEY is not set" in msg and "--agent scripted" in msg
    assert "\n" not in msg


def test_key_and_base_url_from_the_environment(
    api: MockAnthropic, rec: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in api.env().items():
        monkeypatch.setenv(k, v)
    api.add(Reply.text("hello"))
    reply = ClaudeAgent(**FAST).respond(first_request(), rec.ctx())
    assert reply.content == [{"type": "text", "text": "hello"}]
    headers = api.requests[0].headers
    assert (
        headers.get("x-api-key") == "test-key" or headers.get("authorization") == "Bearer test-key"
    )


def test_bad_settings_are_refused() -> None:
    with pytest.raises(AgentError, match="--max-tokens"):
        ClaudeAgent(api_key="k", max_tokens=0)
    with pytest.raises(AgentError, match="--temperature"):
        ClaudeAgent(api_key="k", temperature=1.5)


# -- max_tokens --------------------------------------------------------------------


def test_max_tokens_stop_is_returned(api: MockAnthropic, rec: Recorder) -> None:
    api.add(Reply.text("The answer is", stop_reason="max_tokens"))
    reply = agent_for(api).respond(first_request(), rec.ctx())
    assert reply.stop_reason == "max_tokens"
    assert reply.content == [{"type": "text", "text": "The answer is"}]
    assert rec.warnings() == []


def test_tool_use_cut_by_max_tokens_is_dropped(api: MockAnthropic, rec: Recorder) -> None:
    cut = tool_use_block("python_expression", {}, id="toolu_cut")
    cut["partial_json"] = '{"code": "import numpy as np\\nX = np.lo'
    api.add(
        Reply(blocks=[text_block("Loading the data."), cut], stop_reason="max_tokens"),
        Reply.text("continuing"),
    )
    agent = agent_for(api)
    req = first_request()
    reply = agent.respond(req, rec.ctx(step=1))
    assert reply.stop_reason == "max_tokens"
    assert reply.content == [{"type": "text", "text": "Loading the data."}]
    (w,) = rec.warnings("incomplete_tool_use")
    assert "toolu_cut" in w.message and w.where == "model"
    # the conversation can go on with what was returned
    req2 = next_request(req, reply, [text_block("Your reply was cut off; continue.")])
    assert agent.respond(req2, rec.ctx(step=2)).content == [{"type": "text", "text": "continuing"}]


def test_only_a_cut_tool_use_leaves_a_note(api: MockAnthropic, rec: Recorder) -> None:
    cut = tool_use_block("python_expression", {}, id="toolu_cut")
    cut["partial_json"] = '{"co'
    api.add(Reply(blocks=[cut], stop_reason="max_tokens"), Reply.text("again"))
    agent = agent_for(api)
    req = first_request()
    reply = agent.respond(req, rec.ctx())
    assert [b["type"] for b in reply.content] == ["text"]
    assert "cut off by max_tokens" in reply.content[0]["text"]
    req2 = next_request(req, reply, [text_block("continue")])
    agent.respond(req2, rec.ctx(step=2))


def test_cut_tool_use_without_streaming(api: MockAnthropic, rec: Recorder) -> None:
    api.add(
        Reply(
            blocks=[text_block("Hmm."), tool_use_block("python_expression", {})],
            stop_reason="max_tokens",
        )
    )
    reply = agent_for(api, stream=False).respond(first_request(), rec.ctx())
    assert reply.content == [{"type": "text", "text": "Hmm."}]
    assert len(rec.warnings("incomplete_tool_use")) == 1


def test_complete_tool_use_at_max_tokens_is_kept(api: MockAnthropic, rec: Recorder) -> None:
    api.add(Reply.tool("python_expression", {"code": "1"}, stop_reason="max_tokens"))
    reply = agent_for(api).respond(first_request(), rec.ctx())
    assert [b["type"] for b in reply.content] == ["tool_use"]
    assert rec.warnings() == []


# -- Ctrl-C ------------------------------------------------------------------------


def _stop_after(seconds: float) -> threading.Event:
    stop = threading.Event()
    threading.Timer(seconds, stop.set).start()
    return stop


def test_stop_during_a_slow_call(api: MockAnthropic, rec: Recorder) -> None:
    api.add(Fault.hang(seconds=30))
    agent = agent_for(api, timeout_s=30)
    t0 = time.monotonic()
    with pytest.raises(AgentError) as info:
        agent.respond(first_request(), rec.ctx(stop=_stop_after(0.2)))
    assert info.value.code == "interrupted"
    assert time.monotonic() - t0 < 10  # well before the 30 s hang ends


def test_stop_during_backoff(api: MockAnthropic, rec: Recorder) -> None:
    api.add(Fault.rate_limited(retry_after=30))
    agent = agent_for(api)
    t0 = time.monotonic()
    with pytest.raises(AgentError) as info:
        agent.respond(first_request(), rec.ctx(stop=_stop_after(0.2)))
    assert info.value.code == "interrupted"
    assert time.monotonic() - t0 < 10
    assert len(rec.warnings("retry")) == 1 and len(api.requests) == 1


def test_stop_already_set(api: MockAnthropic, rec: Recorder) -> None:
    stop = threading.Event()
    stop.set()
    with pytest.raises(AgentError, match="Interrupted"):
        agent_for(api).respond(first_request(), rec.ctx(stop=stop))
    assert api.requests == []
