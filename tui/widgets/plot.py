"""Text plots drawn at the width they are given: braille line charts and bar
charts, downsampled to one bucket per character column, so drawing costs the
same for 100 points as for 100,000.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.style import Style
from rich.text import Text

from agentdeck.tui import format as fmt

# braille dot bits by (column 0/1, row 0..3)
_DOTS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
_BLOCKS = " ▁▂▃▄▅▆▇█"


@dataclass
class Series:
    name: str
    xs: Sequence[float]
    ys: Sequence[float]
    #: The step each point belongs to (for dimming points after a replay's playhead).
    steps: Sequence[int] | None = None
    style: str = "cyan"


def _bounds(values: list[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if lo == hi:
        pad = abs(lo) * 0.1 or 0.5
        lo, hi = lo - pad, hi + pad
    return lo, hi


def line_chart(
    series: list[Series],
    width: int,
    height: int,
    *,
    playhead: int | None = None,
    dim: str = "grey42",
    axis: str = "grey50",
) -> list[Text]:
    """A braille line chart of ``series`` filling ``width`` x ``height`` cells."""
    pts = [
        (s, i)
        for s in series
        for i in range(len(s.xs))
        if math.isfinite(s.ys[i]) and math.isfinite(s.xs[i])
    ]
    if not pts or width < 12 or height < 3:
        return [Text("(no data)", style=dim)]
    xlo, xhi = _bounds([s.xs[i] for s, i in pts])
    ylo, yhi = _bounds([s.ys[i] for s, i in pts])
    labels = [fmt.value(yhi), fmt.value((ylo + yhi) / 2), fmt.value(ylo)]
    lw = max(len(x) for x in labels)
    w, h = width - lw - 1, height - 1
    if w < 4:
        return [Text("(too narrow)", style=dim)]
    pw, ph = 2 * w, 4 * h
    bits = [[0] * w for _ in range(h)]
    owner: list[list[tuple[int, bool] | None]] = [[None] * w for _ in range(h)]

    def plot(px: int, py: int, who: int, future: bool) -> None:
        cx, cy = px >> 1, py >> 2
        bits[cy][cx] |= _DOTS[px & 1][py & 3]
        owner[cy][cx] = (who, future)

    for who, s in enumerate(series):
        # bucket points per pixel column: (min, max, first, last, any-before-playhead)
        cols: dict[int, list[int]] = {}  # [min, max, first, last, any before playhead]
        for i in range(len(s.xs)):
            x, y = s.xs[i], s.ys[i]
            if not (math.isfinite(x) and math.isfinite(y)):
                continue
            px = min(pw - 1, int((x - xlo) / (xhi - xlo) * (pw - 1) + 0.5))
            py = min(ph - 1, int((yhi - y) / (yhi - ylo) * (ph - 1) + 0.5))
            future = bool(
                playhead is not None and s.steps is not None and 0 <= playhead < s.steps[i]
            )
            c = cols.get(px)
            if c is None:
                cols[px] = [py, py, py, py, int(future)]
            else:
                c[0], c[1], c[3] = min(c[0], py), max(c[1], py), py
                c[4] = int(bool(c[4]) and future)
        prev: tuple[int, int] | None = None
        for px in sorted(cols):
            lo, hi, first, last, before = cols[px]
            future = bool(before)
            if prev is not None:
                ppx, ppy = prev
                # connect to the previous column with a straight segment
                steps = max(abs(px - ppx), abs(first - ppy), 1)
                for k in range(1, steps):
                    plot(
                        ppx + (px - ppx) * k // steps,
                        ppy + (first - ppy) * k // steps,
                        who,
                        bool(future),
                    )
            for py in range(int(lo), int(hi) + 1):
                plot(px, py, who, bool(future))
            prev = (px, int(last))
    styles = [Style.parse(s.style) for s in series]
    dim_style, axis_style = Style.parse(dim), Style.parse(axis)
    out: list[Text] = []
    label_rows = {0: labels[0], h // 2: labels[1], h - 1: labels[2]}
    for cy in range(h):
        line = Text(f"{label_rows.get(cy, ''):>{lw}}", style=axis_style)
        line.append("┤" if cy in label_rows else "│", axis_style)
        for cx in range(w):
            b = bits[cy][cx]
            if not b:
                line.append(" ")
                continue
            who, future = owner[cy][cx]  # type: ignore[misc]
            line.append(chr(0x2800 + b), dim_style if future else styles[who])
        out.append(line)
    left, right = fmt.value(xlo if xlo == int(xlo) else round(xlo, 3)), fmt.value(xhi)
    axis_line = Text(" " * lw + "└", style=axis_style)
    gap = max(1, w - len(left) - len(right))
    axis_line.append(left + "─" * gap + right, axis_style)
    out.append(axis_line)
    return out


def bar_chart(
    values: Sequence[float],
    width: int,
    height: int,
    *,
    style: str = "cyan",
    playhead: int | None = None,
    dim: str = "grey42",
    axis: str = "grey50",
    label: str = "",
) -> list[Text]:
    """Vertical bars, one a value (the max of a bucket when there are more values
    than columns); bars after index ``playhead`` are dim."""
    n = len(values)
    top = max(values) if n else 0
    labels = [fmt.tokens(int(top)) if top >= 1 else fmt.value(top), "0"]
    lw = max(len(x) for x in labels)
    w = width - lw - 1
    if n == 0 or w < 4 or height < 1:
        return [Text("(no data)", style=dim)]
    cols: list[tuple[float, bool]] = []
    if n <= w:
        per = max(1, w // n)
        for i, v in enumerate(values):
            future = playhead is not None and i > playhead
            cols.extend([(v, future)] * per)
    else:
        for c in range(w):
            a, b = c * n // w, max(c * n // w + 1, (c + 1) * n // w)
            bucket = values[a:b]
            future = playhead is not None and a > playhead
            cols.append((max(bucket), future))
    st, dim_style, axis_style = Style.parse(style), Style.parse(dim), Style.parse(axis)
    out = []
    for row in range(height):
        lab = labels[0] if row == 0 else (labels[1] if row == height - 1 else "")
        line = Text(f"{lab:>{lw}}", style=axis_style)
        line.append("┤" if lab else "│", axis_style)
        level_lo = (height - 1 - row) * 8
        for v, future in cols:
            eighths = int(round(v / top * height * 8)) if top > 0 else 0
            k = max(0, min(8, eighths - level_lo))
            line.append(_BLOCKS[k], dim_style if future else st)
        out.append(line)
    if label:
        out.append(Text(" " * (lw + 1) + label, style=axis_style))
    return out


class Lines:
    """A renderable that draws lines from a function of the available width."""

    def __init__(self, draw: Callable[[int], list[Text]], height: int | None = None) -> None:
        self.draw = draw
        self.height = height

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines: list[Text] = self.draw(options.max_width)
        for line in lines:
            line.no_wrap = True
            line.overflow = "crop"
            yield line


class Sized:
    """A renderable made for the width it is given (a table that decides which of its
    columns gives way, say)."""

    def __init__(self, make: Callable[[int], RenderableType]) -> None:
        self.make = make

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.make(options.max_width)
