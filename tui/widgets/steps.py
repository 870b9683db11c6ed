"""The steps pane: one row a step, drawn on demand from a StepIndex."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from agentdeck.tui import format as fmt
from agentdeck.tui.stepdata import SHORT_NAMES, StepSummary
from agentdeck.tui.stepindex import StepIndex
from agentdeck.tui.widgets.virtual_list import VirtualList

# (title, width, minimum pane width at which the column is shown)
_COLUMNS = (
    ("dur", 6, 0),
    ("in", 6, 44),
    ("out", 5, 50),
    ("cost", 7, 62),
)


def _layout(width: int) -> tuple[int, list[tuple[str, int]]]:
    cols = [(t, w) for t, w, min_w in _COLUMNS if width >= min_w]
    fixed = 8 + sum(w + 1 for _, w in cols)
    return max(6, width - fixed), cols


def header_text(width: int) -> Text:
    tools_w, cols = _layout(width)
    text = Text("    #   ", style="bold")
    text.append(f"{'tools':<{tools_w}}", style="bold")
    for title, w in cols:
        text.append(f" {title:>{w}}", style="bold")
    return text


class StepsView(VirtualList):
    COMPONENT_CLASSES = VirtualList.COMPONENT_CLASSES | {
        "steps--error",
        "steps--retry",
        "steps--running",
        "steps--number",
        "steps--gist",
        "steps--match",
    }
    DEFAULT_CSS = """
    StepsView {
        & > .steps--error { color: $error; text-style: bold; }
        & > .steps--retry { color: $warning; }
        & > .steps--running { color: $accent; text-style: bold; }
        & > .steps--number { color: $text-muted; }
        & > .steps--gist { color: $text-muted; }
        & > .steps--match { color: $warning; text-style: bold; }
    }
    """

    def __init__(self, index: StepIndex, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.index = index
        self.matches: set[int] = set()

    def render_row(self, index: int, width: int) -> Text:
        s = self.index.summary(index)
        return self.format_row(s, width, match=s.step in self.matches)

    def format_row(self, s: StepSummary, width: int, *, match: bool = False) -> Text:
        tools_w, cols = _layout(width)
        text = Text()
        text.append(
            f"{s.step:>5}",
            self.style_of("steps--match") if match else self.style_of("steps--number"),
        )
        if not s.finished:
            text.append(" ▶", self.style_of("steps--running"))
        elif s.error:
            text.append(" ✗", self.style_of("steps--error"))
        elif s.retried:
            text.append(" ↻", self.style_of("steps--retry"))
        else:
            text.append("  ")
        text.append(" ")
        tools = _tools_label(s)
        if s.gist and len(tools) + 3 < tools_w:
            label = Text(tools)
            label.append(
                "  " + fmt.clip(s.gist, tools_w - len(tools) - 2), self.style_of("steps--gist")
            )
            label.truncate(tools_w, overflow="ellipsis", pad=True)
            text.append_text(label)
        else:
            text.append(f"{fmt.clip(tools, tools_w):<{tools_w}}")
        values = {
            "dur": fmt.duration(s.duration_s),
            "in": fmt.tokens(s.prompt_tokens) if s.prompt_tokens else "-",
            "out": fmt.tokens(s.usage.output_tokens) if s.usage.output_tokens else "-",
            "cost": fmt.cost(s.cost_usd),
        }
        for title, w in cols:
            text.append(f" {values[title]:>{w}}")
        return text


def _tools_label(s: StepSummary) -> str:
    if not s.tools:
        return "…" if not s.finished else "(no tool call)"
    names: list[str] = []
    for t in (SHORT_NAMES.get(t, t) for t in s.tools):
        if names and names[-1].split(" ×")[0] == t:
            base, _, n = names[-1].partition(" ×")
            names[-1] = f"{base} ×{int(n or 1) + 1}"
        else:
            names.append(t)
    return ", ".join(names)


class StepsPane(Vertical):
    """The steps list with its column header."""

    def __init__(self, index: StepIndex, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.view = StepsView(index, id="steps-view")

    def compose(self) -> ComposeResult:
        yield Static(id="steps-header")
        yield self.view

    def on_resize(self) -> None:
        self.query_one("#steps-header", Static).update(
            header_text(self.view.size.width or self.size.width)
        )
