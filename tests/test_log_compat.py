"""Every log format agentdeck has written stays readable.

``tests/fixtures/compat/`` keeps one real log per schema version, named
``log-<version>-<what>.jsonl`` (``log-1-v0.1.0-noisy-labels-digits.jsonl`` was
written by agentdeck 0.1.0 with schema ``agentdeck.log/1``). Each one is replayed,
exported (markdown and JSONL), opened in the compare screen and totalled by
the current code. When the event model changes, bump the schema's minor version
in ``engine/events.py`` and add a fixture of the new version here:
``test_the_current_schema_has_a_fixture`` fails until there is one.

The committed examples (``logs/examples/``) are checked the same way: listed,
replayed, exported.
"""

from __future__ import annotations

import importlib.util
import io
import re
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from agentdeck.engine.events import SCHEMA, ModelResponse, Totals, schema_version
from agentdeck.engine.log import RunLog
from agentdeck.engine.log.markdown import import_markdown
from agentdeck.tui.batches import find_batches, read_batch_info
from agentdeck.tui.cli import app
from agentdeck.tui.headless import print_log
from agentdeck.tui.runs import find_runs, read_run_info

from doubles import until

ROOT = Path(__file__).resolve().parents[1]
COMPAT = Path(__file__).parent / "fixtures" / "compat"
FIXTURES = sorted(COMPAT.glob("log-*.jsonl"))
EXAMPLES = ROOT / "logs" / "examples"
NAME = re.compile(r"^log-(\d+(?:\.\d+)?)-.+\.jsonl$")


def cli(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args))


def test_fixtures_are_named_by_their_schema_version() -> None:
    assert FIXTURES, f"no log-*.jsonl in {COMPAT}"
    for path in FIXTURES:
        m = NAME.match(path.name)
        assert m, f"{path.name}: expected log-<version>-<what>.jsonl"
        log = RunLog.open(path)
        assert log.header is not None
        assert log.header.schema == f"agentdeck.log/{m.group(1)}", path.name


def test_the_current_schema_has_a_fixture() -> None:
    """A new minor (a new event type or field) needs a fixture written by it."""
    versions = {schema_version(RunLog.open(p).header.schema) for p in FIXTURES}
    assert schema_version(SCHEMA) in versions, (
        f"no fixture of {SCHEMA} in {COMPAT}: add a real log written by this version as "
        f"log-{SCHEMA.rsplit('/', 1)[1]}-<what>.jsonl"
    )


def _totals_from_steps(log: RunLog) -> Totals:
    tot = Totals()
    for n in log.step_numbers:
        resp = log.step(n).response
        if isinstance(resp, ModelResponse):
            tot.add_response(resp.usage, resp.cost_usd)
    return tot


@pytest.mark.parametrize("path", FIXTURES, ids=[p.name for p in FIXTURES])
def test_old_logs_replay_export_and_total(path: Path, tmp_path: Path) -> None:
    log = RunLog.open(path)
    events = list(log.events(skip_invalid=False))  # every line is a valid event today
    assert len(events) == len(log) and not log.warnings
    assert log.step_numbers == list(range(1, len(log.step_numbers) + 1))
    assert log.end is not None and log.grade is not None
    # totals: run_end's agree with the steps'
    tot, summed = log.totals(), _totals_from_steps(log)
    assert tot.steps == len(log.step_numbers)
    assert tot.usage() == summed.usage()
    # replay --no-ui: every step, the grade, no unreadable lines
    r = cli("replay", "--no-ui", str(path))
    assert r.exit_code == 0, r.output
    steps = re.findall(r"^Step (\d+)/", r.stdout, re.M)
    assert [int(s) for s in steps] == log.step_numbers
    assert "unreadable" not in r.stdout and ("PASSED" in r.stdout or "FAILED" in r.stdout)
    # export jsonl: the current writer's encoding of the same run
    out = tmp_path / "events.jsonl"
    r = cli("export", str(path), "--format", "jsonl", "-o", str(out))
    assert r.exit_code == 0, r.output
    again = RunLog.open(out)
    assert again.step_numbers == log.step_numbers
    assert again.totals() == tot and again.grade == log.grade and again.status == log.status
    # export md: the seed layout, which imports back to the same steps and tool calls
    r = cli("export", str(path), "--format", "md")
    assert r.exit_code == 0, r.output
    back = RunLog.from_events(import_markdown(r.stdout, source="export.md"))
    assert back.step_numbers == log.step_numbers
    assert [back.step(n).tool_names for n in back.step_numbers] == [
        log.step(n).tool_names for n in log.step_numbers
    ]
    assert back.grade is not None and back.grade.passed == log.grade.passed


@pytest.mark.parametrize("path", FIXTURES, ids=[p.name for p in FIXTURES])
async def test_old_logs_open_in_the_compare_screen(path: Path, tmp_path: Path) -> None:
    """An old log beside the same run written by today's code: the same calls throughout."""
    from agentdeck.tui.app import AgentDeckApp
    from agentdeck.tui.screens.compare import CompareScreen

    new = tmp_path / "now.jsonl"
    assert cli("export", str(path), "--format", "jsonl", "-o", str(new)).exit_code == 0
    a, b = RunLog.open(path), RunLog.open(new)
    app = AgentDeckApp(lambda: CompareScreen(a, b))
    async with app.run_test(size=(160, 48)) as pilot:
        cmp = app.screen
        assert isinstance(cmp, CompareScreen)
        await until(pilot, lambda: cmp.alignment is not None)
        assert cmp.alignment.divergence is None
        assert cmp.view.steps == a.step_numbers
        sa, _ = cmp.states
        assert sa.grade is not None and sa.grade.passed == a.grade.passed
        await pilot.press("n", "G")


# -- the committed examples ------------------------------------------------------------


def _load_make():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("examples_make", EXAMPLES / "make.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def _replays_unsealed(path: Path) -> None:
    with RunLog.open(path) as log:
        assert not log.warnings, (path, log.warnings)
        list(log.events(skip_invalid=False))
        out = io.StringIO()
        print_log(log, Console(file=out, width=120))
        assert "unreadable" not in out.getvalue()
        # committed examples are unsealed (see logs/examples/README.md)
        assert log.seal().status == "unsealed"
        assert log.header is not None and "seal_key" not in log.header.host


def test_examples_are_listed_and_each_replays() -> None:
    rows = [read_batch_info(b) for b in find_batches(EXAMPLES)]
    rows += [read_run_info(p) for p in find_runs(EXAMPLES)]
    names = {r.name for r in rows}
    make = _load_make()
    for ex in make.EXAMPLES.values():
        for target in make.out_paths(ex, EXAMPLES):
            assert target.name in names, f"{target.name}: run logs/examples/make.py"
    for r in rows:
        assert r.problem is None, f"{r.name}: {r.problem}"
        assert r.status not in ("?", "running/incomplete", "unreadable"), r.name
        if r.kind == "inspect-log":
            for sample in find_runs(r.path):
                with RunLog.open(sample) as log:
                    print_log(log, Console(file=io.StringIO(), width=120))
            continue
        if r.batch:  # a batch: one row, each of its runs replays
            runs = sorted(r.path.glob("*/events.jsonl"))
            assert runs and r.steps == len(runs), (r.name, r.steps, runs)
            for ev in runs:
                _replays_unsealed(ev)
                assert ev.stat().st_size < 600_000, f"{ev}: examples should stay small"
            continue
        _replays_unsealed(r.path)
        assert r.path.stat().st_size < 600_000, f"{r.name}: examples should stay small"


def test_the_seed_example_is_made_byte_for_byte(tmp_path: Path) -> None:
    make = _load_make()
    made, skipped = make.make(["seed-000-imported"], tmp_path)
    assert made == ["seed-000-imported"] and not skipped
    new = (tmp_path / "seed-000-imported" / "events.jsonl").read_bytes()
    assert new == (EXAMPLES / "seed-000-imported" / "events.jsonl").read_bytes()
