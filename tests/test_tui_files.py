"""The Files tab (pilot tests): the repository at the selected step, the changed files
marked, the file and its diff; a followed run's repository growing; old logs; the compare
screen's trees and diffs; the grade's self-reported metric."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import Static

from agentdeck.engine.log import RunLog
from agentdeck.tui.app import AgentDeckApp, make_live_app
from agentdeck.tui.screens.compare import CompareScreen
from agentdeck.tui.screens.run import RunScreen
from agentdeck.tui.widgets.files import FilesPane, FileTree
from agentdeck.tui.widgets.metrics import MetricsPane

from doubles import eventually, until
from repo_policy import prepared

COMPAT = Path(__file__).parent / "fixtures" / "compat"
REPO_LOG = COMPAT / "log-1.1-fmnist-repo-digits.jsonl"
OLD_LOG = COMPAT / "log-1-v0.1.0-noisy-labels-digits.jsonl"


def text_of(widget: Static, width: int = 140) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(widget.content)
    return console.export_text()


def tree_labels(pane: FilesPane) -> list[str]:
    tree = pane.query_one(FileTree)
    out: list[str] = []

    def walk(node: object, depth: int) -> None:
        for child in node.children:  # type: ignore[attr-defined]
            out.append("  " * depth + child.label.plain)
            walk(child, depth + 1)

    walk(tree.root, 0)
    return out


async def open_files(pilot, step: int) -> FilesPane:  # type: ignore[no-untyped-def]
    screen = pilot.app.screen
    await until(pilot, lambda: isinstance(pilot.app.screen, RunScreen) and screen.state_ready)
    screen.jump_to_step(step)
    await pilot.press("5")
    pane = screen.query_one(FilesPane)
    await until(pilot, lambda: pane.step == step)
    await pilot.pause(0.2)
    return pane


async def test_the_files_tab_shows_the_repository_at_each_step() -> None:
    log = RunLog.open(REPO_LOG)
    app = AgentDeckApp(lambda: RunScreen(log, mode="replay"))
    async with app.run_test(size=(160, 48)) as pilot:
        pane = await open_files(pilot, 3)
        assert tree_labels(pane) == ["+ main.py", "  model.py"]
        assert pane.selected == "main.py"  # the file this step created
        body = text_of(pane.query_one("#files-body", Static))
        assert "+ created in step 3" in body and "Train, validate, predict" in body

        pane = await open_files(pilot, 5)
        assert pane.selected == "model.py"
        assert "● model.py" in tree_labels(pane)
        body = text_of(pane.query_one("#files-body", Static))
        assert "● edited in step 5" in body
        assert "-    return LogisticRegression(C=1.0" in body  # the step's diff
        assert "return LogisticRegression(C=0.5" in body  # the file as it is then

        pane = await open_files(pilot, 7)
        labels = tree_labels(pane)
        assert "✗ notes.txt" in labels and "submission/" in labels
        assert pane.selected == "notes.txt"
        assert "deleted in step 7" in text_of(pane.query_one("#files-body", Static))

        # choosing another file in the tree shows it
        tree = pane.query_one(FileTree)
        tree.focus()
        node = next(n for n in tree.root.children if n.data == "main.py")
        tree.move_cursor(node)
        await until(pilot, lambda: pane.selected == "main.py")
        assert "from model import make_model" in text_of(pane.query_one("#files-body", Static))


async def test_an_old_log_says_it_has_no_files() -> None:
    log = RunLog.open(OLD_LOG)
    app = AgentDeckApp(lambda: RunScreen(log, mode="replay"))
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_files(pilot, 2)
        assert "recorded no file changes" in text_of(pane.query_one("#files-body", Static))


async def test_a_followed_run_grows_in_the_files_tab(tmp_path: Path) -> None:
    lines = REPO_LOG.read_bytes().splitlines(keepends=True)
    path = tmp_path / "events.jsonl"
    cut = next(i for i, ln in enumerate(lines) if b'"path":"main.py"' in ln)
    path.write_bytes(b"".join(lines[:cut]))
    log = RunLog.open(path, follow=True)
    app = AgentDeckApp(lambda: RunScreen(log, mode="follow"))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = pilot.app.screen
        await until(pilot, lambda: screen.state_ready)
        await pilot.press("5")
        pane = screen.query_one(FilesPane)
        await until(pilot, lambda: pane.current is not None)
        assert pane.current is not None and pane.current.paths() == ["model.py"]
        with path.open("ab") as f:
            f.write(b"".join(lines[cut:]))
        await until(pilot, lambda: pane.current is not None and len(pane.current.files) == 3)
        assert pane.current.paths() == ["main.py", "model.py", "submission/submission.csv"]


async def test_the_grade_shows_the_self_reported_metric() -> None:
    log = RunLog.open(REPO_LOG)
    app = AgentDeckApp(lambda: RunScreen(log, mode="replay"))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = pilot.app.screen
        await until(pilot, lambda: screen.state_ready)
        await pilot.press("G", "4")
        metrics = screen.query_one(MetricsPane).query_one(Static)
        await eventually(pilot, lambda: "self-reported validation" in text_of(metrics))
        body = text_of(metrics)
        assert "self-reported validation 0.96" in body
        assert "hidden test accuracy 0.975" in body and "gap +0.0150" in body


async def test_compare_shows_both_trees_and_diffs(tmp_path: Path) -> None:
    other = tmp_path / "b.jsonl"
    shutil.copyfile(REPO_LOG, other)
    a, b = RunLog.open(REPO_LOG), RunLog.open(other)
    app = AgentDeckApp(lambda: CompareScreen(a, b))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = pilot.app.screen
        await until(pilot, lambda: screen.alignment is not None)
        screen.view.move_to(screen.view.steps.index(5))
        sides = [screen.query_one(side).query_one(Static) for side in ("#cmp-a", "#cmp-b")]
        await eventually(pilot, lambda: all("files after step 5" in text_of(w, 80) for w in sides))
        for widget in sides:
            body = text_of(widget, width=80)
            assert "files after step 5" in body and "● model.py" in body
            assert "changes in step 5" in body and "+    return LogisticRegression(C=0.5" in body


@pytest.mark.slow
async def test_a_live_run_grows_in_the_files_tab_and_ends_graded(tmp_path: Path) -> None:
    """The real engine runs a repository policy; the Files tab shows the files as the steps
    write them, and the grade arrives at the end."""
    app, handle = make_live_app(prepared(tmp_path))
    seen: list[list[str]] = []
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: isinstance(pilot.app.screen, RunScreen), timeout=60)
        screen = pilot.app.screen
        await pilot.press("5")
        pane = screen.query_one(FilesPane)

        def look() -> bool:
            paths = pane.current.paths() if pane.current is not None else []
            if not seen or seen[-1] != paths:
                seen.append(paths)
            return screen.state.finished

        await until(pilot, look, timeout=240)
        assert screen.state.grade is not None and screen.state.grade.passed
        assert handle.join(60)
        # the pane reads the log on its own 0.25 s timer, so it can show the last step a
        # moment after the run has ended: watch it until then
        final = ["main.py", "model.py", "submission/submission.csv"]
        await eventually(pilot, lambda: look() and seen[-1] == final)
    assert seen[-1] == final
    assert ["main.py", "model.py"] in seen  # seen growing (while main.py ran), not only at the end
