"""A confusion matrix and a reliability diagram, as text (from Grade.details)."""

from __future__ import annotations

from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.style import Style
from rich.table import Table
from rich.text import Text

from agentdeck.engine.events import ReliabilityBin
from agentdeck.tui import format as fmt
from agentdeck.tui.theme import DEFAULT_PALETTE


class ConfusionMatrix:
    """A confusion matrix drawn at the width it is given: columns headed by the class
    names (up to 12 characters) when they fit, else by the class numbers, the rows
    then saying which number is which class."""

    def __init__(
        self,
        matrix: list[list[Any]],
        class_names: list[str] | None = None,
        pal: dict[str, str] = DEFAULT_PALETTE,
    ) -> None:
        self.matrix, self.class_names, self.pal = matrix, class_names, pal

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield confusion_table(self.matrix, self.class_names, self.pal, width=options.max_width)


def confusion_table(
    matrix: list[list[Any]],
    class_names: list[str] | None = None,
    pal: dict[str, str] = DEFAULT_PALETTE,
    *,
    width: int = 200,
) -> Table | Text:
    """Counts with each cell shaded by its share of the row (the true class)."""
    hot, diag = pal["warning"], pal["success"]
    try:
        rows = [[float(v) for v in row] for row in matrix]
    except (TypeError, ValueError):
        return Text("confusion_matrix: expected a list of lists of numbers", style=pal["error"])
    n = len(rows)
    names = [str(c) for c in (class_names or [])][:n]
    names += [str(i) for i in range(len(names), n)]
    counts = [f"{int(v) if v == int(v) else round(v, 2)}" for row in rows for v in row]
    count_w = max([len(c) for c in counts] + [1])
    short = [nm[:12] for nm in names]
    label_w = max([len(nm) for nm in short] + [11])
    # label, n counts, recall: each padded by one column a side
    by_name = label_w + 2 + sum(max(len(nm), count_w) + 2 for nm in short) + 8 <= width
    if by_name:
        heads, labels = short, short
    else:
        # the row labels give way (cut) so that every count column stays
        heads = [str(i) for i in range(n)]
        cell_w = max(count_w, len(str(n - 1)))
        label_w = max(1, width - 2 - n * (cell_w + 2) - 8)
        labels = [
            fmt.clip(f"{i} {nm}" if nm != str(i) else nm, label_w) for i, nm in enumerate(short)
        ]
    table = Table(
        title="confusion matrix (rows: true, columns: predicted)",
        title_justify="left",
        box=None,
        padding=(0, 1),
        show_edge=False,
        title_style="bold",
    )
    table.add_column(
        "true \\ pred", style="bold", no_wrap=True, overflow="ellipsis", max_width=label_w
    )
    for nm in heads:
        table.add_column(nm, justify="right", no_wrap=True)
    table.add_column("recall", justify="right", style="dim", no_wrap=True)
    for i, row in enumerate(rows):
        total = sum(row) or 1.0
        cells: list[Text | str] = [labels[i]]
        for j, v in enumerate(row):
            share = v / total
            color = diag if i == j else hot
            style = (
                Style(bgcolor=color, bold=i == j)
                if share >= 0.5
                else (Style(color=color, bold=True) if share >= 0.05 else Style(dim=True))
            )
            cells.append(Text(f"{int(v) if v == int(v) else round(v, 2)}", style=style))
        cells.append(f"{row[i] / total:.2f}" if i < len(row) else "-")
        table.add_row(*cells)
    return table


def reliability_lines(
    bins: list[ReliabilityBin], width: int, pal: dict[str, str] = DEFAULT_PALETTE
) -> list[Text]:
    """One row a confidence bin: a bar of accuracy with ┃ where confidence is.

    Bars short of the marker are over-confident bins; past it, under-confident.
    """
    title = (
        "reliability (bar: accuracy, ┃: mean confidence, n: samples)"
        if width >= 62
        else "reliability (█ accuracy, ┃ confidence)"
    )
    out = [Text(title, style="bold")]
    tail_w = max(
        (len(f" acc {b.accuracy:.2f} conf {b.confidence:.2f} n={b.count}") for b in bins), default=0
    )
    bar_w = max(6, min(50, width - 10 - tail_w))
    for b in bins:
        lo, hi, conf, acc, n = b.bin_lo, b.bin_hi, b.confidence, b.accuracy, b.count
        filled = int(round(acc * bar_w))
        mark = min(bar_w - 1, int(round(conf * bar_w)))
        gap = acc - conf
        color = (
            pal["success"] if abs(gap) <= 0.05 else (pal["error"] if gap < 0 else pal["warning"])
        )
        line = Text(f"{lo:4.2f}–{hi:4.2f} ")
        for k in range(bar_w):
            if k == mark:
                line.append("┃", "bold")
            elif k < filled:
                line.append("█", color)
            else:
                line.append("·", "dim")
        line.append(f" acc {acc:.2f} conf {conf:.2f} n={n}")
        out.append(line)
    if len(out) == 1:
        out.append(Text("(no bins)", style="dim"))
    return out
