"""The batch driver: schedule the planned runs on an executor, follow them, summarise.

``BatchRunner(batch_dir, manifest, executor).run()`` resumes what is unfinished (see
``manifest``), starts runs while the executor has room, follows each running run's
log (``progress``), records every start and end in the journal, reruns runs that
ended ``error`` up to ``retry`` times, and stops the whole batch on ``stop()`` (Ctrl-C:
every run is interrupted and closes its log), ``kill()`` (a second Ctrl-C), the
batch's ``time_limit_s`` or its ``max_cost_usd``. At the end it writes
``summary.json`` and ``summary.csv`` from the logs (``summary.collect``) and returns
the summary with the batch's exit code.

``stop`` and ``kill`` only set flags (safe from a signal handler or another thread);
the loop acts on them within a tenth of a second.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agentdeck.engine.batch.events import (
    BatchEnded,
    BatchEvent,
    BatchNote,
    BatchStarted,
    RunEnded,
    RunStarted,
)
from agentdeck.engine.batch.executors import Executor, WorkerResult
from agentdeck.engine.batch.manifest import BatchDir, Manifest, RunSpec
from agentdeck.engine.batch.progress import (
    QUEUED,
    RUNNING,
    STARTING,
    LogTail,
    RunProgress,
    config_rates,
    progress_counts,
)
from agentdeck.engine.batch.summary import (
    EVALUATED,
    RunOutcome,
    collect,
    outcome_from_log,
    summarize,
    write_summary,
)
from agentdeck.engine.log import EVENTS_FILE

BatchSink = Callable[[BatchEvent], Any]
#: How long a stopped batch waits for its runs to close their logs before killing them.
STOP_GRACE_S = 90.0


@dataclass
class BatchOptions:
    retry: int = 0
    max_cost_usd: float | None = None
    time_limit_s: float | None = None
    #: Seconds between reads of the running runs' logs.
    follow_s: float = 0.5


class BatchRunner:
    def __init__(
        self,
        batch_dir: BatchDir,
        manifest: Manifest,
        executor: Executor,
        *,
        options: BatchOptions | None = None,
        sinks: Sequence[BatchSink] = (),
        resumed: bool = False,
        on_tick: Callable[[BatchRunner], Any] | None = None,
    ) -> None:
        self.batch_dir = batch_dir
        self.manifest = manifest
        self.executor = executor
        self.options = options or BatchOptions()
        self.sinks = list(sinks)
        self.resumed = resumed
        self.on_tick = on_tick
        self.specs = {s.run_id: s for s in manifest.runs}
        self.progress: dict[str, RunProgress] = {
            s.run_id: RunProgress(s.run_id, s.config, s.epoch, s.seed) for s in manifest.runs
        }
        self.outcomes: dict[str, RunOutcome] = {}
        self.queue: deque[RunSpec] = deque()
        self._tails: dict[str, LogTail] = {}
        self._errors: dict[str, int] = {}
        #: What attempts that were run again had cost (it counts against max_cost_usd).
        self._spent_aside: float = 0.0
        self._stop = threading.Event()
        self._kill = threading.Event()
        self.interrupted = False
        self.stopped: str | None = None
        self.t0 = time.time()
        self.t_end: float | None = None
        self.done_now = 0
        self.summary: dict[str, Any] | None = None
        self.exit_code: int | None = None
        self._thread: threading.Thread | None = None
        self._stop_sent_at: float | None = None
        self.error: BaseException | None = None

    # -- control (any thread) ------------------------------------------------------------

    def stop(self, reason: str = "interrupted (Ctrl-C)", *, interrupted: bool = True) -> None:
        """Stop the batch: no new runs; every running run is interrupted and closes its log."""
        if self._stop.is_set():
            return
        self.stopped = reason
        self.interrupted = interrupted
        self._stop.set()

    def kill(self) -> None:
        """Stop at once: kill the running runs' processes (their logs stay unfinished)."""
        if not self._stop.is_set():
            self.stop()
        self._kill.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self) -> BatchRunner:
        def target() -> None:
            try:
                self.run()
            except BaseException as e:  # noqa: BLE001 - kept for the UI to show
                self.error = e

        self._thread = threading.Thread(target=target, name="agentdeck-batch", daemon=True)
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is None:
            return self.exit_code is not None
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def done(self) -> bool:
        return self.exit_code is not None or self.error is not None

    # -- figures (any thread) ---------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        return progress_counts(self.progress.values())

    def cost_so_far(self) -> float | None:
        total = self._spent_aside
        for rid, p in self.progress.items():
            o = self.outcomes.get(rid)
            c = o.cost_usd if o is not None and p.done else p.cost_usd
            if c is None:
                return None
            total += c
        return total

    def elapsed(self) -> float:
        return (self.t_end or time.time()) - self.t0

    def eta_s(self) -> float | None:
        """Seconds until the runs of this invocation are done, at the pace so far."""
        c = self.counts()
        left = c["queued"] + c["running"]
        if self.done_now == 0 or left == 0:
            return None if left else 0.0
        return self.elapsed() / self.done_now * left

    def config_rates(self) -> dict[str, tuple[int, int]]:
        """config id -> (passed, evaluated) so far."""
        return config_rates((c.id for c in self.manifest.configs), self.progress.values())

    # -- the loop ---------------------------------------------------------------------------

    def _emit(self, ev: BatchEvent) -> None:
        ev.t = time.time()
        for sink in self.sinks:
            sink(ev)

    def _note(self, message: str, level: str = "info") -> None:
        self._emit(BatchNote(message=message, level=level))

    def _plan_resume(self) -> None:
        """Keep what finished; queue the rest (moving unfinished attempts aside)."""
        bd = self.batch_dir
        for entry in bd.read_journal():
            if entry.get("kind") == "end" and entry.get("status") == "error":
                rid = str(entry.get("run_id"))
                self._errors[rid] = self._errors.get(rid, 0) + 1
        kept = moved = 0
        outcomes = {o.run_id: o for o in collect(bd, self.manifest)}
        for spec in self.manifest.runs:
            o = outcomes[spec.run_id]
            p = self.progress[spec.run_id]
            keep = o.status in EVALUATED or (
                o.status == "error" and self._errors.get(spec.run_id, 0) > self.options.retry
            )
            if keep:
                self._finish_progress(p, o)
                self.outcomes[spec.run_id] = o
                kept += 1
                continue
            if bd.run_path(spec.run_id).exists():
                dst = bd.move_aside(spec.run_id)
                bd.journal("moved", run_id=spec.run_id, status=o.status, to=str(dst))
                moved += 1
            self.queue.append(spec)
        if self.resumed:
            self._note(
                f"resuming batch {self.manifest.batch_id}: {kept} run(s) kept, "
                f"{len(self.queue)} to run"
                + (f" ({moved} unfinished attempt(s) moved to attempts/)" if moved else "")
            )

    def _finish_progress(self, p: RunProgress, o: RunOutcome) -> None:
        p.state = o.status
        p.passed, p.submitted = o.passed, o.submitted
        p.grade_metrics = dict(o.metrics)
        p.step = o.steps
        p.input_tokens, p.output_tokens = o.input_tokens, o.output_tokens
        p.cache_write_tokens = o.cache_creation_input_tokens
        p.cache_read_tokens = o.cache_read_input_tokens
        p.cost_usd = o.cost_usd
        p.message = o.message
        p.attempt = max(p.attempt, o.attempts)
        path = self.batch_dir.run_path(o.run_id) / EVENTS_FILE
        p.log_path = path if path.is_file() else None

    def run(self) -> dict[str, Any]:
        bd = self.batch_dir
        self.t0 = time.time()
        self._plan_resume()
        bd.journal("batch_start", to_run=len(self.queue), executor=self.executor.name)
        self._emit(
            BatchStarted(
                batch_id=self.manifest.batch_id,
                dir=str(bd.path),
                runs=len(self.manifest.runs),
                to_run=len(self.queue),
                resumed=self.resumed,
                executor=self.executor.describe(),
                configs=[
                    {"config": c.id, "label": self.manifest.label(c.id)}
                    for c in self.manifest.configs
                ],
            )
        )
        try:
            self._loop()
        finally:
            self.executor.close()
        for spec in self.queue:
            self.progress[spec.run_id].state = "not_run"
        self.t_end = time.time()
        outcomes = collect(bd, self.manifest)
        summary = summarize(
            self.manifest,
            outcomes,
            stopped=self.stopped,
            interrupted=self.interrupted,
            wall_s=self.elapsed(),
        )
        write_summary(bd, summary)
        bd.journal("batch_end", stopped=self.stopped, exit_code=summary["exit_code"])
        self.summary = summary
        self.exit_code = int(summary["exit_code"])
        self._emit(BatchEnded(exit_code=self.exit_code, stopped=self.stopped, summary=summary))
        return summary

    def _loop(self) -> None:
        ex = self.executor
        last_follow = 0.0
        while True:
            if self._kill.is_set():
                ex.kill()
            elif self._stop.is_set() and self._stop_sent_at is None:
                self._stop_sent_at = time.monotonic()
                ex.interrupt()
                if self.stopped:
                    self._note(f"stopping: {self.stopped}", "warning")
            elif (
                self._stop_sent_at is not None
                and time.monotonic() - self._stop_sent_at > STOP_GRACE_S
            ):
                self._note("the runs did not stop in time: killing them", "warning")
                self._kill.set()
            self._check_limits()
            while self.queue and not self._stop.is_set() and ex.can_start(self.queue[0]):
                self._submit(self.queue.popleft())
            for rid, node in ex.started():
                self._started(rid, node)
            for res in ex.poll(0.1):
                self._ended(res)
            now = time.monotonic()
            if now - last_follow >= self.options.follow_s:
                last_follow = now
                self._follow()
            if self.on_tick is not None:
                self.on_tick(self)
            if ex.running() == 0 and (not self.queue or self._stop.is_set()):
                return

    def _check_limits(self) -> None:
        if self._stop.is_set():
            return
        o = self.options
        if o.time_limit_s is not None and self.elapsed() >= o.time_limit_s:
            self.stop(
                f"the batch time limit of {o.time_limit_s:g} s was reached", interrupted=False
            )
            return
        if o.max_cost_usd is not None:
            cost = self.cost_so_far()
            if cost is not None and cost >= o.max_cost_usd:
                self.stop(
                    f"the batch cost limit of ${o.max_cost_usd:.2f} was reached "
                    f"(${cost:.4f} spent)",
                    interrupted=False,
                )

    def _submit(self, spec: RunSpec) -> None:
        p = self.progress[spec.run_id]
        attempt = self.batch_dir.attempt_count(spec.run_id) + 1
        p.reset()
        p.attempt = attempt
        p.state = QUEUED
        self.batch_dir.journal("submit", run_id=spec.run_id, attempt=attempt)
        self.executor.submit(spec, attempt)

    def _started(self, run_id: str, node: str | None) -> None:
        p = self.progress[run_id]
        spec = self.specs[run_id]
        p.state, p.node, p.started_at = STARTING, node, time.time()
        p.log_path = self.batch_dir.run_path(run_id) / EVENTS_FILE
        self._tails[run_id] = LogTail(p.log_path)
        pid = self.executor.pid_of(run_id)
        self.batch_dir.journal("start", run_id=run_id, attempt=p.attempt, node=node, pid=pid)
        self._emit(RunStarted(**self._run_fields(spec, p.attempt), node=node))

    def _run_fields(self, spec: RunSpec, attempt: int) -> dict[str, Any]:
        """What every batch event says of its run (``RunStarted``, ``RunEnded``)."""
        return {
            "run_id": spec.run_id,
            "config": spec.config,
            "label": self.manifest.label(spec.config),
            "epoch": spec.epoch,
            "seed": spec.seed,
            "attempt": attempt,
        }

    def _follow(self) -> None:
        for rid, tail in list(self._tails.items()):
            tail.poll(self.progress[rid])

    def _ended(self, res: WorkerResult) -> None:
        rid = res.run_id
        spec = self.specs[rid]
        p = self.progress[rid]
        if p.state == QUEUED:  # a Ray task that ended before it said it began
            for r, node in self.executor.started():
                self._started(r, node)
        tail = self._tails.pop(rid, None)
        if tail is not None:
            tail.poll(p)
        bd = self.batch_dir
        path = bd.run_path(rid) / EVENTS_FILE
        record = res.record or {}
        if path.is_file():
            o = outcome_from_log(spec, path, bd.path)
        else:
            o = RunOutcome(run_id=rid, config=spec.config, epoch=spec.epoch, seed=spec.seed)
            o.status = "incomplete"
        if o.status == "incomplete":
            o.status = res.status or ("interrupted" if self._kill.is_set() else "error")
            o.message = str(record.get("message") or res.message or "the run left no log")
        if self._kill.is_set() and o.status == "error" and not path.is_file():
            o.status = "interrupted"
        o.attempts = p.attempt
        bd.journal(
            "end",
            run_id=rid,
            attempt=p.attempt,
            status=o.status,
            message=o.message,
            exit_code=o.exit_code,
            returncode=res.returncode,
            node=res.node,
        )
        retrying = False
        if o.status == "error":
            self._errors[rid] = self._errors.get(rid, 0) + 1
            if self._errors[rid] <= self.options.retry and not self._stop.is_set():
                retrying = True
        if o.status == "not_run":
            p.state = "not_run"
        else:
            self._finish_progress(p, o)
        p.ended_at = time.time()
        self.outcomes[rid] = o
        self._emit(
            RunEnded(
                **self._run_fields(spec, p.attempt),
                status=o.status,
                passed=o.passed,
                submitted=o.submitted,
                metrics=dict(o.metrics),
                steps=o.steps,
                tokens={
                    "input": o.input_tokens,
                    "output": o.output_tokens,
                    "cache_write": o.cache_creation_input_tokens,
                    "cache_read": o.cache_read_input_tokens,
                },
                cost_usd=o.cost_usd,
                wall_s=o.wall_s,
                exit_code=o.exit_code,
                message=o.message,
                log=o.log,
                retrying=retrying,
            )
        )
        if retrying:
            self._spent_aside += o.cost_usd or 0.0
            moved = bd.move_aside(rid)
            if moved is not None:
                bd.journal("moved", run_id=rid, status="error", to=str(moved))
            p.reset()
            p.attempt = bd.attempt_count(rid)
            self.queue.append(spec)
        elif o.status != "not_run":
            self.done_now += 1


__all__ = ["RUNNING", "STARTING", "STOP_GRACE_S", "BatchOptions", "BatchRunner", "BatchSink"]
