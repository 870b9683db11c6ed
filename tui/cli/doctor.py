"""``agentdeck doctor``: what isolation runs get on this machine."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agentdeck.tui.cli.common import app


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
