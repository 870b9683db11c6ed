"""What every command shares: the typer app, the error printer, the log directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from agentdeck.engine.log import LogError, RunLog

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


def parse_task_params(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            fail(f"-T {item}: expected key=value (e.g. -T dataset=digits)")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out
