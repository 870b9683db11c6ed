"""Sandbox benchmark: kernel start, call round-trip, interrupt latency, tool overhead,
for the ``local`` and ``bwrap`` backends side by side in one run (with the ratio).

Run: ``python bench/sandbox_bench.py [--calls 200] [--starts 5] [--interrupts 10]``.
Prints figures (and the targets); it does not pass or fail. The bwrap column is left
out, with the reason, where bubblewrap cannot run.

Targets: start <= 1.5 s, round-trip <= 10 ms median, interrupt <= 200 ms median.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

from agentdeck.engine.bus import EventBus
from agentdeck.engine.events import Event
from agentdeck.engine.log import RunDir
from agentdeck.engine.sandbox import Sandbox, python_expression_tool
from agentdeck.engine.sandbox.isolation import Backend, BwrapBackend, LocalBackend, bwrap_problem
from agentdeck.engine.tools import ToolContext


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def ms(x: float) -> str:
    return f"{x * 1000:8.2f} ms"


def bench_start(root: Path, n: int, startup_code: str, backend: Backend) -> list[float]:
    times = []
    for i in range(n):
        rd = RunDir.create(root, f"start-{backend.name}-{len(startup_code)}-{i}")
        box = Sandbox.for_run(rd, startup_code=startup_code, backend=backend)
        t0 = time.perf_counter()
        box.start()
        times.append(time.perf_counter() - t0)
        box.shutdown()
    return times


def bench_roundtrip(box: Sandbox, n: int, code: str) -> list[float]:
    for _ in range(10):
        box.execute(code)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        box.execute(code)
        times.append(time.perf_counter() - t0)
    return times


def bench_interrupt(box: Sandbox, n: int, code: str) -> list[float]:
    lat = []
    for _ in range(n):
        mark: list[float] = []

        def fire(mark: list[float] = mark) -> None:
            time.sleep(0.3)
            mark.append(time.perf_counter())
            box.interrupt()

        th = threading.Thread(target=fire)
        th.start()
        res = box.execute(code)
        done = time.perf_counter()
        th.join()
        assert res.interrupted and not res.restarted, res
        lat.append(done - mark[0])
    return lat


def bench_timeout(box: Sandbox, n: int) -> list[float]:
    over = []
    for _ in range(n):
        res = box.execute("while True: pass", timeout=0.3)
        assert res.status == "timeout" and not res.restarted, res
        over.append(res.duration_s - 0.3)
    return over


def bench_tool(box: Sandbox, rd: RunDir, n: int) -> tuple[list[float], list[float]]:
    events: list[Event] = []
    bus = EventBus([events.append])
    tool = python_expression_tool()
    raw, handled = [], []
    code = "print('x')\n1"
    for i in range(n + 10):
        t0 = time.perf_counter()
        box.execute(code, timeout=60)
        t1 = time.perf_counter()
        ctx = ToolContext(
            run_dir=rd, sandbox=box, emit=bus.emit, step=1, call_id=f"c{i}", time_limit_s=60
        )
        tool.handler({"code": code}, ctx)
        t2 = time.perf_counter()
        if i >= 10:
            raw.append(t1 - t0)
            handled.append(t2 - t1)
    return raw, handled


def bench_output(box: Sandbox, rd: RunDir, mb: int) -> tuple[float, float]:
    code = f"import sys\nfor i in range({mb}):\n    sys.stdout.write('x' * (1 << 20))"
    t0 = time.perf_counter()
    res = box.execute(code, keep_bytes=16 * 1024)
    raw = time.perf_counter() - t0
    assert res.output_bytes == mb << 20, res.output_bytes
    bus = EventBus([lambda e: None])
    ctx = ToolContext(
        run_dir=rd, sandbox=box, emit=bus.emit, step=1, call_id="big", time_limit_s=120
    )
    t0 = time.perf_counter()
    python_expression_tool().handler({"code": code}, ctx)
    return raw, time.perf_counter() - t0


def measure(root: Path, backend: Backend, args: argparse.Namespace) -> dict[str, list[float]]:
    """Every figure for one backend (medians and maxima are taken by the caller)."""
    out: dict[str, list[float]] = {}
    out["start (bare)"] = bench_start(root, args.starts, "", backend)
    out["start (+import numpy)"] = bench_start(root, args.starts, "import numpy as np", backend)
    rd = RunDir.create(root, f"main-{backend.name}")
    with Sandbox.for_run(rd, backend=backend, startup_code="import numpy as np") as box:
        for label, code in (
            ("round-trip 'x = 1'", "x = 1"),
            ("round-trip print('hi')", "print('hi')"),
        ):
            out[label] = bench_roundtrip(box, args.calls, code)
        for label, code in (
            ("interrupt (busy loop)", "while True: pass"),
            ("interrupt (time.sleep)", "import time\ntime.sleep(60)"),
        ):
            out[label] = bench_interrupt(box, args.interrupts, code)
        out["time limit overshoot"] = bench_timeout(box, max(3, args.interrupts // 2))
        raw, handled = bench_tool(box, rd, max(50, args.calls // 2))
        out["tool handler overhead"] = [
            h - r for h, r in zip(sorted(handled), sorted(raw), strict=True)
        ]
        _raw_s, tool_s = bench_output(box, rd, args.output_mb)
        out[f"{args.output_mb} MB of output through the tool"] = [tool_s]
    return out


TARGETS = {
    "start (bare)": "<= 1500 ms",
    "round-trip 'x = 1'": "<= 10 ms",
    "interrupt (busy loop)": "<= 200 ms",
    "interrupt (time.sleep)": "<= 200 ms",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--starts", type=int, default=5)
    ap.add_argument("--interrupts", type=int, default=10)
    ap.add_argument("--output-mb", type=int, default=50)
    args = ap.parse_args()

    backends: list[Backend] = [LocalBackend()]
    problem = bwrap_problem()
    if problem is None:
        backends.append(BwrapBackend(shutil.which("bwrap") or "bwrap"))
    else:
        print(f"bwrap column left out: {problem}")
    with tempfile.TemporaryDirectory(prefix="sandbox-bench-") as tmp:
        results = {b.name: measure(Path(tmp), b, args) for b in backends}
    names = [b.name for b in backends]
    print(
        f"{'median (max)':<34}"
        + "".join(f"{n:>22}" for n in names)
        + ("        bwrap/local" if len(names) == 2 else "")
        + "   target"
    )
    for label in results["local"]:
        cells = []
        for n in names:
            v = results[n][label]
            cells.append(f"{ms(statistics.median(v))} ({max(v) * 1000:6.1f})")
        ratio = ""
        if len(names) == 2:
            a, b = (
                statistics.median(results["local"][label]),
                statistics.median(results["bwrap"][label]),
            )
            ratio = f"{b / a:14.2f}x" if a > 0 else f"{'-':>15}"
        print(
            f"{label:<34}"
            + "".join(f"{c:>22}" for c in cells)
            + ratio
            + f"   {TARGETS.get(label, '')}"
        )


if __name__ == "__main__":
    main()
