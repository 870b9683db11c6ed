"""One run of a batch, in its own process: ``python -m agentdeck.engine.batch.worker``.

The executors start one worker process per run (locally, or inside a Ray task), so a
run that crashes its process, or a kernel that will not die, costs that run and
never the batch. The worker reads the ``RunSpec`` as JSON on stdin, resolves the task
by name (``agentdeck.engine.registry``), runs it with the engine's ``Run`` into
``--log-dir`` (the run's ordinary log), and writes its result as JSON to
``--result``. Its exit code is the run's (``agentdeck run``'s codes).

The local executor forks the worker from a fork server that has imported the engine
and the grid's tasks once (``forked_main``), so a run does not pay Python's start
and those imports; ``main`` is the same worker as a fresh process (Ray, and
platforms without fork).

Signals: the first SIGINT or SIGTERM stops the run (the tool call is interrupted, the
log closed with status ``interrupted``); a second one stops waiting. With
``--parent PID`` the worker asks Linux to send it SIGTERM when that process dies, so
a batch killed with ``kill -9`` does not leave runs going.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import json
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

import msgspec

from agentdeck.engine.batch.manifest import RUNS_LOCK, RunSpec, run_config

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """SIGTERM when the batch process dies (Linux); exit now if it already has."""
    with contextlib.suppress(Exception):  # not Linux: the batch's own stop still works
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        sys.exit(130)


def uses_claude(spec: RunSpec) -> bool:
    """Whether the run calls the API (claude, or a replay that forks to claude)."""
    if spec.agent == "claude":
        return True
    fork = spec.agent_options.get("fork_agent") or "claude"
    return spec.agent.startswith("replay:") and "@" in spec.agent and fork == "claude"


def run_one(
    spec: RunSpec, log_dir: Path, *, backoff: Path | None = None, stop_now: Any = None
) -> dict[str, Any]:
    """Run ``spec`` in this process; the result record (never raises for the run's
    own failures). ``stop_now`` receives the run's stop function once it exists."""
    from agentdeck.engine.errors import UserError
    from agentdeck.engine.run import Run, prepare

    cfg = run_config(spec, log_dir)
    if backoff is not None and uses_claude(spec):
        from agentdeck.engine.batch.backoff import FileBackoff

        cfg.agent_options["shared_backoff"] = FileBackoff(backoff, owner=spec.run_id)
    result: dict[str, Any] = {"run_id": spec.run_id, "pid": os.getpid()}
    try:
        prep = prepare(cfg)
        run = Run(prep)
        if stop_now is not None:
            stop_now(run)
        res = run.run()
    except UserError as e:
        # the task could not be set up with these values (data missing, a bad path)
        result.update(status="error", setup_error=True, message=str(e), exit_code=3)
        return result
    except KeyboardInterrupt:
        result.update(status="interrupted", message="stopped before the run started")
        result["exit_code"] = 130
        return result
    result.update(
        status=res.status,
        exit_code=res.exit_code,
        message=res.message,
        passed=res.grade.passed if res.grade is not None else None,
        log=str(res.run_dir.events) if res.run_dir is not None else None,
    )
    return result


def serve(spec_json: bytes, log_dir: Path, result_path: Path, backoff: Path | None) -> int:
    """Run one spec in this process with the worker's signal handling; write the result
    record to ``result_path``; the exit code."""
    hold_runs_lock(log_dir)
    state: dict[str, Any] = {"run": None, "signals": 0}

    def on_signal(signum: int, frame: object) -> None:
        state["signals"] += 1
        run = state["run"]
        if state["signals"] > 1 or run is None:
            raise KeyboardInterrupt
        run.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    def write(result: dict[str, Any]) -> None:
        tmp = result_path.with_name(result_path.name + ".tmp")
        tmp.write_text(json.dumps(result, default=str), encoding="utf-8")
        os.replace(tmp, result_path)

    try:
        spec = msgspec.json.decode(spec_json, type=RunSpec)
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        write({"status": "error", "setup_error": True, "message": f"bad run spec: {e}"})
        return 3
    try:
        result = run_one(
            spec,
            log_dir,
            backoff=backoff,
            stop_now=lambda run: state.__setitem__("run", run),
        )
    except BaseException as e:  # noqa: BLE001 - an engine bug: said in the result, exit 3
        traceback.print_exc()
        result = {
            "run_id": spec.run_id,
            "status": "error",
            "message": f"the worker failed: {e!r}",
            "exit_code": 3,
        }
    write(result)
    code = result.get("exit_code")
    return code if isinstance(code, int) else 3


_RUNS_LOCK: list[int] = []


def hold_runs_lock(log_dir: Path) -> None:
    """A shared lock on ``<log_dir>/.runs.lock`` for as long as this process lives: a
    batch resumed after its driver was killed waits for it (``BatchDir.lock``), so no
    run of the old batch is still closing its log when the new one starts."""
    with contextlib.suppress(OSError):
        fd = os.open(log_dir / RUNS_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_SH)
        _RUNS_LOCK.append(fd)


def forked_main(
    spec_json: bytes,
    log_dir: str,
    result: str,
    output: str,
    backoff: str | None,
    env: dict[str, str],
) -> None:
    """The worker in a process forked from the batch's fork server (local executor):
    the same as ``main`` without starting Python and importing the engine again."""
    os.setsid()  # Ctrl-C at the terminal reaches the batch, which stops the runs in order
    # The fork server lives while any process holds its "alive" pipe, and it hands one
    # end to every child: drop ours, so that the server ends with the batch process and
    # its end signals this run (PR_SET_PDEATHSIG) to close its log.
    with contextlib.suppress(Exception):
        from multiprocessing import forkserver

        server: Any = forkserver._forkserver
        alive = server._forkserver_alive_fd
        if alive is not None:
            os.close(alive)
            server._forkserver_alive_fd = None
    _die_with_parent(os.getppid())
    out = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.environ.update(env)
    code = serve(spec_json, Path(log_dir), Path(result), Path(backoff) if backoff else None)
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="agentdeck.engine.batch.worker")
    ap.add_argument("--log-dir", required=True, type=Path)
    ap.add_argument("--result", required=True, type=Path)
    ap.add_argument("--backoff", type=Path)
    ap.add_argument("--parent", type=int)
    args = ap.parse_args(argv)
    if args.parent:
        _die_with_parent(args.parent)
    return serve(sys.stdin.buffer.read(), args.log_dir, args.result, args.backoff)


if __name__ == "__main__":
    sys.exit(main())
