"""The metrics pane, in the order a person reads a run's results:

1. the grade and each check of the task's pass rule (✓/✗, the value, a gauge
   against the threshold when both are fractions);
2. the task's key figures: the confusion matrix and reliability diagram of a
   calibration grade, then the grade's other metrics on one line;
3. metrics that have a single value (one point, or the same value every time:
   a temperature, ECE before/after scaling, a constant learning rate) as one
   compact table;
4. a chart for each metric that changes, grouped by source: the agent's own
   code, the trainer, then the system gauges.

The pane scrolls from the keyboard once focused (``4`` opens and focuses it).
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Group, RenderableType
from rich.rule import Rule
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from agentdeck.engine.events import Check, Grade
from agentdeck.tui import format as fmt
from agentdeck.tui.runstate import MetricSeries, RunState, group_rank, group_series
from agentdeck.tui.widgets.calibration import ConfusionMatrix, reliability_lines
from agentdeck.tui.widgets.plot import Lines, Series, Sized, line_chart
from agentdeck.tui.widgets.scroll import KeyScroll

__all__ = ["MetricsPane", "group_series", "render_grade", "render_metrics"]

#: Titles of the source groups (``MetricSeries.group``).
GROUP_TITLES = {
    "agent": "agent (logged by the agent's code)",
    "trainer": "trainer",
    "system": "system (the run's CPU and memory)",
}


def _number(v: object) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def check_lines(checks: list[Check], width: int, pal: dict[str, str]) -> list[Text]:
    """One line a check: ✓/✗, its text, the value, and (when the value and the
    threshold are fractions and there is room) a gauge with ┃ at the threshold."""
    if not checks:
        return []
    texts = [c.text or c.name or "?" for c in checks]
    values = [fmt.value(c.value) if c.value is not None else "-" for c in checks]
    text_w = min(max(len(t) for t in texts), max(12, width // 2))
    value_w = max(len(v) for v in values)
    gauge_w = min(30, width - (3 + text_w + 2 + value_w + 2) - 2)
    out = []
    for c, label, shown in zip(checks, texts, values, strict=True):
        met = c.met
        mark, color = (
            ("✓", pal["success"]) if met else (("✗", pal["error"]) if met is False else ("?", ""))
        )
        line = Text(f" {mark} ", style=f"bold {color}" if color else "dim")
        line.append(f"{fmt.clip(label, text_w):<{text_w}}  ")
        line.append(f"{shown:>{value_w}}", style="bold")
        v, thr = _number(c.value), c.threshold
        if gauge_w >= 12 and v is not None and thr is not None and 0 <= v <= 1 and 0 < thr <= 1:
            line.append("  ")
            line.append_text(_gauge(v, thr, gauge_w, color or "default"))
        out.append(line)
    return out


def _gauge(value: float, threshold: float, width: int, color: str) -> Text:
    """0 to 1, or for a small threshold (an ECE of 0.04) 0 to twice the larger of the
    two, so that the threshold sits inside the bar rather than at its left end."""
    top = 1.0 if threshold >= 0.25 else min(1.0, 2 * max(threshold, value))
    filled = int(round(value / top * width))
    mark = min(width - 1, int(round(threshold / top * width)))
    t = Text("▕", style="dim")
    for k in range(width):
        if k == mark:
            t.append("┃", "bold")
        elif k < filled:
            t.append("█", color)
        else:
            t.append("░", "dim")
    t.append("▏", style="dim")
    return t


def render_grade(grade: Grade | None, finished: bool, palette: dict[str, str]) -> RenderableType:
    """The verdict, the pass rule and each of its checks."""
    if grade is None:
        return Text("not graded yet" if not finished else "not graded", style="dim")
    parts: list[RenderableType] = []
    head = Text("grade ", style="bold")
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
    checks = list(grade.checks)
    if checks:
        parts.append(Lines(lambda w: check_lines(checks, w, palette)))
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


def other_grade_metrics(grade: Grade) -> list[tuple[str, object]]:
    """The grade's metrics that no check names (shown after the key figures)."""
    checked = {c.name for c in grade.checks}
    return [
        (k, v)
        for k, v in grade.metrics.items()
        if k not in checked and (isinstance(v, int | float | str | bool) or v is None)
    ]


def render_key_figures(grade: Grade | None, pal: dict[str, str]) -> RenderableType | None:
    """The calibration details of the grade and its metrics beyond the checks."""
    if grade is None:
        return None
    parts: list[RenderableType] = []
    cal = grade.calibration()
    if cal is not None and cal.confusion_matrix:
        parts += [Text(""), ConfusionMatrix(cal.confusion_matrix, cal.class_names or None, pal)]
    if cal is not None and cal.reliability:
        bins = cal.reliability
        parts += [Text(""), Lines(lambda w: reliability_lines(bins, w, pal))]
    rest = other_grade_metrics(grade)
    if rest:
        line = Text("  also ", style="dim")
        for i, (k, v) in enumerate(rest):
            if i:
                line.append(" · ", style="dim")
            line.append(f"{k} ", style="dim")
            line.append(fmt.value(v))
        parts += [Text(""), line] if parts else [line]
    return Group(*parts) if parts else None


def is_single_value(members: list[tuple[str, MetricSeries]]) -> bool:
    """One point, or the same value at every point: a table row, not a chart."""
    values = {y for _, m in members for y in m.ys}
    return len(values) <= 1


def _first_step(members: list[tuple[str, MetricSeries]]) -> int:
    steps = [s for _, m in members for s in m.steps if s >= 0]
    return min(steps) if steps else -1


def scalar_table(
    rows: list[tuple[str, list[tuple[str, MetricSeries]]]], playhead: int | None, width: int = 200
) -> Table:
    """name, value, points, source: one row a single-valued metric (dim when it was
    logged after the replay's selected step); only the name is cut to fit ``width``."""
    cells: list[tuple[str, str, str, str, bool]] = []
    for key, members in rows:
        last = members[-1][1]
        n = sum(len(m) for _, m in members)
        future = playhead is not None and _first_step(members) > playhead
        cells.append((key, fmt.value(last.last), str(n), last.group, future))
    fixed = [
        max([len(title)] + [len(str(c[i])) for c in cells])
        for i, title in ((1, "value"), (2, "n"), (3, "source"))
    ]
    name_w = max(8, width - sum(fixed) - 2 * 4)
    t = Table(box=None, padding=(0, 1), show_edge=False, header_style="bold", expand=False)
    t.add_column("single value", no_wrap=True, overflow="ellipsis", max_width=name_w)
    t.add_column("value", justify="right", no_wrap=True, width=fixed[0])
    t.add_column("n", justify="right", no_wrap=True, width=fixed[1], style="dim")
    t.add_column("source", no_wrap=True, width=fixed[2], style="dim")
    for key, value, n_, group, future in cells:
        t.add_row(key, value, n_, group, style="dim" if future else None)
    return t


def render_metrics(
    state: RunState, playhead_step: int | None, palette: dict[str, str], *, chart_height: int = 7
) -> RenderableType:
    parts: list[RenderableType] = [render_grade(state.grade, state.finished, palette)]
    key = render_key_figures(state.grade, palette)
    if key is not None:
        parts.append(key)
    if not state.metrics:
        parts += [
            Text(""),
            Text(
                "No metric events yet. Metrics logged by the agent's code or "
                "the trainer are plotted here.",
                style="dim",
            ),
        ]
        return Group(*parts)
    ordered = sorted(state.metrics.items(), key=lambda kv: (group_rank(kv[1].group), kv[0]))
    scalars: list[tuple[str, list[tuple[str, MetricSeries]]]] = []
    charts: dict[str, list[tuple[str, list[tuple[str, MetricSeries]]]]] = {}
    for key_, members in group_series(ordered).items():
        if is_single_value(members):
            scalars.append((key_, members))
        else:
            charts.setdefault(members[-1][1].group, []).append((key_, members))
    if scalars:
        parts += [Text(""), Sized(lambda w: scalar_table(scalars, playhead_step, w))]
    colors = [palette["primary"], palette["accent"], palette["success"], palette["warning"]]
    for group, items in charts.items():
        title = GROUP_TITLES.get(group, group)
        n = len(items)
        parts.append(Rule(f"{title} · {n} chart{'s' if n != 1 else ''}", align="left"))
        for i, (name, members) in enumerate(items):
            color = colors[i % len(colors)]
            parts.append(_chart_title(name, members, color))
            series = [
                Series(
                    sname,
                    m.xs,
                    m.ys,
                    m.steps,
                    color if len(members) == 1 else colors[j % len(colors)],
                )
                for j, (sname, m) in enumerate(members)
            ]
            parts.append(Lines(_chart(series, chart_height, playhead_step)))
    return Group(*parts)


def _chart_title(name: str, members: list[tuple[str, MetricSeries]], color: str) -> Text:
    ys = [y for _, m in members for y in m.ys]
    title = Text(name, style=f"bold {color}")
    if len(members) > 1:
        title.append(f"  {len(members)} series", style=color)
    title.append(
        f"  last {fmt.value(members[-1][1].last)}  "
        f"{fmt.value(min(ys))}–{fmt.value(max(ys))}  n={len(ys)}",
        style="dim",
    )
    return title


def _chart(series: list[Series], height: int, playhead: int | None) -> Callable[[int], list[Text]]:
    return lambda width: line_chart(series, width, height, playhead=playhead)


class MetricsPane(KeyScroll):
    """Scrollable: ``j``/``k``, ``g``/``G``, page keys once focused."""

    HELP_TITLE = "the Tokens and Metrics tabs (3 / 4 focus them; escape: back to the steps)"

    def compose(self) -> ComposeResult:
        yield Static(id="metrics-body")

    def show(self, renderable: RenderableType) -> None:
        self.query_one("#metrics-body", Static).update(renderable)
