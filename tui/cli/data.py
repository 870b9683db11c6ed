"""``agentdeck data fetch|where``: data sets on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agentdeck.tui.cli.common import app, fail

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
    import difflib

    from agentdeck.engine.datasets import FETCHABLE
    from agentdeck.engine.datasets import main as datasets_main

    for name in names:
        if name not in FETCHABLE:
            close = difflib.get_close_matches(name, FETCHABLE, n=1, cutoff=0.5)
            fail(
                f"unknown data set {name!r}; the data sets are: {', '.join(FETCHABLE)}"
                + (f"; did you mean {close[0]!r}?" if close else "")
            )
    argv = ["fetch", *names] + (["--data-dir", str(data_dir)] if data_dir else [])
    raise typer.Exit(datasets_main(argv, prog="agentdeck data"))


@data_app.command("where")
def data_where(
    data_dir: Annotated[
        Path | None, typer.Option(help="Default: $AGENTDECK_DATA or ~/.cache/agentdeck.")
    ] = None,
) -> None:
    """Print the data folder and what is in it."""
    from agentdeck.engine.datasets import main as datasets_main

    raise typer.Exit(
        datasets_main(
            ["where"] + (["--data-dir", str(data_dir)] if data_dir else []), prog="agentdeck data"
        )
    )
