"""The ``python_expression`` tool: run code in the run's sandbox kernel.

Input ``{"code": str}``; output ``{"result": str, "error": str | null}`` as in
the seed logs: ``result`` is the captured stdout and stderr (interleaved as
they came) followed by the value of the last expression. Progress bars drawn
with carriage returns are reduced to their last state in what the model sees.

While the code runs, output goes out as ``tool_output_chunk`` events, up to
``log_output_cap`` bytes a call; past the cap the full output of the call is
written to ``artifacts/<call_id>.out`` (an ``artifact`` event says where) and
a ``warning`` says that streaming stopped. What the model sees is cut to
``model_output_limit`` bytes, head and tail kept, with a line saying how many
bytes were left out (the error text, a traceback, gets half that limit).
``log_metric`` payloads become ``metric`` events;
figures (``image/png`` display data) become artifacts.
"""

from __future__ import annotations

import base64
import re
from typing import IO, Any

from agentdeck.engine.events import Artifact, Metric, ToolOutputChunk, WarningEvent
from agentdeck.engine.sandbox.helpers import metric_payload
from agentdeck.engine.sandbox.kernel import ExecResult, SandboxError
from agentdeck.engine.sandbox.truncate import ModelView, truncate_middle
from agentdeck.engine.tools import ToolContext, ToolOutcome, ToolSpec

TOOL_NAME = "python_expression"

DEFAULT_DESCRIPTION = (
    "Run Python code in a persistent Jupyter kernel (variables, imports and loaded data "
    "persist across calls; the working directory is the run's work folder). Returns "
    "'result': everything printed (stdout and stderr) followed by the value of the last "
    "expression, and 'error': the exception with its traceback, or null. Long output is "
    "cut to its head and tail. A call that runs past the time limit is interrupted "
    "(variables are kept). log_metric(name, value, step=None, x=None) is predefined and "
    "reports a metric live (e.g. per epoch)."
)

INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "code": {
            "type": "string",
            "description": "Python code to run; the value of the last expression is returned.",
        }
    },
    "required": ["code"],
}

_IMAGE_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/svg+xml": "svg"}


def _safe_name(call_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", call_id).strip("._") or "call"


def _utf8_prefix(text: str, n: int) -> str:
    return text.encode("utf-8", "replace")[:n].decode("utf-8", "ignore")


class OutputLog:
    """Streams a call's output as chunk events up to a cap, then spills it to a file."""

    def __init__(
        self, ctx: ToolContext, cap: int, spill_cap: int = 64 << 20, *, where: str = TOOL_NAME
    ) -> None:
        self.ctx = ctx
        self.where = where
        self.cap = cap
        #: Bytes one call may spill to its artifact file; the rest is counted, not kept.
        self.spill_cap = spill_cap
        self.spilled = 0
        self.dropped = 0
        self.sent = 0
        self.head: list[str] = []  # everything streamed so far (for the file, if needed)
        self.file: IO[str] | None = None
        self.rel_path = f"artifacts/{_safe_name(ctx.call_id)}.out"

    def write(self, stream: str, text: str) -> None:
        if self.file is not None:
            self._to_file(text)
            return
        n = len(text.encode("utf-8", "replace"))
        if self.sent + n <= self.cap:
            self._chunk(stream, text)
            self.sent += n
            self.head.append(text)
            return
        part = _utf8_prefix(text, self.cap - self.sent)
        if part:
            self._chunk(stream, part)
        self._spill(text)

    def _chunk(self, stream: str, text: str) -> None:
        self.ctx.emit(
            ToolOutputChunk(
                step=self.ctx.step,
                call_id=self.ctx.call_id,
                stream="stderr" if stream == "stderr" else "stdout",
                text=text,
            )
        )

    def _spill(self, text: str) -> None:
        path = self.ctx.run_dir.path / self.rel_path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(path, "w", encoding="utf-8", errors="replace", newline="")  # noqa: SIM115
        for part in self.head:
            self._to_file(part)
        self._to_file(text)
        self.head = []
        self.ctx.emit(
            WarningEvent(
                where=self.where,
                step=self.ctx.step,
                code="output_capped",
                recoverable=True,
                message=(
                    f"call {self.ctx.call_id}: output passed {self.cap:,} bytes; live "
                    f"streaming stopped, the full output goes to {self.rel_path}"
                ),
            )
        )

    def _to_file(self, text: str) -> None:
        assert self.file is not None
        room = self.spill_cap - self.spilled
        if room <= 0:
            self.dropped += len(text.encode("utf-8", "replace"))
            return
        n = len(text.encode("utf-8", "replace"))
        if n > room:
            text = _utf8_prefix(text, room)
            self.dropped += n - len(text.encode("utf-8", "replace"))
            n = room
        self.file.write(text)
        self.spilled += n

    def close(self) -> None:
        if self.file is None:
            return
        if self.dropped:
            self.file.write(
                f"\n[agentdeck: the output passed {self.spill_cap:,} bytes; "
                f"{self.dropped:,} more bytes were counted, not kept]\n"
            )
            self.ctx.emit(
                WarningEvent(
                    where=self.where,
                    step=self.ctx.step,
                    code="output_dropped",
                    recoverable=True,
                    message=(
                        f"call {self.ctx.call_id}: {self.dropped:,} bytes of output past the "
                        f"{self.spill_cap:,}-byte spill cap were counted, not kept"
                    ),
                )
            )
        self.file.close()
        self.ctx.emit(
            Artifact(
                name=f"{_safe_name(self.ctx.call_id)}.out",
                path=self.rel_path,
                mime="text/plain",
                step=self.ctx.step,
            )
        )


def _save_displays(ctx: ToolContext, res: ExecResult) -> None:
    """Figures (image display data) become artifact files and events."""
    k = 0
    for bundle in res.displays:
        for mime, ext in _IMAGE_EXT.items():
            if mime not in bundle:
                continue
            data = bundle[mime]
            try:
                raw = data.encode() if ext == "svg" else base64.b64decode(data)
            except (ValueError, TypeError, AttributeError):
                continue
            k += 1
            rel = f"artifacts/{_safe_name(ctx.call_id)}-{k}.{ext}"
            (ctx.run_dir.path / rel).write_bytes(raw)
            ctx.emit(Artifact(name=f"figure {k}", path=rel, mime=mime, step=ctx.step))
            break


def python_expression_tool(
    description: str | None = None,
    *,
    model_output_limit: int = 16 * 1024,
    log_output_cap: int = 1 << 20,
    spill_cap: int = 64 << 20,
) -> ToolSpec:
    """The ``python_expression`` tool, bound to whatever sandbox the context carries."""

    def handler(tool_input: dict[str, Any], ctx: ToolContext) -> ToolOutcome:
        code = tool_input.get("code")
        if not isinstance(code, str):
            msg = "python_expression: input 'code' must be a string of Python code"
            return ToolOutcome(output={"result": "", "error": msg}, error=msg)
        if ctx.sandbox is None:
            msg = "python_expression: this run has no Python sandbox"
            return ToolOutcome(output={"result": "", "error": msg}, error=msg)
        if ctx.stop.is_set():
            msg = "Not run: the run is being stopped."
            return ToolOutcome(output={"result": "", "error": msg}, error=msg)

        shown = ModelView(model_output_limit)
        log = OutputLog(ctx, log_output_cap, spill_cap)

        def on_output(stream: str, text: str) -> None:
            shown.feed(stream, text)
            log.write(stream, text)

        def on_metric(raw: dict[str, Any]) -> None:
            try:
                p = metric_payload(
                    raw.get("name"),  # type: ignore[arg-type]  # checked by metric_payload
                    raw.get("value"),
                    raw.get("step"),
                    raw.get("x"),
                    raw.get("source") or "sandbox",
                )
            except TypeError:
                return  # not from log_metric: malformed display data is ignored
            ctx.emit(
                Metric(
                    name=p["name"],
                    value=p["value"],
                    step=ctx.step,
                    x=p["x"] if p["x"] is not None else p["step"],
                    source=p["source"],
                )
            )

        try:
            res = ctx.sandbox.execute(
                code,
                timeout=ctx.time_limit_s,
                on_output=on_output,
                on_metric=on_metric,
                keep_bytes=model_output_limit,
                stop=ctx.stop,
            )
        except SandboxError as exc:
            msg = f"The Python sandbox is unavailable: {exc}"
            return ToolOutcome(output={"result": shown.kept.text(), "error": msg}, error=msg)
        finally:
            log.close()
        shown.flush()
        if res.result is not None:
            shown.new_line()
            shown.add(res.result)
        result, dropped = shown.kept.render()
        error = res.error
        if error is not None:
            error, err_dropped = truncate_middle(error, max(1024, model_output_limit // 2))
            dropped += err_dropped
        if res.restarted:
            ctx.emit(
                WarningEvent(
                    where="sandbox",
                    step=ctx.step,
                    code="kernel_restart",
                    recoverable=True,
                    message=res.error or "kernel restarted",
                )
            )
        _save_displays(ctx, res)
        return ToolOutcome(
            output={"result": result, "error": error}, error=error, truncated_bytes=dropped
        )

    return ToolSpec(
        name=TOOL_NAME,
        description=description or DEFAULT_DESCRIPTION,
        input_schema=INPUT_SCHEMA,
        handler=handler,
    )
