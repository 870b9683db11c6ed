"""The typed event model: the only contract between the parts of agentdeck.

Every side effect of a run is an event. The log file is one JSON object per
line (see README, "Log format"); the live TUI, the headless printer and the
log writer all consume the same stream.

Events are ``msgspec`` structs in one tagged union (the tag is ``type``), so
decoding a line validates it in C: an unknown type, a missing field, an
unknown field or a value of the wrong type raises ``EventError`` naming the
field and what was expected. ``encode_event`` writes ``seq``, ``t``, ``type``
(and ``step``, when the event has one) first, so a reader can index a log from
each line's prefix without parsing it.
"""

from __future__ import annotations

import re
import time
import typing
from typing import Annotated, Any, ClassVar, Literal

import msgspec

#: The log format this agentdeck writes. ``agentdeck.log/MAJOR[.MINOR]``: a reader takes
#: every minor version of its major up to its own (a new minor only adds event types or
#: optional fields); it refuses a newer one, or another major, with a message to upgrade.
#: When the event model changes, bump the minor and add a fixture under tests/fixtures/.
SCHEMA = "agentdeck.log/1.1"
SCHEMA_PREFIX = "agentdeck.log/"


def schema_version(schema: str) -> tuple[int, int] | None:
    """(major, minor) of ``agentdeck.log/1`` or ``agentdeck.log/1.2``; None if malformed."""
    if not schema.startswith(SCHEMA_PREFIX):
        return None
    head, _, minor = schema[len(SCHEMA_PREFIX) :].partition(".")
    if not head.isdigit() or (minor and not minor.isdigit()):
        return None
    return int(head), int(minor or 0)


SCHEMA_VERSION = schema_version(SCHEMA)

RunStatus = Literal["completed", "max_steps_reached", "error", "interrupted", "limit_exceeded"]
RUN_STATUSES: tuple[str, ...] = typing.get_args(RunStatus)
MetricSource = Literal["sandbox", "trainer", "system", "grader", "agent"]
METRIC_SOURCES: tuple[str, ...] = typing.get_args(MetricSource)
USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)

NonNegative = Annotated[int, msgspec.Meta(ge=0)]


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


# -- nested records ---------------------------------------------------------------------


class Usage(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Token counts of one model call, or summed over several (the API's four kinds)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    @property
    def total(self) -> int:
        """All four kinds: what a token limit counts."""
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_creation_input_tokens
            + self.cache_read_input_tokens
        )

    @property
    def prompt(self) -> int:
        """Tokens the model read (the context used)."""
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_creation_input_tokens += other.cache_creation_input_tokens
        self.cache_read_input_tokens += other.cache_read_input_tokens

    def usage(self) -> Usage:
        """Just the four counts (a copy)."""
        return Usage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_creation_input_tokens=self.cache_creation_input_tokens,
            cache_read_input_tokens=self.cache_read_input_tokens,
        )

    def as_dict(self) -> dict[str, int]:
        return {k: int(getattr(self, k)) for k in USAGE_KEYS}


class Totals(Usage, kw_only=True, forbid_unknown_fields=True):
    """A run's totals (``run_end.totals``): its usage, steps, cost and wall time.

    ``cost_usd`` is None when a step's cost was unknown (a model missing from the
    price table); ``status`` and ``passed`` are filled in by readers, never written.
    """

    steps: int = 0
    cost_usd: float | None = 0.0
    wall_s: float = 0.0

    def add_response(self, usage: Usage, cost_usd: float | None) -> None:
        self.steps += 1
        self.add(usage)
        if cost_usd is None:
            self.cost_usd = None
        elif self.cost_usd is not None:
            self.cost_usd += cost_usd

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            **self.as_dict(),
            "cost_usd": self.cost_usd,
            "wall_s": self.wall_s,
        }


class Check(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One check of a pass rule, e.g. ``F1 >= 0.65`` and whether it was met."""

    name: str
    text: str = ""
    value: Any = None
    threshold: float | None = None
    op: str | None = None
    met: bool | None = None


class ReliabilityBin(msgspec.Struct, kw_only=True):
    bin_lo: float
    bin_hi: float
    confidence: float
    accuracy: float
    count: int = 0


class Calibration(msgspec.Struct, kw_only=True):
    """The calibration part of a classification grade's ``details`` (seed 004):
    a confusion matrix (rows: true class) and a reliability diagram's bins."""

    class_names: list[str] = msgspec.field(default_factory=list)
    confusion_matrix: list[list[float]] = msgspec.field(default_factory=list)
    reliability: list[ReliabilityBin] = msgspec.field(default_factory=list)
    per_class_recall: list[float] = msgspec.field(default_factory=list)
    per_class_precision: list[float] = msgspec.field(default_factory=list)
    ece_bins: int | None = None


# -- events (the table in README "Log format") -------------------------------------------


class Event(msgspec.Struct, kw_only=True, tag_field="type", forbid_unknown_fields=True):
    """Base of every event. ``seq`` and ``t`` are set by the emitter."""

    TYPE: ClassVar[str] = ""
    #: False for live-only events (text deltas): shown by consumers, never written.
    PERSIST: ClassVar[bool] = True

    seq: NonNegative = -1
    t: float = 0.0

    @property
    def type(self) -> str:
        return self.TYPE

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this event (``seq``, ``t``, ``type``, ``step`` first)."""
        out: dict[str, Any] = {"seq": self.seq, "t": self.t, "type": self.TYPE}
        for name in _FIELD_ORDER[type(self)]:
            out[name] = msgspec.to_builtins(getattr(self, name))
        return out


class RunStart(Event, tag="run_start", kw_only=True):
    schema: str = SCHEMA
    run_id: str
    task: str
    task_params: dict[str, Any] = msgspec.field(default_factory=dict)
    agent: str
    model: str | None = None
    max_steps: NonNegative
    system: str = ""
    prompt: str
    tools: list[dict[str, Any]] = msgspec.field(default_factory=list)
    seed: int | None = None
    host: dict[str, Any] = msgspec.field(default_factory=dict)
    limits: dict[str, Any] = msgspec.field(default_factory=dict)
    started_at: str | None = None

    def __post_init__(self) -> None:
        version = schema_version(self.schema)
        if version is None:
            raise ValueError(f"schema: not an agentdeck log schema: {self.schema!r}")
        assert SCHEMA_VERSION is not None
        if version[0] != SCHEMA_VERSION[0] or version[1] > SCHEMA_VERSION[1]:
            raise ValueError(
                f"schema: log schema {self.schema!r} is not supported by this agentdeck (it "
                f"reads agentdeck.log/{SCHEMA_VERSION[0]} up to {SCHEMA!r}); upgrade "
                "agentdeck to read it"
            )


class StepStart(Event, tag="step_start", kw_only=True):
    step: int


class ModelDelta(Event, tag="model_delta", kw_only=True):
    """A piece of a streaming model response (text or tool input JSON). Live only."""

    PERSIST: ClassVar[bool] = False
    step: int
    block_index: int
    kind: Literal["text", "tool_input", "thinking"] = "text"
    text: str


class ModelResponse(Event, tag="model_response", kw_only=True):
    step: int
    message_id: str
    model: str | None = None
    stop_reason: str | None
    content: list[dict[str, Any]]
    usage: Usage = msgspec.field(default_factory=Usage)
    latency_s: float | None = None
    cost_usd: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.usage, dict):  # built in code with a plain dict
            self.usage = msgspec.convert(self.usage, Usage)
        for i, block in enumerate(self.content):
            if not isinstance(block.get("type"), str):
                raise ValueError(f"content: content[{i}]: expected a block object with a 'type'")


class ToolCall(Event, tag="tool_call", kw_only=True):
    step: int
    call_id: str
    name: str
    input: dict[str, Any]
    #: 1-based position of the tool_use block in the assistant message.
    block_index: int


class ToolOutputChunk(Event, tag="tool_output_chunk", kw_only=True):
    step: int | None = None
    call_id: str
    stream: Literal["stdout", "stderr"]
    text: str


class ToolResult(Event, tag="tool_result", kw_only=True):
    step: int
    call_id: str
    name: str | None = None
    #: What was sent to the model (JSON), after truncation.
    output: Any = None
    error: str | None = None
    duration_s: float = 0.0
    #: Bytes of output dropped from what the model saw.
    truncated_bytes: int = 0


class Metric(Event, tag="metric", kw_only=True):
    name: str
    value: float | None
    step: int | None = None
    x: float | None = None
    source: str = "sandbox"


class Artifact(Event, tag="artifact", kw_only=True):
    name: str
    path: str
    mime: str = "application/octet-stream"
    step: int | None = None


class Grade(Event, tag="grade", kw_only=True):
    metrics: dict[str, Any] = msgspec.field(default_factory=dict)
    #: The pass rule in words, e.g. "F1 >= 0.65 AND (precision >= 0.55 OR recall >= 0.55)".
    criteria: str = ""
    #: Each check of the rule and whether it was met.
    checks: list[Check] = msgspec.field(default_factory=list)
    passed: bool
    submitted: bool = True
    details: dict[str, Any] = msgspec.field(default_factory=dict)
    step: int | None = None

    def __post_init__(self) -> None:
        if any(isinstance(c, dict) for c in self.checks):  # built in code with plain dicts
            self.checks = [
                msgspec.convert(c, Check) if isinstance(c, dict) else c for c in self.checks
            ]

    @property
    def reason(self) -> str | None:
        """Why there is no result (``details.reason``), e.g. "interrupted before ..."."""
        r = self.details.get("reason")
        return r if isinstance(r, str) else None

    def calibration(self) -> Calibration | None:
        """The typed calibration details (confusion matrix, reliability), if any and valid."""
        if not any(k in self.details for k in ("confusion_matrix", "reliability")):
            return None
        keys = set(Calibration.__struct_fields__)
        try:
            return msgspec.convert(
                {k: v for k, v in self.details.items() if k in keys}, Calibration
            )
        except msgspec.ValidationError:
            return None


class WarningEvent(Event, tag="warning", kw_only=True):
    where: str
    message: str
    recoverable: bool = True
    step: int | None = None
    #: A short machine-readable reason: "retry", "kernel_restart", "torn_line", ...
    code: str | None = None


class ErrorEvent(Event, tag="error", kw_only=True):
    where: str
    message: str
    recoverable: bool = False
    step: int | None = None
    code: str | None = None


FileOp = Literal["create", "edit", "delete"]
FILE_OPS: tuple[str, ...] = typing.get_args(FileOp)


class FileChange(Event, tag="file_change", kw_only=True):
    """A file of the working directory changed (repository tasks; since ``agentdeck.log/1.1``).

    Written when the editor tool changes a file, and after each ``bash`` call for what
    its scan of the working directory found changed. ``content`` is the whole new text
    (a created file, or an edit whose diff would not be shorter); ``diff`` a unified diff
    from the previous version otherwise; both None for a deletion and for a file whose
    text is not kept (``omitted``: ``"binary"`` or ``"too_large"``). ``step`` is None for
    what was there before the first tool call (the starting repository).
    """

    step: int | None = None
    call_id: str | None = None
    path: str
    op: FileOp
    diff: str | None = None
    content: str | None = None
    size: NonNegative = 0
    sha256: str | None = None
    omitted: str | None = None


class RunEnd(Event, tag="run_end", kw_only=True):
    status: RunStatus
    totals: Totals | None = None
    message: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.totals, dict):  # built in code with a plain dict
            self.totals = msgspec.convert(self.totals, Totals)


AnyEvent = (
    RunStart
    | StepStart
    | ModelDelta
    | ModelResponse
    | ToolCall
    | ToolOutputChunk
    | ToolResult
    | Metric
    | Artifact
    | Grade
    | WarningEvent
    | ErrorEvent
    | FileChange
    | RunEnd
)

EVENT_TYPES: dict[str, type[Event]] = {}
for _cls in typing.get_args(AnyEvent):
    _cls.TYPE = str(_cls.__struct_config__.tag)
    EVENT_TYPES[_cls.TYPE] = _cls


def _field_order(cls: type[Event]) -> tuple[str, ...]:
    names = [f for f in cls.__struct_fields__ if f not in ("seq", "t")]
    if "step" in names:
        names.remove("step")
        names.insert(0, "step")
    return tuple(names)


_FIELD_ORDER: dict[type[Event], tuple[str, ...]] = {
    c: _field_order(c) for c in EVENT_TYPES.values()
}


# -- encoding ---------------------------------------------------------------------------

_encoder = msgspec.json.Encoder(decimal_format="number")


def encode_event(event: Event) -> str:
    """One log line (without the newline): ``seq``, ``t``, ``type``, ``step`` first.

    NaN and infinities (not JSON) are written as null; numpy scalars and arrays,
    paths and sets (what tool handlers commonly return) as their JSON values.
    """
    return encode_event_bytes(event).decode("utf-8")


def encode_event_bytes(event: Event) -> bytes:
    d: dict[str, Any] = {"seq": event.seq, "t": event.t, "type": event.TYPE}
    for name in _FIELD_ORDER[type(event)]:
        d[name] = getattr(event, name)
    try:
        return _encoder.encode(d)
    except TypeError:
        return msgspec.json.encode(d, enc_hook=_enc_hook)


def _enc_hook(obj: Any) -> Any:
    for base in (str, bool, int, float):  # subclasses (torch's version string, IntEnum, ...)
        if isinstance(obj, base):
            return base(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    import os

    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


# -- decoding ---------------------------------------------------------------------------

_decoder = msgspec.json.Decoder(AnyEvent)
_JSON_NAMES = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "bool": "a boolean",
    "object": "an object",
    "array": "a list",
    "null": "null",
}
_AT = re.compile(r" - at `\$\.?([^`]*)`$")


def decode_event(raw: bytes | str) -> Event:
    """Decode and validate one log line; ``EventError`` (without line information)."""
    try:
        ev: Event = _decoder.decode(raw)
    except msgspec.ValidationError as e:
        msg = str(e)
        if "unknown field `x_" in msg:
            return _decode_with_extensions(raw)
        raise _translate(msg, _type_of(raw)) from None
    except msgspec.DecodeError as e:
        raise EventError(f"not valid JSON ({e})") from None
    except RecursionError:
        raise EventError(
            "nested too deeply to be an event (JSON deeper than ~1000 levels)"
        ) from None
    data = raw.encode() if isinstance(raw, str) else raw
    if b'"t"' not in data:  # seq and t default to -1 / 0.0 for constructing, not in a log
        raise EventError("expected unix seconds (a number), got nothing", field="t", type=ev.TYPE)
    if b'"seq"' not in data:
        raise EventError("expected a non-negative integer, got nothing", field="seq", type=ev.TYPE)
    return ev


def event_from_dict(d: Any) -> Event:
    """Validate one decoded JSON object and build its event (``EventError`` if invalid)."""
    if not isinstance(d, dict):
        raise EventError(f"expected a JSON object, got {_describe(d)}")
    ext = [k for k in d if isinstance(k, str) and k.startswith("x_")]
    if ext:
        d = {k: v for k, v in d.items() if k not in ext}
    etype = d.get("type")
    etype = etype if isinstance(etype, str) else None
    try:
        ev: Event = msgspec.convert(d, AnyEvent, strict=True)
    except msgspec.ValidationError as e:
        raise _translate(str(e), etype) from None
    for name, what in (("seq", "a non-negative integer"), ("t", "unix seconds (a number)")):
        if name not in d:
            raise EventError(f"expected {what}, got nothing", field=name, type=etype)
    return ev


def _decode_with_extensions(raw: bytes | str) -> Event:
    """A line with ``x_`` extension fields: they are allowed, and dropped."""
    return event_from_dict(msgspec.json.decode(raw))


def _type_of(raw: bytes | str) -> str | None:
    m = re.search(rb'"type"\s*:\s*"([a-z_]+)"', raw.encode() if isinstance(raw, str) else raw)
    return m.group(1).decode() if m else None


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
    if origin is Annotated:
        return _expect(typing.get_args(tp)[0])
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " or ".join(_expect(a) for a in typing.get_args(tp))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    base = origin or tp
    if isinstance(base, type) and issubclass(base, msgspec.Struct):
        return "an object"
    return {
        int: "an integer",
        float: "a number",
        str: "a string",
        bool: "a boolean",
        list: "a list",
        dict: "an object",
    }.get(base, str(tp))


def _field_type(etype: str | None, name: str) -> Any:
    cls = EVENT_TYPES.get(etype or "")
    if cls is None:
        return None
    return typing.get_type_hints(cls, include_extras=True).get(name)


def _translate(msg: str, etype: str | None) -> EventError:
    """msgspec's message (``Expected `int`, got `str` - at `$.step```) in our words."""
    m = _AT.search(msg)
    path = m.group(1) if m else ""
    body = msg[: m.start()] if m else msg
    top = re.split(r"[.\[]", path, maxsplit=1)[0] if path else None
    if etype not in EVENT_TYPES:
        if top == "type" or (etype is not None and not path):
            return EventError(
                f"unknown event type {etype!r}; expected one of {', '.join(sorted(EVENT_TYPES))}",
                field="type",
            )
        if "missing required field `type`" in body:
            return EventError("missing", field="type")
        if body.startswith("Expected `object`"):
            seen = re.search(r"got `(\w+)`", body)
            return EventError(
                f"expected a JSON object, got "
                f"{_JSON_NAMES.get(seen.group(1), seen.group(1)) if seen else '?'}"
            )
    if top == "seq":
        return EventError(
            f"expected a non-negative integer ({body.lower()})", field="seq", type=etype
        )
    if top == "t":
        return EventError(
            f"expected unix seconds (a number) ({body.lower()})", field="t", type=etype
        )
    missing = re.match(r"Object missing required field `(\w+)`", body)
    if missing:
        name = missing.group(1)
        if not path:
            if name == "seq":
                return EventError(
                    "expected a non-negative integer, got nothing", field="seq", type=etype
                )
            if name == "t":
                return EventError(
                    "expected unix seconds (a number), got nothing", field="t", type=etype
                )
            return EventError(
                f"missing; expected {_expect(_field_type(etype, name))}", field=name, type=etype
            )
        return EventError(f"{path}.{name}: missing", field=top, type=etype)
    unknown = re.match(r"Object contains unknown field `(\w+)`", body)
    if unknown:
        name = unknown.group(1)
        if top == "usage":
            return EventError(
                f"unknown usage key {name!r}; expected {', '.join(USAGE_KEYS)}",
                field="usage",
                type=etype,
            )
        if path:
            return EventError(f"{path}: unknown field {name!r}", field=top, type=etype)
        cls = EVENT_TYPES.get(etype or "")
        expected = ", ".join(_FIELD_ORDER[cls]) if cls else ""
        return EventError(f"unknown field(s) {name!r}; expected {expected}", type=etype)
    wrong_type = re.match(r"Expected `([^`]+)`(?:[^,]*)?, got `(\w+)`", body)
    if wrong_type and top is not None:
        got = _JSON_NAMES.get(wrong_type.group(2), wrong_type.group(2))
        if path == top:
            want = _expect(_field_type(etype, top))
        else:
            first = wrong_type.group(1).split(" ")[0]
            want = f"{_JSON_NAMES.get(first, wrong_type.group(1))} at {path}"
        return EventError(f"expected {want}, got {got}", field=top, type=etype)
    enum = re.match(r"Invalid enum value (.+)", body)
    if enum and top:
        want = _expect(_field_type(etype, top))
        return EventError(f"expected {want}, got {enum.group(1)}", field=top, type=etype)
    if body.startswith(f"{top}: ") and top:
        return EventError(body[len(top) + 2 :], field=top, type=etype)
    for name in ("schema", "content"):
        if body.startswith(f"{name}: "):
            return EventError(body[len(name) + 2 :], field=name, type=etype)
    return EventError(f"{path + ': ' if path else ''}{body}", field=top, type=etype)


def now() -> float:
    return time.time()


__all__ = [
    "EVENT_TYPES",
    "FILE_OPS",
    "METRIC_SOURCES",
    "RUN_STATUSES",
    "SCHEMA",
    "SCHEMA_PREFIX",
    "USAGE_KEYS",
    "AnyEvent",
    "Artifact",
    "Calibration",
    "Check",
    "ErrorEvent",
    "Event",
    "EventError",
    "FileChange",
    "FileOp",
    "Grade",
    "Metric",
    "MetricSource",
    "ModelDelta",
    "ModelResponse",
    "ReliabilityBin",
    "RunEnd",
    "RunStart",
    "RunStatus",
    "StepStart",
    "ToolCall",
    "ToolOutputChunk",
    "ToolResult",
    "Totals",
    "Usage",
    "WarningEvent",
    "decode_event",
    "encode_event",
    "encode_event_bytes",
    "event_from_dict",
    "now",
]
