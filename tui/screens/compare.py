"""Two runs side by side: steps aligned by number, the first divergence marked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.console import Group, RenderableType
from rich.rule import Rule
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static

from agentdeck.engine.log import RunLog
from agentdeck.tui import format as fmt
from agentdeck.tui.compare import (
    Alignment,
    Cell,
    SummaryRow,
    align,
    essential_rows,
    other_rows,
)
from agentdeck.tui.runstate import RunState
from agentdeck.tui.screens.dialogs import RenderableScreen
from agentdeck.tui.sources import STATE_TYPES
from agentdeck.tui.stepdata import StepSummary, read_step
from agentdeck.tui.stepindex import StepIndex
from agentdeck.tui.theme import DEFAULT_PALETTE, palette, syntax_theme
from agentdeck.tui.widgets.detail import StepDetail, render_step
from agentdeck.tui.widgets.files import FilesModel, step_diffs, tree_lines
from agentdeck.tui.widgets.footer import AppFooter
from agentdeck.tui.widgets.metrics import GROUP_TITLES
from agentdeck.tui.widgets.plot import Sized
from agentdeck.tui.widgets.virtual_list import VirtualList


def _label(log: RunLog) -> str:
    h = log.header
    name = (
        log.path.parent.name
        if log.path and log.path.name == "events.jsonl"
        else (log.path.name if log.path else log.name)
    )
    if log.format == "inspect":
        # run.eval#7:2 -> "#7:2 run.eval": the sample stays in sight when clipped
        base, sep, sample = name.rpartition("#")
        name = f"{sep}{sample} {base}"
    if h is None:
        return name
    return f"{name} ({h.agent}/{h.model})" if h.model else f"{name} ({h.agent})"


def load_state(log: RunLog) -> RunState:
    state = RunState()
    for i, t in enumerate(log.line_types()):
        if t in STATE_TYPES:
            try:
                state.apply(log.event_at(i))
            except Exception:  # noqa: BLE001 - a damaged line is skipped, as in the run screen
                continue
    return state


#: The B−A column: "≠ " and a difference of at most 8 characters.
DELTA_W = 10


def rows_table(
    rows: list[SummaryRow],
    a_label: str,
    b_label: str,
    pal: dict[str, str] = DEFAULT_PALETTE,
    *,
    header: bool = True,
    label_w: int | None = None,
) -> Table:
    """A, B and the difference, one row a field; values that differ are bold and the
    row marked ≠ (with the change where both are numbers)."""
    t = Table(
        box=None,
        padding=(0, 1),
        show_edge=False,
        header_style="bold",
        expand=True,
        show_header=header,
    )
    if label_w is None:
        label_w = min(28, max([len(r.label) for r in rows] + [6]))
    t.add_column("", no_wrap=True, overflow="ellipsis", width=label_w, style="bold")
    t.add_column(a_label, no_wrap=True, overflow="ellipsis", ratio=1)
    t.add_column(b_label, no_wrap=True, overflow="ellipsis", ratio=1)
    t.add_column("B−A", no_wrap=True, justify="right", width=DELTA_W)
    for r in rows:
        mark = Text("≠ ", style=f"bold {pal['warning']}") if r.differs else Text("")
        if r.delta:
            mark.append(r.delta, style="bold" if r.differs else "")
        label = fmt.clip_middle(r.label, label_w, tail=max(5, label_w * 2 // 3))
        t.add_row(label, _cell(r.a, r.differs, pal), _cell(r.b, r.differs, pal), mark)
    return t


def sections_table(
    rows: list[SummaryRow], a_label: str, b_label: str, pal: dict[str, str] = DEFAULT_PALETTE
) -> RenderableType:
    """``rows_table`` in sections by ``SummaryRow.group``: the essentials, the grade's
    other metrics, then the logged metrics by source. A long metric name gives way
    to the values when the box is narrow (cut in the middle: its end tells it apart)."""
    groups: dict[str, list[SummaryRow]] = {}
    for r in rows:
        groups.setdefault(r.group, []).append(r)

    def make(width: int) -> RenderableType:
        parts: list[RenderableType] = []
        for i, (group, members) in enumerate(groups.items()):
            values_w = max([len(c.text) for r in members for c in (r.a, r.b)] + [6])
            room = width - 2 * values_w - DELTA_W - 2 * 4
            label_w = max(10, min(44, max(len(r.label) for r in members), room))
            if group:
                title = Text(
                    "grade (the other metrics)"
                    if group == "grade"
                    else GROUP_TITLES.get(group, group),
                    style=f"bold {pal['primary']}",
                )
                if any("fold*" in r.label for r in members):
                    title.append("  fold*: the mean of the folds' last values", style="dim")
                parts += [Text(""), title]
            parts.append(rows_table(members, a_label, b_label, pal, header=i == 0, label_w=label_w))
        return Group(*parts)

    return Sized(make)


def _cell(c: Cell, differs: bool, pal: dict[str, str]) -> Text:
    style = {True: pal["success"], False: pal["error"]}.get(c.ok, "") if c.ok is not None else ""
    return Text(c.text, style=f"bold {style}" if differs else style)


def summary_table(
    a: RunLog,
    b: RunLog,
    sa: RunState,
    sb: RunState,
    divergence: int | None,
    width: int = 160,
    pal: dict[str, str] = DEFAULT_PALETTE,
) -> RenderableType:
    """The essentials of both runs (status and grade, the task's key metrics, steps,
    tokens, cost, time) with their differences, and where the runs diverge; ``m``
    shows every other metric."""
    rows = essential_rows(sa, sb)
    side = max(12, (width - 20) // 2)
    table = rows_table(
        rows, fmt.clip("A " + _label(a), side), fmt.clip("B " + _label(b), side), pal
    )
    div = Text("diverges: ", style="bold")
    if divergence is None:
        div.append("never (same tool calls and inputs)", style=pal["success"])
    else:
        div.append(f"◆ step {divergence}", style=f"bold {pal['warning']}")
        div.append(" · d goes there", style="dim")
    more = len(other_rows(sa, sb))
    if more:
        div.append(f" · m: {more} more metric{'s' if more != 1 else ''}", style="dim")
    return Group(table, div)


class MetricsCompareScreen(RenderableScreen):
    """Every metric of both runs (``m`` on the compare screen); m, escape or q closes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("m", "close", "Close", show=False, id="compare_metrics.close")
    ]


class CompareView(VirtualList):
    COMPONENT_CLASSES = VirtualList.COMPONENT_CLASSES | {
        "compare--diff",
        "compare--diverge",
        "compare--same",
    }
    DEFAULT_CSS = """
    CompareView {
        & > .compare--diff { color: $warning; }
        & > .compare--diverge { color: $warning; text-style: bold reverse; }
        & > .compare--same { color: $text-muted; }
    }
    """

    def __init__(self, a: StepIndex, b: StepIndex, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.a, self.b = a, b
        self.alignment: Alignment | None = None
        self.steps: list[int] = sorted(set(a.log_steps) | set(b.log_steps))

    def _side(self, idx: StepIndex, step: int) -> StepSummary | None:
        i = idx.index_of(step)
        return None if i is None else idx.summary(i)

    def render_row(self, index: int, width: int) -> Text:
        step = self.steps[index]
        al = self.alignment
        diverge = al is not None and al.divergence == step
        differs = al is not None and al.differs(step)
        mark = "◆" if diverge else ("≠" if differs else ("=" if al is not None else " "))
        style = (
            self.style_of("compare--diverge")
            if diverge
            else (self.style_of("compare--diff") if differs else self.style_of("compare--same"))
        )
        text = Text(f"{step:>5} ")
        text.append(mark, style)
        side_w = max(8, (width - 9) // 2)
        for k, idx in enumerate((self.a, self.b)):
            s = self._side(idx, step)
            cell = "—" if s is None else f"{', '.join(s.tools) or '(none)'}: {s.gist}"
            text.append(" │ " if k else " ", self.style_of("compare--same"))
            text.append(f"{fmt.clip(cell, side_w - 1):<{side_w - 1}}")
        return text


class CompareScreen(Screen[None]):
    HELP_TITLE = "compare"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "app.quit", "Quit", id="compare.quit"),
        Binding("escape", "back", "Back", id="compare.back"),
        Binding("d", "divergence", "Go to divergence", id="compare.divergence"),
        Binding("n", "next_diff", "Next difference", id="compare.next_diff"),
        Binding("N", "prev_diff", "Previous difference", show=False, id="compare.prev_diff"),
        Binding("m", "all_metrics", "All metrics", id="compare.metrics"),
    ]

    @dataclass
    class Loaded(Message):
        alignment: Alignment
        state_a: RunState
        state_b: RunState

    def __init__(self, a: RunLog, b: RunLog) -> None:
        super().__init__()
        self.a, self.b = a, b
        self.ia = StepIndex(a, RunState())
        self.ib = StepIndex(b, RunState())
        self.alignment: Alignment | None = None
        #: Each run's file_change events (repository tasks), read on first use.
        self._files: dict[int, FilesModel] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="cmp-summary")
        yield Static(id="cmp-header")
        yield CompareView(self.ia, self.ib, id="cmp-view")
        with Horizontal(id="cmp-details"):
            with Vertical(classes="cmp-side"):
                yield Static(Text("A " + _label(self.a), style="bold"), classes="cmp-side-title")
                yield StepDetail(id="cmp-a")
            with Vertical(classes="cmp-side"):
                yield Static(Text("B " + _label(self.b), style="bold"), classes="cmp-side-title")
                yield StepDetail(id="cmp-b")
        yield AppFooter()

    @property
    def view(self) -> CompareView:
        return self.query_one(CompareView)

    def on_mount(self) -> None:
        self.view.set_count(len(self.view.steps))
        self.view.focus()
        self.query_one("#cmp-summary", Static).update(Text("comparing…", style="dim"))
        self._show(0)
        self._load()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _load(self) -> None:
        al = align(self.a, self.b)
        self.post_message(self.Loaded(al, load_state(self.a), load_state(self.b)))

    @on(Loaded)
    def _loaded(self, msg: Loaded) -> None:
        self.alignment = msg.alignment
        self.states = (msg.state_a, msg.state_b)
        self.view.alignment = msg.alignment
        self.view.invalidate()
        self._summary()
        if msg.alignment.divergence is not None:
            self.action_divergence()

    def _summary(self) -> None:
        if self.alignment is None:
            return
        sa, sb = self.states
        self.query_one("#cmp-summary", Static).update(
            summary_table(
                self.a,
                self.b,
                sa,
                sb,
                self.alignment.divergence,
                self.size.width or 160,
                palette(self.app),
            )
        )

    def on_resize(self) -> None:
        self._summary()
        width = self.view.size.width or self.size.width
        side_w = max(8, (width - 9) // 2)
        header = Text("  step   ", style="bold")
        header.append(f"{fmt.clip('A ' + _label(self.a), side_w - 1):<{side_w}}", style="bold")
        header.append(" " + fmt.clip("B " + _label(self.b), side_w - 1), style="bold")
        self.query_one("#cmp-header", Static).update(header)

    @on(VirtualList.Highlighted, "#cmp-view")
    def _highlighted(self, msg: VirtualList.Highlighted) -> None:
        self._show(msg.index)

    def _show(self, index: int) -> None:
        if not self.view.steps:
            return
        step = self.view.steps[index]
        theme = syntax_theme(self.app)
        for log, idx, wid in ((self.a, self.ia, "#cmp-a"), (self.b, self.ib, "#cmp-b")):
            detail = self.query_one(wid, StepDetail)
            if idx.index_of(step) is None:
                detail.show(Text(f"(no step {step} in this run)", style="dim"))
                continue
            parts: list[RenderableType] = [
                render_step(read_step(log, step), syntax_theme=theme, pal=palette(self.app))
            ]
            parts += self._files_parts(log, step, theme)
            detail.show(Group(*parts))

    def _files_parts(self, log: RunLog, step: int, theme: str) -> list[RenderableType]:
        """The run's repository after ``step`` and the step's diffs (repository tasks)."""
        model = self._files.get(id(log))
        if model is None:
            model = self._files[id(log)] = FilesModel()
            model.update(log)
        if not model.events:
            return []
        tree = model.tree(step)
        pal = palette(self.app)
        return [
            Rule(f"files after step {step}", align="left", style="dim"),
            tree_lines(tree, pal),
            Rule(f"changes in step {step}", align="left", style="dim"),
            step_diffs(tree, theme, pal),
        ]

    def action_divergence(self) -> None:
        if self.alignment is None or self.alignment.divergence is None:
            self.notify("The runs made the same tool calls.", timeout=2)
            return
        self.view.move_to(self.view.steps.index(self.alignment.divergence), center=True)

    def _diff_steps(self) -> list[int]:
        if self.alignment is None:
            return []
        return [i for i, s in enumerate(self.view.steps) if self.alignment.differs(s)]

    def action_next_diff(self) -> None:
        later = [i for i in self._diff_steps() if i > self.view.cursor]
        if later:
            self.view.move_to(later[0], center=True)

    def action_prev_diff(self) -> None:
        earlier = [i for i in self._diff_steps() if i < self.view.cursor]
        if earlier:
            self.view.move_to(earlier[-1], center=True)

    def action_all_metrics(self) -> None:
        if self.alignment is None:
            self.notify("Still reading the runs…", timeout=2)
            return
        sa, sb = self.states
        pal = palette(self.app)
        rows = essential_rows(sa, sb) + other_rows(sa, sb)
        table = sections_table(rows, "A " + _label(self.a), "B " + _label(self.b), pal)
        self.app.push_screen(
            MetricsCompareScreen("Every metric of both runs (m or escape closes)", table)
        )

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()
