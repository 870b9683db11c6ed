"""``agentdeck replay``, ``runs`` and ``export``: reading logs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agentdeck.engine.log import RunLog
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
    files: Annotated[
        Path | None,
        typer.Option(
            "--files",
            help="Write the run's repository (its working directory as the log records it) "
            "into this folder instead.",
        ),
    ] = None,
    step: Annotated[
        int | None,
        typer.Option("--step", help="With --files: the repository as it was after this step."),
    ] = None,
) -> None:
    """Export a log as seed-format markdown or as JSONL, or its repository with --files."""
    if format not in ("md", "jsonl"):
        fail(f"--format {format}: expected md or jsonl")
    if step is not None and files is None:
        fail("--step goes with --files (the repository as it was after that step)")
    rl = open_log(log)
    if files is not None:
        _export_files(rl, files, step)
        return
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


def _export_files(rl: RunLog, dest: Path, step: int | None) -> None:
    from agentdeck.engine.workfiles import file_changes, tree_at, write_tree

    changes = [ev for _, ev in file_changes(rl)]
    if not changes:
        fail(
            f"{rl.name}: the log has no file_change events (not a repository task's run, or "
            "written before agentdeck.log/1.1), so there is no repository to export"
        )
    steps = rl.step_numbers
    if step is not None and steps and not steps[0] <= step <= steps[-1]:
        fail(f"--step {step}: the run has steps {steps[0]} to {steps[-1]}")
    if dest.exists() and not dest.is_dir():
        fail(f"{dest}: exists and is not a folder")
    if dest.is_dir() and any(dest.iterdir()):
        fail(f"{dest}: the folder is not empty; give a new or empty folder")
    tree = tree_at(changes, step)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        written, left_out = write_tree(tree, dest)
    except OSError as e:
        fail(f"cannot write into {dest}: {e.strerror or e}")
    for w in rl.warnings:
        err.print(f"[yellow]warning[/]: {escape(w)}")
    at = f"after step {step}" if step is not None else "at the end of the run"
    err.print(f"wrote {written} file{'s' if written != 1 else ''} of the repository {at} to {dest}")
    for what in left_out:
        err.print(f"[yellow]left out[/]: {escape(what)}")
