"""Sandbox benchmark: kernel start, call round-trip, interrupt latency, tool overhead.

Run: ``python bench/sandbox_bench.py [--calls 200] [--starts 5] [--interrupts 10]``.
Prints figures (and the targets); it does not pass or fail.

Targets: start <= 1.5 s, round-trip <= 10 ms median, interrupt <= 200 ms median.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from agentdeck.engine.bus import EventBus
from agentdeck.engine.events import Event
from agentdeck.engine.log import RunDir
from agentdeck.engine.sandbox import Sandbox, python_expression_tool
from agentdeck.engine.tools import ToolContext


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def ms(x: float) -> str:
    return f"{x * 1000:8.2f} ms"


def bench_start(root: Path, n: int, startup_code: str) -> list[float]:
    times = []
    for i in range(n):
        rd = RunDir.create(root, f"start-{len(startup_code)}-{i}")
        box = Sandbox.for_run(rd, startup_code=startup_code)
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--starts", type=int, default=5)
    ap.add_argument("--interrupts", type=int, default=10)
    ap.add_argument("--output-mb", type=int, default=50)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="sandbox-bench-") as tmp:
        root = Path(tmp)
        bare = bench_start(root, args.starts, "")
        with_np = bench_start(root, args.starts, "import numpy as np")
        print(
            f"kernel start (bare)           median {ms(statistics.median(bare))}"
            f"   max {ms(max(bare))}   target <= 1500 ms"
        )
        print(
            f"kernel start (+import numpy)  median {ms(statistics.median(with_np))}"
            f"   max {ms(max(with_np))}"
        )

        rd = RunDir.create(root, "main")
        with Sandbox.for_run(rd, startup_code="import numpy as np") as box:
            for label, code in (
                ("round-trip 'x = 1'", "x = 1"),
                ("round-trip '1 + 1'", "1 + 1"),
                ("round-trip print('hi')", "print('hi')"),
            ):
                rt = bench_roundtrip(box, args.calls, code)
                print(
                    f"{label:<30}median {ms(statistics.median(rt))}   p95 {ms(pct(rt, 0.95))}"
                    f"   (n={len(rt)})   target <= 10 ms median"
                )
            for label, code in (
                ("interrupt (busy loop)", "while True: pass"),
                ("interrupt (time.sleep)", "import time\ntime.sleep(60)"),
            ):
                il = bench_interrupt(box, args.interrupts, code)
                print(
                    f"{label:<30}median {ms(statistics.median(il))}   max {ms(max(il))}"
                    f"   (n={len(il)})   target <= 200 ms median"
                )
            ov = bench_timeout(box, max(3, args.interrupts // 2))
            print(
                f"{'time limit overshoot':<30}median {ms(statistics.median(ov))}"
                f"   max {ms(max(ov))}"
            )
            raw, handled = bench_tool(box, rd, max(50, args.calls // 2))
            print(
                f"{'tool handler vs raw execute':<30}median {ms(statistics.median(handled))}"
                f" vs {ms(statistics.median(raw))}"
                f"   overhead {ms(statistics.median(handled) - statistics.median(raw))}"
            )
            raw_s, tool_s = bench_output(box, rd, args.output_mb)
            print(
                f"{args.output_mb} MB of output              raw {raw_s:6.2f} s"
                f" ({args.output_mb / raw_s:6.1f} MB/s)   through the tool {tool_s:6.2f} s"
            )


if __name__ == "__main__":
    main()
