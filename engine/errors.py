"""Errors a user can act on, and the one mapping from a run's outcome to an exit code.

Every error that is the user's input (a bad ``-T`` value, an unknown task, an
unreadable log, data that is not on the machine) derives from ``UserError``:
its message says what was wrong, where, and what to do, and the CLI prints it
as one line with exit code 2. Anything else that escapes is a bug or an
infrastructure failure (exit 3), never "bad input".
"""

from __future__ import annotations

from typing import Final

from agentdeck.engine.events import RunStatus

EXIT_PASSED: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_INFRA: Final = 3
EXIT_INTERRUPTED: Final = 130


class UserError(Exception):
    """Bad input from the user.

    ``what`` says what was wrong, ``where`` the option, file or line it is in,
    ``fix`` what to do about it; ``str()`` joins them into the one line the CLI
    prints (``where: what; fix``).
    """

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.where = where
        self.fix = fix

    def __str__(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        return f"{text}; {self.fix}" if self.fix else text


class ConfigError(UserError):
    """A run configuration that cannot run (a flag, a ``-T`` value, an agent spec)."""


def exit_code(status: RunStatus | str | None, passed: bool | None) -> int:
    """The process exit code for a run that ended with ``status`` and a grade.

    0 graded and passed, 1 graded and failed or nothing submitted (also when a
    limit ended it), 3 an infrastructure error, 130 interrupted. ``status``
    None (no ``run_end``: a run that died) counts as an infrastructure error.
    """
    if status == "interrupted":
        return EXIT_INTERRUPTED
    if status == "error" or status is None:
        return EXIT_INFRA
    return EXIT_PASSED if passed else EXIT_FAILED


__all__ = [
    "EXIT_FAILED",
    "EXIT_INFRA",
    "EXIT_INTERRUPTED",
    "EXIT_PASSED",
    "EXIT_USAGE",
    "ConfigError",
    "UserError",
    "exit_code",
]
