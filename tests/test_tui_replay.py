"""Pilot tests of the run screen replaying logs: every key flow of a replay."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from textual.widgets import Static

from agentdeck.engine.log import RunLog
from agentdeck.tui.app import AgentDeckApp
from agentdeck.tui.playback import SPEEDS
from agentdeck.tui.screens.dialogs import FullTextScreen, JumpScreen
from agentdeck.tui.screens.help import HelpScreen
from agentdeck.tui.screens.run import RunScreen
from agentdeck.tui.widgets.detail import StepDetail
from agentdeck.tui.widgets.output import ToolOutput
from agentdeck.tui.widgets.scrubber import Scrubber
from agentdeck.tui.widgets.status import StatusBar

from doubles import until

FIX = Path(__file__).parent / "fixtures" / "tui"


def replay_app(name: str) -> AgentDeckApp:
    log = RunLog.open(FIX / name)
    return AgentDeckApp(lambda: RunScreen(log, mode="replay"))


def screen_of(app: AgentDeckApp) -> RunScreen:
    for s in app.screen_stack:
        if isinstance(s, RunScreen):
            return s
    raise AssertionError("no run screen")


def detail_text(app: AgentDeckApp) -> str:
    return _plain(app.screen.query_one(StepDetail).query_one("#detail-body"))


def _plain(widget: Static) -> str:
    """The text a Static shows, rendered 120 columns wide."""
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


def status_text(app: AgentDeckApp) -> str:
    bar = app.screen.query_one(StatusBar)
    return str(bar.render())


async def test_seed_opens_at_first_step_and_navigates() -> None:
    app = replay_app("seed_000.md")
    async with app.run_test(size=(120, 40)) as pilot:
        run = screen_of(app)
        await until(pilot, lambda: run.state_ready)
        assert run.steps.cursor == 0 and run.steps.count == 20
        await until(pilot, lambda: "Step 1" in detail_text(app))
        assert "load_corrupted_dataset" in detail_text(app)
        assert "step 1/20" in status_text(app) and "NOT SUBMITTED" in status_text(app)
        await pilot.press("j", "j", "down")
        assert run.steps.cursor == 3
        await pilot.press("k")
        assert run.steps.cursor == 2
        await until(pilot, lambda: "Step 3" in detail_text(app))
        assert "torch.device" in detail_text(app)  # the tool input, syntax-highlighted code
        await pilot.press("G")
        assert run.steps.cursor == 19
        assert "step 20/20" in status_text(app)
        await pilot.press("g")
        assert run.steps.cursor == 0
        # enter opens the detail (focus moves there), escape comes back
        await pilot.press("enter")
        assert app.focused is app.screen.query_one(StepDetail)
        await pilot.press("escape")
        assert app.focused is run.steps
        # mouse: click the fifth row
        await pilot.click("#steps-view", offset=(10, 4))
        assert run.steps.cursor == 4


async def test_search_and_next_previous_match() -> None:
    app = replay_app("seed_000.md")
    async with app.run_test(size=(120, 40)) as pilot:
        run = screen_of(app)
        await until(pilot, lambda: run.state_ready)
        await pilot.press("slash")
        assert app.focused is app.screen.query_one("#search")
        await pilot.press(*"predictions.npy", "enter")
        await until(pilot, lambda: len(run.search.matches) > 0 and not run.workers)
        matches = list(run.search.matches)
        assert 20 in matches and 1 not in matches
        assert run._selected_step() == matches[0]
        await pilot.press("n")
        assert run._selected_step() == matches[1 % len(matches)]
        await pilot.press("N")
        assert run._selected_step() == matches[0]
        # a query nothing matches: no matches, cursor stays
        before = run.steps.cursor
        await pilot.press("slash", *"zzzqqq", "enter")
        await until(pilot, lambda: run.search.query == "zzzqqq" and not run.workers)
        assert run.search.matches == [] and run.steps.cursor == before


async def test_help_lists_every_key() -> None:
    app = replay_app("seed_000.md")
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        rows = {desc: keys for keys, desc, _ in app.screen.rows}
        for desc in (
            "Next row",
            "Previous row",
            "First row",
            "Last row",
            "Follow",
            "Search",
            "Next match",
            "Prev match",
            "Play",
            "Faster",
            "Slower",
            "Jump",
            "Full output",
            "Quit",
            "Help",
            "Dark/light",
        ):
            assert desc in rows, desc
        assert "J" in rows["Jump"] and ":" in rows["Jump"]
        await pilot.press("escape")
        assert isinstance(app.screen, RunScreen)


async def test_play_pause_and_speed() -> None:
    app = replay_app("seed_000.md")
    async with app.run_test(size=(120, 40)) as pilot:
        run = screen_of(app)
        await until(pilot, lambda: run.state_ready)
        assert run.playback.speed == 1.0
        await pilot.press("minus")
        assert run.playback.speed == 0.5
        for _ in range(len(SPEEDS)):
            await pilot.press("plus")
        assert run.playback.speed == SPEEDS[-1]
        # markdown logs have no timing: a fixed pace, 1 s a step at 1x
        assert run.playback.delay(0) == 1.0 / SPEEDS[-1]
        while run.playback.speed > 4.0:
            await pilot.press("minus")
        assert run.playback.delay(0) == 0.25
        await pilot.press("space")
        assert run.playback.playing and "playing" in status_text(app)
        await until(pilot, lambda: run.steps.cursor >= 3)
        await pilot.press("space")
        assert not run.playback.playing
        stopped_at = run.steps.cursor
        await pilot.pause(0.1)
        assert run.steps.cursor == stopped_at
        assert app.screen.query_one(Scrubber).index == stopped_at
        for _ in range(4):
            await pilot.press("plus")
        await pilot.press("space")
        await until(pilot, lambda: not run.playback.playing, timeout=10)
        assert run.steps.cursor == 19


async def test_recorded_timing_is_used_for_jsonl() -> None:
    app = replay_app("run_a.jsonl")
    async with app.run_test(size=(120, 40)) as pilot:
        run = screen_of(app)
        await until(pilot, lambda: run.state_ready)
        # step 1 of run_a lasts 2.0 s in the log (4 events, 0.5 s apart)
        assert run.playback.delay(0) == 2.0
        await pilot.press("plus")
        assert run.playback.delay(0) == 1.0


async def test_jump_prompt_and_scrubber() -> None:
    app = replay_app("seed_000.md")
    async with app.run_test(size=(120, 40)) as pilot:
        run = screen_of(app)
        await until(pilot, lambda: run.state_ready)
        await pilot.press("colon")
        assert isinstance(app.screen, JumpScreen)
        await pilot.press("1", "5", "enter")
        assert run._selected_step() == 15
        await pilot.press("J")
        await pilot.press("9", "9", "enter")  # past the end: nearest step
        assert run._selected_step() == 20
        await pilot.press("J", "escape")
        assert isinstance(app.screen, RunScreen) and run._selected_step() == 20
        scrubber = app.screen.query_one(Scrubber)
        left = len(scrubber._prefix())
        await pilot.click(Scrubber, offset=(left, 0))
        assert run.steps.cursor == 0


async def test_tabs_full_output_and_theme() -> None:
    app = replay_app("long_output.jsonl")
    async with app.run_test(size=(120, 40)) as pilot:
        run = screen_of(app)
        await until(pilot, lambda: run.state_ready)
        await until(pilot, lambda: "more lines: press v" in detail_text(app))
        await pilot.press("2")
        assert app.screen.query_one("#tabs").active == "tab-output"
        out = app.screen.query_one(ToolOutput)
        assert out.ring.total_lines > 40 and out.title.startswith("step 1")
        await pilot.press("3")
        assert app.screen.query_one("#tabs").active == "tab-tokens"
        await pilot.press("4")
        assert app.screen.query_one("#tabs").active == "tab-metrics"
        await pilot.press("1", "v")
        assert isinstance(app.screen, FullTextScreen)
        full = app.screen.text
        assert full.count("\n") > 60 and "epoch" in full
        await pilot.press("escape")
        assert isinstance(app.screen, RunScreen)
        theme = app.theme
        await pilot.press("T")
        assert app.theme != theme
        await pilot.press("T")
        assert app.theme == theme


async def test_calibration_metrics_are_shown() -> None:
    app = replay_app("calib_run.jsonl")
    async with app.run_test(size=(160, 60)) as pilot:
        run = screen_of(app)
        await until(pilot, lambda: run.state_ready)
        await pilot.press("G", "4")  # 4 focuses the pane: G would scroll it
        await pilot.pause()
        text = _plain(app.screen.query_one("#metrics-body"))
        assert "PASSED" in text and "✓ accuracy >= 0.80" in text
        assert "confusion matrix" in text and "reliability" in text
        assert "train_loss" in text and "val_accuracy" in text


async def test_keys_can_be_remapped_by_binding_id() -> None:
    log = RunLog.open(FIX / "seed_000.md")
    app = AgentDeckApp(
        lambda: RunScreen(log, mode="replay"), keymap={"run.jump": "ctrl+g", "list.down": "s"}
    )
    async with app.run_test(size=(120, 40)) as pilot:
        run = screen_of(app)
        await until(pilot, lambda: run.state_ready)
        await pilot.press("s", "s")
        assert run.steps.cursor == 2
        await pilot.press("ctrl+g")
        assert isinstance(app.screen, JumpScreen)
        await pilot.press("escape", "colon")  # the old key no longer jumps
        assert isinstance(app.screen, RunScreen)
        await pilot.press("question_mark")
        rows = {desc: keys for keys, desc, _ in app.screen.rows}
        assert "^g" in rows["Jump"] or "ctrl+g" in rows["Jump"]
