"""TUI benchmark: prints figures (no pass/fail). Run: python bench/tui_bench.py [--steps N]

1. Writes a synthetic log with the engine's LogWriter (10,000 steps, ~50 MB: python
   tool calls with training-loop output, metrics, retries, errors, a grade).
2. Opens it in the replay app (headless, App.run_test) and times the first paint
   (RunLog.open + app start + first rows and detail drawn) and the background load
   of tokens/metrics.
3. Jumps to 30 random steps and times each: the list moving and redrawing its rows
   (cold cache), and the detail pane rendered for that step.
4. Starts a live (fake) run whose tool prints 10 MB as fast as it can through the
   event bus, presses keys during the flood and times each key's handling; samples
   the process's memory.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil
from rich.console import Console
from textual.geometry import Region

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the test doubles: synthetic runs, a fake live run

from agentdeck.engine.log import RunLog  # noqa: E402
from agentdeck.tui.app import AgentDeckApp, make_live_app  # noqa: E402
from agentdeck.tui.screens.run import RunScreen  # noqa: E402
from agentdeck.tui.stepdata import read_step  # noqa: E402
from agentdeck.tui.widgets.detail import render_step  # noqa: E402
from agentdeck.tui.widgets.output import ToolOutput  # noqa: E402

from doubles import (  # noqa: E402
    FakeRunConfig,
    SyntheticSpec,
    start_fake_run,
    until,
    write_synthetic_log,
)

PROC = psutil.Process()


def rss_mb() -> float:
    return PROC.memory_info().rss / 2**20


def ms(s: float) -> str:
    return f"{s * 1000:.1f} ms"


async def wait(cond, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    """Poll every millisecond (finer than the tests' ``until``)."""
    deadline = time.perf_counter() + timeout
    while not cond():
        if time.perf_counter() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.001)


async def key(app, name: str, done) -> float:  # type: ignore[no-untyped-def]
    """Send one key as the terminal driver would; seconds until ``done()`` holds
    (the key's handler has run)."""
    from textual import events

    t = time.perf_counter()
    ev = events.Key(name, name if len(name) == 1 else None)
    ev.set_sender(app)
    app._driver.send_message(ev)
    await wait(done)
    return time.perf_counter() - t


async def bench_replay(path: Path, steps: int) -> None:
    t0 = time.perf_counter()
    log = RunLog.open(path)
    t_open = time.perf_counter() - t0
    app = AgentDeckApp(lambda: RunScreen(log, mode="replay"))
    async with app.run_test(size=(160, 48)) as pilot:
        await wait(lambda: isinstance(app.screen, RunScreen))
        run = app.screen
        assert isinstance(run, RunScreen)
        await wait(lambda: run.detail_step == 1 and run.steps.count > 0)
        t_paint = time.perf_counter() - t0
        await until(pilot, lambda: run.state_ready, timeout=120)
        t_state = time.perf_counter() - t0
        print(f"open log (index {len(log):,} lines):   {ms(t_open)}")
        print(f"first paint (open + app + rows + detail): {ms(t_paint)}   (target <= 1000 ms)")
        print(f"tokens/metrics loaded in background: {ms(t_state)} after start")
        print(f"memory after open: {rss_mb():.0f} MB RSS")

        rng = random.Random(7)
        targets = [rng.randint(1, steps) for _ in range(30)]
        view = run.steps
        console = Console(
            width=90, file=io.StringIO(), force_terminal=True, color_system="truecolor"
        )
        jump_t, detail_t, e2e_t = [], [], []
        for n in targets:
            t = time.perf_counter()
            run.jump_to_step(n)
            h = view.scrollable_content_region.height
            view.render_lines(Region(0, 0, view.size.width, h))  # rows drawn, cold cache
            jump_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            rec = read_step(log, n)
            console.render_lines(render_step(rec), console.options)
            detail_t.append(time.perf_counter() - t)
        from agentdeck.tui.screens.dialogs import JumpScreen

        for n in targets[:10]:
            t = time.perf_counter()
            await key(app, "colon", lambda: isinstance(app.screen, JumpScreen))
            for ch in str(n):
                await key(app, ch, lambda: True)
            await key(app, "enter", lambda n=n: run.detail_step == n)
            e2e_t.append(time.perf_counter() - t)
        keys_t = []
        for i in range(20):
            before = view.cursor
            name = "j" if i % 2 == 0 else "k"
            keys_t.append(await key(app, name, lambda b=before: view.cursor != b))
            await asyncio.sleep(0.05)
        print(
            f"jump to a step (cursor + visible rows, cold): median {ms(statistics.median(jump_t))}"
            f", p90 {ms(sorted(jump_t)[26])}, max {ms(max(jump_t))}   (target <= 50 ms)"
        )
        print(
            f"detail of the step (parse + render):          median "
            f"{ms(statistics.median(detail_t))}, max {ms(max(detail_t))}"
        )
        print(
            f"end to end ':' N enter until the detail shows: median "
            f"{ms(statistics.median(e2e_t))}, max {ms(max(e2e_t))}"
        )
        print(
            f"j/k key handled (cursor moved): median {ms(statistics.median(keys_t))}, "
            f"max {ms(max(keys_t))}"
        )
        search = run.query_one("#search")
        await key(app, "slash", lambda: app.focused is search)
        for ch in "NameError":
            await key(app, ch, lambda: True)
        t = time.perf_counter()
        await key(app, "enter", lambda: not run.search.done)
        await wait(lambda: bool(run.search.matches))
        t_first = time.perf_counter() - t
        keys_during = []
        while not run.search.done:
            before = view.cursor
            keys_during.append(await key(app, "j", lambda b=before: view.cursor != b))
            await asyncio.sleep(0.05)
        t_all = time.perf_counter() - t
        print(
            f"search all {steps:,} steps for 'NameError': first match {ms(t_first)}, "
            f"all {len(run.search.matches):,} matches in {t_all:.1f} s (a worker thread); "
            f"j during the search: median {ms(statistics.median(keys_during or [0]))}, "
            f"max {ms(max(keys_during or [0]))}"
        )


async def bench_live(flood_mb: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        cfg = FakeRunConfig(
            log_dir=Path(d),
            steps=4,
            flood_bytes=flood_mb << 20,
            flood_step=3,
            hold_step=3,
            flood_chunk=100,
        )
        rss0 = rss_mb()
        app, handle = make_live_app(cfg, start=start_fake_run)
        peak = rss0
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: any(isinstance(s, RunScreen) for s in app.screen_stack))
            run = next(s for s in app.screen_stack if isinstance(s, RunScreen))
            await pilot.press("2")
            await wait(lambda: handle.in_tool.is_set() and run.steps.count >= 3)
            handle.release()  # the tool at step 3 now prints flood_mb MB as fast as it can
            t_start = time.perf_counter()
            lat = []
            kept = (0, 0, 0)
            i = 0
            while not run.state.finished and time.perf_counter() - t_start < 300:
                before = run.steps.cursor
                name = "k" if before > 0 else "j"
                if run.steps.count < 2:
                    await asyncio.sleep(0.01)
                    continue
                lat.append(await key(app, name, lambda b=before: run.steps.cursor != b))
                i += 1
                peak = max(peak, rss_mb())
                out = app.screen.query_one(ToolOutput)
                if run.state.current_step == 3:
                    kept = (
                        len(out.ring.lines),
                        out.ring.total_lines,
                        len(out.query_one("#output-log").lines),
                    )
                await asyncio.sleep(0.02)
            t_flood = time.perf_counter() - t_start
            print(
                f"live flood: {flood_mb} MB printed by one tool in {t_flood:.1f} s "
                f"({flood_mb / t_flood:.1f} MB/s through bus, log writer and UI)"
            )
            if lat:
                lat.sort()
                print(
                    f"key press handled during the flood: n={len(lat)}, median "
                    f"{ms(statistics.median(lat))}, p95 {ms(lat[int(len(lat) * 0.95) - 1])}, "
                    f"max {ms(lat[-1])}   (target <= 100 ms)"
                )
            print(
                f"output pane during the flood: ring {kept[0]:,} lines (of {kept[1]:,} "
                f"seen), Log widget {kept[2]:,} lines; the live buffer dropped "
                f"{run.source.buffer.dropped_chars:,} chars the UI never had to draw"
            )
            print(
                f"memory: {rss0:.0f} MB before the run, peak {peak:.0f} MB during "
                f"(+{peak - rss0:.0f} MB), the log on disk "
                f"{handle.run_dir.events.stat().st_size / 2**20:.1f} MB"
            )
            await pilot.press("q")
        handle.join(30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--output-bytes", type=int, default=4000)
    ap.add_argument("--flood-mb", type=int, default=10)
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, {psutil.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "events.jsonl"
        t = time.perf_counter()
        write_synthetic_log(
            path, SyntheticSpec(steps=args.steps, output_bytes=args.output_bytes, metrics_every=5)
        )
        size = path.stat().st_size / 1e6
        print(
            f"synthetic log: {args.steps:,} steps, {size:.1f} MB, written in "
            f"{time.perf_counter() - t:.1f} s with LogWriter"
        )
        asyncio.run(bench_replay(path, args.steps))
    asyncio.run(bench_live(args.flood_mb))


if __name__ == "__main__":
    main()
