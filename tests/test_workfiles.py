"""file_change events: diffs that rebuild every version exactly, the scan's rules, the tree
at a given step, export --files, and logs of both schema versions."""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from agentdeck.engine.events import SCHEMA, Event, FileChange, decode_event, encode_event
from agentdeck.engine.log import RunLog
from agentdeck.engine.workfiles import (
    PatchError,
    WorkFiles,
    apply_diff,
    log_tree,
    tree_at,
    unified_diff,
    write_tree,
)

COMPAT = Path(__file__).parent / "fixtures" / "compat"
V1_1 = COMPAT / "log-1.1-fmnist-repo-digits.jsonl"
V1_0 = COMPAT / "log-1-v0.1.0-noisy-labels-digits.jsonl"
AGENTDECK = Path(sys.executable).parent / "agentdeck"


def test_schema_is_1_1_and_the_event_round_trips() -> None:
    assert SCHEMA == "agentdeck.log/1.1"
    ev = FileChange(seq=3, t=1.0, step=2, call_id="c", path="a.py", op="edit", diff="d", size=4)
    line = encode_event(ev)
    assert line.startswith('{"seq":3,"t":1.0,"type":"file_change","step":2,')
    assert decode_event(line) == ev


@pytest.mark.parametrize("seed", range(3))
def test_diffs_rebuild_every_version(seed: int) -> None:
    """Random texts with every kind of line ending, a missing last newline, lines that
    look like diff syntax: applying the diff always gives the new text, byte for byte."""
    rng = random.Random(seed)
    pieces = [
        "a\n", "b\n", "c\r\n", "\n", "d", "tab\there\n", "\x0cpage\n", "é ü\n", "\u2028x\n",
        "@@ -1 +1 @@\n", "\\ No newline at end of file\n", "+plus\n", "-minus\n", " space\n",
    ]  # fmt: skip
    for _ in range(3000):
        old = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 15)))
        new = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 15)))
        diff = unified_diff(old, new, "f.py", context=rng.choice((0, 1, 3)))
        assert apply_diff(old, diff) == new


def test_a_diff_that_does_not_fit_is_refused() -> None:
    diff = unified_diff("a\nb\nc\n", "a\nB\nc\n", "f")
    with pytest.raises(PatchError, match="expects"):
        apply_diff("a\nX\nc\n", diff)


Emit = Callable[[Event], Event]


def _tracker(tmp_path: Path) -> tuple[WorkFiles, list[FileChange], Path, Emit]:
    root = tmp_path / "work"
    root.mkdir()
    events: list[FileChange] = []

    def emit(ev: Event) -> Event:
        assert isinstance(ev, FileChange)
        events.append(ev)
        return ev

    return WorkFiles(root, max_text_bytes=1000, max_files=50), events, root, emit


def test_the_scan_follows_text_and_skips_data_and_caches(tmp_path: Path) -> None:
    wf, events, root, emit = _tracker(tmp_path)
    (root / "start.py").write_text("s\n")
    wf.baseline(emit)
    for rel, data in {
        "src/a.py": b"print(1)\n",
        ".agentdeck_data/train.csv": b"x\n",
        "__pycache__/a.cpython-311.pyc": b"\0\0",
        ".git/HEAD": b"ref\n",
        "venv/lib/x.py": b"x\n",
        "model.pt": b"\0weights",
        "feats.npy": b"\x93NUMPY",
        "blob.dat": b"\0\1\2binary",
        "big.txt": b"z" * 2000,
        "latin1.txt": "caf\xe9".encode("latin-1"),
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    wf.scan(emit, step=1, call_id="c1")
    got = {e.path: e for e in events}
    assert set(got) == {"start.py", "src/a.py", "blob.dat", "big.txt", "latin1.txt"}
    assert got["start.py"].step is None and got["src/a.py"].step == 1
    assert got["src/a.py"].content == "print(1)\n" and got["src/a.py"].sha256
    assert got["blob.dat"].omitted == "binary" and got["blob.dat"].content is None
    assert got["latin1.txt"].omitted == "binary"
    assert got["big.txt"].omitted == "too_large" and got["big.txt"].size == 2000
    events.clear()
    # touched but unchanged: nothing; changed, deleted: one event each
    (root / "src/a.py").write_text("print(1)\n")
    (root / "start.py").write_text("s\nt\n")
    (root / "blob.dat").unlink()
    wf.scan(emit, step=2, call_id="c2")
    assert [(e.path, e.op) for e in events] == [("start.py", "edit"), ("blob.dat", "delete")]


def test_the_scan_stops_at_max_files_without_deleting(tmp_path: Path) -> None:
    wf, events, root, emit = _tracker(tmp_path)
    for i in range(60):
        (root / f"f{i:02}.txt").write_text(str(i))
    wf.scan(emit, step=1)
    assert len(events) == 50 and wf.truncated
    events.clear()
    wf.scan(emit, step=2)
    assert events == []  # files past the cap are not reported as deleted


def test_tree_at_each_step_of_the_fixture() -> None:
    log = RunLog.open(V1_1)
    assert log.header is not None and log.header.schema == "agentdeck.log/1.1"
    t3 = log_tree(log, 3)
    assert t3.paths() == ["main.py", "model.py"]
    assert "C=1.0" in (t3.files["model.py"].text or "")
    assert [c.path for c in t3.changes] == ["main.py"]
    t5 = log_tree(log, 5)
    assert "C=0.5" in (t5.files["model.py"].text or "") and t5.files["model.py"].changed_step == 5
    (edit,) = t5.changes
    assert (
        edit.op == "edit"
        and edit.diff is not None
        and "-    return LogisticRegression(C=1.0" in edit.diff
    )
    assert "notes.txt" in log_tree(log, 6).files
    t7 = log_tree(log, 7)
    assert "notes.txt" not in t7.files and [(c.path, c.op) for c in t7.changes] == [
        ("notes.txt", "delete")
    ]
    end = log_tree(log)
    assert end.paths() == ["main.py", "model.py", "submission/submission.csv"]
    assert all(f.problem is None for f in end.files.values())
    # the step records carry their file changes too
    assert [f.path for f in log.step(5).files] == ["model.py"]


def test_an_old_log_loads_and_has_no_files() -> None:
    log = RunLog.open(V1_0)
    assert log.header is not None and log.header.schema == "agentdeck.log/1"
    assert log_tree(log).files == {}
    assert all(log.step(s).files == [] for s in log.step_numbers)


def test_a_damaged_diff_says_so(tmp_path: Path) -> None:
    log = RunLog.open(V1_1)
    events = [ev for ev in log.events() if isinstance(ev, FileChange)]
    edit = next(e for e in events if e.op == "edit")
    assert edit.diff is not None
    edit.diff = edit.diff.replace("C=1.0", "C=9.9")
    tree = tree_at(events, None)
    assert "does not apply" in (tree.files["model.py"].problem or "")
    n, left = write_tree(tree, tmp_path / "out")
    assert n == 2 and left == [
        "model.py (the recorded diff does not apply: " + left[0].split(": ", 1)[1]
    ]
    assert not (tmp_path / "out" / "model.py").exists()


def test_write_tree_refuses_paths_out_of_the_destination(tmp_path: Path) -> None:
    ev = FileChange(step=1, path="../evil.py", op="create", content="x", size=1)
    n, left = write_tree(tree_at([ev], None), tmp_path / "out")
    assert n == 0 and left == ["../evil.py (outside the destination)"]
    assert not (tmp_path / "evil.py").exists()


def test_export_files(tmp_path: Path) -> None:
    def export(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(AGENTDECK), "export", *args], capture_output=True, text=True, timeout=120
        )

    r = export(str(V1_1), "--files", str(tmp_path / "end"))
    assert r.returncode == 0, r.stderr
    assert "wrote 3 files of the repository at the end of the run" in r.stderr
    assert "C=0.5" in (tmp_path / "end" / "model.py").read_text()
    assert (tmp_path / "end/submission/submission.csv").read_text().startswith("id,label\n")
    r = export(str(V1_1), "--files", str(tmp_path / "s3"), "--step", "3")
    assert r.returncode == 0 and sorted(p.name for p in (tmp_path / "s3").iterdir()) == [
        "main.py",
        "model.py",
    ]
    assert "C=1.0" in (tmp_path / "s3" / "model.py").read_text()
    for args, msg in (
        ([str(V1_0), "--files", str(tmp_path / "x")], "no file_change events"),
        ([str(V1_1), "--files", str(tmp_path / "end")], "not empty"),
        ([str(V1_1), "--files", str(tmp_path / "y"), "--step", "99"], "steps 1 to 8"),
        ([str(V1_1), "--step", "2"], "--step goes with --files"),
    ):
        r = export(*args)
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr, r.stderr
