"""Inspect AI logs as agentdeck runs: real logs made by Inspect (mockllm, tool calls
over many turns), checked against what Inspect's own reader returns."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agentdeck.engine import pricing
from agentdeck.engine.events import ModelResponse
from agentdeck.engine.log import LogError, RunLog
from agentdeck.engine.log.inspectlog import SampleChoice, split_spec
from agentdeck.engine.log.markdown import COMPUTED_COST
from agentdeck.tui.cli import app
from agentdeck.tui.runs import find_runs, read_run_info

from doubles import until
from inspect_logs import MODEL, Spec, make_inspect_log, usage_for

ilog = pytest.importorskip("inspect_ai.log", reason="inspect-ai is not installed")

FIX = Path(__file__).parent / "fixtures" / "tui"
TURNS = 12
#: 4 samples x 2 epochs: 1 and 2 submit after TURNS turns (1 right, 2 wrong), 3 crashes
#: at turn 2, 4 never submits and runs into the message limit; every 4th tool call fails.
SPEC = Spec(
    samples=4,
    turns=TURNS,
    epochs=2,
    tool_error_every=4,
    crash_sample=3,
    runaway_sample=4,
    message_limit=40,
)


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("inspect")
    ev = make_inspect_log(d, SPEC)
    js = make_inspect_log(d, Spec(samples=2, turns=3, log_format="json"))
    return {"dir": d, "eval": ev, "json": js}


def model_events(sample: Any) -> list[Any]:
    return [e for e in sample.events if e.event == "model"]


def tool_events(sample: Any) -> list[Any]:
    return [e for e in sample.events if e.event == "tool"]


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


# -- the conversion, against Inspect's reader ------------------------------------------


def test_every_sample_matches_what_inspect_reads(logs: dict[str, Path]) -> None:
    path = logs["eval"]
    summaries = ilog.read_eval_log_sample_summaries(path)
    assert len(summaries) == SPEC.samples * SPEC.epochs
    statuses = set()
    for s in summaries:
        sample = ilog.read_eval_log_sample(path, s.id, s.epoch)
        log = RunLog.open(f"{path}#{s.id}:{s.epoch}")
        assert log.format == "inspect" and log.header is not None
        assert log.header.task == "mock-tools" and log.header.model == "mockllm/model"
        assert log.header.prompt == f"Question #{s.id}: what is 6 x 7?"
        assert log.header.host["cost"] == COMPUTED_COST
        assert [t["name"] for t in log.header.tools] == ["python_expression", "submit"]
        # a step a model call, in order, with the usage Inspect recorded
        mevs = model_events(sample)
        assert log.step_numbers == list(range(1, len(mevs) + 1))
        assert len(mevs) == s.turn_count
        tevs = {t.id: t for t in tool_events(sample)}
        for n, mev in zip(log.step_numbers, mevs, strict=True):
            rec = log.step(n)
            resp = rec.response
            assert isinstance(resp, ModelResponse)
            u = mev.output.usage
            assert resp.usage.input_tokens == u.input_tokens
            assert resp.usage.output_tokens == u.output_tokens
            assert resp.usage.cache_creation_input_tokens == (u.input_tokens_cache_write or 0)
            assert resp.usage.cache_read_input_tokens == (u.input_tokens_cache_read or 0)
            assert resp.usage.as_dict() == {
                "input_tokens": usage_for(n - 1)["input_tokens"],
                "output_tokens": usage_for(n - 1)["output_tokens"],
                "cache_creation_input_tokens": usage_for(n - 1)["input_tokens_cache_write"],
                "cache_read_input_tokens": usage_for(n - 1)["input_tokens_cache_read"],
            }
            assert resp.model == MODEL
            assert resp.cost_usd == pytest.approx(pricing.cost_usd(MODEL, resp.usage))
            assert rec.text == mev.output.message.text
            # the tool calls the model made, each with Inspect's input, output and error
            calls = mev.output.message.tool_calls or []
            assert [c.call.call_id for c in rec.calls] == [c.id for c in calls]
            for cr, tc in zip(rec.calls, calls, strict=True):
                assert cr.call.name == tc.function and cr.call.input == tc.arguments
                assert cr.call.block_index == 2  # after the text block, as in the message
                tev = tevs.get(tc.id)
                if tev is None:  # the crash: the sample ended inside this call
                    assert s.error is not None and cr.result is None
                    continue
                assert cr.result is not None
                assert cr.result.output == tev.result
                if tev.error is not None:
                    assert cr.result.error == tev.error.message
                else:
                    assert cr.result.error is None
        # totals: the sample's usage as Inspect summed it
        tot = log.totals()
        mu = next(iter(s.model_usage.values()))
        assert (tot.input_tokens, tot.output_tokens) == (mu.input_tokens, mu.output_tokens)
        assert tot.cache_creation_input_tokens == mu.input_tokens_cache_write
        assert tot.cache_read_input_tokens == mu.input_tokens_cache_read
        assert tot.steps == len(mevs)
        assert tot.cost_usd == pytest.approx(
            sum(log.step(n).response.cost_usd for n in log.step_numbers)
        )
        assert tot.wall_s == pytest.approx(s.total_time)
        # status and grade: the error, the limit, the scores
        grade = log.grade
        if s.error is not None:
            assert log.status == "error" and "the sandbox died at turn 2" in log.end.message
            assert grade is None
        elif s.limit is not None:
            assert log.status == "limit_exceeded" and "message limit" in log.end.message
            assert s.id == 4
        else:
            assert log.status == "completed"
        if s.scores:
            value = s.scores["includes"].value
            assert grade is not None and grade.passed is (value == "C")
            assert grade.metrics == {"includes": 1.0 if value == "C" else 0.0}
            assert grade.checks[0].met is (value == "C")
            assert grade.details["target"] == "42"
        statuses.add(log.status)
        log.close()
    assert statuses == {"completed", "error", "limit_exceeded"}


def test_tool_errors_and_retries_show_in_steps(logs: dict[str, Path]) -> None:
    log = RunLog.open(f"{logs['eval']}#1:1")
    failed = [n for n in log.step_numbers if log.step(n).failed]
    # every 4th turn's tool raises ToolError (turns 3, 7, 11 -> steps 4, 8, 12)
    assert failed == [4, 8, 12]
    assert "NameError: name 'x3' is not defined" in log.step(4).calls[0].result.error
    crash = RunLog.open(f"{logs['eval']}#3:2")
    errors = [e for n in crash.step_numbers for e in crash.step(n).errors]
    assert any("the sandbox died" in e.message for e in errors)


def test_json_logs_read_the_same(logs: dict[str, Path]) -> None:
    path = logs["json"]
    assert path.suffix == ".json"
    summaries = ilog.read_eval_log_sample_summaries(path)
    for s in summaries:
        log = RunLog.open(f"{path}#{s.id}")
        assert len(log.step_numbers) == s.turn_count == 4
        assert log.totals().input_tokens == next(iter(s.model_usage.values())).input_tokens
        assert log.grade is not None and log.grade.passed is (s.id == 1)


def test_only_the_sample_shown_is_decoded(
    logs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, Any]] = []
    real_sample, real_log = ilog.read_eval_log_sample, ilog.read_eval_log

    def sample(*a: Any, **kw: Any) -> Any:
        calls.append(("sample", a[1:3]))
        return real_sample(*a, **kw)

    def whole(*a: Any, **kw: Any) -> Any:
        calls.append(("log", kw.get("header_only")))
        return real_log(*a, **kw)

    monkeypatch.setattr(ilog, "read_eval_log_sample", sample)
    monkeypatch.setattr(ilog, "read_eval_log", whole)
    rows = [read_run_info(p) for p in find_runs(logs["eval"])]
    assert len(rows) == 8 and all(r.problem is None for r in rows)
    assert ("sample", (2, 2)) not in calls and all(c == ("log", True) for c in calls)
    RunLog.open(f"{logs['eval']}#2:2")
    assert [c for c in calls if c[0] == "sample"] == [("sample", (2, 2))]
    assert all(c[1] is True for c in calls if c[0] == "log")


# -- addressing samples --------------------------------------------------------------


def test_sample_specs(logs: dict[str, Path], tmp_path: Path) -> None:
    path = logs["eval"]
    assert split_spec(f"{path}#3:2") == (path, "3:2")
    assert split_spec(path) == (path, None)
    with pytest.raises(SampleChoice) as info:
        RunLog.open(path)
    assert info.value.samples == 8 and f"agentdeck runs {path}" in str(info.value)
    assert RunLog.open(f"{path}#2").header.task_params["epoch"] == 1  # epoch 1 by default
    with pytest.raises(LogError, match=r"no sample '9'.*1, 2, 3, 4.*epoch of 1-2"):
        RunLog.open(f"{path}#9")
    with pytest.raises(LogError, match="cannot be followed"):
        RunLog.open(f"{path}#1", follow=True)
    single = make_inspect_log(tmp_path, Spec(samples=1, turns=2))
    assert len(RunLog.open(single).step_numbers) == 3  # one sample: no need to name it
    run = tmp_path / "events.jsonl"
    shutil.copy(FIX / "run_a.jsonl", run)
    with pytest.raises(LogError, match="only Inspect AI logs"):
        RunLog.open(f"{run}#1")


def test_damaged_inspect_logs_say_why(tmp_path: Path) -> None:
    bad = tmp_path / "broken.eval"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(LogError, match=r"broken.eval: cannot read .* as an Inspect AI log"):
        RunLog.open(bad)
    r = cli("replay", "--no-ui", str(bad))
    assert r.exit_code == 2 and "Traceback" not in r.output
    other = tmp_path / "config.json"
    other.write_text('{"name": "not a log"}\n')
    assert find_runs(tmp_path) == [bad]  # a JSON file that is no Inspect log is not listed


# -- the commands ------------------------------------------------------------------


def test_runs_lists_inspect_logs_beside_agentdeck_runs(logs: dict[str, Path]) -> None:
    d = logs["dir"]
    (d / "run-a").mkdir(exist_ok=True)
    shutil.copy(FIX / "run_a.jsonl", d / "run-a" / "events.jsonl")
    r = cli("runs", str(d), "--no-ui")
    assert r.exit_code == 0, r.output
    assert "run-a" in r.stdout and logs["eval"].name in r.stdout and logs["json"].name in r.stdout
    assert "8 samples" in r.stdout and "2 samples" in r.stdout
    assert "accuracy 0.333" in r.stdout  # Inspect's headline: 2 of the 6 scored are right
    r = cli("runs", str(logs["eval"]), "--no-ui")
    assert r.exit_code == 0, r.output
    for sid in (1, 2, 3, 4):
        for epoch in (1, 2):
            assert f"#{sid}:{epoch}" in r.stdout
    assert r.stdout.count("limit_exceeded") == 2 and r.stdout.count(" error ") == 2
    rows = {x.name.split()[0]: x for x in map(read_run_info, find_runs(logs["eval"]))}
    assert rows["#1:1"].passed is True and rows["#2:1"].passed is False
    assert rows["#1:1"].steps == TURNS + 1
    assert rows["#3:1"].status == "error" and rows["#3:1"].grade_text == "-"


def test_replay_and_export(logs: dict[str, Path], tmp_path: Path) -> None:
    path = logs["eval"]
    r = cli("replay", "--no-ui", f"{path}#1:2")
    assert r.exit_code == 0, r.output
    assert "Step 13/13" in r.stdout and "PASSED" in r.stdout and "python_expression" in r.stdout
    # a log with several samples: --no-ui prints them all, one after the other
    r = cli("replay", "--no-ui", str(path))
    assert r.exit_code == 0, r.output
    assert r.stdout.count(" of 8 · ") == 8 and r.stdout.count("Prompt ") == 8
    assert r.stdout.index("sample #1:1 · 1 of 8") < r.stdout.index("sample #4:2 · 8 of 8")
    r = cli("export", str(path))
    assert r.exit_code == 2 and "8 samples (2 epochs)" in r.output
    r2 = cli("replay", "--no-ui", str(path), "--sample", "1:2")
    assert r2.exit_code == 0 and r2.stdout == cli("replay", "--no-ui", f"{path}#1:2").stdout
    r = cli("export", f"{path}#2:1", "--format", "md")
    assert r.exit_code == 0, r.output
    assert (
        r.stdout.startswith("# Agent Run Log")
        and "#### Tool Call 2: `python_expression`" in r.stdout
    )
    out = tmp_path / "sample.jsonl"
    r = cli("export", str(path), "--sample", "2:1", "--format", "jsonl", "-o", str(out))
    assert r.exit_code == 0, r.output
    # the exported run is an ordinary agentdeck log with the same steps and totals
    back = RunLog.open(out)
    orig = RunLog.open(f"{path}#2:1")
    assert back.format == "jsonl" and back.step_numbers == orig.step_numbers
    assert back.totals() == orig.totals() and back.grade == orig.grade
    assert back.seal().status == "unsealed"
    r = cli("export", f"{path}#2:1", "--sample", "1")
    assert r.exit_code == 2 and "names a sample already" in r.output


def test_without_inspect_the_commands_say_how_to_install_it(logs: dict[str, Path]) -> None:
    """inspect-ai missing: one line, exit 2, the install hint; the listing names it too."""
    block = (
        "import sys; sys.modules['inspect_ai'] = None; "
        "from agentdeck.tui.cli import main; sys.argv = ['agentdeck'] + sys.argv[1:]; main()"
    )
    env = {**os.environ, "COLUMNS": "200"}
    p = subprocess.run(
        [sys.executable, "-c", block, "replay", "--no-ui", f"{logs['eval']}#1"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert p.returncode == 2, p.stderr
    assert "pip install 'agentdeck[inspect]'" in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    p = subprocess.run(
        [sys.executable, "-c", block, "runs", "--no-ui", str(logs["dir"])],
        capture_output=True,
        text=True,
        env=env,
    )
    assert p.returncode == 0, p.stderr
    assert "skipped" in p.stderr and "agentdeck[inspect]" in p.stderr


# -- the TUI ---------------------------------------------------------------------------


async def test_runs_screen_opens_an_inspect_log_as_its_samples(logs: dict[str, Path]) -> None:
    from agentdeck.tui.app import AgentDeckApp
    from agentdeck.tui.screens.compare import CompareScreen, _label
    from agentdeck.tui.screens.run import RunScreen
    from agentdeck.tui.screens.runs import RunsScreen

    d = logs["dir"]
    app = AgentDeckApp(lambda: RunsScreen(d))
    async with app.run_test(size=(160, 40)) as pilot:
        runs = app.screen
        assert isinstance(runs, RunsScreen)
        await until(pilot, lambda: len(runs.runs) >= 2)
        runs.sort_key, runs.reverse = "name", False
        runs._rebuild()
        row = next(i for i, r in enumerate(runs.shown) if r.path == logs["eval"])
        runs.table.move_cursor(row=row)
        await pilot.press("enter")
        samples = app.screen
        assert isinstance(samples, RunsScreen) and samples.log_dir == logs["eval"]
        await until(pilot, lambda: len(samples.runs) == 8)
        samples.sort_key, samples.reverse = "name", False
        samples._rebuild()
        assert [r.name.split()[0] for r in samples.shown[:2]] == ["#1:1", "#1:2"]
        samples.table.move_cursor(row=0)
        await pilot.press("enter")
        run = app.screen
        assert isinstance(run, RunScreen)
        await until(pilot, lambda: run.state_ready and run.detail_step == 1)
        assert run.steps.count == TURNS + 1
        await pilot.press("escape")
        assert app.screen is samples
        # two samples side by side: 1 (right) and 2 (wrong) make the same calls but
        # their inputs differ from the first step (sample=1 vs sample=2 in the code)
        await pilot.press("space", "j", "j", "space", "c")
        cmp = app.screen
        assert isinstance(cmp, CompareScreen)
        await until(pilot, lambda: cmp.alignment is not None)
        assert cmp.alignment.divergence == 1
        assert cmp.a.format == cmp.b.format == "inspect"
        # labelled sample first: long Inspect file names are clipped at the end
        assert _label(cmp.a).startswith("#1:1 ") and _label(cmp.b).startswith("#2:1 ")


def test_compare_command_needs_a_terminal(logs: dict[str, Path]) -> None:
    r = cli("compare", f"{logs['eval']}#1:1", f"{logs['eval']}#2:1")
    assert r.exit_code == 2 and "needs a terminal" in r.output
    r = cli("compare", f"{logs['eval']}#1:1", f"{logs['eval']}#7")
    assert r.exit_code == 2 and "no sample '7'" in r.output


def test_inspect_log_json_head_sniffing(tmp_path: Path, logs: dict[str, Path]) -> None:
    head = logs["json"].read_bytes()[:200]
    assert json.loads(logs["json"].read_text())["version"] >= 2
    from agentdeck.engine.log.inspectlog import looks_like_inspect

    assert looks_like_inspect(Path("x.json"), head)
    assert not looks_like_inspect(Path("x.json"), b'{"seq":0,"t":1.0,"type":"run_start"')
    assert looks_like_inspect(Path("x.eval"), b"PK\x03\x04")


# -- what real logs hold that mockllm does not make -------------------------------------


def test_retries_own_costs_and_samples_without_events(logs: dict[str, Path]) -> None:
    """Inspect's objects from a real log, edited the way other logs differ: a model
    call that was retried, a provider's own cost, a log that left the events out."""
    from agentdeck.engine.log.inspectlog import sample_events

    path = logs["eval"]
    header = ilog.read_eval_log(path, header_only=True)
    sample = ilog.read_eval_log_sample(path, 1, 1)
    events = list(sample.events)
    i = next(k for k, e in enumerate(events) if e.event == "model")
    usage = events[i].output.usage.model_copy(update={"total_cost": 0.125})
    output = events[i].output.model_copy(update={"usage": usage})
    events[i] = events[i].model_copy(update={"retries": 2, "output": output})
    log = RunLog.from_events(sample_events(header, sample.model_copy(update={"events": events})))
    first = log.step(1)
    assert first.retried and "retried 2 times" in first.warnings[0].message
    assert first.response.cost_usd == 0.125  # Inspect's cost, not the price table's
    assert log.step(2).response.cost_usd == pytest.approx(
        pricing.cost_usd(MODEL, log.step(2).response.usage)
    )
    # no events: the steps come from the messages, the totals from the sample's usage
    bare = RunLog.from_events(sample_events(header, sample.model_copy(update={"events": []})))
    assert len(bare.step_numbers) == TURNS + 1
    assert [bare.step(n).tool_names for n in bare.step_numbers] == [
        [tc.function for tc in m.tool_calls] for m in sample.messages if m.role == "assistant"
    ]
    mu = next(iter(sample.model_usage.values()))
    assert bare.totals().input_tokens == mu.input_tokens
    assert bare.step(2).calls[0].result.output == sample.messages[5].text
    last = bare.step(bare.step_numbers[-1])
    assert [w.code for w in last.warnings] == ["no_events"]
