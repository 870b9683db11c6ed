"""The tokens pane: per-step bars, running totals, cost, and context fill."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from agentdeck.tui import format as fmt
from agentdeck.tui.runstate import RunState, context_window
from agentdeck.tui.widgets.plot import Lines, bar_chart
from agentdeck.tui.widgets.scroll import KeyScroll


def render_tokens(
    state: RunState, pos: int | None, palette: dict[str, str], *, bar_height: int = 4
) -> RenderableType:
    """Totals through step ``pos`` (the selected one; None: the newest) and for the run."""
    n = len(state.step_order)
    if n == 0:
        return Text("No model responses yet.", style="dim")
    last = n - 1
    at = last if pos is None else max(0, min(last, pos))
    (cum, cum_cost), (run, run_cost) = state.cumulative(at), state.cumulative(None)
    step_no = state.step_order[at]
    table = Table(box=None, padding=(0, 2), show_edge=False, header_style="bold")
    table.add_column("tokens", no_wrap=True)
    table.add_column(f"step {step_no}", justify="right")
    table.add_column(f"through step {step_no}", justify="right")
    table.add_column("run total", justify="right")
    rows = (
        ("input", state.u_in, "input_tokens"),
        ("output", state.u_out, "output_tokens"),
        ("cache wr", state.u_cw, "cache_creation_input_tokens"),
        ("cache rd", state.u_cr, "cache_read_input_tokens"),
    )
    for label, arr, key in rows:
        table.add_row(label, f"{arr[at]:,}", f"{getattr(cum, key):,}", f"{getattr(run, key):,}")
    step_cost = state.u_cost[at]
    table.add_row(
        "cost",
        fmt.cost(None if step_cost != step_cost else step_cost),
        fmt.cost(cum_cost),
        fmt.cost(run_cost),
    )
    parts: list[RenderableType] = [table, Text("")]
    window = context_window(state.model)
    used = state.context_used(at)
    ctx = Text("context ", style="bold")
    if used is None:
        ctx.append("unknown (no usage reported)", style="dim")
    elif window is None:
        ctx.append(
            f"{used:,} tokens at step {step_no}; window unknown for model "
            f"{state.model or '(none)'}",
            style="dim",
        )
    else:
        frac = used / window
        ctx.append(f"{used:,} / {window:,} ({frac:.0%}) at step {step_no} ")
        parts.append(ctx)
        color = (
            palette["error"]
            if frac > 0.9
            else palette["warning"]
            if frac > 0.7
            else palette["success"]
        )
        parts.append(Lines(lambda w: [_gauge(frac, w, color)]))
        ctx = None  # type: ignore[assignment]
    if ctx is not None:
        parts.append(ctx)
    parts.append(Text(""))
    prompt = [state.u_in[i] + state.u_cw[i] + state.u_cr[i] for i in range(n)]
    head = at if pos is not None else None
    parts.append(Text("prompt tokens per step (input + cache)", style="bold"))
    parts.append(
        Lines(
            lambda w: bar_chart(
                prompt, w, bar_height, style=palette["primary"], playhead=head, label=_span(state)
            )
        )
    )
    parts.append(Text("output tokens per step", style="bold"))
    parts.append(
        Lines(
            lambda w: bar_chart(
                list(state.u_out), w, bar_height, style=palette["accent"], playhead=head
            )
        )
    )
    return Group(*parts)


def _span(state: RunState) -> str:
    steps = state.step_order
    return f"steps {steps[0]}–{steps[-1]}" if steps else ""


def _gauge(frac: float, width: int, color: str) -> Text:
    w = max(4, min(60, width - 2))
    filled = int(round(min(1.0, frac) * w))
    t = Text("▕")
    t.append("█" * filled, color)
    t.append("░" * (w - filled), "dim")
    t.append("▏")
    return t


class TokensPane(KeyScroll):
    """Scrollable: ``j``/``k``, ``g``/``G``, page keys once focused (``3`` focuses it)."""

    HELP_TITLE = "the Tokens and Metrics tabs (3 / 4 focus them; escape: back to the steps)"

    def compose(self) -> ComposeResult:
        yield Static(id="tokens-body")

    def show(self, renderable: RenderableType) -> None:
        self.query_one("#tokens-body", Static).update(renderable)
