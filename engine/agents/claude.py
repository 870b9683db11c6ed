"""The Claude agent: the next assistant message from the Anthropic Messages API.

``ClaudeAgent.respond`` sends the conversation (system prompt, messages with
text / tool_use / tool_result blocks, the task's tools) and returns the
assistant message as the API returned it, with usage and cost.

- Streaming by default: text and tool-input JSON are emitted live as
  ``ModelDelta`` events (``block_index`` 1-based) while the message arrives.
- Prompt caching by default: ``cache_control: ephemeral`` on the last tool, on
  the system prompt and on the last block of the last user message, so each
  step reads the previous steps' prefix from the cache. ``cache=False`` sends
  no ``cache_control`` at all.
- Retries are ours, not the SDK's (the client is built with
  ``max_retries=0``), so each one is visible: 429 (honouring ``retry-after`` /
  ``retry-after-ms``), 408, 409, 5xx, 529 overloaded, an ``error`` event in the
  stream, timeouts, refused or dropped connections, and a stream that breaks
  after the response began. Waits grow exponentially with jitter
  (``backoff_base_s * 2**(k-1)``, capped at ``backoff_max_s``, times a random
  factor in [0.5, 1]); each retry is a ``WarningEvent(where="model",
  code="retry")``; after ``max_retries`` retries an ``AgentError`` ends the run.
  400/401/403/404/413/422 are not retried.
- ``shared_backoff`` (``agents/backoff.py``; a batch passes one): a 429 or 529
  pauses every agent sharing it, and each attempt first waits out that pause.
- ``ctx.stop`` (Ctrl-C) is honoured within ~50 ms during a call or a backoff
  wait: ``respond`` raises ``AgentError(code="interrupted")``. The HTTP call
  runs in a worker thread so that a slow call cannot hold the run; a stream
  is closed, a plain call is abandoned (it ends at its timeout).
- ``stop_reason == "max_tokens"`` is returned normally. A tool_use block that
  the limit cut off (its streamed input JSON does not parse, or, without
  streaming, it is the last block of a max_tokens reply) is dropped from the
  content, with a ``WarningEvent(where="model", code="incomplete_tool_use")``;
  if nothing is left, the content is one text block saying so (the API does
  not accept an empty assistant message when the conversation goes on).
"""

from __future__ import annotations

import contextlib
import copy
import json
import random
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import anthropic

from agentdeck.engine import pricing
from agentdeck.engine.agents.backoff import SharedBackoff
from agentdeck.engine.agents.base import AgentContext, AgentError, AgentReply, ModelRequest
from agentdeck.engine.events import USAGE_KEYS, Event, ModelDelta, Usage, WarningEvent
from agentdeck.engine.tools import ANTHROPIC_TOOL_KEY

DEFAULT_MODEL = "claude-haiku-4-5"
KEY_HELP = (
    "Set a valid key with `export ANTHROPIC_API_KEY=sk-ant-...` "
    "(keys: https://console.anthropic.com/settings/keys), "
    "or run offline with `--agent scripted`."
)
_EPHEMERAL = {"type": "ephemeral"}
#: Stream error events worth another attempt (the others are the request's fault).
_RETRYABLE_ERROR_TYPES = {"overloaded_error", "api_error", "rate_limit_error", "timeout_error"}
_RETRYABLE_STATUS = {408, 409, 429}
_POLL_S = 0.05
#: Block keys in the order the API writes them (readable logs).
_KEY_ORDER = ("type", "id", "name", "input", "text")


def _transport_errors() -> tuple[type[BaseException], ...]:
    """httpx's request errors (raised while a stream is read), whichever httpx the SDK uses."""
    found: list[type[BaseException]] = []
    for mod in ("httpx2", "httpx"):
        try:
            found.append(__import__(mod).HTTPError)
        except (ImportError, AttributeError):
            continue
    return tuple(found)


_TRANSPORT_ERRORS = _transport_errors()


class _Retry(Exception):
    """One failed attempt that is worth another."""

    def __init__(
        self, reason: str, retry_after: float | None = None, *, shared: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        #: A rate limit or an overload: the whole account should slow down (``SharedBackoff``).
        self.shared = shared


class _StreamBroken(Exception):
    """The stream ended or broke before ``message_stop``."""


@dataclass
class _Call:
    """State shared between ``respond`` and the worker thread doing one attempt."""

    ctx: AgentContext
    cancelled: threading.Event = field(default_factory=threading.Event)
    stream: Any = None

    def emit(self, event: Event) -> None:
        if not self.cancelled.is_set():
            self.ctx.emit(event)

    def cancel(self) -> None:
        self.cancelled.set()
        stream = self.stream
        if stream is not None:
            with contextlib.suppress(Exception):  # closing a dying stream may fail any way
                stream.close()


@dataclass
class _Result:
    message: Any
    #: Raw input JSON per content index (streaming), to tell a complete tool input from a cut one.
    tool_json: dict[int, str] | None
    latency_s: float


_DNS_FAILURES = (
    "name or service not known",
    "temporary failure in name resolution",
    "nodename nor servname provided",
    "no address associated with hostname",
    "getaddrinfo failed",
)


def _name_resolution_failed(err: BaseException) -> bool:
    """Whether a connection error is the host name not resolving (socket.gaierror)."""
    seen: set[int] = set()
    e: BaseException | None = err
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, socket.gaierror):
            return True
        text = str(e).lower()
        if any(m in text for m in _DNS_FAILURES):
            return True
        e = e.__cause__ or e.__context__
    return False


def _has_credentials(client: anthropic.Anthropic) -> bool:
    return any(getattr(client, a, None) for a in ("api_key", "auth_token", "credentials"))


def _header(err: anthropic.APIStatusError, name: str) -> str | None:
    try:
        return err.response.headers.get(name)
    except AttributeError:
        return None


def _retry_after_s(err: anthropic.APIStatusError) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms``, ``retry-after`` seconds or date)."""
    ms = _header(err, "retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    ra = _header(err, "retry-after")
    if not ra:
        return None
    try:
        return max(0.0, float(ra))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(ra).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _api_detail(err: anthropic.APIStatusError) -> tuple[str | None, str]:
    """(error type, message) from an error body, whatever the SDK version parsed."""
    body = getattr(err, "body", None)
    etype = getattr(err, "type", None)
    msg = getattr(err, "api_message", None)
    if isinstance(body, dict):
        inner = body.get("error")
        e: dict[str, Any] = inner if isinstance(inner, dict) else body
        etype = etype or e.get("type")
        msg = msg or e.get("message")
    return (etype if isinstance(etype, str) else None), (msg if isinstance(msg, str) else str(err))


def _usage(usage: Any) -> Usage:
    """The four counts exactly as reported, None as 0."""
    return Usage(**{k: int(getattr(usage, k, None) or 0) for k in USAGE_KEYS})


def _block(block: Any) -> dict[str, Any]:
    """A content block as the API returned it (the SDK's own helper fields dropped)."""
    d = (
        block.model_dump(mode="json", exclude_none=True)
        if hasattr(block, "model_dump")
        else dict(block)
    )
    d.pop("parsed_output", None)
    first = {k: d.pop(k) for k in _KEY_ORDER if k in d}
    return {**first, **d}


class ClaudeAgent:
    """Claude through the official ``anthropic`` SDK. See the module docstring."""

    name = "claude"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        max_tokens: int = 4096,
        temperature: float | None = None,
        stream: bool = True,
        cache: bool = True,
        max_retries: int = 6,
        timeout_s: float = 600.0,
        api_key: str | None = None,
        base_url: str | None = None,
        client: anthropic.Anthropic | None = None,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 60.0,
        retry_after_max_s: float = 300.0,
        seed: int | None = None,
        shared_backoff: SharedBackoff | None = None,
    ) -> None:
        if max_tokens < 1:
            raise AgentError(
                f"--max-tokens must be at least 1, got {max_tokens}", code="bad_config"
            )
        if temperature is not None and not 0.0 <= temperature <= 1.0:
            raise AgentError(
                f"--temperature must be between 0 and 1, got {temperature}", code="bad_config"
            )
        if max_retries < 0:
            raise AgentError(f"max_retries must be >= 0, got {max_retries}", code="bad_config")
        self.model: str | None = model
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.stream = stream
        self.cache = cache
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.retry_after_max_s = retry_after_max_s
        self._rng = random.Random(seed)
        self.shared_backoff = shared_backoff
        self._warned_price = False
        self._owns_client = client is None
        if client is not None:
            # Ours is the only retry policy, so every retry is seen as a warning.
            self._client = client.with_options(max_retries=0)
        else:
            try:
                self._client = anthropic.Anthropic(
                    api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0
                )
            except anthropic.AnthropicError as e:
                raise AgentError(
                    f"Cannot set up the Anthropic client: {e}. {KEY_HELP}", code="no_api_key"
                ) from e
        if not _has_credentials(self._client):
            raise AgentError(
                f"ANTHROPIC_API_KEY is not set (and no other Anthropic credentials were found). {KEY_HELP}",
                code="no_api_key",
            )

    @property
    def base_url(self) -> str:
        return str(self._client.base_url)

    # -- the request -----------------------------------------------------------

    def build_params(self, request: ModelRequest) -> dict[str, Any]:
        """The Messages API parameters for a request (the request itself is not changed)."""
        messages = _without_cache_control(copy.deepcopy(request.messages))
        tools = api_tools(_without_cache_control(copy.deepcopy(request.tools)), self.model)
        params: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "messages": messages,
        }
        if self.cache:
            if tools:
                tools[-1]["cache_control"] = dict(_EPHEMERAL)
            _mark_last_user_block(messages)
        if request.system:
            params["system"] = (
                [{"type": "text", "text": request.system, "cache_control": dict(_EPHEMERAL)}]
                if self.cache
                else request.system
            )
        if tools:
            params["tools"] = tools
        if self.temperature is not None:
            # Sent as an extra body field: recent SDKs dropped the keyword (recent models
            # refuse non-default sampling with a 400, which is then shown to the user).
            params["extra_body"] = {"temperature": self.temperature}
        return params

    def tool_types(self, tools: list[dict[str, Any]]) -> list[str | None]:
        """For each tool schema, how it is sent (for the log): an Anthropic tool type
        (``bash_20250124``), ``"custom"`` for a tool of that shape sent as an ordinary
        tool (the model does not take the type), None for ordinary tools."""
        out: list[str | None] = []
        for t in tools:
            kind = t.get(ANTHROPIC_TOOL_KEY)
            if not isinstance(kind, str):
                out.append(None)
                continue
            out.append(anthropic_tool_type(kind, str(t.get("name")), self.model) or "custom")
        return out

    # -- the protocol ----------------------------------------------------------

    def respond(self, request: ModelRequest, ctx: AgentContext) -> AgentReply:
        self._check_stop(ctx)
        params = self.build_params(request)
        retries = 0
        while True:
            try:
                self._wait_shared(ctx)
                result = self._call(params, ctx)
                break
            except _Retry as r:
                if retries >= self.max_retries:
                    raise AgentError(
                        f"The Claude API call failed after {retries + 1} attempts "
                        f"({self.max_retries} retries): {r.reason}. The API may be overloaded or "
                        f"unreachable ({self.base_url}); try again later.",
                        code="retries_exhausted",
                    ) from r
                retries += 1
                wait = self._wait_s(retries, r.retry_after)
                if r.shared and self.shared_backoff is not None:
                    self.shared_backoff.pause(wait, r.reason)
                ctx.emit(
                    WarningEvent(
                        where="model",
                        code="retry",
                        message=f"{r.reason}; attempt {retries} of {self.max_retries}, "
                        f"waiting {wait:.2f} s",
                        recoverable=True,
                        step=ctx.step,
                    )
                )
                if ctx.stop.wait(wait):
                    self._check_stop(ctx)
        return self._reply(result, ctx)

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    # -- internals -------------------------------------------------------------

    def _check_stop(self, ctx: AgentContext) -> None:
        if ctx.stop.is_set():
            raise AgentError(
                f"Interrupted while waiting for Claude (step {ctx.step}).", code="interrupted"
            )

    def _wait_shared(self, ctx: AgentContext) -> None:
        """Wait out a pause another run sharing the backoff was told to take (429/529)."""
        shared = self.shared_backoff
        left = shared.remaining() if shared is not None else 0.0
        if shared is None or left <= 0:
            return
        ctx.emit(
            WarningEvent(
                where="model",
                code="shared_backoff",
                message=f"another run of the batch was rate limited; waiting {left:.2f} s",
                recoverable=True,
                step=ctx.step,
            )
        )
        while left > 0:
            if ctx.stop.wait(min(left, 0.5)):
                self._check_stop(ctx)
            left = shared.remaining()
        # come back spread out, not all at the same instant
        if ctx.stop.wait(0.25 * self._rng.random()):
            self._check_stop(ctx)

    def _wait_s(self, retry: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.retry_after_max_s)
        cap = min(self.backoff_max_s, self.backoff_base_s * 2 ** (retry - 1))
        return float(cap * (0.5 + 0.5 * self._rng.random()))

    def _call(self, params: dict[str, Any], ctx: AgentContext) -> _Result:
        """One attempt in a worker thread, so that ``ctx.stop`` is seen while it runs."""
        call = _Call(ctx)
        box: dict[str, Any] = {}
        done = threading.Event()

        def work() -> None:
            try:
                box["result"] = self._attempt(params, call)
            except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
                box["error"] = e
            finally:
                done.set()

        worker = threading.Thread(target=work, name=f"claude-step-{ctx.step}", daemon=True)
        worker.start()
        while not done.wait(_POLL_S):
            if ctx.stop.is_set():
                call.cancel()
                worker.join(timeout=0.5)
                self._check_stop(ctx)
            reason = ctx.over_limit()
            if reason:  # --time-limit fell while the model was still answering
                call.cancel()
                worker.join(timeout=0.5)
                raise AgentError(reason, code="limit_exceeded")
        if "error" in box:
            raise self._classify(box["error"])
        result: _Result = box["result"]
        return result

    def _attempt(self, params: dict[str, Any], call: _Call) -> _Result:
        t0 = time.monotonic()
        if not self.stream:
            message = self._client.messages.create(**params)
            return _Result(message, None, time.monotonic() - t0)
        tool_json: dict[int, str] = {}
        finished = False
        seen = Usage()  # the usage the stream has reported so far
        with self._client.messages.stream(**params) as stream:
            call.stream = stream
            try:
                for event in stream:
                    if call.cancelled.is_set():
                        break
                    if event.type == "content_block_delta":
                        self._delta(event, tool_json, call)
                    elif event.type == "message_stop":
                        finished = True
                    elif event.type in ("message_start", "message_delta"):
                        reason = self._usage_so_far(event, seen, call.ctx)
                        if reason:  # a token or cost limit falls inside this response
                            call.cancel()
                            raise AgentError(reason, code="limit_exceeded")
            except anthropic.APIStatusError:
                raise
            except (*_TRANSPORT_ERRORS, ValueError) as e:  # type: ignore[misc]  # a tuple at run time
                raise _StreamBroken(f"{type(e).__name__}: {e}") from e
            if not finished:
                if call.cancelled.is_set():
                    raise _StreamBroken("cancelled")
                raise _StreamBroken("the stream ended before message_stop")
            message = stream.get_final_message()
        return _Result(message, tool_json, time.monotonic() - t0)

    @staticmethod
    def _usage_so_far(event: Any, seen: Usage, ctx: AgentContext) -> str | None:
        """Fold a stream event's usage into ``seen``; the limit it breaks, if any."""
        if event.type == "message_start":
            u = getattr(getattr(event, "message", None), "usage", None)
            if u is not None:
                for k, v in _usage(u).as_dict().items():
                    setattr(seen, k, v)
        else:
            out = getattr(getattr(event, "usage", None), "output_tokens", None)
            if isinstance(out, int):
                seen.output_tokens = out
        return ctx.over_limit(seen)

    def _delta(self, event: Any, tool_json: dict[int, str], call: _Call) -> None:
        d = event.delta
        index = int(event.index)
        if d.type == "text_delta" and d.text:
            call.emit(
                ModelDelta(step=call.ctx.step, block_index=index + 1, kind="text", text=d.text)
            )
        elif d.type == "input_json_delta":
            tool_json[index] = tool_json.get(index, "") + d.partial_json
            if d.partial_json:
                call.emit(
                    ModelDelta(
                        step=call.ctx.step,
                        block_index=index + 1,
                        kind="tool_input",
                        text=d.partial_json,
                    )
                )
        elif d.type == "thinking_delta" and d.thinking:
            call.emit(
                ModelDelta(
                    step=call.ctx.step, block_index=index + 1, kind="thinking", text=d.thinking
                )
            )

    def _classify(self, err: BaseException) -> BaseException:
        """What a failed attempt becomes: ``_Retry`` or a final ``AgentError``."""
        if isinstance(err, AgentError | _Retry):
            return err
        if isinstance(err, _StreamBroken):
            return _Retry(f"the response stream broke after it began ({err})")
        if isinstance(err, anthropic.APITimeoutError):
            return _Retry(f"the request timed out (no answer within {self.timeout_s:g} s)")
        if isinstance(err, anthropic.APIConnectionError):
            cause = err.__cause__ or err.__context__
            detail = f": {cause}" if cause else ""
            if _name_resolution_failed(err):
                # no DNS answer will come back in 54 s of retries: say so at once
                return AgentError(
                    f"Cannot resolve the API host of {self.base_url}{detail}. This machine "
                    "has no network (or no DNS), or ANTHROPIC_BASE_URL is wrong; run offline "
                    "with --agent scripted.",
                    code="no_network",
                )
            if cause is None or type(cause).__name__ == "ConnectError":
                return _Retry(f"could not connect to {self.base_url}{detail}")
            return _Retry(f"the connection to {self.base_url} failed{detail}")
        if isinstance(err, anthropic.APIStatusError):
            return self._classify_status(err)
        if isinstance(err, _TRANSPORT_ERRORS):
            return _Retry(f"the connection failed: {type(err).__name__}: {err}")
        if isinstance(err, TypeError) and "authentication" in str(err).lower():
            return AgentError(f"No Anthropic API key found ({err}). {KEY_HELP}", code="no_api_key")
        e = AgentError(f"Unexpected error calling the Claude API: {type(err).__name__}: {err}")
        e.__cause__ = err
        return e

    def _classify_status(self, err: anthropic.APIStatusError) -> BaseException:
        status = err.status_code
        etype, msg = _api_detail(err)
        what = f"HTTP {status} {etype}" if etype else f"HTTP {status}"
        if status == 200:  # an error event inside the stream
            if etype in _RETRYABLE_ERROR_TYPES:
                shared = etype in ("overloaded_error", "rate_limit_error")
                return _Retry(f"the stream sent an error event ({etype}: {msg})", shared=shared)
            return AgentError(
                f"The Claude API stream sent an error: {etype}: {msg}", code="api_error"
            )
        if status in (401, 403):
            return AgentError(
                f"The Anthropic API rejected the API key ({what}: {msg}). {KEY_HELP}", code="auth"
            )
        if status == 429:
            return _Retry(f"rate limited ({what}: {msg})", _retry_after_s(err), shared=True)
        if status in _RETRYABLE_STATUS or status >= 500:
            label = "overloaded" if status == 529 else "server error"
            return _Retry(f"{label} ({what}: {msg})", _retry_after_s(err), shared=status == 529)
        if status == 404:
            return AgentError(
                f"The Anthropic API answered not found ({what}: {msg}). Check the model id "
                f"(--model {self.model}) and the base URL ({self.base_url}).",
                code="not_found",
            )
        if status == 400:
            return AgentError(
                f"The Anthropic API rejected the request ({what}): {msg}", code="bad_request"
            )
        return AgentError(
            f"The Anthropic API rejected the request ({what}): {msg}", code="api_error"
        )

    def _reply(self, result: _Result, ctx: AgentContext) -> AgentReply:
        message = result.message
        stop_reason = message.stop_reason
        blocks = list(message.content)
        content: list[dict[str, Any]] = []
        dropped: list[str] = []
        for i, block in enumerate(blocks):
            d = _block(block)
            if d.get("type") == "tool_use" and _cut_off(
                i, len(blocks), stop_reason, result.tool_json
            ):
                dropped.append(f"{d.get('name')} ({d.get('id')})")
                continue
            content.append(d)
        if dropped:
            ctx.emit(
                WarningEvent(
                    where="model",
                    code="incomplete_tool_use",
                    message=f"max_tokens ({self.max_tokens}) cut off the tool call "
                    f"{', '.join(dropped)}; it was dropped. Raise --max-tokens if this repeats.",
                    recoverable=True,
                    step=ctx.step,
                )
            )
            if not content:
                content.append(
                    {
                        "type": "text",
                        "text": f"[tool call {', '.join(dropped)} was cut off by max_tokens]",
                    }
                )
        usage = _usage(message.usage)
        model = getattr(message, "model", None) or self.model
        priced = model if pricing.price_for(model) else self.model
        cost = pricing.cost_usd(priced, usage)
        if cost is None and not self._warned_price:
            self._warned_price = True
            ctx.emit(
                WarningEvent(
                    where="pricing",
                    code="unknown_model",
                    message=f"No price for model {model!r}: its cost is not counted "
                    f"(token counts still are). Known models: {', '.join(pricing.known_models())}; "
                    "add a row to engine/pricing.py.",
                    recoverable=True,
                    step=ctx.step,
                )
            )
        return AgentReply(
            message_id=message.id,
            content=content,
            stop_reason=stop_reason,
            usage=usage,
            model=model,
            latency_s=result.latency_s,
            cost_usd=cost,
        )


#: Anthropic-defined tools: (the name the API requires, the type for current models,
#: the oldest model generation that takes that type). Checked against
#: https://platform.claude.com/docs/en/agents-and-tools/tool-use/bash-tool and
#: .../text-editor-tool (2026-12): bash_20250124 is the current bash tool (Claude 4
#: models and Sonnet 3.7); text_editor_20250728 is the text editor of Claude 4 models,
#: named str_replace_based_edit_tool (Sonnet 3.7's text_editor_20250124 is named
#: str_replace_editor and has undo_edit: another tool, so 3.x models get ours as an
#: ordinary tool).
ANTHROPIC_TOOLS: dict[str, tuple[str, str, tuple[int, int]]] = {
    "bash": ("bash", "bash_20250124", (3, 7)),
    "text_editor": ("str_replace_based_edit_tool", "text_editor_20250728", (4, 0)),
}
#: What the text editor's ``view`` shows at most (``agentdeck.engine.editor``), sent as
#: the tool's ``max_characters``.
EDITOR_MAX_CHARACTERS = 16_000
_NEW_STYLE = re.compile(r"claude-(?:opus|sonnet|haiku)-(\d{1,2})(?:-(\d{1,2})(?!\d))?")
_OLD_STYLE = re.compile(r"claude-(\d)(?:-(\d))?-(?:opus|sonnet|haiku)")


def model_generation(model: str | None) -> tuple[int, int] | None:
    """(major, minor) of a Claude model id (``claude-sonnet-4-5`` -> (4, 5),
    ``claude-3-7-sonnet-20250219`` -> (3, 7), Bedrock and Vertex ids too); None when it
    is not one."""
    if not model:
        return None
    m = _NEW_STYLE.search(model)
    if m:
        return int(m.group(1)), int(m.group(2) or 0)
    m = _OLD_STYLE.search(model)
    if m:
        return int(m.group(1)), int(m.group(2) or 0)
    return None


def anthropic_tool_type(kind: str, name: str, model: str | None) -> str | None:
    """The Anthropic tool type to send a tool of shape ``kind`` as, for ``model``; None
    when the model does not take one (or the tool is not named as the API requires)."""
    spec = ANTHROPIC_TOOLS.get(kind)
    gen = model_generation(model)
    if spec is None or gen is None or name != spec[0]:
        return None
    return spec[1] if gen >= spec[2] else None


def api_tools(tools: list[dict[str, Any]], model: str | None) -> list[dict[str, Any]]:
    """The tools as sent: Anthropic's own type for those of its shape that the model
    takes (``{"type": "bash_20250124", "name": "bash"}``), the rest as ordinary tools
    (without agentdeck's ``anthropic_tool`` key, which the API would refuse)."""
    out: list[dict[str, Any]] = []
    for t in tools:
        t = dict(t)
        kind = t.pop(ANTHROPIC_TOOL_KEY, None)
        api_type = (
            anthropic_tool_type(kind, str(t.get("name")), model) if isinstance(kind, str) else None
        )
        if api_type is None:
            out.append(t)
            continue
        typed: dict[str, Any] = {"type": api_type, "name": t["name"]}
        if kind == "text_editor":
            typed["max_characters"] = EDITOR_MAX_CHARACTERS
        out.append(typed)
    return out


def _cut_off(
    index: int, count: int, stop_reason: str | None, tool_json: dict[int, str] | None
) -> bool:
    """Was this tool_use block cut off by max_tokens?"""
    if tool_json is not None and index in tool_json:
        raw = tool_json[index]
        try:
            json.loads(raw or "{}")
        except ValueError:
            return True
        return False
    return stop_reason == "max_tokens" and index == count - 1


def _strip_blocks(blocks: Any) -> None:
    """Remove ``cache_control`` from content blocks (and tool_result content), in place."""
    if not isinstance(blocks, list):
        return
    for b in blocks:
        if isinstance(b, dict):
            b.pop("cache_control", None)
            if b.get("type") == "tool_result":
                _strip_blocks(b.get("content"))


def _without_cache_control(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Remove ``cache_control`` where the API takes it (in place); we place our own.

    Works on a tools list and on a messages list; tool inputs and schemas are left alone.
    """
    for item in items:
        if not isinstance(item, dict):
            continue
        if "role" in item:
            _strip_blocks(item.get("content"))
        else:
            item.pop("cache_control", None)
    return items


def _mark_last_user_block(messages: list[dict[str, Any]]) -> None:
    """Put a cache breakpoint on the last block of the last user message."""
    for m in reversed(messages):
        if m.get("role") != "user":
            continue
        content = m.get("content")
        if isinstance(content, str):
            if content:
                m["content"] = [
                    {"type": "text", "text": content, "cache_control": dict(_EPHEMERAL)}
                ]
        elif isinstance(content, list) and content and isinstance(content[-1], dict):
            content[-1]["cache_control"] = dict(_EPHEMERAL)
        return
