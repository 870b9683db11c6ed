"""Bad and hostile input keeps giving one clear line and exit 2, never a traceback or a
hang: deeply nested JSON, absurd numbers, FIFOs, invalid UTF-8, a log truncated or
replaced while it is followed, and ``--follow --no-ui`` printing as events arrive."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agentdeck.engine.log import LogError, RunLog

from helpers import write_run

AGENTDECK = Path(sys.executable).parent / "agentdeck"
pytestmark = pytest.mark.timeout(120)


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(AGENTDECK), *args], capture_output=True, text=True, timeout=timeout)


def _one_clear_line(r: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert r.returncode == code, (r.returncode, r.stdout[-500:], r.stderr[-500:])
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    return r.stderr


def test_deeply_nested_json_is_one_line_not_a_recursion_error(tmp_path: Path) -> None:
    p = tmp_path / "deep.jsonl"
    write_run(p, steps=1)
    with open(p, "a") as f:
        f.write(
            '{"seq":99,"t":1.0,"type":"tool_result","step":1,"call_id":"c","output":'
            + "[" * 100_000
            + "]" * 100_000
            + "}\n"
        )
    with RunLog.open(p) as log:  # the line is damaged, the log still reads
        assert len(log.step_numbers) == 1
        bad = list(log.events())
        assert any("nested" in w or "valid JSON" in w or "expected" in w for w in log.warnings)
        assert bad
    r = cli("replay", str(p), "--no-ui")
    assert r.returncode == 0 and "Traceback" not in r.stderr
    # a log whose first line is the deep one is refused with one line
    q = tmp_path / "deep_first.jsonl"
    q.write_text("[" * 100_000 + "]" * 100_000 + "\n")
    assert "not an agentdeck log" in _one_clear_line(cli("replay", str(q), "--no-ui"))


def test_absurd_step_numbers_do_not_break_the_runs_listing(tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.mkdir()
    write_run(good / "events.jsonl", steps=2)
    bad = tmp_path / "bad"
    bad.mkdir()
    write_run(bad / "events.jsonl", steps=2)
    text = (
        (bad / "events.jsonl").read_text().replace('"step":1,', '"step":100000000000000000000000,')
    )
    text = text.replace('"step":2', '"step":1e23')
    (bad / "events.jsonl").write_text(text)
    r = cli("runs", "--log-dir", str(tmp_path), "--no-ui")
    assert r.returncode == 0, r.stderr
    assert "good" in r.stdout and "Traceback" not in r.stderr


def test_a_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "events.jsonl"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    err = _one_clear_line(cli("replay", str(fifo), "--no-ui", timeout=20))
    assert "not a regular file" in err and time.monotonic() - t0 < 20
    with pytest.raises(LogError, match="not a regular file"):
        RunLog.open(tmp_path)  # a run directory whose events.jsonl is a FIFO


def test_invalid_utf8_is_reported_not_accepted(tmp_path: Path) -> None:
    p = tmp_path / "events.jsonl"
    write_run(p, steps=2)
    data = p.read_bytes().replace(b'"text":"step 1 text"', b'"text":"step \xff text"')
    p.write_bytes(data)
    with RunLog.open(p) as log:
        rec = log.step(1)
        assert rec.problems and "UTF-8" in rec.problems[0]
        list(log.events())
        assert any("UTF-8" in w for w in log.warnings)
    md = tmp_path / "bad.md"
    md.write_bytes(b"# Agent Run Log\n\n**Timestamp:** \xff\n")
    assert "not UTF-8" in _one_clear_line(cli("replay", str(md), "--no-ui"))


def test_a_followed_log_truncated_or_replaced_says_so(tmp_path: Path) -> None:
    p = tmp_path / "events.jsonl"
    write_run(p, steps=3, end=False)
    log = RunLog.open(p, follow=True)
    p.write_text(p.read_text()[:200])  # truncated in place
    with pytest.raises(LogError, match="truncated"):
        log.refresh()
    log.close()
    write_run(p.with_name("other.jsonl"), steps=1, end=False)
    log = RunLog.open(p, follow=True)
    os.replace(p.with_name("other.jsonl"), p)  # replaced under the reader
    with pytest.raises(LogError, match="replaced"):
        log.refresh()
    log.close()


def test_follow_no_ui_prints_as_events_arrive(tmp_path: Path) -> None:
    src = tmp_path / "src.jsonl"
    write_run(src, steps=3)
    lines = src.read_text().splitlines(keepends=True)
    p = tmp_path / "events.jsonl"
    p.write_text("".join(lines[:3]))  # run_start and the first step's start
    proc = subprocess.Popen(
        [str(AGENTDECK), "replay", str(p), "--follow", "--no-ui"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def feed() -> None:
        for line in lines[3:]:
            time.sleep(0.02)
            with open(p, "a") as f:
                f.write(line)

    threading.Thread(target=feed, daemon=True).start()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.count("step ") >= 3 and "completed" in out


def test_follow_no_ui_of_a_truncated_log_exits_2(tmp_path: Path) -> None:
    p = tmp_path / "events.jsonl"
    write_run(p, steps=3, end=False)
    proc = subprocess.Popen(
        [str(AGENTDECK), "replay", str(p), "--follow", "--no-ui"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the run's header: the follower has read the log
    assert "noisy-labels" in first
    p.write_text(p.read_text()[:100])
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "truncated" in out + err
