"""The errors the dataset layer raises.

Two families, so that a caller can tell "the data is not here" from "the data
is here but broken":

- ``DatasetUnavailable``: the data could not be found or fetched. The message
  says what was tried and lists, one per line, the options that remain
  (``options`` holds them as a list too).
- ``DatasetError``: a file exists but is not what it should be (``IdxFormatError``,
  ``CsvFormatError``) or a request makes no sense (``n_train`` too large). The
  message names the file, and the line or byte where it applies.
"""

from __future__ import annotations

from agentdeck.engine.errors import UserError


class DatasetUnavailable(UserError):
    """The data is not on this machine and could not be fetched.

    ``str()`` is the whole message a CLI prints: what failed (URLs, errors) and
    then ``Options:`` with one line per thing the user can do about it.
    """

    def __init__(self, message: str, options: list[str] | None = None) -> None:
        self.reason = message
        self.options = list(options or [])
        text = message
        if self.options:
            text += "\nOptions:\n" + "\n".join(f"  - {o}" for o in self.options)
        super().__init__(text)
        self.args = (text,)


class DownloadError(DatasetUnavailable):
    """One URL could not be fetched (after retries) or did not verify."""

    def __init__(self, url: str, error: str, *, transient: bool = False) -> None:
        self.url = url
        self.error = error
        #: True for errors worth trying again later (timeouts, 5xx, resets).
        self.transient = transient
        super().__init__(f"download of {url} failed: {error}")


class DatasetError(UserError, ValueError):
    """Data that is present but unusable, or a request that does not fit it."""


class IdxFormatError(DatasetError):
    """An IDX file that does not follow the format; the message names the file."""


class CsvFormatError(DatasetError):
    """A CSV row that does not fit the expected layout; the message says ``file:line``."""
