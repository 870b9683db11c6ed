"""The run screen's status bar says whether a log is sealed, tampered or not isolated."""

from __future__ import annotations

from pathlib import Path

from agentdeck.engine.bus import EventBus
from agentdeck.engine.events import Grade, RunEnd, RunStart, StepStart, Totals
from agentdeck.engine.log import LogWriter, RunLog
from agentdeck.engine.log.seal import Sealer
from agentdeck.tui.app import AgentDeckApp
from agentdeck.tui.screens.run import RunScreen
from agentdeck.tui.widgets.status import StatusBar

from doubles import until


def _sealed_log(path: Path, *, isolated: bool = True) -> Path:
    sealer = Sealer.for_user()
    assert sealer is not None
    with LogWriter(path, sealer=sealer) as w:
        bus = EventBus(critical=[w])
        bus.emit(
            RunStart(
                run_id="s",
                task="noisy-labels",
                agent="scripted",
                max_steps=2,
                prompt="p",
                host={"seal_key": sealer.key_id},
                limits={
                    "sandbox": {"backend": "bwrap" if isolated else "local", "isolated": isolated}
                },
            )
        )
        bus.emit(StepStart(step=1))
        bus.emit(Grade(passed=False, submitted=False))
        bus.emit(RunEnd(status="max_steps_reached", totals=Totals(steps=1)))
    return path


async def _status(path: Path) -> str:
    log = RunLog.open(path)
    app = AgentDeckApp(lambda: RunScreen(log, mode="replay"))
    async with app.run_test(size=(160, 30)) as pilot:
        run = next(s for s in app.screen_stack if isinstance(s, RunScreen))
        await until(pilot, lambda: run.state_ready)
        await pilot.pause()
        return str(app.screen.query_one(StatusBar).render())


async def test_a_sealed_log_says_so(tmp_path: Path) -> None:
    text = await _status(_sealed_log(tmp_path / "events.jsonl"))
    assert "✓ sealed" in text and "not isolated" not in text


async def test_a_tampered_log_says_so(tmp_path: Path) -> None:
    p = _sealed_log(tmp_path / "events.jsonl")
    p.write_text(p.read_text().replace('"passed":false', '"passed":true '))
    assert "TAMPERED" in await _status(p)


async def test_an_unisolated_run_says_so(tmp_path: Path) -> None:
    text = await _status(_sealed_log(tmp_path / "events.jsonl", isolated=False))
    assert "not isolated" in text
