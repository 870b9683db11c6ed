"""Comparing two runs: their steps aligned by number, where they first diverge, and a
summary of both (the essentials first, every other metric on demand)."""

from __future__ import annotations

from dataclasses import dataclass, field

from agentdeck.engine.events import EventError, ToolCall, Usage
from agentdeck.engine.log import RunLog
from agentdeck.tui import format as fmt
from agentdeck.tui.runstate import RunState, group_rank, group_series
from agentdeck.tui.stepdata import call_signature

Signature = tuple[tuple[str, str], ...]


def call_signatures(log: RunLog) -> dict[int, Signature]:
    """Each step's tool calls as (name, canonical input JSON), parsing only tool_call lines."""
    sigs: dict[int, list[tuple[str, str]]] = {n: [] for n in log.step_numbers}
    for idx, etype in enumerate(log.line_types()):
        if etype != "tool_call":
            continue
        try:
            ev = log.event_at(idx)
        except EventError:
            continue
        if isinstance(ev, ToolCall):
            sigs.setdefault(ev.step, []).append(call_signature(ev))
    return {k: tuple(v) for k, v in sigs.items()}


@dataclass
class Alignment:
    steps: list[int]
    a: dict[int, Signature] = field(default_factory=dict)
    b: dict[int, Signature] = field(default_factory=dict)
    #: The first step whose tool calls or inputs differ (None: identical).
    divergence: int | None = None

    def differs(self, step: int) -> bool:
        return self.a.get(step) != self.b.get(step)


def align(a: RunLog, b: RunLog) -> Alignment:
    sa, sb = call_signatures(a), call_signatures(b)
    steps = sorted(set(a.step_numbers) | set(b.step_numbers))
    al = Alignment(steps, sa, sb)
    for s in steps:
        if sa.get(s) != sb.get(s):
            al.divergence = s
            break
    return al


# -- the summary: essentials first, every metric on demand --------------------------------


@dataclass(frozen=True)
class Cell:
    """One run's value in a summary row; ``ok``: a check met / the run passed (✓),
    not (✗), or neither (None)."""

    text: str
    ok: bool | None = None


@dataclass(frozen=True)
class SummaryRow:
    label: str
    a: Cell
    b: Cell
    #: B against A: ``+0.12`` for metrics, ``+2`` for steps, ``+15%`` for tokens, cost, time.
    delta: str = ""
    #: The section of the full table ("grade", "agent", "trainer", "system"); "" essentials.
    group: str = ""

    @property
    def differs(self) -> bool:
        return self.a != self.b


def _num(v: object) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _signed(d: float) -> str:
    """A difference in at most 8 characters: ``+0.315``, ``−2``, ``+1,930``, ``+1.23e+06``
    (9, for a difference of a million or more)."""
    a = abs(d)
    text = f"{a:,.0f}" if a < 100_000 and (a >= 1000 or a == int(a)) else f"{a:.3g}"
    return ("+" if d > 0 else "−") + text


def delta(a: object, b: object, *, relative: bool = False) -> str:
    """``b`` against ``a``: the difference (``+0.12``, ``−2``), or with ``relative`` the
    change in percent (``+15%``); "" when either is not a number or they are equal."""
    x, y = _num(a), _num(b)
    if x is None or y is None or x == y:
        return ""
    if relative:
        if x == 0:
            return ""
        pct = (y - x) / abs(x) * 100
        return f"{'+' if pct > 0 else '−'}{abs(pct):.0f}%" if round(pct) else ""
    return _signed(y - x)


def _result(st: RunState) -> Cell:
    status = st.end.status if st.end else "incomplete"
    g = st.grade
    if g is None:
        return Cell(f"{status} · not graded")
    verdict = "passed" if g.passed else ("failed" if g.submitted else "not submitted")
    return Cell(f"{status} · {verdict}", ok=g.passed)


def key_metric_names(sa: RunState, sb: RunState) -> list[str]:
    """The metrics the task's pass rule checks (``Grade.checks``), A's order first."""
    names: list[str] = []
    for st in (sa, sb):
        for c in st.grade.checks if st.grade else []:
            if c.name and c.name not in names:
                names.append(c.name)
    return names


def _check_cell(st: RunState, name: str) -> tuple[Cell, object]:
    g = st.grade
    if g is None:
        return Cell("-"), None
    check = next((c for c in g.checks if c.name == name), None)
    value = check.value if check is not None and check.value is not None else None
    if value is None:
        value = g.metrics.get(name)
    if value is None:
        return Cell("-"), None
    met = check.met if check is not None else None
    mark = {True: " ✓", False: " ✗"}.get(met, "") if met is not None else ""
    return Cell(fmt.value(value) + mark, ok=met), value


def essential_rows(sa: RunState, sb: RunState) -> list[SummaryRow]:
    """status and grade, the task's key metrics, steps, tokens, cost, time."""
    rows = [SummaryRow("result", _result(sa), _result(sb))]
    for name in key_metric_names(sa, sb):
        (ca, va), (cb, vb) = _check_cell(sa, name), _check_cell(sb, name)
        rows.append(SummaryRow(name, ca, cb, delta(va, vb)))
    na, nb = len(sa.step_order), len(sb.step_order)
    rows.append(SummaryRow("steps", Cell(str(na)), Cell(str(nb)), delta(na, nb)))
    (ua, costa), (ub, costb) = sa.cumulative(None), sb.cumulative(None)

    def tokens(u: Usage) -> Cell:
        return Cell(f"{fmt.tokens(u.prompt)} in · {fmt.tokens(u.output_tokens)} out")

    rows.append(
        SummaryRow("tokens", tokens(ua), tokens(ub), delta(ua.total, ub.total, relative=True))
    )
    rows.append(
        SummaryRow(
            "cost", Cell(fmt.cost(costa)), Cell(fmt.cost(costb)), delta(costa, costb, relative=True)
        )
    )
    ea, eb = sa.elapsed(), sb.elapsed()
    rows.append(
        SummaryRow(
            "time",
            Cell(fmt.duration(ea)),
            Cell(fmt.duration(eb)),
            delta(ea, eb, relative=True),
        )
    )
    return rows


def other_rows(sa: RunState, sb: RunState) -> list[SummaryRow]:
    """Every metric the essentials leave out: the grade's other metrics, then the last
    value of each logged metric by source (agent, trainer, system). Series that differ
    only in a ``foldN/`` part are one row, ``cnn/fold*/val_acc``: the mean of their
    last values."""
    key = set(key_metric_names(sa, sb))
    rows: list[SummaryRow] = []
    gm_a = sa.grade.metrics if sa.grade else {}
    gm_b = sb.grade.metrics if sb.grade else {}
    for name in [*gm_a, *(k for k in gm_b if k not in gm_a)]:
        if name in key:
            continue
        va, vb = gm_a.get(name), gm_b.get(name)
        rows.append(
            SummaryRow(
                name,
                Cell(fmt.value(va) if name in gm_a else "-"),
                Cell(fmt.value(vb) if name in gm_b else "-"),
                delta(va, vb),
                group="grade",
            )
        )
    lasts: list[dict[str, tuple[float, int]]] = []
    groups: dict[str, str] = {}
    for st in (sa, sb):
        folded: dict[str, tuple[float, int]] = {}
        by_name = sorted(st.metrics.items(), key=lambda kv: (group_rank(kv[1].group), kv[0]))
        for name, members in group_series(by_name).items():
            lasts_of = [m.last for _, m in members if m.last is not None]
            if lasts_of:
                folded[name] = (sum(lasts_of) / len(lasts_of), len(lasts_of))
                groups.setdefault(name, members[-1][1].group)
        lasts.append(folded)
    names = sorted(groups, key=lambda n: (group_rank(groups[n]), n))
    for name in names:
        cells: list[Cell] = []
        values: list[float | None] = []
        for folded in lasts:
            got = folded.get(name)
            values.append(got[0] if got else None)
            cells.append(Cell(fmt.value(got[0]) if got else "-"))
        rows.append(SummaryRow(name, cells[0], cells[1], delta(*values), group=groups[name]))
    return rows
