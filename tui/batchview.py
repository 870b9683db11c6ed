"""How a batch reads: its summary table, one line a finished run, the progress line.

Shared by ``agentdeck batch`` (headless and ``--report``), the batch screen and the
runs list. Everything here formats what the engine's batch package computed.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import IO, Any

from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from agentdeck.engine.batch.events import (
    BatchEnded,
    BatchEvent,
    BatchNote,
    BatchStarted,
    RunEnded,
    encode,
)
from agentdeck.tui import format as fmt

#: Metrics shown first when a grade has them (the rest follow in their order).
MAIN_METRICS = ("f1", "precision", "recall", "accuracy", "macro_f1", "ece", "nll", "brier")


def rate(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def pass_rate_text(c: dict[str, Any]) -> str:
    if c["pass_rate"] is None:
        return "-"
    lo, hi = c["pass_rate_ci95"]
    return f"{c['pass_rate']:.2f} [{lo:.2f}, {hi:.2f}]"


def pass_at_k_text(c: dict[str, Any], *, sep: str = "  ") -> str:
    parts = [f"@{k} {rate(v)}" for k, v in c["pass_at_k"].items() if v is not None]
    return sep.join(parts) or "-"


def ordered_metrics(names: list[str]) -> list[str]:
    first = [m for m in MAIN_METRICS if m in names]
    return first + [m for m in names if m not in first]


def metric_text(st: dict[str, Any]) -> str:
    if st.get("mean") is None:
        return "-"
    se = st.get("se")
    return f"{st['mean']:.3f}" + (f" ± {se:.3f}" if se is not None else "")


def _title(summary: dict[str, Any]) -> str:
    title = (
        f"batch {summary['batch_id']}: {summary['passed']}/{summary['evaluated']} passed"
        f" of {summary['runs']} runs"
    )
    if summary.get("errors"):
        title += f" · {summary['errors']} infrastructure error(s)"
    if summary.get("stopped"):
        title += f" · stopped: {summary['stopped']}"
    return title


def _extra(c: dict[str, Any]) -> str:
    extra = []
    if c["not_submitted"]:
        extra.append(f"{c['not_submitted']} not submitted")
    if c["interrupted"]:
        extra.append(f"{c['interrupted']} interrupted")
    if c["not_run"]:
        extra.append(f"{c['not_run']} not run")
    return ", ".join(extra)


def summary_table(summary: dict[str, Any], *, max_metrics: int = 3) -> Table:
    """One row a configuration: runs, passed, pass rate [95% CI], pass@k, the main
    metrics (mean ± se), steps, tokens, cost, wall time and errors. Every metric and
    every k are in summary.json / summary.csv."""
    configs = summary["configs"]
    names: list[str] = []
    for c in configs:
        names += [m for m in c["metrics"] if m not in names]
    metrics = ordered_metrics(names)[:max_metrics]
    ks = sorted({int(k) for c in configs for k, v in c["pass_at_k"].items() if v is not None})
    shown_k = ks if len(ks) <= 3 else [ks[0], ks[len(ks) // 2], ks[-1]]
    tab = Table(title=escape(_title(summary)), header_style="bold", title_justify="left")
    tab.add_column("config")
    for col in ("runs", "passed"):
        tab.add_column(col, justify="right")
    tab.add_column("pass rate [95% CI]")
    for k in shown_k:
        tab.add_column(f"pass@{k}", justify="right")
    for m in metrics:
        tab.add_column(m)
    for col in ("steps", "tokens in/out", "cost", "wall", "errors"):
        tab.add_column(col, justify="right")
    for c in configs:
        t = c["tokens"]
        extra = _extra(c)
        tab.add_row(
            f"{c['config']} {escape(c['label'])}" + (f"\n[dim]{extra}[/]" if extra else ""),
            str(c["runs"]),
            f"{c['passed']}/{c['evaluated']}",
            pass_rate_text(c),
            *[rate(c["pass_at_k"].get(str(k))) for k in shown_k],
            *[metric_text(c["metrics"].get(m, {})) for m in metrics],
            "-" if c["steps"]["mean"] is None else f"{c['steps']['mean']:.1f}",
            f"{fmt.tokens(t['input'])}/{fmt.tokens(t['output'])}",
            fmt.cost(c["cost_usd"]),
            fmt.duration(c["wall_s"]["mean"]),
            f"[red]{c['errors']}[/]" if c["errors"] else "0",
        )
    return tab


def summary_cards(summary: dict[str, Any], *, max_metrics: int = 4) -> Group:
    """The summary for a narrow screen: a few lines a configuration."""
    out: list[Any] = [Text(_title(summary), style="bold")]
    for c in summary["configs"]:
        t = c["tokens"]
        lines = [
            f"[bold]{c['config']}[/] {escape(c['label'])}",
            f"    runs {c['runs']} · passed {c['passed']}/{c['evaluated']} · pass rate "
            f"{pass_rate_text(c)} · pass{pass_at_k_text(c, sep=' · pass')}",
        ]
        names = ordered_metrics(list(c["metrics"]))[:max_metrics]
        if names:
            lines.append("    " + " · ".join(f"{m} {metric_text(c['metrics'][m])}" for m in names))
        steps = "-" if c["steps"]["mean"] is None else f"{c['steps']['mean']:.1f}"
        usage = (
            f"    steps {steps} · tokens {t['input']:,} in / {t['output']:,} out"
            + (
                f" (cache {t['cache_write']:,} w / {t['cache_read']:,} r)"
                if t["cache_write"] or t["cache_read"]
                else ""
            )
            + f" · cost {fmt.cost(c['cost_usd'])} · wall {fmt.duration(c['wall_s']['mean'])}"
            + f" · errors {c['errors']}"
        )
        lines.append(usage)
        extra = _extra(c)
        if extra:
            lines.append(f"    [dim]{extra}[/]")
        out.append(Text.from_markup("\n".join(lines)))
    return Group(*out)


def print_summary(console: Console, summary: dict[str, Any]) -> None:
    """The table where it fits, else a few lines a configuration."""
    table = summary_table(summary)
    width = console.measure(table, options=console.options.update(max_width=100_000)).maximum
    if width <= console.width:
        console.print(table)
    else:
        console.print(summary_cards(summary))


def outcome_mark(status: str, passed: bool | None) -> tuple[str, str]:
    """(mark, colour) of a run's end."""
    if status in ("error", "incomplete"):
        return "!", "red"
    if status == "interrupted":
        return "■", "yellow"
    if status == "not_run":
        return "·", "dim"
    if passed:
        return "✓", "green"
    return "✗", "red"


def grade_word(status: str, passed: bool | None, submitted: bool | None) -> str:
    if status in ("error", "incomplete", "interrupted", "not_run"):
        return {"incomplete": "error", "not_run": "not run"}.get(status, status)
    if passed:
        return "passed"
    return "failed" if submitted else "not submitted"


def short_metrics(metrics: dict[str, float], n: int = 3) -> str:
    names = ordered_metrics(list(metrics))[:n]
    return "  ".join(f"{m} {fmt.value(metrics[m])}" for m in names)


class BatchLinePrinter:
    """``agentdeck batch --no-ui``: one line a finished run, and the progress line
    (after each run, and every ``every_s`` seconds when nothing ends)."""

    def __init__(self, console: Console | None = None, *, every_s: float = 30.0) -> None:
        self.console = console or Console(highlight=False)
        self.every_s = every_s
        self._last = time.monotonic()
        self._lock = threading.Lock()
        self.labels: dict[str, str] = {}

    def __call__(self, ev: BatchEvent) -> None:
        with self._lock:
            self._handle(ev)

    def _handle(self, ev: BatchEvent) -> None:
        c = self.console
        if isinstance(ev, BatchStarted):
            self.labels = {x["config"]: x["label"] for x in ev.configs}
            head = f"[bold]agentdeck batch[/] {escape(ev.batch_id)} · {ev.runs} runs"
            if ev.resumed:
                head += f" ({ev.to_run} to run)"
            c.print(f"{head} · {escape(ev.executor)} · {escape(ev.dir)}", soft_wrap=True)
            for cid, label in self.labels.items():
                c.print(f"  {cid}  {escape(label)}", soft_wrap=True)
        elif isinstance(ev, RunEnded):
            mark, colour = outcome_mark(ev.status, ev.passed)
            word = grade_word(ev.status, ev.passed, ev.submitted)
            line = (
                f"[{colour}]{mark} {word:<13}[/] {ev.config} e{ev.epoch} seed {ev.seed}  "
                f"{short_metrics(ev.metrics)}  {ev.steps} steps  "
                f"{fmt.tokens(ev.tokens.get('input', 0) + ev.tokens.get('output', 0))} tok  "
                f"{fmt.cost(ev.cost_usd)}  {fmt.duration(ev.wall_s)}"
            )
            if ev.status in ("error", "incomplete") and ev.message:
                line += f"  [red]{escape(fmt.clip(ev.message, 160))}[/]"
            if ev.retrying:
                line += "  [yellow](retrying)[/]"
            if ev.log:
                line += f"  [dim]{escape(ev.log)}[/]"
            c.print(line, soft_wrap=True)
        elif isinstance(ev, BatchNote):
            style = {"warning": "yellow", "error": "red"}.get(ev.level, "dim")
            c.print(f"[{style}]{escape(ev.message)}[/]", soft_wrap=True)
        elif isinstance(ev, BatchEnded):
            pass

    def progress(self, runner: Any, *, force: bool = False) -> None:
        """The progress line (called from the runner's tick)."""
        now = time.monotonic()
        if not force and now - self._last < self.every_s:
            return
        self._last = now
        with self._lock:
            self.console.print(progress_line(runner), soft_wrap=True, highlight=False)


def progress_line(runner: Any) -> str:
    c = runner.counts()
    eta = runner.eta_s()
    parts = [
        f"[{c['done']}/{c['total']}]",
        f"{c['running']} running",
        f"{c['passed']}/{c['evaluated']} passed",
        f"{fmt.duration(runner.elapsed())} elapsed",
        f"ETA {fmt.duration(eta) if eta is not None else '-'}",
        fmt.cost(runner.cost_so_far()),
    ]
    if c["errors"]:
        parts.append(f"{c['errors']} error(s)")
    return " · ".join(parts)


class BatchNdjsonPrinter:
    """``agentdeck batch --json``: every batch event as one JSON line."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def __call__(self, ev: BatchEvent) -> None:
        with self._lock:
            self.stream.write(encode(ev) + "\n")
            self.stream.flush()


def state_text(state: str, passed: bool | None, submitted: bool | None) -> Text:
    """A run's state for the batch screen: queued / running / its grade."""
    if state in ("queued", "starting", "running"):
        style = {"queued": "dim", "starting": "cyan", "running": "bold cyan"}[state]
        return Text(state, style=style)
    mark, colour = outcome_mark(state, passed)
    return Text(f"{mark} {grade_word(state, passed, submitted)}", style=colour)


__all__ = [
    "BatchLinePrinter",
    "BatchNdjsonPrinter",
    "grade_word",
    "outcome_mark",
    "pass_at_k_text",
    "pass_rate_text",
    "print_summary",
    "progress_line",
    "short_metrics",
    "state_text",
    "summary_cards",
    "summary_table",
]
