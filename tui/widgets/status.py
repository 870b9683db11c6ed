"""The one-line status bar of the run screen."""

from __future__ import annotations

from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from agentdeck.tui import format as fmt
from agentdeck.tui.runstate import Phase, RunState


@dataclass
class StatusInfo:
    mode: str  # "live", "follow" or "replay"
    step: int | None = None
    playing: bool = False
    speed: float = 1.0
    following: bool = False
    #: The log's seal status ("sealed", "tampered", ...), None when not checked.
    seal: str | None = None


class StatusBar(Widget):
    """Drawn with ``render`` (no layout pass): updating it costs one line of repaint."""

    COMPONENT_CLASSES = {
        "status--task",
        "status--dim",
        "status--busy",
        "status--done",
        "status--passed",
        "status--failed",
        "status--warn",
    }
    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        background: $panel;
        & > .status--task { text-style: bold; color: $text; }
        & > .status--dim { color: $text-muted; }
        & > .status--busy { color: $accent; text-style: bold; }
        & > .status--done { color: $text; text-style: bold; }
        & > .status--passed { background: $success; color: $text; text-style: bold; }
        & > .status--failed { background: $error; color: $text; text-style: bold; }
        & > .status--warn { color: $warning; text-style: bold; }
    }
    """

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self._state: RunState | None = None
        self._info = StatusInfo("replay")

    def show(self, state: RunState, info: StatusInfo) -> None:
        self._state, self._info = state, info
        self.refresh()

    def render(self) -> Text:
        if self._state is None:
            return Text("")
        return self.compose_text(self._state, self._info, self.size.width or 80)

    def _s(self, name: str) -> Style:
        return self.get_component_rich_style(f"status--{name}", partial=True)

    def compose_text(self, state: RunState, info: StatusInfo, width: int) -> Text:
        """The bar's text; parts are dropped, least important first, to fit ``width``."""
        h = state.header
        sep = Text(" │ ", style=self._s("dim"))
        # (priority: lower is dropped first, text)
        parts: list[tuple[int, Text]] = []
        if h is None:
            parts.append((9, Text("waiting for run_start…", style=self._s("dim"))))
        else:
            task = h.task + (f" ({_params(h.task_params)})" if h.task_params else "")
            parts.append((6, Text(fmt.clip(task, max(12, width // 4)), style=self._s("task"))))
            model = f"{h.agent}/{h.model}" if h.model else h.agent
            parts.append((3, Text(model)))
            shown = info.step if info.step is not None else state.current_step
            parts.append((8, Text(f"step {shown or 0}/{h.max_steps}")))
            elapsed = state.elapsed()
            if elapsed is not None:
                parts.append((4, Text(fmt.duration(elapsed))))
            if state.total_cost is not None:
                # the run's cost so far (a replay: the whole run's)
                parts.append((5, Text(fmt.cost(state.total_cost))))
            sandbox = h.limits.get("sandbox") if isinstance(h.limits, dict) else None
            if isinstance(sandbox, dict) and sandbox.get("isolated") is False:
                parts.append((8, Text("⚠ not isolated", style=self._s("warn"))))
        if info.seal is not None and info.seal != "unsealed":
            style = {"sealed": "done", "tampered": "failed"}.get(info.seal, "warn")
            label = {
                "sealed": "✓ sealed",
                "tampered": "✗ TAMPERED",
                "foreign": "? sealed elsewhere",
                "open": "… unsealed yet",
            }.get(info.seal, info.seal)
            parts.append((9 if info.seal == "tampered" else 2, Text(label, style=self._s(style))))
        parts.append((7, self._state_text(state, info, width)))
        g = state.grade
        if g is not None:
            if g.passed:
                parts.append((9, Text(" PASSED ", style=self._s("passed"))))
            else:
                parts.append(
                    (
                        9,
                        Text(
                            " NOT SUBMITTED " if not g.submitted else " FAILED ",
                            style=self._s("failed"),
                        ),
                    )
                )
        while (
            len(parts) > 1 and 1 + sum(p.cell_len for _, p in parts) + 3 * (len(parts) - 1) > width
        ):
            lowest = min(range(len(parts)), key=lambda i: parts[i][0])
            del parts[lowest]
        text = Text(" ")
        for i, (_, p) in enumerate(parts):
            if i:
                text.append_text(sep)
            text.append_text(p)
        text.truncate(width, overflow="ellipsis")
        return text

    def _state_text(self, state: RunState, info: StatusInfo, width: int) -> Text:
        if info.playing:  # a replay, or a live or followed run once it has finished
            return Text(f"▶ playing {info.speed:g}×", style=self._s("busy"))
        if info.mode == "replay":
            end = state.end.status if state.end else "no run_end (incomplete log)"
            return Text(f"replay: {end}" if width >= 100 else end, style=self._s("done"))
        if state.phase == Phase.FINISHED:
            done = state.phase_detail
            return Text(f"finished: {done}" if width >= 100 else done, style=self._s("done"))
        label = state.phase
        if state.phase == Phase.TOOL and state.phase_detail:
            # narrow: "tool NAME", so that the elapsed time and the cost keep their place
            label = f"{label if width >= 100 else 'tool'} {state.phase_detail}"
        elif state.phase == Phase.RETRYING and state.phase_detail:
            label += f": {fmt.clip(state.phase_detail, 40 if width > 100 else 16)}"
        style = (
            self._s("warn") if state.phase in (Phase.RETRYING, Phase.STOPPING) else self._s("busy")
        )
        text = Text("● " + label, style=style)
        if info.mode == "follow":
            text.append(" (following log)" if width > 110 else "", self._s("dim"))
        return text


def _params(params: dict[str, object]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())
