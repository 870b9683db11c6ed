"""Running one task end to end: the composition of task, agent, sandbox, loop and log.

``prepare`` checks everything a user typed (task, ``-T`` parameters, agent,
limits) before anything is created, so bad input fails fast with one clear
message (``ConfigError``, exit code 2). ``execute`` then creates the run
directory, writes ``run_start``, starts the sandbox and the system sampler,
runs the step loop and always closes with ``grade`` and ``run_end``, whatever
happens (Ctrl-C, a dead kernel, an exception in the engine). ``start_run``
does the same on a background thread for the TUI.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.agents.base import Agent, AgentError
from engine.bus import EventBus, Sink
from engine.events import ErrorEvent, Event, Grade, RunEnd, RunStart, WarningEvent
from engine.loop import Limits, LoopOutcome, StepLoop
from engine.runlog import LogWriter, RunDir, new_run_id
from tasks import UnknownTask, get_task
from tasks.base import ProgressFn, Task, TaskInstance, TaskParamError

EXIT_PASSED, EXIT_FAILED, EXIT_USAGE, EXIT_INFRA, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

#: -T parameters every task accepts (handled by the engine, not the task).
ENGINE_PARAMS: dict[str, tuple[str, str]] = {
    "remind_steps_left": ("2", "when this many steps remain, tool results remind the agent to "
                                "submit (0: off, for faithful benchmark reproduction)"),
    "tool_time_limit": ("task's", "seconds one tool call may run before it is interrupted "
                                  "(the task's default: 600)"),
    "memory_limit_mb": ("auto", "memory limit of the sandbox kernel in MiB (auto: 3/4 of RAM; "
                                "0: none)"),
}


class ConfigError(ValueError):
    """Bad input from the user: the message says what, where and what to do."""


@dataclass
class RunConfig:
    task: str
    params: dict[str, str] = field(default_factory=dict)
    #: "scripted" | "claude" | "replay:LOG" | "replay:LOG@N" (then --fork-agent from step N+1)
    agent: str = "scripted"
    model: str | None = None
    agent_options: dict[str, Any] = field(default_factory=dict)
    max_steps: int | None = None
    time_limit_s: float | None = None
    token_limit: int | None = None
    cost_limit_usd: float | None = None
    log_dir: Path = Path("logs")
    run_id: str | None = None


@dataclass
class RunResult:
    status: str
    run_dir: RunDir | None
    grade: Grade | None = None
    message: str | None = None

    @property
    def exit_code(self) -> int:
        if self.status == "interrupted":
            return EXIT_INTERRUPTED
        if self.status == "error":
            return EXIT_INFRA
        if self.grade is not None and self.grade.passed:
            return EXIT_PASSED
        return EXIT_FAILED


@dataclass
class Prepared:
    config: RunConfig
    task: Task
    params: dict[str, Any]
    engine_params: dict[str, Any]
    agent_factory: Callable[[TaskInstance], Agent]


def _parse_engine_params(raw: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"remind_steps_left": 2, "tool_time_limit": None,
                           "memory_limit_mb": _default_memory_limit_mb()}
    for key, text in raw.items():
        try:
            if key == "remind_steps_left":
                out[key] = int(text)
                if out[key] < 0:
                    raise ValueError("must be >= 0")
            elif key == "tool_time_limit":
                out[key] = float(text)
                if out[key] <= 0:
                    raise ValueError("must be > 0 seconds")
            elif key == "memory_limit_mb" and text not in ("auto", ""):
                out[key] = int(text) or 0
        except ValueError as e:
            raise ConfigError(f"-T {key}={text}: {e}") from e
    return out


def _default_memory_limit_mb() -> int | None:
    try:
        import psutil

        return int(psutil.virtual_memory().total * 3 / 4 / (1 << 20))
    except Exception:  # pragma: no cover - psutil is a dependency
        return None


def prepare(config: RunConfig) -> Prepared:
    """Check the configuration; raises ``ConfigError`` with a one-line message."""
    try:
        task = get_task(config.task)
    except UnknownTask as e:
        raise ConfigError(str(e)) from e
    raw = dict(config.params)
    engine_raw = {k: raw.pop(k) for k in list(raw) if k in ENGINE_PARAMS}
    if config.max_steps is not None:
        if config.max_steps < 1:
            raise ConfigError(f"--max-steps must be at least 1, got {config.max_steps}")
        if any(p.name == "max_steps" for p in task.params):
            raw["max_steps"] = str(config.max_steps)
    for name, value in (("--time-limit", config.time_limit_s), ("--token-limit",
                        config.token_limit), ("--cost-limit", config.cost_limit_usd)):
        if value is not None and value <= 0:
            raise ConfigError(f"{name} must be positive, got {value}")
    try:
        params = task.parse_params(raw)
    except TaskParamError as e:
        raise ConfigError(str(e)) from e
    engine_params = _parse_engine_params(engine_raw)
    from engine.agents import make_agent_factory

    try:
        factory = make_agent_factory(config.agent, model=config.model, **config.agent_options)
    except AgentError as e:
        raise ConfigError(str(e)) from e
    return Prepared(config, task, params, engine_params, factory)


def host_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    try:
        from importlib.metadata import version

        info["agentdeck"] = version("agentdeck")
    except Exception:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = torch.cuda.is_available()
        if info["cuda"]:
            info["gpu"] = torch.cuda.get_device_name(0)
    except Exception:
        pass
    return info


def execute(
    prep: Prepared,
    *,
    sinks: list[Sink] = (),  # type: ignore[assignment]
    stop: threading.Event | None = None,
    progress: ProgressFn | None = None,
    on_started: Callable[[RunDir, EventBus, Any], None] | None = None,
) -> RunResult:
    """Run a prepared configuration to its end. Never raises for run failures:
    they end the run with status ``error`` and a complete log."""
    cfg = prep.config
    stop = stop or threading.Event()
    run_id = cfg.run_id or new_run_id(cfg.task)
    try:
        cfg.log_dir.mkdir(parents=True, exist_ok=True)
        run_dir = RunDir.create(cfg.log_dir, run_id)
    except OSError as e:
        raise ConfigError(f"cannot create the run directory in {cfg.log_dir}: {e}") from e

    try:
        instance = prep.task.setup(prep.params, run_dir, progress)
    except Exception as e:
        shutil.rmtree(run_dir.path, ignore_errors=True)
        from engine.datasets import DatasetUnavailable

        if isinstance(e, TaskParamError | DatasetUnavailable | ValueError | OSError):
            raise ConfigError(str(e)) from e
        raise
    try:
        agent = prep.agent_factory(instance)
    except AgentError as e:
        shutil.rmtree(run_dir.path, ignore_errors=True)
        raise ConfigError(str(e)) from e

    writer = LogWriter(run_dir.events)
    bus = EventBus([writer, *sinks])
    ep = prep.engine_params
    limits = Limits(
        max_steps=instance.max_steps,
        wall_time_s=cfg.time_limit_s,
        token_limit=cfg.token_limit,
        cost_limit_usd=cfg.cost_limit_usd,
        tool_time_limit_s=ep["tool_time_limit"] or instance.tool_time_limit_s,
        remind_steps_left=ep["remind_steps_left"],
    )
    bus.emit(RunStart(
        run_id=run_id, task=cfg.task,
        task_params={**instance.params, **{k: v for k, v in ep.items() if v is not None}},
        agent=agent.name, model=agent.model, max_steps=instance.max_steps,
        system=instance.system, prompt=instance.prompt,
        tools=[t.schema() for t in instance.tools], seed=instance.seed, host=host_info(),
        limits={"wall_time_s": cfg.time_limit_s, "token_limit": cfg.token_limit,
                "cost_limit_usd": cfg.cost_limit_usd,
                "tool_time_limit_s": limits.tool_time_limit_s},
        started_at=datetime.now().isoformat(),
    ))

    sandbox = None
    sampler = None
    outcome: LoopOutcome | None = None
    try:
        from engine.sandbox import Sandbox, SandboxError

        sandbox = Sandbox.for_run(run_dir, memory_limit_mb=ep["memory_limit_mb"] or None,
                                  startup_code=instance.sandbox_setup)
        try:
            sandbox.start()
        except SandboxError as e:
            bus.emit(ErrorEvent(where="sandbox", message=str(e), code="sandbox_start"))
            outcome = LoopOutcome(status="error", message=f"the sandbox did not start: {e}")
        if outcome is None:
            sampler = _start_sampler(sandbox, bus)
            if on_started is not None:
                on_started(run_dir, bus, sandbox)
            loop = StepLoop(agent=agent, bus=bus, run_dir=run_dir, system=instance.system,
                            prompt=instance.prompt, tools=instance.tools,
                            submit_tool=instance.submit_tool, limits=limits, sandbox=sandbox,
                            stop=stop)
            outcome = loop.run()
    except KeyboardInterrupt:
        outcome = LoopOutcome(status="interrupted", message="stopped by the user")
    except Exception as e:  # an engine bug: record it, end the log properly
        bus.emit(ErrorEvent(where="engine", message=f"{e!r}\n{traceback.format_exc(limit=8)}",
                            code="engine_crash"))
        outcome = LoopOutcome(status="error", message=f"internal error: {e!r}")
    finally:
        if sampler is not None:
            sampler.stop()
        if sandbox is not None:
            try:
                sandbox.shutdown()
            except Exception as e:  # pragma: no cover - best effort
                bus.emit(WarningEvent(where="sandbox", message=f"shutdown failed: {e!r}"))
        try:
            agent.close()
        except Exception:
            pass
        assert outcome is not None
        grade = outcome.grade
        if instance.on_end is not None:
            try:
                instance.on_end(bus.emit)
            except Exception as e:
                bus.emit(WarningEvent(where="task", message=f"revealing secrets failed: {e!r}"))
        if grade is None:
            grade = Grade(passed=False, submitted=False,
                          details={"reason": "no result submitted"})
            bus.emit(grade)
        totals = outcome.totals.to_dict()
        bus.emit(RunEnd(status=outcome.status, totals=totals,  # type: ignore[arg-type]
                        message=outcome.message))
        writer.close()
        instance.close()
    return RunResult(status=outcome.status, run_dir=run_dir, grade=grade,
                     message=outcome.message)


def _start_sampler(sandbox: Any, bus: EventBus) -> Any:
    try:
        from engine.sysmetrics import SystemSampler
    except ImportError:
        return None
    sampler = SystemSampler(lambda: sandbox.pid, bus.emit)  # follows kernel restarts
    sampler.start()
    return sampler


class RunHandle:
    """A run on a background thread (for the TUI)."""

    def __init__(self, prep: Prepared, sinks: list[Sink]) -> None:
        self._prep = prep
        self._sinks = sinks
        self._stop = threading.Event()
        self._started = threading.Event()
        self.run_dir: RunDir | None = None
        self.bus: EventBus | None = None
        self._sandbox: Any = None
        self.result: RunResult | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="agentdeck-run", daemon=True)

    def _on_started(self, run_dir: RunDir, bus: EventBus, sandbox: Any) -> None:
        self.run_dir, self.bus, self._sandbox = run_dir, bus, sandbox
        self._started.set()

    def _run(self) -> None:
        try:
            self.result = execute(self._prep, sinks=self._sinks, stop=self._stop,
                                  on_started=self._on_started)
            if self.run_dir is None and self.result is not None:
                self.run_dir = self.result.run_dir
        except BaseException as e:  # ConfigError from setup, or a crash
            self.error = e
        finally:
            self._started.set()

    def start(self) -> RunHandle:
        self._thread.start()
        return self

    def wait_started(self, timeout: float | None = None) -> bool:
        return self._started.wait(timeout)

    def stop(self) -> None:
        """Ask the run to stop: the current tool call is interrupted, the log closed."""
        self._stop.set()
        sb = self._sandbox
        if sb is not None:
            try:
                sb.interrupt()
            except Exception:
                pass

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def done(self) -> bool:
        return not self._thread.is_alive() and self._started.is_set()


def start_run(config: RunConfig, sinks: list[Callable[[Event], None]] = ()) -> RunHandle:  # type: ignore[assignment]
    """Prepare (raises ``ConfigError`` on bad input) and run on a background thread."""
    prep = prepare(config)
    return RunHandle(prep, list(sinks)).start()
