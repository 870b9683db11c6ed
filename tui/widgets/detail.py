"""The step detail pane: assistant text, each tool call's input, output, errors, timing."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group, RenderableType
from rich.markdown import Markdown
from rich.rule import Rule
from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import Static

from agentdeck.engine.log import StepRecord
from agentdeck.tui import format as fmt
from agentdeck.tui.stepdata import call_label, input_text
from agentdeck.tui.theme import DEFAULT_PALETTE
from agentdeck.tui.widgets.scroll import KeyScroll, scroll_bindings

#: Lines of one output shown in the pane; the full text is one key (v) away.
OUTPUT_LINES = 40
OUTPUT_CHARS = 8000


def clip_output(text: str, lines: int = OUTPUT_LINES, chars: int = OUTPUT_CHARS) -> tuple[str, int]:
    """The head of ``text`` for the pane and how many lines were left out."""
    all_lines = text.splitlines()
    head = all_lines[:lines]
    shown = "\n".join(head)
    if len(shown) > chars:
        shown = shown[:chars]
        kept = shown.count("\n") + 1
    else:
        kept = len(head)
    return shown, max(0, len(all_lines) - kept)


def render_step(
    rec: StepRecord,
    *,
    live_text: str = "",
    finished: bool = True,
    syntax_theme: str = "monokai",
    timed: bool = True,
    pal: dict[str, str] = DEFAULT_PALETTE,
) -> RenderableType:
    """Everything about one step, as a Rich renderable (``timed``: the log has timestamps)."""
    parts: list[RenderableType] = []
    head = Text(f"Step {rec.step}", style="bold")
    if rec.duration_s is not None and timed:
        head.append(f" · {fmt.duration(rec.duration_s)}")
    if not finished:
        head.append(" · in progress", style="bold italic")
    r = rec.response
    if r is not None:
        u = r.usage
        head.append(f" · in {fmt.tokens(u.prompt)} out {fmt.tokens(u.output_tokens)}")
        if u.cache_read_input_tokens or u.cache_creation_input_tokens:
            head.append(
                f" (cache read {fmt.tokens(u.cache_read_input_tokens)}, "
                f"write {fmt.tokens(u.cache_creation_input_tokens)})",
                style="dim",
            )
        if r.cost_usd is not None:
            head.append(f" · {fmt.cost(r.cost_usd)}")
        if r.latency_s is not None:
            head.append(f" · model {fmt.duration(r.latency_s)}", style="dim")
        meta = Text(f"{r.message_id} · stop: {r.stop_reason}", style="dim")
    else:
        meta = Text(
            "waiting for the model…" if not finished else "no model response", style="dim italic"
        )
    parts += [head, meta]
    for w in rec.warnings:
        parts.append(Text(f"⚠ {w.where}: {w.message}", style=pal["warning"]))
    for e in rec.errors:
        parts.append(Text(f"✗ {e.where}: {e.message}", style=f"bold {pal['error']}"))
    for p in rec.problems:
        parts.append(Text(f"✗ unreadable line: {p}", style=pal["error"]))
    text = rec.text or (live_text if r is None else "")
    if text.strip():
        parts.append(Rule("assistant", align="left", style="dim"))
        parts.append(Markdown(text))
    for c in rec.calls:
        res = c.result
        title = f"tool call {c.call.block_index}: {c.call.name}"
        label = call_label(c.call)
        if label:
            title += f" · {label}"
        if res is not None and timed:
            title += f" · {fmt.duration(res.duration_s)}"
        elif not finished:
            title += " · running…"
        parts.append(
            Rule(title, align="left", style=pal["error"] if res and res.error else pal["primary"])
        )
        code, lexer = input_text(c.call)
        if code or not label:
            parts.append(
                Syntax(
                    code,
                    lexer,
                    theme=syntax_theme,
                    word_wrap=True,
                    line_numbers=lexer == "python" and code.count("\n") >= 4,
                    background_color="default",
                )
            )
        if res is None:
            streamed = c.streamed_text
            if streamed:
                shown, more = clip_output(streamed[-OUTPUT_CHARS:])
                parts.append(Text(shown, style="dim"))
            continue
        out = fmt.output_text(res.output)
        if out:
            shown, more = clip_output(out)
            parts.append(Text("output", style="bold dim"))
            parts.append(Text(shown))
            if more:
                parts.append(
                    Text(
                        f"… {more:,} more lines: press v for the full output",
                        style=f"italic {pal['warning']}",
                    )
                )
        if res.truncated_bytes:
            parts.append(
                Text(
                    f"(the model saw this output cut by {res.truncated_bytes:,} bytes)", style="dim"
                )
            )
        if res.error:
            parts.append(Text(f"error: {res.error}", style=f"bold {pal['error']}"))
    for m in rec.metrics:
        parts.append(
            Text(
                f"metric {m.name} = {fmt.value(m.value)}"
                + (f" (x={fmt.value(m.x)})" if m.x is not None else ""),
                style=pal["success"],
            )
        )
    for a in rec.artifacts:
        parts.append(Text(f"artifact {a.name}: {a.path} ({a.mime})", style="dim"))
    return Group(*parts)


class StepDetail(KeyScroll):
    """Scrollable detail of one step; j/k scroll once it has focus."""

    BINDINGS: ClassVar[list[BindingType]] = scroll_bindings("detail")
    HELP_TITLE = "the Detail tab (enter focuses it; escape: back to the steps)"

    def compose(self) -> ComposeResult:
        yield Static(Text("No step selected.", style="dim"), id="detail-body")

    def show(self, renderable: RenderableType, *, keep_scroll: bool = False) -> None:
        self.query_one("#detail-body", Static).update(renderable)
        if not keep_scroll:
            self.scroll_home(animate=False)
