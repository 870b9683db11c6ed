"""Where the run screen's data comes from: a finished log, a log being written, a live run.

All three are read the same way. The log (``RunLog``) gives random access to
the steps (the steps pane, the detail, search, ``v``), and ``RunState`` is
folded from the log's lines (the status bar, tokens, metrics, grade):

- ``ReplaySource``: a finished log, folded once in a worker; never polled.
- ``FollowSource``: a log another process is writing (``replay --follow``):
  folded once in a worker, then ``RunLog.refresh()`` on a timer (4 Hz) and the
  new lines folded; the newest output chunks in the log go to the Output pane.
- ``LiveSource``: a run this app started: a ``FollowSource`` on the run's own
  ``events.jsonl`` plus the ``LiveBuffer`` for what the log cannot give in
  time: the model's streamed text (``ModelDelta``, never written) and the
  tools' output (``ToolOutputChunk``, written, but faster than the log is
  polled: the Output pane is fed from the buffer and the log's chunk lines are
  skipped). It holds the ``RunHandle``.

Ordering: the bus hands each event to the log writer first (a critical sink)
and the writer flushes it, so whatever the buffer holds is already in the file.
``LiveSource`` drains the buffer *before* it refreshes the log and applies the
drained text after the fold, so the step and the tool call a piece of streamed
text belongs to are always folded first; text of a step or a call the log has
moved past is dropped (the log and its response hold it). Its polls alternate
between the two halves of the work, each at 10 Hz: drain the buffer, then
index and fold the log (a flood of output is indexed in small bites); then
show the drained text. During a flood each half takes tens of milliseconds,
and a key press should wait for one of them, not both.

Sources never touch widgets except through ``OutputSink`` (the Output pane),
and only from the UI thread (``poll``); ``load`` runs on a worker thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, Protocol

from agentdeck.engine.events import EventError, ModelDelta, ToolCall, ToolOutputChunk
from agentdeck.engine.log import RunLog
from agentdeck.tui.live import LiveBuffer, StreamText
from agentdeck.tui.runstate import Changed, RunState

if TYPE_CHECKING:
    from agentdeck.engine.run import RunHandle

SourceKind = Literal["replay", "follow", "live"]

#: Event types folded into RunState from a log (tool outputs are not needed).
STATE_TYPES = frozenset(
    {
        "run_start",
        "step_start",
        "model_response",
        "tool_call",
        "tool_result",
        "metric",
        "grade",
        "warning",
        "error",
        "run_end",
    }
)
#: When following a log, at most this many output chunk lines are parsed per poll.
FOLLOW_CHUNK_LINES = 200


class OutputSink(Protocol):
    """The Output pane as a source feeds it (``tui.widgets.output.ToolOutput``)."""

    call_id: str | None

    def start_call(self, call_id: str, title: str) -> None: ...

    def feed(self, text: str, *, stream: str = "stdout", dropped: int = 0) -> None: ...


class RunSource(Protocol):
    """What the run screen asks of where its run comes from."""

    @property
    def kind(self) -> SourceKind:
        """What the status bar says the screen shows."""
        ...

    @property
    def log(self) -> RunLog | None:
        """The log (None until a live run has written its first line)."""
        ...

    @property
    def growing(self) -> bool:
        """The log may still grow: the screen follows its newest step (``f`` toggles)."""
        ...

    @property
    def poll_interval(self) -> float | None:
        """Seconds between ``poll`` calls; None: nothing to poll."""
        ...

    @property
    def run(self) -> RunHandle | None:
        """The run this app started and controls (stop, join, result), if any."""
        ...

    def replayable(self, state: RunState) -> bool:
        """The run is over as far as the screen is concerned: it can be played back,
        tokens and metrics are shown as of the selected step, the Output tab shows
        the selected step's output, the status bar shows the selected step."""
        ...

    def clock_running(self, state: RunState) -> bool:
        """The run's writer is still running: the step in progress lasts until now,
        not until the log's last event (which, for a tool that prints nothing, is
        the step's start)."""
        ...

    def load(self, cancelled: Callable[[], bool]) -> RunState | None:
        """On a worker thread: the state folded from the log as indexed now (None when
        cancelled). ``poll`` folds from where it stopped."""
        ...

    def poll(self, state: RunState | None, output: OutputSink) -> Changed:
        """On the UI thread: take in what was added since the last call (index the log,
        and unless ``state`` is None, still loading, fold it into ``state``). A call
        may do part of it (see ``LiveSource``); the next ones do the rest."""
        ...


def fold_lines(
    log: RunLog,
    state: RunState,
    start: int,
    end: int,
    *,
    output: OutputSink | None = None,
    chunk_lines: int = 0,
    cancelled: Callable[[], bool] | None = None,
) -> Changed | None:
    """Fold the log's lines ``[start, end)`` into ``state``; None when cancelled.

    Only the lines ``RunState`` needs are parsed (picked by type from the index).
    With ``output``, tool calls start a call in the Output pane and the last
    ``chunk_lines`` output chunk lines are fed to it.
    """
    types = log.line_types(start, end)
    keep: set[int] = set()
    if output is not None and chunk_lines:
        chunks = [i for i, t in enumerate(types) if t == "tool_output_chunk"]
        keep = set(chunks[-chunk_lines:])
    changed = Changed.NONE
    for i, etype in enumerate(types):
        if etype == "tool_output_chunk":
            if i not in keep:
                continue
        elif etype not in STATE_TYPES:
            continue
        if cancelled is not None and cancelled():
            return None
        try:
            ev = log.event_at(start + i)
        except EventError as e:
            log.warnings.append(str(e))
            continue
        if isinstance(ev, ToolOutputChunk):
            if output is not None:
                if output.call_id != ev.call_id:
                    output.start_call(ev.call_id, f"step {ev.step} · output")
                output.feed(ev.text, stream=ev.stream)
            continue
        changed |= state.apply(ev)
        if isinstance(ev, ToolCall) and output is not None:
            output.start_call(ev.call_id, f"step {ev.step} · {ev.name}")
    return changed


class ReplaySource:
    """A finished log: folded once in a worker, never polled."""

    kind: SourceKind = "replay"
    growing = False
    poll_interval: float | None = None

    def __init__(self, log: RunLog) -> None:
        self._log = log

    @property
    def log(self) -> RunLog:
        return self._log

    @property
    def run(self) -> RunHandle | None:
        return None

    def replayable(self, state: RunState) -> bool:
        return True

    def clock_running(self, state: RunState) -> bool:
        return False

    def load(self, cancelled: Callable[[], bool]) -> RunState | None:
        state = RunState()
        if fold_lines(self._log, state, 0, len(self._log), cancelled=cancelled) is None:
            return None
        return state

    def poll(self, state: RunState | None, output: OutputSink) -> Changed:
        return Changed.NONE


class FollowSource:
    """A log another process is writing: folded once, then refreshed and folded on a timer."""

    kind: SourceKind = "follow"
    growing = True
    poll_interval: float | None = 0.25
    #: Output chunk lines of the log fed to the Output pane per poll (the newest).
    chunk_lines = FOLLOW_CHUNK_LINES

    def __init__(self, log: RunLog | None) -> None:
        self._log = log
        #: Lines of the log folded into the state so far.
        self.folded_upto = 0
        #: (monotonic time of the check, whether the log's writer was alive).
        self._writer_checked: tuple[float, bool] | None = None

    @property
    def log(self) -> RunLog | None:
        return self._log

    @property
    def run(self) -> RunHandle | None:
        return None

    def replayable(self, state: RunState) -> bool:
        return state.finished

    def clock_running(self, state: RunState) -> bool:
        """While the process that writes the log (``run_start``'s host pid) is alive;
        checked at most every 2 s."""
        if state.finished or state.header is None:
            return False
        now = time.monotonic()
        if self._writer_checked is None or now - self._writer_checked[0] >= 2.0:
            from agentdeck.tui.runs import writer_state

            h = state.header
            self._writer_checked = (now, writer_state(h.host, h.t) == "running")
        return self._writer_checked[1]

    def load(self, cancelled: Callable[[], bool]) -> RunState | None:
        state = RunState()
        log = self._log
        upto = len(log) if log is not None else 0
        if log is not None and fold_lines(log, state, 0, upto, cancelled=cancelled) is None:
            return None
        # written on the worker thread, read by poll only once the screen has the state
        self.folded_upto = upto
        return state

    def poll(self, state: RunState | None, output: OutputSink) -> Changed:
        log = self._log
        if log is None:
            return Changed.NONE
        log.refresh()
        if state is None:
            return Changed.NONE
        start, end = self.folded_upto, len(log)
        if start >= end:
            return Changed.NONE
        changed = fold_lines(log, state, start, end, output=output, chunk_lines=self.chunk_lines)
        self.folded_upto = end
        return changed or Changed.NONE


class LiveSource(FollowSource):
    """A run this app started: its own log followed, plus the buffer's streamed text."""

    kind: SourceKind = "live"
    #: Polls alternate between the log and the streamed text: each at 10 Hz.
    poll_interval: float | None = 0.05
    #: The Output pane is fed from the buffer, ahead of the log: skip the log's chunks.
    chunk_lines = 0

    def __init__(self, run: RunHandle, buffer: LiveBuffer) -> None:
        super().__init__(None)
        self._run = run
        self.buffer = buffer
        #: Text drained before the latest refresh of the log, to show at the next poll.
        self._drained: list[StreamText] | None = None

    @property
    def run(self) -> RunHandle:
        return self._run

    def replayable(self, state: RunState) -> bool:
        # once the run has ended its log is a finished log like any other
        return state.finished

    def clock_running(self, state: RunState) -> bool:
        return not state.finished

    def poll(self, state: RunState | None, output: OutputSink) -> Changed:
        if self._log is None and not self._open():
            return Changed.NONE
        if state is None:
            return super().poll(None, output)
        if self._drained is None:
            self._drained = self.buffer.drain()  # before the refresh: see the module's docstring
            changed = super().poll(state, output)
            if not state.finished:
                return changed
            # the log has run_end, so the bus delivered every earlier event: all the text
            # is in the buffer now and its steps and calls are folded; show it with the end
            items, self._drained = self._drained + self.buffer.drain(), None
            return changed | self._apply_streams(items, state, output)
        items, self._drained = self._drained, None
        return self._apply_streams(items, state, output)

    def _open(self) -> bool:
        """Open the run's log once it exists (``LogError`` if it is not a log)."""
        run_dir = self._run.run_dir
        if run_dir is None or not run_dir.events.exists():
            return False
        self._log = RunLog.open(run_dir.events, follow=True)
        return True

    def _apply_streams(
        self, items: list[StreamText], state: RunState, output: OutputSink
    ) -> Changed:
        changed = Changed.NONE
        for item in items:
            ev = item.event
            if isinstance(ev, ToolOutputChunk):
                # the call's tool_call is folded (and started in the pane) by now; output
                # of a call the pane has moved past is dropped with the call
                if ev.call_id == output.call_id:
                    output.feed(item.text, stream=ev.stream, dropped=item.dropped)
            else:
                changed |= state.apply(
                    ModelDelta(
                        step=ev.step, block_index=ev.block_index, kind=ev.kind, text=item.text
                    )
                )
        return changed


def make_source(
    log: RunLog | None,
    *,
    mode: SourceKind,
    run: RunHandle | None = None,
    buffer: LiveBuffer | None = None,
) -> RunSource:
    """The source for ``mode``: replay and follow read ``log``; live watches ``run``
    (its log is opened when it appears) through ``buffer``, the run's bus sink."""
    if mode == "replay":
        if log is None:
            raise ValueError("a replay needs a log")
        return ReplaySource(log)
    if mode == "follow":
        if log is None:
            raise ValueError("following needs a log")
        return FollowSource(log)
    if mode == "live":
        if run is None or buffer is None:
            raise ValueError("a live run needs its handle and the buffer it was started with")
        return LiveSource(run, buffer)
    raise ValueError(f"mode must be replay, follow or live, not {mode!r}")
