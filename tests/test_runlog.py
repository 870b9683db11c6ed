from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agentdeck.engine.bus import EventBus
from agentdeck.engine.events import ModelDelta, StepStart
from agentdeck.engine.log import LogError, LogWriter, RunDir, RunLog, new_run_id
from tests.helpers import wait_for, write_run

ROOT = Path(__file__).resolve().parents[1]


def test_run_dir_layout(tmp_path):
    rd = RunDir.create(tmp_path, new_run_id("noisy-labels"))
    assert rd.artifacts.is_dir() and rd.work.is_dir()
    assert rd.events.name == "events.jsonl"
    with pytest.raises(FileExistsError):
        RunDir.create(tmp_path, rd.run_id)


def test_write_and_read_back(tmp_path):
    p = tmp_path / "events.jsonl"
    events = write_run(p, steps=3)
    log = RunLog.open(p)
    assert log.header.run_id == "r1"
    assert log.step_numbers == [1, 2, 3]
    assert len(log) == len(events)
    rec = log.step(2)
    assert rec.response.message_id == "msg_2"
    assert rec.text == "step 2 text"
    assert rec.tool_names == ["python_expression"]
    assert rec.calls[0].result.output == {"result": "2\n", "error": None}
    assert rec.calls[0].streamed_text == "2\n"
    assert [m.name for m in rec.metrics] == ["loss"]
    assert rec.duration_s == pytest.approx(3.0)  # 6 events x 0.5 s to the next step_start
    assert log.status == "completed"
    assert log.grade.passed is True
    t = log.totals()
    assert (t.steps, t.input_tokens, t.output_tokens) == (3, 600, 60)
    assert t.cost_usd == pytest.approx(0.006)
    assert log.warnings == []
    # the whole stream parses back to the same events
    assert [e.to_dict() for e in log.events()] == [e.to_dict() for e in events]


def test_live_only_events_are_not_written(tmp_path):
    p = tmp_path / "events.jsonl"
    w = LogWriter(p)
    seen = []
    bus = EventBus([w, seen.append])
    write_run(tmp_path / "other.jsonl")  # unrelated; just to be sure nothing is shared
    bus.emit(StepStart(step=1))
    bus.emit(ModelDelta(step=1, block_index=1, text="hel"))
    bus.emit(StepStart(step=2))
    w.close()
    assert len(seen) == 3
    lines = p.read_text().splitlines()
    assert [json.loads(x)["seq"] for x in lines] == [0, 1]  # seq has no gap for the delta


def test_totals_without_run_end_are_summed(tmp_path):
    p = tmp_path / "events.jsonl"
    write_run(p, steps=4, end=False)
    log = RunLog.open(p)
    assert log.end is None and log.status == "running/incomplete"
    t = log.totals()
    assert (t.steps, t.input_tokens, t.cache_read_input_tokens) == (4, 1000, 200)
    assert t.wall_s > 0


def test_torn_last_line_is_ignored_with_warning(tmp_path):
    p = tmp_path / "events.jsonl"
    write_run(p, steps=3, end=False)
    data = p.read_bytes()
    p.write_bytes(data + b'{"seq":99,"t":1.0,"type":"step_start","st')
    log = RunLog.open(p)
    assert log.step_numbers == [1, 2, 3]
    assert any("torn last line" in w for w in log.warnings)


def test_log_cut_in_the_middle_of_a_line(tmp_path):
    p = tmp_path / "events.jsonl"
    write_run(p, steps=3)
    data = p.read_bytes()
    cut = data.index(b'"type":"step_start","step":3') + 10
    p.write_bytes(data[:cut])
    log = RunLog.open(p)
    assert log.step_numbers == [1, 2]
    assert log.step(2).calls[0].result is not None
    assert log.warnings and "torn" in log.warnings[0]


def test_garbage_lines_are_skipped_and_named(tmp_path):
    p = tmp_path / "events.jsonl"
    write_run(p, steps=3)
    lines = p.read_bytes().split(b"\n")
    lines.insert(5, b"this is not json")
    lines.insert(9, b'{"seq": "x", "type": 7}')
    lines.insert(12, b"")
    p.write_bytes(b"\n".join(lines))
    log = RunLog.open(p)
    assert log.step_numbers == [1, 2, 3]
    assert any(w.startswith("line 6: not a JSON event") for w in log.warnings)
    assert log.step(3).response is not None


def test_line_with_invalid_fields_is_reported_when_its_step_is_read(tmp_path):
    p = tmp_path / "events.jsonl"
    write_run(p, steps=2)
    text = p.read_text().replace('"message_id":"msg_2"', '"message_id":42')
    p.write_text(text)
    log = RunLog.open(p)
    rec = log.step(2)
    assert rec.response is None
    assert any(
        "model_response.message_id: expected a string, got an integer" in x for x in rec.problems
    )


def test_unknown_schema_version(tmp_path):
    p = tmp_path / "events.jsonl"
    write_run(p)
    p.write_text(p.read_text().replace("agentdeck.log/1", "agentdeck.log/9", 1))
    with pytest.raises(LogError, match=r"events.jsonl:1: .*agentdeck.log/9.*upgrade"):
        RunLog.open(p)


def test_empty_file(tmp_path):
    p = tmp_path / "events.jsonl"
    p.write_text("")
    with pytest.raises(LogError, match="empty file"):
        RunLog.open(p)


@pytest.mark.parametrize(
    "content",
    [
        b"hello world\nthis is a text file\n",
        b"[1, 2, 3]\n",
        b'{"name": "a json object but not an event"}\n',
        b"\x00\x01\x02binary",
    ],
)
def test_not_a_log(tmp_path, content):
    p = tmp_path / "x.jsonl"
    p.write_bytes(content)
    with pytest.raises(LogError, match="not an agentdeck log"):
        RunLog.open(p)


def test_first_event_must_be_run_start(tmp_path):
    p = tmp_path / "events.jsonl"
    write_run(p)
    lines = p.read_text().splitlines(keepends=True)
    p.write_text("".join(lines[1:]))
    with pytest.raises(
        LogError,
        match=r":1: not an agentdeck log: the first event is "
        r"'step_start'",
    ):
        RunLog.open(p)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(LogError, match="no such file"):
        RunLog.open(tmp_path / "nope.jsonl")
    with pytest.raises(LogError, match="not a run directory"):
        RunLog.open(tmp_path)
    rd = RunDir.create(tmp_path, "run")
    write_run(rd.events)
    assert RunLog.open(rd.path).header.run_id == "r1"


def test_seq_gap_is_warned(tmp_path):
    p = tmp_path / "events.jsonl"
    write_run(p, steps=2)
    lines = p.read_text().splitlines(keepends=True)
    del lines[3]
    p.write_text("".join(lines))
    log = RunLog.open(p)
    assert any("seq jumps from 2 to 4" in w for w in log.warnings)


def test_follow_a_growing_log(tmp_path):
    src = tmp_path / "full.jsonl"
    write_run(src, steps=4)
    data = src.read_bytes().splitlines(keepends=True)
    p = tmp_path / "events.jsonl"
    p.write_bytes(b"".join(data[:7]))
    log = RunLog.open(p, follow=True)
    assert log.step_numbers == [1]
    assert log.end is None
    # half a line arrives: nothing new, no warning (the writer is mid-line)
    with open(p, "ab") as f:
        f.write(data[7][:10])
    assert log.refresh() == 0
    assert log.warnings == []
    with open(p, "ab") as f:
        f.write(data[7][10:])
        f.write(b"".join(data[8:]))
    assert log.refresh() > 0
    assert log.step_numbers == [1, 2, 3, 4]
    assert log.status == "completed"
    assert log.totals().steps == 4


def test_follow_a_file_that_is_still_empty(tmp_path):
    p = tmp_path / "events.jsonl"
    p.write_text("")
    log = RunLog.open(p, follow=True)
    assert log.header is None
    write_run(tmp_path / "src.jsonl", steps=1)
    p.write_bytes((tmp_path / "src.jsonl").read_bytes())
    log.refresh()
    assert log.header is not None and log.step_numbers == [1]


def test_lines_written_by_other_tools_are_indexed(tmp_path):
    """Key order is not part of the format: a re-serialised log still reads."""
    p = tmp_path / "events.jsonl"
    write_run(p, steps=2)
    lines = [json.loads(x) for x in p.read_text().splitlines()]
    p.write_text("".join(json.dumps(dict(reversed(list(d.items())))) + "\n" for d in lines))
    log = RunLog.open(p)
    assert log.step_numbers == [1, 2]
    assert log.step(2).response.message_id == "msg_2"
    assert log.status == "completed"


WRITER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from agentdeck.engine.bus import EventBus
    from agentdeck.engine.events import RunStart, StepStart, ToolOutputChunk
    from agentdeck.engine.log import LogWriter
    bus = EventBus([LogWriter({path!r})])
    bus.emit(RunStart(run_id="k", task="t", agent="a", max_steps=10**6, prompt="p"))
    s = 0
    while True:
        s += 1
        bus.emit(StepStart(step=s))
        bus.emit(ToolOutputChunk(step=s, call_id="c", stream="stdout", text="x" * 3000))
        if s == 50:
            print("ready", flush=True)
""")


def test_kill_9_leaves_every_earlier_event_readable(tmp_path):
    p = tmp_path / "events.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER.format(root=str(ROOT), path=str(p))],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "ready"
    # kill it while it is writing: once the log has grown past what it held at "ready"
    size = p.stat().st_size
    wait_for(lambda: p.stat().st_size > size + 100_000, "the writer to go on writing")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    log = RunLog.open(p)
    n = len(log.step_numbers)
    assert n >= 50
    assert log.step_numbers == list(range(1, n + 1))
    for s in (1, n // 2, n):
        log.step(s)  # every step parses
    assert log.end is None
