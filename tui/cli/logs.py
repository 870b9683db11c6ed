"""``agentdeck replay``, ``runs``, ``export`` and ``compare``: reading logs (agentdeck's
own, seed-format markdown and Inspect AI logs)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agentdeck.engine.log import LogError, RunLog, inspectlog
from agentdeck.tui.cli.common import app, default_log_dir, err, fail, open_log

LOG_HELP = (
    "A run directory, events.jsonl, seed .md log, or Inspect AI log (.eval/.json; one "
    "sample as LOG#ID[:EPOCH])."
)
SAMPLE_HELP = "The sample of an Inspect AI log: ID or ID:EPOCH (the same as LOG#ID:EPOCH)."


def _with_sample(log: Path, sample: str | None) -> Path:
    if sample is None:
        return log
    if inspectlog.split_spec(log)[1] is not None:
        fail(f"{log}: names a sample already; drop --sample {sample} or the #{sample} part")
    return Path(f"{log}{inspectlog.SAMPLE_SEP}{sample}")


def _print_samples(path: Path) -> None:
    """``replay --no-ui`` of an Inspect log with several samples: each in turn (one
    decoded at a time)."""
    from agentdeck.tui.headless import print_log
    from agentdeck.tui.runs import find_runs

    console = Console(highlight=False)
    specs = find_runs(path)
    for i, spec in enumerate(specs, 1):
        sample = inspectlog.split_spec(spec)[1]
        console.rule(
            f"[bold]sample #{escape(sample or '?')}[/] · {i} of {len(specs)} · {escape(path.name)}",
            style="bold",
            align="left",
        )
        with open_log(spec) as rl:
            print_log(rl, console)


@app.command()
def replay(
    log: Annotated[Path, typer.Argument(help=LOG_HELP)],
    no_ui: Annotated[bool, typer.Option("--no-ui", help="Print the run as text.")] = False,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Attach to a run that is being written.")
    ] = False,
    sample: Annotated[str | None, typer.Option("--sample", "-s", help=SAMPLE_HELP)] = None,
) -> None:
    """Open a log in the replay screen (or print it with --no-ui). An Inspect AI log
    with several samples opens as the list of its samples (--no-ui prints them all)."""
    log = _with_sample(log, sample)
    if no_ui or not sys.stdout.isatty():
        from agentdeck.tui.headless import follow_log, print_log

        if follow:
            raise typer.Exit(follow_log(log))
        try:
            rl = RunLog.open(log)
        except inspectlog.SampleChoice as e:
            _print_samples(e.log_path)
            raise typer.Exit(0) from None
        except LogError as e:
            fail(str(e))
        print_log(rl)
        raise typer.Exit(0)
    try:
        rl = RunLog.open(log, follow=follow)
    except inspectlog.SampleChoice as e:
        from agentdeck.tui.app import run_runs_app

        raise typer.Exit(run_runs_app(e.log_path)) from None
    except LogError as e:
        fail(str(e))
    from agentdeck.tui.app import run_replay_app

    raise typer.Exit(run_replay_app(log, follow=follow, log=rl))


@app.command()
def runs(
    target: Annotated[
        Path | None,
        typer.Argument(
            metavar="[DIR]",
            help="A directory of runs (default: $AGENTDECK_LOG_DIR or ./logs), or an "
            "Inspect AI log to list its samples.",
        ),
    ] = None,
    log_dir: Annotated[
        Path | None, typer.Option(help="The same as DIR (kept for scripts).")
    ] = None,
    no_ui: Annotated[bool, typer.Option("--no-ui", help="Print a table.")] = False,
) -> None:
    """List runs (a table, or the runs screen on a terminal): agentdeck's own and
    Inspect AI logs; an Inspect log's samples with 'agentdeck runs LOG.eval'."""
    from agentdeck.tui.runs import find_runs, is_inspect_log, read_run_info

    if target is not None and log_dir is not None and target != log_dir:
        fail(f"two directories given ({target} and --log-dir {log_dir}): give one")
    d = target or log_dir or default_log_dir()
    if d.is_file():
        if not is_inspect_log(d):
            fail(
                f"{d}: not a directory or an Inspect AI log (to read one run: agentdeck replay {d})"
            )
    elif not d.is_dir():
        fail(f"{d}: no such directory (runs are written to ./logs or --log-dir)")
    if not no_ui and sys.stdout.isatty():
        from agentdeck.tui.app import run_runs_app

        raise typer.Exit(run_runs_app(d))
    try:
        paths = find_runs(d)
    except LogError as e:
        fail(str(e))
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

    infos = [read_batch_info(b) for b in find_batches(d)] if d.is_dir() else []
    infos += [read_run_info(path) for path in paths]
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
            f"{r.steps} runs"
            if r.batch
            else f"{r.samples} samples"
            if r.samples is not None
            else (f"{r.steps}/{r.max_steps}" if r.max_steps else str(r.steps)),
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
    log: Annotated[Path, typer.Argument(help=LOG_HELP)],
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
    sample: Annotated[str | None, typer.Option("--sample", "-s", help=SAMPLE_HELP)] = None,
) -> None:
    """Export a log as seed-format markdown or as JSONL (an Inspect AI sample becomes
    an agentdeck log), or its repository with --files."""
    if format not in ("md", "jsonl"):
        fail(f"--format {format}: expected md or jsonl")
    if step is not None and files is None:
        fail("--step goes with --files (the repository as it was after that step)")
    rl = open_log(_with_sample(log, sample))
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


@app.command()
def compare(
    a: Annotated[Path, typer.Argument(help="The first log (any log replay reads).")],
    b: Annotated[Path, typer.Argument(help="The second log.")],
) -> None:
    """Open two runs side by side in the compare screen (the first divergence marked)."""
    la, lb = open_log(a), open_log(b)
    if not sys.stdout.isatty():
        fail("the compare screen needs a terminal (agentdeck replay --no-ui prints one run)")
    from agentdeck.tui.app import run_compare_app

    raise typer.Exit(run_compare_app(la, lb))


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
