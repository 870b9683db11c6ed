"""User key remapping: binding id -> keys, read from a TOML file.

The file is ``$AGENTDECK_KEYMAP`` or ``~/.config/agentdeck/keymap.toml``::

    [keymap]
    "run.play" = "p"
    "run.jump" = "colon,J,ctrl+g"

Binding ids are listed in docs/tui.md (and by ``?`` in the app).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from agentdeck.engine.errors import UserError


class KeymapError(UserError, ValueError):
    pass


def default_keymap_path() -> Path:
    env = os.environ.get("AGENTDECK_KEYMAP")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "agentdeck" / "keymap.toml"


def load_keymap(path: Path | None = None) -> dict[str, str]:
    """The ``[keymap]`` table of ``path`` (default location when None; {} if absent).

    Raises ``KeymapError`` naming the file and the problem.
    """
    p = path or default_keymap_path()
    if not p.exists():
        if path is not None or os.environ.get("AGENTDECK_KEYMAP"):
            raise KeymapError(f"{p}: no such keymap file")
        return {}
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise KeymapError(f"{p}: cannot read keymap: {e}") from e
    table = data.get("keymap", {})
    if not isinstance(table, dict):
        raise KeymapError(f'{p}: [keymap] must be a table of binding-id = "keys"')
    bad = [k for k, v in table.items() if not isinstance(v, str)]
    if bad:
        raise KeymapError(f'{p}: keymap.{bad[0]} must be a string like "p" or "ctrl+g,J"')
    return dict(table)
