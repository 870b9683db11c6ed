"""The TUI's non-widget logic: buffers, state folding, step reading, plots, runs, keymap."""

from __future__ import annotations

import filecmp
import shutil
from pathlib import Path

import pytest

from agentdeck.engine.errors import exit_code
from agentdeck.engine.events import (
    ModelDelta,
    ModelResponse,
    RunEnd,
    RunStart,
    StepStart,
    ToolCall,
    ToolOutputChunk,
    ToolResult,
    Usage,
)
from agentdeck.engine.log import RunLog
from agentdeck.tui import format as fmt
from agentdeck.tui.compare import align
from agentdeck.tui.keymap import KeymapError, load_keymap
from agentdeck.tui.live import LineRing, LiveBuffer, StreamText
from agentdeck.tui.runs import filter_runs, find_runs, read_run_info
from agentdeck.tui.runstate import Changed, Phase, RunState, context_window
from agentdeck.tui.sources import LiveSource
from agentdeck.tui.stepdata import input_text, read_step, step_search_text, summarize
from agentdeck.tui.stepindex import StepIndex
from agentdeck.tui.widgets.plot import Series, bar_chart, line_chart

from doubles import (
    FIXTURE_SPECS,
    FakeRun,
    FakeRunConfig,
    SyntheticSpec,
    make_fixtures,
    synthetic_events,
    write_synthetic_log,
)

FIX = Path(__file__).parent / "fixtures" / "tui"


def test_fixtures_are_reproducible(tmp_path: Path) -> None:
    made = make_fixtures(tmp_path)
    assert {p.name for p in made} == set(FIXTURE_SPECS)
    for p in made:
        assert filecmp.cmp(p, FIX / p.name, shallow=False), f"{p.name} differs: regenerate"


# -- live buffer and line ring ------------------------------------------------------------


def test_line_ring_keeps_newest_lines_and_cuts_long_ones() -> None:
    ring = LineRing(max_lines=3, max_line_chars=10)
    done = ring.feed("a\nb\nc\nd\n")
    assert done == ["a", "b", "c", "d"][-3:]
    assert list(ring.lines) == ["b", "c", "d"]
    ring.feed("x" * 25 + "\n")
    assert ring.lines[-1] == "x" * 10 + " … [15 more characters]"
    ring.feed("half")
    assert ring.partial == "half"
    ring.feed(" line\n")
    assert ring.lines[-1] == "half line"


def test_line_ring_carriage_return_rewinds_the_line() -> None:
    ring = LineRing()
    ring.feed("progress 10%\rprogress 50%\rprogress 100%\n")
    assert list(ring.lines) == ["progress 100%"]


def test_live_buffer_coalesces_and_bounds_output() -> None:
    buf = LiveBuffer(max_chars=10_000)
    buf(StepStart(step=1))  # not live-only: the UI reads it from the log, the buffer drops it
    for _ in range(5000):  # 500 KB of output between two drains
        buf(ToolOutputChunk(step=1, call_id="c", stream="stdout", text="y" * 99 + "\n"))
    buf(ModelDelta(step=1, block_index=0, text="hel"))
    buf(ModelDelta(step=1, block_index=0, text="lo"))
    items = buf.drain()
    assert len(items) == 2
    out, delta = items
    assert isinstance(out, StreamText) and out.kind == "output"
    assert out.chars <= 20_000 and out.dropped >= 480_000
    assert out.text.endswith("y\n")
    assert isinstance(delta, StreamText) and delta.text == "hello"
    assert buf.drain() == []


def test_exit_codes() -> None:
    assert exit_code("completed", True) == 0
    assert exit_code("completed", False) == 1
    assert exit_code("interrupted", None) == 130  # as agentdeck.engine.run: stopped by the user
    assert exit_code("max_steps_reached", None) == 1
    assert exit_code("error", None) == 3
    assert exit_code("limit_exceeded", None) == 1
    assert exit_code(None, None) == 3  # no run_end: the run died


# -- state folding ------------------------------------------------------------------------


def test_run_state_totals_match_the_log(tmp_path: Path) -> None:
    spec = SyntheticSpec(steps=25, calibration=True)
    state = RunState()
    changed = state.apply_all(list(synthetic_events(spec)))
    assert changed & Changed.METRICS
    log = RunLog.open(write_synthetic_log(tmp_path / "r.jsonl", spec))
    tot = log.totals()
    assert state.totals.input_tokens == tot.input_tokens
    assert state.totals.output_tokens == tot.output_tokens
    assert state.total_cost == pytest.approx(tot.cost_usd)
    assert state.step_order == list(range(1, 26))
    assert state.finished and state.phase == Phase.FINISHED
    assert state.grade is not None and state.grade.passed
    assert set(state.metrics) == {"train_loss", "val_accuracy"}
    assert len(state.metrics["train_loss"]) == 8
    cum = state.cumulative(4)
    assert cum[0].input_tokens == sum(state.u_in[:5])
    assert state.context_used(0) == state.u_in[0] + state.u_cr[0]


def test_run_state_phases_follow_the_stream() -> None:
    events = list(synthetic_events(SyntheticSpec(steps=6)))
    state = RunState()
    seen = []
    for ev in events:
        state.apply(ev)
        seen.append(state.phase)
        if ev.type == "warning":
            assert state.phase == Phase.RETRYING
    assert Phase.WAITING in seen and Phase.TOOL in seen and seen[-1] == Phase.FINISHED
    live = RunState()
    for ev in events[:4]:  # run_start, step_start, model_response, tool_call
        live.apply(ev)
    live.apply(ModelDelta(step=1, block_index=0, text="thinking"))
    summary = live.live_summary(1)
    assert summary is not None and not summary.finished
    assert summary.tools == ("python_expression",)


class _OutputPane:
    """Records what a source feeds the Output pane (the ``OutputSink`` surface)."""

    def __init__(self) -> None:
        self.call_id: str | None = None
        self.titles: list[str] = []
        self.text: dict[str, str] = {}

    def start_call(self, call_id: str, title: str) -> None:
        if call_id != self.call_id:
            self.call_id = call_id
            self.titles.append(title)

    def feed(self, text: str, *, stream: str = "stdout", dropped: int = 0) -> None:
        assert self.call_id is not None
        self.text[self.call_id] = self.text.get(self.call_id, "") + text


def test_live_source_folds_the_log_and_takes_only_streamed_text_from_the_buffer(
    tmp_path: Path,
) -> None:
    buffer = LiveBuffer()
    run = FakeRun(FakeRunConfig(log_dir=tmp_path), [buffer])  # not started: events by hand
    emit = run.bus.emit
    source = LiveSource(run, buffer)
    state = source.load(lambda: False)
    assert state is not None and source.log is None  # nothing written yet
    out = _OutputPane()

    def poll() -> Changed:
        """One round: the log indexed and folded, then the text drained before it shown."""
        return source.poll(state, out) | source.poll(state, out)

    def call(step: int) -> ToolCall:
        return ToolCall(
            step=step, call_id=f"c{step}", name="python_expression", input={}, block_index=1
        )

    def chunk(step: int, text: str) -> ToolOutputChunk:
        return ToolOutputChunk(step=step, call_id=f"c{step}", stream="stdout", text=text)

    emit(RunStart(run_id="r", task="t", agent="a", max_steps=5, prompt="p"))
    emit(StepStart(step=1))
    emit(ModelDelta(step=1, block_index=0, text="hel"))
    emit(ModelDelta(step=1, block_index=0, text="lo"))
    assert poll() & Changed.TEXT
    assert source.log is not None and source.log.step_numbers == [1]
    assert state.header is not None and state.current_step == 1
    assert state.live_text == "hello" and state.phase == Phase.STREAMING
    emit(
        ModelResponse(
            step=1,
            message_id="m1",
            stop_reason="tool_use",
            content=[{"type": "tool_use", "id": "c1", "name": "python_expression", "input": {}}],
            usage=Usage(input_tokens=10, output_tokens=2),
        )
    )
    emit(call(1))
    emit(chunk(1, "a\n"))
    emit(ModelDelta(step=1, block_index=0, text=" late"))  # after the response: stale
    poll()
    assert state.phase == Phase.TOOL and state.live_text == "hello"
    assert out.titles == ["step 1 · python_expression"] and out.text == {"c1": "a\n"}
    # within one round: the rest of call 1, the next step and its call; the pane shows the
    # newest call, and every piece of output once (from the buffer, not the log's chunks)
    emit(chunk(1, "b\n"))
    emit(ToolResult(step=1, call_id="c1", output="a\nb\n"))
    emit(StepStart(step=2))
    emit(call(2))
    emit(chunk(2, "x\n"))
    poll()
    assert out.titles[-1] == "step 2 · python_expression"
    assert out.text == {"c1": "a\n", "c2": "x\n"}
    # text that arrives after the log was read waits for the next round, which folds its
    # step first (shown at once, it would be dropped as ahead of the log)
    source.poll(state, out)  # the log
    emit(ToolResult(step=2, call_id="c2", output="x\n"))
    emit(StepStart(step=3))
    emit(ModelDelta(step=3, block_index=0, text="third"))
    source.poll(state, out)  # the text drained before: none
    assert state.current_step == 2 and state.live_text == ""
    poll()
    assert state.current_step == 3 and state.live_text == "third"
    assert state.totals.input_tokens == 10 and state.step_order == [1, 2, 3]
    # the step in progress is the log's last step: no row beyond the log's
    index = StepIndex(source.log, state, wall_clock=True)
    assert index.count == 3 and index.is_finished(1) and not index.is_finished(2)
    emit(call(3))
    poll()
    assert index.summary(2).tools == ("python_expression",) and not index.summary(2).finished
    # the poll that folds run_end also shows all the text left (the run wrote nothing after)
    emit(chunk(3, "y\n"))
    emit(RunEnd(status="completed"))
    source.poll(state, out)
    assert state.finished and out.text["c3"] == "y\n" and buffer.drain() == []


def test_context_window() -> None:
    assert context_window("claude-haiku-4-5") == 200_000
    assert context_window("gpt-x") is None
    assert context_window(None) is None


# -- reading steps ----------------------------------------------------------------------


def test_read_step_skips_output_chunks_unless_asked() -> None:
    log = RunLog.open(FIX / "long_output.jsonl")
    plain = read_step(log, 1)
    full = read_step(log, 1, chunks=True)
    assert plain.calls[0].chunks == []
    assert len(full.calls[0].chunks) > 40
    assert full.calls[0].streamed_text == plain.calls[0].result.output["result"]
    # everything but the chunks is the same (the reader skips them by type code alone)
    assert (plain.start, plain.response, plain.calls[0].result, plain.t_end) == (
        full.start,
        full.response,
        full.calls[0].result,
        full.t_end,
    )
    s = summarize(plain)
    assert s.tools == ("python_expression",) and s.finished and s.duration_s == 2.0
    assert "epoch" in step_search_text(plain)


def test_seed_markdown_steps() -> None:
    log = RunLog.open(FIX / "seed_000.md")
    rec = read_step(log, 2)
    code, lexer = input_text(rec.calls[0].call)
    assert lexer == "python" and "import numpy as np" in code
    assert summarize(rec).usage.input_tokens == 1571


# -- plots --------------------------------------------------------------------------------


def test_line_chart_fits_its_box_and_downsamples() -> None:
    n = 100_000
    s = Series(
        "loss", [float(i) for i in range(n)], [1.0 / (1 + i) for i in range(n)], list(range(n))
    )
    lines = line_chart([s], 60, 8, playhead=n // 2)
    assert len(lines) == 8
    assert all(line.cell_len <= 60 for line in lines)
    assert any(ch in "".join(line.plain for line in lines) for ch in "⠁⠂⠄⡀⣀⠉")


def test_line_chart_handles_a_single_point_and_empty() -> None:
    assert len(line_chart([Series("x", [1.0], [0.5])], 30, 5)) == 5
    assert line_chart([], 30, 5)[0].plain == "(no data)"


def test_bar_chart_buckets_values() -> None:
    lines = bar_chart(list(range(1000)), 40, 4, playhead=10)
    assert len(lines) == 4 and all(line.cell_len == 40 for line in lines)
    assert lines[0].plain.rstrip().endswith("█")


def test_formatters() -> None:
    assert fmt.tokens(12_345) == "12.3k" and fmt.tokens(2_500_000) == "2.50M"
    assert fmt.duration(185) == "3m05s" and fmt.duration(None) == "-"
    assert fmt.cost(0.0042) == "$0.0042" and fmt.cost(None) == "-"
    assert fmt.output_text({"result": "hi\n", "error": None}) == "hi\n"
    assert fmt.clip("a  b\nc", 3) == "a …" and fmt.clip("ab", 5) == "ab"
    assert fmt.value(0.53521) == "0.5352" and fmt.value(12390.5) == "12,390"
    assert fmt.value(6.952e-05) == "6.952e-05" and fmt.value(3) == "3"


# -- runs and comparison -------------------------------------------------------------------


def _log_dir(tmp: Path) -> Path:
    d = tmp / "runs"
    (d / "run-a").mkdir(parents=True)
    shutil.copy(FIX / "run_a.jsonl", d / "run-a" / "events.jsonl")
    shutil.copy(FIX / "run_b.jsonl", d / "run_b.jsonl")
    shutil.copy(FIX / "seed_000.md", d / "seed_000.md")
    (d / "broken.jsonl").write_text("this is not a log\n")
    (d / "notes.txt").write_text("not a log either\n")
    return d


def test_find_and_read_runs(tmp_path: Path) -> None:
    d = _log_dir(tmp_path)
    paths = find_runs(d)
    assert [p.relative_to(d).as_posix() for p in paths] == [
        "broken.jsonl",
        "run-a/events.jsonl",
        "run_b.jsonl",
        "seed_000.md",
    ]
    infos = {i.name: i for i in map(read_run_info, paths)}
    assert infos["broken.jsonl"].problem and infos["broken.jsonl"].status == "unreadable"
    a = infos["run-a"]
    assert (a.task, a.steps, a.status, a.grade_text) == ("noisy-labels", 10, "completed", "passed")
    assert infos["run_b.jsonl"].grade_text == "failed"
    assert infos["seed_000.md"].grade_text == "not submitted"
    assert [r.name for r in filter_runs(list(infos.values()), "haiku")] == [
        "run_b.jsonl",
        "seed_000.md",
    ]


def test_align_finds_first_divergence() -> None:
    a, b = RunLog.open(FIX / "run_a.jsonl"), RunLog.open(FIX / "run_b.jsonl")
    al = align(a, b)
    assert al.divergence == 4
    assert not al.differs(3) and al.differs(4)
    assert align(a, RunLog.open(FIX / "run_a.jsonl")).divergence is None


def test_align_of_runs_of_different_length(tmp_path: Path) -> None:
    short = write_synthetic_log(tmp_path / "s.jsonl", SyntheticSpec(steps=6, seed=2))
    long = write_synthetic_log(
        tmp_path / "l.jsonl", SyntheticSpec(steps=8, seed=2, status="max_steps_reached")
    )
    al = align(RunLog.open(short), RunLog.open(long))
    # the short run submitted at step 6 where the long one kept analysing
    assert al.divergence == 6 and al.steps == list(range(1, 9))


# -- keymap ---------------------------------------------------------------------------------


def test_keymap_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "keymap.toml"
    p.write_text('[keymap]\n"run.play" = "p"\n')
    assert load_keymap(p) == {"run.play": "p"}
    p.write_text('[keymap]\n"run.play" = 3\n')
    with pytest.raises(KeymapError, match="must be a string"):
        load_keymap(p)
    p.write_text("[keymap\n")
    with pytest.raises(KeymapError, match="cannot read keymap"):
        load_keymap(p)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "none"))
    monkeypatch.delenv("AGENTDECK_KEYMAP", raising=False)
    assert load_keymap() == {}


def test_fold_series_share_a_chart() -> None:
    from agentdeck.tui.widgets.metrics import group_series

    names = [
        "cnn/fold1/val_acc",
        "cnn/fold2/val_acc",
        "cnn/cv/oof_acc",
        "fold1/train_loss",
        "fold2/train_loss",
        "loss",
        "round2/mlp/fold3/lr",
    ]
    groups = group_series((n, n) for n in names)
    assert list(groups) == [
        "cnn/fold*/val_acc",
        "cnn/cv/oof_acc",
        "fold*/train_loss",
        "loss",
        "round2/mlp/fold*/lr",
    ]
    assert [n for n, _ in groups["cnn/fold*/val_acc"]] == ["cnn/fold1/val_acc", "cnn/fold2/val_acc"]
