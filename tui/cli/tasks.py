"""``agentdeck tasks``: the tasks and their parameters."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agentdeck.tui.cli.common import app


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
