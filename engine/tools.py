"""Tools: a JSON schema for the model plus a handler the engine runs.

A handler gets the tool's input and a ``ToolContext`` (the run's sandbox,
directories and event bus) and returns a ``ToolOutcome``: the JSON sent back to
the model, an error message if the call failed (sent with ``is_error: true``),
and, for a submit tool, the grade that ends the run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agentdeck.engine.events import Event, Grade

if TYPE_CHECKING:
    from agentdeck.engine.log import RunDir
    from agentdeck.engine.sandbox import Sandbox


@dataclass
class ToolOutcome:
    #: JSON-able value sent to the model (after truncation).
    output: Any
    #: A message the agent can act on when the call failed; None on success.
    error: str | None = None
    #: Bytes of output dropped from what the model sees.
    truncated_bytes: int = 0
    #: Set by a submit tool on a valid submission: the run ends, graded.
    grade: Grade | None = None


@dataclass
class ToolContext:
    run_dir: RunDir
    sandbox: Sandbox | None
    emit: Callable[[Event], Event]
    step: int
    call_id: str
    #: Seconds one call may run before it is interrupted.
    time_limit_s: float
    stop: threading.Event = field(default_factory=threading.Event)


Handler = Callable[[dict[str, Any], ToolContext], ToolOutcome]


@dataclass
class ToolSpec:
    name: str
    description: str
    input_schema: dict[str, Any]
    handler: Handler
    #: The Anthropic-defined tool this one has the shape of (``"bash"``,
    #: ``"text_editor"``): an agent may send it as Anthropic's own tool type where its
    #: model supports one (``agentdeck.engine.agents.claude``). None: an ordinary tool.
    anthropic_tool: str | None = None

    def schema(self) -> dict[str, Any]:
        """The tool as the Messages API takes it (plus ``anthropic_tool`` when set, which
        an agent strips or acts on before sending)."""
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema,
        }
        if self.anthropic_tool:
            out[ANTHROPIC_TOOL_KEY] = self.anthropic_tool
        return out


#: The key of a tool schema that names the Anthropic-defined tool it matches.
ANTHROPIC_TOOL_KEY = "anthropic_tool"


class ToolInputError(ValueError):
    """The model called a tool with input that does not fit its schema."""


def check_input(spec: ToolSpec, tool_input: Any) -> dict[str, Any]:
    """A light check of a tool input against its schema (required keys, basic types).

    Returns the input; raises ``ToolInputError`` with a message for the model.
    """
    if not isinstance(tool_input, dict):
        raise ToolInputError(f"{spec.name}: input must be a JSON object")
    schema = spec.input_schema
    props: dict[str, Any] = schema.get("properties", {})
    missing = [k for k in schema.get("required", []) if k not in tool_input]
    if missing:
        raise ToolInputError(f"{spec.name}: missing required input {', '.join(map(repr, missing))}")
    types: dict[str, type | tuple[type, ...]] = {
        "string": str,
        "integer": int,
        "number": (int, float),
        "boolean": bool,
        "object": dict,
        "array": list,
    }
    for k, v in tool_input.items():
        want = props.get(k, {}).get("type")
        if want in types and not isinstance(v, types[want]):
            raise ToolInputError(f"{spec.name}: input {k!r} must be of type {want}")
    return tool_input
