"""The runs screen: every run in a log directory; sort, filter, open, compare."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from agentdeck.engine.log import LogError, RunLog
from agentdeck.tui import format as fmt
from agentdeck.tui.runs import SORT_KEYS, RunInfo, filter_runs, find_runs, read_run_info
from agentdeck.tui.theme import palette

#: (title, key); the narrow set is used below WIDE columns of screen.
COLUMNS = (
    ("", "mark"),
    ("run", "name"),
    ("task", "task"),
    ("agent/model", "agent"),
    ("status", "status"),
    ("steps", "steps"),
    ("tokens", "tokens"),
    ("cost", "cost"),
    ("grade", "grade"),
    ("date", "date"),
)
NARROW = ("mark", "name", "agent", "status", "steps", "grade")
WIDE = 130
SORT_CYCLE = ("date", "task", "agent", "status", "steps", "tokens", "cost", "grade", "name")


class RunsScreen(Screen):
    HELP_TITLE = "runs"
    BINDINGS = [
        Binding("q", "app.quit", "Quit", id="runs.quit"),
        Binding("enter", "open", "Open", id="runs.open"),
        Binding("space", "mark", "Mark", id="runs.mark"),
        Binding("c", "compare", "Compare marked", id="runs.compare"),
        Binding("s", "sort", "Sort", id="runs.sort"),
        Binding("r", "reverse", "Reverse", show=False, id="runs.reverse"),
        Binding("slash", "filter", "Filter", id="runs.filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="runs.clear_filter"),
        Binding("R", "rescan", "Rescan", show=False, id="runs.rescan"),
        Binding("j", "cursor_down", "Down", show=False, id="runs.down"),
        Binding("k", "cursor_up", "Up", show=False, id="runs.up"),
        Binding("g", "first", "First", show=False, id="runs.first"),
        Binding("G", "last", "Last", show=False, id="runs.last"),
    ]

    @dataclass
    class Scanned(Message):
        runs: list[RunInfo]

    def __init__(self, log_dir: Path) -> None:
        super().__init__()
        self.log_dir = log_dir
        self.runs: list[RunInfo] = []
        self.shown: list[RunInfo] = []
        self.marked: list[Path] = []
        self.sort_key = "date"
        self.reverse = True
        self.filter_text = ""
        self.columns: tuple[str, ...] = ()

    def compose(self) -> ComposeResult:
        yield Static(id="runs-title")
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Input(
            placeholder="filter: words to match in run, task, agent, status, grade",
            id="runs-filter",
        )
        yield Footer()

    @property
    def table(self) -> DataTable:
        return self.query_one("#runs-table", DataTable)

    def on_mount(self) -> None:
        self._set_columns(self.size.width or 80)
        self.table.focus()
        self._title("scanning…")
        self.scan()

    def _set_columns(self, width: int) -> None:
        keys = tuple(k for _, k in COLUMNS) if width >= WIDE else NARROW
        if keys == self.columns:
            return
        self.columns = keys
        self.table.clear(columns=True)
        for title, key in COLUMNS:
            if key in keys:
                self.table.add_column(title, key=key)

    def on_resize(self) -> None:
        before = self.columns
        self._set_columns(self.size.width)
        if self.columns != before and self.runs:
            self._rebuild()

    def _title(self, note: str = "") -> None:
        what = "Samples of" if self.log_dir.is_file() else "Runs in"
        t = Text(f" {what} {self.log_dir}", style="bold")
        t.append(
            f"  {len(self.shown)}/{len(self.runs)} shown · sort: {self.sort_key} "
            f"{'↓' if self.reverse else '↑'}",
            style="dim",
        )
        if self.filter_text:
            t.append(f" · filter: {self.filter_text!r}", style="dim")
        if self.marked:
            t.append(f" · {len(self.marked)} marked (c compares two)", style="dim")
        if note:
            t.append(f" · {note}", style="italic")
        self.query_one("#runs-title", Static).update(t)

    @work(thread=True, exclusive=True, group="scan", exit_on_error=False)
    def scan(self) -> None:
        try:
            paths = find_runs(self.log_dir)
        except OSError as e:
            self.app.call_from_thread(
                self.notify, f"cannot list {self.log_dir}: {e.strerror}", severity="error"
            )
            paths = []
        from agentdeck.tui.batches import find_batches, read_batch_info

        batches = [read_batch_info(b) for b in find_batches(self.log_dir)]
        self.post_message(self.Scanned(batches + [read_run_info(p) for p in paths]))

    @on(Scanned)
    def _scanned(self, msg: Scanned) -> None:
        self.runs = msg.runs
        self._rebuild()
        # DataTable (Textual 8.2.8) keeps rows drawn before it measured its columns;
        # filling it once more after that refresh draws them at their full width
        self.call_after_refresh(self._rebuild)
        if not self.runs:
            self._title(
                "no samples in this log"
                if self.log_dir.is_file()
                else "no runs found (looked for */events.jsonl, *.jsonl, *.md, *.eval, *.json)"
            )

    def _rebuild(self) -> None:
        table = self.table
        current = self._current_path()
        self.shown = sorted(
            filter_runs(self.runs, self.filter_text),
            key=SORT_KEYS[self.sort_key],
            reverse=self.reverse,
        )
        table.clear()
        for r in self.shown:
            table.add_row(*self._cells(r))
        if current is not None:
            for i, r in enumerate(self.shown):
                if r.path == current:
                    table.move_cursor(row=i)
        self._title()

    def _cells(self, r: RunInfo) -> list[Text | str]:
        narrow = len(self.columns) < len(COLUMNS)
        pal = palette(self.app)
        grade_style = (
            "dim"
            if r.passed is None
            else (f"bold {pal['success']}" if r.passed else f"bold {pal['error']}")
        )
        cells: dict[str, Text | str] = {
            "mark": Text("●", style=f"bold {pal['warning']}")
            if r.path in self.marked
            else Text(" "),
            "name": Text(
                ("▸ " if r.batch else "") + fmt.clip(r.name, 20 if narrow else 36),
                style="bold" if r.batch else "",
            ),
            "task": r.task,
            "agent": fmt.clip(r.model or r.agent, 18) if narrow else fmt.clip(r.agent_model, 30),
            "status": Text(
                fmt.clip(r.status, 14 if narrow else 24), style=pal["error"] if r.problem else ""
            ),
            "steps": f"{r.steps} runs"
            if r.batch
            else f"{r.samples} samples"
            if r.samples is not None
            else (f"{r.steps}/{r.max_steps}" if r.max_steps else str(r.steps)),
            "tokens": fmt.tokens(r.tokens),
            "cost": fmt.cost(r.cost_usd),
            "grade": Text(r.grade_text, style=grade_style),
            "date": r.date,
        }
        return [cells[k] for k in self.columns]

    def _current(self) -> RunInfo | None:
        if not self.shown or self.table.cursor_row < 0:
            return None
        return self.shown[min(self.table.cursor_row, len(self.shown) - 1)]

    def _current_path(self) -> Path | None:
        r = self._current()
        return r.path if r else None

    # -- actions --------------------------------------------------------------------------

    def action_cursor_down(self) -> None:
        self.table.action_cursor_down()

    def action_cursor_up(self) -> None:
        self.table.action_cursor_up()

    def action_first(self) -> None:
        self.table.move_cursor(row=0)

    def action_last(self) -> None:
        self.table.move_cursor(row=max(0, len(self.shown) - 1))

    def action_sort(self) -> None:
        i = SORT_CYCLE.index(self.sort_key)
        self.sort_key = SORT_CYCLE[(i + 1) % len(SORT_CYCLE)]
        self._rebuild()

    def action_reverse(self) -> None:
        self.reverse = not self.reverse
        self._rebuild()

    @on(DataTable.HeaderSelected)
    def _header(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
        if key not in SORT_KEYS:
            return
        if key == self.sort_key:
            self.reverse = not self.reverse
        else:
            self.sort_key = key
        self._rebuild()

    def action_filter(self) -> None:
        box = self.query_one("#runs-filter", Input)
        box.add_class("-visible")
        box.value = self.filter_text
        box.focus()

    @on(Input.Changed, "#runs-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        self._rebuild()

    @on(Input.Submitted, "#runs-filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        event.input.remove_class("-visible")
        self.table.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#runs-filter", Input)
        box.remove_class("-visible")
        if self.filter_text:
            self.filter_text = ""
            self._rebuild()
        self.table.focus()

    def action_rescan(self) -> None:
        self._title("scanning…")
        self.scan()

    def action_mark(self) -> None:
        r = self._current()
        if r is None or r.batch:
            return
        if r.path in self.marked:
            self.marked.remove(r.path)
        else:
            self.marked.append(r.path)
            del self.marked[:-2]
        self._rebuild()

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        r = self._current()
        if r is None:
            return
        if r.problem:
            self.notify(f"{r.name}: {r.problem}", severity="error")
            return
        if r.batch:
            from agentdeck.engine.batch.manifest import BatchDir
            from agentdeck.tui.screens.batch import BatchScreen

            self.app.push_screen(BatchScreen(batch_dir=BatchDir(r.path)))
            return
        if r.kind == "inspect-log" and r.samples != 1:
            # an Inspect log opens as the list of its samples
            self.app.push_screen(RunsScreen(r.path))
            return
        from agentdeck.tui.screens.run import RunScreen

        follow = not r.finished and r.path.suffix == ".jsonl"
        try:
            log = RunLog.open(r.path, follow=follow)
        except LogError as e:
            self.notify(str(e), severity="error")
            return
        self.app.push_screen(RunScreen(log, mode="follow" if follow else "replay"))

    def action_compare(self) -> None:
        if len(self.marked) != 2:
            self.notify("Mark two runs with space, then press c.", timeout=3)
            return
        whole = [r.name for r in self.runs if r.path in self.marked and r.kind == "inspect-log"]
        if whole:
            self.notify(
                f"{whole[0]} is a whole Inspect log: open it (enter) and mark two samples.",
                severity="warning",
            )
            return
        from agentdeck.tui.screens.compare import CompareScreen

        logs = []
        for p in self.marked:
            try:
                logs.append(RunLog.open(p))
            except LogError as e:
                self.notify(str(e), severity="error")
                return
        self.app.push_screen(CompareScreen(logs[0], logs[1]))
