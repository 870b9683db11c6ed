"""SVG snapshots of each screen at fixed sizes (pytest-textual-snapshot): every screen,
tab and dialog at 80x24 (the smallest terminal it is made for), most at 160x48 too.

Update after an intended change with ``pytest tests/test_tui_snapshots.py --snapshot-update``
and look at the SVGs before committing them.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from agentdeck.engine.log import RunLog
from agentdeck.tui.app import AgentDeckApp
from agentdeck.tui.screens.compare import CompareScreen, MetricsCompareScreen
from agentdeck.tui.screens.dialogs import ConfirmScreen, FullTextScreen, JumpScreen
from agentdeck.tui.screens.run import RunScreen
from agentdeck.tui.screens.runs import RunsScreen

from doubles import settled, until

FIX = Path(__file__).parent / "fixtures" / "tui"
SIZES = [(80, 24), (160, 48)]


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


def replay(name: str) -> AgentDeckApp:
    log = RunLog.open(FIX / name)
    return AgentDeckApp(lambda: RunScreen(log, mode="replay"))


async def loaded(pilot) -> None:  # type: ignore[no-untyped-def]
    await until(
        pilot, lambda: isinstance(pilot.app.screen, RunScreen) and pilot.app.screen.state_ready
    )
    await settled(pilot)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_replay_seed_detail(snap_compare, size) -> None:  # type: ignore[no-untyped-def]
    async def before(pilot) -> None:  # type: ignore[no-untyped-def]
        await loaded(pilot)
        await pilot.press("j", "j")
        await settled(pilot)

    assert snap_compare(replay("seed_000.md"), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_replay_output(snap_compare, size) -> None:  # type: ignore[no-untyped-def]
    async def before(pilot) -> None:  # type: ignore[no-untyped-def]
        await loaded(pilot)
        await pilot.press("j", "2")
        await pilot.pause(0.3)

    assert snap_compare(replay("long_output.jsonl"), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_replay_metrics_calibration(snap_compare, size) -> None:  # type: ignore[no-untyped-def]
    """The Metrics tab's top: the grade, its checks, the confusion matrix."""

    async def before(pilot) -> None:  # type: ignore[no-untyped-def]
        await loaded(pilot)
        await pilot.press("G", "4")
        await settled(pilot)

    assert snap_compare(replay("policy_run.jsonl"), terminal_size=size, run_before=before)


def test_replay_metrics_scrolled(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """A page down: single values as a table, then the charts by source."""

    async def before(pilot) -> None:  # type: ignore[no-untyped-def]
        await loaded(pilot)
        await pilot.press("G", "4")
        await pilot.pause(0.7)
        await pilot.press("pagedown")
        await pilot.pause(0.3)

    assert snap_compare(replay("policy_run.jsonl"), terminal_size=(80, 24), run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_replay_tokens(snap_compare, size) -> None:  # type: ignore[no-untyped-def]
    async def before(pilot) -> None:  # type: ignore[no-untyped-def]
        await loaded(pilot)
        await pilot.press("j", "j", "j", "j", "3")
        await settled(pilot)

    assert snap_compare(replay("run_a.jsonl"), terminal_size=size, run_before=before)


@pytest.mark.parametrize("theme", ["textual-light"])
def test_replay_light_theme(snap_compare, theme) -> None:  # type: ignore[no-untyped-def]
    async def before(pilot) -> None:  # type: ignore[no-untyped-def]
        await loaded(pilot)
        await pilot.press("T", "j")
        await settled(pilot)

    assert snap_compare(replay("run_b.jsonl"), terminal_size=(160, 48), run_before=before)


@pytest.mark.parametrize("size", [(80, 24), (120, 48)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_help(snap_compare, size) -> None:  # type: ignore[no-untyped-def]
    async def before(pilot) -> None:  # type: ignore[no-untyped-def]
        await loaded(pilot)
        await pilot.press("question_mark")
        await settled(pilot)

    assert snap_compare(replay("run_a.jsonl"), terminal_size=size, run_before=before)


def test_search_box(snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def before(pilot) -> None:  # type: ignore[no-untyped-def]
        await loaded(pilot)
        await pilot.press("slash", *"loss")
        await pilot.pause(0.2)

    assert snap_compare(replay("run_a.jsonl"), terminal_size=(80, 24), run_before=before)


@pytest.mark.parametrize("dialog", ["confirm", "jump", "full_output"])
def test_dialogs(snap_compare, dialog) -> None:  # type: ignore[no-untyped-def]
    async def before(pilot) -> None:  # type: ignore[no-untyped-def]
        await loaded(pilot)
        if dialog == "confirm":  # what q and ctrl+c ask on a live run
            pilot.app.push_screen(
                ConfirmScreen(
                    "The run is still going. Stop it and quit?",
                    yes="Stop and quit",
                    no="Keep running",
                )
            )
            expected: type = ConfirmScreen
        elif dialog == "jump":
            await pilot.press("colon")
            expected = JumpScreen
        else:
            await pilot.press("v")
            expected = FullTextScreen
        await until(pilot, lambda: isinstance(pilot.app.screen, expected))
        await pilot.pause(0.2)

    assert snap_compare(replay("long_output.jsonl"), terminal_size=(80, 24), run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_runs_screen(
    snap_compare,
    size,
    tmp_path: Path,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    d = tmp_path / "logs"
    (d / "run-a").mkdir(parents=True)
    shutil.copy(FIX / "run_a.jsonl", d / "run-a" / "events.jsonl")
    # a run directory named as agentdeck names them: the task is in its name
    policy = d / "20231114-221320-action-policy-5f3a"
    policy.mkdir()
    shutil.copy(FIX / "policy_run.jsonl", policy / "events.jsonl")
    for name in ("run_b.jsonl", "calib_run.jsonl", "seed_000.md"):
        shutil.copy(FIX / name, d / name)
    monkeypatch.chdir(tmp_path)
    app = AgentDeckApp(lambda: RunsScreen(Path("logs")))

    async def before(pilot) -> None:  # type: ignore[no-untyped-def]
        await until(
            pilot,
            lambda: isinstance(pilot.app.screen, RunsScreen) and len(pilot.app.screen.runs) == 5,
        )
        await settled(pilot)  # as opened: no key rebuilds the table first
        await pilot.press("j")

    assert snap_compare(app, terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_compare_screen(snap_compare, size) -> None:  # type: ignore[no-untyped-def]
    a, b = RunLog.open(FIX / "run_a.jsonl"), RunLog.open(FIX / "run_b.jsonl")
    app = AgentDeckApp(lambda: CompareScreen(a, b))

    async def before(pilot) -> None:  # type: ignore[no-untyped-def]
        await until(
            pilot,
            lambda: (
                isinstance(pilot.app.screen, CompareScreen)
                and pilot.app.screen.alignment is not None
            ),
        )
        await settled(pilot)

    assert snap_compare(app, terminal_size=size, run_before=before)


REPO_LOG = Path(__file__).parent / "fixtures" / "compat" / "log-1.1-fmnist-repo-digits.jsonl"


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_replay_files_tab(snap_compare, size) -> None:  # type: ignore[no-untyped-def]
    """A repository run at the step that edited model.py: the tree, the diff, the file."""
    log = RunLog.open(REPO_LOG)
    app = AgentDeckApp(lambda: RunScreen(log, mode="replay"))

    async def before(pilot) -> None:  # type: ignore[no-untyped-def]
        await loaded(pilot)
        pilot.app.screen.jump_to_step(5)
        await pilot.press("5")
        await pilot.pause(0.8)

    assert snap_compare(app, terminal_size=size, run_before=before)


def test_compare_all_metrics(snap_compare) -> None:  # type: ignore[no-untyped-def]
    a, b = RunLog.open(FIX / "run_a.jsonl"), RunLog.open(FIX / "run_b.jsonl")
    app = AgentDeckApp(lambda: CompareScreen(a, b))

    async def before(pilot) -> None:  # type: ignore[no-untyped-def]
        await until(
            pilot,
            lambda: (
                isinstance(pilot.app.screen, CompareScreen)
                and pilot.app.screen.alignment is not None
            ),
        )
        await pilot.press("m")
        await until(pilot, lambda: isinstance(pilot.app.screen, MetricsCompareScreen))
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(80, 24), run_before=before)
