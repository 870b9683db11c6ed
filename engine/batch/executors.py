"""Where a batch's runs execute: local worker processes, or Ray tasks.

Both start the same worker (``python -m agentdeck.engine.batch.worker``), one process
(tree) per run, so a run that crashes loses only itself.

- ``LocalExecutor``: up to ``jobs`` workers at once; by default as many as fit this
  machine: the CPUs this process may use, its available memory (and GPUs) against
  what each run's task declares (``Task.resources``). A run that needs whole GPUs gets
  its own devices (``CUDA_VISIBLE_DEVICES``). Each worker is in its own session
  (Ctrl-C at the terminal reaches only the batch, which stops the runs in order) and
  dies with the batch process (``PR_SET_PDEATHSIG``).
- ``RayExecutor``: each run is a Ray task asking for the CPUs and GPUs its task
  declares (``num_cpus``, ``num_gpus``), on a local Ray instance or an existing
  cluster (``address``). Logs: the worker writes the run straight into the batch
  directory when its node sees that directory (a shared path: a local instance, NFS);
  otherwise it writes to a temporary directory on the node and the run directory
  comes back with the task's result and is unpacked into the batch directory
  (``logs="auto"``; ``"shared"`` requires the shared path, ``"stream"`` always sends
  it back). Live progress needs the shared path; streamed runs show as running until
  they end.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import msgspec

from agentdeck.engine.batch.manifest import TOKEN, BatchDir, RunSpec
from agentdeck.engine.cpus import usable_cpus
from agentdeck.engine.errors import UserError

WORKER_MODULE = "agentdeck.engine.batch.worker"
#: What a streamed-back run directory leaves behind: the kernel's HOME/TMP and the
#: public copy of the task's data (made again by the task on every run).
STREAM_SKIP = ("sandbox",)


class ExecutorError(UserError):
    """The executor cannot start (Ray missing, a cluster that does not answer)."""


@dataclass
class WorkerResult:
    run_id: str
    #: The worker's result record (None: it died without writing one).
    record: dict[str, Any] | None
    returncode: int | None = None
    node: str | None = None
    message: str | None = None

    @property
    def status(self) -> str | None:
        s = self.record.get("status") if self.record else None
        return s if isinstance(s, str) else None

    @property
    def setup_error(self) -> bool:
        return bool(self.record and self.record.get("setup_error"))


class Executor(Protocol):
    name: str

    def describe(self) -> str: ...

    def can_start(self, spec: RunSpec) -> bool: ...

    def submit(self, spec: RunSpec, attempt: int) -> None: ...

    def poll(self, timeout: float) -> list[WorkerResult]: ...

    def started(self) -> list[tuple[str, str | None]]: ...

    def running(self) -> int: ...

    def pid_of(self, run_id: str) -> int | None: ...

    def interrupt(self) -> None: ...

    def kill(self) -> None: ...

    def close(self) -> None: ...


def worker_command(log_dir: Path, result: Path, backoff: Path | None, parent: int) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        WORKER_MODULE,
        "--log-dir",
        str(log_dir),
        "--result",
        str(result),
        "--parent",
        str(parent),
    ]
    if backoff is not None:
        cmd += ["--backoff", str(backoff)]
    return cmd


def start_worker(
    spec: RunSpec,
    *,
    log_dir: Path,
    result: Path,
    output: Path,
    backoff: Path | None,
    env: dict[str, str] | None = None,
    pass_fds: tuple[int, ...] = (),
) -> subprocess.Popen[bytes]:
    """Launch one worker; its stdout and stderr go to ``output``."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        result.unlink()
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    with open(output, "ab") as out:
        proc = subprocess.Popen(
            worker_command(log_dir, result, backoff, os.getpid()),
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=full_env,
            start_new_session=True,
            pass_fds=pass_fds,
        )
    assert proc.stdin is not None
    try:
        proc.stdin.write(msgspec.json.encode(spec))
        proc.stdin.close()
    except BrokenPipeError:
        pass
    return proc


def read_result(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def death_message(returncode: int | None, output: Path | None) -> str:
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        what = f"the worker process was killed by {name}"
    else:
        what = f"the worker process exited with code {returncode} without a result"
    return what + (f" (its output: {output})" if output is not None else "")


# -- local ----------------------------------------------------------------------------------


def _gpu_count() -> int:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([x for x in visible.split(",") if x.strip() and x.strip() != "-1"])
    try:
        return len(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        return 0


def _available_mb() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().available / (1 << 20))
    except Exception:  # noqa: BLE001 - no psutil numbers: do not limit by memory
        return 1 << 30


class _Proc:
    """A worker process: forked from the fork server, or a ``subprocess.Popen``."""

    def __init__(self, proc: Any) -> None:
        self._p = proc

    @property
    def pid(self) -> int:
        return int(self._p.pid)

    def poll(self) -> int | None:
        if isinstance(self._p, subprocess.Popen):
            return self._p.poll()
        code = self._p.exitcode
        return None if code is None else int(code)

    def send_signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def wait(self, timeout: float) -> None:
        if isinstance(self._p, subprocess.Popen):
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._p.wait(timeout)
        else:
            self._p.join(timeout)


@dataclass
class _Local:
    spec: RunSpec
    proc: _Proc
    result: Path
    output: Path
    gpus: list[str] = field(default_factory=list)


def _fork_server(specs: list[RunSpec]) -> Any:
    """multiprocessing's fork server, preloaded with the engine and the grid's tasks,
    started now (None where there is none, not Linux/macOS, or it cannot start).

    Started here, before any UI: multiprocessing starts its fork server and resource
    tracker with ``sys.stderr.fileno()`` among the descriptors to keep, and while a
    Textual app runs ``sys.stderr`` is its print capture, whose ``fileno()`` is -1.
    Started lazily by the first run, under the batch screen, it failed with "bad
    value(s) in fds_to_keep" and the batch ended before any run started.
    """
    import multiprocessing
    from multiprocessing import forkserver

    try:
        ctx = multiprocessing.get_context("forkserver")
    except ValueError:
        return None
    mods = [
        "agentdeck.engine.batch.worker",
        "agentdeck.engine.run",
        "agentdeck.engine.sandbox",
        "agentdeck.engine.agents.scripted",
        "agentdeck.engine.grader",
    ]
    if any(s.agent != "scripted" for s in specs):
        mods.append("agentdeck.engine.agents.claude")
    with contextlib.suppress(Exception):  # the tasks' own modules, by their entry points
        from importlib.metadata import entry_points

        from agentdeck.engine.registry import GROUP

        wanted = {s.task for s in specs}
        mods += [ep.value.split(":")[0] for ep in entry_points(group=GROUP) if ep.name in wanted]
    # not torch: a run's own process never imports it (its kernel does, on its own)
    ctx.set_forkserver_preload(list(dict.fromkeys(mods)))
    try:
        forkserver.ensure_running()
    except (OSError, ValueError):
        return None  # each run is then a fresh ``python -m ...worker``
    return ctx


class LocalExecutor:
    name = "local"

    def __init__(
        self,
        batch_dir: BatchDir,
        *,
        jobs: int | None = None,
        cpus: float | None = None,
        memory_mb: int | None = None,
        gpus: int | None = None,
        specs: list[RunSpec] | None = None,
        fork: bool = True,
    ) -> None:
        """``fork``: fork the workers from a fork server that has imported the engine
        and the tasks once (else: a fresh ``python -m ...worker`` a run)."""
        if jobs is not None and jobs < 1:
            raise ExecutorError(f"-j must be at least 1, got {jobs}", where="-j")
        self.batch_dir = batch_dir
        self.jobs = jobs
        self.cpus = float(cpus if cpus is not None else usable_cpus())
        self.memory_mb = memory_mb if memory_mb is not None else _available_mb()
        self.gpu_ids = [str(i) for i in range(gpus if gpus is not None else _gpu_count())]
        self._running: dict[str, _Local] = {}
        self._started: list[tuple[str, str | None]] = []
        #: How many of the batch's runs fit at once (for the description).
        self.fitted = self.fit(specs or [])
        self._ctx = _fork_server(specs or []) if fork else None

    def describe(self) -> str:
        if self.jobs is not None:
            return f"local, {self.jobs} worker{'s' if self.jobs != 1 else ''}"
        gpus = f", {len(self.gpu_ids)} GPUs" if self.gpu_ids else ""
        return (
            f"local, {self.fitted} worker{'s' if self.fitted != 1 else ''} (what fits "
            f"{self.cpus:g} CPUs, {self.memory_mb / 1024:.1f} GiB{gpus})"
        )

    def fit(self, specs: list[RunSpec]) -> int:
        """How many of these runs fit at once (the default -j), at least 1."""
        if self.jobs is not None:
            return self.jobs
        if not specs:
            return 1
        r = max((s.resources for s in specs), key=lambda r: (r.cpus, r.memory_mb))
        n = int(self.cpus // max(r.cpus, 1e-9))
        if r.memory_mb > 0:
            n = min(n, self.memory_mb // r.memory_mb)
        return max(1, n)

    def _used(self) -> tuple[float, int, int]:
        cpus = sum(x.spec.resources.cpus for x in self._running.values())
        mem = sum(x.spec.resources.memory_mb for x in self._running.values())
        gpus = sum(len(x.gpus) for x in self._running.values())
        return cpus, mem, gpus

    def can_start(self, spec: RunSpec) -> bool:
        if not self._running:
            return True
        if self.jobs is not None:
            return len(self._running) < self.jobs
        cpus, mem, gpus = self._used()
        r = spec.resources
        if cpus + r.cpus > self.cpus + 1e-9 or mem + r.memory_mb > self.memory_mb:
            return False
        whole = int(r.gpus) if r.gpus >= 1 else 0
        return not (self.gpu_ids and gpus + whole > len(self.gpu_ids))

    def submit(self, spec: RunSpec, attempt: int) -> None:
        bd = self.batch_dir
        result = bd.workers / f"{spec.run_id}.{attempt}.result.json"
        output = bd.workers / f"{spec.run_id}.{attempt}.log"
        env: dict[str, str] = {}
        gpus: list[str] = []
        whole = int(spec.resources.gpus) if spec.resources.gpus >= 1 else 0
        if whole and self.gpu_ids:
            taken = {g for x in self._running.values() for g in x.gpus}
            free = [g for g in self.gpu_ids if g not in taken]
            gpus = free[:whole]
            if gpus:
                env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
        bd.workers.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            result.unlink()
        if self._ctx is not None:
            from agentdeck.engine.batch.worker import forked_main

            child = self._ctx.Process(
                target=forked_main,
                args=(
                    msgspec.json.encode(spec),
                    str(bd.path),
                    str(result),
                    str(output),
                    str(bd.backoff_path),
                    {"PYTHONUNBUFFERED": "1", **env},
                ),
                name=f"agentdeck-run:{spec.run_id}",
            )
            child.start()
            proc = _Proc(child)
        else:
            proc = _Proc(
                start_worker(
                    spec,
                    log_dir=bd.path,
                    result=result,
                    output=output,
                    backoff=bd.backoff_path,
                    env=env,
                )
            )
        self._running[spec.run_id] = _Local(spec, proc, result, output, gpus)
        self._started.append((spec.run_id, None))

    def started(self) -> list[tuple[str, str | None]]:
        out, self._started = self._started, []
        return out

    def running(self) -> int:
        return len(self._running)

    def poll(self, timeout: float) -> list[WorkerResult]:
        deadline = time.monotonic() + timeout
        while True:
            done = []
            for rid, w in list(self._running.items()):
                rc = w.proc.poll()
                if rc is None:
                    continue
                del self._running[rid]
                record = read_result(w.result)
                msg = None if record is not None else death_message(rc, w.output)
                done.append(WorkerResult(rid, record, returncode=rc, message=msg))
            if done or time.monotonic() >= deadline or not self._running:
                return done
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def pid_of(self, run_id: str) -> int | None:
        w = self._running.get(run_id)
        return w.proc.pid if w is not None else None

    def interrupt(self) -> None:
        for w in self._running.values():
            with contextlib.suppress(ProcessLookupError):
                w.proc.send_signal(signal.SIGINT)

    def kill(self) -> None:
        for w in self._running.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(w.proc.pid, signal.SIGKILL)

    def close(self) -> None:
        self.kill()
        for w in self._running.values():
            w.proc.wait(5)


# -- Ray ----------------------------------------------------------------------------------


class _Coordinator:
    """A small Ray actor: the batch's stop flag, and which runs have begun where."""

    def __init__(self) -> None:
        self._stop = False
        self._started: list[tuple[str, str | None]] = []

    def stop(self) -> None:
        self._stop = True

    def stopped(self) -> bool:
        return self._stop

    def begin(self, run_id: str, node: str | None) -> bool:
        """A task is about to run ``run_id``; False when the batch is stopping."""
        if self._stop:
            return False
        self._started.append((run_id, node))
        return True

    def take_started(self) -> list[tuple[str, str | None]]:
        out, self._started = self._started, []
        return out


def _pack(run_dir: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for p in sorted(run_dir.iterdir()):
            if p.name not in STREAM_SKIP:
                tar.add(p, arcname=f"{run_dir.name}/{p.name}")
    return buf.getvalue()


def _unpack(data: bytes, dest: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(dest, filter="data")


def ray_run(
    spec_json: bytes, batch_path: str, token: str, logs: str, coordinator: Any
) -> dict[str, Any]:
    """The Ray task: one worker process for one run, on whichever node Ray chose."""
    ray: Any = importlib.import_module("ray")

    spec = msgspec.json.decode(spec_json, type=RunSpec)
    node = None
    with contextlib.suppress(Exception):  # only for the display
        node = ray.util.get_node_ip_address()
    base = Path(batch_path)
    shared = False
    with contextlib.suppress(OSError):
        shared = (base / TOKEN).read_text().strip() == token
    out: dict[str, Any] = {"run_id": spec.run_id, "node": node}
    if logs == "shared" and not shared:
        out["record"] = {
            "status": "error",
            "setup_error": True,
            "message": f"the batch directory {batch_path} is not visible on node {node} "
            "(--ray-logs shared needs a shared path; use --ray-logs auto to stream logs back)",
        }
        return out
    if not ray.get(coordinator.begin.remote(spec.run_id, node)):
        out["record"] = {"status": "not_run", "message": "the batch stopped before it started"}
        return out
    use_shared = shared and logs != "stream"
    tmp = None if use_shared else Path(tempfile.mkdtemp(prefix="agentdeck-ray-"))
    log_dir = base if use_shared else tmp
    assert log_dir is not None
    result = (tmp or base / "workers") / f"{spec.run_id}.{os.getpid()}.result.json"
    output = (tmp or base / "workers") / f"{spec.run_id}.{os.getpid()}.log"
    proc = start_worker(
        spec,
        log_dir=log_dir,
        result=result,
        output=output,
        backoff=log_dir / ".backoff",
    )
    signalled = False
    try:
        last_check = 0.0
        while proc.poll() is None:
            time.sleep(0.1)
            if not signalled and time.monotonic() - last_check > 1.0:
                last_check = time.monotonic()
                if ray.get(coordinator.stopped.remote()):
                    proc.send_signal(signal.SIGINT)
                    signalled = True
    except KeyboardInterrupt:  # ray.cancel: stop the run cleanly, then give its result
        proc.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(60)
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    out["record"] = read_result(result)
    out["returncode"] = proc.returncode
    if out["record"] is None:
        out["message"] = death_message(proc.returncode, None)
        with contextlib.suppress(OSError):
            out["message"] += ": " + output.read_text(errors="replace")[-2000:]
    if tmp is not None:
        run_dir = tmp / spec.run_id
        if run_dir.is_dir():
            out["archive"] = _pack(run_dir)
        shutil.rmtree(tmp, ignore_errors=True)
    return out


class RayExecutor:
    name = "ray"

    def __init__(
        self,
        batch_dir: BatchDir,
        *,
        address: str | None = None,
        jobs: int | None = None,
        logs: str = "auto",
        num_cpus: int | None = None,
        on_note: Callable[[str], None] | None = None,
    ) -> None:
        if logs not in ("auto", "shared", "stream"):
            raise ExecutorError(
                f"--ray-logs {logs}: expected auto, shared or stream", where="--ray-logs"
            )
        try:
            ray: Any = importlib.import_module("ray")
        except ImportError as e:
            raise ExecutorError(
                "Ray is not installed",
                where="--executor ray",
                fix="pip install 'agentdeck[ray]' (or use --executor local)",
            ) from e
        self._ray: Any = ray
        self.batch_dir = batch_dir
        self.jobs = jobs
        self.logs = logs
        self.address = address
        self._owns = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "configure_logging": False,
            }
            if address:
                kwargs["address"] = address
            else:
                kwargs["num_cpus"] = num_cpus or jobs or usable_cpus()
            try:
                ray.init(**kwargs)
            except Exception as e:
                where = f"--address {address}" if address else "--executor ray"
                raise ExecutorError(f"cannot start or reach Ray: {e}", where=where) from e
            self._owns = True
        self._coord: Any = ray.remote(num_cpus=0)(_Coordinator).remote()
        self._task: Any = ray.remote(ray_run)
        self._pending: dict[Any, RunSpec] = {}
        self._token = batch_dir.token()

    def describe(self) -> str:
        res = {}
        with contextlib.suppress(Exception):
            res = self._ray.cluster_resources()
        cpus = res.get("CPU", 0)
        gpus = res.get("GPU", 0)
        where = self.address or "a local Ray instance"
        return f"ray ({where}: {cpus:g} CPUs" + (f", {gpus:g} GPUs" if gpus else "") + ")"

    def can_start(self, spec: RunSpec) -> bool:
        return self.jobs is None or len(self._pending) < self.jobs

    def submit(self, spec: RunSpec, attempt: int) -> None:
        r = spec.resources
        ref = self._task.options(
            num_cpus=r.cpus,
            num_gpus=r.gpus,
            max_retries=0,
            name=f"agentdeck:{spec.run_id}",
        ).remote(
            msgspec.json.encode(spec),
            str(self.batch_dir.path.resolve()),
            self._token,
            self.logs,
            self._coord,
        )
        self._pending[ref] = spec

    def started(self) -> list[tuple[str, str | None]]:
        try:
            got: list[tuple[str, str | None]] = self._ray.get(
                self._coord.take_started.remote(), timeout=10
            )
        except Exception:  # noqa: BLE001 - the display only; the results still arrive
            return []
        return [(rid, node) for rid, node in got]

    def running(self) -> int:
        return len(self._pending)

    def pid_of(self, run_id: str) -> int | None:
        return None  # on a Ray node

    def poll(self, timeout: float) -> list[WorkerResult]:
        if not self._pending:
            return []
        ready, _ = self._ray.wait(
            list(self._pending), num_returns=len(self._pending), timeout=timeout
        )
        out = []
        for ref in ready:
            spec = self._pending.pop(ref)
            try:
                res = self._ray.get(ref)
            except Exception as e:  # noqa: BLE001 - a crashed or cancelled task: that run's error
                out.append(
                    WorkerResult(spec.run_id, None, message=f"the Ray task failed: {e!s:.500}")
                )
                continue
            archive = res.pop("archive", None)
            if archive:
                dest = self.batch_dir.path
                if (dest / spec.run_id).exists():
                    self.batch_dir.move_aside(spec.run_id)
                _unpack(archive, dest)
            out.append(
                WorkerResult(
                    spec.run_id,
                    res.get("record"),
                    returncode=res.get("returncode"),
                    node=res.get("node"),
                    message=res.get("message"),
                )
            )
        return out

    def interrupt(self) -> None:
        with contextlib.suppress(Exception):
            self._ray.get(self._coord.stop.remote(), timeout=10)

    def kill(self) -> None:
        for ref in list(self._pending):
            with contextlib.suppress(Exception):
                self._ray.cancel(ref, force=True)

    def close(self) -> None:
        if self._pending:
            self.kill()
        if self._owns:
            with contextlib.suppress(Exception):
                self._ray.shutdown()


__all__ = [
    "Executor",
    "ExecutorError",
    "LocalExecutor",
    "RayExecutor",
    "WorkerResult",
    "ray_run",
    "start_worker",
]
