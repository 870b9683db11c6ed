"""Finding tasks by name: the ``agentdeck.tasks`` entry-point group.

A task package registers its ``Task`` subclass in its ``pyproject.toml``::

    [project.entry-points."agentdeck.tasks"]
    my-task = "my_package.task:MyTask"

The built-in tasks register the same way, so the engine imports no task
module statically: a task is loaded only when it is asked for by name.
"""

from __future__ import annotations

import difflib
from importlib.metadata import EntryPoint, entry_points

from agentdeck.engine.errors import UserError
from agentdeck.engine.task import Task

GROUP = "agentdeck.tasks"


class UnknownTask(UserError):
    """No task of that name is registered."""

    def __init__(self, name: str, known: list[str]) -> None:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
        fix = f"did you mean {close[0]!r}?" if close else None
        listed = ", ".join(known) if known else "(none registered: is agentdeck installed?)"
        super().__init__(f"unknown task {name!r}; the tasks are: {listed}", fix=fix)
        self.name = name


class TaskLoadError(UserError):
    """A registered task whose entry point cannot be imported."""


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def task_names() -> list[str]:
    """The registered task names, built-in ones first, then alphabetically."""
    names = list(_entry_points())
    builtin = ("noisy-labels", "action-policy", "fmnist-repo")
    return [n for n in builtin if n in names] + sorted(n for n in names if n not in builtin)


def looks_like_path(name: str) -> bool:
    """``./tasks/my-task``, ``/abs/path``, ``~/t``: a task folder, not a registered name."""
    return name.startswith((".", "/", "~")) or "/" in name or "\\" in name


def get_task(name: str) -> Task:
    """A fresh instance of the registered task ``name``, or of the task folder at that
    path (``./tasks/examples/fmnist-repo``); ``UnknownTask`` if none."""
    from agentdeck.engine.taskfolder import is_task_folder, load_folder_task

    if looks_like_path(name) or (name not in _entry_points() and is_task_folder(name)):
        return load_folder_task(name)
    eps = _entry_points()
    ep = eps.get(name)
    if ep is None:
        raise UnknownTask(name, task_names())
    try:
        cls = ep.load()
    except ImportError as e:
        raise TaskLoadError(f"task {name!r} ({ep.value}) cannot be imported: {e}") from e
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise TaskLoadError(f"task {name!r}: {ep.value} is not a subclass of agentdeck's Task")
    task = cls()
    if not task.name:
        task.name = name
    return task


def guess_task(prompt: str) -> str | None:
    """The registered task whose prompt this is (for imported logs), or None."""
    for name, ep in _entry_points().items():
        try:
            cls = ep.load()
        except Exception:  # noqa: BLE001 - a broken third-party task must not break imports
            continue
        if isinstance(cls, type) and issubclass(cls, Task) and cls.recognizes(prompt):
            return name
    return None


__all__ = [
    "GROUP",
    "TaskLoadError",
    "UnknownTask",
    "get_task",
    "guess_task",
    "looks_like_path",
    "task_names",
]
