"""The error a log that cannot be read raises."""

from __future__ import annotations

import os

from agentdeck.engine.errors import UserError


class LogError(UserError):
    """A log that cannot be read. ``str()`` is a one-line message for the user."""

    def __init__(
        self, message: str, *, path: str | os.PathLike[str] | None = None, line: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line

    def __str__(self) -> str:
        where = self.path or ""
        if self.line is not None:
            where += f":{self.line}"
        return f"{where}: {self.message}" if where else self.message
