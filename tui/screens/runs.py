"""The runs screen: every run in a log directory; sort, filter, open, compare."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static

from agentdeck.engine.log import LogError, RunLog
from agentdeck.tui import format as fmt
from agentdeck.tui.runs import SORT_KEYS, RunInfo, filter_runs, find_runs, read_run_info
from agentdeck.tui.theme import palette
from agentdeck.tui.widgets.footer import AppFooter

#: (title, key, most characters shown, fewest when the screen is narrow), in screen order.
COLUMNS = (
    ("", "mark", 1, 1),
    ("run", "name", 36, 16),
    ("task", "task", 24, 13),
    ("agent/model", "agent", 30, 12),
    ("status", "status", 24, 9),
    ("steps", "steps", 9, 5),
    ("tokens", "tokens", 7, 6),
    ("cost", "cost", 9, 7),
    ("grade", "grade", 13, 13),
    ("date", "date", 16, 16),
)
#: The columns a run is told apart by, in the order they get room: at their fewest
#: characters first, then widened to their widest cell while there is room.
ESSENTIAL = ("mark", "name", "task", "status", "grade", "agent")
#: Then these, each only if it fits whole, in this order (the date is dropped first).
OPTIONAL = ("steps", "cost", "tokens", "date")
#: Each cell is padded by one column on either side.
CELL_PAD = 2


def plan_columns(width: int, needs: dict[str, int]) -> dict[str, int]:
    """The columns to show in ``width`` cells and the characters each gets.

    ``needs`` is each column's widest cell (its title included)."""
    spec = {key: (most, fewest) for _, key, most, fewest in COLUMNS}
    want = {k: max(1, min(needs.get(k, 1), spec[k][0])) for k in spec}
    plan: dict[str, int] = {}
    used = 0
    for key in ESSENTIAL:
        w = min(want[key], spec[key][1])
        if used + w + CELL_PAD <= width or key in ("mark", "name"):
            plan[key] = w
            used += w + CELL_PAD
    for key in ESSENTIAL:
        if key in plan and used < width:
            grow = min(want[key] - plan[key], width - used)
            plan[key] += grow
            used += grow
    for key in OPTIONAL:
        if used + want[key] + CELL_PAD <= width:
            plan[key] = want[key]
            used += want[key] + CELL_PAD
    return {k: plan[k] for _, k, _, _ in COLUMNS if k in plan}


def short_name(r: RunInfo, with_task: bool) -> str:
    """The run's name, without its task when the task has a column of its own
    (``20261202-011920-noisy-labels-4a7a`` -> ``20261202-011920…4a7a``)."""
    if (
        with_task
        and not r.batch
        and r.task
        and re.match(rf"\d{{8}}-\d{{6}}-{re.escape(r.task)}-", r.name)
    ):
        return r.name.replace(f"-{r.task}-", "…", 1)  # only agentdeck's own run ids
    return r.name


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
        #: The columns shown and the characters each gets (``plan_columns``).
        self.widths: dict[str, int] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="runs-title")
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Input(
            placeholder="filter: words to match in run, task, agent, status, grade",
            id="runs-filter",
        )
        yield AppFooter()

    @property
    def table(self) -> DataTable:
        return self.query_one("#runs-table", DataTable)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.widths)

    def on_mount(self) -> None:
        self._set_columns(self.size.width or 80)
        self.table.focus()
        self._title("scanning…")
        self.scan()

    def _needs(self) -> dict[str, int]:
        """Each column's widest cell over the runs shown (and its title)."""
        needs = {key: len(title) for title, key, _, _ in COLUMNS}
        for r in self.shown:
            for key, text in self._texts(r, with_task=True).items():
                needs[key] = max(needs[key], len(text))
        return needs

    def _set_columns(self, width: int) -> bool:
        """Lay the columns out for ``width``; True when they changed (the rows must be
        filled again)."""
        # the vertical scrollbar (2 columns) shows when the rows do not fit
        rows_fit = len(self.shown) + 1 <= (self.table.size.height or self.size.height - 3)
        widths = plan_columns(width - (0 if rows_fit else 2), self._needs())
        if widths == self.widths:
            return False
        self.widths = widths
        self.table.clear(columns=True)
        for title, key, _, _ in COLUMNS:
            if key in widths:
                self.table.add_column(title, key=key, width=widths[key])
        return True

    def on_resize(self) -> None:
        if self._set_columns(self.size.width) and self.runs:
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
        self._set_columns(self.size.width or 80)
        table.clear()
        for r in self.shown:
            table.add_row(*self._cells(r))
        if current is not None:
            for i, r in enumerate(self.shown):
                if r.path == current:
                    table.move_cursor(row=i)
        self._title()

    def _texts(self, r: RunInfo, *, with_task: bool) -> dict[str, str]:
        """Each column's text for the run, before it is cut to the column's width."""
        return {
            "mark": "●" if r.path in self.marked else " ",
            "name": ("▸ " if r.batch else "") + short_name(r, with_task),
            "task": r.task,
            "agent": r.agent_model,
            "status": r.status,
            "steps": f"{r.steps} runs"
            if r.batch
            else f"{r.samples} samples"
            if r.samples is not None
            else (f"{r.steps}/{r.max_steps}" if r.max_steps else str(r.steps)),
            "tokens": fmt.tokens(r.tokens),
            "cost": fmt.cost(r.cost_usd),
            "grade": r.grade_text,
            "date": r.date,
        }

    def _cells(self, r: RunInfo) -> list[Text | str]:
        pal = palette(self.app)
        widths = self.widths
        texts = self._texts(r, with_task="task" in widths)
        if r.model and len(texts["agent"]) > widths.get("agent", 0):
            texts["agent"] = r.model  # narrow: the model says more than the agent's name
        styles = {
            "mark": f"bold {pal['warning']}",
            "name": "bold" if r.batch else "",
            "status": pal["error"] if r.problem else "",
            "grade": "dim"
            if r.passed is None
            else (f"bold {pal['success']}" if r.passed else f"bold {pal['error']}"),
        }
        cells: list[Text | str] = []
        for key, w in widths.items():
            clip = fmt.clip_middle if key == "name" else fmt.clip
            cells.append(Text(clip(texts[key], w), style=styles.get(key, "")))
        return cells

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
