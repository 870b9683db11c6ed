"""The README's main job, quiet and under a competing load.

    python bench/main_job_bench.py [--repeat 3] [--n-train all]

Runs ``agentdeck run noisy-labels -T dataset=digits --no-ui`` (the offline scripted
reference on scikit-learn's digits) REPEAT times on a quiet machine, then REPEAT
times while a second process spins one busy thread per core, and prints the median
wall time of each and their ratio (target: under load <= 2x quiet). The run sizes
its thread pools to its CPU allotment (``-T cpus``, default the task's 1), so the
competing threads slow it by sharing cores, not by oversubscribing them. Also
prints the same with ``-T cpus=<all cores>`` for comparison, and the machine's load
average before each series. It does not pass or fail.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AGENTDECK = Path(sys.executable).parent / "agentdeck"


def spin(stop: mp.synchronize.Event) -> None:  # type: ignore[name-defined]
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x = (x * 1103515245 + 12345) & 0xFFFFFFFF


def one_run(log_dir: Path, extra: list[str]) -> float:
    cmd = [
        str(AGENTDECK),
        "run",
        "noisy-labels",
        "-T",
        "dataset=digits",
        "--no-ui",
        "--log-dir",
        str(log_dir),
        *extra,
    ]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"the main job failed (exit {r.returncode}):\n{r.stdout[-2000:]}")
    return took


def series(label: str, n: int, extra: list[str], *, load: bool) -> list[float]:
    stop = mp.Event()
    spinners = (
        [mp.Process(target=spin, args=(stop,), daemon=True) for _ in range(os.cpu_count() or 1)]
        if load
        else []
    )
    for p in spinners:
        p.start()
    try:
        print(f"{label}: load average before {os.getloadavg()[0]:.2f}", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            times = [one_run(Path(tmp), extra) for _ in range(n)]
    finally:
        stop.set()
        for p in spinners:
            p.join(5)
    print(
        f"  {', '.join(f'{t:.1f}' for t in times)} s -> median {statistics.median(times):.1f} s",
        flush=True,
    )
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    cores = str(os.cpu_count() or 1)
    quiet = series("quiet", args.repeat, [], load=False)
    loaded = series(f"under load ({cores} spinning threads)", args.repeat, [], load=True)
    wide = series(f"under load, -T cpus={cores}", args.repeat, ["-T", f"cpus={cores}"], load=True)
    q, ld, w = (statistics.median(x) for x in (quiet, loaded, wide))
    print()
    print(
        f"main job, median of {args.repeat}: quiet {q:.1f} s, under load {ld:.1f} s "
        f"({ld / q:.2f}x quiet; target <= 2x), under load with cpus={cores} {w:.1f} s "
        f"({w / q:.2f}x)"
    )


if __name__ == "__main__":
    main()
