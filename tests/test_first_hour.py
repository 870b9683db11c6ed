"""What a new user hit in the first hour (issue 11), each at its cause: limits that act
inside a call, progress on long steps, truthful statuses and exit codes, clear messages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from agentdeck.engine.log import RunLog

from helpers import replay_log, write_run
from mock_anthropic import MockAnthropic, Reply

AGENTDECK = Path(sys.executable).parent / "agentdeck"
pytestmark = pytest.mark.timeout(300)


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AGENTDECK), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def run_args(log_dir: Path, *extra: str) -> list[str]:
    return [
        "run",
        "noisy-labels",
        "-T",
        "dataset=digits",
        "-T",
        "n_train=200",
        "--no-ui",
        "--log-dir",
        str(log_dir),
        *extra,
    ]


# -- limits act inside a call ----------------------------------------------------------


def test_time_limit_interrupts_the_running_tool_call(tmp_path: Path) -> None:
    replay = replay_log(tmp_path / "r.jsonl", ["import time\ntime.sleep(300)"])
    t0 = time.monotonic()
    r = cli(*run_args(tmp_path / "logs", "--agent", f"replay:{replay}", "--time-limit", "8"))
    took = time.monotonic() - t0
    assert r.returncode == 1, r.stderr
    log = RunLog.open(next((tmp_path / "logs").glob("*/events.jsonl")))
    assert log.status == "limit_exceeded", log.end
    assert "wall time limit" in (log.end.message or "")
    assert took < 120  # not the 300 s the call would have taken
    call = log.step(1).calls[0]
    assert call.result is not None and "interrupted" in (call.result.error or "").lower()


def test_cost_limit_stops_a_response_mid_stream(tmp_path: Path) -> None:
    # the first response reads 2M input tokens: $2 at Haiku 4.5's $1/MTok, past --cost-limit 1
    big = Reply.text("thinking...", usage={"input_tokens": 2_000_000, "output_tokens": 10})
    with MockAnthropic([big]) as api:
        r = cli(
            *run_args(tmp_path / "logs", "--agent", "claude", "--cost-limit", "1"), env=api.env()
        )
    assert r.returncode == 1, r.stderr
    log = RunLog.open(next((tmp_path / "logs").glob("*/events.jsonl")))
    assert log.status == "limit_exceeded"
    assert "cost limit" in (log.end.message or "") and "mid-response" in log.end.message


def test_a_name_that_does_not_resolve_fails_fast(tmp_path: Path) -> None:
    t0 = time.monotonic()
    r = cli(
        *run_args(tmp_path / "logs", "--agent", "claude"),
        env={
            "ANTHROPIC_API_KEY": "sk-ant-api03-" + "a" * 40,
            "ANTHROPIC_BASE_URL": "http://no-such-host.invalid",
        },
    )
    assert time.monotonic() - t0 < 60  # not six retries over a minute
    assert r.returncode == 3
    log = RunLog.open(next((tmp_path / "logs").glob("*/events.jsonl")))
    assert "Cannot resolve" in (log.end.message or "") and "no network" in log.end.message
    assert '"code":"retry"' not in (log.path.read_text() if log.path else "")


# -- progress on long steps ------------------------------------------------------------


def test_no_ui_prints_a_heartbeat_for_a_long_call(tmp_path: Path) -> None:
    code = (
        "import time\nfor i in range(8):\n    print(f'working {i}', flush=True)\n    time.sleep(1)"
    )
    replay = replay_log(tmp_path / "r.jsonl", [code])
    r = cli(*run_args(tmp_path / "logs", "--agent", f"replay:{replay}"))
    beats = [ln for ln in r.stdout.splitlines() if "running" in ln and "python_expression" in ln]
    assert beats, r.stdout
    assert "working" in beats[-1]  # the last line the call printed


def test_the_trainer_prints_progress_in_the_kernel(tmp_path: Path) -> None:
    code = (
        "import numpy as np\nfrom agentdeck.engine.trainer import cross_fit, MLP, TrainConfig\n"
        "X = np.random.rand(120, 8).astype('float32'); y = np.arange(120) % 3\n"
        "cross_fit(lambda: MLP(8, num_classes=3), X, y, folds=2, config=TrainConfig(epochs=2))"
    )
    replay = replay_log(tmp_path / "r.jsonl", [code])
    cli(*run_args(tmp_path / "logs", "--agent", f"replay:{replay}"))
    log = RunLog.open(next((tmp_path / "logs").glob("*/events.jsonl")))
    out = log.step(1).calls[0].streamed_text
    assert "fold 1: epoch 2/2" in out and "fold 2/2 done" in out and "ETA" in out


# -- statuses and exit codes -----------------------------------------------------------


def test_an_interrupted_run_says_interrupted_not_no_result(tmp_path: Path) -> None:
    replay = replay_log(
        tmp_path / "r.jsonl", ["import time\nprint('go', flush=True)\ntime.sleep(300)"]
    )
    proc = subprocess.Popen(
        [str(AGENTDECK), *run_args(tmp_path / "logs", "--agent", f"replay:{replay}")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        logs = list((tmp_path / "logs").glob("*/events.jsonl"))
        if logs and '"go' in logs[0].read_text():
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)  # handled like Ctrl-C
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted before a result was submitted" in out
    log = RunLog.open(next((tmp_path / "logs").glob("*/events.jsonl")))
    assert log.status == "interrupted"


def test_runs_tells_a_live_run_from_a_dead_one(tmp_path: Path) -> None:
    import socket

    for name, pid in (("dead", 999_999_0), ("live", os.getpid())):
        d = tmp_path / name
        d.mkdir()
        write_run(d / "events.jsonl", steps=2, end=False)
        lines = (d / "events.jsonl").read_text().splitlines(keepends=True)
        head = json.loads(lines[0])
        head["host"] = {"hostname": socket.gethostname(), "pid": pid}
        head["t"] = psutil.Process().create_time() + 1
        lines[0] = json.dumps(head) + "\n"
        (d / "events.jsonl").write_text("".join(lines))
    r = cli("runs", "--log-dir", str(tmp_path), "--no-ui")
    rows = {ln.split("│")[1].strip(): ln for ln in r.stdout.splitlines() if "│" in ln}
    assert "died (no run_end)" in rows["dead"] and "running" in rows["live"]


def test_a_replay_that_opened_exits_0_whatever_the_grade(tmp_path: Path) -> None:
    p = tmp_path / "events.jsonl"
    write_run(p, steps=2, passed=False)
    assert cli("replay", str(p), "--no-ui").returncode == 0


def test_the_seed_replay_has_a_computed_cost_and_no_fake_time(seed_md: Path) -> None:
    r = cli("replay", str(seed_md), "--no-ui")
    assert r.returncode == 0
    assert "no timing in this log" in r.stdout and "in 0.0s" not in r.stdout
    assert "computed from the usage" in r.stdout and "$0.1" in r.stdout


# -- messages --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["-T", "n_train=-5"], "-T n_train=-5: must be a positive number"),
        (["-T", "memory_limit_mb=10"], "at least 512 MiB"),
        (["--agent", "replay:LOG@99"], "@99: the log has 1 recorded step"),
    ],
)
def test_bad_input_names_the_right_place(tmp_path: Path, args: list[str], expect: str) -> None:
    replay = replay_log(tmp_path / "r.jsonl", ["1"])
    args = [a.replace("LOG", str(replay)) for a in args]
    r = cli(*run_args(tmp_path / "logs", *args))
    assert r.returncode == 2 and expect in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_did_you_mean_for_tasks_and_data_sets() -> None:
    r = cli("run", "noisy-lables", "--no-ui")
    assert r.returncode == 2 and "did you mean 'noisy-labels'" in r.stderr
    r = cli("data", "fetch", "fashon-mnist")
    assert r.returncode == 2 and "did you mean 'fashion-mnist'" in r.stderr
    assert "python -m" not in r.stderr


def test_the_readme_placeholder_key_is_refused(tmp_path: Path) -> None:
    r = cli(
        *run_args(tmp_path / "logs", "--agent", "claude"), env={"ANTHROPIC_API_KEY": "sk-ant-..."}
    )
    assert r.returncode == 2 and "placeholder" in r.stderr


# -- the summary left on the terminal when the TUI closes ------------------------------


async def test_quitting_the_tui_prints_the_run_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agentdeck.tui.headless import print_run_summary

    p = tmp_path / "run-1" / "events.jsonl"
    p.parent.mkdir()
    write_run(p, steps=3)
    from rich.console import Console

    print_run_summary(p, Console(width=240, highlight=False))
    out = capsys.readouterr().out
    for part in (
        "run",
        "r1",
        "completed",
        "PASSED",
        "f1",
        "steps",
        "3",
        "tokens",
        "cost",
        f"agentdeck replay {p.parent}",
    ):
        assert part in out, part
