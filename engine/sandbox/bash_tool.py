"""The ``bash`` tool: run a command in the run's persistent shell (``Sandbox.shell``).

The input shape is that of Anthropic's bash tool (``bash_20250124``): ``command``,
and ``restart: true`` for a fresh session. The output, sent to the model as text, is
stdout and stderr interleaved as they came (progress bars reduced to their last
state), then ``[exit status N]`` when it is not 0, cut to ``model_output_limit``
bytes with head and tail kept, exactly like ``python_expression``'s. While the
command runs its output streams as ``tool_output_chunk`` events (up to
``log_output_cap`` bytes a call; the rest goes to ``artifacts/<call_id>.out``).

A call past the time limit is interrupted and the session kept (see
``agentdeck.engine.sandbox.shell``); the result then is a tool error saying so, with
the output so far. After each call the working directory is scanned and every file
created, changed or deleted becomes a ``file_change`` event (``Sandbox.files``).
``watch(ctx, stream, text)`` sees every piece of output (a task reads a
self-reported metric from it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agentdeck.engine.events import WarningEvent
from agentdeck.engine.sandbox.shell import ShellError
from agentdeck.engine.sandbox.tool import OutputLog
from agentdeck.engine.sandbox.truncate import ModelView, truncate_middle
from agentdeck.engine.tools import ToolContext, ToolOutcome, ToolSpec

TOOL_NAME = "bash"

DESCRIPTION = (
    "Run a command in a persistent bash session in the working directory (the working "
    "directory, environment variables and shell functions persist between calls). Returns "
    "stdout and stderr as they were printed, and the exit status when it is not 0. Long "
    "output is cut to its head and tail. A command that runs past the time limit is "
    "interrupted and the session is kept. Commands do not read input (stdin is empty): "
    "nothing interactive. `restart: true` starts a fresh session."
)

INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "command": {
            "type": "string",
            "description": "The bash command to run. Required unless the tool is being restarted.",
        },
        "restart": {
            "type": "boolean",
            "description": "Specifying true will restart this tool. Otherwise, leave this "
            "unspecified.",
        },
    },
}

WatchFn = Callable[[ToolContext, str, str], None]


def _fail(msg: str) -> ToolOutcome:
    return ToolOutcome(output=msg, error=msg)


def bash_tool(
    *,
    model_output_limit: int = 16 * 1024,
    log_output_cap: int = 1 << 20,
    spill_cap: int = 64 << 20,
    watch: WatchFn | None = None,
    description: str | None = None,
) -> ToolSpec:
    """The ``bash`` tool, bound to whatever sandbox the context carries."""

    def handler(tool_input: dict[str, Any], ctx: ToolContext) -> ToolOutcome:
        command = tool_input.get("command")
        restart = tool_input.get("restart") is True
        if ctx.sandbox is None:
            return _fail("bash: this run has no sandbox")
        if ctx.stop.is_set():
            return _fail("Not run: the run is being stopped.")
        if command is not None and not isinstance(command, str):
            return _fail("bash: `command` must be a string")
        if not restart and not (command or "").strip():
            return _fail("bash: give a `command` to run (or `restart: true`)")
        try:
            shell = ctx.sandbox.shell()
            files = ctx.sandbox.files
            files.baseline(ctx.emit)
            if restart:
                shell.restart()
                if not (command or "").strip():
                    return ToolOutcome(output="The bash session has been restarted.")
        except ShellError as e:
            return _fail(f"The bash session is unavailable: {e}")

        shown = ModelView(model_output_limit)
        log = OutputLog(ctx, log_output_cap, spill_cap, where=TOOL_NAME)

        def on_output(stream: str, text: str) -> None:
            shown.feed(stream, text)
            log.write(stream, text)
            if watch is not None:
                watch(ctx, stream, text)

        try:
            res = shell.run(
                command or "", timeout=ctx.time_limit_s, on_output=on_output, stop=ctx.stop
            )
        except ShellError as e:
            return _fail(f"The bash session is unavailable: {e}")
        finally:
            log.close()
            files.scan(ctx.emit, step=ctx.step, call_id=ctx.call_id)
        shown.flush()
        if res.exit_code not in (0, None) and res.error is None:
            shown.new_line()
            shown.add(f"[exit status {res.exit_code}]")
        text, dropped = shown.kept.render()
        if not text and res.error is None:
            text = "(no output)"
        if res.notice:
            text = f"{res.notice}\n{text}"
        if res.restarted:
            ctx.emit(
                WarningEvent(
                    where="sandbox",
                    step=ctx.step,
                    code="shell_restart",
                    recoverable=True,
                    message=res.error or "the bash session was restarted",
                )
            )
        if res.error is not None:
            error, err_dropped = truncate_middle(res.error, 4096)
            dropped += err_dropped
            body = f"{text}\n{error}" if text.strip() else error
            return ToolOutcome(output=body, error=error, truncated_bytes=dropped)
        return ToolOutcome(output=text, truncated_bytes=dropped)

    return ToolSpec(
        name=TOOL_NAME,
        description=description or DESCRIPTION,
        input_schema=INPUT_SCHEMA,
        handler=handler,
        anthropic_tool="bash",
    )


__all__ = ["TOOL_NAME", "bash_tool"]
