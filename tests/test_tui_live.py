"""Pilot tests of a live run: events stream in from the engine thread; quitting asks
first and then interrupts the run cleanly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentdeck.engine.errors import ConfigError
from agentdeck.engine.run import RunConfig, prepare
from agentdeck.tui.app import make_live_app
from agentdeck.tui.screens.dialogs import ConfirmScreen
from agentdeck.tui.screens.run import RunScreen
from agentdeck.tui.widgets.output import MAX_LINES, ToolOutput
from agentdeck.tui.widgets.status import StatusBar

from doubles import FakeRunConfig, settled, start_fake_run, until
from helpers import small_detector


def last_event(run_dir: Path) -> dict:
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    return json.loads(lines[-1])


def run_screen(app) -> RunScreen:  # type: ignore[no-untyped-def]
    return next(s for s in app.screen_stack if isinstance(s, RunScreen))


async def test_live_run_to_completion(tmp_path: Path) -> None:
    cfg = FakeRunConfig(log_dir=tmp_path, steps=4, max_steps=6, output_lines=12, pause=0.02)
    app, handle = make_live_app(cfg, start=start_fake_run)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: any(isinstance(s, RunScreen) for s in app.screen_stack))
        run = run_screen(app)
        await until(pilot, lambda: run.state.finished and run.steps.count == 4)
        assert handle.join(5)
        assert run.state.grade is not None and run.state.grade.passed
        assert run.steps.cursor == 3  # followed the newest step
        out = app.screen.query_one(ToolOutput)
        assert out.ring.total_lines == 12 and "step 4" in out.title
        assert "train_loss" in run.state.metrics
        assert run.state.totals.input_tokens == 1000 + 2000 + 3000 + 4000
        # the log the run wrote and the steps pane agree
        await until(pilot, lambda: run.index.log_ended)
        assert run.index.summary(0).tools == ("python_expression",)
        await pilot.press("q")  # finished: no question asked
    assert app.return_value == 0


async def test_a_run_that_ends_within_one_poll_keeps_its_streamed_output(
    tmp_path: Path,
) -> None:
    # the last step's result and run_end arrive in the same poll: the Output pane keeps
    # the stream it showed (as when they arrive apart), not the result's one-line text
    cfg = FakeRunConfig(log_dir=tmp_path, steps=2, max_steps=6, output_lines=12)
    app, handle = make_live_app(cfg, start=start_fake_run)
    assert handle.join(5)  # the whole run is in the log before the screen's first poll
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: any(isinstance(s, RunScreen) for s in app.screen_stack))
        run = run_screen(app)
        await until(pilot, lambda: run.state.finished and run.steps.count == 2)
        await settled(pilot)
        out = app.screen.query_one(ToolOutput)
        assert out.ring.total_lines == 12 and "step 2" in out.title
        # another step, and back: the pane shows each step's result, as a replay does
        await pilot.press("k")
        await settled(pilot)
        assert "step 1" in out.title and out.ring.total_lines == 1
        await pilot.press("j")
        await settled(pilot)
        assert "step 2" in out.title and out.ring.total_lines == 1


@pytest.mark.parametrize("one_poll", [True, False], ids=["one-poll", "polls-apart"])
async def test_a_last_call_that_printed_nothing_shows_its_result(
    tmp_path: Path, one_poll: bool
) -> None:
    # no tool prints: at the end the Output pane shows the last step's result, not an
    # empty stream, whether the end came with the last step's result or after it
    cfg = FakeRunConfig(
        log_dir=tmp_path, steps=2, max_steps=6, output_lines=0, pause=0 if one_poll else 0.05
    )
    app, handle = make_live_app(cfg, start=start_fake_run)
    if one_poll:
        assert handle.join(5)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: any(isinstance(s, RunScreen) for s in app.screen_stack))
        run = run_screen(app)
        await until(pilot, lambda: run.state.finished and run.steps.count == 2)
        await settled(pilot)
        out = app.screen.query_one(ToolOutput)
        assert "step 2" in out.title and out.ring.total_lines == 1, out.title
        assert list(out.ring.lines) == ["step 2 done"]


async def test_quit_during_a_live_run_asks_then_interrupts(tmp_path: Path) -> None:
    cfg = FakeRunConfig(log_dir=tmp_path, steps=5, hold_step=2)
    app, handle = make_live_app(cfg, start=start_fake_run)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: any(isinstance(s, RunScreen) for s in app.screen_stack))
        run = run_screen(app)
        await until(pilot, lambda: handle.in_tool.is_set() and run.state.current_step == 2)
        await until(pilot, lambda: run.state.phase == "running tool")
        out = app.screen.query_one(ToolOutput)
        await until(pilot, lambda: out.ring.total_lines > 5)  # stderr streams in live
        # n keeps the run going
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert isinstance(app.screen, RunScreen) and not handle.join(0)
        # y stops it cleanly and quits
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await until(pilot, lambda: app.return_value is not None)
    assert handle.join(5)
    assert app.return_value == 130  # the run's own exit code: interrupted by the user
    end = last_event(handle.run_dir.path)
    assert end["type"] == "run_end" and end["status"] == "interrupted"


async def test_a_flood_of_output_stays_bounded(tmp_path: Path) -> None:
    cfg = FakeRunConfig(log_dir=tmp_path, steps=2, flood_bytes=3_000_000, flood_step=1)
    app, _handle = make_live_app(cfg, start=start_fake_run)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: any(isinstance(s, RunScreen) for s in app.screen_stack))
        run = run_screen(app)
        await until(pilot, lambda: run.state.finished, timeout=60)
        out = app.screen.query_one(ToolOutput)
        log_widget = out.query_one("#output-log")
        assert len(log_widget.lines) <= MAX_LINES
        assert len(out.ring.lines) <= MAX_LINES
        await pilot.press("j", "k")  # still responsive
        await pilot.press("q")
    assert app.return_value == 0


def test_bad_input_exits_2_before_the_app_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agentdeck.tui.app import run_live_app

    def bad_start(config, sinks):  # type: ignore[no-untyped-def]
        raise ConfigError("-T dataset=nope: unknown dataset (choose digits or fashion-mnist)")

    assert run_live_app(object(), start=bad_start) == 2
    assert "unknown dataset" in capsys.readouterr().err


async def test_real_scripted_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine's own run with the offline scripted agent (digits: always offline).

    The app's handling of a real run is checked here, not detection quality, so the
    detector trains with a small budget."""
    code = small_detector(monkeypatch)
    config = RunConfig(
        task="noisy-labels",
        params={"dataset": "digits", "n_train": "500"},
        agent="scripted",
        log_dir=tmp_path,
    )
    app, handle = make_live_app(prepare(config))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: any(isinstance(s, RunScreen) for s in app.screen_stack))
        run = run_screen(app)
        await until(pilot, lambda: run.state.finished or handle.error is not None, timeout=240)
        assert handle.error is None
        assert run.steps.count >= 2
        assert run.state.grade is not None
        await pilot.press("q")
    assert handle.join(30)
    assert app.return_value == handle.result.exit_code
    calls = [
        json.loads(line)
        for line in (handle.run_dir.path / "events.jsonl").read_text().splitlines()
        if '"tool_call"' in line
    ]
    assert code in [c["input"].get("code") for c in calls if c["type"] == "tool_call"]


# -- after the run has ended; Ctrl-C (issue 11) -------------------------------------------


async def test_a_finished_live_run_plays_back_and_its_output_follows_the_steps(
    tmp_path: Path,
) -> None:
    # each step lasts 0.3 s: played back at 1x, a step stays on screen that long
    cfg = FakeRunConfig(log_dir=tmp_path, steps=3, max_steps=6, output_lines=4, pause=0.3)
    app, handle = make_live_app(cfg, start=start_fake_run)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: any(isinstance(s, RunScreen) for s in app.screen_stack))
        run = run_screen(app)
        await until(pilot, lambda: run.state.finished and run.index.log_ended)
        bar = app.screen.query_one(StatusBar)
        assert "$0.0060" in str(bar.render())  # the run's cost so far: 0.001 + 0.002 + 0.003
        out = app.screen.query_one(ToolOutput)
        assert "step 3" in out.title
        # the Output tab shows the selected step's output once the run is over
        await pilot.press("2", "k")
        await until(pilot, lambda: out.title.startswith("step 2"))
        assert "step 2 done" in "\n".join(out.query_one("#output-log").lines)
        assert "step 2/6" in str(bar.render())  # the status bar shows the selected step
        # and space plays it back from there
        await pilot.press("space")
        assert run.playback.playing and not run.following
        assert "playing" in str(bar.render())
        await until(pilot, lambda: run.steps.cursor == 2, timeout=5)
        await until(pilot, lambda: not run.playback.playing, timeout=5)  # stops at the end
        await pilot.press("q")
    assert handle.join(5)
    assert app.return_value == 0


async def test_ctrl_c_asks_then_a_second_ctrl_c_stops_the_run(tmp_path: Path) -> None:
    cfg = FakeRunConfig(log_dir=tmp_path, steps=5, hold_step=2)
    app, handle = make_live_app(cfg, start=start_fake_run)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: any(isinstance(s, RunScreen) for s in app.screen_stack))
        run = run_screen(app)
        await until(pilot, lambda: handle.in_tool.is_set() and run.state.current_step == 2)
        await pilot.press("ctrl+c")
        assert isinstance(app.screen, ConfirmScreen)  # the same question as q
        await pilot.press("n")
        assert isinstance(app.screen, RunScreen) and not handle.join(0)
        await pilot.press("ctrl+c")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("ctrl+c")  # again: stop without asking
        await until(pilot, lambda: app.return_value is not None)
    assert handle.join(5)
    assert app.return_value == 130
    end = last_event(handle.run_dir.path)
    assert end["type"] == "run_end" and end["status"] == "interrupted"


async def test_ctrl_c_on_a_finished_run_quits_with_its_exit_code(tmp_path: Path) -> None:
    cfg = FakeRunConfig(log_dir=tmp_path, steps=2, passed=False)
    app, handle = make_live_app(cfg, start=start_fake_run)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: any(isinstance(s, RunScreen) for s in app.screen_stack))
        run = run_screen(app)
        await until(pilot, lambda: run.state.finished)
        assert handle.join(5)
        await pilot.press("ctrl+c")
        await until(pilot, lambda: app.return_value is not None)
    assert app.return_value == 1  # graded and failed, as the run itself says
