"""``agentdeck run``: one run, live in the TUI or headless."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from agentdeck.tui.cli.common import app, default_log_dir, err, fail, parse_task_params

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from agentdeck.engine.run import Prepared


@app.command()
def run(
    task: Annotated[str, typer.Argument(help="Task name (see `agentdeck tasks`).")],
    task_param: Annotated[
        list[str], typer.Option("-T", "--task-param", help="Task parameter key=value (repeatable).")
    ] = [],  # noqa: B006
    agent: Annotated[
        str,
        typer.Option(
            help="scripted (offline reference policy) | claude | replay:LOG | replay:LOG@N"
        ),
    ] = "scripted",
    model: Annotated[str | None, typer.Option(help="Model id for --agent claude.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Steps (model calls) allowed.")] = None,
    time_limit: Annotated[
        float | None, typer.Option(help="Wall-clock limit for the whole run, seconds.")
    ] = None,
    token_limit: Annotated[
        int | None, typer.Option(help="Stop when this many tokens (all kinds) are used.")
    ] = None,
    cost_limit: Annotated[float | None, typer.Option(help="Stop at this cost, USD.")] = None,
    max_tokens: Annotated[
        int | None, typer.Option(help="Max output tokens per model call (claude).")
    ] = None,
    temperature: Annotated[
        float | None, typer.Option(help="Sampling temperature (claude).")
    ] = None,
    no_stream: Annotated[
        bool, typer.Option("--no-stream", help="Plain API calls, no streaming.")
    ] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="No prompt caching.")] = False,
    fork_agent: Annotated[
        str | None,
        typer.Option(help="With --agent replay:LOG@N, the agent that continues from step N+1."),
    ] = None,
    log_dir: Annotated[
        Path | None,
        typer.Option(help="Where runs are written (default: $AGENTDECK_LOG_DIR or ./logs)."),
    ] = None,
    no_ui: Annotated[bool, typer.Option("--no-ui", help="Print progress lines, no TUI.")] = False,
    sandbox: Annotated[
        str,
        typer.Option(
            help="auto (bwrap where it works, else local with a warning) | bwrap (isolated; "
            "fail if unavailable) | local (not isolated)"
        ),
    ] = "auto",
    json_out: Annotated[
        bool, typer.Option("--json", help="Print events as NDJSON (implies --no-ui).")
    ] = False,
) -> None:
    """Run a task with an agent, live in the TUI or headless."""
    from agentdeck.engine.errors import UserError
    from agentdeck.engine.registry import get_task
    from agentdeck.engine.run import RunConfig, prepare

    options: dict[str, object] = {"max_tokens": max_tokens, "temperature": temperature}
    if no_stream:
        options["stream"] = False
    if no_cache:
        options["cache"] = False
    if fork_agent:
        options["fork_agent"] = fork_agent
    cfg = RunConfig(
        task=task,
        params=parse_task_params(task_param),
        agent=agent,
        model=model,
        agent_options=options,
        max_steps=max_steps,
        time_limit_s=time_limit,
        token_limit=token_limit,
        cost_limit_usd=cost_limit,
        log_dir=log_dir or default_log_dir(),
        sandbox=sandbox,
    )
    try:
        prep = prepare(cfg, get_task(task))
    except UserError as e:
        fail(str(e))
    if not (no_ui or json_out):
        if not sys.stdout.isatty():
            err.print("[dim]stdout is not a terminal: running headless (--no-ui)[/]")
        else:
            from agentdeck.tui.app import run_live_app

            raise typer.Exit(run_live_app(prep))
    raise typer.Exit(_run_headless(prep, json_out))


def _run_headless(prep: Prepared, json_out: bool) -> int:
    from agentdeck.engine.errors import UserError
    from agentdeck.engine.run import Run
    from agentdeck.tui.headless import LinePrinter, NdjsonPrinter

    console = Console(highlight=False) if not json_out else Console(stderr=True, highlight=False)
    sink: LinePrinter | NdjsonPrinter = NdjsonPrinter() if json_out else LinePrinter(console)
    progress = ProgressPrinter()
    run = Run(prep, sinks=[sink], progress=progress)
    if isinstance(sink, LinePrinter):
        sink.log_path_of = lambda: str(run.run_dir.events) if run.run_dir else None

    def on_signal(signum: int, frame: object) -> None:
        if run.stopping:
            raise KeyboardInterrupt  # a second Ctrl-C: stop waiting
        what = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        err.print(
            f"\n[yellow]{what}: stopping the current tool and closing the log "
            "(Ctrl-C again to force)[/]"
        )
        run.stop()

    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = run.run()
    except UserError as e:
        fail(str(e))
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        progress.close()
    if not isinstance(sink, LinePrinter) and result.run_dir is not None:
        err.print(f"log: {result.run_dir.events}")
    return result.exit_code


class ProgressPrinter:
    """A rich progress bar on stderr for downloads during task setup."""

    def __init__(self) -> None:
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    def __call__(self, what: str, done: int, total: int | None) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        if self._progress is None:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=err,
                transient=False,
            )
            self._progress.start()
        if what not in self._tasks:
            self._tasks[what] = self._progress.add_task(what, total=total)
        self._progress.update(self._tasks[what], completed=done, total=total)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
