"""Run logs: directories, the JSONL writer, the lazy indexed reader, step records and
the seed-format markdown import and export.

- ``rundir``: ``RunDir`` (``<log_dir>/<run_id>/``: ``events.jsonl``, ``artifacts/``,
  ``work/``) and ``new_run_id``;
- ``writer``: ``LogWriter``, a bus sink appending one flushed line per event;
- ``reader``: ``RunLog``, the lazy reader (a byte-offset index built from each line's
  prefix, one step parsed when asked for);
- ``records``: ``StepRecord`` and ``CallRecord``, one step parsed;
- ``markdown``: export to and import from the layout of ``shared/seeds/000_*.txt``.

The event encoding itself is ``agentdeck.engine.events.encode_event``.
"""

from __future__ import annotations

from agentdeck.engine.events import encode_event
from agentdeck.engine.log.errors import LogError
from agentdeck.engine.log.reader import RunLog
from agentdeck.engine.log.records import CallRecord, StepRecord
from agentdeck.engine.log.rundir import EVENTS_FILE, RunDir, new_run_id
from agentdeck.engine.log.writer import LogWriter

__all__ = [
    "EVENTS_FILE",
    "CallRecord",
    "LogError",
    "LogWriter",
    "RunDir",
    "RunLog",
    "StepRecord",
    "encode_event",
    "new_run_id",
]
