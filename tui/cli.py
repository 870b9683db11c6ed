"""The ``agentdeck`` command line (typer). The composition root: it wires the
engine to a consumer (the Textual app, the line printer or NDJSON) and turns
failures into exit codes. Textual is imported only when a UI is opened.

Exit codes: 0 graded and passed (or the command succeeded), 1 graded and
failed or not submitted, 2 bad usage or input, 3 infrastructure error,
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agentdeck.engine.log import LogError, RunLog

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from agentdeck.engine.run import Prepared

app = typer.Typer(
    name="agentdeck",
    help="Run, watch and replay LLM agent runs on machine-learning tasks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
err = Console(stderr=True, highlight=False)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("agentdeck")
    except Exception:  # noqa: BLE001 - not installed as a distribution
        return "0+unknown"


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]agentdeck: error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def default_log_dir() -> Path:
    return Path(os.environ.get("AGENTDECK_LOG_DIR", "logs"))


def _version_cb(value: bool) -> None:
    if value:
        print(f"agentdeck {_version()}")
        raise typer.Exit(0)


@app.callback()
def main_callback(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_cb, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """agentdeck: a terminal workbench for LLM agent runs on ML tasks."""


def open_log(path: Path, *, follow: bool = False) -> RunLog:
    try:
        return RunLog.open(path, follow=follow)
    except LogError as e:
        fail(str(e))


# -- run ------------------------------------------------------------------------------------


def _parse_task_params(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            fail(f"-T {item}: expected key=value (e.g. -T dataset=digits)")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


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
        params=_parse_task_params(task_param),
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
    progress = _progress_printer()
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


class _progress_printer:
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


# -- doctor -----------------------------------------------------------------------------------


@app.command()
def doctor() -> None:
    """What isolation runs get on this machine, and how to get more."""
    from agentdeck.engine.cpus import usable_cpus
    from agentdeck.engine.log.seal import key_path
    from agentdeck.engine.sandbox import cgroups
    from agentdeck.engine.sandbox.isolation import (
        bwrap_problem,
        bwrap_version,
        install_hint,
        python_roots,
    )

    console = Console(highlight=False)
    problem = bwrap_problem()
    tab = Table.grid(padding=(0, 2))
    tab.add_column(style="bold")
    tab.add_column()
    if problem is None:
        tab.add_row(
            "sandbox",
            f"[green]bwrap[/] ({escape(bwrap_version() or '?')}): runs are "
            "isolated (uid 65534, own PID/IPC/UTS/network namespaces, minimal "
            "read-only filesystem)",
        )
    else:
        tab.add_row("sandbox", f"[bold yellow]local[/]: runs are NOT isolated ({escape(problem)})")
        tab.add_row("fix", f"[bold]{escape(install_hint())}[/]")
    cg = cgroups.create(256, 64, tag="doctor")
    if cg is not None:
        tab.add_row(
            "limits",
            f"cgroup v{cg.version}: memory (counting shared memory) and processes are bounded",
        )
        cg.remove()
    else:
        tab.add_row(
            "limits",
            "[yellow]no cgroup can be made here[/]: memory by RLIMIT_DATA "
            "(shared memory not counted), processes by RLIMIT_NPROC (not for root)",
        )
    tab.add_row("cpus", f"{usable_cpus()} usable by this process")
    tab.add_row(
        "python",
        escape(sys.executable)
        + "  (mounted read-only: "
        + escape(", ".join(python_roots(sys.executable)))
        + ")",
    )
    tab.add_row("seal key", escape(str(key_path())))
    console.print(tab)
    raise typer.Exit(0 if problem is None else 1)


# -- tasks ------------------------------------------------------------------------------------


@app.command()
def tasks() -> None:
    """List the tasks with their parameters and defaults."""
    from agentdeck.engine.errors import UserError
    from agentdeck.engine.registry import get_task, task_names
    from agentdeck.engine.run import ENGINE_PARAMS

    console = Console(highlight=False)
    for name in task_names():
        try:
            t = get_task(name)
        except UserError as e:
            console.print(f"[bold]{name}[/]  [red](unavailable: {escape(str(e))})[/]")
            continue
        console.print(f"[bold]{name}[/]  {escape(t.description)}")
        tab = Table(show_header=True, header_style="dim", box=None, padding=(0, 2))
        tab.add_column("-T parameter")
        tab.add_column("default")
        tab.add_column("meaning")
        for p in t.params:
            tab.add_row(p.name, escape(p.describe_default()), escape(p.help))
        console.print(tab)
        console.print()
    console.print("[bold]every task[/] also takes:")
    tab = Table(show_header=False, box=None, padding=(0, 2))
    for k, (default, text) in ENGINE_PARAMS.items():
        tab.add_row(k, default, text)
    console.print(tab)


# -- replay / runs / export ---------------------------------------------------------------------


@app.command()
def replay(
    log: Annotated[Path, typer.Argument(help="A run directory, events.jsonl or seed .md log.")],
    no_ui: Annotated[bool, typer.Option("--no-ui", help="Print the run as text.")] = False,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Attach to a run that is being written.")
    ] = False,
) -> None:
    """Open a log in the replay screen (or print it with --no-ui)."""
    if no_ui or not sys.stdout.isatty():
        from agentdeck.tui.headless import follow_log, print_log

        if follow:
            raise typer.Exit(follow_log(log))
        rl = open_log(log)
        print_log(rl)
        raise typer.Exit(0)
    open_log(log, follow=follow).close()  # fail fast with a clear message
    from agentdeck.tui.app import run_replay_app

    raise typer.Exit(run_replay_app(log, follow=follow))


@app.command()
def runs(
    log_dir: Annotated[
        Path | None, typer.Option(help="Directory of runs (default: $AGENTDECK_LOG_DIR or ./logs).")
    ] = None,
    no_ui: Annotated[bool, typer.Option("--no-ui", help="Print a table.")] = False,
) -> None:
    """List runs (a table, or the runs screen on a terminal)."""
    from agentdeck.tui.runs import find_runs, read_run_info

    d = log_dir or default_log_dir()
    if not d.is_dir():
        fail(f"{d}: no such directory (runs are written to ./logs or --log-dir)")
    if not no_ui and sys.stdout.isatty():
        from agentdeck.tui.app import run_runs_app

        raise typer.Exit(run_runs_app(d))
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=240)  # a pipe: never truncate columns
    tab = Table(header_style="bold")
    for col in (
        "run",
        "task",
        "agent/model",
        "status",
        "steps",
        "tokens in/out",
        "cost",
        "grade",
        "seal",
        "started",
    ):
        tab.add_column(col, no_wrap=col in ("run", "started"))
    for path in find_runs(d):
        r = read_run_info(path)
        if r.problem:
            err.print(
                f"[yellow]skipped[/] {escape(str(path))}: {escape(r.problem)}", soft_wrap=True
            )
            continue
        colour = {"passed": "green", "failed": "red"}.get(r.grade_text, "yellow")
        tab.add_row(
            escape(r.name),
            escape(r.task),
            escape(r.agent_model),
            r.status,
            f"{r.steps}/{r.max_steps}",
            f"{r.input_tokens:,}/{r.output_tokens:,}",
            "-" if r.cost_usd is None else f"${r.cost_usd:.4f}",
            f"[{colour}]{r.grade_text}[/]",
            {"sealed": "[green]✓ sealed[/]", "tampered": "[bold red]✗ tampered[/]"}.get(
                r.seal, escape(r.seal_label)
            ),
            r.date,
        )
    console.print(tab)


@app.command()
def export(
    log: Annotated[Path, typer.Argument(help="A run directory, events.jsonl or seed .md log.")],
    format: Annotated[str, typer.Option("--format", "-f", help="md | jsonl")] = "md",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Export a log as seed-format markdown or as JSONL."""
    if format not in ("md", "jsonl"):
        fail(f"--format {format}: expected md or jsonl")
    rl = open_log(log)
    if format == "md":
        from agentdeck.engine.log.markdown import export_markdown

        text = export_markdown(rl)
    else:
        from agentdeck.engine.log import encode_event

        text = "".join(encode_event(e) + "\n" for e in rl.events())
    for w in rl.warnings:
        err.print(f"[yellow]warning[/]: {escape(w)}")
    if output is None:
        sys.stdout.write(text)
    else:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as e:
            fail(f"cannot write {output}: {e.strerror}")
        err.print(f"wrote {output}")


data_app = typer.Typer(
    help="Pre-download data sets, or show where they are looked for.", no_args_is_help=True
)
app.add_typer(data_app, name="data")


@data_app.command("fetch")
def data_fetch(
    names: Annotated[list[str], typer.Argument(help="fashion-mnist, mnist, ag_news")],
    data_dir: Annotated[
        Path | None, typer.Option(help="Default: $AGENTDECK_DATA or ~/.cache/agentdeck.")
    ] = None,
) -> None:
    """Download and verify data sets into the data folder (needs network)."""
    from agentdeck.engine.datasets import main as datasets_main

    argv = ["fetch", *names] + (["--data-dir", str(data_dir)] if data_dir else [])
    raise typer.Exit(datasets_main(argv))


@data_app.command("where")
def data_where(
    data_dir: Annotated[
        Path | None, typer.Option(help="Default: $AGENTDECK_DATA or ~/.cache/agentdeck.")
    ] = None,
) -> None:
    """Print the data folder and what is in it."""
    from agentdeck.engine.datasets import main as datasets_main

    raise typer.Exit(datasets_main(["where"] + (["--data-dir", str(data_dir)] if data_dir else [])))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]")
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 - a bug in agentdeck, not bad input: keep the traceback
        import tempfile
        import traceback

        fd, path = tempfile.mkstemp(prefix="agentdeck-crash-", suffix=".txt")
        with os.fdopen(fd, "w") as f:
            traceback.print_exc(file=f)
        err.print(
            f"[bold red]agentdeck: internal error:[/] {escape(repr(e))} "
            f"(traceback in {path}; please report it)",
            soft_wrap=True,
        )
        sys.exit(3)


if __name__ == "__main__":
    main()
