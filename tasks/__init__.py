"""Task registry: a task is found by name (``agentdeck tasks`` lists them)."""

from __future__ import annotations

import importlib

from tasks.base import Task, TaskParamError

#: name -> "module:Class"; imported on first use so listing tasks stays cheap.
REGISTRY: dict[str, str] = {
    "noisy-labels": "tasks.noisy_labels.task:NoisyLabelsTask",
    "action-policy": "tasks.action_policy.task:ActionPolicyTask",
}


class UnknownTask(KeyError):
    def __str__(self) -> str:
        return f"unknown task {self.args[0]!r}; the tasks are: {', '.join(REGISTRY)}"


def get_task(name: str) -> Task:
    if name not in REGISTRY:
        raise UnknownTask(name)
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)()


def task_names() -> list[str]:
    return list(REGISTRY)


__all__ = ["REGISTRY", "Task", "TaskParamError", "UnknownTask", "get_task", "task_names"]
