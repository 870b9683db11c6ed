"""One run end to end: task + agent + sandbox + loop + log, behind one ``Run`` object.

``prepare`` checks everything a user typed (task, ``-T`` parameters, agent,
limits) before anything is created, so bad input fails fast with one clear
message (``ConfigError``, exit code 2). ``Run`` then executes the prepared
configuration: in the caller's thread (``Run.run``, the headless CLI and the
batch workers) or on a background thread (``Run.start``, the TUI), with
``stop``, ``join`` and ``result`` the same for both. Whatever happens (Ctrl-C,
a dead kernel, an exception in the engine or in a consumer of the events) a
run that has written ``run_start`` closes its log with ``grade`` and
``run_end``.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import socket
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from threadpoolctl import threadpool_limits

from agentdeck.engine.agents.base import Agent, AgentError
from agentdeck.engine.bus import EventBus, Sink
from agentdeck.engine.cpus import allotment, thread_env
from agentdeck.engine.errors import ConfigError, UserError, exit_code
from agentdeck.engine.events import ErrorEvent, Grade, RunEnd, RunStart, RunStatus, WarningEvent
from agentdeck.engine.log import LogWriter, RunDir, new_run_id
from agentdeck.engine.log.seal import Sealer
from agentdeck.engine.loop import Limits, LoopOutcome, StepLoop
from agentdeck.engine.sandbox.isolation import (
    Backend,
    Isolation,
    LocalBackend,
    SandboxUnavailable,
)
from agentdeck.engine.sandbox.isolation import choose as choose_backend
from agentdeck.engine.sysmetrics import gpu_names
from agentdeck.engine.task import (
    ProgressFn,
    Task,
    TaskInstance,
    TaskParamError,
)
from agentdeck.engine.task import (
    parse_bool as _parse_bool,
)

#: The smallest -T memory_limit_mb a kernel works in (measured: 512 MiB imports torch).
MIN_MEMORY_MB = 512

#: What run_start says for a parameter the agent must not learn before grading.
HIDDEN = "hidden until grading"

#: -T parameters every task accepts (handled by the engine, not the task).
ENGINE_PARAMS: dict[str, tuple[str, str]] = {
    "remind_steps_left": (
        "2",
        "when this many steps remain, tool results remind the agent to "
        "submit (0: off, for faithful benchmark reproduction)",
    ),
    "tool_time_limit": (
        "task's",
        "seconds one tool call may run before it is interrupted (the task's default: 600)",
    ),
    "memory_limit_mb": (
        "auto",
        "memory limit of the sandbox kernel in MiB (auto: 3/4 of RAM; 0: none)",
    ),
    "network": (
        "false",
        "let the sandbox reach the network (default: loopback only, under bwrap)",
    ),
    "pids_limit": ("512", "processes the sandbox may run at once (0: no limit)"),
    "work_limit_mb": ("4096", "MiB the working directory may hold (0: no limit)"),
    "cpus": (
        "task's",
        "CPUs the run may use; the sandbox's BLAS/OpenMP/torch thread pools are sized to it "
        "(default: what the task declares, at most the CPUs this machine gives the process)",
    ),
}


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
    #: "auto" (bwrap where it works, else local with a warning), "bwrap" or "local".
    sandbox: str = "auto"


@dataclass
class RunResult:
    status: RunStatus
    run_dir: RunDir | None
    grade: Grade | None = None
    message: str | None = None

    @property
    def exit_code(self) -> int:
        return exit_code(self.status, self.grade.passed if self.grade is not None else None)


@dataclass
class Prepared:
    config: RunConfig
    task: Task
    params: dict[str, Any]
    engine_params: dict[str, Any]
    agent_factory: Callable[[TaskInstance], Agent]
    backend: Backend = field(default_factory=LocalBackend)
    #: Said in every run's log and status bar when the sandbox is not isolated.
    isolation_warning: str | None = None


def _parse_engine_params(raw: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "remind_steps_left": 2,
        "tool_time_limit": None,
        "memory_limit_mb": _default_memory_limit_mb(),
        "cpus": None,
        "network": False,
        "pids_limit": 512,
        "work_limit_mb": 4096,
    }
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
                if 0 < out[key] < MIN_MEMORY_MB:
                    raise ValueError(
                        f"too small for the sandbox's kernel: it needs at least "
                        f"{MIN_MEMORY_MB} MiB (Python, ipykernel, numpy and torch; measured: "
                        "256 MiB starts the kernel but not torch), or 0 for no limit"
                    )
            elif key == "network":
                out[key] = _parse_bool(text)
            elif key in ("pids_limit", "work_limit_mb"):
                out[key] = int(text)
                if out[key] < 0:
                    raise ValueError("must be >= 0 (0: no limit)")
            elif key == "cpus":
                out[key] = float(text)
                if not out[key] > 0:
                    raise ValueError("must be a positive number of CPUs")
        except ValueError as e:
            raise ConfigError(str(e), where=f"-T {key}={text}") from e
    return out


def _default_memory_limit_mb() -> int | None:
    try:
        import psutil

        return int(psutil.virtual_memory().total * 3 / 4 / (1 << 20))
    except Exception:  # noqa: BLE001 - psutil is a dependency; be safe on odd platforms
        return None


def prepare(config: RunConfig, task: Task | None = None) -> Prepared:
    """Check the configuration; raises ``ConfigError`` with a one-line message.

    ``task`` is the resolved task (the CLI resolves names and folders); by
    default ``config.task`` is looked up in the registry.
    """
    if task is None:
        from agentdeck.engine.registry import get_task

        try:
            task = get_task(config.task)
        except UserError as e:
            raise ConfigError(str(e)) from e
    raw = dict(config.params)
    engine_raw = {k: raw.pop(k) for k in list(raw) if k in ENGINE_PARAMS}
    if config.max_steps is not None:
        if config.max_steps < 1:
            raise ConfigError(f"--max-steps must be at least 1, got {config.max_steps}")
        if any(p.name == "max_steps" for p in task.params):
            raw["max_steps"] = str(config.max_steps)
    for name, value in (
        ("--time-limit", config.time_limit_s),
        ("--token-limit", config.token_limit),
        ("--cost-limit", config.cost_limit_usd),
    ):
        if value is not None and value <= 0:
            raise ConfigError(f"{name} must be positive, got {value}")
    try:
        params = task.parse_params(raw)
    except TaskParamError as e:
        raise ConfigError(str(e)) from e
    engine_params = _parse_engine_params(engine_raw)
    from agentdeck.engine.agents import make_agent_factory

    try:
        factory = make_agent_factory(config.agent, model=config.model, **config.agent_options)
    except AgentError as e:
        raise ConfigError(str(e)) from e
    try:
        backend, warning = choose_backend(config.sandbox)
    except (SandboxUnavailable, ValueError) as e:
        raise ConfigError(str(e), where="--sandbox") from e
    return Prepared(config, task, params, engine_params, factory, backend, warning)


def host_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "hostname": socket.gethostname(),
        # the writer: a log without run_end whose writer is gone is a run that died
        "pid": os.getpid(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    from importlib.metadata import PackageNotFoundError, version

    # torch's version from its metadata and the GPUs from NVML, not from importing torch:
    # the engine needs no torch of its own, and importing it costs every run ~2 s of CPU
    for dist in ("agentdeck", "torch"):
        with contextlib.suppress(PackageNotFoundError):  # a source checkout, or no torch
            info[dist] = version(dist)
    info["gpus"] = gpu_names()
    return info


class RunHandle(Protocol):
    """What a UI holds of a run in progress (``Run``, or a test double)."""

    @property
    def run_dir(self) -> RunDir | None: ...

    @property
    def result(self) -> RunResult | None: ...

    @property
    def error(self) -> BaseException | None: ...

    @property
    def done(self) -> bool: ...

    def wait_started(self, timeout: float | None = None) -> bool: ...

    def stop(self) -> None: ...

    def join(self, timeout: float | None = None) -> bool: ...


class Run:
    """One run of a prepared configuration.

    ``run()`` executes it in the calling thread and returns the ``RunResult``;
    ``start()`` executes it on a background thread (then ``join`` and read
    ``result``, or ``error`` when it could not start: a ``ConfigError`` from
    the task's setup, say). ``stop()`` (any thread, also a signal handler)
    interrupts the running tool call and ends the run ``interrupted``.
    """

    def __init__(
        self, prepared: Prepared, *, sinks: Sequence[Sink] = (), progress: ProgressFn | None = None
    ) -> None:
        self.prepared = prepared
        self._sinks = list(sinks)
        self._progress = progress
        self._stop = threading.Event()
        self._started = threading.Event()
        self._finished = threading.Event()
        self._thread: threading.Thread | None = None
        self._sandbox: Any = None
        self._instance: TaskInstance | None = None
        self._revealed: dict[str, Any] = {}
        self._agent: Agent | None = None
        self.run_dir: RunDir | None = None
        self.bus: EventBus | None = None
        self.result: RunResult | None = None
        self.error: BaseException | None = None

    # -- control --------------------------------------------------------------------------

    def run(self) -> RunResult:
        """Execute in this thread. Raises ``ConfigError`` when the task cannot be set up."""
        try:
            self.result = self._execute()
            return self.result
        except BaseException as e:
            self.error = e
            raise
        finally:
            self._started.set()
            self._finished.set()

    def start(self) -> Run:
        """Execute on a background thread."""

        def target() -> None:
            with contextlib.suppress(BaseException):  # kept in self.error for the UI to show
                self.run()

        self._thread = threading.Thread(target=target, name="agentdeck-run", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the run to stop: the current tool call is interrupted, the log closed."""
        self._stop.set()
        sb = self._sandbox
        if sb is not None:
            with contextlib.suppress(Exception):  # the kernel may be gone already
                sb.interrupt()

    @property
    def sandbox(self) -> Any:
        """The run's sandbox once it started (None before)."""
        return self._sandbox

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def wait_started(self, timeout: float | None = None) -> bool:
        """Until the sandbox is up and the loop runs (or the run failed to start)."""
        return self._started.wait(timeout)

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return self._finished.wait(timeout)

    @property
    def done(self) -> bool:
        return self._finished.is_set()

    # -- execution --------------------------------------------------------------------------

    def setup(self) -> Run:
        """Create the run directory and set the task and agent up (idempotent).

        ``run`` and ``start`` call it when it has not been called; a UI calls it
        first to show slow preparation (downloads) and bad input before it opens.
        Raises ``ConfigError`` for the user's input; anything else is a bug.
        """
        if self._instance is not None:
            return self
        prep = self.prepared
        cfg = prep.config
        run_id = cfg.run_id or new_run_id(prep.task.name or cfg.task)
        try:
            cfg.log_dir.mkdir(parents=True, exist_ok=True)
            run_dir = RunDir.create(cfg.log_dir, run_id)
        except OSError as e:
            raise ConfigError(
                f"cannot create the run directory: {e}", where=str(cfg.log_dir)
            ) from e
        try:
            instance = prep.task.setup(prep.params, run_dir, self._progress)
            agent = prep.agent_factory(instance)
        except (UserError, AgentError) as e:
            shutil.rmtree(run_dir.path, ignore_errors=True)
            raise ConfigError(str(e)) from e
        except BaseException:
            shutil.rmtree(run_dir.path, ignore_errors=True)
            raise  # a bug in the task: not the user's input
        self.run_dir, self._instance, self._agent = run_dir, instance, agent
        return self

    def _execute(self) -> RunResult:
        self.setup()
        prep = self.prepared
        cfg = prep.config
        run_dir, instance, agent = self.run_dir, self._instance, self._agent
        assert run_dir is not None and instance is not None and agent is not None
        run_id = run_dir.run_id
        resources = instance.resources or prep.task.resources
        cpus = allotment(prep.engine_params["cpus"], resources.cpus)
        sealer = Sealer.for_user()
        writer = LogWriter(run_dir.events, sealer=sealer)
        bus = EventBus(self._sinks, critical=[writer])
        self.bus = bus
        ep = prep.engine_params
        limits = Limits(
            max_steps=instance.max_steps,
            wall_time_s=cfg.time_limit_s if cfg.time_limit_s is not None else instance.time_limit_s,
            token_limit=cfg.token_limit,
            cost_limit_usd=cfg.cost_limit_usd,
            tool_time_limit_s=ep["tool_time_limit"] or instance.tool_time_limit_s,
            remind_steps_left=ep["remind_steps_left"],
        )
        outcome: LoopOutcome | None = None
        sandbox: Any = None
        sampler: Any = None
        # explicit seeds and data paths: "hidden until grading" in run_start, in the grade
        hidden = prep.task.secret_params(prep.params)
        shown = {k: (HIDDEN if k in hidden else v) for k, v in instance.params.items()}
        self._revealed = {k: _jsonable(prep.params.get(k)) for k in sorted(hidden)}
        try:
            from agentdeck.engine.sandbox import Sandbox, SandboxError

            isolation = Isolation(
                memory_mb=ep["memory_limit_mb"] or None,
                pids=ep["pids_limit"],
                work_mb=ep["work_limit_mb"],
                network=bool(ep["network"] or instance.network),
                hidden=tuple(instance.hidden_paths),
                private=(cfg.log_dir.resolve(),),
            )
            sandbox = Sandbox.for_run(
                run_dir,
                backend=prep.backend,
                isolation=isolation,
                startup_code=instance.sandbox_setup,
                extra_env=thread_env(cpus),
            )
            self._sandbox = sandbox
            sandbox.prepare_limits()
            bus.emit(
                RunStart(
                    run_id=run_id,
                    task=prep.task.name or cfg.task,
                    task_params={
                        **shown,
                        **{k: v for k, v in ep.items() if v is not None},
                    },
                    agent=agent.name,
                    model=agent.model,
                    max_steps=instance.max_steps,
                    system=instance.system,
                    prompt=instance.prompt,
                    tools=_logged_tools(agent, instance),
                    seed=None if "seed" in hidden else instance.seed,
                    host={**host_info(), **({"seal_key": sealer.key_id} if sealer else {})},
                    limits={
                        "wall_time_s": limits.wall_time_s,
                        "token_limit": cfg.token_limit,
                        "cost_limit_usd": cfg.cost_limit_usd,
                        "tool_time_limit_s": limits.tool_time_limit_s,
                        "cpus": cpus,
                        "sandbox": {
                            "backend": prep.backend.name,
                            "isolated": prep.backend.isolated,
                            "network": isolation.network,
                            "enforced": dict(sandbox.enforcement),
                        },
                    },
                    started_at=datetime.now().isoformat(),
                )
            )
            if prep.isolation_warning:
                bus.emit(
                    WarningEvent(
                        where="sandbox", code="not_isolated", message=prep.isolation_warning
                    )
                )
            try:
                sandbox.start()
            except SandboxError as e:
                bus.emit(ErrorEvent(where="sandbox", message=str(e), code="sandbox_start"))
                outcome = LoopOutcome(status="error", message=f"the sandbox did not start: {e}")
            if outcome is None:
                sampler = _start_sampler(sandbox, bus)
                self._started.set()
                loop = StepLoop(
                    agent=agent,
                    bus=bus,
                    run_dir=run_dir,
                    system=instance.system,
                    prompt=instance.prompt,
                    tools=instance.tools,
                    submit_tool=instance.submit_tool,
                    limits=limits,
                    sandbox=sandbox,
                    stop=self._stop,
                    reveal=self._revealed,
                )
                # the engine's own BLAS/OpenMP pools (grading, task code) keep to the
                # allotment too, whatever the user's environment says
                with threadpool_limits(limits=cpus):
                    outcome = loop.run()
        except KeyboardInterrupt:
            outcome = LoopOutcome(status="interrupted", message="stopped by the user")
        except BaseException as e:  # noqa: BLE001 - an engine bug: record it, end the log properly
            outcome = LoopOutcome(status="error", message=f"internal error: {e!r}")
            _emit_quietly(
                bus,
                ErrorEvent(
                    where="engine",
                    message=f"{e!r}\n{traceback.format_exc(limit=8)}",
                    code="engine_crash",
                ),
            )
        finally:
            if outcome is None:  # pragma: no cover - every path above sets it
                outcome = LoopOutcome(status="error", message="the run ended without an outcome")
            grade = self._close(outcome, instance, agent, bus, writer, sandbox, sampler)
        return RunResult(
            status=outcome.status, run_dir=run_dir, grade=grade, message=outcome.message
        )

    def _close(
        self,
        outcome: LoopOutcome,
        instance: TaskInstance,
        agent: Agent,
        bus: EventBus,
        writer: LogWriter,
        sandbox: Any,
        sampler: Any,
    ) -> Grade | None:
        """Stop everything the run started and write the grade and ``run_end``.

        Each step is guarded on its own, so a failure in one (a sandbox that will
        not shut down, a task hook that raises) still leaves a complete log.
        """
        self._started.set()
        steps: list[tuple[str, Callable[[], Any]]] = []
        if sampler is not None:
            steps.append(("sampler", sampler.stop))
        if sandbox is not None:
            steps.append(("sandbox", sandbox.shutdown))
        steps.append(("agent", agent.close))
        for where, fn in steps:
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - best effort, said in the log
                _emit_quietly(bus, WarningEvent(where=where, message=f"shutdown failed: {e!r}"))
        grade = outcome.grade
        if instance.on_end is not None:
            try:
                instance.on_end(bus.emit)
            except Exception as e:  # noqa: BLE001 - the log still ends properly
                _emit_quietly(
                    bus, WarningEvent(where="task", message=f"revealing secrets failed: {e!r}")
                )
        if grade is None:
            details: dict[str, Any] = {"reason": _no_grade_reason(outcome.status)}
            if self._revealed:
                details["revealed"] = dict(self._revealed)
            grade = Grade(passed=False, submitted=False, details=details)
            _emit_quietly(bus, grade)
        _emit_quietly(
            bus,
            RunEnd(status=outcome.status, totals=outcome.totals, message=outcome.message),
        )
        writer.close()
        with contextlib.suppress(Exception):  # the run is over and logged
            instance.close()
        return grade


def _logged_tools(agent: Agent, instance: TaskInstance) -> list[dict[str, Any]]:
    """The tools for ``run_start``: their schemas, and for a tool of the shape of an
    Anthropic-defined one how the agent sends it (``sent_as``: ``bash_20250124``, or
    ``custom`` where the model does not take that type)."""
    schemas = [t.schema() for t in instance.tools]
    describe = getattr(agent, "tool_types", None)
    if callable(describe):
        for schema, sent_as in zip(schemas, describe(schemas), strict=False):
            if sent_as is not None:
                schema["sent_as"] = sent_as
    return schemas


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    return str(v)


def _no_grade_reason(status: str) -> str:
    return {
        "interrupted": "interrupted before a result was submitted",
        "error": "the run failed before a result was submitted",
        "limit_exceeded": "a limit ended the run before a result was submitted",
    }.get(status, "no result submitted")


def _emit_quietly(bus: EventBus, event: Any) -> None:
    """Emit during teardown; a second failure must not hide the first."""
    with contextlib.suppress(Exception):  # the log writer itself failed: nothing more to do
        bus.emit(event)


def _start_sampler(sandbox: Any, bus: EventBus) -> Any:
    try:
        from agentdeck.engine.sysmetrics import SystemSampler
    except ImportError:
        return None
    # follows kernel restarts; a repository task's work runs in its bash session
    sampler = SystemSampler(lambda: sandbox.shell_pid or sandbox.pid, bus.emit)
    sampler.start()
    return sampler


def execute(
    prep: Prepared, *, sinks: Sequence[Sink] = (), progress: ProgressFn | None = None
) -> RunResult:
    """Run a prepared configuration to its end in this thread (``Run(prep).run()``)."""
    return Run(prep, sinks=sinks, progress=progress).run()


__all__ = [
    "ENGINE_PARAMS",
    "ConfigError",
    "Prepared",
    "Run",
    "RunConfig",
    "RunHandle",
    "RunResult",
    "execute",
    "host_info",
    "prepare",
]
