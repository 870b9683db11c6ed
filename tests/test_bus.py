"""Only the log writer may end a run: a consumer that fails is detached with a warning,
and every exit path, even a BaseException from a consumer, writes grade and run_end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agentdeck.engine.bus import EventBus
from agentdeck.engine.events import Event, RunStart, StepStart, WarningEvent
from agentdeck.engine.log import RunLog
from agentdeck.engine.run import Run, RunConfig, prepare

from helpers import small_detector

AGENTDECK = Path(sys.executable).parent / "agentdeck"


def test_a_failing_sink_is_detached_with_a_warning() -> None:
    seen: list[Event] = []
    calls = {"n": 0}

    def broken(ev: Event) -> None:
        calls["n"] += 1
        raise BrokenPipeError(32, "Broken pipe")

    bus = EventBus([broken, seen.append])
    bus.emit(RunStart(run_id="r", task="t", agent="a", max_steps=1, prompt="p"))
    bus.emit(StepStart(step=1))
    assert calls["n"] == 1  # detached after its first failure
    warnings = [e for e in seen if isinstance(e, WarningEvent)]
    assert len(warnings) == 1 and warnings[0].code == "sink_failed"
    assert "BrokenPipeError" in warnings[0].message
    assert [e.seq for e in seen] == [0, 1, 2]  # the warning is an ordinary logged event
    assert bus.detached and bus.detached[0][0].endswith("broken")


def test_a_failing_critical_sink_propagates() -> None:
    def writer(ev: Event) -> None:
        raise OSError(28, "No space left on device")

    bus = EventBus(critical=[writer])
    with pytest.raises(OSError, match="No space"):
        bus.emit(StepStart(step=1))


def test_ctrl_c_in_a_sink_still_propagates() -> None:
    def sink(ev: Event) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        EventBus([sink]).emit(StepStart(step=1))


@pytest.mark.parametrize("exc", [SystemExit(1), RuntimeError("a printer bug")])
def test_a_run_survives_a_consumer_that_raises(
    tmp_path: Path, exc: BaseException, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_detector(monkeypatch)  # in-process: the policy's detector on a small budget

    def sink(ev: Event) -> None:
        if ev.TYPE == "step_start":
            raise exc

    cfg = RunConfig(
        task="noisy-labels",
        params={"dataset": "digits", "n_train": "200"},
        agent="scripted",
        log_dir=tmp_path,
    )
    result = Run(prepare(cfg), sinks=[sink]).run()
    assert result.status == "completed" and result.grade is not None
    log = RunLog.open(result.run_dir.events)  # type: ignore[union-attr]
    assert log.end is not None and log.grade is not None
    assert '"code":"sink_failed"' in log.path.read_text()  # type: ignore[union-attr]


def test_no_ui_piped_into_head_completes_the_run(tmp_path: Path) -> None:
    """``agentdeck run ... --no-ui | head -2``: the printer's pipe closes, the run goes on."""
    cmd = (
        f"{AGENTDECK} run noisy-labels -T dataset=digits -T n_train=200 --no-ui "
        f"--log-dir {tmp_path} | head -2"
    )
    r = subprocess.run(
        ["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, timeout=300
    )
    assert len(r.stdout.splitlines()) == 2
    assert "Traceback" not in r.stderr
    log = RunLog.open(next(tmp_path.glob("*/events.jsonl")))
    assert log.end is not None and log.end.status == "completed"
    assert log.grade is not None and log.grade.submitted
