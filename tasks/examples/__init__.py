"""Task folders that ship with agentdeck: examples to copy (docs/tasks.md).

Each folder (``fmnist-repo/``: ``task.toml``, ``description.md``, ``prepare.py``,
``grade.py``, ``reference/``) is package data, not a Python package; the classes below
register them by name through the ``agentdeck.tasks`` entry-point group.
"""

from __future__ import annotations

from pathlib import Path

from agentdeck.engine.taskfolder import folder_task_class

HERE = Path(__file__).resolve().parent

#: ``agentdeck run fmnist-repo``: a multi-file image classifier, graded on hidden labels.
FmnistRepoTask = folder_task_class(HERE / "fmnist-repo")

__all__ = ["HERE", "FmnistRepoTask"]
