"""The batch directory: the manifest of planned runs, the journal, the lock.

``<log_dir>/<batch_id>/``::

    manifest.json      the grid as planned: configurations, every run (id, epoch, seed)
    journal.jsonl      what happened, one line an event (run started / ended / moved)
    <run_id>/          each run's ordinary run directory (events.jsonl, artifacts/, work/)
    attempts/          earlier attempts of rerun runs (interrupted, crashed, retried)
    workers/           each worker process's stderr (tracebacks of a crashed worker)
    summary.json, summary.csv

The manifest is written once, when the batch is planned; re-running the same command
finds it and resumes: a run whose log ended (completed, steps or a limit used up, or an
error once its retries are spent) is kept; a run without a log, with an unfinished
log (a killed batch) or an interrupted one is run again, its old directory moved to
``attempts/`` so that no run is lost or counted twice.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from agentdeck.engine.batch.grid import BatchSettings, ConfigSpec, GridError, GridSpec
from agentdeck.engine.errors import UserError

SCHEMA = "agentdeck.batch/1"
MANIFEST = "manifest.json"
JOURNAL = "journal.jsonl"
LOCK = ".lock"
#: Held (shared) by every worker while it lives; a resumed batch waits for it.
RUNS_LOCK = ".runs.lock"
BACKOFF = ".backoff"
ATTEMPTS = "attempts"
WORKERS = "workers"
SUMMARY_JSON = "summary.json"
SUMMARY_CSV = "summary.csv"
#: Marks a batch directory on a node, so a worker can tell whether it sees the same one.
TOKEN = ".token"


class ResourcesSpec(msgspec.Struct, kw_only=True, frozen=True):
    cpus: float = 1.0
    gpus: float = 0.0
    memory_mb: int = 2048


class RunSpec(msgspec.Struct, kw_only=True):
    """Everything a worker needs to run one run of the batch (``agentdeck run`` flags)."""

    run_id: str
    config: str
    epoch: int
    #: The epoch's seed: passed as ``-T seed`` when the task has one (see ``seeded``).
    seed: int
    seeded: bool
    task: str
    params: dict[str, str] = msgspec.field(default_factory=dict)
    agent: str = "scripted"
    model: str | None = None
    agent_options: dict[str, Any] = msgspec.field(default_factory=dict)
    max_steps: int | None = None
    time_limit_s: float | None = None
    token_limit: int | None = None
    cost_limit_usd: float | None = None
    sandbox: str = "auto"
    resources: ResourcesSpec = msgspec.field(default_factory=ResourcesSpec)


class Manifest(msgspec.Struct, kw_only=True):
    schema: str = SCHEMA
    batch_id: str
    created: str
    fingerprint: str
    epochs: int
    seed_base: int
    #: Whether the seeds were given (--seed-base) or drawn when the batch was planned.
    seed_given: bool
    source: str
    command: list[str] = msgspec.field(default_factory=list)
    #: The -T keys that take several values: what tells configurations apart.
    varying: list[str] = msgspec.field(default_factory=list)
    configs: list[ConfigSpec] = msgspec.field(default_factory=list)
    runs: list[RunSpec] = msgspec.field(default_factory=list)

    def config(self, config_id: str) -> ConfigSpec:
        for c in self.configs:
            if c.id == config_id:
                return c
        raise KeyError(config_id)

    def label(self, config_id: str) -> str:
        return self.config(config_id).label(set(self.varying) or None)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "batch"


def default_batch_id(grid: GridSpec, *, new: bool = False) -> str:
    """``batch-<task>-<fingerprint>``: the same grid, the same id, so re-running the
    command resumes it; ``new`` adds the time, for a fresh batch of the same grid."""
    names = dict.fromkeys(t.name for t in grid.tasks)
    what = next(iter(names)) if len(names) == 1 else "multi"
    base = f"batch-{_slug(what)}-{grid.fingerprint()}"
    return f"{base}-{time.strftime('%Y%m%d-%H%M%S')}" if new else base


def check_batch_id(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,120}", name):
        raise GridError(
            f"batch name {name!r}: use letters, digits, '.', '_' and '-' (it names a folder)",
            where="--name",
        )
    return name


def plan(
    grid: GridSpec,
    *,
    batch_id: str,
    sandbox: str = "auto",
    command: list[str] | None = None,
) -> Manifest:
    """Check every configuration (as ``agentdeck run`` would) and lay out its runs.

    Each epoch ``e`` of every configuration gets the seed ``seed_base + e`` (the same
    seeds across configurations, so they are compared on the same draws); a task with
    a ``seed`` parameter gets it as ``-T seed`` unless the grid sets ``seed`` itself.
    """
    from agentdeck.engine.registry import get_task
    from agentdeck.engine.run import prepare

    grid.check()
    configs = grid.configs()
    seed_given = grid.seed_base is not None
    seed_base = grid.seed_base if grid.seed_base is not None else secrets.randbelow(2**31)
    varying = grid.varying_keys()
    where = None if grid.source == "the command line" else grid.source
    runs: list[RunSpec] = []
    width = len(str(grid.epochs - 1))
    for c in configs:
        try:
            task = get_task(c.task)
        except UserError as e:
            raise GridError(str(e), where=where) from e
        takes_seed = any(p.name == "seed" for p in task.params) and "seed" not in c.params
        cpus = task.resources.cpus
        if "cpus" in c.params:
            with contextlib.suppress(ValueError):
                cpus = float(c.params["cpus"])
        resources = ResourcesSpec(
            cpus=cpus, gpus=task.resources.gpus, memory_mb=task.resources.memory_mb
        )
        for epoch in range(grid.epochs):
            seed = seed_base + epoch
            params = dict(c.params)
            if takes_seed:
                params["seed"] = str(seed)
            spec = RunSpec(
                run_id=f"{_slug(c.task)}-{c.id}-e{epoch:0{width}d}",
                config=c.id,
                epoch=epoch,
                seed=seed,
                seeded=takes_seed,
                task=c.task,
                params=params,
                agent=c.agent,
                model=c.model,
                agent_options=dict(c.agent_options),
                max_steps=grid.limits.max_steps,
                time_limit_s=grid.limits.time_limit_s,
                token_limit=grid.limits.token_limit,
                cost_limit_usd=grid.limits.cost_limit_usd,
                sandbox=sandbox,
                resources=resources,
            )
            if epoch == 0:
                try:
                    prepare(run_config(spec, Path(".")), task)
                except UserError as err:
                    label = c.label(varying or None)
                    raise GridError(f"{c.id} ({label}): {err}", where=where) from err
            runs.append(spec)
    return Manifest(
        batch_id=batch_id,
        created=datetime.now().isoformat(timespec="seconds"),
        fingerprint=grid.fingerprint(),
        epochs=grid.epochs,
        seed_base=seed_base,
        seed_given=seed_given,
        source=grid.source,
        command=list(command or []),
        varying=sorted(varying),
        configs=configs,
        runs=runs,
    )


def run_config(spec: RunSpec, log_dir: Path) -> Any:
    """The engine ``RunConfig`` of one run of the batch."""
    from agentdeck.engine.run import RunConfig

    return RunConfig(
        task=spec.task,
        params=dict(spec.params),
        agent=spec.agent,
        model=spec.model,
        agent_options=dict(spec.agent_options),
        max_steps=spec.max_steps,
        time_limit_s=spec.time_limit_s,
        token_limit=spec.token_limit,
        cost_limit_usd=spec.cost_limit_usd,
        log_dir=log_dir,
        run_id=spec.run_id,
        sandbox=spec.sandbox,
    )


# -- the directory ----------------------------------------------------------------------


class BatchBusy(UserError):
    """Another process runs this batch."""


class BatchDir:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_fd: int | None = None

    # paths
    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    @property
    def journal_path(self) -> Path:
        return self.path / JOURNAL

    @property
    def attempts(self) -> Path:
        return self.path / ATTEMPTS

    @property
    def workers(self) -> Path:
        return self.path / WORKERS

    @property
    def backoff_path(self) -> Path:
        return self.path / BACKOFF

    @property
    def token_path(self) -> Path:
        return self.path / TOKEN

    def run_path(self, run_id: str) -> Path:
        return self.path / run_id

    @staticmethod
    def is_batch(path: Path) -> bool:
        return (path / MANIFEST).is_file()

    # manifest
    def read_manifest(self) -> Manifest:
        try:
            return msgspec.json.decode(self.manifest_path.read_bytes(), type=Manifest)
        except OSError as e:
            raise UserError(
                f"no batch here: {e.strerror}",
                where=str(self.manifest_path),
                fix="pass a batch directory (logs/<batch_id>)",
            ) from e
        except msgspec.ValidationError as e:
            raise UserError(f"not a batch manifest: {e}", where=str(self.manifest_path)) from e
        except msgspec.DecodeError as e:
            raise UserError(f"damaged manifest: {e}", where=str(self.manifest_path)) from e

    def write_manifest(self, manifest: Manifest) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.manifest_path.with_suffix(".json.tmp")
        tmp.write_bytes(msgspec.json.format(msgspec.json.encode(manifest), indent=2) + b"\n")
        os.replace(tmp, self.manifest_path)
        if not self.token_path.exists():
            self.token_path.write_text(secrets.token_hex(16))

    def token(self) -> str:
        try:
            return self.token_path.read_text().strip()
        except OSError:
            return ""

    # journal
    def journal(self, kind: str, **fields: Any) -> None:
        line = json.dumps({"t": round(time.time(), 3), "kind": kind, **fields}, default=str)
        with open(self.journal_path, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def read_journal(self) -> list[dict[str, Any]]:
        try:
            text = self.journal_path.read_text(encoding="utf-8")
        except OSError:
            return []
        out = []
        for line in text.splitlines():
            with contextlib.suppress(ValueError):  # a torn last line (a killed batch)
                d = json.loads(line)
                if isinstance(d, dict):
                    out.append(d)
        return out

    # attempts
    def move_aside(self, run_id: str) -> Path | None:
        """Move a run's directory to ``attempts/<run_id>.<n>``; its path there."""
        src = self.run_path(run_id)
        if not src.exists():
            return None
        self.attempts.mkdir(exist_ok=True)
        n = 1
        while (self.attempts / f"{run_id}.{n}").exists():
            n += 1
        dst = self.attempts / f"{run_id}.{n}"
        os.replace(src, dst)
        return dst

    def attempt_count(self, run_id: str) -> int:
        """Earlier attempts kept in ``attempts/``."""
        if not self.attempts.is_dir():
            return 0
        return sum(1 for p in self.attempts.glob(f"{run_id}.*") if p.is_dir())

    # the lock
    def lock(self, wait_s: float = 60.0, on_wait: Any = None) -> int:
        """Take the batch's lock (an ``flock``; returns its fd, inherited by local workers,
        so a killed batch's runs hold it until they have closed their logs).

        ``BatchBusy`` when a live batch process holds it; when only the runs of a dead
        one do, wait up to ``wait_s`` for them to end.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait_s
        said = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
            holder = _read_pid(fd)
            if holder is not None and _alive(holder):
                os.close(fd)
                raise BatchBusy(
                    f"batch {self.path.name} is being run by another process (pid {holder})",
                    where=str(self.path),
                    fix="wait for it, or stop it with Ctrl-C there",
                )
            if time.monotonic() > deadline:
                os.close(fd)
                raise BatchBusy(
                    f"the runs of an earlier batch process still hold {self.path / LOCK}",
                    where=str(self.path),
                    fix="wait for them to end and try again",
                )
            if not said and on_wait is not None:
                on_wait("waiting for the runs of the previous batch process to close their logs")
                said = True
            time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._wait_for_old_runs(deadline, on_wait, said)
        self._lock_fd = fd
        return fd

    def _wait_for_old_runs(self, deadline: float, on_wait: Any, said: bool) -> None:
        """Until no worker of an earlier batch process holds ``.runs.lock``."""
        rfd = os.open(self.path / RUNS_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            while True:
                try:
                    fcntl.flock(rfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    fcntl.flock(rfd, fcntl.LOCK_UN)
                    return
                except OSError as e:
                    if e.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                if time.monotonic() > deadline:
                    raise BatchBusy(
                        "the runs of an earlier batch process are still closing their logs",
                        where=str(self.path),
                        fix="wait for them to end and try again",
                    )
                if not said and on_wait is not None:
                    on_wait(
                        "waiting for the runs of the previous batch process to close their logs"
                    )
                    said = True
                time.sleep(0.2)
        finally:
            os.close(rfd)

    def unlock(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)
            self._lock_fd = None

    @property
    def lock_fd(self) -> int | None:
        return self._lock_fd

    @contextlib.contextmanager
    def locked(self, wait_s: float = 60.0, on_wait: Any = None) -> Iterator[int]:
        fd = self.lock(wait_s, on_wait)
        try:
            yield fd
        finally:
            self.unlock()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        import psutil

        p = psutil.Process(pid)
        return p.status() != psutil.STATUS_ZOMBIE and "agentdeck" in " ".join(p.cmdline())
    except Exception:  # noqa: BLE001 - gone, or not ours to look at
        return False


def open_or_create(
    batch_dir: BatchDir, manifest: Manifest, *, settings: BatchSettings | None = None
) -> tuple[Manifest, bool]:
    """The batch's manifest: the one on disk (resuming: the grid must be the same) or
    ``manifest``, written now. Returns (manifest, resumed)."""
    if batch_dir.manifest_path.is_file():
        old = batch_dir.read_manifest()
        if old.fingerprint != manifest.fingerprint:
            raise GridError(
                f"batch {old.batch_id} was planned from a different grid "
                f"({old.source}, fingerprint {old.fingerprint}; this one: "
                f"{manifest.fingerprint})",
                where=str(batch_dir.path),
                fix="use --new for a fresh batch or --name for another one",
            )
        return old, True
    batch_dir.write_manifest(manifest)
    return manifest, False


__all__ = [
    "ATTEMPTS",
    "JOURNAL",
    "MANIFEST",
    "SCHEMA",
    "SUMMARY_CSV",
    "SUMMARY_JSON",
    "BatchBusy",
    "BatchDir",
    "Manifest",
    "ResourcesSpec",
    "RunSpec",
    "check_batch_id",
    "default_batch_id",
    "open_or_create",
    "plan",
    "run_config",
]
