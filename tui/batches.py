"""Batches in a log directory, as rows of the runs list (``agentdeck runs``).

A batch is a folder with a ``manifest.json`` (``agentdeck batch``); its runs are
one level further down, so the runs list shows the batch as one row (its tasks,
configurations, progress, tokens, cost and pass count) that opens the batch screen.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from agentdeck.tui.runs import RunInfo


def find_batches(log_dir: Path) -> list[Path]:
    """Batch directories directly in ``log_dir``."""
    from agentdeck.engine.batch.manifest import BatchDir

    try:
        return [p for p in sorted(log_dir.iterdir()) if p.is_dir() and BatchDir.is_batch(p)]
    except OSError:
        return []


def read_batch_info(path: Path) -> RunInfo:
    """One row for a batch: from its summary when it has ended, else from its logs."""
    from agentdeck.engine.batch.manifest import BatchDir
    from agentdeck.engine.batch.summary import collect, summarize
    from agentdeck.engine.errors import UserError

    info = RunInfo(path=path, name=path.name, batch=True, status="batch")
    bd = BatchDir(path)
    try:
        manifest = bd.read_manifest()
    except UserError as e:
        info.problem, info.status = str(e), "unreadable"
        return info
    journal = bd.read_journal()
    ended = bool(journal) and journal[-1].get("kind") == "batch_end"
    summary = None
    summary_path = path / "summary.json"
    if ended and summary_path.is_file():
        try:
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            summary = None
    if summary is None:
        summary = summarize(manifest, collect(bd, manifest))
    tasks = list(dict.fromkeys(c.task for c in manifest.configs))
    info.task = ", ".join(tasks)
    n_cfg = len(manifest.configs)
    info.agent = f"{n_cfg} config{'s' if n_cfg != 1 else ''} x {manifest.epochs} epochs"
    done, total = summary["finished"], summary["runs"]
    if ended:
        info.status = f"batch: {done}/{total} done" + (
            " (stopped)" if summary.get("stopped") else ""
        )
    else:
        info.status = f"batch: {done}/{total} done, unfinished"
    info.steps = total
    for c in summary["configs"]:
        info.input_tokens += c["tokens"]["input"]
        info.output_tokens += c["tokens"]["output"]
    info.cost_usd = summary.get("cost_usd")
    info.grade_note = f"{summary['passed']}/{summary['evaluated']} passed"
    if summary["evaluated"]:
        info.passed = summary["passed"] == summary["evaluated"]
    with contextlib.suppress(OSError):
        info.started = (path / "manifest.json").stat().st_mtime
    info.seal = info.seal_label = "-"
    return info


__all__ = ["find_batches", "read_batch_info"]
