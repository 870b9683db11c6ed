"""Batch scaling, executor overhead and driver memory (``agentdeck batch``).

1. Scaling: the same 8 scripted noisy-labels runs on digits with 1, 2 and 4 local
   workers and on Ray with 2 CPUs, each batch driven from this process (one process
   tree: this driver, its workers, their kernels). Wall time, and the speedup against
   1 worker (the target: >= 0.8 x workers, up to the number of cores).
2. Executor overhead per run: a task whose reference policy submits at once, run
   N times through a 1-worker batch, against the same run executed in this process
   with the engine's ``Run``. The difference is what the batch adds to each run
   (a worker process, its imports, the scheduling, reading the log back).
3. Driver memory with 200 queued runs: the batch process's resident memory while one
   run executes and 199 wait, against the same process before the batch was planned.

Usage: python bench/batch_bench.py [--runs 8] [--workers 1,2,4] [--ray-cpus 2]
       [--n-train N] [--overhead-runs 6] [--queued 200] [--skip-ray]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"


def register_instant_task() -> Path:
    """The tests' tiny tasks (tests/batch_tasks.py), registered for this process and its
    children through a throwaway dist-info folder."""
    sys.path.insert(0, str(TESTS))
    import batch_tasks

    site = Path(tempfile.mkdtemp(prefix="agentdeck-bench-site-"))
    info = site / "agentdeck_bench_tasks-0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: agentdeck-bench-tasks\nVersion: 0\n"
    )
    lines = "".join(f"{k} = {v}\n" for k, v in batch_tasks.ENTRY_POINTS.items())
    (info / "entry_points.txt").write_text("[agentdeck.tasks]\n" + lines)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        x for x in (str(site), str(TESTS), os.environ.get("PYTHONPATH")) if x
    )
    sys.path.insert(0, str(site))
    return site


def grid(task: str, params: list[str], epochs: int):
    from agentdeck.engine.batch.grid import RunLimits, grid_from_cli

    return grid_from_cli(
        [task],
        agents=["scripted"],
        models=[],
        params=params,
        epochs=epochs,
        seed_base=1000,
        limits=RunLimits(),
        agent_options={},
    )


def run_batch(log_dir: Path, g, make_executor) -> tuple[float, dict]:
    from agentdeck.engine.batch import BatchRunner, open_batch

    bd, manifest, _ = open_batch(g, log_dir=log_dir, new=True)
    with bd.locked():
        ex = make_executor(bd, manifest)
        runner = BatchRunner(bd, manifest, ex)
        t0 = time.perf_counter()
        summary = runner.run()
        wall = time.perf_counter() - t0
    return wall, summary


def scaling(args, base: Path) -> None:
    from agentdeck.engine.batch import LocalExecutor, RayExecutor

    params = ["dataset=digits"] + ([f"n_train={args.n_train}"] if args.n_train else [])
    g = grid("noisy-labels", params, args.runs)
    cores = psutil.cpu_count(logical=True)
    print(
        f"\n== scaling: {args.runs} scripted noisy-labels runs ({' '.join(params)}), {cores} cores"
    )
    import subprocess

    exe = Path(sys.executable).parent / "agentdeck"
    t0 = time.perf_counter()
    subprocess.run(
        [
            str(exe),
            "run",
            "noisy-labels",
            *[x for p in params for x in ("-T", p)],
            "-T",
            "seed=1000",
            "--no-ui",
            "--log-dir",
            str(base / "standalone"),
        ],
        capture_output=True,
        check=False,
    )
    alone = time.perf_counter() - t0
    print(f"one run alone (agentdeck run, as a subprocess): {alone:.1f} s")
    print(f"{'executor':<22} {'wall s':>8} {'s/run':>7} {'speedup':>8} {'target':>7}  passed")
    results: dict[str, float] = {}
    for w in args.workers:
        wall, s = run_batch(base / f"local{w}", g, lambda bd, m, w=w: LocalExecutor(bd, jobs=w))
        results[f"local -j {w}"] = wall
        sp = results["local -j 1"] / wall if "local -j 1" in results else float("nan")
        target = 0.8 * min(w, cores)
        print(
            f"{f'local -j {w}':<22} {wall:>8.1f} {wall / args.runs:>7.1f} {sp:>8.2f} "
            f"{target:>7.2f}  {s['passed']}/{s['evaluated']}",
            flush=True,
        )
    if not args.skip_ray:
        import ray

        t0 = time.perf_counter()
        ray.init(
            num_cpus=args.ray_cpus,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
        start = time.perf_counter() - t0
        try:
            wall, s = run_batch(base / "ray", g, lambda bd, m: RayExecutor(bd))
        finally:
            ray.shutdown()
        sp = results.get("local -j 1", float("nan")) / wall
        target = 0.8 * min(args.ray_cpus, cores)
        print(
            f"{f'ray ({args.ray_cpus} CPUs)':<22} {wall:>8.1f} {wall / args.runs:>7.1f} "
            f"{sp:>8.2f} {target:>7.2f}  {s['passed']}/{s['evaluated']}  "
            f"(+{start:.1f} s to start Ray)",
            flush=True,
        )


def overhead(args, base: Path) -> None:
    from agentdeck.engine.batch import LocalExecutor
    from agentdeck.engine.run import Run, RunConfig, prepare

    n = args.overhead_runs
    print(f"\n== executor overhead: {n} runs of a task that submits at once, 1 worker")
    inproc = []
    for i in range(n):
        cfg = RunConfig(
            task="batch-instant", params={"seed": str(i)}, log_dir=base / "inproc", sandbox="auto"
        )
        t0 = time.perf_counter()
        Run(prepare(cfg)).run()
        inproc.append(time.perf_counter() - t0)
    wall, _ = run_batch(
        base / "overhead", grid("batch-instant", [], n), lambda bd, m: LocalExecutor(bd, jobs=1)
    )
    per_run = wall / n
    med = statistics.median(inproc)
    print(f"in this process (engine Run):   median {med:.2f} s a run")
    print(f"through the batch (-j 1):        {per_run:.2f} s a run ({wall:.1f} s for {n})")
    print(f"overhead of the executor:        {per_run - med:+.2f} s a run")


def driver_memory(args, base: Path) -> None:
    from agentdeck.engine.batch import BatchRunner, LocalExecutor, open_batch

    me = psutil.Process()
    rss0 = me.memory_info().rss
    g = grid("batch-instant", ["sleep=30"], args.queued)
    bd, manifest, _ = open_batch(g, log_dir=base / "memory", new=True)
    peak = {"rss": 0, "queued": 0}
    with bd.locked():
        runner = BatchRunner(bd, manifest, LocalExecutor(bd, jobs=1))

        def watch() -> None:
            while not runner.done:
                c = runner.counts()
                if c["running"]:
                    peak["rss"] = max(peak["rss"], me.memory_info().rss)
                    peak["queued"] = c["queued"]
                    if time.time() - runner.t0 > 8:
                        runner.stop("bench done", interrupted=False)
                time.sleep(0.2)

        t = threading.Thread(target=watch, daemon=True)
        runner.sinks.append(lambda ev: None)
        t.start()
        runner.run()
        t.join(5)
    mib = 1 << 20
    print(
        f"\n== driver memory with {args.queued} planned runs ({peak['queued']} queued, 1 running)"
    )
    print(
        f"before planning: {rss0 / mib:.0f} MiB resident; during the batch: {peak['rss'] / mib:.0f} MiB"
    )
    print(
        f"the batch's share: {(peak['rss'] - rss0) / mib:.1f} MiB "
        f"(~{(peak['rss'] - rss0) / args.queued / 1024:.1f} KiB a run)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4])
    ap.add_argument("--ray-cpus", type=int, default=2)
    ap.add_argument("--n-train", type=int, default=None)
    ap.add_argument("--overhead-runs", type=int, default=6)
    ap.add_argument("--queued", type=int, default=200)
    ap.add_argument("--skip-ray", action="store_true")
    ap.add_argument("--only", choices=("scaling", "overhead", "memory"), default=None)
    args = ap.parse_args()
    register_instant_task()
    base = Path(tempfile.mkdtemp(prefix="agentdeck-batch-bench-"))
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; logs in {base}")
    if args.only in (None, "memory"):
        driver_memory(args, base)  # first, before the overhead runs import the task's modules
    if args.only in (None, "overhead"):
        overhead(args, base)
    if args.only in (None, "scaling"):
        scaling(args, base)
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
