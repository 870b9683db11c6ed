from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentdeck.engine.log import RunDir, RunLog
from agentdeck.tui.cli import app
from tests.helpers import write_run

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_version():
    r = invoke("--version")
    assert r.exit_code == 0
    assert r.stdout.startswith("agentdeck ")


def test_replay_no_ui_prints_the_seed(seed_md):
    r = invoke("replay", str(seed_md), "--no-ui")
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "Step 1/20" in out and "Step 20/20" in out
    assert "msg_015dRV3T6u7p2XkQaFAhyt9N" in out
    assert "load_corrupted_dataset" in out
    assert "max_steps_reached" in out
    assert "in 137,977" in out and "out 10,293" in out
    assert "FAILED" in out and "no result submitted" in out


def test_export_md_and_jsonl(seed_md, tmp_path):
    out = tmp_path / "seed.jsonl"
    r = invoke("export", str(seed_md), "--format", "jsonl", "-o", str(out))
    assert r.exit_code == 0
    lines = out.read_text().splitlines()
    assert json.loads(lines[0])["type"] == "run_start"
    assert json.loads(lines[-1])["type"] == "run_end"
    r = invoke("export", str(out), "--format", "md")
    assert r.exit_code == 0
    assert r.stdout == seed_md.read_text()


def test_runs_table(tmp_path, seed_md):
    for i, passed in enumerate([True, False]):
        rd = RunDir.create(tmp_path, f"run{i}")
        write_run(rd.events, steps=2 + i, passed=passed)
    shutil.copy(seed_md, tmp_path / "seed.md")
    (tmp_path / "broken.jsonl").write_text("not a log\n")
    r = runner.invoke(app, ["runs", "--log-dir", str(tmp_path), "--no-ui"])
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert out.count("noisy-labels") == 3
    assert "passed" in out and "failed" in out
    assert "claude-haiku-4-5" in out and "max_steps_reached" in out
    assert "137,977/10,293" in out
    assert "broken.jsonl" in r.stderr


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["replay", "/nonexistent.jsonl", "--no-ui"], "/nonexistent.jsonl: no such file"),
        (["export", "{seed}", "--format", "pdf"], "--format pdf: expected md or jsonl"),
        (["runs", "--log-dir", "/nonexistent", "--no-ui"], "no such directory"),
        (["run", "no-such-task", "--no-ui"], "unknown task 'no-such-task'"),
        (["run", "noisy-labels", "-T", "bogus=1", "--no-ui"], "has no parameter 'bogus'"),
        (["run", "noisy-labels", "-T", "noise_rate=2", "--no-ui"], "noise_rate=2: must be between"),
        (["run", "noisy-labels", "-T", "dataset", "--no-ui"], "-T dataset: expected key=value"),
        (["run", "noisy-labels", "--agent", "gpt", "--no-ui"], "unknown agent 'gpt'"),
        (["run", "noisy-labels", "--agent", "claude", "--no-ui"], "ANTHROPIC_API_KEY is not set"),
        (["run", "noisy-labels", "--max-steps", "0", "--no-ui"], "--max-steps must be at least 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, match, seed_md, monkeypatch, tmp_path):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    args = [a.replace("{seed}", str(seed_md)) for a in args]
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    assert match in r.stderr
    assert "Traceback" not in r.output
    assert len(r.stderr.strip().splitlines()) == 1


def test_damaged_log_error_names_file_and_line(tmp_path):
    p = tmp_path / "events.jsonl"
    write_run(p)
    p.write_text(p.read_text().replace("agentdeck.log/1", "agentdeck.log/7", 1))
    r = runner.invoke(app, ["replay", str(p), "--no-ui"])
    assert r.exit_code == 2
    assert f"{p}:1:" in r.stderr and "agentdeck.log/7" in r.stderr


def test_console_script_as_a_subprocess(seed_md, tmp_path):
    exe = Path(sys.executable).parent / "agentdeck"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "agentdeck.tui.cli"]
    r = subprocess.run(
        [*cmd, "replay", str(seed_md), "--no-ui"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert "Step 20/20" in r.stdout
    r = subprocess.run(
        [*cmd, "export", str(tmp_path / "missing.md")], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2
    assert "no such file" in r.stderr and "Traceback" not in r.stderr


def test_replay_of_a_jsonl_run(tmp_path):
    p = tmp_path / "events.jsonl"
    write_run(p, steps=2)
    r = invoke("replay", str(p), "--no-ui")
    assert r.exit_code == 0
    assert "PASSED" in r.stdout and "f1 0.9000" in r.stdout
    assert "print(2)" in r.stdout
    assert RunLog.open(p).status == "completed"
