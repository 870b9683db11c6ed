"""Pilot tests of the runs screen (list, sort, filter, open) and the compare screen."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

from rich.console import Console
from textual.widgets import DataTable, Static

from agentdeck.tui.app import AgentDeckApp
from agentdeck.tui.screens.compare import CompareScreen, CompareView
from agentdeck.tui.screens.run import RunScreen
from agentdeck.tui.screens.runs import RunsScreen

from doubles import until

FIX = Path(__file__).parent / "fixtures" / "tui"


def make_log_dir(root: Path) -> Path:
    d = root / "runs"
    (d / "run-a").mkdir(parents=True)
    shutil.copy(FIX / "run_a.jsonl", d / "run-a" / "events.jsonl")
    shutil.copy(FIX / "run_b.jsonl", d / "run_b.jsonl")
    shutil.copy(FIX / "calib_run.jsonl", d / "calib_run.jsonl")
    shutil.copy(FIX / "seed_000.md", d / "seed_000.md")
    (d / "broken.jsonl").write_text("not a log\n")
    return d


def names(screen: RunsScreen) -> list[str]:
    return [r.name for r in screen.shown]


async def test_runs_list_sort_filter_open(tmp_path: Path) -> None:
    d = make_log_dir(tmp_path)
    app = AgentDeckApp(lambda: RunsScreen(d))
    async with app.run_test(size=(160, 40)) as pilot:
        runs = app.screen
        assert isinstance(runs, RunsScreen)
        await until(pilot, lambda: len(runs.runs) == 5)
        table = runs.query_one(DataTable)
        assert table.row_count == 5
        # default: newest first; markdown seed is from 2025, synthetic runs from 2023
        assert names(runs)[0] == "seed_000.md"
        # s cycles the sort column: date -> task
        await pilot.press("s")
        assert runs.sort_key == "task"
        tasks = [r.task for r in runs.shown]
        assert tasks == sorted(tasks, reverse=True)
        await pilot.press("r")
        assert [r.task for r in runs.shown] == sorted(tasks)
        # clicking a column header sorts by it
        cols = list(table.columns.values())
        x = sum(c.get_render_width(table) for c in cols[:5]) + 1
        assert str(cols[5].key.value) == "steps"
        await pilot.click(DataTable, offset=(x, 0))
        assert runs.sort_key == "steps"
        # filter
        await pilot.press("slash", *"haiku")
        assert sorted(names(runs)) == ["run_b.jsonl", "seed_000.md"]
        await pilot.press("enter")
        assert app.focused is table
        await pilot.press("escape")
        assert len(runs.shown) == 5
        # the broken log is listed with its problem and does not open
        runs.sort_key, runs.reverse = "name", False
        runs._rebuild()
        assert names(runs)[0] == "broken.jsonl"
        assert runs.shown[0].status == "unreadable"
        await pilot.press("g", "enter")
        assert isinstance(app.screen, RunsScreen)
        # open run-a
        await pilot.press("j", "j")
        assert runs._current().name == "run-a"
        await pilot.press("enter")
        assert isinstance(app.screen, RunScreen)
        run = app.screen
        await until(pilot, lambda: run.state_ready)
        assert run.steps.count == 10 and run.source.kind == "replay"
        await pilot.press("escape")
        assert app.screen is runs


async def test_compare_two_runs_marks_divergence(tmp_path: Path) -> None:
    d = make_log_dir(tmp_path)
    app = AgentDeckApp(lambda: RunsScreen(d))
    async with app.run_test(size=(160, 48)) as pilot:
        runs = app.screen
        assert isinstance(runs, RunsScreen)
        await until(pilot, lambda: len(runs.runs) == 5)
        await pilot.press("c")  # nothing marked: says what to do
        assert isinstance(app.screen, RunsScreen)
        runs.sort_key, runs.reverse = "name", False
        runs._rebuild()
        await pilot.press("g", "j", "j", "space", "j", "space")
        assert [p.name for p in runs.marked] == ["events.jsonl", "run_b.jsonl"]
        await pilot.press("c")
        assert isinstance(app.screen, CompareScreen)
        cmp = app.screen
        await until(pilot, lambda: cmp.alignment is not None)
        assert cmp.alignment.divergence == 4
        view = cmp.query_one(CompareView)
        assert view.steps[view.cursor] == 4  # the cursor starts at the divergence
        row = view.render_row(view.cursor, 120).plain
        assert "◆" in row
        assert "=" in view.render_row(0, 120).plain
        await pilot.press("g", "d")
        assert view.steps[view.cursor] == 4
        await pilot.press("n")
        assert view.steps[view.cursor] > 4
        console = Console(width=160, record=True, file=io.StringIO())
        console.print(cmp.query_one("#cmp-summary", Static).content)
        summary = console.export_text()
        assert "◆ step 4" in summary and "passed" in summary and "failed" in summary
        await pilot.press("escape")
        assert app.screen is runs
