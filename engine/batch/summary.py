"""What a batch gave: each run's outcome, read from its log, and the summary.

``collect(batch_dir, manifest)`` reads every planned run's log (and, for runs that
left no complete log, the journal: a worker that died, a task that could not be set
up) into ``RunOutcome`` records; ``summarize`` turns them into the summary written as
``summary.json`` and ``summary.csv``: per configuration, the runs, how many passed,
the pass rate with its 95% Wilson interval, unbiased pass@k for k = 1..epochs, the
mean and standard error of every numeric grade metric, steps, tokens by kind, cost,
wall time and the infrastructure errors.

The pass rate counts the runs that were *evaluated*: those that ended ``completed``,
``max_steps_reached`` or ``limit_exceeded`` (a run that never submitted failed).
Runs that ended ``error`` (infrastructure), ``interrupted`` or never ran are counted
on their own and left out of the rates, so an outage does not read as a bad agent.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from pathlib import Path
from typing import Any

import msgspec

from agentdeck.engine.batch.manifest import (
    SUMMARY_CSV,
    SUMMARY_JSON,
    BatchDir,
    Manifest,
    RunSpec,
)
from agentdeck.engine.batch.stats import mean_se, pass_at_k, wilson
from agentdeck.engine.errors import EXIT_FAILED, EXIT_INFRA, EXIT_INTERRUPTED, EXIT_PASSED
from agentdeck.engine.log import EVENTS_FILE, LogError, RunLog

SUMMARY_SCHEMA = "agentdeck.batch-summary/1"
#: Statuses of runs that were evaluated (their grade counts, submitted or not).
EVALUATED = ("completed", "max_steps_reached", "limit_exceeded")
TOKEN_KINDS = (
    ("input_tokens", "input"),
    ("output_tokens", "output"),
    ("cache_creation_input_tokens", "cache_write"),
    ("cache_read_input_tokens", "cache_read"),
)


class RunOutcome(msgspec.Struct, kw_only=True):
    run_id: str
    config: str
    epoch: int
    seed: int
    #: A run_end status, or "not_run" (never started) / "incomplete" (a log without an end).
    status: str = "not_run"
    passed: bool | None = None
    submitted: bool | None = None
    metrics: dict[str, float] = msgspec.field(default_factory=dict)
    steps: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cost_usd: float | None = 0.0
    wall_s: float = 0.0
    #: Attempts made (earlier ones are in attempts/).
    attempts: int = 0
    message: str | None = None
    #: The log, relative to the batch directory (None: no log).
    log: str | None = None
    #: The seed the grade revealed (``-T seed`` is hidden from the agent until then).
    seed_revealed: int | None = None

    @property
    def evaluated(self) -> bool:
        return self.status in EVALUATED

    @property
    def finished(self) -> bool:
        return self.status not in ("not_run", "incomplete", "running", "interrupted")

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def exit_code(self) -> int:
        if self.status == "interrupted":
            return EXIT_INTERRUPTED
        if self.status in ("error", "incomplete"):
            return EXIT_INFRA
        return EXIT_PASSED if self.passed else EXIT_FAILED


def numeric_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The scalar numbers of a grade's metrics (booleans, lists and tables left out)."""
    out: dict[str, float] = {}
    for k, v in metrics.items():
        if isinstance(v, bool) or not isinstance(v, int | float):
            continue
        if math.isfinite(v):
            out[k] = float(v)
    return out


def outcome_from_log(spec: RunSpec, path: Path, batch_path: Path) -> RunOutcome:
    """One run's outcome from its log (``status`` "incomplete" when it has no run_end)."""
    out = RunOutcome(run_id=spec.run_id, config=spec.config, epoch=spec.epoch, seed=spec.seed)
    try:
        rel = str(path.relative_to(batch_path))
    except ValueError:
        rel = str(path)
    out.log = rel
    try:
        log = RunLog.open(path)
    except LogError as e:
        out.status, out.message = "incomplete", str(e)
        return out
    try:
        end = log.end
        tot = log.totals()
        out.status = end.status if end is not None else "incomplete"
        if end is not None and end.message:
            out.message = end.message
        out.steps = tot.steps
        out.input_tokens = tot.input_tokens
        out.output_tokens = tot.output_tokens
        out.cache_creation_input_tokens = tot.cache_creation_input_tokens
        out.cache_read_input_tokens = tot.cache_read_input_tokens
        out.cost_usd = tot.cost_usd
        # the run's whole life in its log (sandbox start and shutdown included)
        out.wall_s = tot.wall_s
        if end is not None and log.header is not None:
            out.wall_s = max(out.wall_s, end.t - log.header.t)
        g = log.grade
        if g is not None:
            out.passed, out.submitted = g.passed, g.submitted
            out.metrics = numeric_metrics(g.metrics) if g.submitted else {}
            revealed = g.details.get("revealed")
            if isinstance(revealed, dict) and isinstance(revealed.get("seed"), int):
                out.seed_revealed = revealed["seed"]
        if end is None:
            out.passed = None
    finally:
        log.close()
    return out


def collect(batch_dir: BatchDir, manifest: Manifest) -> list[RunOutcome]:
    """Every planned run's outcome: its log first, the journal where no log says more."""
    last_end: dict[str, dict[str, Any]] = {}
    started: dict[str, int] = {}
    for entry in batch_dir.read_journal():
        rid = entry.get("run_id")
        if not isinstance(rid, str):
            continue
        if entry.get("kind") == "end":
            last_end[rid] = entry
        elif entry.get("kind") == "start":
            started[rid] = started.get(rid, 0) + 1
    outcomes = []
    for spec in manifest.runs:
        path = batch_dir.run_path(spec.run_id) / EVENTS_FILE
        earlier = batch_dir.attempt_count(spec.run_id)
        if path.is_file():
            o = outcome_from_log(spec, path, batch_dir.path)
            o.attempts = max(earlier + 1, started.get(spec.run_id, 0))
            j = last_end.get(spec.run_id)
            if o.status == "incomplete" and j is not None and j.get("status"):
                # the worker died before the log was closed: the journal says how
                o.status = str(j["status"])
                o.message = j.get("message") or o.message
        else:
            o = RunOutcome(run_id=spec.run_id, config=spec.config, epoch=spec.epoch, seed=spec.seed)
            o.attempts = earlier
            j = last_end.get(spec.run_id)
            if j is not None and j.get("status") not in (None, "not_run"):
                o.status = str(j["status"])
                o.message = j.get("message")
                o.attempts = max(earlier + 1, started.get(spec.run_id, 0))
        outcomes.append(o)
    return outcomes


# -- the summary --------------------------------------------------------------------------


def _stat(values: list[float]) -> dict[str, Any]:
    m, se = mean_se(values)
    return {"mean": m, "se": se, "n": len(values)}


def summarize_config(
    manifest: Manifest, config_id: str, outcomes: list[RunOutcome]
) -> dict[str, Any]:
    c = manifest.config(config_id)
    mine = [o for o in outcomes if o.config == config_id]
    evaluated = [o for o in mine if o.evaluated]
    n = len(evaluated)
    passed = sum(1 for o in evaluated if o.passed)
    ci = wilson(passed, n)
    metric_names: list[str] = []
    for o in evaluated:
        for k in o.metrics:
            if k not in metric_names:
                metric_names.append(k)
    ran = [o for o in mine if o.status not in ("not_run",)]
    costs = [o.cost_usd for o in ran]
    return {
        "config": c.id,
        "label": manifest.label(c.id),
        "task": c.task,
        "agent": c.agent,
        "model": c.model,
        "params": dict(c.params),
        "runs": len(mine),
        "evaluated": n,
        "passed": passed,
        "failed": n - passed,
        "not_submitted": sum(1 for o in evaluated if not o.submitted),
        "errors": sum(1 for o in mine if o.status in ("error", "incomplete")),
        "interrupted": sum(1 for o in mine if o.status == "interrupted"),
        "not_run": sum(1 for o in mine if o.status == "not_run"),
        "pass_rate": passed / n if n else None,
        "pass_rate_ci95": list(ci) if ci is not None else None,
        "pass_at_k": {
            str(k): pass_at_k(n, passed, k) for k in range(1, max(1, manifest.epochs) + 1)
        },
        "metrics": {
            k: _stat([o.metrics[k] for o in evaluated if k in o.metrics]) for k in metric_names
        },
        "steps": _stat([float(o.steps) for o in ran]),
        "tokens": {label: sum(int(getattr(o, attr)) for o in ran) for attr, label in TOKEN_KINDS},
        "cost_usd": None if any(x is None for x in costs) else sum(x or 0.0 for x in costs),
        "wall_s": {**_stat([o.wall_s for o in ran]), "total": sum(o.wall_s for o in ran)},
    }


def batch_exit_code(outcomes: list[RunOutcome], *, interrupted: bool = False) -> int:
    """0 every run was graded (whatever the grades); 1 a run was not (nothing submitted,
    a limit, never ran); 3 an infrastructure error; 130 stopped with Ctrl-C."""
    if interrupted:
        return EXIT_INTERRUPTED
    if any(o.status in ("error", "incomplete") for o in outcomes):
        return EXIT_INFRA
    if all(o.evaluated and o.submitted for o in outcomes):
        return EXIT_PASSED
    return EXIT_FAILED


def summarize(
    manifest: Manifest,
    outcomes: list[RunOutcome],
    *,
    stopped: str | None = None,
    interrupted: bool = False,
    wall_s: float | None = None,
) -> dict[str, Any]:
    costs = [o.cost_usd for o in outcomes if o.status != "not_run"]
    return {
        "schema": SUMMARY_SCHEMA,
        "batch_id": manifest.batch_id,
        "created": manifest.created,
        "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "source": manifest.source,
        "epochs": manifest.epochs,
        "seed_base": manifest.seed_base,
        "seeds": "given (--seed-base)" if manifest.seed_given else "drawn at planning",
        "runs": len(outcomes),
        "finished": sum(1 for o in outcomes if o.finished),
        "evaluated": sum(1 for o in outcomes if o.evaluated),
        "passed": sum(1 for o in outcomes if o.evaluated and o.passed),
        "errors": sum(1 for o in outcomes if o.status in ("error", "incomplete")),
        "interrupted": sum(1 for o in outcomes if o.status == "interrupted"),
        "not_run": sum(1 for o in outcomes if o.status == "not_run"),
        "cost_usd": None if any(x is None for x in costs) else sum(x or 0.0 for x in costs),
        "wall_s": wall_s,
        "stopped": stopped,
        "exit_code": batch_exit_code(outcomes, interrupted=interrupted),
        "configs": [summarize_config(manifest, c.id, outcomes) for c in manifest.configs],
        "run_outcomes": [msgspec.to_builtins(o) for o in outcomes],
    }


def csv_text(summary: dict[str, Any]) -> str:
    """One row a configuration: counts, rate and interval, pass@k, metrics, usage."""
    configs = summary["configs"]
    ks = sorted({int(k) for c in configs for k in c["pass_at_k"]})
    metrics: list[str] = []
    for c in configs:
        for m in c["metrics"]:
            if m not in metrics:
                metrics.append(m)
    header = [
        "config",
        "label",
        "task",
        "agent",
        "model",
        "params",
        "runs",
        "evaluated",
        "passed",
        "pass_rate",
        "ci95_low",
        "ci95_high",
        *[f"pass@{k}" for k in ks],
        *[f"{m}_{s}" for m in metrics for s in ("mean", "se")],
        "steps_mean",
        *[f"{label}_tokens" for _, label in TOKEN_KINDS],
        "cost_usd",
        "wall_s_mean",
        "wall_s_total",
        "errors",
        "interrupted",
        "not_run",
    ]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for c in configs:
        ci = c["pass_rate_ci95"] or [None, None]
        row: list[Any] = [
            c["config"],
            c["label"],
            c["task"],
            c["agent"],
            c["model"] or "",
            " ".join(f"{k}={v}" for k, v in c["params"].items()),
            c["runs"],
            c["evaluated"],
            c["passed"],
            c["pass_rate"],
            ci[0],
            ci[1],
            *[c["pass_at_k"].get(str(k)) for k in ks],
        ]
        for m in metrics:
            st = c["metrics"].get(m) or {}
            row += [st.get("mean"), st.get("se")]
        row += [
            c["steps"]["mean"],
            *[c["tokens"][label] for _, label in TOKEN_KINDS],
            c["cost_usd"],
            c["wall_s"]["mean"],
            c["wall_s"]["total"],
            c["errors"],
            c["interrupted"],
            c["not_run"],
        ]
        w.writerow(["" if v is None else v for v in row])
    return buf.getvalue()


def write_summary(batch_dir: BatchDir, summary: dict[str, Any]) -> tuple[Path, Path]:
    js = batch_dir.path / SUMMARY_JSON
    cs = batch_dir.path / SUMMARY_CSV
    for path, data in (
        (js, msgspec.json.format(msgspec.json.encode(summary), indent=2) + b"\n"),
        (cs, csv_text(summary).encode("utf-8")),
    ):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return js, cs


def report(batch_path: Path) -> dict[str, Any]:
    """The summary of a batch directory from its manifest and logs alone."""
    bd = BatchDir(batch_path)
    manifest = bd.read_manifest()
    outcomes = collect(bd, manifest)
    stopped, interrupted = None, False
    for entry in bd.read_journal():
        if entry.get("kind") == "batch_end":
            stopped = entry.get("stopped")
            interrupted = entry.get("exit_code") == EXIT_INTERRUPTED
    return summarize(manifest, outcomes, stopped=stopped, interrupted=interrupted)


__all__ = [
    "EVALUATED",
    "SUMMARY_SCHEMA",
    "RunOutcome",
    "batch_exit_code",
    "collect",
    "csv_text",
    "numeric_metrics",
    "outcome_from_log",
    "report",
    "summarize",
    "summarize_config",
    "write_summary",
]
