"""The ``agentdeck`` command line (typer). The composition root: it wires the
engine to a consumer (the Textual app, the line printer or NDJSON) and turns
failures into exit codes. Textual is imported only when a UI is opened.

One module a command group (``run``, ``batch``, ``logs``, ``tasks``, ``data``, ``doctor``); each
registers its commands on the shared ``app`` when imported here.

Exit codes: 0 graded and passed (or the command succeeded), 1 graded and
failed or not submitted, 2 bad usage or input, 3 infrastructure error,
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import os
import sys

from rich.markup import escape

# each module registers its commands on ``app``; imported in the order --help lists them
from agentdeck.tui.cli import run  # noqa: F401

# isort: split
from agentdeck.tui.cli import batch  # noqa: F401

# isort: split
from agentdeck.tui.cli import tasks  # noqa: F401

# isort: split
from agentdeck.tui.cli import logs  # noqa: F401

# isort: split
from agentdeck.tui.cli import data, doctor  # noqa: F401

# isort: split
from agentdeck.tui.cli.common import app, err, fail

__all__ = ["app", "fail", "main"]


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
