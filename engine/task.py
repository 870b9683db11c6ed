"""The task interface: what a task gives the engine.

A ``Task`` declares its name, description and parameters (``-T key=value``).
``Task.setup`` builds one instance for one run: the data, the grading secrets
(kept in the engine process), the prompt and the tools, and a reference policy
the ``scripted`` agent plays.

The interface belongs to the engine: task packages depend on it, the engine on
no task. Tasks are found by name through the ``agentdeck.tasks`` entry-point
group (``agentdeck.engine.registry``), so a third-party package can add one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentdeck.engine.errors import UserError
from agentdeck.engine.events import Event
from agentdeck.engine.log import RunDir
from agentdeck.engine.tools import ToolSpec

#: progress(what, done, total): e.g. ("fashion-mnist train-images", 1_000_000, 26_421_880).
ProgressFn = Callable[[str, int, int | None], None]


class TaskParamError(UserError, ValueError):
    """A bad ``-T key=value``; the message says which key and what is allowed."""


def parse_bool(s: str) -> bool:
    """``-T key=true|false`` (also 1/0, yes/no, on/off)."""
    if s.lower() in ("1", "true", "yes", "on"):
        return True
    if s.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


@dataclass(frozen=True)
class Param:
    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str
    #: Shown by ``agentdeck tasks``; the default as the user would type it.
    default_text: str | None = None
    #: A value the agent must not learn before grading (a seed, a path to the data
    #: source): ``run_start`` says "hidden until grading" and the grade reveals it.
    secret: bool = False

    def describe_default(self) -> str:
        if self.default_text is not None:
            return self.default_text
        return "" if self.default is None else str(self.default)


@dataclass
class ScriptedStep:
    """One assistant message of a reference policy: some text and one tool call."""

    tool: str
    input: dict[str, Any]
    text: str = ""


@dataclass
class TaskInstance:
    system: str
    prompt: str
    tools: list[ToolSpec]
    #: Name of the tool whose valid call grades and ends the run.
    submit_tool: str
    max_steps: int
    #: Python run in the sandbox kernel when it starts (imports, helpers).
    sandbox_setup: str = ""
    #: Seconds one tool call may run.
    tool_time_limit_s: float = 600.0
    #: Wall-clock seconds for the whole run when the user sets none (None: no limit).
    time_limit_s: float | None = None
    #: The parameters actually used (defaults and draws filled in), for the log.
    params: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    reference_policy: list[ScriptedStep] = field(default_factory=list)
    #: Resources one run needs (for batch schedulers); None: the task's.
    resources: Resources | None = None
    #: Called once when the run ends, graded or not, with the bus's emit: reveal
    #: grading secrets (as artifacts) now that the agent can no longer use them.
    on_end: Callable[[Callable[[Event], Event]], Any] | None = None
    #: Files and folders the sandbox must not be able to read: public copies of the
    #: task's data (scikit-learn's bundled digits), the source files the user named.
    hidden_paths: tuple[Path, ...] = ()
    #: The sandbox may reach the network (default: loopback only).
    network: bool = False

    def close(self) -> None:
        """Release what setup made (override if needed)."""


@dataclass(frozen=True)
class Resources:
    """What one run of a task needs: the batch scheduler packs runs by these."""

    cpus: float = 1.0
    gpus: float = 0.0
    memory_mb: int = 2048


class Task(ABC):
    name: str = ""
    description: str = ""
    params: tuple[Param, ...] = ()
    #: What one run needs (before setup, so a batch can plan); an instance may refine it.
    resources: Resources = Resources()
    #: Phrases of this task's prompt that identify an imported log (seed markdown has
    #: no task field) as a run of this task; all must appear.
    prompt_marks: tuple[str, ...] = ()

    @classmethod
    def recognizes(cls, prompt: str) -> bool:
        """Whether ``prompt`` is this task's (for naming imported logs)."""
        p = prompt.lower()
        return bool(cls.prompt_marks) and all(m.lower() in p for m in cls.prompt_marks)

    def secret_params(self, params: dict[str, Any]) -> set[str]:
        """The parameters hidden until grading (by default those marked ``secret``
        that the user set)."""
        return {p.name for p in self.params if p.secret and params.get(p.name) != p.default}

    def parse_params(self, raw: dict[str, str]) -> dict[str, Any]:
        """Turn ``-T`` strings into typed values, defaults for the rest."""
        known = {p.name: p for p in self.params}
        unknown = [k for k in raw if k not in known]
        if unknown:
            raise TaskParamError(
                f"task {self.name!r} has no parameter {unknown[0]!r}; "
                f"its parameters are: {', '.join(known) or '(none)'}"
            )
        out: dict[str, Any] = {}
        for p in self.params:
            if p.name in raw:
                try:
                    out[p.name] = p.parse(raw[p.name])
                except (ValueError, TypeError) as e:
                    raise TaskParamError(f"-T {p.name}={raw[p.name]}: {e} ({p.help})") from e
            else:
                out[p.name] = p.default
        return out

    @abstractmethod
    def setup(
        self, params: dict[str, Any], run_dir: RunDir, progress: ProgressFn | None = None
    ) -> TaskInstance:
        """Build one run's instance. ``params`` come from ``parse_params``;
        ``progress`` reports slow preparation (downloads) to the user."""
