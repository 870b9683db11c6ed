"""``agentdeck tasks`` (the tasks and their parameters) and ``agentdeck task check``
(validate a task folder)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agentdeck.tui.cli.common import app, err, fail, parse_task_params

if TYPE_CHECKING:
    from agentdeck.engine.task import Task

#: Folders (separated by ``os.pathsep``) searched for task folders by ``agentdeck tasks``.
TASK_PATH_VAR = "AGENTDECK_TASK_PATH"

task_app = typer.Typer(
    help="Work with task folders (task.toml, description.md, prepare.py, grade.py).",
    no_args_is_help=True,
)
app.add_typer(task_app, name="task")


def _print_task(console: Console, name: str, t: Task, where: str | None = None) -> None:
    from agentdeck.engine.taskfolder import FolderTask

    head = f"[bold]{escape(name)}[/]"
    if isinstance(t, FolderTask):
        head += f"  [dim]({t.kind} task, folder {escape(str(t.folder))})[/]"
    elif where:
        head += f"  [dim]({escape(where)})[/]"
    # soft_wrap: a long folder path is left whole for the terminal to wrap, never broken
    # with a newline (it stays one string to copy)
    console.print(f"{head}  {escape(t.description)}", soft_wrap=True)
    if isinstance(t, FolderTask):
        s = t.spec
        limits = f"{s.max_steps} steps, {s.tool_time_limit_s:g} s a tool call"
        if s.time_limit_s:
            limits += f", {s.time_limit_s:g} s a run"
        console.print(
            f"  [dim]tools[/] {', '.join(s.tools)}, {s.submit_tool}  [dim]metric[/] {s.metric} "
            f"({s.direction})  [dim]pass[/] {escape(s.rule_text())}  [dim]budget[/] {limits}  "
            f"[dim]resources[/] {s.resources.cpus:g} CPUs, {s.resources.gpus:g} GPUs, "
            f"{s.resources.memory_mb:,} MiB",
            soft_wrap=True,
        )
    tab = Table(show_header=True, header_style="dim", box=None, padding=(0, 2))
    tab.add_column("-T parameter")
    tab.add_column("default")
    tab.add_column("meaning")
    for p in t.params:
        tab.add_row(p.name, escape(p.describe_default()), escape(p.help))
    console.print(tab)
    console.print()


@app.command()
def tasks(
    folders: Annotated[
        list[Path] | None,
        typer.Argument(
            help=f"Folders to search for task folders (also ${TASK_PATH_VAR}); a task folder "
            "holds task.toml."
        ),
    ] = None,
) -> None:
    """List the tasks (registered ones and task folders) with their parameters."""
    from agentdeck.engine.errors import UserError
    from agentdeck.engine.registry import get_task, task_names
    from agentdeck.engine.run import ENGINE_PARAMS
    from agentdeck.engine.taskfolder import find_task_folders, load_folder_task

    console = Console(highlight=False)
    seen: set[Path] = set()
    for name in task_names():
        try:
            t = get_task(name)
        except UserError as e:
            console.print(f"[bold]{name}[/]  [red](unavailable: {escape(str(e))})[/]")
            continue
        folder = getattr(t, "folder", None)
        if isinstance(folder, Path):
            seen.add(folder.resolve())
        _print_task(console, name, t)
    roots = list(folders or [])
    roots += [Path(p) for p in os.environ.get(TASK_PATH_VAR, "").split(os.pathsep) if p]
    for root in roots:
        if not root.exists():
            err.print(f"[yellow]warning[/]: {escape(str(root))}: no such folder")
            continue
        found = list(find_task_folders(root))
        if not found:
            err.print(f"[yellow]warning[/]: {escape(str(root))}: no task folders (task.toml) in it")
        for d in found:
            if d.resolve() in seen:
                continue
            seen.add(d.resolve())
            try:
                t = load_folder_task(d)
            except UserError as e:
                console.print(f"[bold]{escape(str(d))}[/]  [red](invalid: {escape(str(e))})[/]")
                console.print()
                continue
            _print_task(console, str(d), t)
    console.print("[bold]every task[/] also takes:")
    tab = Table(show_header=False, box=None, padding=(0, 2))
    for k, (default, text) in ENGINE_PARAMS.items():
        tab.add_row(k, default, text)
    console.print(tab)


@task_app.command("check")
def check(
    folder: Annotated[Path, typer.Argument(help="The task folder (holding task.toml).")],
    task_param: Annotated[
        list[str],
        typer.Option("-T", "--task-param", help="Parameter key=value for prepare (repeatable)."),
    ] = [],  # noqa: B006
) -> None:
    """Validate a task folder: task.toml, prepare on the [check] parameters, the prompt,
    grade on the answers (must pass) and on broken submissions (must be refused)."""
    from agentdeck.engine.taskfolder import CheckItem, check_folder

    if not folder.exists():
        fail(f"{folder}: no such folder")
    console = Console(highlight=False)
    console.print(f"checking [bold]{escape(str(folder))}[/]")

    def show(item: CheckItem) -> None:
        mark = "[green]✓[/]" if item.ok else "[bold red]✗[/]"
        secs = f" [dim]{item.seconds:.1f} s[/]" if item.seconds >= 0.05 else ""
        console.print(
            f"  {mark} {escape(item.name)}{secs}  [dim]{escape(item.detail)}[/]", soft_wrap=True
        )

    from agentdeck.tui.cli.run import ProgressPrinter

    progress = ProgressPrinter()
    try:
        report = check_folder(
            folder, params=parse_task_params(task_param), on_item=show, progress=progress
        )
    finally:
        progress.close()
    bad = [i for i in report.items if not i.ok]
    if bad:
        console.print(f"[bold red]{len(bad)} of {len(report.items)} checks failed[/]")
        raise typer.Exit(1)
    console.print(f"[green]all {len(report.items)} checks passed[/]")
