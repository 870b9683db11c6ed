"""Inspect AI logs (``.eval`` and ``.json``) read as agentdeck runs.

Each sample of each epoch of an Inspect log is one run: its model calls are the
steps (usage as Inspect recorded it, the cost from agentdeck's price table when
Inspect has none), its tool calls carry their inputs and outputs, its scores
are the grade and its error or limit the run's status. ``sample_events`` turns
one sample into agentdeck events, so the run screen, the headless printer, the
exports and the compare screen read it like any other log.

Everything is read through Inspect's own public log API (``inspect_ai.log``),
imported only when an Inspect log is opened (``pip install 'agentdeck[inspect]'``):

- ``read_eval_log(header_only=True)``: the task, model, status and results;
- ``read_eval_log_sample_summaries``: one summary a sample (the runs list);
- ``read_eval_log_sample``: the one sample shown, decoded when it is opened.

A sample is addressed as ``LOG#ID`` or ``LOG#ID:EPOCH`` (epoch 1 by default);
a log with a single sample opens without one.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from agentdeck.engine import pricing
from agentdeck.engine.events import (
    Check,
    ErrorEvent,
    Event,
    Grade,
    ModelResponse,
    RunEnd,
    RunStart,
    RunStatus,
    StepStart,
    ToolCall,
    ToolResult,
    Totals,
    Usage,
    WarningEvent,
)
from agentdeck.engine.log.errors import LogError
from agentdeck.engine.log.markdown import COMPUTED_COST

if TYPE_CHECKING:
    from inspect_ai.event import ModelEvent, ToolEvent
    from inspect_ai.log import EvalLog, EvalSample, EvalSampleSummary
    from inspect_ai.model import ChatMessage, ModelUsage
    from inspect_ai.scorer import Score

    from agentdeck.engine.log.reader import RunLog

INSTALL_HINT = "pip install 'agentdeck[inspect]'"
#: Separates a log's path from the sample it names: ``run.eval#7:2``.
SAMPLE_SEP = "#"
#: What a run converted from Inspect says it is in ``run_start.host["imported_from"]``.
IMPORTED_FROM = "inspect"
#: The rule ``Grade.passed`` follows for Inspect scores (Inspect itself has none).
PASS_RULE = "every score counts as correct (C, true or >= 1, as Inspect's value_to_float reads it)"

_JSON_HEAD = re.compile(rb'^\s*\{\s*"version"\s*:\s*\d+\s*,')
_ZIP_MAGIC = b"PK\x03\x04"
T = TypeVar("T")


class InspectMissing(LogError):
    """inspect-ai is not installed: the message says how to install it."""


class SampleChoice(LogError):
    """A log with several samples was opened without naming one.

    ``samples`` is how many it holds and ``example`` a sample spec that opens one
    (``run.eval#1:1``); a UI can list the samples instead of failing."""

    def __init__(self, path: Path, samples: int, example: str, epochs: int) -> None:
        many = f"{samples} samples" + (f" ({epochs} epochs)" if epochs > 1 else "")
        name = Path(example).name
        super().__init__(
            f"an Inspect AI log with {many}; name one after the path as #ID or #ID:EPOCH "
            f"(e.g. {name}), or list them with: agentdeck runs {path}",
            path=path,
        )
        self.log_path = path
        self.samples = samples
        self.example = example


# -- recognising and addressing ----------------------------------------------------------


def looks_like_inspect(path: Path, head: bytes) -> bool:
    """True for an Inspect log: a ``.eval`` file (a zip archive), or a ``.json`` file
    whose top-level object starts with Inspect's ``"version"`` key."""
    suffix = path.suffix.lower()
    if suffix == ".eval":
        return True
    if suffix == ".json":
        return bool(_JSON_HEAD.match(head))
    return False


def sniff_file(path: Path) -> bool:
    """``looks_like_inspect`` on a file's first bytes (False when it cannot be read)."""
    if path.suffix.lower() not in (".eval", ".json"):
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return False
    return looks_like_inspect(path, head)


def split_spec(spec: str | os.PathLike[str]) -> tuple[Path, str | None]:
    """``run.eval#7:2`` -> (``run.eval``, ``"7:2"``); a path without ``#`` (or one that
    exists as it is) -> (path, None)."""
    text = os.fspath(spec)
    p = Path(text)
    if SAMPLE_SEP not in p.name or p.exists():
        return p, None
    base, _, frag = text.rpartition(SAMPLE_SEP)
    return Path(base), frag


def sample_spec(path: Path, sample_id: int | str, epoch: int) -> str:
    """The spec that opens one sample: ``run.eval#7:2``."""
    return f"{path}{SAMPLE_SEP}{sample_id}:{epoch}"


def _inspect_log(path: Path) -> ModuleType:
    try:
        import inspect_ai.log as ilog
    except ImportError as e:
        raise InspectMissing(
            f"reading Inspect AI logs needs the inspect-ai package ({e.msg}); install it "
            f"with: {INSTALL_HINT}",
            path=path,
        ) from None
    return ilog


def _off_loop(fn: Callable[[], T]) -> T:
    """Call one of Inspect's synchronous readers on a thread of its own.

    Each runs an asyncio loop to completion. Where a loop runs already (a Textual
    app) it would patch that loop with nest_asyncio; and on the main thread
    Python 3.11's ``asyncio.Runner`` ends by formatting ``repr()`` of the finished
    task, which holds the result: a whole ``EvalSample``, hundreds of milliseconds
    for a sample of 100 turns. A worker thread has neither problem."""
    with ThreadPoolExecutor(1, thread_name_prefix="inspect-read") as ex:
        return ex.submit(fn).result()


def _read(path: Path, what: str, fn: Callable[[], T]) -> T:
    try:
        return _off_loop(fn)
    except LogError:
        raise
    except FileNotFoundError:
        raise LogError("no such file", path=path) from None
    except Exception as e:  # Inspect raises zip, JSON, pydantic and OS errors
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise LogError(
            f"cannot read {what} as an Inspect AI log: {type(e).__name__}: {msg[:300]}",
            path=path,
        ) from e


#: Headers and sample summaries read, by (what, path), with the file's (mtime, size) then:
#: opening sample after sample of one log reads them once.
_READ: dict[tuple[str, str], tuple[tuple[int, int], Any]] = {}
_READ_MAX = 16


def _cached(what: str, path: Path, read: Callable[[], T]) -> T:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise LogError("no such file", path=path) from None
    key, stamp = (what, str(path.resolve())), (st.st_mtime_ns, st.st_size)
    hit = _READ.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]  # type: ignore[no-any-return]
    value = read()
    if len(_READ) >= _READ_MAX:
        _READ.pop(next(iter(_READ)))
    _READ[key] = (stamp, value)
    return value


def read_header(path: Path) -> EvalLog:
    """The log's header (no samples): task, model, status, results, stats."""
    ilog = _inspect_log(path)

    def read() -> EvalLog:
        header: EvalLog = ilog.read_eval_log(path, header_only=True)
        return header

    return _cached("header", path, lambda: _read(path, "the header", read))


def read_summaries(path: Path) -> list[EvalSampleSummary]:
    ilog = _inspect_log(path)
    return _cached(
        "summaries",
        path,
        lambda: _read(
            path, "the sample summaries", lambda: ilog.read_eval_log_sample_summaries(path)
        ),
    )


def read_sample(path: Path, sample_id: int | str, epoch: int) -> EvalSample:
    """One sample, decoded, its attachments resolved in the fields shown."""
    ilog = _inspect_log(path)
    sample: EvalSample = _read(
        path,
        f"sample {sample_id} (epoch {epoch})",
        # no exclude_fields: with it Inspect parses the sample with ijson, several times slower
        lambda: ilog.read_eval_log_sample(path, sample_id, epoch, resolve_attachments="core"),
    )
    return sample


def resolve_sample(
    path: Path, frag: str | None, summaries: list[EvalSampleSummary]
) -> EvalSampleSummary:
    """The summary of the sample ``frag`` names (``ID`` or ``ID:EPOCH``), or the only one."""
    if not summaries:
        raise LogError("the Inspect AI log holds no samples (yet)", path=path)
    if frag is None:
        if len(summaries) == 1:
            return summaries[0]
        first = min(summaries, key=_sample_order)
        raise SampleChoice(
            path,
            len(summaries),
            sample_spec(path, first.id, first.epoch),
            max(s.epoch for s in summaries),
        )
    wanted: list[tuple[str, int]] = [(frag, 1)]
    head, sep, tail = frag.rpartition(":")
    if sep and tail.isdigit():
        wanted.insert(0, (head, int(tail)))
    for sid, epoch in wanted:
        for s in summaries:
            if str(s.id) == sid and s.epoch == epoch:
                return s
    ids = sorted({str(s.id) for s in summaries}, key=lambda x: (len(x), x))
    shown = ", ".join(ids[:8]) + (f", … ({len(ids)} in all)" if len(ids) > 8 else "")
    epochs = max(s.epoch for s in summaries)
    raise LogError(
        f"no sample {frag!r}: use #ID or #ID:EPOCH with an id of {shown}"
        + (f" and an epoch of 1-{epochs}" if epochs > 1 else ""),
        path=path,
    )


def open_run_log(path: Path, frag: str | None) -> RunLog:
    """One sample of an Inspect log as a ``RunLog`` (only that sample is decoded)."""
    from agentdeck.engine.log.reader import RunLog

    header = read_header(path)
    summary = resolve_sample(path, frag, read_summaries(path))
    sample = read_sample(path, summary.id, summary.epoch)
    spec = sample_spec(path, summary.id, summary.epoch)
    events = sample_events(header, sample, source=spec)
    log = RunLog.from_events(events, name=spec)
    log.path = Path(spec)
    log.format = "inspect"
    return log


# -- the listing ------------------------------------------------------------------------


@dataclass
class SampleInfo:
    """One sample of an Inspect log, from its summary (nothing decoded)."""

    spec: str
    sample_id: int | str
    epoch: int
    status: str
    steps: int | None
    usage: Usage
    cost_usd: float | None
    passed: bool | None
    score: str | None
    started: float
    message: str | None = None


@dataclass
class LogInfo:
    """An Inspect log as a whole, from its header."""

    path: Path
    task: str
    model: str | None
    agent: str
    status: str
    started: float
    samples: int
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None
    headline: str | None = None
    message: str | None = None


_EVAL_STATUS: dict[str, str] = {
    "success": "completed",
    "error": "error",
    "cancelled": "interrupted",
    "started": "running/incomplete",
}


def _ts(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None


def _usage(u: ModelUsage | None) -> Usage:
    if u is None:
        return Usage()
    return Usage(
        input_tokens=u.input_tokens or 0,
        output_tokens=u.output_tokens or 0,
        cache_creation_input_tokens=u.input_tokens_cache_write or 0,
        cache_read_input_tokens=u.input_tokens_cache_read or 0,
    )


def price_model(model: str | None) -> str | None:
    """The model id the price table knows: Inspect's ``anthropic/claude-x`` -> ``claude-x``."""
    if not model:
        return None
    return model.rsplit("/", 1)[-1]


def _cost(model: str | None, u: ModelUsage | None) -> tuple[float | None, bool]:
    """(USD, computed): Inspect's own ``total_cost`` when it has one, else the price
    table's (computed); None when neither knows the model."""
    if u is not None and u.total_cost is not None:
        return float(u.total_cost), False
    return pricing.cost_usd(price_model(model), _usage(u)), True


def _usage_by_model(usage: dict[str, ModelUsage]) -> tuple[Usage, float | None]:
    total = Usage()
    cost: float | None = 0.0
    for model, u in usage.items():
        total.add(_usage(u))
        c, _ = _cost(model, u)
        cost = None if c is None or cost is None else cost + c
    return total, cost if usage else None


def _agent(header: EvalLog) -> str:
    solver = header.eval.solver
    if not solver and header.plan is not None and header.plan.steps:
        solver = header.plan.steps[-1].solver
    return f"inspect:{solver}" if solver else "inspect"


def log_info(path: Path) -> LogInfo:
    """The runs list's row for a whole Inspect log (reads only its header)."""
    h = read_header(path)
    from inspect_ai.log import headline_metric

    usage, cost = _usage_by_model(h.stats.model_usage if h.stats else {})
    head = None
    resolved = headline_metric(h)
    if resolved is not None:
        v = resolved.metric.value
        head = f"{resolved.name} {v:.3f}" if isinstance(v, int | float) else resolved.name
    samples = 0
    if h.results is not None:
        samples = h.results.total_samples
    elif h.eval.dataset.samples is not None:
        samples = h.eval.dataset.samples * max(1, h.eval.config.epochs or 1)
    return LogInfo(
        path=path,
        task=h.eval.task,
        model=h.eval.model,
        agent=_agent(h),
        status=_EVAL_STATUS.get(h.status, h.status),
        started=_ts(h.stats.started_at if h.stats else None) or _ts(h.eval.created) or 0.0,
        samples=samples,
        usage=usage,
        cost_usd=cost,
        headline=head,
        message=h.error.message.splitlines()[0] if h.error is not None else None,
    )


def sample_infos(path: Path) -> list[SampleInfo]:
    """One row a sample, by id then epoch (reads the log's sample summaries, no sample)."""
    out = []
    for s in sorted(read_summaries(path), key=_sample_order):
        usage, cost = _usage_by_model(s.model_usage)
        passed, text = _score_text(s.scores)
        if s.error:
            status, msg = "error", s.error.splitlines()[0]
        elif s.limit:
            status, msg = "limit_exceeded", f"{s.limit} limit"
        elif not s.completed:
            status, msg = "running/incomplete", None
        else:
            status, msg = "completed", None
        out.append(
            SampleInfo(
                spec=sample_spec(path, s.id, s.epoch),
                sample_id=s.id,
                epoch=s.epoch,
                status=status,
                steps=getattr(s, "turn_count", None),
                usage=usage,
                cost_usd=cost,
                passed=passed,
                score=text,
                started=_ts(s.started_at) or 0.0,
                message=msg,
            )
        )
    return out


def _sample_order(s: EvalSampleSummary) -> tuple[int, int, str, int]:
    return (1, 0, str(s.id), s.epoch) if isinstance(s.id, str) else (0, s.id, "", s.epoch)


# -- scores -----------------------------------------------------------------------------


def _floats(name: str, value: Any) -> list[tuple[str, float | None, Any]]:
    """(metric name, float or None, raw value) for a score value; dicts are flattened."""
    from inspect_ai.scorer import value_to_float

    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            out += _floats(f"{name}.{k}", v)
        return out
    if isinstance(value, list):
        return [(name, None, value)]
    try:
        f = float(value_to_float()(value))
    except (TypeError, ValueError):
        return [(name, None, value)]
    return [(name, None if math.isnan(f) else f, value)]


def _score_text(scores: dict[str, Score] | None) -> tuple[bool | None, str | None]:
    """(passed, "name=value ...") for the runs list."""
    if not scores:
        return None, None
    parts, met = [], []
    for name, sc in scores.items():
        for key, f, raw in _floats(name, sc.value):
            parts.append(f"{key}={raw}" if not isinstance(raw, float) else f"{key}={raw:.3g}")
            met.append(None if f is None else f >= 1.0)
    passed = None if any(m is None for m in met) else all(met)
    return passed, " ".join(parts)


def _grade(sample: EvalSample, step: int | None) -> Grade | None:
    scores = sample.scores or {}
    if not scores:
        return None
    metrics: dict[str, Any] = {}
    checks: list[Check] = []
    details: dict[str, Any] = {"target": sample.target, "scores": {}}
    for name, sc in scores.items():
        details["scores"][name] = {
            k: v
            for k, v in (
                ("value", sc.value),
                ("answer", sc.answer),
                ("explanation", sc.explanation),
            )
            if v is not None
        }
        for key, f, raw in _floats(name, sc.value):
            metrics[key] = f if f is not None or isinstance(raw, list) else raw
            text = f"{key} = {raw}"
            checks.append(
                Check(name=key, text=text, value=raw, threshold=1.0, op=">=", met=_met(f))
            )
    passed = all(c.met for c in checks) if checks else False
    return Grade(
        metrics=metrics,
        criteria=PASS_RULE,
        checks=checks,
        passed=passed,
        submitted=True,
        details=details,
        step=step,
    )


def _met(f: float | None) -> bool | None:
    return None if f is None else f >= 1.0


# -- one sample -> events ---------------------------------------------------------------


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for c in content or []:
        text = getattr(c, "text", None)
        if isinstance(text, str):
            parts.append(text)
    return "\n".join(parts)


def _blocks(message: Any) -> list[dict[str, Any]]:
    """An Inspect assistant message as Messages-API content blocks."""
    blocks: list[dict[str, Any]] = []
    content = message.content
    if isinstance(content, str):
        if content:
            blocks.append({"type": "text", "text": content})
    else:
        for c in content:
            kind = getattr(c, "type", "unknown")
            if kind == "text":
                blocks.append({"type": "text", "text": c.text})
            elif kind == "reasoning":
                blocks.append(
                    {
                        "type": "thinking",
                        "thinking": "(redacted)" if c.redacted else c.reasoning,
                    }
                )
            else:
                blocks.append({"type": str(kind)})
    for tc in message.tool_calls or []:
        block: dict[str, Any] = {
            "type": "tool_use",
            "id": tc.id,
            "name": tc.function,
            "input": dict(tc.arguments or {}),
        }
        if tc.parse_error:
            block["parse_error"] = tc.parse_error
        blocks.append(block)
    return blocks


def _tool_output(result: Any) -> Any:
    """A tool's result as JSON: text, a number, or a list of content blocks."""
    if result is None or isinstance(result, str | int | float | bool):
        return result
    if isinstance(result, list):
        items = [_tool_output(r) for r in result]
        if all(isinstance(i, str) for i in items):
            return "\n".join(items)
        return items
    text = getattr(result, "text", None)
    if isinstance(text, str):
        return text
    dump = getattr(result, "model_dump", None)
    if callable(dump):
        d = dump(exclude_none=True)
        if isinstance(d, dict):
            # images and other binary content: their kind, not their bytes
            return {k: v for k, v in d.items() if not (isinstance(v, str) and len(v) > 2000)}
    return str(result)


def _prompt_and_system(sample: EvalSample) -> tuple[str, str]:
    system = [m.text for m in sample.messages if m.role == "system"]
    if isinstance(sample.input, str):
        prompt = sample.input
    else:
        prompt = "\n\n".join(m.text for m in sample.input if m.role == "user") or "\n\n".join(
            _text_of(m.content) for m in sample.input
        )
    return prompt, "\n\n".join(system)


def _tools(events: Iterable[Any]) -> list[dict[str, Any]]:
    for ev in events:
        if getattr(ev, "event", None) == "model":
            return [
                {
                    "name": t.name,
                    "description": t.description,
                    "input_schema": t.parameters.model_dump(exclude_none=True),
                }
                for t in ev.tools
            ]
    return []


class _Builder:
    """Appends events with gap-free seqs and non-decreasing times."""

    def __init__(self, t0: float) -> None:
        self.events: list[Event] = []
        self.t = t0
        self.step = 0

    def add(self, ev: Event, t: float | None = None) -> None:
        if t is not None and t > self.t:
            self.t = t
        ev.seq = len(self.events)
        ev.t = self.t
        self.events.append(ev)

    def new_step(self, t: float | None) -> int:
        self.step += 1
        self.add(StepStart(step=self.step), t)
        return self.step


def sample_events(header: EvalLog, sample: EvalSample, *, source: str = "") -> list[Event]:
    """One Inspect sample as agentdeck events: ``run_start``, a step a model call (with
    its tool calls), warnings and errors, the scores as a ``grade``, ``run_end``."""
    ev_list = list(sample.events or [])
    t0 = (
        _ts(sample.started_at)
        or (_ts(ev_list[0].timestamp) if ev_list else None)
        or _ts(header.eval.created)
        or 0.0
    )
    model = header.eval.model
    prompt, system = _prompt_and_system(sample)
    limits = {
        k: v
        for k, v in (
            ("message_limit", sample.message_limit),
            ("token_limit", sample.token_limit),
            ("time_limit_s", sample.time_limit),
        )
        if v is not None
    }
    b = _Builder(t0)
    computed = [False]
    start = RunStart(
        run_id=f"{header.eval.eval_id or header.eval.run_id}-{sample.id}-{sample.epoch}",
        task=header.eval.task,
        task_params={**header.eval.task_args, "sample_id": sample.id, "epoch": sample.epoch},
        agent=_agent(header),
        model=model,
        max_steps=0,
        system=system,
        prompt=prompt,
        tools=_tools(ev_list),
        host={
            "imported_from": IMPORTED_FROM,
            "file": source,
            "inspect_ai": header.eval.packages.get("inspect_ai"),
            "eval_id": header.eval.eval_id,
            "sample_uuid": sample.uuid,
        },
        limits=limits,
        started_at=sample.started_at,
    )
    b.add(start, t0)
    totals = Totals()
    if any(getattr(e, "event", None) == "model" for e in ev_list):
        _from_events(b, ev_list, totals, computed)
    else:
        _from_messages(b, sample, totals, model, computed)
    start.max_steps = b.step
    if computed[0]:
        start.host["cost"] = COMPUTED_COST
    grade = _grade(sample, b.step or None)
    if grade is not None:
        b.add(grade)
    status: RunStatus = "completed"
    message = None
    if sample.error is not None:
        status, message = "error", sample.error.message.strip().splitlines()[0]
    elif sample.limit is not None:
        lim = sample.limit
        status, message = (
            "limit_exceeded",
            f"{lim.type} limit of {lim.limit:g} reached"
            + (f" ({lim.reason})" if lim.reason else ""),
        )
    totals.steps = b.step
    wall = sample.total_time
    if wall is None:
        t_end = _ts(sample.completed_at)
        wall = max(0.0, (t_end or b.t) - t0)
    totals.wall_s = float(wall)
    b.add(RunEnd(status=status, totals=totals, message=message), t0 + totals.wall_s)
    return b.events


def _from_events(b: _Builder, events: list[Any], totals: Totals, computed: list[bool]) -> None:
    blocks_of_step: list[dict[str, Any]] = []
    for ev in events:
        kind = getattr(ev, "event", None)
        if kind == "model":
            _model_step(b, ev, totals, computed)
            blocks_of_step = b.events[-1].content if isinstance(b.events[-1], ModelResponse) else []
        elif kind == "tool":
            if b.step == 0:
                b.new_step(_ts(ev.timestamp))
                blocks_of_step = []
            _tool(b, ev, blocks_of_step)
        elif kind == "error":
            b.add(
                ErrorEvent(
                    where="inspect",
                    message=ev.error.message.strip() or "error",
                    recoverable=False,
                    step=b.step or None,
                ),
                _ts(ev.timestamp),
            )
        elif kind == "sample_limit":
            b.add(
                WarningEvent(
                    where="limit",
                    message=f"{ev.type} limit: {ev.message}",
                    step=b.step or None,
                    code="limit",
                ),
                _ts(ev.timestamp),
            )
        elif kind == "logger" and ev.message.level in ("warning", "error", "critical"):
            b.add(
                WarningEvent(
                    where=f"log:{ev.message.name or 'inspect'}",
                    message=ev.message.message,
                    step=b.step or None,
                    code="log",
                ),
                _ts(ev.timestamp),
            )


def _model_step(b: _Builder, ev: ModelEvent, totals: Totals, computed: list[bool]) -> None:
    t_start = _ts(ev.timestamp)
    step = b.new_step(t_start)
    if ev.retries:
        b.add(
            WarningEvent(
                where="model",
                message=f"the model call was retried {ev.retries} time"
                + ("s" if ev.retries != 1 else ""),
                step=step,
                code="retry",
            )
        )
    out = ev.output
    usage = _usage(out.usage)
    cost, was_computed = _cost(out.model or ev.model, out.usage)
    computed[0] = computed[0] or (was_computed and cost is not None)
    latency = ev.working_time
    t_done = _ts(ev.completed)
    if latency is None and t_done is not None and t_start is not None:
        latency = max(0.0, t_done - t_start)
    msg = out.choices[0].message if out.choices else None
    b.add(
        ModelResponse(
            step=step,
            message_id=(msg.id if msg is not None and msg.id else None)
            or f"inspect-{ev.uuid or step}",
            model=out.model or ev.model,
            stop_reason=out.stop_reason,
            content=_blocks(msg) if msg is not None else [],
            usage=usage,
            latency_s=latency,
            cost_usd=cost,
        ),
        t_done,
    )
    totals.add(usage)
    totals.cost_usd = None if cost is None or totals.cost_usd is None else totals.cost_usd + cost
    err = ev.error or out.error
    if err:
        b.add(
            ErrorEvent(
                where="model", message=str(err).strip().splitlines()[0], recoverable=True, step=step
            )
        )


def _tool(b: _Builder, ev: ToolEvent, blocks: list[dict[str, Any]]) -> None:
    index = next(
        (
            i + 1
            for i, blk in enumerate(blocks)
            if blk.get("type") == "tool_use" and blk.get("id") == ev.id
        ),
        len(blocks) + 1,
    )
    t_start = _ts(ev.timestamp)
    b.add(
        ToolCall(
            step=b.step,
            call_id=ev.id,
            name=ev.function,
            input=dict(ev.arguments or {}),
            block_index=index,
        ),
        t_start,
    )
    dur = ev.working_time
    t_done = _ts(ev.completed)
    if dur is None:
        dur = max(0.0, t_done - t_start) if t_done is not None and t_start is not None else 0.0
    truncated = 0
    if ev.truncated is not None:
        truncated = max(0, int(ev.truncated[0]) - int(ev.truncated[1]))
    b.add(
        ToolResult(
            step=b.step,
            call_id=ev.id,
            name=ev.function,
            output=_tool_output(ev.result),
            error=_tool_error(ev.error),
            duration_s=float(dur),
            truncated_bytes=truncated,
        ),
        t_done if t_done is not None else (t_start + dur if t_start is not None else None),
    )


def _tool_error(err: Any) -> str | None:
    """Inspect's ``ToolCallError`` in words: ``timeout: ...`` (its type, unless unknown)."""
    if err is None:
        return None
    return err.message if err.type == "unknown" else f"{err.type}: {err.message}"


def _from_messages(
    b: _Builder, sample: EvalSample, totals: Totals, model: str | None, computed: list[bool]
) -> None:
    """A sample whose events were left out: the steps from its messages (no usage per
    step; the run's usage is the sample's)."""
    messages: list[ChatMessage] = list(sample.messages)
    step_blocks: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "assistant":
            step = b.new_step(None)
            step_blocks = _blocks(m)
            b.add(
                ModelResponse(
                    step=step,
                    message_id=m.id or f"inspect-msg-{step}",
                    model=m.model or model,
                    stop_reason=None,
                    content=step_blocks,
                )
            )
            for i, blk in enumerate(step_blocks):
                if blk["type"] == "tool_use":
                    b.add(
                        ToolCall(
                            step=step,
                            call_id=blk["id"],
                            name=blk["name"],
                            input=blk["input"],
                            block_index=i + 1,
                        )
                    )
        elif m.role == "tool" and b.step:
            b.add(
                ToolResult(
                    step=b.step,
                    call_id=m.tool_call_id or "",
                    name=m.function,
                    output=_tool_output(m.content),
                    error=_tool_error(m.error),
                )
            )
    usage, cost = _usage_by_model(sample.model_usage)
    totals.add(usage)
    totals.cost_usd = cost
    computed[0] = cost is not None and not any(
        u.total_cost is not None for u in sample.model_usage.values()
    )
    if b.step:
        b.add(
            WarningEvent(
                where="inspect",
                message="the log has no model events for this sample: steps are read from its "
                "messages, without usage per step (the totals are the sample's)",
                code="no_events",
            )
        )


__all__ = [
    "INSTALL_HINT",
    "SAMPLE_SEP",
    "InspectMissing",
    "LogInfo",
    "SampleChoice",
    "SampleInfo",
    "log_info",
    "looks_like_inspect",
    "open_run_log",
    "read_header",
    "read_sample",
    "read_summaries",
    "resolve_sample",
    "sample_events",
    "sample_infos",
    "sniff_file",
    "split_spec",
]
