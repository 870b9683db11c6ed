"""The metrics pane: the grade and its checks, live plots of metric events, and
(for calibration tasks) the confusion matrix and a reliability diagram."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TypeVar

from rich.console import Group, RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from agentdeck.engine.events import Grade
from agentdeck.tui import format as fmt
from agentdeck.tui.runstate import RunState
from agentdeck.tui.widgets.calibration import checks_lines, confusion_table, reliability_lines
from agentdeck.tui.widgets.plot import Lines, Series, line_chart


def render_grade(grade: Grade | None, finished: bool, palette: dict[str, str]) -> RenderableType:
    if grade is None:
        return Text("not graded yet" if not finished else "not graded", style="dim")
    parts: list[RenderableType] = []
    head = Text("grade: ", style="bold")
    if grade.passed:
        head.append(" PASSED ", style=f"bold on {palette['success']}")
    else:
        head.append(
            " FAILED " if grade.submitted else " NOT SUBMITTED ",
            style=f"bold on {palette['error']}",
        )
    if grade.criteria:
        head.append(f"  {grade.criteria}", style="dim")
    parts.append(head)
    parts.extend(checks_lines(grade.checks, palette))
    if grade.metrics:
        m = Text("  ")
        for k, v in grade.metrics.items():
            if isinstance(v, int | float | str | bool) or v is None:
                m.append(f"{k} ", style="bold")
                m.append(f"{fmt.value(v)}   ")
        parts.append(m)
    gap = self_report_line(grade, palette)
    if gap is not None:
        parts.append(gap)
    reason = grade.reason
    if reason:
        parts.append(Text(f"  {reason}", style="italic"))
    return Group(*parts)


def self_report_line(grade: Grade, palette: dict[str, str]) -> Text | None:
    """The agent's own validation metric next to the hidden test one, and the gap
    (repository tasks: ``Final Validation Metric: X`` from its output)."""
    sr = grade.details.get("self_reported")
    if not isinstance(sr, dict):
        return None
    name = str(sr.get("metric") or "metric")
    val, test = sr.get("validation"), sr.get("test")
    line = Text("  ")
    if not isinstance(val, int | float):
        line.append(
            f"no self-reported validation {name} (no 'Final Validation Metric:' line)",
            style="dim italic",
        )
        return line
    line.append("self-reported validation ", style="bold")
    line.append(f"{fmt.value(val)}   ")
    if isinstance(test, int | float):
        line.append(f"hidden test {name} ", style="bold")
        line.append(f"{fmt.value(test)}   ")
        diff = float(test) - float(val)
        line.append("gap ", style="bold")
        line.append(
            f"{diff:+.4f}",
            style=palette["warning"] if abs(diff) >= 0.02 else palette["success"],
        )
    return line


def render_calibration(grade: Grade | None, pal: dict[str, str]) -> RenderableType | None:
    cal = grade.calibration() if grade is not None else None
    if cal is None:
        return None
    parts: list[RenderableType] = []
    if cal.confusion_matrix:
        parts += [Text(""), confusion_table(cal.confusion_matrix, cal.class_names or None, pal)]
    if cal.reliability:
        bins = cal.reliability
        parts += [Text(""), Lines(lambda w: reliability_lines(bins, w, pal))]
    return Group(*parts) if parts else None


T = TypeVar("T")
_FOLD = re.compile(r"(^|/)fold\d+/")


def group_series(items: Iterable[tuple[str, T]]) -> dict[str, list[tuple[str, T]]]:
    """Series that differ only in a ``foldN/`` part (the trainer's cross-fitting:
    ``cnn/fold1/val_acc`` ... ``cnn/fold5/val_acc``) share one chart, ``cnn/fold*/val_acc``."""
    groups: dict[str, list[tuple[str, T]]] = {}
    for name, item in items:
        groups.setdefault(_FOLD.sub(r"\1fold*/", name), []).append((name, item))
    return groups


def render_metrics(
    state: RunState, playhead_step: int | None, palette: dict[str, str], *, chart_height: int = 7
) -> RenderableType:
    parts: list[RenderableType] = [render_grade(state.grade, state.finished, palette), Text("")]
    if not state.metrics:
        parts.append(
            Text(
                "No metric events yet. Metrics logged by the agent's code or "
                "the trainer are plotted here.",
                style="dim",
            )
        )
    colors = [palette["primary"], palette["accent"], palette["success"], palette["warning"]]
    # the agent's and the trainer's metrics first, system gauges (CPU, memory) last
    ordered = sorted(state.metrics.items(), key=lambda kv: (kv[1].source == "system", kv[0]))
    for i, (key, members) in enumerate(group_series(ordered).items()):
        color = colors[i % len(colors)]
        last = members[-1][1]
        ys = [y for _, m in members for y in m.ys]
        title = Text(key, style=f"bold {color}")
        if len(members) > 1:
            title.append(f"  {len(members)} series", style=f"{color}")
        title.append(
            f"  last {fmt.value(last.last)}  min {fmt.value(min(ys))}  "
            f"max {fmt.value(max(ys))}  n={len(ys)}",
            style="dim",
        )
        if last.source:
            title.append(f"  ({last.source})", style="dim")
        parts.append(title)
        series = [
            Series(
                name, m.xs, m.ys, m.steps, color if len(members) == 1 else colors[j % len(colors)]
            )
            for j, (name, m) in enumerate(members)
        ]
        parts.append(Lines(_chart(series, chart_height, playhead_step)))
    cal = render_calibration(state.grade, palette)
    if cal is not None:
        parts.append(cal)
    return Group(*parts)


def _chart(series: list[Series], height: int, playhead: int | None) -> Callable[[int], list[Text]]:
    return lambda width: line_chart(series, width, height, playhead=playhead)


class MetricsPane(VerticalScroll):
    def compose(self) -> ComposeResult:
        yield Static(id="metrics-body")

    def show(self, renderable: RenderableType) -> None:
        self.query_one("#metrics-body", Static).update(renderable)
