"""Finding and summarising the runs in a log directory (for the runs screen)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from agentdeck.engine.log import EVENTS_FILE, LogError, RunLog, inspectlog

T = TypeVar("T")
LOG_SUFFIXES = (".jsonl", ".md", ".txt", ".eval", ".json")


def find_runs(log_dir: Path) -> list[Path]:
    """Each ``<dir>/events.jsonl`` one level down, plus ``*.jsonl`` logs, seed-format
    markdown logs (``*.md``, ``*.txt`` that start with "# Agent Run Log") and Inspect AI
    logs (``*.eval``, ``*.json``) directly in ``log_dir``. ``log_dir`` may be an Inspect log: then its samples
    (``LOG#ID:EPOCH``), read from its sample summaries."""
    if log_dir.is_file():
        return [Path(s.spec) for s in _sample_infos(log_dir)]
    found: list[Path] = []
    for p in sorted(log_dir.iterdir()):
        if p.is_dir():
            if (p / EVENTS_FILE).is_file():
                found.append(p / EVENTS_FILE)
        elif p.is_file() and p.suffix in LOG_SUFFIXES:
            if p.suffix in (".txt", ".md") and not _looks_markdown(p):
                continue  # a README beside the runs is not a run
            if p.suffix == ".json" and not inspectlog.sniff_file(p):
                continue
            found.append(p)
    return found


def is_inspect_log(path: Path) -> bool:
    """An Inspect AI log file (not one of its samples)."""
    return path.is_file() and inspectlog.sniff_file(path)


#: What was read of Inspect logs (headers, sample summaries) by (what, path), with the
#: file's (mtime, size) then: a list of 100 samples reads the summaries once, not 100 times.
_READ: dict[tuple[str, str], tuple[tuple[int, int], Any]] = {}


def _cached(what: str, path: Path, read: Callable[[Path], T]) -> T:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise LogError("no such file", path=path) from None
    key, stamp = (what, str(path)), (st.st_mtime_ns, st.st_size)
    hit = _READ.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    value = read(path)
    _READ[key] = (stamp, value)
    return value


def _sample_infos(path: Path) -> list[inspectlog.SampleInfo]:
    return _cached("samples", path, inspectlog.sample_infos)


def _looks_markdown(p: Path) -> bool:
    try:
        with open(p, "rb") as f:
            return f.read(64).lstrip().startswith(b"# Agent Run Log")
    except OSError:
        return False


@dataclass
class RunInfo:
    path: Path
    name: str
    task: str = "?"
    agent: str = "?"
    model: str | None = None
    status: str = "?"
    steps: int = 0
    max_steps: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    passed: bool | None = None
    submitted: bool | None = None
    started: float = 0.0
    problem: str | None = None
    #: The log's seal: sealed, tampered, unsealed, foreign or open.
    seal: str = "unsealed"
    seal_label: str = "unsealed"
    #: A batch (``tui/batches.py``): ``path`` is its directory; the grade reads ``grade_note``.
    batch: bool = False
    grade_note: str | None = None
    #: "agentdeck" (a run), "inspect-log" (an Inspect AI log: opens as its samples) or
    #: "inspect-sample" (one of them).
    kind: str = "agentdeck"
    #: Samples in an Inspect log (its row shows them instead of steps).
    samples: int | None = None
    #: Scores in words where there is no pass/fail (an Inspect log's headline metric).
    score: str | None = None

    @property
    def agent_model(self) -> str:
        return f"{self.agent}/{self.model}" if self.model else self.agent

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def grade_text(self) -> str:
        if self.grade_note is not None:
            return self.grade_note
        if self.passed is None:
            return self.score or "-"
        if self.passed:
            return "passed"
        return "failed" if self.submitted is not False else "not submitted"

    @property
    def date(self) -> str:
        if not self.started:
            return "-"
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(self.started))

    @property
    def finished(self) -> bool:
        """The log will not grow any more (it ended, or its writer died)."""
        return not self.status.startswith("running") and self.status != "?"


def writer_state(host: dict[str, object], started: float) -> str:
    """For a log without ``run_end``: "running" while its writer (the pid and host in
    ``run_start``) is alive, "died (no run_end)" once it is not."""
    import socket

    import psutil

    pid = host.get("pid")
    if not isinstance(pid, int) or host.get("hostname") != socket.gethostname():
        where = host.get("hostname")
        return f"running? (written on {where})" if where else "running/incomplete"
    try:
        proc = psutil.Process(pid)
        if proc.create_time() <= started + 1 and proc.status() != psutil.STATUS_ZOMBIE:
            return "running"
    except psutil.Error:
        pass
    return "died (no run_end)"


def run_name(path: Path) -> str:
    return path.parent.name if path.name == EVENTS_FILE else path.name


def read_run_info(path: Path) -> RunInfo:
    """Summarise one log; a log that cannot be read gives a row saying why."""
    info = RunInfo(path=path, name=run_name(path))
    try:
        return _read_run_info(path, info)
    except Exception as e:  # noqa: BLE001 - one damaged log must not hide the others
        info.problem = f"cannot be read: {type(e).__name__}: {e}"
        info.status = "unreadable"
        return info


def _read_run_info(path: Path, info: RunInfo) -> RunInfo:
    base, sample = inspectlog.split_spec(path)
    if sample is not None or inspectlog.sniff_file(path):
        try:
            return _inspect_info(base, sample, info)
        except LogError as e:
            info.problem = str(e)
            info.status = "unreadable"
            return info
    try:
        log = RunLog.open(path, follow=True)
    except LogError as e:
        info.problem = str(e)
        info.status = "unreadable"
        return info
    try:
        h = log.header
        if h is None:
            info.problem = "no run_start yet"
            info.status = "empty"
            return info
        info.task, info.agent, info.model = h.task, h.agent, h.model
        info.max_steps = h.max_steps
        info.started = h.t
        tot = log.totals()
        info.status = log.status
        if log.end is None:
            info.status = writer_state(h.host, h.t)
        info.steps = max(tot.steps, len(log.step_numbers))
        info.input_tokens = tot.input_tokens
        info.output_tokens = tot.output_tokens
        info.cost_usd = tot.cost_usd
        g = log.grade
        if g is not None:
            info.passed = g.passed
            info.submitted = g.submitted
        verdict = log.seal()
        info.seal, info.seal_label = verdict.status, verdict.label
    finally:
        log.close()
    return info


def _inspect_info(path: Path, sample: str | None, info: RunInfo) -> RunInfo:
    """An Inspect log's row (from its header) or one sample's (from its summary)."""
    info.seal, info.seal_label = "unsealed", "inspect"
    if sample is None:
        li = _cached("header", path, inspectlog.log_info)
        info.kind = "inspect-log"
        info.task, info.agent, info.model = li.task, li.agent, li.model
        info.status, info.started, info.samples = li.status, li.started, li.samples
        info.input_tokens, info.output_tokens = li.usage.input_tokens, li.usage.output_tokens
        info.cost_usd, info.score = li.cost_usd, li.headline
        return info
    spec = str(path) + inspectlog.SAMPLE_SEP + sample
    found = next((s for s in _sample_infos(path) if s.spec == spec), None)
    if found is None:
        raise LogError(f"no sample {sample!r} in this Inspect AI log", path=path)
    li = _cached("header", path, inspectlog.log_info)
    info.kind = "inspect-sample"
    # the sample first: long Inspect file names are clipped at the end
    info.name = f"{inspectlog.SAMPLE_SEP}{sample} {path.name}"
    info.task, info.agent, info.model = li.task, li.agent, li.model
    info.status, info.started = found.status, found.started
    info.steps = found.steps or 0
    info.input_tokens, info.output_tokens = found.usage.input_tokens, found.usage.output_tokens
    info.cost_usd, info.passed, info.score = found.cost_usd, found.passed, found.score
    if found.passed is not None:
        info.submitted = True
    return info


SORT_KEYS = {
    "date": lambda r: r.started,
    "task": lambda r: r.task,
    "agent": lambda r: r.agent_model,
    "status": lambda r: r.status,
    "steps": lambda r: r.steps,
    "tokens": lambda r: r.tokens,
    "cost": lambda r: r.cost_usd if r.cost_usd is not None else -1.0,
    "grade": lambda r: {True: 2, False: 1, None: 0}[r.passed],
    "name": lambda r: r.name,
}


def filter_runs(runs: list[RunInfo], text: str) -> list[RunInfo]:
    """Runs whose name, task, agent/model, status or grade contain every word of ``text``."""
    words = text.lower().split()
    if not words:
        return list(runs)
    out = []
    for r in runs:
        hay = " ".join([r.name, r.task, r.agent_model, r.status, r.grade_text]).lower()
        if all(w in hay for w in words):
            out.append(r)
    return out
