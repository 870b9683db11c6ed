"""Small tasks for the batch tests, registered through a throwaway dist-info folder
(``batch_env`` in test_batch.py) so that worker processes find them by name, like any
third-party task.

- ``batch-instant``: the reference policy submits at once (optionally after sleeping
  in the sandbox); the grade's ``score`` is a fixed function of the seed, so the
  summary can be checked against the seeds.
- ``batch-raises``: its setup raises (a bug in a task).
- ``batch-kernel-dies``: the policy kills its sandbox kernel, then submits.
"""

from __future__ import annotations

from typing import Any

from agentdeck.engine.events import Grade
from agentdeck.engine.sandbox.tool import python_expression_tool
from agentdeck.engine.task import Param, Resources, ScriptedStep, Task, TaskInstance
from agentdeck.engine.tools import ToolOutcome, ToolSpec


def score_of(seed: int) -> float:
    return ((seed * 7919) % 10) / 10


def _opt_int(s: str) -> int | None:
    return None if s in ("", "none") else int(s)


class InstantTask(Task):
    name = "batch-instant"
    description = "Submits at once; passes when (seed * 7919) % 10 >= 5."
    params = (
        Param("seed", None, "the seed", _opt_int, secret=True),
        Param("sleep", 0.0, "seconds the policy sleeps in the sandbox first", float),
        Param("max_steps", 5, "steps", int),
        Param(
            "stubborn",
            False,
            "the sleep ignores Ctrl-C (the kernel is restarted after its interrupt grace)",
            lambda s: s.lower() in ("1", "true", "yes"),
        ),
    )
    resources = Resources(cpus=1.0, memory_mb=256)

    def setup(self, params: dict[str, Any], run_dir, progress=None) -> TaskInstance:
        seed = params["seed"] if params["seed"] is not None else 0
        score = score_of(seed)

        def submit(inp: dict[str, Any], ctx) -> ToolOutcome:
            grade = Grade(
                metrics={"score": score, "seed_echo": seed},
                criteria="score >= 0.5",
                passed=score >= 0.5,
                details={"seed": seed},
            )
            return ToolOutcome(output={"graded": True}, grade=grade)

        policy = []
        if params["sleep"]:
            code = f"import time\nprint('sleeping', flush=True)\ntime.sleep({params['sleep']})"
            if params["stubborn"]:
                code = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n" + code
            policy.append(ScriptedStep("python_expression", {"code": code}, "Sleeping."))
        policy += self.extra_steps()
        policy.append(ScriptedStep("submit", {}, "Submitting."))
        return TaskInstance(
            system="",
            prompt="Submit.",
            tools=[
                python_expression_tool(),
                ToolSpec("submit", "Submit.", {"type": "object", "properties": {}}, submit),
            ],
            submit_tool="submit",
            max_steps=params["max_steps"],
            params=dict(params),
            reference_policy=policy,
        )

    def extra_steps(self) -> list[ScriptedStep]:
        return []


class KernelDiesTask(InstantTask):
    name = "batch-kernel-dies"
    description = "Kills its kernel, then submits."

    def extra_steps(self) -> list[ScriptedStep]:
        return [ScriptedStep("python_expression", {"code": "import os\nos._exit(1)"}, "Dying.")]


class RaisingTask(InstantTask):
    name = "batch-raises"
    description = "Its setup raises."

    def setup(self, params, run_dir, progress=None):
        raise RuntimeError("this task is broken")


ENTRY_POINTS = {
    "batch-instant": "batch_tasks:InstantTask",
    "batch-kernel-dies": "batch_tasks:KernelDiesTask",
    "batch-raises": "batch_tasks:RaisingTask",
}
