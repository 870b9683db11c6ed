"""``agentdeck batch``: many runs of a grid, headless or live, locally or on Ray."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from agentdeck.tui.cli.common import app, default_log_dir, err, fail

if TYPE_CHECKING:
    from agentdeck.engine.batch import BatchRunner


@app.command(no_args_is_help=True)
def batch(
    what: Annotated[
        list[str] | None,
        typer.Argument(
            help="Task names (see `agentdeck tasks`), or one grid file (grid.toml).",
            show_default=False,
        ),
    ] = None,
    task_param: Annotated[
        list[str],
        typer.Option(
            "-T",
            "--task-param",
            help="Task parameter key=value, or key=v1,v2 for an axis of the grid (repeatable).",
        ),
    ] = [],  # noqa: B006
    agent: Annotated[
        list[str],
        typer.Option(
            help="Agent (repeatable): scripted | claude | replay:LOG (replay:LOG@N forks)."
        ),
    ] = [],  # noqa: B006
    model: Annotated[
        list[str], typer.Option(help="Model for --agent claude (repeatable: an axis).")
    ] = [],  # noqa: B006
    epochs: Annotated[
        int | None, typer.Option(help="Runs of each configuration, each with its own seed.")
    ] = None,
    seed_base: Annotated[
        int | None,
        typer.Option(help="Epoch e gets seed SEED_BASE+e (default: drawn once, recorded)."),
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            "-j",
            "--jobs",
            help="Runs at once (default: as many as fit the CPUs and memory the tasks declare).",
        ),
    ] = None,
    executor: Annotated[
        str | None, typer.Option(help="local (worker processes, the default) | ray.")
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(help="A Ray cluster to use (--executor ray); default: a local instance."),
    ] = None,
    ray_logs: Annotated[
        str,
        typer.Option(
            help="Ray: auto (write to the batch directory where a node sees it, else send "
            "the run back) | shared | stream."
        ),
    ] = "auto",
    retry: Annotated[
        int | None,
        typer.Option(help="Rerun runs that end with an infrastructure error up to N times."),
    ] = None,
    max_cost: Annotated[
        float | None, typer.Option(help="Stop the batch at this total cost, USD.")
    ] = None,
    time_limit: Annotated[
        float | None, typer.Option(help="Stop the batch after this many seconds.")
    ] = None,
    max_steps: Annotated[int | None, typer.Option(help="Each run's step budget.")] = None,
    run_time_limit: Annotated[
        float | None, typer.Option(help="Each run's wall-clock limit, seconds.")
    ] = None,
    token_limit: Annotated[int | None, typer.Option(help="Each run's token limit.")] = None,
    cost_limit: Annotated[float | None, typer.Option(help="Each run's cost limit, USD.")] = None,
    max_tokens: Annotated[
        int | None, typer.Option(help="Max output tokens per model call (claude).")
    ] = None,
    temperature: Annotated[
        float | None, typer.Option(help="Sampling temperature (claude).")
    ] = None,
    no_stream: Annotated[
        bool, typer.Option("--no-stream", help="Plain API calls, no streaming (claude).")
    ] = False,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="No prompt caching (claude).")
    ] = False,
    name: Annotated[
        str | None,
        typer.Option(
            help="The batch id (its folder in the log directory; default: from the grid)."
        ),
    ] = None,
    new: Annotated[
        bool,
        typer.Option("--new", help="Start a fresh batch instead of resuming the same grid's."),
    ] = False,
    log_dir: Annotated[
        Path | None,
        typer.Option(help="Where batches are written (default: $AGENTDECK_LOG_DIR or ./logs)."),
    ] = None,
    sandbox: Annotated[
        str | None, typer.Option(help="auto | bwrap | local (as for `agentdeck run`).")
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(help="Print the summary of the batch in DIR from its logs, and exit."),
    ] = None,
    no_ui: Annotated[
        bool, typer.Option("--no-ui", help="A line per finished run and a progress line.")
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Batch events as NDJSON on stdout (implies --no-ui).")
    ] = False,
) -> None:
    """Run a grid of tasks x agents/models x -T values x epochs, and summarise it.

    Re-running the same command resumes the batch: finished runs are kept.
    """
    from agentdeck.engine.batch import (
        BatchSettings,
        RunLimits,
        grid_from_cli,
        read_toml,
    )
    from agentdeck.engine.errors import UserError

    if report is not None:
        raise typer.Exit(_report(report, json_out))
    items = list(what or [])
    if not items:
        fail("name a task (e.g. `agentdeck batch noisy-labels`) or a grid file (grid.toml)")
    settings = BatchSettings()
    try:
        if len(items) == 1 and (items[0].endswith(".toml") or Path(items[0]).is_file()):
            if task_param or agent or model:
                fail(
                    f"{items[0]}: the grid is in the file; -T, --agent and --model cannot "
                    "be added to it on the command line"
                )
            grid, settings = read_toml(Path(items[0]))
            if epochs is not None:
                grid.epochs = epochs
            if seed_base is not None:
                grid.seed_base = seed_base
            for k, v in (
                ("max_steps", max_steps),
                ("time_limit_s", run_time_limit),
                ("token_limit", token_limit),
                ("cost_limit_usd", cost_limit),
            ):
                if v is not None:
                    setattr(grid.limits, k, v)
            grid.check()
        else:
            options: dict[str, Any] = {}
            if max_tokens is not None:
                options["max_tokens"] = max_tokens
            if temperature is not None:
                options["temperature"] = temperature
            if no_stream:
                options["stream"] = False
            if no_cache:
                options["cache"] = False
            grid = grid_from_cli(
                items,
                agents=agent,
                models=model,
                params=task_param,
                epochs=epochs if epochs is not None else 1,
                seed_base=seed_base,
                limits=RunLimits(max_steps, run_time_limit, token_limit, cost_limit),
                agent_options=options,
            )
    except UserError as e:
        fail(str(e))
    s = settings.merged(
        BatchSettings(
            name=name,
            jobs=jobs,
            executor=executor,
            address=address,
            retry=retry,
            max_cost_usd=max_cost,
            time_limit_s=time_limit,
            sandbox=sandbox,
        )
    )
    headless = no_ui or json_out or not sys.stdout.isatty()
    if not (no_ui or json_out) and headless:
        err.print("[dim]stdout is not a terminal: running headless (--no-ui)[/]")
    raise typer.Exit(
        _run_batch(
            grid,
            s,
            log_dir=log_dir or default_log_dir(),
            new=new,
            ray_logs=ray_logs,
            headless=headless,
            json_out=json_out,
        )
    )


def _check_settings(s: Any) -> None:
    if s.executor not in (None, "local", "ray"):
        fail(f"--executor {s.executor}: expected local or ray")
    if s.address and s.executor != "ray":
        fail("--address is for --executor ray")
    if s.jobs is not None and s.jobs < 1:
        fail(f"-j {s.jobs}: must be at least 1")
    if s.retry is not None and s.retry < 0:
        fail(f"--retry {s.retry}: must be 0 or more")
    for flag, v in (("--max-cost", s.max_cost_usd), ("--time-limit", s.time_limit_s)):
        if v is not None and v <= 0:
            fail(f"{flag} {v:g}: must be positive")


def _run_batch(
    grid: Any,
    s: Any,
    *,
    log_dir: Path,
    new: bool,
    ray_logs: str,
    headless: bool,
    json_out: bool,
) -> int:
    from agentdeck.engine.batch import (
        BatchOptions,
        BatchRunner,
        LocalExecutor,
        RayExecutor,
        open_batch,
    )
    from agentdeck.engine.errors import UserError

    _check_settings(s)
    try:
        bd, manifest, resumed = open_batch(
            grid,
            log_dir=log_dir,
            name=s.name,
            new=new,
            sandbox=s.sandbox or "auto",
            command=["agentdeck", *sys.argv[1:]],
        )
        bd.lock(on_wait=lambda m: err.print(f"[dim]{escape(m)}…[/]"))
    except UserError as e:
        fail(str(e))
    out = Console(stderr=True, highlight=False) if json_out else Console(highlight=False)
    if not out.is_terminal:
        out = Console(stderr=json_out, highlight=False, width=240)  # a pipe or a file
    try:
        if s.executor == "ray":
            err.print("[dim]starting Ray…[/]")
            ex: Any = RayExecutor(bd, address=s.address, jobs=s.jobs, logs=ray_logs)
        else:
            ex = LocalExecutor(bd, jobs=s.jobs, specs=manifest.runs)
    except UserError as e:
        bd.unlock()
        fail(str(e))
    options = BatchOptions(
        retry=s.retry or 0, max_cost_usd=s.max_cost_usd, time_limit_s=s.time_limit_s
    )
    if not headless:
        from agentdeck.tui.screens.batch import run_batch_app

        runner = BatchRunner(bd, manifest, ex, options=options, resumed=resumed)
        try:
            return run_batch_app(runner)
        finally:
            bd.unlock()
    from agentdeck.tui.batchview import BatchLinePrinter, BatchNdjsonPrinter

    printer = BatchLinePrinter(out)
    sinks: list[Any] = [BatchNdjsonPrinter()] if json_out else []
    sinks.append(printer)
    runner = BatchRunner(
        bd,
        manifest,
        ex,
        options=options,
        resumed=resumed,
        sinks=sinks,
        on_tick=lambda r: printer.progress(r),
    )
    _RunEnded = _run_ended_type()

    def after_run(ev: Any) -> None:
        if isinstance(ev, _RunEnded):
            printer.progress(runner, force=True)

    runner.sinks.append(after_run)
    code = _with_signals(runner)
    bd.unlock()
    if runner.summary is not None:
        _print_summary(out, runner.summary, bd.path)
    return code


def _run_ended_type() -> type:
    from agentdeck.engine.batch.events import RunEnded

    return RunEnded


def _with_signals(runner: BatchRunner) -> int:
    """Run the batch; the first Ctrl-C (or SIGTERM) stops it cleanly, the second kills."""

    signalled: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        signalled.append(signum)
        what = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        if runner.stopping:
            err.print(f"\n[red]{what} again: killing the runs[/]")
            runner.kill()
            return
        err.print(f"\n[yellow]{what}: stopping every run and closing its log (again to kill)[/]")
        runner.stop(f"interrupted ({what})")

    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        runner.run()
    finally:
        for sig, handler in old.items():
            # Once a signal has stopped the batch, a second one that comes after the runs
            # have ended (they stop fast) has nothing left to kill: it must not cut the
            # summary short or turn exit 130 into death by signal.
            signal.signal(sig, signal.SIG_IGN if signalled else handler)
    return runner.exit_code if runner.exit_code is not None else 3


def _print_summary(console: Console, summary: dict[str, Any], path: Path) -> None:
    from agentdeck.tui.batchview import print_summary

    print_summary(console, summary)
    console.print(
        f"summary: {escape(str(path / 'summary.json'))}, {escape(str(path / 'summary.csv'))}",
        soft_wrap=True,
    )


def _report(path: Path, json_out: bool) -> int:
    from agentdeck.engine.batch import report
    from agentdeck.engine.errors import UserError

    try:
        summary = report(path)
    except UserError as e:
        fail(str(e))
    if json_out:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    else:
        console = Console(highlight=False)
        if not console.is_terminal:
            console = Console(highlight=False, width=240)
        _print_summary(console, summary, path)
    return int(summary["exit_code"])
