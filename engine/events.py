"""The typed event model: the only contract between the parts of agentdeck.

Every side effect of a run is an event. The log file is one JSON object per
line (see README, "Log format"); the live TUI, the headless printer and the
log writer all consume the same stream.

Events are small keyword-only dataclasses. ``Event.to_dict`` gives the JSON
shape (``seq``, ``t``, ``type`` first, so a reader can index a log from the
line prefix alone) and ``event_from_dict`` validates strictly: an unknown type,
a missing field, an unknown field or a value of the wrong type raises
``EventError`` naming the field and what was expected.
"""

from __future__ import annotations

import time
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, Literal, Union

SCHEMA = "agentdeck.log/1"
SCHEMA_PREFIX = "agentdeck.log/"

RunStatus = Literal["completed", "max_steps_reached", "error", "interrupted", "limit_exceeded"]
RUN_STATUSES: tuple[str, ...] = typing.get_args(RunStatus)
METRIC_SOURCES = ("sandbox", "trainer", "system", "grader", "agent")
USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)


class EventError(ValueError):
    """An event that does not match the schema.

    ``str()`` reads like ``run.jsonl:17: model_response.usage: expected an
    object, got a list`` so that a CLI can print it as the one-line error.
    """

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        type: str | None = None,
        line: int | None = None,
        source: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.type = type
        self.line = line
        self.source = source

    def located(self, *, line: int | None = None, source: str | None = None) -> EventError:
        """The same error with a file and line attached."""
        return EventError(
            self.message,
            field=self.field,
            type=self.type,
            line=line if line is not None else self.line,
            source=source if source is not None else self.source,
        )

    def __str__(self) -> str:
        where = ""
        if self.source is not None:
            where = f"{self.source}:"
        if self.line is not None:
            where += f"{self.line}:"
        what = ""
        if self.type and self.field:
            what = f"{self.type}.{self.field}: "
        elif self.field:
            what = f"{self.field}: "
        elif self.type:
            what = f"{self.type}: "
        return f"{where} {what}{self.message}".strip() if where else f"{what}{self.message}"


def empty_usage() -> dict[str, int]:
    return {k: 0 for k in USAGE_KEYS}


@dataclass(kw_only=True, slots=True)
class Event:
    """Base of every event. ``seq`` and ``t`` are set by the emitter."""

    TYPE: ClassVar[str] = ""
    #: False for live-only events (text deltas): shown by consumers, never written.
    PERSIST: ClassVar[bool] = True

    seq: int = -1
    t: float = 0.0

    @property
    def type(self) -> str:
        return self.TYPE

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"seq": self.seq, "t": self.t, "type": self.TYPE}
        for f in fields(self):
            if f.name not in ("seq", "t"):
                d[f.name] = getattr(self, f.name)
        return d


# -- event types (the table in README "Log format") ---------------------------


@dataclass(kw_only=True, slots=True)
class RunStart(Event):
    TYPE: ClassVar[str] = "run_start"
    schema: str = SCHEMA
    run_id: str
    task: str
    task_params: dict[str, Any] = field(default_factory=dict)
    agent: str
    model: str | None = None
    max_steps: int
    system: str = ""
    prompt: str
    tools: list[dict[str, Any]] = field(default_factory=list)
    seed: int | None = None
    host: dict[str, Any] = field(default_factory=dict)
    limits: dict[str, Any] = field(default_factory=dict)
    started_at: str | None = None


@dataclass(kw_only=True, slots=True)
class StepStart(Event):
    TYPE: ClassVar[str] = "step_start"
    step: int


@dataclass(kw_only=True, slots=True)
class ModelDelta(Event):
    """A piece of a streaming model response (text or tool input JSON). Live only."""

    TYPE: ClassVar[str] = "model_delta"
    PERSIST: ClassVar[bool] = False
    step: int
    block_index: int
    kind: Literal["text", "tool_input", "thinking"] = "text"
    text: str


@dataclass(kw_only=True, slots=True)
class ModelResponse(Event):
    TYPE: ClassVar[str] = "model_response"
    step: int
    message_id: str
    model: str | None = None
    stop_reason: str | None
    content: list[dict[str, Any]]
    usage: dict[str, int | None] = field(default_factory=empty_usage)
    latency_s: float | None = None
    cost_usd: float | None = None


@dataclass(kw_only=True, slots=True)
class ToolCall(Event):
    TYPE: ClassVar[str] = "tool_call"
    step: int
    call_id: str
    name: str
    input: dict[str, Any]
    #: 1-based position of the tool_use block in the assistant message.
    block_index: int


@dataclass(kw_only=True, slots=True)
class ToolOutputChunk(Event):
    TYPE: ClassVar[str] = "tool_output_chunk"
    step: int | None = None
    call_id: str
    stream: Literal["stdout", "stderr"]
    text: str


@dataclass(kw_only=True, slots=True)
class ToolResult(Event):
    TYPE: ClassVar[str] = "tool_result"
    step: int
    call_id: str
    name: str | None = None
    #: What was sent to the model (JSON), after truncation.
    output: Any = None
    error: str | None = None
    duration_s: float = 0.0
    #: Bytes of output dropped from what the model saw.
    truncated_bytes: int = 0


@dataclass(kw_only=True, slots=True)
class Metric(Event):
    TYPE: ClassVar[str] = "metric"
    name: str
    value: float | None
    step: int | None = None
    x: float | None = None
    source: str = "sandbox"


@dataclass(kw_only=True, slots=True)
class Artifact(Event):
    TYPE: ClassVar[str] = "artifact"
    name: str
    path: str
    mime: str = "application/octet-stream"
    step: int | None = None


@dataclass(kw_only=True, slots=True)
class Grade(Event):
    TYPE: ClassVar[str] = "grade"
    metrics: dict[str, Any] = field(default_factory=dict)
    #: The pass rule in words, e.g. "F1 >= 0.65 AND (precision >= 0.55 OR recall >= 0.55)".
    criteria: str = ""
    #: Each check of the rule: {"name", "text", "value", "threshold", "met"}.
    checks: list[dict[str, Any]] = field(default_factory=list)
    passed: bool
    submitted: bool = True
    details: dict[str, Any] = field(default_factory=dict)
    step: int | None = None


@dataclass(kw_only=True, slots=True)
class WarningEvent(Event):
    TYPE: ClassVar[str] = "warning"
    where: str
    message: str
    recoverable: bool = True
    step: int | None = None
    #: A short machine-readable reason: "retry", "kernel_restart", "torn_line", ...
    code: str | None = None


@dataclass(kw_only=True, slots=True)
class ErrorEvent(Event):
    TYPE: ClassVar[str] = "error"
    where: str
    message: str
    recoverable: bool = False
    step: int | None = None
    code: str | None = None


@dataclass(kw_only=True, slots=True)
class RunEnd(Event):
    TYPE: ClassVar[str] = "run_end"
    status: RunStatus
    totals: dict[str, Any] = field(default_factory=dict)
    message: str | None = None


EVENT_TYPES: dict[str, type[Event]] = {
    cls.TYPE: cls
    for cls in (
        RunStart,
        StepStart,
        ModelDelta,
        ModelResponse,
        ToolCall,
        ToolOutputChunk,
        ToolResult,
        Metric,
        Artifact,
        Grade,
        WarningEvent,
        ErrorEvent,
        RunEnd,
    )
}


# -- validation ----------------------------------------------------------------

_MISSING = object()


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _expect(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is Any:
        return "any value"
    if tp is type(None):
        return "null"
    if origin in (Union, types.UnionType):
        return " or ".join(_expect(a) for a in typing.get_args(tp))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    base = origin or tp
    return {
        int: "an integer",
        float: "a number",
        str: "a string",
        bool: "a boolean",
        list: "a list",
        dict: "an object",
    }.get(base, str(tp))


def _matches(value: Any, tp: Any) -> bool:
    if tp is Any:
        return True
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return any(_matches(value, a) for a in typing.get_args(tp))
    if origin is Literal:
        return value in typing.get_args(tp)
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin is list or tp is list:
        return isinstance(value, list)
    if origin is dict or tp is dict:
        return isinstance(value, dict)
    return isinstance(value, tp)


@dataclass(frozen=True, slots=True)
class _FieldSpec:
    name: str
    tp: Any
    required: bool


def _specs(cls: type[Event]) -> tuple[_FieldSpec, ...]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in fields(cls):
        if f.name in ("seq", "t"):
            continue
        required = f.default is MISSING and f.default_factory is MISSING
        out.append(_FieldSpec(f.name, hints[f.name], required))
    return tuple(out)

_SPECS: dict[str, tuple[_FieldSpec, ...]] = {name: _specs(cls) for name, cls in EVENT_TYPES.items()}


def event_from_dict(d: Any) -> Event:
    """Validate one decoded JSON object and build its event.

    Raises ``EventError`` (without line information; the reader adds it).
    """
    if not isinstance(d, dict):
        raise EventError(f"expected a JSON object, got {_describe(d)}")
    etype = d.get("type", _MISSING)
    if etype is _MISSING:
        raise EventError("missing", field="type")
    if not isinstance(etype, str) or etype not in EVENT_TYPES:
        raise EventError(
            f"unknown event type {etype!r}; expected one of {', '.join(sorted(EVENT_TYPES))}",
            field="type",
        )
    seq = d.get("seq", _MISSING)
    if seq is _MISSING or not _matches(seq, int) or seq < 0:
        raise EventError(
            f"expected a non-negative integer, got {_describe(None if seq is _MISSING else seq)}",
            field="seq",
            type=etype,
        )
    t = d.get("t", _MISSING)
    if t is _MISSING or not _matches(t, float):
        raise EventError(
            f"expected unix seconds (a number), got {_describe(None if t is _MISSING else t)}",
            field="t",
            type=etype,
        )
    specs = _SPECS[etype]
    known = {"seq", "t", "type"} | {s.name for s in specs}
    unknown = [k for k in d if k not in known and not k.startswith("x_")]
    if unknown:
        raise EventError(
            f"unknown field(s) {', '.join(map(repr, unknown))}; "
            f"expected {', '.join(s.name for s in specs)}",
            type=etype,
        )
    kwargs: dict[str, Any] = {"seq": seq, "t": float(t)}
    for s in specs:
        if s.name not in d:
            if s.required:
                raise EventError(f"missing; expected {_expect(s.tp)}", field=s.name, type=etype)
            continue
        v = d[s.name]
        if not _matches(v, s.tp):
            raise EventError(
                f"expected {_expect(s.tp)}, got {_describe(v)}", field=s.name, type=etype
            )
        kwargs[s.name] = v
    ev = EVENT_TYPES[etype](**kwargs)
    _check_semantics(ev)
    return ev


def _check_semantics(ev: Event) -> None:
    if isinstance(ev, RunStart):
        if not ev.schema.startswith(SCHEMA_PREFIX):
            raise EventError(
                f"not an agentdeck log schema: {ev.schema!r}", field="schema", type=ev.TYPE
            )
        if ev.schema != SCHEMA:
            raise EventError(
                f"log schema {ev.schema!r} is not supported by this agentdeck (it reads {SCHEMA!r}); "
                "upgrade agentdeck to read it",
                field="schema",
                type=ev.TYPE,
            )
        if ev.max_steps < 0:
            raise EventError("must be >= 0", field="max_steps", type=ev.TYPE)
    elif isinstance(ev, ModelResponse):
        for k, v in ev.usage.items():
            if k not in USAGE_KEYS:
                raise EventError(
                    f"unknown usage key {k!r}; expected {', '.join(USAGE_KEYS)}",
                    field="usage",
                    type=ev.TYPE,
                )
            if v is not None and not _matches(v, int):
                raise EventError(
                    f"usage.{k}: expected an integer, got {_describe(v)}",
                    field="usage",
                    type=ev.TYPE,
                )
        for i, block in enumerate(ev.content):
            if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                raise EventError(
                    f"content[{i}]: expected a block object with a 'type'",
                    field="content",
                    type=ev.TYPE,
                )
    elif isinstance(ev, ToolOutputChunk):
        if ev.stream not in ("stdout", "stderr"):
            raise EventError("expected 'stdout' or 'stderr'", field="stream", type=ev.TYPE)


def usage_of(ev: ModelResponse) -> dict[str, int]:
    """The four usage counts with missing or null values as 0."""
    return {k: int(ev.usage.get(k) or 0) for k in USAGE_KEYS}


def now() -> float:
    return time.time()
