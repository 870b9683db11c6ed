"""Following a log another process is writing: events appear as they are appended."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from agentdeck.engine.bus import EventBus
from agentdeck.engine.events import ModelResponse, RunStart, StepStart, ToolCall
from agentdeck.engine.log import LogWriter, RunLog
from agentdeck.tui.app import AgentDeckApp
from agentdeck.tui.screens.run import RunScreen
from agentdeck.tui.widgets.output import ToolOutput

from doubles import until

FIX = Path(__file__).parent / "fixtures" / "tui"


def _lines(name: str) -> list[bytes]:
    return (FIX / name).read_bytes().splitlines(keepends=True)


async def test_follow_a_growing_log(tmp_path: Path) -> None:
    lines = _lines("run_a.jsonl")
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(lines[:9]))  # run_start and the first two steps, partly
    log = RunLog.open(path, follow=True)
    app = AgentDeckApp(lambda: RunScreen(log, mode="follow"))
    async with app.run_test(size=(120, 40)) as pilot:
        run = app.screen
        assert isinstance(run, RunScreen)
        await until(pilot, lambda: run.state_ready)
        start_count = run.steps.count
        assert 1 <= start_count < 10
        assert run.following and run.steps.cursor == start_count - 1
        assert not run.state.finished
        # append the rest a few lines at a time, a torn line in the middle
        rest = lines[9:]
        with open(path, "ab") as f:
            for i in range(0, len(rest), 7):
                block = b"".join(rest[i : i + 7])
                f.write(block[:-20])
                f.flush()
                await pilot.pause(0.05)
                f.write(block[-20:])
                f.flush()
                count = run.steps.count
                await until(
                    pilot,
                    lambda c=count: run.source.folded_upto >= len(log) and run.steps.count >= c,
                )
        await until(pilot, lambda: run.state.finished)
        assert run.steps.count == 10
        assert run.steps.cursor == 9  # followed the newest step
        assert run.state.grade is not None and run.state.grade.passed
        assert len(run.state.step_order) == 10
        assert log.warnings == []


async def test_follow_shows_streamed_output_and_can_stop_following(tmp_path: Path) -> None:
    lines = _lines("long_output.jsonl")
    path = tmp_path / "events.jsonl"
    path.write_bytes(lines[0])  # just run_start
    log = RunLog.open(path, follow=True)
    app = AgentDeckApp(lambda: RunScreen(log, mode="follow"))
    async with app.run_test(size=(120, 40)) as pilot:
        run = app.screen
        assert isinstance(run, RunScreen)
        await until(pilot, lambda: run.state_ready)
        assert run.steps.count == 0
        out = app.screen.query_one(ToolOutput)
        # the first step with its tool call and some output chunks
        first_result = next(i for i, ln in enumerate(lines) if b'"tool_result"' in ln)
        with open(path, "ab") as f:
            f.write(b"".join(lines[1 : first_result - 5]))
        await until(pilot, lambda: out.ring.total_lines > 10)
        assert run.state.phase == "running tool"
        assert "python_expression" in out.title
        # moving up stops following; f follows again
        with open(path, "ab") as f:
            f.write(b"".join(lines[first_result - 5 :]))
        await until(pilot, lambda: run.state.finished and run.steps.count == 3)
        await pilot.press("k", "k")
        assert not run.following and run.steps.cursor == 0
        await pilot.press("f")
        assert run.following and run.steps.cursor == 2


def _write_running_log(path: Path, host: dict[str, object], started: float) -> LogWriter:
    """A log whose step 1 runs a tool that has printed nothing for 5 s (no run_end)."""
    writer = LogWriter(path)
    bus = EventBus([writer])  # numbers the events, as a run's bus does
    call = {"code": "train()"}
    for ev in (
        RunStart(
            t=started, run_id="r", task="t", agent="scripted", max_steps=3, prompt="p", host=host
        ),
        StepStart(t=started, step=1),
        ModelResponse(
            t=started,
            step=1,
            message_id="m1",
            stop_reason="tool_use",
            content=[{"type": "tool_use", "id": "c1", "name": "python_expression", "input": call}],
        ),
        ToolCall(
            t=started, step=1, call_id="c1", name="python_expression", input=call, block_index=1
        ),
    ):
        bus.emit(ev)
    return writer


@pytest.mark.parametrize("alive", [True, False], ids=["writer alive", "writer elsewhere"])
async def test_the_step_in_progress_runs_on_the_clock_while_its_writer_lives(
    tmp_path: Path, alive: bool
) -> None:
    started = time.time() - 5.0
    host = {"pid": os.getpid(), "hostname": socket.gethostname() if alive else "elsewhere"}
    writer = _write_running_log(tmp_path / "events.jsonl", host, started)
    try:
        log = RunLog.open(tmp_path / "events.jsonl", follow=True)
        app = AgentDeckApp(lambda: RunScreen(log, mode="follow"))
        async with app.run_test(size=(120, 40)) as pilot:
            run = app.screen
            assert isinstance(run, RunScreen)
            await until(pilot, lambda: run.state_ready and run.steps.count == 1)
            await pilot.pause(1.2)  # the clock ticks once a second
            duration = run.index.summary(0).duration_s
            assert duration is not None
            if alive:
                # not 0.0 s: the tool has been running for 5 s and still is
                assert run.index.wall_clock and duration >= 5.0
            else:
                # a writer this machine cannot see: the log's last event is all we know
                assert not run.index.wall_clock and duration < 1.0
    finally:
        writer.close()
