"""fmnist-repo's reference policy end to end: test accuracy, macro-F1, the self-reported
validation accuracy, and the time of the run and of its training step.

Run: ``python bench/repo_task_bench.py [--datasets digits,sample] [--repeat 1]``.
``sample`` is the Fashion-MNIST sample in ``../shared/data/fashion-mnist-head`` (left out,
with the reason, when that folder is absent); any other name is passed as ``-T dataset``.
It prints figures and the load average it saw; it does not pass or fail.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from agentdeck.engine.events import ToolResult
from agentdeck.engine.log import RunLog
from agentdeck.engine.run import Run, RunConfig, prepare

SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fashion-mnist-head"


def one(dataset: str, log_dir: Path) -> dict[str, float]:
    t0 = time.perf_counter()
    result = Run(
        prepare(RunConfig(task="fmnist-repo", params={"dataset": dataset}, log_dir=log_dir))
    ).run()
    wall = time.perf_counter() - t0
    assert result.run_dir is not None and result.grade is not None, result
    log = RunLog.open(result.run_dir.events)
    bash = [e for e in log.events() if isinstance(e, ToolResult) and e.name == "bash"]
    g = result.grade
    return {
        "accuracy": g.metrics["accuracy"],
        "macro_f1": g.metrics["macro_f1"],
        "validation": g.metrics.get("self_reported_validation", float("nan")),
        "passed": float(g.passed),
        "wall_s": wall,
        "train_step_s": max(e.duration_s for e in bash),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="digits,sample")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    print(f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for name in args.datasets.split(","):
        if name == "sample":
            if not SAMPLE.is_dir():
                print(f"sample: skipped ({SAMPLE} is not here)")
                continue
            dataset, label = f"idx:{SAMPLE}", "Fashion-MNIST sample (6,581 train / 1,645 test)"
        else:
            dataset, label = name, name
        runs = []
        with tempfile.TemporaryDirectory(prefix="agentdeck-bench-") as tmp:
            for _ in range(args.repeat):
                runs.append(one(dataset, Path(tmp)))
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(
            f"{label}: accuracy {med['accuracy']:.4f}  macro-F1 {med['macro_f1']:.4f}  "
            f"self-reported validation {med['validation']:.4f}  "
            f"passed {sum(r['passed'] for r in runs):.0f}/{len(runs)}  "
            f"run {med['wall_s']:.0f} s (python main.py {med['train_step_s']:.0f} s)"
        )
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
