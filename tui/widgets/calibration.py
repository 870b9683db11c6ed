"""A confusion matrix and a reliability diagram, as text (from Grade.details)."""

from __future__ import annotations

from typing import Any

from rich.style import Style
from rich.table import Table
from rich.text import Text

from agentdeck.engine.events import Check, ReliabilityBin
from agentdeck.tui import format as fmt
from agentdeck.tui.theme import DEFAULT_PALETTE


def confusion_table(
    matrix: list[list[Any]],
    class_names: list[str] | None = None,
    pal: dict[str, str] = DEFAULT_PALETTE,
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
    short = [nm[:8] for nm in names]
    table = Table(
        title="confusion matrix (rows: true, columns: predicted)",
        title_justify="left",
        box=None,
        padding=(0, 1),
        show_edge=False,
        title_style="bold",
    )
    table.add_column("true \\ pred", style="bold", no_wrap=True)
    for nm in short:
        table.add_column(nm, justify="right", no_wrap=True)
    table.add_column("recall", justify="right", style="dim")
    for i, row in enumerate(rows):
        total = sum(row) or 1.0
        cells: list[Text | str] = [short[i]]
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
    out = [Text("reliability (bar: accuracy, ┃: mean confidence, n: samples)", style="bold")]
    bar_w = max(10, min(50, width - 40))
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


def checks_lines(checks: list[Check], pal: dict[str, str] = DEFAULT_PALETTE) -> list[Text]:
    out = []
    for c in checks:
        met = c.met
        mark, style = (
            ("✓", pal["success"])
            if met
            else (("✗", pal["error"]) if met is False else ("?", "dim"))
        )
        line = Text(f" {mark} ", style=f"bold {style}")
        line.append(c.text or c.name or "?")
        if c.value is not None:
            line.append(f"   (got {fmt.value(c.value)})", "dim")
        out.append(line)
    return out
