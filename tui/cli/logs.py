"""``agentdeck replay``, ``runs`` and ``export``: reading logs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agentdeck.tui.cli.common import app, default_log_dir, err, fail, open_log


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
    from agentdeck.tui.batches import find_batches, read_batch_info

    infos = [read_batch_info(b) for b in find_batches(d)]
    for path in find_runs(d):
        infos.append(read_run_info(path))
    for r in infos:
        path = r.path
        if r.problem:
            err.print(
                f"[yellow]skipped[/] {escape(str(path))}: {escape(r.problem)}", soft_wrap=True
            )
            continue
        colour = {"passed": "green", "failed": "red"}.get(r.grade_text, "yellow")
        tab.add_row(
            escape(f"batch {r.name}" if r.batch else r.name),
            escape(r.task),
            escape(r.agent_model),
            r.status,
            f"{r.steps} runs" if r.batch else f"{r.steps}/{r.max_steps}",
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
