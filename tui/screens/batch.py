"""The batch screen: every run of a batch, live; its summary at the end.

A header with the overall progress (done/total, running, passed, elapsed, ETA,
cost) and the pass rate of each configuration so far; one row a run (config,
epoch, seed, state, step k/max, last metric, grade, tokens, cost, attempt);
``enter`` opens the selected run in the run screen (following its log while it
runs) and ``escape`` there comes back; ``s`` shows or hides the summary, which
appears by itself when the batch ends.

Two sources: a ``BatchRunner`` this app started (``agentdeck batch`` on a
terminal), or a batch directory read from its files (from the runs list, for a
batch another process runs or ran), followed by a ``BatchFollower``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from agentdeck.engine.batch.progress import (
    BatchFollower,
    RunProgress,
    config_rates,
    progress_counts,
    total_cost,
)
from agentdeck.engine.log import LogError, RunLog
from agentdeck.tui import format as fmt
from agentdeck.tui.batchview import short_metrics, state_text, summary_cards, summary_table
from agentdeck.tui.screens.dialogs import ConfirmScreen

COLUMNS = (
    ("run", "run"),
    ("config", "config"),
    ("epoch", "epoch"),
    ("seed", "seed"),
    ("state", "state"),
    ("step", "step"),
    ("last metric", "metric"),
    ("grade", "grade"),
    ("tokens", "tokens"),
    ("cost", "cost"),
    ("try", "attempt"),
)


class BatchScreen(Screen[None]):
    HELP_TITLE = "batch"
    DEFAULT_CSS = """
    #batch-title { height: auto; max-height: 8; background: $panel; padding: 0 1; }
    #batch-table { height: 1fr; }
    #batch-summary { height: auto; max-height: 60%; display: none; border-top: solid $primary; }
    #batch-summary.-visible { display: block; }
    """
    BINDINGS = [
        Binding("q", "quit_batch", "Quit", id="batch.quit"),
        Binding("enter", "open", "Open run", id="batch.open"),
        Binding("s", "summary", "Summary", id="batch.summary"),
        Binding("j", "cursor_down", "Down", show=False, id="batch.down"),
        Binding("k", "cursor_up", "Up", show=False, id="batch.up"),
        Binding("g", "first", "First", show=False, id="batch.first"),
        Binding("G", "last", "Last", show=False, id="batch.last"),
    ]

    def __init__(self, *, runner: Any = None, batch_dir: Any = None) -> None:
        """``runner``: a ``BatchRunner`` (started by the caller); or ``batch_dir``, a
        ``BatchDir`` whose files are followed."""
        super().__init__()
        self.runner = runner
        self.follower: BatchFollower | None = None
        self.summary: dict[str, Any] | None = None
        if runner is not None:
            self.manifest = runner.manifest
            self.batch_dir = runner.batch_dir
        else:
            self.batch_dir = batch_dir
            self.manifest = batch_dir.read_manifest()
            self.follower = BatchFollower(batch_dir, self.manifest)
        self._rows: dict[str, tuple[Any, ...]] = {}
        self._order = [s.run_id for s in self.manifest.runs]
        self._t_open = time.time()
        self.quitting = False

    @property
    def progress(self) -> dict[str, RunProgress]:
        if self.runner is not None:
            return self.runner.progress
        assert self.follower is not None
        return self.follower.progress

    @property
    def finished(self) -> bool:
        if self.runner is not None:
            return bool(self.runner.done)
        return bool(self.follower and self.follower.ended)

    def compose(self) -> ComposeResult:
        yield Static(id="batch-title")
        yield DataTable(id="batch-table", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="batch-summary"):
            yield Static(id="batch-summary-body")
        yield Footer()

    @property
    def table(self) -> DataTable:
        return self.query_one("#batch-table", DataTable)

    def on_mount(self) -> None:
        for title, key in COLUMNS:
            self.table.add_column(title, key=key)
        self.table.focus()
        self.refresh_view()
        self.set_interval(0.5, self.refresh_view)

    # -- drawing --------------------------------------------------------------------------

    def refresh_view(self) -> None:
        if self.follower is not None:
            self.follower.refresh()
        self._draw_rows()
        self._draw_title()
        if self.finished and self.summary is None:
            self._load_summary()
        if self.quitting and self.finished:
            self.app.exit(self.exit_code())

    def _cells(self, p: RunProgress) -> tuple[Any, ...]:
        label = self.manifest.label(p.config)
        step = f"{p.step}/{p.max_steps}" if p.max_steps else (str(p.step) if p.step else "-")
        metric = f"{p.last_metric[0]} {fmt.value(p.last_metric[1])}" if p.last_metric else "-"
        grade = short_metrics(p.grade_metrics or {}, 2) if p.grade_metrics else ""
        if p.done and p.message and p.state in ("error", "incomplete"):
            grade = fmt.clip(p.message, 40)
        return (
            Text(p.run_id, style="bold" if p.active else ""),
            fmt.clip(f"{p.config} {label}", 34),
            str(p.epoch),
            str(p.seed),
            state_text(p.state, p.passed, p.submitted),
            step,
            fmt.clip(metric, 28),
            fmt.clip(grade, 40) or "-",
            fmt.tokens(p.tokens),
            fmt.cost(p.cost_usd),
            str(p.attempt or "-"),
        )

    def _draw_rows(self) -> None:
        table = self.table
        keys = [k for _, k in COLUMNS]
        for rid in self._order:
            p = self.progress[rid]
            cells = self._cells(p)
            old = self._rows.get(rid)
            if old is None:
                table.add_row(*cells, key=rid)
            elif old != cells:
                for key, new, was in zip(keys, cells, old, strict=True):
                    if new != was:
                        table.update_cell(rid, key, new)
            self._rows[rid] = cells

    def _draw_title(self) -> None:
        ps = list(self.progress.values())
        c = progress_counts(ps)
        if self.runner is not None:
            elapsed = self.runner.elapsed()
            eta = self.runner.eta_s()
            cost = self.runner.cost_so_far()
        else:  # another process's batch, or one that has ended: the runs' own times
            starts = [p.started_at for p in ps if p.started_at is not None]
            ends = [p.ended_at for p in ps if p.ended_at is not None]
            if not starts:
                elapsed = 0.0
            elif any(p.active for p in ps) or not ends:
                elapsed = time.time() - min(starts)
            else:
                elapsed = max(ends) - min(starts)
            eta = None
            cost = total_cost(ps)
        t = Text(f"Batch {self.manifest.batch_id}", style="bold")
        state = "finished" if self.finished else ("stopping…" if self._stopping() else "")
        t.append(
            f"  [{c['done']}/{c['total']}] · {c['running']} running · "
            f"{c['passed']}/{c['evaluated']} passed · {fmt.duration(elapsed)} elapsed · "
            f"ETA {fmt.duration(eta) if eta is not None else '-'} · {fmt.cost(cost)}",
        )
        if c["errors"]:
            t.append(f" · {c['errors']} error(s)", style="bold red")
        if state:
            t.append(f" · {state}", style="italic")
        rates = config_rates((x.id for x in self.manifest.configs), ps)
        for cfg in self.manifest.configs:
            ok, n = rates[cfg.id]
            pct = f"{ok / n:.0%}" if n else "-"
            t.append(
                f"\n{cfg.id} {fmt.clip(self.manifest.label(cfg.id), 60)}: {ok}/{n} passed ({pct})",
                style="dim" if not n else "",
            )
        self.query_one("#batch-title", Static).update(t)

    def _stopping(self) -> bool:
        return bool(self.runner is not None and self.runner.stopping and not self.runner.done)

    def _load_summary(self) -> None:
        if self.runner is not None:
            self.summary = self.runner.summary
        else:
            from agentdeck.engine.batch.summary import report
            from agentdeck.engine.errors import UserError

            try:
                self.summary = report(self.batch_dir.path)
            except UserError as e:
                self.notify(str(e), severity="error")
                return
        if self.summary is None:
            return
        body = (
            summary_table(self.summary) if self.size.width >= 160 else summary_cards(self.summary)
        )
        self.query_one("#batch-summary-body", Static).update(body)
        self.query_one("#batch-summary").add_class("-visible")

    def exit_code(self) -> int:
        if self.runner is not None and self.runner.exit_code is not None:
            return int(self.runner.exit_code)
        return 0

    # -- actions --------------------------------------------------------------------------

    def _current(self) -> RunProgress | None:
        row = self.table.cursor_row
        if row < 0 or row >= len(self._order):
            return None
        return self.progress[self._order[row]]

    def action_cursor_down(self) -> None:
        self.table.action_cursor_down()

    def action_cursor_up(self) -> None:
        self.table.action_cursor_up()

    def action_first(self) -> None:
        self.table.move_cursor(row=0)

    def action_last(self) -> None:
        self.table.move_cursor(row=max(0, len(self._order) - 1))

    def action_summary(self) -> None:
        box = self.query_one("#batch-summary")
        if self.summary is None:
            self.notify("The summary appears when the batch has ended.", timeout=3)
            return
        box.toggle_class("-visible")

    @on(DataTable.RowSelected, "#batch-table")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        p = self._current()
        if p is None:
            return
        path: Path | None = p.log_path or (self.batch_dir.run_path(p.run_id) / "events.jsonl")
        if path is None or not path.is_file():
            what = {"queued": "has not started yet", "not_run": "did not run"}.get(
                p.state, "has no log yet"
            )
            msg = f"{p.run_id} {what}" + (f": {p.message}" if p.message else "")
            self.notify(msg, timeout=4)
            return
        from agentdeck.tui.screens.run import RunScreen

        follow = not p.done
        try:
            log = RunLog.open(path, follow=follow)
        except LogError as e:
            self.notify(str(e), severity="error")
            return
        self.app.push_screen(RunScreen(log, mode="follow" if follow else "replay"))

    def action_quit_batch(self) -> None:
        if self.runner is None or self.runner.done:
            self.app.exit(self.exit_code())
            return
        if self.quitting:
            self.notify("Waiting for the runs to close their logs…", timeout=2)
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.quitting = True
                self.runner.stop("interrupted (quit from the batch screen)")
                self.notify("Stopping every run and closing its log…", timeout=4)

        self.app.push_screen(
            ConfirmScreen(
                "The batch is still running. Stop every run and quit?",
                yes="Stop and quit",
                no="Keep running",
            ),
            answer,
        )


def run_batch_app(runner: Any) -> int:
    """Start ``runner`` and watch it in the batch screen; the batch's exit code."""
    from agentdeck.tui.app import AgentDeckApp, _keymap_or_warn

    runner.start()
    app = AgentDeckApp(lambda: BatchScreen(runner=runner), keymap=_keymap_or_warn())
    app.run()
    if not runner.join(0):
        # the app was closed without waiting (e.g. ctrl+q): stop the batch cleanly
        print("agentdeck: stopping the batch's runs (closing their logs)…")
        runner.stop("interrupted (the app was closed)")
        if not runner.join(120):
            runner.kill()
            runner.join(30)
    if runner.summary is not None:
        from rich.console import Console

        from agentdeck.tui.batchview import print_summary

        print_summary(Console(highlight=False), runner.summary)
    if runner.error is not None:
        print(f"agentdeck: the batch failed: {runner.error!r}")
        return 3
    return int(runner.exit_code) if runner.exit_code is not None else 3


def run_batch_report_app(batch_path: Path) -> int:
    """The batch screen for a batch directory (from its files)."""
    from agentdeck.engine.batch.manifest import BatchDir
    from agentdeck.tui.app import AgentDeckApp, _keymap_or_warn

    bd = BatchDir(batch_path)
    app = AgentDeckApp(lambda: BatchScreen(batch_dir=bd), keymap=_keymap_or_warn())
    app.run()
    return 0


__all__ = ["BatchScreen", "run_batch_app", "run_batch_report_app"]
