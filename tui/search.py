"""``/`` search over every step of a log, and ``n`` / ``N`` between the matches.

``SearchController`` scans the steps on a worker thread (the host's, so the
screen's workers are the search's), starting at the selected step and wrapping
around, and posts ``Progress`` messages to the host: at the first match, every
quarter second, and when done. The host handles them on the UI thread with
``update`` and redraws its widgets; the controller keeps the query and the
sorted matching step numbers.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass
from functools import partial

from textual.dom import DOMNode
from textual.message import Message
from textual.worker import get_current_worker

from agentdeck.engine.events import EventError
from agentdeck.engine.log import RunLog
from agentdeck.tui.stepdata import read_step, step_search_text
from agentdeck.tui.stepindex import StepIndex

#: Seconds between progress messages while a search runs.
PROGRESS_EVERY_S = 0.25


class SearchController:
    @dataclass
    class Progress(Message):
        query: str
        matches: list[int]
        scanned: int
        total: int
        done: bool

    def __init__(self, host: DOMNode) -> None:
        self._host = host
        #: The query of the latest search ("" before the first).
        self.query = ""
        #: Step numbers that match it, sorted (grows while the search runs).
        self.matches: list[int] = []
        self.done = True
        self._first_hit_pending = False

    def start(self, log: RunLog, index: StepIndex, query: str, start: int) -> None:
        """Search every step for ``query`` (case-insensitive), from the row ``start`` on;
        an earlier search still running is cancelled."""
        self.query = query
        self.matches = []
        self.done = False
        self._first_hit_pending = True
        self._host.run_worker(
            partial(self._scan, log, index, query, start, index.count),
            thread=True,
            exclusive=True,
            group="search",
            exit_on_error=False,
        )

    def _scan(self, log: RunLog, index: StepIndex, query: str, start: int, count: int) -> None:
        """On the worker thread: read each step (no output chunks) and match its text."""
        worker = get_current_worker()
        needle = query.lower()
        found: list[int] = []
        order = list(range(start, count)) + list(range(0, start))
        last_post = time.monotonic()
        for k, i in enumerate(order):
            if worker.is_cancelled:
                return
            step = index.step_at(i)
            try:
                rec = read_step(log, step)
            except (EventError, KeyError, IndexError):
                continue
            if needle in step_search_text(rec).lower():
                found.append(step)
                if len(found) == 1:
                    self._host.post_message(self.Progress(query, [step], k + 1, count, False))
            if time.monotonic() - last_post > PROGRESS_EVERY_S:
                last_post = time.monotonic()
                self._host.post_message(self.Progress(query, sorted(found), k + 1, count, False))
        self._host.post_message(self.Progress(query, sorted(found), count, count, True))

    def update(self, msg: Progress) -> bool:
        """Take a progress message (UI thread); False when it is about an older query."""
        if msg.query != self.query:
            return False
        self.matches = msg.matches
        if msg.done:
            self.done = True
        return True

    def take_first_hit(self) -> bool:
        """True once per search: when its first match has arrived."""
        if self.matches and self._first_hit_pending:
            self._first_hit_pending = False
            return True
        return False

    def target(self, current: int | None, direction: int) -> int | None:
        """The next (``direction`` > 0) or previous matching step from step ``current``,
        wrapping around; None when nothing matches."""
        if not self.matches:
            return None
        cur = current or 0
        if direction > 0:
            i = bisect.bisect_right(self.matches, cur)
        else:
            i = bisect.bisect_left(self.matches, cur) - 1
        return self.matches[i % len(self.matches)]
