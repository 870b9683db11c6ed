"""Seed-format markdown logs ("# Agent Run Log"): export and import.

The layout is that of ``shared/seeds/000_*.txt``: a header (Timestamp, Model,
Max Steps, Completion Status), the Initial Prompt, ``### Step N`` sections
with the API response's id, stop reason and token counts, the assistant's
text, ``#### Tool Call K: `name` `` (K = the tool_use block's 1-based position
in the message) with Input and Output blocks, then Final Result and Grading.

Export adds lines the seed lacks only when there is something to say (cache
tokens, cost, grade metrics), so exporting an imported seed reproduces it.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agentdeck.engine.errors import UserError
from agentdeck.engine.events import (
    USAGE_KEYS,
    Event,
    Grade,
    ModelResponse,
    RunEnd,
    RunStart,
    StepStart,
    ToolCall,
    ToolResult,
    Totals,
    Usage,
)

if TYPE_CHECKING:
    from agentdeck.engine.log import RunLog

CODE_TOOLS_KEY = "code"
#: ``run_start.host["cost"]`` of an imported log whose costs agentdeck computed from the
#: usage (the file had none): said wherever the cost is shown.
COMPUTED_COST = "computed from the usage with agentdeck's price table"


class MarkdownError(UserError, ValueError):
    """A markdown log that cannot be imported; names the line and what was expected."""

    def __init__(self, message: str, *, line: int | None = None, source: str | None = None):
        super().__init__(message)
        self.message = message
        self.line = line
        self.source = source

    def __str__(self) -> str:
        where = self.source or ""
        if self.line is not None:
            where += f":{self.line}"
        return f"{where}: {self.message}" if where else self.message


# -- export ----------------------------------------------------------------------------


def _fence(text: str, lang: str = "") -> str:
    """A fenced block whose fence is longer than any backtick run inside."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{text}\n{ticks}"


def _json_block(obj: Any) -> str:
    return _fence(json.dumps(obj, indent=2, ensure_ascii=False), "json")


def _fmt_timestamp(start: RunStart) -> str:
    if start.started_at:
        return start.started_at
    return datetime.fromtimestamp(start.t).isoformat()


def export_markdown(log: RunLog) -> str:
    """The run as a seed-format markdown document."""
    start = log.header
    assert start is not None
    end = log.end
    grade = log.grade
    computed_cost = start.host.get("cost") == COMPUTED_COST
    out: list[str] = []
    w = out.append
    w("# Agent Run Log\n")
    w(f"**Timestamp:** {_fmt_timestamp(start)}\n")
    w(f"**Model:** {start.model or start.agent}\n")
    w(f"**Max Steps:** {start.max_steps}\n")
    w(f"**Completion Status:** {end.status if end else 'incomplete'}\n")
    w("## Initial Prompt\n")
    w(_fence(start.prompt) + "\n")
    w("## Execution Steps\n")
    final_result: Any = None
    for n in log.step_numbers:
        rec = log.step(n)
        w(f"### Step {n}\n")
        resp = rec.response
        if resp is not None:
            u = resp.usage
            lines = [
                "**API Response:**",
                f"- ID: `{resp.message_id}`",
                f"- Stop Reason: `{resp.stop_reason}`",
                f"- Input Tokens: {u.input_tokens}",
                f"- Output Tokens: {u.output_tokens}",
            ]
            if u.cache_creation_input_tokens:
                lines.append(f"- Cache Creation Input Tokens: {u.cache_creation_input_tokens}")
            if u.cache_read_input_tokens:
                lines.append(f"- Cache Read Input Tokens: {u.cache_read_input_tokens}")
            if resp.cost_usd is not None and not computed_cost:
                lines.append(f"- Cost (USD): {resp.cost_usd:.6f}")
            w("\n".join(lines) + "\n")
            text = rec.text
            if text.strip():
                w("**Assistant Response:**\n")
                w(text.strip("\n") + "\n")
        for cr in rec.calls:
            call = cr.call
            w(f"#### Tool Call {call.block_index}: `{call.name}`\n")
            w("**Input:**\n")
            inp = call.input
            if set(inp) == {CODE_TOOLS_KEY} and isinstance(inp[CODE_TOOLS_KEY], str):
                w(_fence(inp[CODE_TOOLS_KEY], "python") + "\n")
            else:
                w(_json_block(inp) + "\n")
            if cr.result is not None:
                w("**Output:**\n")
                output = cr.result.output
                if output is None and cr.result.error:
                    output = {"error": cr.result.error}
                w(_json_block(output) + "\n")
                if grade is not None and grade.step == n and grade.submitted:
                    final_result = output
        for e in rec.errors:
            w(f"**Error ({e.where}):** {e.message}\n")
        w("---\n")
    w("## Final Result\n")
    if grade is not None and grade.submitted:
        result = final_result if final_result is not None else grade.details.get("submission")
        w(_json_block(result if result is not None else {"submitted": True}) + "\n")
    else:
        w("*No result submitted*\n")
    w("## Grading\n")
    w(f"**Success:** {bool(grade.passed) if grade is not None else False}\n")
    if grade is not None:
        if grade.criteria:
            w(f"**Criteria:** {grade.criteria}\n")
        if grade.metrics:
            w("**Metrics:**\n")
            w(
                "\n".join(
                    f"- {k}: {_fmt_metric(v)}"
                    for k, v in grade.metrics.items()
                    if not isinstance(v, dict | list)
                )
                + "\n"
            )
    return "\n".join(out) + "\n"


def _fmt_metric(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


# -- import ----------------------------------------------------------------------------

_STEP = re.compile(r"^### Step (\d+)\s*$")
_CALL = re.compile(r"^#### Tool Call (\d+): `([^`]+)`\s*$")
_FIELD = re.compile(r"^\*\*([A-Za-z ]+):\*\*\s*(.*)$")
_ITEM = re.compile(r"^- ([A-Za-z ()]+):\s*`?([^`]*)`?\s*$")
_FENCE = re.compile(r"^(`{3,})([\w+-]*)\s*$")


class _Lines:
    def __init__(self, text: str, source: str) -> None:
        self.lines = text.replace("\r\n", "\n").split("\n")
        self.i = 0
        self.source = source

    def peek(self) -> str | None:
        return self.lines[self.i] if self.i < len(self.lines) else None

    def next(self) -> str:
        line = self.lines[self.i]
        self.i += 1
        return line

    def skip_blank(self) -> None:
        while self.i < len(self.lines) and not self.lines[self.i].strip():
            self.i += 1

    def error(self, msg: str, line: int | None = None) -> MarkdownError:
        return MarkdownError(
            msg, line=(line if line is not None else self.i + 1), source=self.source
        )

    def fenced(self, what: str) -> tuple[str, str]:
        """Read a fenced block; returns (language, text)."""
        self.skip_blank()
        start = self.i + 1
        line = self.peek()
        m = _FENCE.match(line or "")
        if not m:
            raise self.error(f"expected a ``` code block for {what}, found {line!r}")
        self.next()
        ticks, lang = m.group(1), m.group(2)
        body: list[str] = []
        while True:
            if self.peek() is None:
                raise self.error(
                    f"code block for {what} opened at line {start} is never closed", line=start
                )
            line = self.next()
            if line.rstrip() == ticks:
                break
            body.append(line)
        return lang, "\n".join(body)


def import_markdown(text: str, *, source: str = "<markdown>") -> list[Event]:
    """Read a seed-format markdown log into events (``run_start`` ... ``run_end``)."""
    L = _Lines(text, source)
    L.skip_blank()
    first = L.peek()
    if first is None or first.strip() != "# Agent Run Log":
        raise L.error("not a seed-format markdown log: expected '# Agent Run Log' first")
    L.next()
    header: dict[str, str] = {}
    while True:
        L.skip_blank()
        line = L.peek()
        if line is None:
            raise L.error("missing '## Initial Prompt'")
        if line.startswith("## "):
            break
        m = _FIELD.match(line)
        if m:
            header[m.group(1).strip()] = m.group(2).strip()
        L.next()
    if (L.peek() or "").strip() != "## Initial Prompt":
        raise L.error(f"expected '## Initial Prompt', found {L.peek()!r}")
    L.next()
    _, prompt = L.fenced("the initial prompt")

    timestamp = header.get("Timestamp", "")
    try:
        t0 = datetime.fromisoformat(timestamp).timestamp() if timestamp else 0.0
    except ValueError as e:
        raise MarkdownError(f"Timestamp {timestamp!r} is not an ISO date", source=source) from e
    try:
        max_steps = int(header.get("Max Steps", "0"))
    except ValueError as e:
        raise MarkdownError(
            f"Max Steps {header.get('Max Steps')!r} is not a number", source=source
        ) from e
    model = header.get("Model") or None
    status = header.get("Completion Status", "")

    events: list[Event] = []

    def add(ev: Event) -> None:
        ev.seq = len(events)
        ev.t = t0
        events.append(ev)

    from agentdeck.engine import pricing

    priced = pricing.price_for(model) is not None
    add(
        RunStart(
            run_id=re.sub(r"\W+", "-", source.rsplit("/", 1)[-1]).strip("-") or "imported",
            task=_guess_task(prompt),
            agent="claude" if model and model.startswith("claude") else (model or "unknown"),
            model=model,
            max_steps=max_steps,
            prompt=prompt,
            host={
                "imported_from": "markdown",
                "file": source,
                **({"cost": COMPUTED_COST} if priced else {}),
            },
            started_at=timestamp or None,
        )
    )
    totals = Totals(cost_usd=None)
    L.skip_blank()
    if (L.peek() or "").strip() == "## Execution Steps":
        L.next()
    final_result: Any = None
    submitted = False
    passed = False
    criteria = ""
    metrics: dict[str, Any] = {}
    last_step = 0
    while True:
        L.skip_blank()
        line = L.peek()
        if line is None:
            break
        m = _STEP.match(line)
        if m:
            last_step = int(m.group(1))
            L.next()
            _read_step(L, last_step, add, totals, model if priced else None)
            continue
        if line.strip() == "## Final Result":
            L.next()
            L.skip_blank()
            nxt = L.peek() or ""
            if _FENCE.match(nxt):
                _, body = L.fenced("the final result")
                submitted = True
                try:
                    final_result = json.loads(body)
                except ValueError:
                    final_result = body
            elif nxt.strip():
                submitted = "no result submitted" not in nxt.lower()
                final_result = nxt.strip().strip("*") if submitted else None
                L.next()
            continue
        if line.strip() == "## Grading":
            L.next()
            while True:
                L.skip_blank()
                gl = L.peek()
                if gl is None or gl.startswith("## "):
                    break
                fm = _FIELD.match(gl)
                if fm and fm.group(1) == "Success":
                    passed = fm.group(2).strip().lower() == "true"
                elif fm and fm.group(1) == "Criteria":
                    criteria = fm.group(2).strip()
                elif gl.startswith("- ") and ":" in gl:
                    k, v = gl[2:].split(":", 1)
                    metrics[k.strip()] = _num(v.strip())
                L.next()
            continue
        if line.strip() == "---" or line.startswith("## "):
            L.next()
            continue
        raise L.error(
            f"unexpected line {line!r}: expected '### Step N', '## Final Result' or '## Grading'"
        )

    details: dict[str, Any] = {}
    if final_result is not None:
        details["submission"] = final_result
    if not submitted:
        details["reason"] = "no result submitted"
    add(
        Grade(
            metrics=metrics,
            criteria=criteria,
            passed=passed,
            submitted=submitted,
            details=details,
            step=last_step or None,
        )
    )
    if status not in ("completed", "max_steps_reached", "error", "interrupted", "limit_exceeded"):
        status = "error" if status else "completed"
    add(RunEnd(status=status, totals=totals))  # type: ignore[arg-type]  # checked just above
    return events


def _num(v: str) -> Any:
    try:
        return int(v)
    except ValueError:
        try:
            return float(v)
        except ValueError:
            return v


_ITEM_KEYS = {
    "ID": "id",
    "Stop Reason": "stop_reason",
    "Input Tokens": "input_tokens",
    "Output Tokens": "output_tokens",
    "Cache Creation Input Tokens": "cache_creation_input_tokens",
    "Cache Read Input Tokens": "cache_read_input_tokens",
    "Cost (USD)": "cost_usd",
}


def _read_step(L: _Lines, step: int, add: Any, totals: Totals, price_model: str | None) -> None:
    step_line = L.i
    add(StepStart(step=step))
    info: dict[str, str] = {}
    text_lines: list[str] = []
    calls: list[tuple[int, str, dict[str, Any], Any, int]] = []
    section = None
    while True:
        line = L.peek()
        if line is None or _STEP.match(line) or line.startswith("## "):
            break
        if line.strip() == "---":
            L.next()
            break
        if line.strip() == "**API Response:**":
            section = "api"
            L.next()
            continue
        if line.strip() == "**Assistant Response:**":
            section = "text"
            L.next()
            continue
        cm = _CALL.match(line)
        if cm:
            section = None
            call_line = L.i + 1
            L.next()
            block_index, name = int(cm.group(1)), cm.group(2)
            L.skip_blank()
            if (L.peek() or "").strip() != "**Input:**":
                raise L.error(f"step {step}, tool call {name}: expected '**Input:**'")
            L.next()
            lang, body = L.fenced(f"step {step} tool call input")
            if lang == "python":
                tool_input: dict[str, Any] = {CODE_TOOLS_KEY: body}
            else:
                try:
                    tool_input = json.loads(body) if body.strip() else {}
                except ValueError as e:
                    raise L.error(f"step {step}: tool input is not valid JSON ({e})") from e
            output: Any = None
            L.skip_blank()
            if (L.peek() or "").strip() == "**Output:**":
                L.next()
                _olang, obody = L.fenced(f"step {step} tool call output")
                try:
                    output = json.loads(obody)
                except ValueError:
                    output = obody
            calls.append((block_index, name, tool_input, output, call_line))
            continue
        if section == "api":
            im = _ITEM.match(line.strip())
            if im:
                info[im.group(1).strip()] = im.group(2).strip()
            L.next()
            continue
        if section == "text":
            text_lines.append(line)
        L.next()
    if "ID" not in info:
        raise MarkdownError(
            f"step {step} has no '- ID:' line under '**API Response:**'",
            line=step_line + 1,
            source=L.source,
        )
    usage = Usage()
    for label, key in _ITEM_KEYS.items():
        if key in USAGE_KEYS and label in info:
            try:
                setattr(usage, key, int(info[label]))
            except ValueError as e:
                raise MarkdownError(
                    f"step {step}: {label} {info[label]!r} is not a number",
                    line=step_line + 1,
                    source=L.source,
                ) from e
    cost = float(info["Cost (USD)"]) if "Cost (USD)" in info else None
    if cost is None and price_model is not None:
        from agentdeck.engine import pricing

        cost = pricing.cost_usd(price_model, usage)
    text = "\n".join(text_lines).strip("\n")
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    for block_index, name, tool_input, _, _ in calls:
        while len(content) < block_index - 1:
            # a block the markdown does not show (e.g. empty text) before the tool call
            content.append({"type": "text", "text": ""})
        content.append(
            {
                "type": "tool_use",
                "id": f"toolu_md_{step}_{block_index}",
                "name": name,
                "input": tool_input,
            }
        )
    stop = info.get("Stop Reason") or None
    add(
        ModelResponse(
            step=step,
            message_id=info["ID"],
            stop_reason=stop,
            content=content,
            usage=usage,
            cost_usd=cost,
        )
    )
    totals.steps += 1
    totals.add(usage)
    if cost is not None:
        totals.cost_usd = (totals.cost_usd or 0.0) + cost
    for block_index, name, tool_input, output, _ in calls:
        call_id = f"toolu_md_{step}_{block_index}"
        add(
            ToolCall(
                step=step, call_id=call_id, name=name, input=tool_input, block_index=block_index
            )
        )
        if output is not None:
            err = output.get("error") if isinstance(output, dict) else None
            add(
                ToolResult(
                    step=step,
                    call_id=call_id,
                    name=name,
                    output=output,
                    error=err if isinstance(err, str) else None,
                )
            )


def _guess_task(prompt: str) -> str:
    """The registered task whose prompt this is (tasks declare their prompts' marks)."""
    from agentdeck.engine.registry import guess_task

    return guess_task(prompt) or "imported"
