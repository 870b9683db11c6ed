"""Headless consumers of the event stream: the live line printer, the NDJSON
printer and the readable text form of a log (``agentdeck replay --no-ui``).

They use rich for colour on a terminal and print plain text otherwise; they
never import Textual, so ``--no-ui`` starts fast.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table

from agentdeck.engine.events import (
    Artifact,
    ErrorEvent,
    Event,
    EventError,
    Grade,
    ModelResponse,
    RunEnd,
    RunStart,
    StepStart,
    ToolCall,
    ToolOutputChunk,
    ToolResult,
    Totals,
    Usage,
    WarningEvent,
)
from agentdeck.engine.log import RunLog, StepRecord, encode_event
from agentdeck.tui import format as fmt


def fmt_tokens(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def fmt_cost(c: float | None) -> str:
    return "-" if c is None else f"${c:.4f}"


def grade_lines(grade: Grade | None) -> list[str]:
    """The grade as rich-markup lines: verdict and metrics, then each check."""
    if grade is None:
        return ["[dim]not graded[/]"]
    verdict = "[bold green]PASSED[/]" if grade.passed else "[bold red]FAILED[/]"
    if not grade.submitted:
        return [f"{verdict}  {escape(grade.reason or 'no result submitted')}"]
    shown = [
        f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
        for k, v in grade.metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    ]
    lines = [f"{verdict}  " + "  ".join(shown[:8])]
    if grade.checks:
        lines.append(
            "   ".join(
                ("[green]✓[/] " if c.met else "[red]✗[/] ") + escape(c.text or c.name)
                for c in grade.checks
            )
        )
    return lines


def totals_block(
    console: Console,
    *,
    status: str,
    totals: Totals | None,
    max_steps: int | None,
    grade: Grade | None,
    log_path: str | None,
    message: str | None = None,
    model: str | None = None,
    run_id: str | None = None,
    timed: bool = True,
    cost_computed: bool = False,
    replay_cmd: str | None = None,
) -> None:
    """The end-of-run summary: status, steps, tokens, cost, grade, log (and how to
    replay it). ``timed`` False for logs without timing (imported markdown)."""
    t = (totals or Totals()).to_dict()
    colour = {
        "completed": "green",
        "max_steps_reached": "yellow",
        "interrupted": "yellow",
        "limit_exceeded": "yellow",
        "error": "red",
    }.get(status, "white")
    took = f" in {fmt.duration(t.get('wall_s'))}" if timed else " (no timing in this log)"
    console.rule(f"[bold {colour}]{status}[/]{took}", style=colour)
    tab = Table.grid(padding=(0, 2))
    tab.add_column(style="bold")
    tab.add_column()
    if run_id:
        tab.add_row("run", escape(run_id))
    tab.add_row("status", f"[{colour}]{status}[/]" + (f"  {escape(message)}" if message else ""))
    steps = t.get("steps", 0)
    tab.add_row("steps", f"{steps}" + (f" of {max_steps}" if max_steps else ""))
    tab.add_row(
        "tokens",
        f"in {fmt_tokens(t.get('input_tokens'))} · out "
        f"{fmt_tokens(t.get('output_tokens'))} · cache write "
        f"{fmt_tokens(t.get('cache_creation_input_tokens'))} · cache read "
        f"{fmt_tokens(t.get('cache_read_input_tokens'))}",
    )
    cost = fmt_cost(t.get("cost_usd"))
    if model and (t.get("cache_read_input_tokens") or t.get("cache_creation_input_tokens")):
        from agentdeck.engine.pricing import cache_savings_usd

        saved = cache_savings_usd(model, totals or Totals())
        if saved is not None:
            cost += (
                f"  (prompt caching saved ${saved:.4f})"
                if saved >= 0
                else (f"  (prompt caching cost ${-saved:.4f} more)")
            )
    if cost_computed and t.get("cost_usd") is not None:
        cost += "  [dim](computed from the usage with agentdeck's price table)[/]"
    tab.add_row("cost", cost)
    if timed and t.get("wall_s"):
        tab.add_row("time", fmt.duration(t.get("wall_s")))
    gl = grade_lines(grade)
    tab.add_row("grade", gl[0])
    for extra in gl[1:]:
        tab.add_row("", extra)
    if log_path:
        tab.add_row("log", escape(log_path))
    if replay_cmd:
        tab.add_row("replay", escape(replay_cmd))
    console.print(tab)


class LinePrinter:
    """Bus sink for ``run --no-ui``: one line per step, then the totals block.

    A step's line is printed when the step is over (its tools have returned).
    On a terminal a transient status line shows what is running meanwhile; a tool
    call that runs longer than ``heartbeat_s`` gets a heartbeat line (tool, elapsed,
    the last line it printed) then and every ``heartbeat_every_s`` after, so a long
    step is never silent (also when stdout is a pipe or a file).
    """

    def __init__(
        self,
        console: Console | None = None,
        *,
        log_path: str | None = None,
        heartbeat_s: float = 5.0,
        heartbeat_every_s: float = 15.0,
    ) -> None:
        self.console = console or Console(highlight=False)
        self.log_path = log_path
        #: Where the log is, asked for when the run ends (the run directory is made later).
        self.log_path_of: Callable[[], str | None] | None = None
        self.start: RunStart | None = None
        self.step: int | None = None
        self.step_t0 = 0.0
        self.resp: ModelResponse | None = None
        self.tools: list[str] = []
        self.errors = 0
        self.grade: Grade | None = None
        self._lock = threading.Lock()
        self._status = None
        if self.console.is_terminal:
            self._status = self.console.status("", spinner="dots")
        self.heartbeat_s = heartbeat_s
        self.heartbeat_every_s = heartbeat_every_s
        self._call: ToolCall | None = None
        self._call_t0 = 0.0
        self._next_beat = 0.0
        self._last_line = ""
        self._partial = ""
        self._beat_thread: threading.Thread | None = None
        self._done = threading.Event()

    def _beat_loop(self) -> None:
        while not self._done.wait(0.5):
            with self._lock:
                call = self._call
                now = time.monotonic()
                if call is None or now < self._next_beat:
                    continue
                self._next_beat = now + self.heartbeat_every_s
                last = self._last_line or self._partial.strip()
                text = (
                    f"  … step {call.step} {call.name} running "
                    f"{fmt.duration(now - self._call_t0)}"
                    + (f": {fmt.clip(last, 100)}" if last else " (no output yet)")
                )
                if self._status is not None:
                    self._set_status(text.strip(" …"))
                else:
                    self.console.print(escape(text), soft_wrap=True)

    def __call__(self, ev: Event) -> None:
        with self._lock:
            self._handle(ev)

    def _set_status(self, text: str) -> None:
        if self._status is None:
            return
        self._status.update(text)
        self._status.start()

    def _flush_step(self, t: float) -> None:
        if self.step is None:
            return
        u = (self.resp.usage if self.resp else Usage()).as_dict()
        tools = ", ".join(self.tools) or "(no tool)"
        mark = "  [red]error[/]" if self.errors else ""
        width = len(str(self.start.max_steps)) if self.start else 2
        total = self.start.max_steps if self.start else "?"
        if self._status is not None:
            self._status.stop()
        self.console.print(
            f"step {self.step:>{width}}/{total}  {escape(tools):<22} "
            f"{fmt.duration(t - self.step_t0):>6}  in {u['input_tokens']:>7,}  "
            f"out {u['output_tokens']:>6,}  {fmt_cost(self.resp.cost_usd if self.resp else None)}"
            f"{mark}",
            soft_wrap=True,
        )
        self.step = None

    def _handle(self, ev: Event) -> None:
        if isinstance(ev, RunStart):
            self.start = ev
            who = ev.agent + (f" ({ev.model})" if ev.model else "")
            self.console.print(
                f"[bold]agentdeck[/] · {escape(ev.task)} · {escape(who)} · run {escape(ev.run_id)}"
            )
        elif isinstance(ev, StepStart):
            self._flush_step(ev.t)
            self.step, self.step_t0 = ev.step, ev.t
            self.resp, self.tools, self.errors = None, [], 0
            self._set_status(f"step {ev.step}: waiting for the model")
        elif isinstance(ev, ModelResponse):
            self.resp = ev
        elif isinstance(ev, ToolCall):
            self.tools.append(ev.name)
            self._set_status(f"step {ev.step}: running {ev.name}")
            self._call, self._call_t0 = ev, time.monotonic()
            self._next_beat = self._call_t0 + self.heartbeat_s
            self._last_line, self._partial = "", ""
            if self._beat_thread is None:
                self._beat_thread = threading.Thread(
                    target=self._beat_loop, name="agentdeck-heartbeat", daemon=True
                )
                self._beat_thread.start()
        elif isinstance(ev, ToolOutputChunk):
            text = self._partial + ev.text.replace("\r", "\n")
            lines = text.split("\n")
            self._partial = lines[-1][-500:]
            done = [ln for ln in lines[:-1] if ln.strip()]
            if done:
                self._last_line = done[-1][-500:]
        elif isinstance(ev, ToolResult):
            self._call = None
            if ev.error:
                self.errors += 1
        elif isinstance(ev, WarningEvent):
            if self._status is not None:
                self._status.stop()
            self.console.print(f"[yellow]warning[/] ({escape(ev.where)}): {escape(ev.message)}")
        elif isinstance(ev, ErrorEvent):
            if self._status is not None:
                self._status.stop()
            first = ev.message.splitlines()[0] if ev.message else ""
            self.console.print(f"[red]error[/] ({escape(ev.where)}): {escape(first)}")
        elif isinstance(ev, Grade):
            self.grade = ev
        elif isinstance(ev, RunEnd):
            self._call = None
            self._done.set()
            self._flush_step(ev.t)
            if self._status is not None:
                self._status.stop()
            totals_block(
                self.console,
                status=ev.status,
                totals=ev.totals,
                max_steps=self.start.max_steps if self.start else None,
                grade=self.grade,
                log_path=self.log_path or (self.log_path_of() if self.log_path_of else None),
                message=ev.message,
                model=self.start.model if self.start else None,
            )


class NdjsonPrinter:
    """Bus sink for ``--json``: every persistent event as one JSON line on stdout."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def __call__(self, ev: Event) -> None:
        if not ev.PERSIST:
            return
        with self._lock:
            self.stream.write(encode_event(ev) + "\n")
            self.stream.flush()


# -- a log as readable text -------------------------------------------------------------


def _output_text(output: Any) -> str:
    if isinstance(output, dict) and set(output) <= {"result", "error"}:
        parts = []
        if output.get("result"):
            parts.append(str(output["result"]).rstrip("\n"))
        if output.get("error"):
            parts.append("error: " + str(output["error"]).rstrip("\n"))
        return "\n".join(parts) if parts else "(no output)"
    if isinstance(output, str):
        return output
    return json.dumps(output, indent=2, ensure_ascii=False)


def print_step(
    console: Console, rec: StepRecord, max_steps: int, *, max_output_lines: int = 60
) -> None:
    resp = rec.response
    head = f"[bold cyan]Step {rec.step}[/]/{max_steps}"
    if resp is not None:
        u = resp.usage.as_dict()
        head += (
            f"  [dim]{escape(resp.message_id)} · stop {resp.stop_reason} · in "
            f"{u['input_tokens']:,} · out {u['output_tokens']:,}"
        )
        if u["cache_read_input_tokens"] or u["cache_creation_input_tokens"]:
            head += (
                f" · cache write {u['cache_creation_input_tokens']:,} · read "
                f"{u['cache_read_input_tokens']:,}"
            )
        if resp.cost_usd is not None:
            head += f" · {fmt_cost(resp.cost_usd)}"
        if rec.duration_s:
            head += f" · {fmt.duration(rec.duration_s)}"
        head += "[/]"
    console.rule(head, align="left", style="cyan")
    if rec.text.strip():
        console.print(escape(rec.text.strip()))
    for cr in rec.calls:
        call = cr.call
        console.print(f"\n[bold magenta]▶ {escape(call.name)}[/] [dim]#{call.block_index}[/]")
        code = call.input.get("code") if isinstance(call.input, dict) else None
        if isinstance(code, str):
            console.print(Syntax(code.strip("\n"), "python", theme="ansi_dark", word_wrap=True))
        elif call.input:
            console.print(escape(json.dumps(call.input, indent=2, ensure_ascii=False)))
        if cr.result is not None:
            res = cr.result
            text = _output_text(res.output)
            lines = text.splitlines()
            if len(lines) > max_output_lines:
                keep = max_output_lines // 2
                lines = [*lines[:keep], f"... {len(lines) - 2 * keep} lines ...", *lines[-keep:]]
            style = "red" if res.error else "green"
            dur = f" {fmt.duration(res.duration_s)}" if res.duration_s else ""
            console.print(
                f"[{style}]◀ output[/]{dur}"
                + (
                    f" [dim]({res.truncated_bytes:,} bytes truncated for the model)[/]"
                    if res.truncated_bytes
                    else ""
                )
            )
            console.print(escape("\n".join(lines)), style="red" if res.error else None)
            if res.error and res.error not in text:
                console.print(f"error: {escape(res.error)}", style="red")
    for w in rec.warnings:
        console.print(f"[yellow]warning[/] ({escape(w.where)}): {escape(w.message)}")
    for e in rec.errors:
        console.print(f"[red]error[/] ({escape(e.where)}): {escape(e.message.splitlines()[0])}")
    for m in rec.metrics[:20]:
        console.print(f"[dim]metric {escape(m.name)} = {m.value}[/]")
    if rec.files:
        marks = {"create": "[green]+[/]", "edit": "[yellow]●[/]", "delete": "[red]✗[/]"}
        console.print(
            "[dim]files:[/] "
            + "  ".join(f"{marks[f.op]} {escape(f.path)}" for f in rec.files[:40])
            + (f" [dim](+{len(rec.files) - 40} more)[/]" if len(rec.files) > 40 else "")
        )
    for p in rec.problems:
        console.print(f"[yellow]unreadable line[/]: {escape(p)}")
    console.print()


def print_log(log: RunLog, console: Console | None = None) -> None:
    """``agentdeck replay --no-ui``: the whole run as readable text."""
    console = console or Console(highlight=False)
    h = log.header
    assert h is not None
    who = h.agent + (f" ({h.model})" if h.model else "")
    console.print(
        f"[bold]{escape(h.task)}[/] · {escape(who)} · {h.max_steps} steps max · "
        f"started {escape(h.started_at or time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(h.t)))}"
    )
    verdict = log.seal()
    seal_style = {"sealed": "green", "tampered": "bold red"}.get(verdict.status, "yellow")
    console.print(
        f"[dim]{escape(str(log.name))} ({log.format})[/] · [{seal_style}]{verdict.label}[/]"
        + (f" [dim]({escape(verdict.detail)})[/]" if verdict.status != "sealed" else "")
    )
    for w in log.warnings:
        console.print(f"[yellow]warning[/]: {escape(w)}")
    console.rule("[bold]Prompt", align="left")
    console.print(escape(h.prompt.strip()))
    console.print()
    for n in log.step_numbers:
        print_step(console, log.step(n), h.max_steps)
    # run-level events after the last step (artifacts revealed at the end, errors)
    tot = log.totals()
    end = log.end
    grade = log.grade
    arts = [e for e in _tail_events(log) if isinstance(e, Artifact)]
    for a in arts:
        console.print(f"[dim]artifact {escape(a.name)}: {escape(a.path)}[/]")
    from agentdeck.engine.log.markdown import COMPUTED_COST

    totals_block(
        console,
        status=end.status if end else "incomplete (no run_end)",
        totals=tot,
        max_steps=h.max_steps,
        grade=grade,
        log_path=str(log.path) if log.path else None,
        message=end.message if end else None,
        model=h.model,
        timed=log.format != "markdown",
        cost_computed=h.host.get("cost") == COMPUTED_COST,
    )


def print_run_summary(path: Any, console: Console | None = None) -> None:
    """What is left on the terminal when the TUI closes: the run's id, status, grade with
    its metrics, steps, tokens, cost, time, the log and the command that replays it."""
    from agentdeck.engine.log import LogError

    console = console or Console(highlight=False)
    try:
        log = RunLog.open(path)
    except LogError as e:
        console.print(f"[yellow]the run's log cannot be read: {escape(str(e))}[/]")
        return
    with log:
        h = log.header
        end = log.end
        run_dir = log.path.parent if log.path is not None else None
        totals_block(
            console,
            status=end.status if end else "incomplete (no run_end)",
            totals=log.totals(),
            max_steps=h.max_steps if h else None,
            grade=log.grade,
            log_path=str(log.path) if log.path else None,
            message=end.message if end else None,
            model=h.model if h else None,
            run_id=h.run_id if h else None,
            replay_cmd=f"agentdeck replay {run_dir}" if run_dir is not None else None,
        )


def follow_log(path: Any, console: Console | None = None, *, poll_s: float = 0.25) -> int:
    """``agentdeck replay --follow --no-ui``: print a run as its log grows, one line a
    step (as ``run --no-ui`` does), until its ``run_end``. Exit 0, 2 when the log
    cannot be read or is truncated / replaced while followed, 130 on Ctrl-C."""
    from agentdeck.engine.log import LogError

    console = console or Console(highlight=False)
    printer = LinePrinter(console, log_path=str(path))
    try:
        log = RunLog.open(path, follow=True)
    except LogError as e:
        console.print(f"[bold red]agentdeck: error:[/] {escape(str(e))}")
        return 2
    done = 0
    try:
        while True:
            try:
                log.refresh()
            except LogError as e:
                console.print(f"[bold red]agentdeck: error:[/] {escape(str(e))}")
                return 2
            for i in range(done, len(log)):
                try:
                    ev = log.event_at(i)
                except EventError as e:
                    console.print(f"[yellow]unreadable line[/]: {escape(str(e))}")
                    continue
                printer(ev)
                if isinstance(ev, RunEnd):
                    return 0
            done = len(log)
            time.sleep(poll_s)
    except KeyboardInterrupt:
        console.print("[yellow]stopped following[/] (the run itself goes on)")
        return 130
    finally:
        log.close()


def _tail_events(log: RunLog) -> list[Event]:
    """Events after the last step's lines (grade, artifacts, run_end)."""
    if not log.step_numbers:
        return []
    _, end = log.line_range(log.step_numbers[-1])
    out = []
    for i in range(end, len(log)):
        try:
            out.append(log.event_at(i))
        except Exception:  # noqa: BLE001 - a damaged line is skipped in this summary
            continue
    return out
