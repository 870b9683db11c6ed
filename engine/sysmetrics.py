"""System metrics of a run: the kernel process tree's CPU and memory, and the GPUs.

``SystemSampler`` is a daemon thread that every ``interval_s`` seconds emits
``Metric`` events with ``source="system"`` and ``x`` = seconds since start:

- ``system/cpu_percent``: CPU use of the process and all its children, summed
  (100 = one core busy).
- ``system/rss_mb``: resident memory of the process and its children, MiB.
- ``system/gpu{i}/util_percent`` and ``system/gpu{i}/mem_mb``: per GPU,
  utilisation and memory in use (whole device), from NVML (``pynvml``) when
  importable, else from ``nvidia-smi``; skipped on machines without either.

Nothing here raises into the run: a vanished process stops the process
metrics, a failing GPU query turns the GPU metrics off.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil

from agentdeck.engine.events import Event, Metric

Emit = Callable[[Event], Any]


class _ProcessTree:
    """CPU % and RSS of one process plus its children, with per-process CPU baselines."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self._procs: dict[int, psutil.Process] = {}
        self.sample()  # primes cpu_percent (the first call always returns 0.0)

    def sample(self) -> tuple[float, float] | None:
        """(cpu_percent, rss_mb), or None when the root process is gone."""
        try:
            members = [self.root, *self.root.children(recursive=True)]
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return None
        cpu = 0.0
        rss = 0
        alive: dict[int, psutil.Process] = {}
        for proc in members:
            known = self._procs.get(proc.pid, proc)
            try:
                with known.oneshot():
                    cpu += known.cpu_percent(interval=None)
                    rss += known.memory_info().rss
                alive[proc.pid] = known
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        self._procs = alive
        if self.root.pid not in alive:
            return None
        return cpu, rss / 2**20


def parse_nvidia_smi(text: str) -> list[tuple[float, float]]:
    """``nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits``
    output -> [(util_percent, mem_mb)] per GPU; unreadable lines are skipped."""
    out = []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 2:
            continue
        try:
            out.append((float(parts[0]), float(parts[1])))
        except ValueError:
            continue
    return out


def gpu_names() -> list[str]:
    """The GPUs' names, from NVML (``pynvml``) or ``nvidia-smi``; ``[]`` with neither or
    no GPU. Cheap: it loads no CUDA runtime and no torch."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            names = []
            for i in range(pynvml.nvmlDeviceGetCount()):
                name = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i))
                names.append(name.decode() if isinstance(name, bytes) else str(name))
            return names
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - no usable NVML: ask nvidia-smi
        pass
    smi = shutil.which("nvidia-smi")
    out = _nvidia_smi(smi, "name", "csv,noheader") if smi is not None else None
    return [line.strip() for line in (out or "").splitlines() if line.strip()]


def _nvidia_smi(smi: str, query: str, fmt: str) -> str | None:
    """``nvidia-smi --query-gpu=QUERY --format=FMT``'s output; ``None`` if it fails."""
    try:
        proc = subprocess.run(
            [smi, f"--query-gpu={query}", f"--format={fmt}"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


class _GpuReader:
    """GPU utilisation and memory: NVML if pynvml imports, else nvidia-smi, else nothing."""

    def __init__(self) -> None:
        self._nvml: Any = None
        self._handles: list[Any] = []
        self._smi: str | None = None
        self.available = False
        try:
            import pynvml

            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            self._nvml = pynvml
            self.available = count > 0
            return
        except Exception:  # noqa: BLE001 - no usable NVML: fall back to nvidia-smi
            self._nvml = None
        smi = shutil.which("nvidia-smi")
        if smi is not None:
            self._smi = smi
            self.available = bool(self._query_smi())

    def _query_smi(self) -> list[tuple[float, float]]:
        assert self._smi is not None
        out = _nvidia_smi(self._smi, "utilization.gpu,memory.used", "csv,noheader,nounits")
        return parse_nvidia_smi(out) if out is not None else []

    def read(self) -> list[tuple[float, float]]:
        if not self.available:
            return []
        if self._nvml is not None:
            out = []
            for h in self._handles:
                util = self._nvml.nvmlDeviceGetUtilizationRates(h)
                mem = self._nvml.nvmlDeviceGetMemoryInfo(h)
                out.append((float(util.gpu), mem.used / 2**20))
            return out
        return self._query_smi()

    def close(self) -> None:
        if self._nvml is not None:
            with contextlib.suppress(Exception):
                self._nvml.nvmlShutdown()


class SystemSampler:
    """Samples CPU/RSS of ``pid`` (None: this process) and its children, and the
    GPUs, every ``interval_s`` seconds on a daemon thread; emits ``Metric`` events.

    ``start()`` primes the counters and starts the thread; ``stop()`` wakes it
    and joins (it returns within the time one sample takes, well under a second
    without nvidia-smi). ``gpu=False`` skips the GPU probe.
    """

    def __init__(
        self,
        pid: int | Callable[[], int | None] | None,
        emit: Emit,
        interval_s: float = 2.0,
        *,
        gpu: bool = True,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        #: A callable is asked again at every sample, so a restarted kernel (a new
        #: pid) keeps being measured.
        self._pid_fn = pid if callable(pid) else None
        self.pid = os.getpid() if pid is None else (None if callable(pid) else int(pid))
        self.emit = emit
        self.interval_s = float(interval_s)
        self.gpu = gpu
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0
        self._tree: _ProcessTree | None = None
        self._gpus: _GpuReader | None = None
        #: Samples taken (each emits a few metrics).
        self.samples = 0

    def start(self) -> SystemSampler:
        if self._thread is not None:
            raise RuntimeError("SystemSampler already started")
        self._t0 = time.monotonic()
        self._track()
        self._thread = threading.Thread(target=self._run, name="agentdeck-sysmetrics", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if self._gpus is not None:
            self._gpus.close()
            self._gpus = None

    def __enter__(self) -> SystemSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _track(self) -> None:
        """(Re)attach to the process to measure when it is new or has changed."""
        if self._pid_fn is not None:
            pid = self._pid_fn()
            if pid is None or pid == self.pid:
                return
            self.pid = pid
        elif self._tree is not None:
            return
        try:
            self._tree = _ProcessTree(self.pid) if self.pid is not None else None
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            self._tree = None

    def _metric(self, name: str, value: float, x: float) -> None:
        self.emit(Metric(name=name, value=round(value, 3), x=round(x, 3), source="system"))

    def sample_once(self) -> None:
        """Take one sample now and emit it (the thread calls this every interval)."""
        x = time.monotonic() - self._t0
        if self._pid_fn is not None:
            self._track()
        if self._tree is not None:
            got = self._tree.sample()
            if got is None:
                self._tree = None  # the process ended: nothing more to measure there
            else:
                cpu, rss = got
                self._metric("system/cpu_percent", cpu, x)
                self._metric("system/rss_mb", rss, x)
        if self._gpus is not None:
            try:
                for i, (util, mem) in enumerate(self._gpus.read()):
                    self._metric(f"system/gpu{i}/util_percent", util, x)
                    self._metric(f"system/gpu{i}/mem_mb", mem, x)
            except Exception:  # noqa: BLE001 - the GPU query broke: stop sampling GPUs
                self._gpus.close()
                self._gpus = None
        self.samples += 1

    def _run(self) -> None:
        if self.gpu:
            gpus = _GpuReader()  # probing may take a moment: do it off the caller's thread
            self._gpus = gpus if gpus.available else None
        while not self._stop.wait(self.interval_s):
            try:
                self.sample_once()
            except Exception:  # noqa: BLE001 - a failing sampler must not end the run
                # A sink that fails must not kill the run; stop sampling instead.
                return
            if self._tree is None and self._gpus is None and self._pid_fn is None:
                return
