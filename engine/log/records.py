"""What a step of a log holds, parsed: its model response, tool calls with their
output and result, metrics, artifacts, warnings and errors."""

from __future__ import annotations

from dataclasses import dataclass, field

from agentdeck.engine.events import (
    Artifact,
    ErrorEvent,
    FileChange,
    Metric,
    ModelResponse,
    StepStart,
    ToolCall,
    ToolOutputChunk,
    ToolResult,
    WarningEvent,
)


@dataclass
class CallRecord:
    call: ToolCall
    chunks: list[ToolOutputChunk] = field(default_factory=list)
    result: ToolResult | None = None

    @property
    def streamed_text(self) -> str:
        return "".join(c.text for c in self.chunks)


@dataclass
class StepRecord:
    """Everything that happened in one step, parsed from its lines."""

    step: int
    start: StepStart | None = None
    response: ModelResponse | None = None
    calls: list[CallRecord] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)
    warnings: list[WarningEvent] = field(default_factory=list)
    errors: list[ErrorEvent] = field(default_factory=list)
    #: Files of the working directory this step changed (repository tasks).
    files: list[FileChange] = field(default_factory=list)
    #: Lines of this step that could not be read, as "line N: why".
    problems: list[str] = field(default_factory=list)
    t_start: float = 0.0
    t_end: float | None = None

    @property
    def duration_s(self) -> float | None:
        return None if self.t_end is None else max(0.0, self.t_end - self.t_start)

    @property
    def text(self) -> str:
        """The assistant's text blocks, joined."""
        if self.response is None:
            return ""
        return "\n\n".join(
            b.get("text", "") for b in self.response.content if b.get("type") == "text"
        )

    @property
    def tool_names(self) -> list[str]:
        return [c.call.name for c in self.calls]

    @property
    def failed(self) -> bool:
        return bool(self.errors) or any(c.result is not None and c.result.error for c in self.calls)

    @property
    def retried(self) -> bool:
        return any(w.code == "retry" for w in self.warnings)
