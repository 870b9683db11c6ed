"""Reading steps out of a RunLog for display: full records and one-row summaries.

Both read only the lines they need (``RunLog.line_types``): a step's
``tool_output_chunk`` lines, which a tool printing megabytes can fill, are
skipped unless asked for, so a row or a detail view costs the same however
much the tool printed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from agentdeck.engine.events import ToolCall, Usage
from agentdeck.engine.log import RunLog, StepRecord
from agentdeck.tui.format import output_text


def read_step(
    log: RunLog, step: int, *, chunks: bool = False, types: Iterable[str] | None = None
) -> StepRecord:
    """One step of ``log`` for display: without output chunks unless asked
    (the result's output is what the model saw), only ``types`` if given."""
    return log.step(step, chunks=chunks, types=types)


@dataclass(frozen=True, slots=True)
class StepSummary:
    """What one row of the steps pane shows."""

    step: int
    tools: tuple[str, ...] = ()
    duration_s: float | None = None
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None
    error: bool = False
    retried: bool = False
    finished: bool = True
    #: A short text: the first line of the first tool input (or the assistant text).
    gist: str = ""

    @property
    def prompt_tokens(self) -> int:
        """Tokens the model read this step (context used)."""
        return self.usage.prompt


def summarize(rec: StepRecord, *, finished: bool = True) -> StepSummary:
    errored = bool(rec.errors) or any(c.result is not None and c.result.error for c in rec.calls)
    return StepSummary(
        step=rec.step,
        tools=tuple(rec.tool_names),
        duration_s=rec.duration_s,
        usage=rec.response.usage if rec.response else Usage(),
        cost_usd=rec.response.cost_usd if rec.response else None,
        error=errored,
        retried=rec.retried,
        finished=finished,
        gist=gist_of(rec),
    )


#: The editor tool (Anthropic's text editor shape): shown as its command and path.
EDITOR_TOOL = "str_replace_based_edit_tool"
#: Short names for the steps pane.
SHORT_NAMES = {EDITOR_TOOL: "edit"}
_EDITOR_COMMANDS = ("view", "create", "str_replace", "insert", "undo_edit")


def _is_editor(call: ToolCall) -> bool:
    inp = call.input
    return call.name == EDITOR_TOOL or (
        inp.get("command") in _EDITOR_COMMANDS and isinstance(inp.get("path"), str)
    )


def call_label(call: ToolCall) -> str | None:
    """A one-line summary of an editor call (``create models.py``), else None."""
    if not _is_editor(call):
        return None
    inp = call.input
    label = f"{inp.get('command')} {inp.get('path')}"
    if inp.get("command") == "view" and isinstance(inp.get("view_range"), list):
        label += f" lines {inp['view_range']}"
    if inp.get("command") == "insert":
        label += f" after line {inp.get('insert_line')}"
    return label


def _lexer_for_path(path: str) -> str:
    ext = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    return {
        "py": "python",
        "sh": "bash",
        "md": "markdown",
        "toml": "toml",
        "json": "json",
        "yaml": "yaml",
        "yml": "yaml",
        "cfg": "ini",
        "ini": "ini",
    }.get(ext, "text")


def _editor_text(inp: dict[str, object]) -> tuple[str, str]:
    command, path = inp.get("command"), str(inp.get("path"))
    if command == "create" and isinstance(inp.get("file_text"), str):
        return str(inp["file_text"]).rstrip("\n"), _lexer_for_path(path)
    if command == "str_replace":
        old, new = str(inp.get("old_str", "")), str(inp.get("new_str") or "")
        lines = [f"-{x}" for x in old.split("\n")] + [f"+{x}" for x in new.split("\n")]
        return "\n".join(lines), "diff"
    if command == "insert":
        text = str(inp.get("insert_text", inp.get("new_str")) or "")
        return "\n".join(f"+{x}" for x in text.split("\n")), "diff"
    return "", "text"


def input_text(call: ToolCall) -> tuple[str, str]:
    """A tool input as (text, lexer): code inputs as Python, shell commands as bash, an
    editor call's file text (or its replacement as a diff), the rest as JSON."""
    inp = call.input
    if _is_editor(call):
        return _editor_text(inp)
    if len(inp) == 1:
        ((key, val),) = inp.items()
        if isinstance(val, str) and key in ("code", "source", "python", "script", "command"):
            return val.strip("\n"), "bash" if key == "command" else "python"
    if not inp:
        return "{}", "json"
    return json.dumps(inp, indent=2, ensure_ascii=False, default=str), "json"


def gist_of(rec: StepRecord) -> str:
    for c in rec.calls:
        label = call_label(c.call)
        if label:
            return label
        text, _ = input_text(c.call)
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith("#") and line not in ("{}", "{", "}"):
                return line
        if text == "{}":
            return "{}"
    return rec.text.strip().split("\n", 1)[0] if rec.text else ""


def step_search_text(rec: StepRecord) -> str:
    """Everything a person reads in a step, for ``/`` search."""
    parts = [rec.text]
    for c in rec.calls:
        parts.append(c.call.name)
        parts.append(call_label(c.call) or "")
        parts.append(input_text(c.call)[0])
        if c.result is not None:
            parts.append(output_text(c.result.output))
            if c.result.error:
                parts.append(c.result.error)
    parts.extend(e.message for e in rec.errors)
    parts.extend(w.message for w in rec.warnings)
    return "\n".join(p for p in parts if p)


def call_signature(call: ToolCall) -> tuple[str, str]:
    """What makes two tool calls "the same" when comparing runs."""
    return call.name, json.dumps(call.input, sort_keys=True, ensure_ascii=False, default=str)
