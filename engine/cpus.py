"""How many CPUs a run may use, and the thread-pool settings that keep it to them.

BLAS and OpenMP pools default to one thread per core of the machine. On a
machine other work shares (or with several runs of a batch side by side) those
threads spin against each other: scikit-learn's logistic regression on digits
took 51 s with 2 threads on a busy 2-core machine and 0.2 s with 1. A run is
therefore given an allotment of CPUs (``-T cpus=N``; by default what its task
declares, capped by the CPUs this process may use) and every thread pool in its
sandbox is sized to it through the environment variables the libraries read
when they load.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

#: The variables BLAS / OpenMP / torch builds read for their pool size.
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "NUMEXPR_MAX_THREADS",
)


def _cgroup_quota() -> float | None:
    """CPUs of a cgroup CPU quota on this process (containers), or None."""
    try:
        text = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if text and text[0] != "max":
            return int(text[0]) / int(text[1])
    except (OSError, ValueError, IndexError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        if quota > 0 and period > 0:
            return quota / period
    except (OSError, ValueError):
        pass
    return None


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        n = min(n, max(1, math.floor(quota)))
    return max(1, n)


def allotment(requested: float | None, declared: float) -> int:
    """The whole CPUs a run gets: ``requested`` (``-T cpus``) or the task's
    ``declared`` need, at least 1 and at most what this process may use."""
    want = requested if requested is not None else declared
    return max(1, min(usable_cpus(), math.ceil(want)))


def thread_env(cpus: int) -> dict[str, str]:
    """Environment variables that size every thread pool to ``cpus``, and make idle
    OpenMP threads sleep rather than spin (``OMP_WAIT_POLICY=PASSIVE``: libgomp's
    default spin-wait made a 3-epoch CNN 6x slower on a 2-core machine other work
    shared), unless the user chose a wait policy."""
    n = str(max(1, int(cpus)))
    env = {var: n for var in THREAD_VARS}
    env["OMP_WAIT_POLICY"] = os.environ.get("OMP_WAIT_POLICY", "PASSIVE")
    return env


__all__ = ["THREAD_VARS", "allotment", "thread_env", "usable_cpus"]
