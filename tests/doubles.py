"""Test doubles: synthetic runs for the tests and the benchmarks, and a fake live run.

``write_synthetic_log`` writes a deterministic, realistic JSONL log (python
tool calls with training-loop output, metrics, a graded end) through the
engine's own ``EventBus`` and ``LogWriter``. ``FakeRun`` is a stand-in for
``agentdeck.engine.run.Run`` (it implements the ``RunHandle`` protocol, its ``result`` an
engine ``RunResult``): it plays such a run on a background thread, emitting every event (deltas and output chunks included) through a bus to the
given sinks while writing ``events.jsonl``, and honours ``stop()`` like the
real runner: the running tool is interrupted and the run ends ``interrupted``.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentdeck.engine.bus import EventBus
from agentdeck.engine.events import (
    Check,
    Event,
    Grade,
    Metric,
    ModelDelta,
    ModelResponse,
    RunEnd,
    RunStart,
    RunStatus,
    StepStart,
    ToolCall,
    ToolOutputChunk,
    ToolResult,
    Totals,
    Usage,
    WarningEvent,
)
from agentdeck.engine.log import LogWriter, RunDir
from agentdeck.engine.run import RunResult

T0 = 1_700_000_000.0
PROMPT = (
    "Find the training samples whose labels were corrupted. Use python_expression to "
    "analyse X_train and y_train, save the indices with np.save('predictions.npy', idx) "
    "and call submit_predictions."
)
TOOLS = [
    {
        "name": "python_expression",
        "description": "Run Python code in a persistent kernel",
        "input_schema": {
            "type": "object",
            "properties": {"code": {"type": "string"}},
            "required": ["code"],
        },
    },
    {
        "name": "submit_predictions",
        "description": "Submit predictions for grading",
        "input_schema": {"type": "object", "properties": {"predictions_file": {"type": "string"}}},
    },
]

_SNIPPETS = [
    "import numpy as np\nprint(X_train.shape, y_train.shape)\nprint(np.bincount(y_train))",
    "model = MLP(784, {h}, 10).to(device)\nopt = torch.optim.AdamW(model.parameters(), lr={lr})\n"
    "for epoch in range({e}):\n    loss = train_one_epoch(model, opt, loader)\n"
    "    acc = evaluate(model, val_loader)\n    print(f'epoch {{epoch}} loss {{loss:.4f}} acc {{acc:.4f}}')",
    "probs = cross_val_predict(model, X_train, y_train, cv={k}, method='predict_proba')\n"
    "self_conf = probs[np.arange(len(y_train)), y_train]\nprint(np.percentile(self_conf, [5, 25, 50]))",
    "thresholds = np.linspace(0.05, 0.6, {k})\nfor t in thresholds:\n"
    "    flagged = np.where(self_conf < t)[0]\n    print(t, len(flagged))",
    "noisy = np.argsort(self_conf)[:{n}]\nnp.save('predictions.npy', noisy)\nprint(len(noisy))",
]


@dataclass
class SyntheticSpec:
    steps: int = 20
    seed: int = 0
    #: Approximate bytes of tool output per step.
    output_bytes: int = 1500
    model: str | None = "claude-sonnet-4-5"
    agent: str = "claude"
    task: str = "noisy-labels"
    run_id: str = "synthetic"
    max_steps: int | None = None
    #: Emit per-epoch metric events every this many steps (0: none).
    metrics_every: int = 3
    #: Use a different tool input from this step on (for compare tests).
    diverge_at: int | None = None
    status: str = "completed"
    passed: bool | None = True
    calibration: bool = False
    #: Also write the tool output as tool_output_chunk events.
    chunks: bool = False
    #: Seconds between events; the log's timestamps are T0 + multiples of it.
    dt: float = 0.5
    cost: bool = True
    #: Also log what a real run of the engine's trainer logs: per-epoch trainer series
    #: for two cross-fitting folds (a constant learning rate among them), the system
    #: gauges every step, and single values (a temperature, ECE before/after scaling).
    trainer: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _code(rng: random.Random, step: int, variant: int) -> str:
    tmpl = _SNIPPETS[(step + variant) % len(_SNIPPETS)]
    return f"# step {step}\n" + tmpl.format(
        h=rng.choice([128, 256, 512]),
        lr=rng.choice([1e-3, 3e-4]),
        e=rng.randint(3, 12),
        k=rng.randint(3, 10),
        n=rng.randint(9000, 12000),
    )


def _output(rng: random.Random, nbytes: int) -> str:
    lines, size, epoch = [], 0, 0
    while size < nbytes:
        loss = 2.3 * (0.9**epoch) + rng.random() * 0.05
        line = (
            f"epoch {epoch:3d}  loss {loss:.4f}  acc {1 - loss / 2.5:.4f}  "
            f"lr 3.0e-04  {rng.randint(9000, 12000)} samples/s"
        )
        lines.append(line)
        size += len(line) + 1
        epoch += 1
    return "\n".join(lines) + "\n"


def synthetic_events(spec: SyntheticSpec) -> Iterator[Event]:
    """The events of a deterministic synthetic run, timestamps included."""
    rng = random.Random(spec.seed)
    clock = [T0]

    def t() -> float:
        clock[0] += spec.dt
        return round(clock[0], 3)

    max_steps = spec.max_steps or spec.steps
    yield RunStart(
        t=T0,
        run_id=spec.run_id,
        task=spec.task,
        agent=spec.agent,
        model=spec.model,
        max_steps=max_steps,
        prompt=PROMPT,
        tools=TOOLS,
        seed=spec.seed,
        task_params=dict(spec.extra),
    )
    tin = tout = 0
    total_cost = 0.0
    epoch = 0
    for step in range(1, spec.steps + 1):
        yield StepStart(t=t(), step=step)
        last = step == spec.steps and spec.status == "completed"
        variant = 1 if spec.diverge_at is not None and step >= spec.diverge_at else 0
        call_id = f"toolu_{step:05d}"
        if last:
            name, inp = "submit_predictions", {"predictions_file": "predictions.npy"}
        else:
            name, inp = "python_expression", {"code": _code(rng, step, variant)}
        if step % 17 == 5:
            yield WarningEvent(
                t=t(),
                where="agent",
                code="retry",
                step=step,
                message="429 rate limited; retrying in 2.0s (attempt 1 of 5)",
            )
        u_in = 1400 + 180 * (step % 100) + rng.randint(0, 400)  # context resets (compaction)
        u_out = rng.randint(60, 600)
        cr = (u_in // 2) if step > 1 else 0
        c = (u_in * 3 + u_out * 15 + cr * 0.3) / 1e6 if spec.cost else None
        text = (
            f"Step {step}: next I will {'submit the predictions' if last else 'run an analysis'}"
            f". Loss so far looks {'good' if rng.random() > 0.3 else 'noisy'}."
        )
        yield ModelResponse(
            t=t(),
            step=step,
            message_id=f"msg_{spec.seed:02d}{step:06d}",
            model=spec.model,
            stop_reason="tool_use",
            content=[
                {"type": "text", "text": text},
                {"type": "tool_use", "id": call_id, "name": name, "input": inp},
            ],
            usage=Usage(input_tokens=u_in, output_tokens=u_out, cache_read_input_tokens=cr),
            latency_s=1.5,
            cost_usd=c,
        )
        tin, tout = tin + u_in, tout + u_out
        total_cost += c or 0.0
        yield ToolCall(t=t(), step=step, call_id=call_id, name=name, input=inp, block_index=2)
        failed = step % 11 == 7
        out = "" if last else _output(rng, spec.output_bytes)
        if spec.chunks and out:
            for piece in out.splitlines(keepends=True):
                yield ToolOutputChunk(
                    t=clock[0], step=step, call_id=call_id, stream="stdout", text=piece
                )
        if spec.metrics_every and step % spec.metrics_every == 0 and not last:
            for name_, val in (
                ("train_loss", 2.3 * 0.85**epoch + rng.random() * 0.05),
                ("val_accuracy", 0.6 + 0.35 * (1 - 0.8**epoch)),
            ):
                yield Metric(
                    t=t(), name=name_, value=round(val, 5), step=step, x=epoch, source="sandbox"
                )
            epoch += 1
        if spec.trainer and not last:
            yield from _trainer_metrics(spec, rng, step, t)
        if last:
            result: Any = {"message": "predictions received", "count": 12000}
        else:
            result = {
                "result": out,
                "error": "NameError: name 'loader' is not defined" if failed else None,
            }
        yield ToolResult(
            t=t(),
            step=step,
            call_id=call_id,
            name=name,
            output=result,
            error="NameError: name 'loader' is not defined" if failed else None,
            duration_s=round(spec.dt * 0.8, 3),
        )
    if spec.passed is not None:
        yield _grade(spec, t())
    yield RunEnd(
        t=t(),
        status=spec.status,  # type: ignore[arg-type]
        totals=Totals(
            steps=spec.steps,
            input_tokens=tin,
            output_tokens=tout,
            cost_usd=round(total_cost, 6) if spec.cost else None,
            wall_s=round(clock[0] - T0, 3),
        ),
    )


def _trainer_metrics(
    spec: SyntheticSpec, rng: random.Random, step: int, t: Callable[[], float]
) -> Iterator[Metric]:
    now = t()
    yield Metric(
        t=now,
        name="system/cpu_percent",
        value=round(40 + 50 * rng.random(), 1),
        step=step,
        source="system",
    )
    yield Metric(
        t=now,
        name="system/rss_mb",
        value=round(800 + 25 * step + rng.random(), 1),
        step=step,
        source="system",
    )
    if step == 2:
        for fold in (1, 2):
            for epoch in range(8):
                decay = 0.8**epoch
                for name, value in (
                    ("train_loss", 1.6 * decay + 0.3 + 0.02 * fold),
                    ("val_acc", 0.82 - 0.4 * decay + 0.01 * fold),
                    ("lr", 0.001),
                ):
                    yield Metric(
                        t=now,
                        name=f"mlp/fold{fold}/{name}",
                        value=round(value, 5),
                        step=step,
                        x=epoch,
                        source="trainer",
                    )
    if step == 3:
        for name, value in (
            ("temperature", 1.37),
            ("val_ece_before_scaling", 0.112),
            ("val_ece_after_scaling", 0.031),
        ):
            yield Metric(t=now, name=name, value=value, step=step, source="sandbox")


def _grade(spec: SyntheticSpec, t: float) -> Grade:
    if not spec.calibration:
        f1, p, r = (0.71, 0.66, 0.77) if spec.passed else (0.52, 0.47, 0.58)
        return Grade(
            t=t,
            passed=bool(spec.passed),
            step=spec.steps,
            metrics={"f1": f1, "precision": p, "recall": r},
            criteria="F1 >= 0.65 AND (precision >= 0.55 OR recall >= 0.55)",
            checks=[
                Check(name="f1", text="F1 >= 0.65", value=f1, threshold=0.65, met=f1 >= 0.65),
                Check(
                    name="precision",
                    text="precision >= 0.55",
                    value=p,
                    threshold=0.55,
                    met=p >= 0.55,
                ),
                Check(name="recall", text="recall >= 0.55", value=r, threshold=0.55, met=r >= 0.55),
            ],
        )
    classes = ["search", "read", "write", "run", "answer"]
    cm = [[50, 3, 2, 1, 4], [4, 41, 6, 2, 1], [2, 7, 38, 5, 3], [1, 2, 4, 47, 2], [5, 1, 3, 2, 44]]
    rel = []
    for i, (acc, conf, n) in enumerate(
        [
            (0.18, 0.15, 4),
            (0.31, 0.35, 9),
            (0.52, 0.55, 21),
            (0.58, 0.65, 38),
            (0.69, 0.75, 61),
            (0.80, 0.85, 70),
            (0.93, 0.95, 67),
        ]
    ):
        lo = 0.3 + i * 0.1 if i else 0.0
        rel.append(
            {
                "bin_lo": round(lo, 2),
                "bin_hi": round(0.4 + i * 0.1, 2),
                "confidence": conf,
                "accuracy": acc,
                "count": n,
            }
        )
    return Grade(
        t=t,
        passed=bool(spec.passed),
        step=spec.steps,
        metrics={"accuracy": 0.814, "macro_f1": 0.806, "ece": 0.043},
        criteria="accuracy >= 0.80 AND ece <= 0.05",
        checks=[
            Check(name="accuracy", text="accuracy >= 0.80", value=0.814, threshold=0.8, met=True),
            Check(name="ece", text="ece <= 0.05", value=0.043, threshold=0.05, met=True),
        ],
        details={"confusion_matrix": cm, "reliability": rel, "class_names": classes},
    )


def write_synthetic_log(path: Path, spec: SyntheticSpec) -> Path:
    """Write ``spec``'s events to ``path`` with the engine's bus and log writer."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with LogWriter(path) as writer:
        bus = EventBus([writer])
        for ev in synthetic_events(spec):
            bus.emit(ev)
    return path


# -- a fake live run ---------------------------------------------------------------


@dataclass
class FakeRunConfig:
    """What a ``FakeRun`` plays: like ``agentdeck.engine.run.RunConfig`` plus knobs for tests."""

    log_dir: Path
    task: str = "noisy-labels"
    agent: str = "scripted"
    model: str | None = None
    max_steps: int = 5
    steps: int = 3
    #: Lines each tool prints (streamed as output chunks).
    output_lines: int = 5
    #: Bytes the tool at ``flood_step`` prints as fast as it can.
    flood_bytes: int = 0
    flood_step: int = 1
    #: Bytes per output chunk of the flood (a print loop flushing each line: ~100).
    flood_chunk: int = 4096
    #: Block in the tool at this step until ``release()`` or ``stop()`` (before any flood).
    hold_step: int | None = None
    #: Seconds to pause between events (0: as fast as possible).
    pause: float = 0.0
    passed: bool = True
    run_id: str = "fake-run"


class FakeRun:
    """Plays a scripted run on a thread; the same surface as ``agentdeck.engine.run.RunHandle``."""

    def __init__(
        self, config: FakeRunConfig, sinks: Sequence[Callable[[Event], None]] = ()
    ) -> None:
        self.config = config
        self.run_dir = RunDir.create(config.log_dir, config.run_id)
        self._writer = LogWriter(self.run_dir.events)
        self.bus = EventBus([self._writer, *sinks])
        self.result: RunResult | None = None
        self._stop = threading.Event()
        self._release = threading.Event()
        self.in_tool = threading.Event()
        self._done = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fake-run", daemon=True)

    def start(self) -> FakeRun:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def release(self) -> None:
        self._release.set()

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def wait_started(self, timeout: float | None = None) -> bool:
        return True

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def _pause(self) -> None:
        if self.config.pause:
            self._stop.wait(self.config.pause)

    def _run(self) -> None:
        cfg = self.config
        emit = self.bus.emit
        status: RunStatus = "completed"
        grade: Grade | None = None
        try:
            emit(
                RunStart(
                    run_id=cfg.run_id,
                    task=cfg.task,
                    agent=cfg.agent,
                    model=cfg.model,
                    max_steps=cfg.max_steps,
                    prompt=PROMPT,
                    tools=TOOLS,
                )
            )
            for step in range(1, cfg.steps + 1):
                if self._stop.is_set():
                    status = "interrupted"
                    break
                emit(StepStart(step=step))
                self._pause()
                last = step == cfg.steps
                text = f"Step {step}: {'submitting' if last else 'training a model'}."
                for word in text.split(" "):
                    emit(ModelDelta(step=step, block_index=0, text=word + " "))
                call_id = f"call_{step}"
                name = "submit_predictions" if last else "python_expression"
                inp = (
                    {"predictions_file": "predictions.npy"}
                    if last
                    else {"code": f"for epoch in range(3):\n    train(epoch)  # step {step}"}
                )
                emit(
                    ModelResponse(
                        step=step,
                        message_id=f"msg_{step}",
                        stop_reason="tool_use",
                        content=[
                            {"type": "text", "text": text},
                            {"type": "tool_use", "id": call_id, "name": name, "input": inp},
                        ],
                        usage=Usage(input_tokens=1000 * step, output_tokens=50),
                        cost_usd=0.001 * step,
                    )
                )
                emit(ToolCall(step=step, call_id=call_id, name=name, input=inp, block_index=2))
                self.in_tool.set()
                error = self._tool(step, call_id)
                self.in_tool.clear()
                emit(
                    ToolResult(
                        step=step,
                        call_id=call_id,
                        name=name,
                        output={"result": f"step {step} done", "error": error},
                        error=error,
                        duration_s=0.01,
                    )
                )
                if error == "interrupted":
                    status = "interrupted"
                    break
                if not last:
                    emit(Metric(name="train_loss", value=1.0 / step, step=step, x=step))
                else:
                    grade = Grade(
                        passed=cfg.passed,
                        metrics={"f1": 0.7 if cfg.passed else 0.4},
                        criteria="f1 >= 0.65",
                        checks=[
                            Check(
                                name="f1",
                                text="f1 >= 0.65",
                                value=0.7 if cfg.passed else 0.4,
                                threshold=0.65,
                                met=cfg.passed,
                            )
                        ],
                    )
                    emit(grade)
            else:
                status = "completed" if grade is not None else "max_steps_reached"
        except Exception as e:  # pragma: no cover - a bug in the fake itself
            status = "error"
            emit(RunEnd(status="error", message=str(e)))
            raise
        emit(RunEnd(status=status, totals=Totals(steps=step)))
        self._writer.close()
        self.result = RunResult(status, self.run_dir, grade)
        self._done.set()

    def _tool(self, step: int, call_id: str) -> str | None:
        cfg = self.config
        for i in range(cfg.output_lines):
            self.bus.emit(
                ToolOutputChunk(
                    step=step, call_id=call_id, stream="stdout", text=f"step {step} line {i}\n"
                )
            )
        if cfg.hold_step == step:
            while not self._release.is_set():
                if self._stop.is_set():
                    return "interrupted"
                self.bus.emit(
                    ToolOutputChunk(
                        step=step, call_id=call_id, stream="stderr", text="still training...\n"
                    )
                )
                self._release.wait(0.05)
        if cfg.flood_bytes and step == cfg.flood_step:
            line = ("x" * 99) + "\n"
            block = line * max(1, cfg.flood_chunk // 100)
            sent = 0
            while sent < cfg.flood_bytes and not self._stop.is_set():
                self.bus.emit(
                    ToolOutputChunk(step=step, call_id=call_id, stream="stdout", text=block)
                )
                sent += len(block)
        if self._stop.is_set():
            return "interrupted"
        return None


def start_fake_run(config: FakeRunConfig, sinks: Sequence[Callable[[Event], None]] = ()) -> FakeRun:
    """``agentdeck.engine.run.start_run``'s signature, for a FakeRun."""
    return FakeRun(config, list(sinks)).start()


# -- checked-in fixtures --------------------------------------------------------------

FIXTURE_SPECS: dict[str, SyntheticSpec] = {
    "calib_run.jsonl": SyntheticSpec(
        steps=12,
        seed=1,
        run_id="calib-run",
        task="action-policy",
        calibration=True,
        metrics_every=2,
        output_bytes=600,
    ),
    "run_a.jsonl": SyntheticSpec(steps=10, seed=2, run_id="run-a", output_bytes=400),
    "policy_run.jsonl": SyntheticSpec(
        steps=6,
        seed=4,
        run_id="20231114-221320-action-policy-5f3a",
        task="action-policy",
        calibration=True,
        trainer=True,
        metrics_every=0,
        output_bytes=300,
    ),
    "run_b.jsonl": SyntheticSpec(
        steps=10,
        seed=2,
        run_id="run-b",
        output_bytes=400,
        diverge_at=4,
        passed=False,
        model="claude-haiku-4-5",
    ),
    "long_output.jsonl": SyntheticSpec(
        steps=3, seed=3, run_id="long-output", output_bytes=6000, chunks=True, metrics_every=0
    ),
}


def make_fixtures(directory: Path) -> list[Path]:
    """(Re)write the deterministic JSONL fixtures the TUI tests use."""
    out = []
    for name, spec in FIXTURE_SPECS.items():
        path = directory / name
        if path.exists():
            path.unlink()
        out.append(write_synthetic_log(path, spec))
    return out


async def until(pilot: Any, cond: Callable[[], bool], timeout: float = 10.0) -> None:
    """Let the app run until ``cond()`` holds (tests); raises TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        await pilot.pause(0.02)


async def eventually(pilot: Any, cond: Callable[[], bool], timeout: float = 5.0) -> None:
    """``until`` without the TimeoutError: let the app run until ``cond()`` holds or
    ``timeout`` has passed, for a test whose own assertions then say what was wrong."""
    with contextlib.suppress(TimeoutError):
        await until(pilot, cond, timeout)


async def settled(pilot: Any, timeout: float = 10.0) -> None:
    """Let the app finish what the last key presses started (tests, before a snapshot):
    no worker running, no step detail waiting on its timer, no animation scheduled, and
    the messages this queued processed. In place of a pause that hopes it was long enough.
    """
    app = pilot.app
    await pilot.pause()
    await until(
        pilot,
        lambda: not app.workers and getattr(app.screen, "_detail_timer", None) is None,
        timeout=timeout,
    )
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()
