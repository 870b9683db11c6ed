"""What a new user sees first (issue 11): every screen fitted to 80x24, the compare
summary's essentials, the Metrics tab's order and scrolling, the keys ? lists."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

from rich.console import Console
from textual.widgets import DataTable, Static

from agentdeck.engine.log import RunLog
from agentdeck.tui import format as fmt
from agentdeck.tui.app import AgentDeckApp
from agentdeck.tui.compare import delta, essential_rows, other_rows
from agentdeck.tui.runs import RunInfo
from agentdeck.tui.screens.compare import CompareScreen, MetricsCompareScreen
from agentdeck.tui.screens.help import HelpScreen
from agentdeck.tui.screens.run import RunScreen
from agentdeck.tui.screens.runs import RunsScreen, plan_columns, short_name
from agentdeck.tui.sources import ReplaySource
from agentdeck.tui.theme import DEFAULT_PALETTE
from agentdeck.tui.widgets.footer import AppFooter, fit
from agentdeck.tui.widgets.metrics import MetricsPane, render_metrics
from agentdeck.tui.widgets.status import StatusBar, StatusInfo

from doubles import until

FIX = Path(__file__).parent / "fixtures" / "tui"


def state_of(name: str):  # type: ignore[no-untyped-def]
    state = ReplaySource(RunLog.open(FIX / name)).load(lambda: False)
    assert state is not None
    return state


def plain(renderable: object, width: int = 120) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


# -- formatting and layout units ------------------------------------------------------------


def test_clip_middle_keeps_the_head_and_the_tail() -> None:
    assert fmt.clip_middle("20261202-011920…fba4", 40) == "20261202-011920…fba4"
    cut = fmt.clip_middle("20261202-011920-action-policy-fba4", 18)
    assert len(cut) == 18 and cut.startswith("20261202-01") and cut.endswith("-fba4")
    assert fmt.clip_middle("abcdefgh", 5) == fmt.clip("abcdefgh", 5)


def test_runs_columns_keep_the_task_at_80_columns() -> None:
    needs = {"mark": 1, "name": 22, "task": 13, "agent": 24, "status": 17, "steps": 5}
    needs |= {"tokens": 6, "cost": 7, "grade": 13, "date": 16}
    narrow = plan_columns(80, needs)
    assert {"mark", "name", "task", "status", "grade", "agent"} <= set(narrow)
    assert "date" not in narrow
    assert narrow["grade"] == 13  # "not submitted" is never cut
    assert sum(w + 2 for w in narrow.values()) <= 80
    wide = plan_columns(200, needs)
    assert list(wide) == [
        "mark",
        "name",
        "task",
        "agent",
        "status",
        "steps",
        "tokens",
        "cost",
        "grade",
        "date",
    ]
    assert wide["name"] == 22 and wide["agent"] == 24
    # the task in its own column: the run id leaves it out
    r = RunInfo(path=Path("x"), name="20261202-011920-noisy-labels-4a7a", task="noisy-labels")
    assert short_name(r, True) == "20261202-011920…4a7a"
    assert short_name(r, False) == r.name


def test_footer_fit_keeps_help_and_quit() -> None:
    items = [
        ("quit_run", "q", "Quit"),
        ("follow", "f", "Follow"),
        ("search", "/", "Search"),
        ("play", "space", "Play"),
        ("jump", ":", "Jump"),
        ("full_output", "v", "Full output"),
        ("app.help", "?", "Help"),
    ]
    compact, kept, palette = fit(items, 160, 12)
    assert not compact and kept == list(range(7)) and palette
    compact, kept, _ = fit(items, 80, 12)
    assert compact and kept == list(range(7))  # every key, compact
    compact, kept, palette = fit(items, 30, 12)
    assert compact and not palette
    assert 0 in kept and 6 in kept and len(kept) < 7
    assert sum(len(items[i][1]) + len(items[i][2]) + 2 for i in kept) <= 29


async def test_status_bar_shows_the_total_cost() -> None:
    log = RunLog.open(FIX / "run_a.jsonl")
    app = AgentDeckApp(lambda: RunScreen(log, mode="replay"))
    async with app.run_test(size=(80, 24)) as pilot:
        run = app.screen
        assert isinstance(run, RunScreen)
        await until(pilot, lambda: run.state_ready)
        bar = run.query_one(StatusBar)
        text = str(bar.render())
        assert fmt.cost(run.state.total_cost) in text and "PASSED" in text
        assert len(text) <= 80
        wide = bar.compose_text(run.state, StatusInfo("replay"), 160).plain
        assert "claude/claude-sonnet-4-5" in wide and fmt.cost(run.state.total_cost) in wide


def test_compare_essentials_and_the_rest() -> None:
    sa, sb = state_of("run_a.jsonl"), state_of("run_b.jsonl")
    rows = essential_rows(sa, sb)
    assert [r.label for r in rows] == [
        "result",
        "f1",
        "precision",
        "recall",
        "steps",
        "tokens",
        "cost",
        "time",
    ]
    result, f1 = rows[0], rows[1]
    assert result.a.text == "completed · passed" and result.b.text == "completed · failed"
    assert result.differs and result.a.ok is True and result.b.ok is False
    assert f1.a.text == "0.71 ✓" and f1.b.text == "0.52 ✗" and f1.delta == "−0.19"
    steps = rows[4]
    assert steps.a.text == steps.b.text == "10" and not steps.differs and steps.delta == ""
    rest = other_rows(sa, sb)
    assert {r.label for r in rest} == {"train_loss", "val_accuracy"}
    assert {r.group for r in rest} == {"agent"}
    # folds are one row (the mean of their last values), grouped by source
    sp = state_of("policy_run.jsonl")
    labels = {r.label: r for r in other_rows(sp, sp)}
    assert "mlp/fold*/lr" in labels and labels["macro_f1"].group == "grade"
    groups = [r.group for r in other_rows(sp, sp)]
    assert groups == sorted(groups, key=["grade", "agent", "trainer", "system"].index)
    assert delta(2, 3, relative=True) == "+50%" and delta(1.0, 1.0) == "" and delta("a", 1) == ""


def test_metrics_layout_order() -> None:
    state = state_of("policy_run.jsonl")
    text = plain(render_metrics(state, None, DEFAULT_PALETTE), 100)
    order = [
        "grade  PASSED",
        "✓ accuracy >= 0.80",
        "confusion matrix",
        "reliability",
        "also macro_f1",
        "single value",
        "trainer · 2 charts",
        "system (the run's CPU and memory) · 2 charts",
    ]
    at = [text.index(s) for s in order]
    assert at == sorted(at), text
    # single values are table rows, not one-dot charts; so is a constant learning rate
    table = text[text.index("single value") : text.index("trainer ·")]
    for name in ("temperature", "val_ece_before_scaling", "val_ece_after_scaling", "lr"):
        assert name in table
    assert "temperature  last" not in text and "lr  2 series" not in text
    assert "mlp/fold*/train_loss  2 series" in text
    # no agent charts: the agent logged only single values
    assert "agent (logged by the agent's code)" not in text


def test_metrics_scalars_logged_after_the_playhead_are_dim() -> None:
    state = state_of("policy_run.jsonl")
    from agentdeck.tui.widgets.metrics import scalar_table

    rows = [(k, [(k, m)]) for k, m in state.metrics.items() if k == "temperature"]
    table = scalar_table(rows, playhead=1)
    assert table.rows[0].style == "dim"
    assert scalar_table(rows, playhead=3).rows[0].style is None


# -- pilot: the screens at 80x24 ------------------------------------------------------------


def footer_text(app: AgentDeckApp) -> str:
    footer = app.screen.query_one(AppFooter)
    return " ".join(
        f"{k.key_display} {k.description}" for k in footer.children if hasattr(k, "key_display")
    )


async def test_metrics_tab_scrolls_from_the_keyboard() -> None:
    log = RunLog.open(FIX / "policy_run.jsonl")
    app = AgentDeckApp(lambda: RunScreen(log, mode="replay"))
    async with app.run_test(size=(80, 24)) as pilot:
        run = app.screen
        assert isinstance(run, RunScreen)
        await until(pilot, lambda: run.state_ready)
        await pilot.press("G", "4")
        pane = run.query_one(MetricsPane)
        await until(pilot, lambda: app.focused is pane and pane.max_scroll_y > 0)
        await pilot.press("j", "j", "j")
        await until(pilot, lambda: pane.scroll_y >= 3)
        await pilot.press("pagedown")
        await until(pilot, lambda: pane.scroll_y > 6)
        await pilot.press("G")
        await until(pilot, lambda: pane.scroll_y == pane.max_scroll_y)
        assert run.steps.cursor == 5  # j/k/G scrolled the pane, not the steps
        await pilot.press("g")
        await until(pilot, lambda: pane.scroll_y == 0)
        await pilot.press("escape")
        assert app.focused is run.steps
        await pilot.press("k")
        assert run.steps.cursor == 4
        # the Tokens tab likewise; a tab that follows the steps gives the focus back
        await pilot.press("3")
        await until(pilot, lambda: app.focused is run.query_one("#tokens"))
        await pilot.press("1")
        await until(pilot, lambda: app.focused is run.steps)
        await until(pilot, lambda: "? Help" in footer_text(app))  # the footer composes late


async def test_help_lists_the_scrolling_keys_and_ctrl_c() -> None:
    log = RunLog.open(FIX / "run_a.jsonl")
    app = AgentDeckApp(lambda: RunScreen(log, mode="replay"), keymap={"pane.down": "J,down"})
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        help_ = app.screen
        assert isinstance(help_, HelpScreen)
        titles = [t for t, _ in help_.sections]
        assert any("Detail" in t for t in titles) and any("Metrics" in t for t in titles)
        ids = {ident: keys for keys, _, ident in help_.rows}
        assert "j" in ids["detail.down"] and "pgdn" in ids["detail.page_down"]
        assert "J" in ids["pane.down"]  # as remapped
        assert "^c" in ids["app.interrupt"]
        assert not any("Scroll Left" in d for _, d, _ in help_.rows)
        await pilot.press("escape")
        assert isinstance(app.screen, RunScreen)


async def test_runs_screen_at_80_columns_shows_the_task(tmp_path: Path) -> None:
    d = tmp_path / "logs"
    (d / "20231114-221320-action-policy-5f3a").mkdir(parents=True)
    shutil.copy(FIX / "policy_run.jsonl", d / "20231114-221320-action-policy-5f3a/events.jsonl")
    shutil.copy(FIX / "seed_000.md", d / "seed_000.md")
    app = AgentDeckApp(lambda: RunsScreen(d))
    async with app.run_test(size=(80, 24)) as pilot:
        runs = app.screen
        assert isinstance(runs, RunsScreen)
        await until(pilot, lambda: len(runs.runs) == 2)
        await pilot.pause(0.1)
        table = runs.query_one(DataTable)
        assert [str(c.key.value) for c in table.columns.values()] == [
            "mark",
            "name",
            "task",
            "agent",
            "status",
            "grade",
        ]
        cells = {str(table.get_row_at(i)[1]): table.get_row_at(i) for i in range(2)}
        policy = cells["20231114-221320…5f3a"]
        assert str(policy[2]) == "action-policy" and str(policy[5]) == "passed"
        assert str(cells["seed_000.md"][5]) == "not submitted"
        assert sum(c.get_render_width(table) for c in table.columns.values()) <= 80
        await until(pilot, lambda: "? Help" in footer_text(app))  # the footer composes late


async def test_compare_summary_essentials_and_all_metrics() -> None:
    a, b = RunLog.open(FIX / "run_a.jsonl"), RunLog.open(FIX / "run_b.jsonl")
    app = AgentDeckApp(lambda: CompareScreen(a, b))
    async with app.run_test(size=(80, 24)) as pilot:
        cmp = app.screen
        assert isinstance(cmp, CompareScreen)
        await until(pilot, lambda: cmp.alignment is not None)
        await pilot.pause(0.1)
        summary = cmp.query_one("#cmp-summary", Static)
        text = plain(summary.content, summary.size.width)
        lines = text.splitlines()
        assert "…" not in " ".join(lines[1:])  # only the run labels may be cut
        for label in ("result", "f1", "precision", "recall", "steps", "tokens", "cost", "time"):
            assert any(line.strip().startswith(label) for line in lines), label
        assert "≠ −0.19" in text and "◆ step 4" in text and "m: 2 more metrics" in text
        assert "train_loss" not in text  # the rest is one key away
        assert summary.size.height == len(lines)  # all of it fits at 80x24
        await pilot.press("m")
        assert isinstance(app.screen, MetricsCompareScreen)
        full = plain(app.screen.renderable, 76)
        assert "train_loss" in full and "val_accuracy" in full and "f1" in full
        await pilot.press("m")
        assert app.screen is cmp
        await until(pilot, lambda: "? Help" in footer_text(app))  # the footer composes late
