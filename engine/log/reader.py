"""The lazy log reader.

``RunLog`` reads a log lazily: one pass over the bytes builds an index (line
offsets, event type, step) from each line's fixed prefix
``{"seq":N,"t":T,"type":"X","step":S`` without parsing the JSON; a step is
parsed only when asked for. A torn last line is ignored with a warning, a log
that is still being written can be followed (``refresh``), and a seed-format
markdown log or one sample of an Inspect AI log is read through the same class
(converted to events first).
"""

from __future__ import annotations

import os
import re
import stat
from array import array
from collections.abc import Iterable, Iterator
from pathlib import Path

import msgspec

from agentdeck.engine.events import (
    Artifact,
    ErrorEvent,
    Event,
    EventError,
    FileChange,
    Grade,
    Metric,
    ModelResponse,
    RunEnd,
    RunStart,
    StepStart,
    ToolCall,
    ToolOutputChunk,
    ToolResult,
    Totals,
    WarningEvent,
    decode_event,
    encode_event_bytes,
)
from agentdeck.engine.log import inspectlog
from agentdeck.engine.log.errors import LogError
from agentdeck.engine.log.records import CallRecord, StepRecord
from agentdeck.engine.log.rundir import EVENTS_FILE
from agentdeck.engine.log.seal import Verdict, verify

# The writer always starts a line with these keys in this order; lines written by
# other tools fall back to a JSON parse.
_PREFIX = re.compile(
    rb'^\{"seq":(\d+),"t":[-0-9.eE+]+,"type":"([a-z_]+)"(?:,"step":(\d+))?[^\n]*\n', re.M
)
_CHUNK = 8 << 20

TYPE_CODES: dict[str, int] = {
    name: i
    for i, name in enumerate(
        [
            "run_start",
            "step_start",
            "model_delta",
            "model_response",
            "tool_call",
            "tool_output_chunk",
            "tool_result",
            "metric",
            "artifact",
            "grade",
            "warning",
            "error",
            "run_end",
            "file_change",
            "?",
        ]
    )
}
_CODE_NAMES = {v: k for k, v in TYPE_CODES.items()}
#: Run-level events that can sit between steps' lines but belong to no step.
_NOT_IN_STEPS = frozenset({"run_start", "run_end", "grade"})
_UNKNOWN = TYPE_CODES["?"]
#: Any type code but ``tool_output_chunk``'s, to find a step's other lines at C speed.
_NOT_CHUNK = re.compile(b"[^%c]" % TYPE_CODES["tool_output_chunk"])


#: Step numbers and seqs beyond this are not believed (the index keeps them in int32).
MAX_STEP = 2**31 - 1


class _FileSource:
    def __init__(self, path: Path) -> None:
        self.path = path
        # O_NONBLOCK: opening a FIFO must not wait for a writer (open() checks the type first)
        self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        st = os.fstat(self._fd)
        self._ino = (st.st_dev, st.st_ino)

    def size(self) -> int:
        return os.fstat(self._fd).st_size

    def replaced(self) -> bool:
        """True when the path now names another file (the log was moved or rewritten)."""
        try:
            st = os.stat(self.path)
        except OSError:
            return True
        return (st.st_dev, st.st_ino) != self._ino

    def read(self, offset: int, n: int) -> bytes:
        return os.pread(self._fd, n, offset)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class _BytesSource:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def size(self) -> int:
        return len(self.data)

    def replaced(self) -> bool:
        return False

    def read(self, offset: int, n: int) -> bytes:
        return self.data[offset : offset + n]

    def close(self) -> None:
        pass


def _bounded(digits: bytes | None) -> int | None:
    """A step or seq from a line's prefix; absurd values (``1e23`` steps) read as none."""
    if digits is None or len(digits) > 10:
        return None
    v = int(digits)
    return v if v <= MAX_STEP else None


def _small_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_STEP


def _is_markdown(head: bytes) -> bool:
    return head.lstrip().startswith(b"#")


class RunLog:
    """A lazily read run log (JSONL, or seed-format markdown imported to events).

    ``RunLog.open(path)`` raises ``LogError`` with a one-line message for a file
    that is missing, empty, not a log, or of an unsupported schema.
    """

    def __init__(self, source: _FileSource | _BytesSource, name: str) -> None:
        self._src = source
        self.name = name
        self.path: Path | None = getattr(source, "path", None)
        self.format = "jsonl"
        self.warnings: list[str] = []
        # per line
        self._off = array("q")
        self._len = array("i")
        self._type = array("b")
        self._step = array("i")
        self._indexed_to = 0  # bytes indexed (always at a line boundary)
        self._last_seq = -1
        self._current_step = 0
        # per step: step number -> first line index
        self.step_numbers: list[int] = []
        self._step_first_line: dict[int, int] = {}
        self._step_pos: dict[int, int] = {}
        self._model_response_lines: list[int] = []
        self._run_end_line: int | None = None
        self._grade_line: int | None = None
        self.header: RunStart | None = None
        self._step_cache: dict[int, StepRecord] = {}
        self._totals_cache: Totals | None = None
        self._torn_warned_at = -1
        self._seal: Verdict | None = None

    # -- opening --------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, follow: bool = False) -> RunLog:
        """Open a log: a run directory, an ``events.jsonl``, a seed-format markdown log,
        or an Inspect AI log (``.eval`` / ``.json``; one sample as ``LOG#ID[:EPOCH]``,
        see ``agentdeck.engine.log.inspectlog``)."""
        p, sample = inspectlog.split_spec(path)
        if sample is not None and not p.is_file():
            raise LogError("no such file", path=p)
        if p.is_dir():
            if (p / EVENTS_FILE).exists():
                p = p / EVENTS_FILE
            else:
                raise LogError(f"directory has no {EVENTS_FILE}: not a run directory", path=p)
        try:
            st = p.stat()
        except FileNotFoundError:
            raise LogError("no such file", path=p) from None
        except OSError as e:
            raise LogError(f"cannot read: {e.strerror}", path=p) from e
        if not stat.S_ISREG(st.st_mode):
            raise LogError(
                "not a regular file (a FIFO, device or socket?): agentdeck reads "
                "log files and run directories",
                path=p,
            )
        try:
            with open(p, "rb") as f:
                head = f.read(4096)
        except OSError as e:
            raise LogError(f"cannot read: {e.strerror}", path=p) from e
        if sample is not None or inspectlog.looks_like_inspect(p, head):
            if sample is not None and not inspectlog.looks_like_inspect(p, head):
                raise LogError(
                    f"'{inspectlog.SAMPLE_SEP}{sample}' names a sample, and only Inspect AI "
                    "logs (.eval, .json) hold samples",
                    path=p,
                )
            if follow:
                raise LogError(
                    "an Inspect AI log cannot be followed; open it without --follow", path=p
                )
            return inspectlog.open_run_log(p, sample)
        if _is_markdown(head):
            from agentdeck.engine.log.markdown import MarkdownError, import_markdown

            try:
                text = p.read_bytes().decode("utf-8")
            except UnicodeDecodeError as e:
                raise LogError(
                    f"not UTF-8 text (byte {e.start}: {e.reason}); agentdeck reads "
                    "UTF-8 markdown logs",
                    path=p,
                ) from e
            try:
                events = import_markdown(text, source=str(p))
            except MarkdownError as e:
                raise LogError(e.message, path=p, line=e.line) from e
            log = cls.from_events(events, name=str(p))
            log.path = p
            log.format = "markdown"
            return log
        log = cls(_FileSource(p), str(p))
        log._load(follow=follow)
        return log

    @classmethod
    def from_events(cls, events: list[Event], *, name: str = "<memory>") -> RunLog:
        data = b"".join(encode_event_bytes(e) + b"\n" for e in events)
        log = cls(_BytesSource(data), name)
        log._load(follow=False)
        return log

    @classmethod
    def from_bytes(cls, data: bytes, *, name: str = "<memory>") -> RunLog:
        log = cls(_BytesSource(data), name)
        log._load(follow=False)
        return log

    def close(self) -> None:
        self._src.close()

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _load(self, follow: bool) -> None:
        size = self._src.size()
        if size == 0:
            if follow:
                return
            raise LogError("empty file: not an agentdeck log", path=self.name)
        self._index_more(final=not follow)
        if self.header is None and not follow:
            raise LogError("not an agentdeck log: no run_start event", path=self.name, line=1)

    # -- indexing ---------------------------------------------------------------------

    def refresh(self) -> int:
        """Index lines appended since the last call; returns how many were added.

        Raises ``LogError`` when the file was truncated or replaced under us (a
        followed log must only grow): what was indexed no longer describes it.
        """
        if self._src.size() < self._indexed_to:
            raise LogError(
                "the log was truncated while it was being read (it must only grow); open it again",
                path=self.name,
            )
        if self._src.replaced():
            raise LogError(
                "the log file was replaced or removed while it was being read; open it again",
                path=self.name,
            )
        before = len(self._off)
        self._index_more(final=False)
        added = len(self._off) - before
        if added:
            self._totals_cache = None
            self._seal = None
            if self.step_numbers:
                # the last step may have grown
                self._step_cache.pop(self.step_numbers[-1], None)
        return added

    def _index_more(self, final: bool) -> None:
        size = self._src.size()
        pos = self._indexed_to
        carry = b""
        while pos + len(carry) < size:
            chunk = carry + self._src.read(pos + len(carry), min(_CHUNK, size - pos - len(carry)))
            if not chunk:
                break
            end = chunk.rfind(b"\n") + 1
            if end == 0:
                if pos + len(chunk) >= size:
                    break  # a last line without newline: handled below
                carry = chunk
                continue
            self._index_chunk(chunk[:end], pos)
            pos += end
            carry = chunk[end:]
        self._indexed_to = pos
        if pos < size:
            tail = self._src.read(pos, size - pos)
            if b"\n" not in tail:
                try:
                    msgspec.json.decode(tail)
                    complete = True
                except (msgspec.DecodeError, RecursionError):
                    complete = False
                if complete and final:
                    self._index_chunk(tail + b"\n", pos)
                    self._indexed_to = size
                elif final and self._torn_warned_at != pos:
                    self._torn_warned_at = pos
                    self.warnings.append(
                        f"line {len(self._off) + 1}: torn last line ({len(tail)} bytes) ignored"
                    )

    def _index_chunk(self, chunk: bytes, base: int) -> None:
        matches = list(_PREFIX.finditer(chunk))
        if len(matches) == chunk.count(b"\n"):
            for m in matches:
                self._add_line(
                    base + m.start(),
                    m.end() - m.start(),
                    m.group(2).decode(),
                    _bounded(m.group(1)),
                    _bounded(m.group(3)),
                )
            return
        # slow path: some line does not start with the writer's prefix
        start = 0
        while start < len(chunk):
            nl = chunk.index(b"\n", start)
            line = chunk[start : nl + 1]
            lm = _PREFIX.match(line)
            if lm:
                self._add_line(
                    base + start,
                    len(line),
                    lm.group(2).decode(),
                    _bounded(lm.group(1)),
                    _bounded(lm.group(3)),
                )
            elif line.strip():
                self._add_foreign_line(line, base + start)
            start = nl + 1

    def _add_foreign_line(self, line: bytes, offset: int) -> None:
        lineno = len(self._off) + 1
        try:
            d = msgspec.json.decode(line)
        except (msgspec.DecodeError, RecursionError):
            d = None
        if not isinstance(d, dict) or not isinstance(d.get("type"), str):
            if not self._off and self.header is None:
                raise LogError(
                    "not an agentdeck log (line 1 is not a JSON event)", path=self.name, line=1
                )
            self.warnings.append(f"line {lineno}: not a JSON event, ignored")
            return
        seq = d.get("seq") if _small_int(d.get("seq")) else None
        step = d.get("step") if _small_int(d.get("step")) else None
        self._add_line(offset, len(line), d["type"], seq, step)

    def _add_line(
        self, offset: int, length: int, etype: str, seq: int | None, step: int | None
    ) -> None:
        idx = len(self._off)
        lineno = idx + 1
        code = TYPE_CODES.get(etype, _UNKNOWN)
        if (idx == 0 or self.header is None) and etype != "run_start":
            raise LogError(
                f"not an agentdeck log: the first event is {etype!r}, expected 'run_start'",
                path=self.name,
                line=lineno,
            )
        if seq is not None and seq >= 0:
            if self._last_seq >= 0 and seq != self._last_seq + 1:
                self.warnings.append(
                    f"line {lineno}: seq jumps from {self._last_seq} to {seq} (events missing?)"
                )
            self._last_seq = seq
        if etype == "step_start" and step is not None:
            if step not in self._step_first_line:
                self._step_pos[step] = len(self.step_numbers)
                self.step_numbers.append(step)
                self._step_first_line[step] = idx
            self._current_step = step
        self._off.append(offset)
        self._len.append(length)
        self._type.append(code)
        self._step.append(self._current_step)
        if etype == "run_start" and self.header is None:
            ev = self._parse_line(idx, strict=True)
            assert isinstance(ev, RunStart)
            self.header = ev
        elif etype == "model_response":
            self._model_response_lines.append(idx)
        elif etype == "run_end":
            self._run_end_line = idx
        elif etype == "grade":
            self._grade_line = idx

    # -- parsing -----------------------------------------------------------------------

    def _parse_line(self, idx: int, strict: bool = False) -> Event:
        raw = self._src.read(self._off[idx], self._len[idx])
        try:
            return decode_event(raw)
        except EventError as e:
            if strict:
                raise LogError(str(e), path=self.name, line=idx + 1) from e
            raise e.located(line=idx + 1, source=self.name) from e

    def event_at(self, idx: int) -> Event:
        return self._parse_line(idx)

    def __len__(self) -> int:
        return len(self._off)

    def line_types(self, start: int = 0, end: int | None = None) -> list[str]:
        """The event type of each indexed line in ``[start, end)``, from the index alone.

        Lets a reader pick the lines it needs (say, every ``metric``, or a step
        without its ``tool_output_chunk`` lines) and parse only those with
        ``event_at``.
        """
        return [_CODE_NAMES[c] for c in self._type[start:end]]

    def events(self, *, skip_invalid: bool = True) -> Iterator[Event]:
        """Every event in order (parses the whole log)."""
        for i in range(len(self._off)):
            try:
                ev = self._parse_line(i)
            except EventError as e:
                if not skip_invalid:
                    raise
                self._note(f"{e}")
                continue
            yield ev

    def _note(self, msg: str) -> None:
        if msg not in self.warnings:
            self.warnings.append(msg)

    @property
    def max_steps(self) -> int:
        return self.header.max_steps if self.header else 0

    def line_range(self, step: int) -> tuple[int, int]:
        """Line indexes [first, end) of a step: from its step_start to the next one."""
        if step not in self._step_first_line:
            raise KeyError(step)
        first = self._step_first_line[step]
        pos = self._step_pos[step]
        if pos + 1 < len(self.step_numbers):
            end = self._step_first_line[self.step_numbers[pos + 1]]
        else:
            end = len(self._off)
            # trailing run-level events (grade, run_end) are not part of the last step
            while end > first + 1 and _CODE_NAMES[self._type[end - 1]] in ("run_end", "grade"):
                end -= 1
        return first, end

    def step(
        self, step: int, *, chunks: bool = True, types: Iterable[str] | None = None
    ) -> StepRecord:
        """Parse one step.

        ``chunks=False`` skips its ``tool_output_chunk`` lines (a tool printing
        megabytes can fill a step with them; the result keeps the output the
        model saw) and ``types`` parses only those event types, picked from the
        index without reading the other lines. Full reads of finished steps are
        cached.
        """
        full = chunks and types is None
        if full:
            cached = self._step_cache.get(step)
            if cached is not None:
                return cached
        first, end = self.line_range(step)
        want = set(types) if types is not None else None
        rec = StepRecord(step=step)
        calls: dict[str, CallRecord] = {}
        last_t = None
        if chunks:
            lines: Iterable[int] = range(first, end)
        else:
            # a step in progress whose tool floods its output is mostly chunk lines: skip
            # them without a Python loop over each
            codes = self._type[first:end].tobytes()
            lines = [first + m.start() for m in _NOT_CHUNK.finditer(codes)]
        for i in lines:
            etype = _CODE_NAMES[self._type[i]]
            if etype in _NOT_IN_STEPS:
                continue
            if want is not None and etype not in want and etype != "step_start":
                continue
            try:
                ev = self._parse_line(i)
            except EventError as e:
                rec.problems.append(str(e))
                continue
            last_t = ev.t
            if isinstance(ev, StepStart):
                rec.start = ev
                rec.t_start = ev.t
            elif isinstance(ev, ModelResponse):
                rec.response = ev
            elif isinstance(ev, ToolCall):
                cr = CallRecord(ev)
                calls[ev.call_id] = cr
                rec.calls.append(cr)
            elif isinstance(ev, ToolOutputChunk):
                if ev.call_id in calls:
                    calls[ev.call_id].chunks.append(ev)
            elif isinstance(ev, ToolResult):
                if ev.call_id in calls:
                    calls[ev.call_id].result = ev
            elif isinstance(ev, Metric):
                rec.metrics.append(ev)
            elif isinstance(ev, Artifact):
                rec.artifacts.append(ev)
            elif isinstance(ev, WarningEvent):
                rec.warnings.append(ev)
            elif isinstance(ev, ErrorEvent):
                rec.errors.append(ev)
            elif isinstance(ev, FileChange):
                rec.files.append(ev)
        # a step ends where the next one starts (or at its last event)
        pos = self._step_pos[step]
        if pos + 1 < len(self.step_numbers):
            nxt = self.step_numbers[pos + 1]
            rec.t_end = self._peek_t(self._step_first_line[nxt])
        else:
            rec.t_end = last_t
        finished = pos + 1 < len(self.step_numbers) or self._run_end_line is not None
        if full and finished:
            self._step_cache[step] = rec
            if len(self._step_cache) > 256:
                self._step_cache.pop(next(iter(self._step_cache)))
        return rec

    def _peek_t(self, idx: int) -> float | None:
        raw = self._src.read(self._off[idx], min(self._len[idx], 80))
        m = re.match(rb'\{"seq":\d+,"t":([-0-9.eE+]+)', raw)
        if m:
            return float(m.group(1))
        try:
            return float(self.event_at(idx).t)
        except (EventError, LogError):
            return None

    # -- run-level facts ------------------------------------------------------------------

    @property
    def end(self) -> RunEnd | None:
        if self._run_end_line is None:
            return None
        try:
            ev = self._parse_line(self._run_end_line)
        except EventError as e:
            self._note(str(e))
            return None
        return ev if isinstance(ev, RunEnd) else None

    @property
    def grade(self) -> Grade | None:
        if self._grade_line is None:
            return None
        try:
            ev = self._parse_line(self._grade_line)
        except EventError as e:
            self._note(str(e))
            return None
        return ev if isinstance(ev, Grade) else None

    @property
    def status(self) -> str:
        end = self.end
        return end.status if end else "running/incomplete"

    @property
    def last_t(self) -> float | None:
        return self._peek_t(len(self._off) - 1) if len(self._off) else None

    def totals(self) -> Totals:
        """Run totals: from run_end when the run finished, else summed over model responses."""
        if self._totals_cache is not None:
            return self._totals_cache
        end = self.end
        if end is not None and end.totals is not None:
            tot = msgspec.structs.replace(end.totals)
        else:
            tot = Totals()
            for idx in self._model_response_lines:
                try:
                    ev = self._parse_line(idx)
                except EventError as e:
                    self._note(str(e))
                    continue
                if isinstance(ev, ModelResponse):
                    tot.add_response(ev.usage, ev.cost_usd)
            tot.steps = max(tot.steps, len(self.step_numbers))
            if self.header is not None and self.last_t is not None:
                tot.wall_s = max(0.0, self.last_t - self.header.t)
        self._totals_cache = tot
        return tot

    def seal(self, *, recheck: bool = False) -> Verdict:
        """Whether this log is the one the engine wrote (see ``agentdeck.engine.log.seal``).

        The verdict is kept; ``recheck`` computes it again (a followed run's writer
        seals the log as it closes, just after ``run_end``)."""
        if self._seal is None or recheck:
            if self.format == "inspect":
                self._seal = Verdict(
                    "unsealed", "an Inspect AI log; agentdeck seals the logs it writes"
                )
            elif self.path is None or self.format != "jsonl" or self.header is None:
                self._seal = Verdict("unsealed", "not a log file agentdeck wrote")
            else:
                announced = self.header.host.get("seal_key")
                self._seal = verify(
                    self.path,
                    announced=announced if isinstance(announced, str) else None,
                    finished=self._run_end_line is not None,
                )
        return self._seal

    @property
    def passed(self) -> bool | None:
        g = self.grade
        return g.passed if g is not None else None
