"""A local stand-in for the Anthropic Messages API, for tests.

``MockAnthropic`` is an HTTP server on 127.0.0.1 (a free port, one thread per
connection) that speaks ``POST /v1/messages`` like the real API: a JSON
``Message`` when the request has no ``stream``, and with ``"stream": true`` the
server-sent-event sequence ``message_start``, ``ping``, then per content block
``content_block_start`` / ``content_block_delta`` (``text_delta`` or
``input_json_delta``) / ``content_block_stop``, then ``message_delta`` (stop
reason and cumulative usage) and ``message_stop``, over chunked HTTP/1.1.
Errors use the API's body ``{"type": "error", "error": {"type", "message"}}``.
Point the real ``anthropic`` SDK at it with ``base_url=api.base_url`` and any
API key (or set ``api.env()`` in the environment, e.g. for a CLI run).

It plays a *script*: a list of turns consumed one per request, in order.

- ``Reply``: an assistant message. ``Reply.text("...")``,
  ``Reply.tool("name", {...}, text="...")`` or ``Reply(blocks=[...])`` with
  ``text_block`` / ``tool_use_block``; ``stop_reason`` (default ``tool_use`` if
  there is a tool_use block, else ``end_turn``) and ``usage`` (the four counts,
  cache tokens included; defaults are rough estimates).
- ``Fault``: ``Fault.rate_limited(retry_after=0.1)`` (429 with ``retry-after``),
  ``Fault.overloaded()`` (529), ``Fault.server_error(500)``,
  ``Fault.hang(seconds)`` (no answer; the client times out),
  ``Fault.cut_stream(reply, after_events=4)`` (the response begins, then the
  connection is closed mid-message), ``Fault.stream_error()`` (an ``error``
  event mid-stream), ``Fault.unauthorized()`` (401), ``Fault.forbidden()``
  (403), ``Fault.bad_request("msg")`` (400), ``Fault.not_found()`` (404).
- a callable ``policy(request: RecordedRequest) -> Reply | Fault``, used for
  one turn; ``MockAnthropic(policy=...)`` answers every request after the
  script is used up, so a whole task run can be played (look at
  ``request.tool_results()`` and decide the next tool call).

Every request is recorded (``api.requests``: body, headers, arrival time,
what was answered) and validated like the API would: roles alternate starting
with ``user`` and the last one is ``user``; every ``tool_result`` answers a
``tool_use`` of the assistant message just before it, all of them, and comes
before any other block of its message; ``is_error`` is a boolean; tools have
a name and an object ``input_schema`` and no other keys, or are an
Anthropic-defined type it knows (``bash_20250124``, ``text_editor_20250728``, ...)
with that type's fixed name and keys; tool_use names are tools; at most 4
``cache_control`` breakpoints, each ``{"type": "ephemeral"}``; and the
conversation grows step by step: a request with more than one message repeats
the previous request's messages (after a fault: exactly them; after a reply:
them plus that reply's blocks as the assistant message and one new user
message), with the same system prompt and tools. A violation is recorded in
``api.violations`` and answered with HTTP 400 ``invalid_request_error`` (as
the API would), so a test fails twice: at the client, and at
``api.assert_valid()``.

Example::

    from mock_anthropic import MockAnthropic, Reply, Fault

    with MockAnthropic([Fault.overloaded(), Reply.tool("run", {"code": "1+1"}),
                        Reply.text("done")]) as api:
        agent = ClaudeAgent(base_url=api.base_url, api_key="test-key")
        ...
    api.assert_valid()
    assert len(api.requests) == 3

Under pytest's default import mode ``tests/`` is on ``sys.path``, so test
files import it as ``from mock_anthropic import ...``.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TEST_API_KEY = "test-key"
DEFAULT_MODEL = "claude-haiku-4-5"
MAX_CACHE_BREAKPOINTS = 4

_ids = itertools.count(1)


def _new_id(prefix: str) -> str:
    return f"{prefix}_mock{next(_ids):06d}"


# -- script turns --------------------------------------------------------------


def text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def tool_use_block(name: str, input: dict[str, Any], id: str | None = None) -> dict[str, Any]:
    return {"type": "tool_use", "id": id or _new_id("toolu"), "name": name, "input": input}


@dataclass
class Reply:
    """One assistant message the server answers with."""

    blocks: list[dict[str, Any]]
    stop_reason: str | None = None
    #: input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens.
    usage: dict[str, int] | None = None
    message_id: str | None = None
    model: str | None = None
    #: Characters per text/JSON delta when streaming.
    chunk_chars: int = 8
    #: Seconds to wait before answering (a slow call, not a fault).
    delay_s: float = 0.0

    @classmethod
    def text(cls, text: str, **kw: Any) -> Reply:
        return cls(blocks=[text_block(text)], **kw)

    @classmethod
    def tool(
        cls, name: str, input: dict[str, Any], *, text: str = "", id: str | None = None, **kw: Any
    ) -> Reply:
        blocks = [text_block(text)] if text else []
        blocks.append(tool_use_block(name, input, id))
        return cls(blocks=blocks, **kw)

    def resolved_stop_reason(self) -> str:
        if self.stop_reason is not None:
            return self.stop_reason
        return "tool_use" if any(b["type"] == "tool_use" for b in self.blocks) else "end_turn"


@dataclass
class Fault:
    """A failure the server answers with instead of a message."""

    kind: str
    status: int = 500
    error_type: str = "api_error"
    message: str = "Internal server error"
    retry_after: float | None = None
    seconds: float = 0.0
    reply: Reply | None = None
    after_events: int = 4

    @classmethod
    def rate_limited(cls, retry_after: float | None = 0.1) -> Fault:
        return cls(
            "status",
            429,
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit",
            retry_after,
        )

    @classmethod
    def overloaded(cls) -> Fault:
        return cls("status", 529, "overloaded_error", "Overloaded")

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        return cls("status", status, "api_error", "Internal server error")

    @classmethod
    def unauthorized(cls) -> Fault:
        return cls("status", 401, "authentication_error", "invalid x-api-key")

    @classmethod
    def forbidden(cls) -> Fault:
        return cls(
            "status",
            403,
            "permission_error",
            "Your API key does not have permission to use the specified resource.",
        )

    @classmethod
    def bad_request(cls, message: str = "messages: field required") -> Fault:
        return cls("status", 400, "invalid_request_error", message)

    @classmethod
    def not_found(cls, message: str = "model: claude-nope") -> Fault:
        return cls("status", 404, "not_found_error", message)

    @classmethod
    def hang(cls, seconds: float = 5.0) -> Fault:
        """Read the request, answer nothing for ``seconds`` (or until the server stops), close."""
        return cls("hang", seconds=seconds)

    @classmethod
    def cut_stream(cls, reply: Reply | None = None, after_events: int = 4) -> Fault:
        """Begin the response (``after_events`` SSE events, or half the JSON body), then drop the connection."""
        return cls("cut", reply=reply, after_events=after_events)

    @classmethod
    def stream_error(
        cls, reply: Reply | None = None, after_events: int = 4, error_type: str = "overloaded_error"
    ) -> Fault:
        """Begin the stream, then send an SSE ``error`` event and end it (streaming requests only)."""
        return cls(
            "stream_error", 200, error_type, "Overloaded", reply=reply, after_events=after_events
        )


Policy = Callable[["RecordedRequest"], "Reply | Fault"]
Turn = Reply | Fault | Policy


@dataclass
class RecordedRequest:
    index: int
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    received_at: float
    violations: list[str] = field(default_factory=list)
    #: What was answered: "reply", "fault:<kind/status>", "rejected".
    answer: str = ""
    reply: Reply | None = None

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages") or []

    @property
    def step(self) -> int:
        """1-based step number: assistant messages so far + 1."""
        return 1 + sum(1 for m in self.messages if m.get("role") == "assistant")

    def last_user_blocks(self) -> list[dict[str, Any]]:
        if not self.messages:
            return []
        content = self.messages[-1].get("content")
        return [text_block(content)] if isinstance(content, str) else list(content or [])

    def tool_results(self) -> list[dict[str, Any]]:
        """The tool_result blocks of the last user message."""
        return [b for b in self.last_user_blocks() if b.get("type") == "tool_result"]

    def tool_result_text(self) -> str:
        """The text of the last user message's tool results, joined."""
        out: list[str] = []
        for b in self.tool_results():
            c = b.get("content")
            if isinstance(c, str):
                out.append(c)
            elif isinstance(c, list):
                out.extend(x.get("text", "") for x in c if isinstance(x, dict))
        return "\n".join(out)


# -- validation ----------------------------------------------------------------


def strip_cache_control(value: Any) -> Any:
    """A deep copy without any ``cache_control`` keys."""
    if isinstance(value, dict):
        return {k: strip_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [strip_cache_control(v) for v in value]
    return value


def normalized_messages(messages: Any) -> list[Any]:
    """Messages without ``cache_control`` and with string content as one text block."""
    out = []
    for m in strip_cache_control(messages or []):
        if isinstance(m, dict) and isinstance(m.get("content"), str):
            m = dict(m, content=[text_block(m["content"])])
        out.append(m)
    return out


def _blocks(content: Any) -> list[Any]:
    if isinstance(content, str):
        return [text_block(content)]
    return list(content) if isinstance(content, list) else []


def _count_cache_control(value: Any, found: list[Any]) -> None:
    if isinstance(value, dict):
        if "cache_control" in value:
            found.append(value["cache_control"])
        for k, v in value.items():
            if k != "cache_control":
                _count_cache_control(v, found)
    elif isinstance(value, list):
        for v in value:
            _count_cache_control(v, found)


_USER_BLOCKS = {"text", "image", "document", "tool_result", "search_result"}
_ASSISTANT_BLOCKS = {"text", "tool_use", "thinking", "redacted_thinking", "server_tool_use"}


#: Anthropic-defined tool types the API knows: type -> (required name, extra keys allowed).
ANTHROPIC_TOOL_TYPES: dict[str, tuple[str, frozenset[str]]] = {
    "bash_20250124": ("bash", frozenset()),
    "bash_20241022": ("bash", frozenset()),
    "text_editor_20250728": ("str_replace_based_edit_tool", frozenset({"max_characters"})),
    "text_editor_20250429": ("str_replace_based_edit_tool", frozenset()),
    "text_editor_20250124": ("str_replace_editor", frozenset()),
    "text_editor_20241022": ("str_replace_editor", frozenset()),
}
_CUSTOM_TOOL_KEYS = frozenset(
    {"type", "name", "description", "input_schema", "cache_control", "strict", "input_examples"}
)


def validate_body(body: Any, *, require_tools: bool = True) -> list[str]:
    """What the real API would reject in one request body, each as a sentence."""
    v: list[str] = []
    if not isinstance(body, dict):
        return ["body: expected a JSON object"]
    if not isinstance(body.get("model"), str) or not body["model"]:
        v.append("model: expected a non-empty string")
    mt = body.get("max_tokens")
    if not isinstance(mt, int) or isinstance(mt, bool) or mt < 1:
        v.append(f"max_tokens: expected a positive integer, got {mt!r}")
    if "temperature" in body and body["temperature"] is not None:
        t = body["temperature"]
        if not isinstance(t, int | float) or not 0 <= t <= 1:
            v.append(f"temperature: expected a number in [0, 1], got {t!r}")
    system = body.get("system")
    if (
        system is not None
        and not isinstance(system, str)
        and (
            not isinstance(system, list)
            or not all(
                isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
                for b in system
            )
        )
    ):
        v.append("system: expected a string or a list of text blocks")

    tools = body.get("tools")
    names: set[str] = set()
    if tools is None:
        if require_tools:
            v.append("tools: missing (the agent must send the task's tools)")
    elif not isinstance(tools, list) or (require_tools and not tools):
        v.append("tools: expected a non-empty list")
    else:
        for i, t in enumerate(tools):
            if not isinstance(t, dict) or not isinstance(t.get("name"), str) or not t["name"]:
                v.append(f"tools.{i}.name: expected a non-empty string")
                continue
            if t["name"] in names:
                v.append(f"tools.{i}.name: duplicate tool name {t['name']!r}")
            names.add(t["name"])
            ttype = t.get("type", "custom")
            if ttype != "custom":
                # an Anthropic-defined tool: a known type, its fixed name, its own keys
                known = ANTHROPIC_TOOL_TYPES.get(ttype)
                if known is None:
                    v.append(f"tools.{i}.type: unknown tool type {ttype!r}")
                    continue
                name, extra = known
                if t["name"] != name:
                    v.append(f"tools.{i}.name: a {ttype} tool must be named {name!r}")
                bad = sorted(set(t) - {"type", "name", "cache_control", *extra})
                if bad:
                    v.append(f"tools.{i}: {', '.join(bad)}: Extra inputs are not permitted")
                mc = t.get("max_characters")
                if mc is not None and (not isinstance(mc, int) or mc < 1):
                    v.append(f"tools.{i}.max_characters: expected a positive integer")
                continue
            bad = sorted(set(t) - _CUSTOM_TOOL_KEYS)
            if bad:
                v.append(f"tools.{i}: {', '.join(bad)}: Extra inputs are not permitted")
            schema = t.get("input_schema")
            if not isinstance(schema, dict) or schema.get("type") != "object":
                v.append(
                    f"tools.{i}.input_schema: expected a JSON schema object with type 'object'"
                )

    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        v.append("messages: expected a non-empty list")
        return v
    for i, m in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            v.append(f"{where}.role: expected 'user' or 'assistant'")
            return v
        want = "user" if i % 2 == 0 else "assistant"
        if m["role"] != want:
            v.append(
                f"{where}.role: roles must alternate starting with 'user'; expected {want!r}, got {m['role']!r}"
            )
        content = m.get("content")
        if isinstance(content, str):
            if not content:
                v.append(f"{where}.content: must not be empty")
            content = [text_block(content)]
        elif not isinstance(content, list) or not content:
            v.append(f"{where}.content: expected a string or a non-empty list of blocks")
            content = []
        allowed = _USER_BLOCKS if m["role"] == "user" else _ASSISTANT_BLOCKS
        seen_other = False
        for j, b in enumerate(content):
            bw = f"{where}.content.{j}"
            if not isinstance(b, dict) or not isinstance(b.get("type"), str):
                v.append(f"{bw}: expected a block with a 'type'")
                continue
            if b["type"] not in allowed:
                v.append(f"{bw}.type: {b['type']!r} is not allowed in a {m['role']} message")
            if b["type"] == "text" and not isinstance(b.get("text"), str):
                v.append(f"{bw}.text: expected a string")
            if b["type"] == "tool_result":
                if seen_other:
                    v.append(
                        f"{bw}: tool_result blocks must come before any other block of the message"
                    )
                if "is_error" in b and not isinstance(b["is_error"], bool):
                    v.append(f"{bw}.is_error: expected a boolean")
                c = b.get("content")
                if c is not None and not isinstance(c, str | list):
                    v.append(f"{bw}.content: expected a string or a list of blocks")
            else:
                seen_other = True
            if b["type"] == "tool_use":
                if not isinstance(b.get("id"), str) or not isinstance(b.get("input"), dict):
                    v.append(f"{bw}: tool_use needs an 'id' and an object 'input'")
                if names and b.get("name") not in names:
                    v.append(f"{bw}.name: {b.get('name')!r} is not one of the request's tools")
        # tool_result <-> tool_use pairing with the previous assistant message
        if m["role"] == "user":
            results = [
                b.get("tool_use_id")
                for b in content
                if isinstance(b, dict) and b.get("type") == "tool_result"
            ]
            prev_uses: list[str] = []
            if i > 0 and isinstance(messages[i - 1], dict):
                prev_uses = [
                    b.get("id")
                    for b in _blocks(messages[i - 1].get("content"))
                    if isinstance(b, dict) and b.get("type") == "tool_use"
                ]
            for rid in results:
                if rid not in prev_uses:
                    v.append(
                        f"{where}: tool_result tool_use_id {rid!r} does not match a tool_use "
                        f"in the previous assistant message (ids: {prev_uses})"
                    )
            missing = [u for u in prev_uses if u not in results]
            if missing:
                v.append(
                    f"{where}: tool_use ids {missing} were found without tool_result blocks "
                    "immediately after"
                )
    if messages[-1].get("role") != "user":
        v.append("messages: the last message must be a user message (no prefill here)")

    found: list[Any] = []
    _count_cache_control({k: body.get(k) for k in ("system", "tools", "messages")}, found)
    if len(found) > MAX_CACHE_BREAKPOINTS:
        v.append(
            f"cache_control: {len(found)} breakpoints; at most {MAX_CACHE_BREAKPOINTS} are allowed"
        )
    for cc in found:
        if (
            not isinstance(cc, dict)
            or cc.get("type") != "ephemeral"
            or cc.get("ttl", "5m") not in ("5m", "1h")
        ):
            v.append(
                f"cache_control: expected {{'type': 'ephemeral'}} (optional ttl 5m/1h), got {cc!r}"
            )
    return v


@dataclass
class Conversation:
    messages: list[dict[str, Any]]
    system: Any
    tools: Any
    reply: Reply | None


def _same_block(sent: dict[str, Any], ours: dict[str, Any]) -> bool:
    if sent.get("type") != ours.get("type"):
        return False
    if ours["type"] == "text":
        return sent.get("text") == ours.get("text")
    if ours["type"] == "tool_use":
        return all(sent.get(k) == ours.get(k) for k in ("id", "name", "input"))
    return True


def validate_growth(body: dict[str, Any], prev: Conversation | None) -> list[str]:
    """Does this request extend the previous one of the same conversation?"""
    messages = normalized_messages(body.get("messages"))
    if prev is None or len(messages) <= 1:
        return []
    v: list[str] = []
    n = len(prev.messages)
    if strip_cache_control(body.get("system")) != prev.system:
        v.append("system: changed within a conversation (this also defeats prompt caching)")
    if strip_cache_control(body.get("tools")) != prev.tools:
        v.append("tools: changed within a conversation (this also defeats prompt caching)")
    if messages[:n] != prev.messages:
        v.append(
            f"messages: does not extend the previous request's {n} messages "
            "(the conversation must grow step by step)"
        )
        return v
    if prev.reply is None:
        if len(messages) != n:
            v.append(
                f"messages: the previous request got no reply, so a retry must resend its {n} "
                f"messages, got {len(messages)}"
            )
        return v
    if len(messages) != n + 2:
        v.append(
            f"messages: expected the previous {n} messages + the assistant reply + one user "
            f"message ({n + 2}), got {len(messages)}"
        )
        return v
    sent = _blocks(messages[n].get("content"))
    ours = prev.reply.blocks
    cut = prev.reply.resolved_stop_reason() == "max_tokens"
    for j, b in enumerate(sent):
        if cut and isinstance(b, dict) and b.get("type") == "text":
            continue  # a client may flag a cut-off reply in text
        if not any(isinstance(b, dict) and _same_block(b, o) for o in ours):
            v.append(f"messages.{n}.content.{j}: not a block of the reply the server sent ({b!r})")
    return v


# -- the server ----------------------------------------------------------------


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _chunks(s: str, n: int) -> list[str]:
    n = max(1, n)
    return [s[i : i + n] for i in range(0, len(s), n)] or [""]


class MockAnthropic:
    """The server. Use as a context manager, or ``start()`` / ``stop()``."""

    def __init__(
        self,
        script: Iterable[Turn] = (),
        *,
        policy: Policy | None = None,
        validate: bool = True,
        reject_invalid: bool = True,
        require_tools: bool = True,
        check_growth: bool = True,
        model: str = DEFAULT_MODEL,
    ) -> None:
        self.script: list[Turn] = list(script)
        self.policy = policy
        self.validate = validate
        self.reject_invalid = reject_invalid
        self.require_tools = require_tools
        self.check_growth = check_growth
        self.model = model
        self.requests: list[RecordedRequest] = []
        self.violations: list[str] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._conv: Conversation | None = None
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle
    def start(self) -> MockAnthropic:
        handler = type("_BoundHandler", (_Handler,), {"mock": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name="mock-anthropic",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> MockAnthropic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, api_key: str = TEST_API_KEY) -> dict[str, str]:
        """Environment variables that point the SDK (and so the CLI) here."""
        return {"ANTHROPIC_BASE_URL": self.base_url, "ANTHROPIC_API_KEY": api_key}

    # script
    def add(self, *turns: Turn) -> None:
        with self._lock:
            self.script.extend(turns)

    @property
    def remaining(self) -> int:
        return len(self.script)

    def new_conversation(self) -> None:
        """Forget the previous request, so the next one is not checked for growth."""
        with self._lock:
            self._conv = None

    def assert_valid(self) -> None:
        """Fail (AssertionError) listing every violation seen so far."""
        if self.violations:
            raise AssertionError(
                "the client sent invalid requests:\n  " + "\n  ".join(self.violations)
            )

    # request handling (called from handler threads)
    def _take(
        self, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[RecordedRequest, Reply | Fault]:
        with self._lock:
            rec = RecordedRequest(
                index=len(self.requests),
                path=path,
                headers=headers,
                body={},
                received_at=time.monotonic(),
            )
            self.requests.append(rec)
            try:
                rec.body = json.loads(raw or b"null")
            except ValueError as e:
                rec.violations.append(f"body: not JSON ({e})")
            if self.validate and not rec.violations:
                if path.split("?")[0] != "/v1/messages":
                    rec.violations.append(f"path: expected POST /v1/messages, got {path}")
                if "x-api-key" not in headers and "authorization" not in headers:
                    rec.violations.append("headers: no x-api-key (or authorization) header")
                if "anthropic-version" not in headers:
                    rec.violations.append("headers: no anthropic-version header")
                rec.violations += validate_body(rec.body, require_tools=self.require_tools)
                if self.check_growth and isinstance(rec.body, dict):
                    rec.violations += validate_growth(rec.body, self._conv)
            if rec.violations:
                self.violations += [f"request {rec.index}: {x}" for x in rec.violations]
                if self.reject_invalid:
                    rec.answer = "rejected"
                    return rec, Fault.bad_request("; ".join(rec.violations))
            turn: Turn | None
            turn = self.script.pop(0) if self.script else self.policy
            if turn is None:
                msg = "mock_anthropic: the script is used up and there is no policy"
                rec.violations.append(msg)
                self.violations.append(f"request {rec.index}: {msg}")
                rec.answer = "rejected"
                return rec, Fault.bad_request(msg)
        if callable(turn) and not isinstance(turn, Reply | Fault):
            turn = turn(rec)
        with self._lock:
            if isinstance(turn, Reply):
                rec.answer, rec.reply = "reply", turn
            else:
                rec.answer = (
                    f"fault:{turn.status}" if turn.kind == "status" else f"fault:{turn.kind}"
                )
            if isinstance(rec.body, dict):
                self._conv = Conversation(
                    messages=normalized_messages(rec.body.get("messages")),
                    system=strip_cache_control(rec.body.get("system")),
                    tools=strip_cache_control(rec.body.get("tools")),
                    reply=turn if isinstance(turn, Reply) else None,
                )
        return rec, turn

    def _message(self, rec: RecordedRequest, reply: Reply) -> dict[str, Any]:
        """The full Message object for a reply (non-streaming shape)."""
        body = rec.body if isinstance(rec.body, dict) else {}
        usage = {
            "input_tokens": max(1, len(json.dumps(body.get("messages", ""))) // 4),
            "output_tokens": max(1, len(json.dumps(reply.blocks)) // 4),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
        usage.update(reply.usage or {})
        if reply.message_id is None:
            reply.message_id = _new_id("msg")
        return {
            "id": reply.message_id,
            "type": "message",
            "role": "assistant",
            "model": reply.model or body.get("model") or self.model,
            "content": copy.deepcopy(reply.blocks),
            "stop_reason": reply.resolved_stop_reason(),
            "stop_sequence": None,
            "usage": usage,
        }

    def _events(self, message: dict[str, Any], chunk_chars: int) -> list[bytes]:
        """The SSE events of a message, in the API's order."""
        usage = message["usage"]
        start = dict(message, content=[], stop_reason=None, stop_sequence=None)
        start["usage"] = dict(usage, output_tokens=1)
        out = [
            _sse("message_start", {"type": "message_start", "message": start}),
            _sse("ping", {"type": "ping"}),
        ]
        for i, block in enumerate(message["content"]):
            if block["type"] == "text":
                out.append(
                    _sse(
                        "content_block_start",
                        {
                            "type": "content_block_start",
                            "index": i,
                            "content_block": {"type": "text", "text": ""},
                        },
                    )
                )
                for piece in _chunks(block["text"], chunk_chars):
                    out.append(
                        _sse(
                            "content_block_delta",
                            {
                                "type": "content_block_delta",
                                "index": i,
                                "delta": {"type": "text_delta", "text": piece},
                            },
                        )
                    )
            elif block["type"] == "tool_use":
                shell = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
                out.append(
                    _sse(
                        "content_block_start",
                        {"type": "content_block_start", "index": i, "content_block": shell},
                    )
                )
                raw = block.get("partial_json")
                raw = raw if raw is not None else json.dumps(block["input"])
                for piece in ["", *_chunks(raw, chunk_chars)]:
                    out.append(
                        _sse(
                            "content_block_delta",
                            {
                                "type": "content_block_delta",
                                "index": i,
                                "delta": {"type": "input_json_delta", "partial_json": piece},
                            },
                        )
                    )
            else:
                out.append(
                    _sse(
                        "content_block_start",
                        {"type": "content_block_start", "index": i, "content_block": block},
                    )
                )
            out.append(_sse("content_block_stop", {"type": "content_block_stop", "index": i}))
        out.append(
            _sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                    "usage": usage,
                },
            )
        )
        out.append(_sse("message_stop", {"type": "message_stop"}))
        return out


def _public_blocks(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Blocks as the API shows them (a cut-off tool_use's ``partial_json`` is streaming-only)."""
    return [{k: v for k, v in b.items() if k != "partial_json"} for b in blocks]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    mock: MockAnthropic

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        rec, turn = self.mock._take(self.path, headers, raw)
        try:
            if isinstance(turn, Reply):
                self._reply(rec, turn)
            else:
                self._fault(rec, turn)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True

    # answers
    def _send_json(
        self, status: int, data: dict[str, Any], extra: dict[str, str] | None = None
    ) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.send_header("request-id", _new_id("req"))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("request-id", _new_id("req"))
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _wait(self, seconds: float) -> bool:
        """Sleep; False if the server is stopping."""
        return not self.mock._stopping.wait(seconds)

    def _reply(self, rec: RecordedRequest, reply: Reply) -> None:
        if reply.delay_s and not self._wait(reply.delay_s):
            return
        message = self.mock._message(rec, reply)
        if not rec.stream:
            message["content"] = _public_blocks(message["content"])
            self._send_json(200, message)
            return
        self._start_stream()
        for ev in self.mock._events(message, reply.chunk_chars):
            self._chunk(ev)
        self._end_stream()

    def _fault(self, rec: RecordedRequest, fault: Fault) -> None:
        if fault.kind == "status":
            extra = {}
            if fault.retry_after is not None:
                extra["retry-after"] = f"{fault.retry_after:g}"
            if fault.status == 529 or fault.status >= 500:
                extra["x-should-retry"] = "true"
            self._send_json(
                fault.status,
                {
                    "type": "error",
                    "error": {"type": fault.error_type, "message": fault.message},
                    "request_id": _new_id("req"),
                },
                extra,
            )
            return
        if fault.kind == "hang":
            self._wait(fault.seconds)
            self.close_connection = True
            return
        reply = fault.reply or Reply.text("This reply will be cut off before it ends. " * 4)
        message = self.mock._message(rec, reply)
        if fault.kind == "cut":
            self.close_connection = True
            if not rec.stream:
                payload = json.dumps(
                    dict(message, content=_public_blocks(message["content"]))
                ).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload[: len(payload) // 2])
                self.wfile.flush()
            else:
                self._start_stream()
                for ev in self.mock._events(message, reply.chunk_chars)[: fault.after_events]:
                    self._chunk(ev)
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault.kind == "stream_error":
            if not rec.stream:
                self._send_json(
                    529,
                    {
                        "type": "error",
                        "error": {"type": fault.error_type, "message": fault.message},
                    },
                )
                return
            self._start_stream()
            for ev in self.mock._events(message, reply.chunk_chars)[: fault.after_events]:
                self._chunk(ev)
            self._chunk(
                _sse(
                    "error",
                    {
                        "type": "error",
                        "error": {"type": fault.error_type, "message": fault.message},
                    },
                )
            )
            self._end_stream()
            return
        raise ValueError(f"unknown fault kind {fault.kind!r}")
