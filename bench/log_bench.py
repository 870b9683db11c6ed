"""Benchmark of the event log: write, index, load one step, peak memory.

    python bench/log_bench.py [--steps 10000] [--repeat 5]

Writes a synthetic run of STEPS steps (about 5 KB of events a step: a model
response with text and code, the tool call, streamed output chunks, the
result, a metric), then reports events written per second, the time to build
the index, the median and p95 time to load a random step, and the peak RSS of
a fresh process that indexes the file. Prints medians over REPEAT runs.
Targets on the 2-core dev machine: index of 50 MB <= 0.5 s, one step <= 5 ms,
peak RSS <= 150 MB while indexing.

Then, side by side (``--inspect-samples 0`` skips it; needs inspect-ai): the same
10,000 turns as an Inspect AI log (100 samples x 100 turns, written by Inspect
with its mockllm model, cached in bench/out/) and as one agentdeck log (those
samples converted and written with LogWriter as one run of 10,000 steps). Each
figure comes from a fresh process, median of SIDE_REPEAT:

- open to first paint: the replay screen (160x48) showing its first step, from
  just before the log is opened (an Inspect log: header, summaries, sample 1
  decoded and converted; imports of Inspect's reader included);
- one step: show a random turn of the 10,000 (Inspect: decode its sample, then
  the step), and the next step of a sample already open;
- full pass: read every event of every turn;
- peak RSS of the process (imports included), for the first paint and the
  full pass; Inspect's own ``read_eval_log`` of the whole log for reference.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from agentdeck.engine.bus import EventBus
from agentdeck.engine.events import (
    Metric,
    ModelResponse,
    RunEnd,
    RunStart,
    StepStart,
    ToolCall,
    ToolOutputChunk,
    ToolResult,
    Totals,
    Usage,
)
from agentdeck.engine.log import LogWriter, RunLog

CODE = (
    textwrap.dedent("""
    import numpy as np
    import torch
    from torch import nn
    # train a small model and look at the out-of-fold probabilities
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    for epoch in range({epoch}):
        perm = torch.randperm(len(X))
        for i in range(0, len(X), 256):
            idx = perm[i:i + 256]
            loss = nn.functional.cross_entropy(model(X[idx]), y[idx])
            opt.zero_grad(); loss.backward(); opt.step()
        print(f"epoch {{epoch}} loss {{loss.item():.4f}}")
    probs = torch.softmax(model(X_test), 1).detach().numpy()
    print(probs.shape, probs[:3])
""")
    * 2
)


def output_text(rng: random.Random, lines: int) -> str:
    return "".join(
        f"epoch {i} loss {rng.random():.4f} acc {rng.random():.4f} "
        f"val_loss {rng.random():.4f} val_acc {rng.random():.4f} samples/s {rng.randint(1000, 9000)}\n"
        for i in range(lines)
    )


def write_log(path: Path, steps: int, seed: int = 0) -> tuple[int, float]:
    rng = random.Random(seed)
    writer = LogWriter(path)
    bus = EventBus([writer])
    t0 = time.perf_counter()
    bus.emit(
        RunStart(
            run_id="bench",
            task="noisy-labels",
            agent="claude",
            model="claude-haiku-4-5",
            max_steps=steps,
            prompt="synthetic " * 200,
            tools=[
                {
                    "name": "python_expression",
                    "description": "run code",
                    "input_schema": {"type": "object"},
                }
            ],
        )
    )
    for s in range(1, steps + 1):
        bus.emit(StepStart(step=s))
        code = CODE.format(epoch=s % 17 + 1)
        call_id = f"toolu_{s:06d}"
        bus.emit(
            ModelResponse(
                step=s,
                message_id=f"msg_{s:08d}",
                stop_reason="tool_use",
                content=[
                    {"type": "text", "text": "Let me try another approach. " * 12},
                    {
                        "type": "tool_use",
                        "id": call_id,
                        "name": "python_expression",
                        "input": {"code": code},
                    },
                ],
                usage=Usage(
                    input_tokens=1000 + 40 * s, output_tokens=300, cache_read_input_tokens=900
                ),
                latency_s=1.2,
                cost_usd=0.0012,
            )
        )
        bus.emit(
            ToolCall(
                step=s,
                call_id=call_id,
                name="python_expression",
                input={"code": code},
                block_index=2,
            )
        )
        out = output_text(rng, 10)
        bus.emit(ToolOutputChunk(step=s, call_id=call_id, stream="stdout", text=out[:400]))
        bus.emit(ToolOutputChunk(step=s, call_id=call_id, stream="stdout", text=out[400:]))
        bus.emit(Metric(name="loss", value=rng.random(), step=s, x=float(s), source="sandbox"))
        bus.emit(
            ToolResult(
                step=s,
                call_id=call_id,
                name="python_expression",
                output={"result": out, "error": None},
                duration_s=2.5,
            )
        )
    bus.emit(RunEnd(status="max_steps_reached", totals=Totals(steps=steps)))
    elapsed = time.perf_counter() - t0
    writer.close()
    return bus.next_seq, elapsed


# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec (the parent's peak would show)
RSS_CHILD = """
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
from agentdeck.engine.log import RunLog
base = hwm()
log = RunLog.open({path!r})
print(base, hwm())
"""


# -- side by side: an Inspect AI log and an agentdeck log of the same turns -------------------

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"


def inspect_log(samples: int, turns: int) -> Path:
    """The Inspect log of ``samples`` x ``turns`` model calls (made once, then cached)."""
    d = OUT / f"inspect-{samples}x{turns}"
    found = sorted(d.glob("*.eval")) if d.is_dir() else []
    if found:
        return found[-1]
    sys.path.insert(0, str(ROOT / "tests"))
    from inspect_logs import Spec, make_inspect_log

    print(
        f"writing an Inspect log of {samples} x {turns} turns with mockllm (once) ...", flush=True
    )
    t0 = time.perf_counter()
    path = make_inspect_log(
        d,
        Spec(samples=samples, turns=turns - 1, message_limit=2 * turns + 50, output_bytes=1000),
    )
    print(f"  {path.name} in {time.perf_counter() - t0:.0f} s")
    return path


def same_turns_log(eval_path: Path) -> Path:
    """One agentdeck log holding every sample's turns as consecutive steps."""
    import msgspec

    from agentdeck.engine.events import Grade, RunEnd, RunStart, Totals
    from agentdeck.engine.log.inspectlog import sample_infos

    path = eval_path.with_suffix(".agentdeck.jsonl")
    if path.exists():
        return path
    infos = sample_infos(eval_path)
    tmp = path.with_suffix(".tmp")
    writer = LogWriter(tmp)
    seq, offset, totals = 0, 0, Totals()
    for i, info in enumerate(infos):
        log = RunLog.open(info.spec)
        for ev in log.events():
            if isinstance(ev, RunStart):
                if i == 0:
                    steps = sum(x.steps or 0 for x in infos)
                    writer.write(msgspec.structs.replace(ev, seq=seq, max_steps=steps))
                    seq += 1
                continue
            if isinstance(ev, RunEnd):
                assert ev.totals is not None
                totals.add(ev.totals)
                totals.steps += ev.totals.steps
                totals.wall_s += ev.totals.wall_s
                totals.cost_usd = (
                    None
                    if ev.totals.cost_usd is None or totals.cost_usd is None
                    else totals.cost_usd + ev.totals.cost_usd
                )
                continue
            if isinstance(ev, Grade) and i < len(infos) - 1:
                continue
            step = getattr(ev, "step", None)
            if isinstance(step, int):
                ev = msgspec.structs.replace(ev, step=step + offset)
            writer.write(msgspec.structs.replace(ev, seq=seq))
            seq += 1
        offset += len(log.step_numbers)
        log.close()
    writer.write(RunEnd(seq=seq, t=time.time(), status="completed", totals=totals))
    writer.close()
    tmp.replace(path)
    return path


def _rss_mb() -> float:
    """This process's peak RSS. Not ``ru_maxrss``: Linux carries that over ``exec``, so a
    child would report its parent's peak when that was higher."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _specs(path: Path) -> list[str]:
    from agentdeck.engine.log.inspectlog import sample_infos

    return [s.spec for s in sample_infos(path)]


def child_paint(path: str) -> dict[str, float]:
    import asyncio

    from agentdeck.tui.app import AgentDeckApp
    from agentdeck.tui.screens.run import RunScreen

    if path.endswith(".eval"):
        path += "#1:1"  # what 'agentdeck replay LOG.eval#1' opens

    async def go() -> float:
        t0 = time.perf_counter()
        log = RunLog.open(path)
        app = AgentDeckApp(lambda: RunScreen(log, mode="replay"))
        async with app.run_test(size=(160, 48)) as pilot:
            while not (
                isinstance(app.screen, RunScreen)
                and app.screen.detail_step == 1
                and app.screen.steps.count > 0
            ):
                await asyncio.sleep(0.001)
            t = time.perf_counter() - t0
            await pilot.press("q")
        return t

    return {"paint_s": asyncio.run(go()), "rss_mb": _rss_mb()}


def child_list(path: str) -> dict[str, float]:
    """An Inspect log's sample list (what 'agentdeck replay LOG.eval' opens), filled."""
    import asyncio

    from agentdeck.tui.app import AgentDeckApp
    from agentdeck.tui.screens.runs import RunsScreen

    async def go() -> float:
        t0 = time.perf_counter()
        app = AgentDeckApp(lambda: RunsScreen(Path(path)))
        async with app.run_test(size=(160, 48)) as pilot:
            while not (isinstance(app.screen, RunsScreen) and app.screen.table.row_count > 0):
                await asyncio.sleep(0.001)
            t = time.perf_counter() - t0
            await pilot.press("q")
        return t

    return {"paint_s": asyncio.run(go()), "rss_mb": _rss_mb()}


def child_step(path: str) -> dict[str, float]:
    """A random turn of all of them; and the next one where the log is open already."""
    rng = random.Random(3)
    inspect = Path(path).suffix == ".eval"
    any_ms, next_ms = [], []
    if inspect:
        specs = _specs(Path(path))
        for _ in range(20):
            spec = rng.choice(specs)
            t0 = time.perf_counter()
            log = RunLog.open(spec)
            n = rng.choice(log.step_numbers[:-1])
            log.step(n)
            any_ms.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            log.step(n + 1)
            next_ms.append((time.perf_counter() - t0) * 1000)
            log.close()
    else:
        log = RunLog.open(path)
        for _ in range(200):
            n = rng.choice(log.step_numbers[:-1])
            log._step_cache.clear()
            t0 = time.perf_counter()
            log.step(n)
            any_ms.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            log.step(n + 1)
            next_ms.append((time.perf_counter() - t0) * 1000)
    return {"any_ms": statistics.median(any_ms), "next_ms": statistics.median(next_ms)}


def child_full(path: str) -> dict[str, float]:
    t0 = time.perf_counter()
    events = 0
    if Path(path).suffix == ".eval":
        for spec in _specs(Path(path)):
            with RunLog.open(spec) as log:
                events += sum(1 for _ in log.events())
    else:
        with RunLog.open(path) as log:
            events = sum(1 for _ in log.events())
    return {"full_s": time.perf_counter() - t0, "rss_mb": _rss_mb(), "events": events}


def child_native(path: str) -> dict[str, float]:
    from inspect_ai.log import read_eval_log

    t0 = time.perf_counter()
    log = read_eval_log(path, resolve_attachments="core")
    n = len(log.samples or [])
    return {"full_s": time.perf_counter() - t0, "rss_mb": _rss_mb(), "samples": n}


CHILDREN = {
    "paint": child_paint,
    "list": child_list,
    "step": child_step,
    "full": child_full,
    "native": child_native,
}


def in_child(mode: str, path: Path, repeat: int) -> dict[str, float]:
    """Medians over ``repeat`` fresh processes."""
    runs = []
    for _ in range(repeat):
        p = subprocess.run(
            [sys.executable, __file__, "--child", mode, str(path)],
            capture_output=True,
            text=True,
        )
        if p.returncode != 0:
            raise SystemExit(f"{mode} {path}: {p.stderr.strip().splitlines()[-1:]}")
        runs.append(json.loads(p.stdout.strip().splitlines()[-1]))
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def side_by_side(samples: int, turns: int, repeat: int) -> None:
    try:
        import inspect_ai  # noqa: F401
    except ImportError:
        print("side by side: skipped (needs inspect-ai: pip install 'agentdeck[inspect]')")
        return
    ev = inspect_log(samples, turns)
    ad = same_turns_log(ev)
    n_steps = len(RunLog.open(ad).step_numbers)
    print(
        f"\nside by side: the same {n_steps:,} turns ({samples} samples x {turns} turns), "
        f"fresh processes, medians of {repeat}"
    )
    res: dict[str, dict[str, dict[str, float]]] = {}
    for label, path in (("agentdeck", ad), ("inspect", ev)):
        res[label] = {m: in_child(m, path, repeat) for m in ("paint", "step", "full")}
    listed = in_child("list", ev, repeat)
    native = in_child("native", ev, repeat)
    a, i = res["agentdeck"], res["inspect"]
    rows = [
        (
            "file",
            f"{ad.stat().st_size / 1e6:.1f} MB (JSONL)",
            f"{ev.stat().st_size / 1e6:.1f} MB (.eval)",
        ),
        (
            "open to first paint",
            f"{a['paint']['paint_s'] * 1000:.0f} ms",
            f"{i['paint']['paint_s'] * 1000:.0f} ms (sample 1)",
        ),
        (
            "sample list painted",
            "",
            f"{listed['paint_s'] * 1000:.0f} ms ({samples} rows, summaries only)",
        ),
        (
            "peak RSS at first paint",
            f"{a['paint']['rss_mb']:.0f} MB",
            f"{i['paint']['rss_mb']:.0f} MB",
        ),
        (
            "one step, any of them",
            f"{a['step']['any_ms']:.2f} ms",
            f"{i['step']['any_ms']:.0f} ms (its sample decoded)",
        ),
        ("next step, log open", f"{a['step']['next_ms']:.2f} ms", f"{i['step']['next_ms']:.2f} ms"),
        (
            "full pass (every event)",
            f"{a['full']['full_s']:.1f} s",
            f"{i['full']['full_s']:.1f} s ({samples} samples)",
        ),
        ("peak RSS, full pass", f"{a['full']['rss_mb']:.0f} MB", f"{i['full']['rss_mb']:.0f} MB"),
        (
            "Inspect's read_eval_log, whole log",
            "",
            f"{native['full_s']:.1f} s, peak RSS {native['rss_mb']:.0f} MB",
        ),
    ]
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    print(f"{'':<{w0}}  {'agentdeck log':<{w1}}  Inspect log")
    for r in rows:
        print(f"{r[0]:<{w0}}  {r[1]:<{w1}}  {r[2]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--inspect-samples", type=int, default=100, help="0: no side by side")
    ap.add_argument("--inspect-turns", type=int, default=100)
    ap.add_argument("--side-repeat", type=int, default=3)
    ap.add_argument("--only-side", action="store_true", help="just the side by side")
    ap.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        mode, path = args.child
        print(json.dumps(CHILDREN[mode](path)))
        return
    if not args.only_side:
        own_log(args)
    if args.inspect_samples:
        side_by_side(args.inspect_samples, args.inspect_turns, args.side_repeat)


def own_log(args: argparse.Namespace) -> None:
    root = str(ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        rates, index_s, step_ms, rss = [], [], [], []
        for r in range(args.repeat):
            path.unlink(missing_ok=True)
            n, secs = write_log(path, args.steps, seed=r)
            rates.append(n / secs)
            size_mb = path.stat().st_size / 1e6
            t0 = time.perf_counter()
            log = RunLog.open(path)
            index_s.append(time.perf_counter() - t0)
            rng = random.Random(r)
            for _ in range(200):
                s = rng.randint(1, args.steps)
                t0 = time.perf_counter()
                log._step_cache.clear()
                log.step(s)
                step_ms.append((time.perf_counter() - t0) * 1000)
            log.close()
            out = subprocess.run(
                [sys.executable, "-c", RSS_CHILD.format(root=root, path=str(path))],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            rss.append(float(out[1]))
        step_ms.sort()
        print(f"log: {args.steps:,} steps, {n:,} events, {size_mb:.1f} MB; {args.repeat} repeats")
        print(f"write:      {statistics.median(rates):,.0f} events/s (median; flushed per event)")
        print(
            f"index:      {statistics.median(index_s) * 1000:.0f} ms median "
            f"(min {min(index_s) * 1000:.0f}, max {max(index_s) * 1000:.0f})  target <= 500 ms"
        )
        print(
            f"load step:  {statistics.median(step_ms):.2f} ms median, "
            f"p95 {step_ms[int(len(step_ms) * 0.95)]:.2f} ms  target <= 5 ms"
        )
        print(
            f"peak RSS:   {statistics.median(rss):.0f} MB (fresh process: import + index)"
            "  target <= 150 MB"
        )


if __name__ == "__main__":
    main()
