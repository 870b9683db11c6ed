"""The run screen: one run, live, followed or replayed (the same screen for all three).

Data flow (see docs/tui.md): the screen reads one ``RunSource``
(``tui/sources.py``): a replayed log, a followed log or a live run, which is a
followed log (the run's own ``events.jsonl``) plus the live-only streamed text.
The source's ``RunLog`` gives random access to steps (the steps pane, detail,
search); the ``RunState`` the source folds from the log's lines feeds the
status bar, tokens, metrics and grade. The screen asks the source what it can
do (follow, play back, stop a run), never which kind it is; playing back is
``PlaybackController``'s, searching ``SearchController``'s.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Input, TabbedContent, TabPane
from textual.worker import get_current_worker

from agentdeck.engine.errors import EXIT_INFRA, EXIT_USAGE, UserError, exit_code
from agentdeck.engine.events import RunEnd
from agentdeck.engine.log import LogError, RunLog, StepRecord
from agentdeck.tui import format as fmt
from agentdeck.tui.gcutil import freeze_heap
from agentdeck.tui.live import LiveBuffer
from agentdeck.tui.playback import PlaybackController
from agentdeck.tui.runstate import Changed, Phase, RunState
from agentdeck.tui.screens.dialogs import ConfirmScreen, FullTextScreen, JumpScreen
from agentdeck.tui.search import SearchController
from agentdeck.tui.sources import RunSource, SourceKind, make_source
from agentdeck.tui.stepdata import read_step
from agentdeck.tui.stepindex import StepIndex
from agentdeck.tui.theme import palette, syntax_theme
from agentdeck.tui.widgets.detail import StepDetail, render_step
from agentdeck.tui.widgets.files import FilesPane
from agentdeck.tui.widgets.footer import AppFooter
from agentdeck.tui.widgets.metrics import MetricsPane, render_metrics
from agentdeck.tui.widgets.output import ToolOutput
from agentdeck.tui.widgets.scroll import KeyScroll
from agentdeck.tui.widgets.scrubber import Scrubber
from agentdeck.tui.widgets.status import StatusBar, StatusInfo
from agentdeck.tui.widgets.steps import StepsPane, StepsView
from agentdeck.tui.widgets.tokens import TokensPane, render_tokens
from agentdeck.tui.widgets.virtual_list import VirtualList

if TYPE_CHECKING:
    from agentdeck.engine.run import RunHandle

#: Seconds a stopped run may take to end before the app quits without it.
JOIN_TIMEOUT_S = 120.0


class RunScreen(Screen[None]):
    HELP_TITLE = "run"
    #: Panes whose own keys (scrolling) ? lists too: see ``tui/screens/help.py``.
    HELP_PANES = ("#detail", "#metrics")
    BINDINGS: ClassVar[list[BindingType]] = [
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
        Binding("5", "tab('files')", "Files tab", show=False, id="run.tab_files"),
    ]

    # -- messages (posted by workers; handled on the UI thread) -------------------------

    @dataclass
    class StateLoaded(Message):
        state: RunState

    @dataclass
    class RunJoined(Message):
        stopped: bool

    def __init__(
        self,
        log: RunLog | None = None,
        *,
        mode: SourceKind = "replay",
        handle: RunHandle | None = None,
        buffer: LiveBuffer | None = None,
        name: str | None = None,
    ) -> None:
        """``mode`` "replay" or "follow" shows ``log``; "live" watches the run ``handle``
        (started with ``buffer`` as a sink) and opens its log when it appears."""
        super().__init__(name=name)
        self.source: RunSource = make_source(log, mode=mode, run=handle, buffer=buffer)
        self._seal: str | None = None
        self.state = RunState()
        if log is not None and log.header is not None:
            self.state.apply(log.header)
        # a run this app watches is running now: its step in progress lasts until now
        self.index = StepIndex(log, self.state, wall_clock=self.source.run is not None)
        self.following = self.source.growing
        self.playback = PlaybackController(
            self, self.index, lambda: self.steps, self._playback_changed
        )
        self.search = SearchController(self)
        #: The state is folded from the log up to where the source's ``load`` stopped.
        self.state_ready = False
        self.quitting = False
        self.exit_code: int | None = None
        #: The step the detail pane shows, and whether it was finished when drawn.
        self.detail_step: int | None = None
        self._detail_finished = False
        self._dirty = Changed.NONE
        self._detail_timer: Timer | None = None
        self._last_detail_refresh = 0.0
        self._moving = False
        self._last_log_error = ""
        #: The "stop the run and quit?" question while it is asked.
        self._confirm: ConfirmScreen | None = None

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
                with TabPane("Files", id="tab-files"):
                    yield FilesPane(self._files_source, id="files")
        yield Scrubber(id="scrubber")
        yield Input(
            placeholder="search steps: text, code, output (enter finds, escape cancels)",
            id="search",
        )
        yield AppFooter()

    def _files_source(self) -> tuple[RunLog | None, int | None]:
        """What the Files tab shows: the repository after the selected step."""
        return self.source.log, self._selected_step()

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
        self._load_state(self.source)
        interval = self.source.poll_interval
        if interval is not None:
            self.set_interval(interval, self._poll, name="poll")
            self.set_interval(1.0, self._tick, name="clock")
        self.set_interval(0.5, self._render_panes, name="panes")

    def _theme_changed(self, _theme: object) -> None:
        self.steps.invalidate()
        self._dirty = Changed.ALL
        self._render_panes()
        self._show_detail(keep_scroll=True)

    # -- the source: loading, then polling ------------------------------------------------

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def _load_state(self, source: RunSource) -> None:
        worker = get_current_worker()
        state = source.load(lambda: worker.is_cancelled)
        if state is not None:
            self.post_message(self.StateLoaded(state))

    @on(StateLoaded)
    def _state_loaded(self, msg: StateLoaded) -> None:
        self.state = msg.state
        self.index.state = msg.state
        self.state_ready = True
        self._poll(Changed.ALL)  # fold what the log gained while loading
        freeze_heap()

    def _poll(self, changed: Changed = Changed.NONE) -> None:
        """Take in what the source has added since the last call (the poll timer)."""
        if self._start_failed():
            return
        log = self.source.log
        lines = len(log) if log is not None else 0
        steps, ended = self.index.count, self.index.log_ended
        try:
            changed |= self.source.poll(
                self.state if self.state_ready else None, self.query_one(ToolOutput)
            )
        except LogError as e:
            if str(e) != self._last_log_error:
                self._last_log_error = str(e)
                self.notify(str(e), severity="error")
            return
        log = self.source.log
        if log is None:
            self._after_change(changed)
            return
        if log is not self.index.log:
            self.index.attach(log)
            changed |= Changed.STEPS
        self.index.after_refresh()
        if self.index.count != steps or self.index.log_ended != ended:
            changed |= Changed.STEPS
        if changed:
            self._after_change(changed)
        elif len(log) != lines and self.index.count:
            self.steps.invalidate(self.index.count - 1)

    def _start_failed(self) -> bool:
        """A run that failed before its first event (bad input found in setup): exit
        with the message, as the headless run would (2 bad input, 3 otherwise)."""
        run = self.source.run
        error = run.error if run is not None else None
        if error is None or self.state.header is not None or self.exit_code is not None:
            return False
        self.exit_code = EXIT_USAGE if isinstance(error, UserError) else EXIT_INFRA
        self.app.exit(self.exit_code, message=f"agentdeck: {error}")
        return True

    def _tick(self) -> None:
        if not self.state.finished:
            # the step in progress runs until now while its writer does (else: until the
            # log's last event, which for a silent tool is its start)
            self.index.wall_clock = self.source.clock_running(self.state)
            self._render_status()
            if self.index.wall_clock and self.index.count:
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
            # the run is replayable now: the Output pane follows the selected step
            self._show_detail(keep_scroll=True)
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
        return self._detail_finished and self.detail_step == self._selected_step()

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
        if not self.source.replayable(self.state):
            return None
        step = self._selected_step()
        return None if step is None else self.state.position(step)

    def _seal_status(self) -> str | None:
        """The log's seal once the run is over (checked again until the writer sealed it)."""
        log = self.source.log
        if log is None or not self.state.finished:
            return None
        if self._seal in (None, "open"):
            self._seal = log.seal(recheck=True).status
        return self._seal

    def _render_status(self) -> None:
        # a run still going shows where it is; a finished one where the playhead is
        step = self._selected_step() if self.source.replayable(self.state) else None
        info = StatusInfo(
            self.source.kind,
            step=step,
            playing=self.playback.playing,
            speed=self.playback.speed,
            following=self.following,
            seal=self._seal_status(),
        )
        self.query_one(StatusBar).show(self.state, info)

    def _update_scrubber(self) -> None:
        label = ""
        matches = self.search.matches
        if matches:
            label = f"· {len(matches)} match{'es' if len(matches) != 1 else ''}"
        if self.following and self.source.growing:
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
        # the Tokens and Metrics tabs are read by scrolling: opening one focuses it
        # (j/k scroll it, escape goes back to the steps); a hidden pane keeps no focus
        focused = self.app.focused
        if focused is not None and focused.id == "search":
            return
        pane = next(iter(event.pane.query_children(KeyScroll)), None)
        if pane is not None and pane.id in ("tokens", "metrics"):
            pane.focus()
        elif isinstance(focused, KeyScroll) and focused.id in ("tokens", "metrics"):
            self.steps.focus()

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
        keep = keep_scroll and self.detail_step == step
        rec = self._record(step)
        if not finished:
            # the step in progress: its duration is the row's (still running), not the
            # time up to its last event
            rec = replace(rec, t_end=None)
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
        self.detail_step, self._detail_finished = step, finished
        if self.source.replayable(self.state) and not self._streamed_here(rec):
            self._show_step_output(rec)

    def _streamed_here(self, rec: StepRecord) -> bool:
        """Whether the Output pane holds the live stream of one of ``rec``'s calls, and
        that call printed something: a live run that just ended keeps the output as it
        streamed, whichever poll brought the end; a call that printed nothing (a submit)
        shows its result instead of an empty pane."""
        out = self.query_one(ToolOutput)
        printed = out.ring.total_chars > 0 or out.dropped > 0
        return (
            out.call_id is not None
            and printed
            and any(c.call.call_id == out.call_id for c in rec.calls)
        )

    def _record(self, step: int, *, chunks: bool = False) -> StepRecord:
        """The step as the log has it so far (its output chunks only if asked)."""
        log = self.source.log
        if log is not None:
            try:
                return read_step(log, step, chunks=chunks)
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
        if not self._moving and self.source.growing:
            self.following = msg.index >= self.index.count - 1
        self._schedule_detail()
        self._update_scrubber()
        if self.source.replayable(self.state):
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
        # a log that cannot grow has nothing to follow: f goes to its last step
        self.following = not self.following if self.source.growing else True
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
        elif len(self.app.screen_stack) > 2 and self.source.run is None:
            self.app.pop_screen()

    def action_play(self) -> None:
        if not self.source.replayable(self.state):
            self.notify(
                "The run is still going: it can be played back once it has finished "
                "(f follows the newest step).",
                timeout=3,
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
        rec = self._record(step, chunks=True)
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
        log = self.source.log
        if not query or log is None:
            return
        self.steps.matches = set()
        self.search.start(log, self.index, query, self.steps.cursor)

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
        if self.source.run is not None and not self.state.finished:
            if self.quitting:
                self.notify("Waiting for the run to stop…", timeout=2)
                return

            def answer(yes: bool | None) -> None:
                self._confirm = None
                if yes:
                    self.stop_run()

            self._confirm = ConfirmScreen(
                "The run is still going. Stop it and quit?",
                yes="Stop and quit",
                no="Keep running",
            )
            self.app.push_screen(self._confirm, answer)
            return
        self.app.exit(self.result_code())

    def interrupt(self) -> None:
        """Ctrl-C: the same as ``q`` (a live run asks first, then stops cleanly). Pressed
        again while asked, it stops the run without asking; pressed again while the run
        is stopping, the app closes at once (``run_live_app`` still stops and joins it)."""
        if self.source.run is None or self.state.finished:
            self.action_quit_run()
        elif self._confirm is not None:
            self._confirm.dismiss(True)
        elif self.quitting:
            self.app.exit(None)
        else:
            self.action_quit_run()

    def stop_run(self) -> None:
        run = self.source.run
        if run is None:
            return
        self.quitting = True
        self.state.phase = Phase.STOPPING
        self.state.phase_detail = ""
        self._render_status()
        run.stop()
        self._join_run(run)

    @work(thread=True, exclusive=True, group="join", exit_on_error=False)
    def _join_run(self, run: RunHandle) -> None:
        stopped = run.join(JOIN_TIMEOUT_S)
        self.post_message(self.RunJoined(stopped))

    @on(RunJoined)
    def _run_joined(self, msg: RunJoined) -> None:
        # the rest of the log, run_end included (a live source takes two polls: its
        # streamed text, then the log)
        for _ in range(2):
            if not self.state.finished and self.exit_code is None:
                self._poll()
        if not msg.stopped:
            self.notify("The run did not stop within 120 s; quitting anyway.", severity="error")
            self.app.exit(EXIT_INFRA)
            return
        self._finish_quit()

    def _finish_quit(self) -> None:
        if self.exit_code is None:
            self.exit_code = self.result_code()
            self.app.exit(self.exit_code)

    def result_code(self) -> int:
        """The run's own exit code when this app ran it. Replaying or following a log
        that opened is a success whatever the run's grade (0), as with ``--no-ui``."""
        run = self.source.run
        if run is None:
            return 0
        result = run.result
        if result is not None:
            return result.exit_code
        end, grade = self.state.end, self.state.grade
        return exit_code(end.status if end else None, grade.passed if grade is not None else None)
