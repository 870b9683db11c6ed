"""Many runs: a grid of tasks x agents/models x ``-T`` values x epochs, run headless
or watched live, on local worker processes or Ray, summarised with pass rates,
Wilson intervals, pass@k and metric means.

- ``grid``: the grid, from the command line or a TOML file (``GridSpec``);
- ``manifest``: the batch directory, the manifest of planned runs (``plan``), the
  journal and the lock; re-running the same grid resumes it;
- ``worker``: one run in its own process (``python -m agentdeck.engine.batch.worker``);
- ``executors``: ``LocalExecutor`` (worker processes) and ``RayExecutor`` (Ray tasks);
- ``driver``: ``BatchRunner``, which schedules, follows, retries, stops and summarises;
- ``progress``: each running run's live state, followed from its log;
- ``summary`` and ``stats``: outcomes from the logs, the summary and its statistics;
- ``backoff``: the rate-limit backoff the batch's Claude agents share;
- ``events``: the batch's own events (``--json``).

The batch machinery resolves tasks by name (``agentdeck.engine.registry``); it
imports no task and no UI.
"""

from __future__ import annotations

from pathlib import Path

from agentdeck.engine.batch.driver import BatchOptions, BatchRunner
from agentdeck.engine.batch.executors import Executor, ExecutorError, LocalExecutor, RayExecutor
from agentdeck.engine.batch.grid import (
    BatchSettings,
    ConfigSpec,
    GridError,
    GridSpec,
    RunLimits,
    grid_from_cli,
    read_toml,
)
from agentdeck.engine.batch.manifest import (
    BatchBusy,
    BatchDir,
    Manifest,
    RunSpec,
    check_batch_id,
    default_batch_id,
    open_or_create,
    plan,
)
from agentdeck.engine.batch.summary import RunOutcome, collect, report, summarize


def open_batch(
    grid: GridSpec,
    *,
    log_dir: Path,
    name: str | None = None,
    new: bool = False,
    sandbox: str = "auto",
    command: list[str] | None = None,
) -> tuple[BatchDir, Manifest, bool]:
    """Check and plan ``grid`` and find or create its batch directory under ``log_dir``.

    Returns (batch directory, manifest, resumed). The directory is not locked yet.
    Raises ``GridError`` (a ``UserError``) for a grid that cannot run.
    """
    batch_id = check_batch_id(name) if name else default_batch_id(grid, new=new)
    planned = plan(grid, batch_id=batch_id, sandbox=sandbox, command=command)
    bd = BatchDir(log_dir / batch_id)
    manifest, resumed = open_or_create(bd, planned)
    return bd, manifest, resumed


__all__ = [
    "BatchBusy",
    "BatchDir",
    "BatchOptions",
    "BatchRunner",
    "BatchSettings",
    "ConfigSpec",
    "Executor",
    "ExecutorError",
    "GridError",
    "GridSpec",
    "LocalExecutor",
    "Manifest",
    "RayExecutor",
    "RunLimits",
    "RunOutcome",
    "RunSpec",
    "collect",
    "grid_from_cli",
    "open_batch",
    "read_toml",
    "report",
    "summarize",
]
