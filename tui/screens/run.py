"""The run screen: one run, live, followed or replayed (the same screen for all three).

Data flow (see docs/tui.md): a ``RunLog`` gives random access to steps (the
steps pane, detail, search); a ``RunState`` folds the event stream for the
status bar, tokens, metrics and grade. A live run feeds RunState from the
event bus through a ``LiveBuffer`` drained every 100 ms, and follows its
``events.jsonl`` for the step index; a followed log feeds both from the file
(``RunLog.refresh`` at 4 Hz); a replay loads RunState once in a worker.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, TabbedContent, TabPane
from textual.worker import get_current_worker

from agentdeck.engine.errors import EXIT_INFRA, EXIT_USAGE, UserError, exit_code
from agentdeck.engine.events import EventError, ModelDelta, RunEnd, ToolCall, ToolOutputChunk
from agentdeck.engine.log import LogError, RunLog, StepRecord
from agentdeck.tui import format as fmt
from agentdeck.tui.gcutil import freeze_heap
from agentdeck.tui.live import LiveBuffer, StreamText
from agentdeck.tui.playback import PlaybackController
from agentdeck.tui.runstate import Changed, Phase, RunState
from agentdeck.tui.screens.dialogs import ConfirmScreen, FullTextScreen, JumpScreen
from agentdeck.tui.search import SearchController
from agentdeck.tui.stepdata import read_step
from agentdeck.tui.stepindex import StepIndex
from agentdeck.tui.theme import palette, syntax_theme
from agentdeck.tui.widgets.detail import StepDetail, render_step
from agentdeck.tui.widgets.metrics import MetricsPane, render_metrics
from agentdeck.tui.widgets.output import ToolOutput
from agentdeck.tui.widgets.scrubber import Scrubber
from agentdeck.tui.widgets.status import StatusBar, StatusInfo
from agentdeck.tui.widgets.steps import StepsPane, StepsView
from agentdeck.tui.widgets.tokens import TokensPane, render_tokens
from agentdeck.tui.widgets.virtual_list import VirtualList

#: Event types folded into RunState when loading a log (tool outputs are not needed).
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


class RunScreen(Screen):
    HELP_TITLE = "run"
    BINDINGS = [
        Binding("q", "quit_run", "Quit", id="run.quit"),
        Binding("escape", "back", "Back", show=False, id="run.back"),
        Binding("f", "follow", "Follow", id="run.follow"),
        Binding("slash", "search", "Search", id="run.search"),
        Binding("n", "next_match", "Next match", show=False, id="run.next_match"),
        Binding("N", "prev_match", "Prev match", show=False, id="run.prev_match"),
        Binding("space", "play", "Play", id="run.play"),
        Binding("plus,equals_sign", "faster", "Faster", show=False, id="run.faster"),
        Binding("minus", "slower", "Slower", show=False, id="run.slower"),
        Binding("colon,J", "jump", "Jump", id="run.jump"),
        Binding("v", "full_output", "Full output", id="run.full_output"),
        Binding("1", "tab('detail')", "Detail tab", show=False, id="run.tab_detail"),
        Binding("2", "tab('output')", "Output tab", show=False, id="run.tab_output"),
        Binding("3", "tab('tokens')", "Tokens tab", show=False, id="run.tab_tokens"),
        Binding("4", "tab('metrics')", "Metrics tab", show=False, id="run.tab_metrics"),
    ]

    # -- messages (posted by workers; handled on the UI thread) -------------------------

    @dataclass
    class StateLoaded(Message):
        state: RunState
        upto: int

    @dataclass
    class RunJoined(Message):
        stopped: bool

    def __init__(
        self,
        log: RunLog | None,
        *,
        mode: str = "replay",
        handle: Any = None,
        buffer: LiveBuffer | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        if mode not in ("replay", "follow", "live"):
            raise ValueError(f"mode must be replay, follow or live, not {mode!r}")
        self.runlog = log
        self.mode = mode
        self.handle = handle
        self.buffer = buffer
        self.state = RunState()
        if log is not None and log.header is not None:
            self.state.apply(log.header)
        self.index = StepIndex(log, self.state, live=mode == "live")
        self.following = mode in ("live", "follow")
        self.playback = PlaybackController(
            self, self.index, lambda: self.steps, self._playback_changed
        )
        self.search = SearchController(self)
        self.state_ready = mode == "live"
        self.loaded_upto = 0
        self.quitting = False
        self.exit_code: int | None = None
        self._dirty = Changed.NONE
        self._detail_timer: Timer | None = None
        self._last_detail_refresh = 0.0
        self._moving = False

    # -- layout ------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with Horizontal(id="main"):
            yield StepsPane(self.index, id="steps")
            with TabbedContent(id="tabs", initial="tab-detail"):
                with TabPane("Detail", id="tab-detail"):
                    yield StepDetail(id="detail")
                with TabPane("Output", id="tab-output"):
                    yield ToolOutput(id="output")
                with TabPane("Tokens", id="tab-tokens"):
                    yield TokensPane(id="tokens")
                with TabPane("Metrics", id="tab-metrics"):
                    yield MetricsPane(id="metrics")
        yield Scrubber(id="scrubber")
        yield Input(
            placeholder="search steps: text, code, output (enter finds, escape cancels)",
            id="search",
        )
        yield Footer()

    @property
    def steps(self) -> StepsView:
        return self.query_one("#steps-view", StepsView)

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)
        self.steps.set_count(self.index.count)
        self.steps.focus()
        if self.following:
            self.steps.move_to(self.index.count - 1)
        else:
            self.steps.move_to(0)
        self._render_status()
        self._update_scrubber()
        self._show_detail()
        self._dirty = Changed.ALL
        self._render_panes()
        if self.runlog is not None and self.mode in ("replay", "follow"):
            self._load_state(self.runlog, len(self.runlog))
        if self.mode == "live":
            self.set_interval(0.1, self._drain, name="drain")
        if self.mode in ("live", "follow"):
            # a live run's log is indexed at 10 Hz: the same bytes in smaller bites, so a
            # tool printing megabytes never blocks a key press for long
            self.set_interval(0.1 if self.mode == "live" else 0.25, self._poll_log, name="poll")
            self.set_interval(1.0, self._tick, name="clock")
        self.set_interval(0.5, self._render_panes, name="panes")

    def _theme_changed(self, _theme: object) -> None:
        self.steps.invalidate()
        self._dirty = Changed.ALL
        self._render_panes()
        self._show_detail(keep_scroll=True)

    # -- loading state --------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def _load_state(self, log: RunLog, upto: int) -> None:
        state = RunState()
        worker = get_current_worker()
        types = log.line_types(0, upto)
        for i, etype in enumerate(types):
            if etype not in STATE_TYPES:
                continue
            if worker.is_cancelled:
                return
            try:
                state.apply(log.event_at(i))
            except EventError as e:
                log.warnings.append(str(e))
        self.post_message(self.StateLoaded(state, upto))

    @on(StateLoaded)
    def _state_loaded(self, msg: StateLoaded) -> None:
        self.state = msg.state
        self.index.state = msg.state
        self.loaded_upto = msg.upto
        self.state_ready = True
        if self.mode == "follow":
            self._fold_log_lines()
        self.index.after_refresh()
        self._after_change(Changed.ALL)
        freeze_heap()

    # -- live and follow --------------------------------------------------------------------

    def _drain(self) -> None:
        """Apply everything the engine thread buffered since the last drain (live)."""
        if self.buffer is None:
            return
        items = self.buffer.drain()
        if not items:
            return
        changed = Changed.NONE
        output = self.query_one(ToolOutput)
        for item in items:
            if isinstance(item, StreamText):
                if item.kind == "output":
                    call_id, stream, step = item.key
                    if output.call_id != call_id:
                        output.start_call(str(call_id), f"step {step} · output")
                    output.feed(item.text, stream=str(stream), dropped=item.dropped)
                else:
                    step, block, kind = item.key
                    changed |= self.state.apply(
                        ModelDelta(
                            step=int(step),  # type: ignore[arg-type]
                            block_index=int(block),  # type: ignore[arg-type]
                            kind=kind,
                            text=item.text,
                        )
                    )  # type: ignore[arg-type]
                continue
            changed |= self.state.apply(item)
            if isinstance(item, ToolCall):
                output.start_call(item.call_id, f"step {item.step} · {item.name}")
        self._after_change(changed)

    def _poll_log(self) -> None:
        """Index what was appended to the log (a live run's own log, or a followed one)."""
        if self.mode == "live" and self._start_failed():
            return
        if self.runlog is None:
            self._open_live_log()
            return
        steps_before, ended_before = len(self.runlog.step_numbers), self.index.log_ended
        if not self.runlog.refresh():
            return
        self.index.after_refresh()
        changed = Changed.NONE
        if len(self.runlog.step_numbers) != steps_before or self.index.log_ended != ended_before:
            changed |= Changed.STEPS
        if self.mode == "follow" and self.state_ready:
            changed |= self._fold_log_lines()
        if changed:
            self._after_change(changed)
        elif self.index.count:
            self.steps.invalidate(self.index.count - 1)

    def _start_failed(self) -> bool:
        """A run that failed before its first event (bad input found in setup): exit
        with the message, as the headless run would (2 bad input, 3 otherwise)."""
        error = getattr(self.handle, "error", None)
        if error is None or self.state.header is not None or self.exit_code is not None:
            return False
        self.exit_code = EXIT_USAGE if isinstance(error, UserError) else EXIT_INFRA
        self.app.exit(self.exit_code, message=f"agentdeck: {error}")
        return True

    def _open_live_log(self) -> None:
        run_dir = getattr(self.handle, "run_dir", None)
        if run_dir is None or not run_dir.events.exists():
            return
        try:
            self.runlog = RunLog.open(run_dir.events, follow=True)
        except LogError as e:
            self.notify(str(e), severity="error")
            return
        self.index.attach(self.runlog)
        self._after_change(Changed.STEPS)

    def _fold_log_lines(self) -> Changed:
        """Fold log lines added since the last call into RunState (follow mode)."""
        assert self.runlog is not None
        start, end = self.loaded_upto, len(self.runlog)
        if start >= end:
            return Changed.NONE
        types = self.runlog.line_types(start, end)
        chunk_lines = [i for i, t in enumerate(types) if t == "tool_output_chunk"]
        keep_chunks = set(chunk_lines[-FOLLOW_CHUNK_LINES:])
        changed = Changed.NONE
        output = self.query_one(ToolOutput)
        for i, etype in enumerate(types):
            if etype == "tool_output_chunk" and i not in keep_chunks:
                continue
            if etype not in STATE_TYPES and etype != "tool_output_chunk":
                continue
            try:
                ev = self.runlog.event_at(start + i)
            except EventError as e:
                self.runlog.warnings.append(str(e))
                continue
            if isinstance(ev, ToolOutputChunk):
                if output.call_id != ev.call_id:
                    output.start_call(ev.call_id, f"step {ev.step} · output")
                output.feed(ev.text, stream=ev.stream)
                continue
            changed |= self.state.apply(ev)
            if isinstance(ev, ToolCall):
                output.start_call(ev.call_id, f"step {ev.step} · {ev.name}")
        self.loaded_upto = end
        return changed

    def _tick(self) -> None:
        if not self.state.finished:
            self._render_status()
            if self.mode == "live" and self.index.count:
                self.steps.invalidate(self.index.count - 1)

    def _after_change(self, changed: Changed) -> None:
        if not changed:
            return
        self._dirty |= changed
        view = self.steps
        if changed & Changed.STEPS:
            count = self.index.count
            if count != view.count:
                view.set_count(count)
            for i in (count - 2, count - 1):
                if i >= 0:
                    view.invalidate(i)
            if self.following and count and view.cursor != count - 1:
                self._move(count - 1)
        if changed & (Changed.STATUS | Changed.GRADE | Changed.STEPS):
            self._render_status()
            self._update_scrubber()
        if changed & (Changed.TEXT | Changed.CALL | Changed.STEPS):
            self._refresh_live_detail()
        if isinstance(self.state.end, RunEnd) and changed & Changed.GRADE:
            end = self.state.end
            if end.message and end.status in ("error", "limit_exceeded"):
                self.notify(f"run ended ({end.status}): {end.message}", severity="error", timeout=8)
            if self.quitting:
                self._finish_quit()

    def _refresh_live_detail(self) -> None:
        """Re-draw the detail when it shows the step in progress (at most 4 times a second)."""
        if self.index.count == 0:
            return
        if self.index.is_finished(self.steps.cursor) and self._detail_is_current():
            return
        now = time.monotonic()
        if now - self._last_detail_refresh < 0.25:
            self._schedule_detail(0.25)
            return
        self._show_detail(keep_scroll=True)

    def _detail_is_current(self) -> bool:
        return (
            getattr(self, "_detail_finished", False) is True
            and getattr(self, "_detail_step", None) == self._selected_step()
        )

    # -- rendering ----------------------------------------------------------------------

    def _selected_step(self) -> int | None:
        if self.index.count == 0:
            return None
        try:
            return self.index.step_at(min(self.steps.cursor, self.index.count - 1))
        except IndexError:
            return None

    def _playhead_pos(self) -> int | None:
        """The state position (for tokens / metrics) of the selected step in a replay."""
        if self.mode == "live" or (self.mode == "follow" and not self.state.finished):
            return None
        step = self._selected_step()
        return None if step is None else self.state.position(step)

    def _render_status(self) -> None:
        step = self._selected_step() if self.mode == "replay" else None
        info = StatusInfo(
            self.mode,
            step=step,
            playing=self.playback.playing,
            speed=self.playback.speed,
            following=self.following,
        )
        self.query_one(StatusBar).show(self.state, info)

    def _update_scrubber(self) -> None:
        label = ""
        matches = self.search.matches
        if matches:
            label = f"· {len(matches)} match{'es' if len(matches) != 1 else ''}"
        if self.following and self.mode != "replay":
            label += " · following"
        self.query_one(Scrubber).set_position(
            self.steps.cursor,
            self.index.count,
            playing=self.playback.playing,
            speed=self.playback.speed,
            label=label,
        )

    def _render_panes(self) -> None:
        """Redraw the tokens or metrics pane if it is showing and its data changed
        (called at 2 Hz, and when its tab is opened)."""
        if not self._dirty:
            return
        active = self.query_one(TabbedContent).active
        pal = palette(self.app)
        pos = self._playhead_pos()
        if active == "tab-tokens" and self._dirty & (Changed.TOKENS | Changed.STEPS):
            self.query_one(TokensPane).show(render_tokens(self.state, pos, pal))
            self._dirty &= ~(Changed.TOKENS | Changed.STEPS)
        if active == "tab-metrics" and self._dirty & (Changed.METRICS | Changed.GRADE):
            step = self._selected_step() if pos is not None else None
            self.query_one(MetricsPane).show(render_metrics(self.state, step, pal))
            self._dirty &= ~(Changed.METRICS | Changed.GRADE)

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self._dirty |= Changed.TOKENS | Changed.METRICS
        self._render_panes()

    def _schedule_detail(self, delay: float = 0.03) -> None:
        if self._detail_timer is not None:
            self._detail_timer.stop()
        self._detail_timer = self.set_timer(delay, lambda: self._show_detail(keep_scroll=False))

    def _show_detail(self, *, keep_scroll: bool = False) -> None:
        self._detail_timer = None
        self._last_detail_refresh = time.monotonic()
        detail = self.query_one(StepDetail)
        step = self._selected_step()
        if step is None:
            detail.show(
                Text(
                    "No steps yet." if not self.state.finished else "This run has no steps.",
                    style="dim",
                )
            )
            return
        pos = min(self.steps.cursor, self.index.count - 1)
        finished = self.index.is_finished(pos)
        keep = keep_scroll and getattr(self, "_detail_step", None) == step
        rec = self._record(pos, step)
        live_text = (
            self.state.live_text if (not finished and self.state.current_step == step) else ""
        )
        detail.show(
            render_step(
                rec,
                live_text=live_text,
                finished=finished,
                syntax_theme=syntax_theme(self.app),
                timed=self.index.timed,
                pal=palette(self.app),
            ),
            keep_scroll=keep,
        )
        self._detail_step, self._detail_finished = step, finished
        if self.mode == "replay" or (self.state.finished and self.mode != "live"):
            self._show_step_output(rec)

    def _record(self, pos: int, step: int, *, chunks: bool = False) -> StepRecord:
        live = self.state.live
        if (
            not chunks
            and live is not None
            and live.step == step
            and live.record is not None
            and not self.index.is_finished(pos)
        ):
            return live.record  # the step in progress, as the stream has told it
        if self.runlog is not None and self.index.in_log(pos):
            try:
                return read_step(self.runlog, step, chunks=chunks)
            except (KeyError, IndexError):
                pass
        return StepRecord(step=step)

    def _show_step_output(self, rec: StepRecord) -> None:
        parts = []
        for c in rec.calls:
            if c.result is None:
                continue
            out = c.streamed_text or fmt.output_text(c.result.output)
            parts.append(out if len(rec.calls) == 1 else f"── {c.call.name} ──\n{out}")
        names = ", ".join(rec.tool_names) or "no tool call"
        self.query_one(ToolOutput).show_text(f"step {rec.step} · {names}", "\n".join(parts))

    # -- cursor ----------------------------------------------------------------------------

    def _move(self, index: int) -> None:
        self._moving = True
        try:
            self.steps.move_to(index, center=True)
        finally:
            self._moving = False

    @on(VirtualList.Highlighted, "#steps-view")
    def _highlighted(self, msg: VirtualList.Highlighted) -> None:
        if not self._moving and self.mode != "replay":
            self.following = msg.index >= self.index.count - 1
        self._schedule_detail()
        self._update_scrubber()
        if self.mode == "replay":
            self._render_status()
        if self._playhead_pos() is not None:
            self._dirty |= Changed.TOKENS | Changed.METRICS

    @on(VirtualList.Selected, "#steps-view")
    def _selected(self, msg: VirtualList.Selected) -> None:
        self.query_one(TabbedContent).active = "tab-detail"
        self.query_one(StepDetail).focus()

    @on(Scrubber.Seek)
    def _seek(self, msg: Scrubber.Seek) -> None:
        self.steps.move_to(msg.index, center=True)

    # -- actions -------------------------------------------------------------------------------

    def action_follow(self) -> None:
        self.following = not self.following if self.mode != "replay" else True
        if self.following:
            self._move(self.index.count - 1)
            self.notify("following the newest step", timeout=2)
        self._update_scrubber()

    def action_tab(self, name: str) -> None:
        self.query_one(TabbedContent).active = f"tab-{name}"

    def action_back(self) -> None:
        search = self.query_one("#search", Input)
        if search.has_class("-visible"):
            search.remove_class("-visible")
            self.steps.focus()
        elif not self.steps.has_focus:
            self.steps.focus()
        elif len(self.app.screen_stack) > 2 and self.mode != "live":
            self.app.pop_screen()

    def action_play(self) -> None:
        if self.mode == "live" or (self.mode == "follow" and not self.state.finished):
            self.notify(
                "Playback is for finished runs; press f to follow the newest step.", timeout=3
            )
            return
        if self.playback.toggle():
            self.following = False
        self._playback_changed()

    def _playback_changed(self) -> None:
        self._render_status()
        self._update_scrubber()

    def action_faster(self) -> None:
        self.playback.faster()

    def action_slower(self) -> None:
        self.playback.slower()

    def action_jump(self) -> None:
        steps = self.index.log_steps
        if not steps:
            return

        def done(step: int | None) -> None:
            if step is None:
                return
            self.jump_to_step(step)

        self.app.push_screen(JumpScreen(steps[0], steps[-1]), done)

    def jump_to_step(self, step: int) -> None:
        idx = self.index.index_of(step)
        if idx is None:
            steps = self.index.log_steps
            idx = min(len(steps) - 1, bisect.bisect_left(steps, step))
            self.notify(f"no step {step}; showing step {steps[idx]}", timeout=3)
        self.following = False
        self.steps.move_to(idx, center=True)

    def action_full_output(self) -> None:
        step = self._selected_step()
        if step is None:
            return
        rec = self._record(min(self.steps.cursor, self.index.count - 1), step, chunks=True)
        parts = []
        for c in rec.calls:
            parts.append(f"── tool call {c.call.block_index}: {c.call.name} ──")
            if c.chunks:
                parts.append(c.streamed_text)
            if c.result is not None:
                if not c.chunks:
                    parts.append(fmt.output_text(c.result.output))
                if c.result.error:
                    parts.append(f"error: {c.result.error}")
            elif not c.chunks:
                parts.append("(still running: see the Output tab)")
        if not rec.calls:
            parts.append(rec.text or "(this step has no tool output)")
        self.app.push_screen(
            FullTextScreen(f"Step {step}: full output (escape closes)", "\n".join(parts))
        )

    # -- search ------------------------------------------------------------------------------

    def action_search(self) -> None:
        search = self.query_one("#search", Input)
        search.add_class("-visible")
        search.focus()

    @on(Input.Submitted, "#search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        event.input.remove_class("-visible")
        self.steps.focus()
        query = event.value.strip()
        if not query or self.runlog is None:
            return
        self.steps.matches = set()
        self.search.start(self.runlog, self.index, query, self.steps.cursor)

    @on(SearchController.Progress)
    def _search_progress(self, msg: SearchController.Progress) -> None:
        if not self.search.update(msg):
            return
        self.steps.matches = set(msg.matches)
        self.steps.invalidate()
        if self.search.take_first_hit() and self._selected_step() not in self.steps.matches:
            self.action_next_match()
        if msg.done:
            n = len(msg.matches)
            self.notify(
                f"{n} step{'s' if n != 1 else ''} match {msg.query!r}"
                + (" (n/N: next/previous)" if n else ""),
                timeout=3,
            )
        self._update_scrubber()

    def action_next_match(self) -> None:
        self._goto_match(+1)

    def action_prev_match(self) -> None:
        self._goto_match(-1)

    def _goto_match(self, direction: int) -> None:
        step = self.search.target(self._selected_step(), direction)
        if step is None:
            if self.search.query:
                self.notify(f"no matches for {self.search.query!r}", timeout=2)
            return
        self.jump_to_step(step)

    # -- quitting -----------------------------------------------------------------------------

    def action_quit_run(self) -> None:
        if self.mode == "live" and self.handle is not None and not self.state.finished:
            if self.quitting:
                self.notify("Waiting for the run to stop…", timeout=2)
                return

            def answer(yes: bool | None) -> None:
                if yes:
                    self.stop_run()

            self.app.push_screen(
                ConfirmScreen(
                    "The run is still going. Stop it and quit?",
                    yes="Stop and quit",
                    no="Keep running",
                ),
                answer,
            )
            return
        self.app.exit(self.result_code())

    def stop_run(self) -> None:
        self.quitting = True
        self.state.phase = Phase.STOPPING
        self.state.phase_detail = ""
        self._render_status()
        self.handle.stop()
        self._join_run(self.handle)

    @work(thread=True, exclusive=True, group="join", exit_on_error=False)
    def _join_run(self, handle: Any) -> None:
        stopped = bool(handle.join(120.0))
        self.post_message(self.RunJoined(stopped))

    @on(RunJoined)
    def _run_joined(self, msg: RunJoined) -> None:
        self._drain()
        if not msg.stopped:
            self.notify("The run did not stop within 120 s; quitting anyway.", severity="error")
            self.app.exit(3)
            return
        self._finish_quit()

    def _finish_quit(self) -> None:
        if self.exit_code is None:
            self.exit_code = self.result_code()
            self.app.exit(self.exit_code)

    def result_code(self) -> int:
        result = getattr(self.handle, "result", None)
        code = getattr(result, "exit_code", None)
        if isinstance(code, int):
            return code
        end, grade = self.state.end, self.state.grade
        if end is None:
            return 1
        return exit_code(end.status, grade.passed if grade is not None else None)
