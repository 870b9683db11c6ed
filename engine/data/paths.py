"""Where data lives on this machine, and the progress callback type."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

#: progress(what, done, total): e.g. ("fashion-mnist train-images-idx3-ubyte.gz",
#: 1_000_000, 26_421_880); total is None when the server does not say.
#: The same shape as ``agentdeck.engine.task.ProgressFn`` (kept here so that the engine
#: does not import from ``tasks``).
ProgressFn = Callable[[str, int, int | None], None]

#: Environment variable naming the data folder.
ENV_VAR = "AGENTDECK_DATA"


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The folder data sets are looked for in and downloaded to.

    ``explicit`` (``-T data_dir=...``) wins, then ``$AGENTDECK_DATA``, then
    ``$XDG_CACHE_HOME/agentdeck`` (``~/.cache/agentdeck`` when XDG_CACHE_HOME
    is not set). ``~`` and environment variables are expanded. The folder is
    not created here; a download creates it.
    """
    if explicit is not None and str(explicit).strip():
        return _expand(str(explicit))
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return _expand(env)
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = _expand(xdg) if xdg else Path.home() / ".cache"
    return base / "agentdeck"


def _expand(text: str) -> Path:
    return Path(os.path.expandvars(os.path.expanduser(text))).absolute()
