"""A Jupyter kernel per run: the persistent Python sandbox the agent works in.

``Sandbox`` starts ``ipykernel`` in the run's ``work/`` directory through a
tiny launcher (resource limits are set there, before ipykernel loads), talks
to it with ``jupyter_client`` sessions over IPC sockets (no TCP port is
opened) and keeps it alive across calls:

- variables persist; stdout, stderr, the value of the last expression and
  errors are captured, and output chunks go to ``on_output`` while the call
  runs;
- a call past its time limit (or ``interrupt()`` from another thread) gets
  SIGINT, i.e. ``KeyboardInterrupt``, and the namespace survives; a kernel
  that does not stop within ``interrupt_grace_s``, or dies (segfault,
  ``os._exit``, out of memory), is restarted and the result says so;
- ``log_metric`` payloads (display data of ``METRIC_MIME``) go to
  ``on_metric``, never into stdout;
- ``shutdown()`` kills the kernel's whole process group and every
  descendant, so nothing the agent started outlives the run.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import psutil
import zmq
from jupyter_client.connect import write_connection_file
from jupyter_client.session import Session

from agentdeck.engine.sandbox import cgroups
from agentdeck.engine.sandbox.cgroups import Cgroup
from agentdeck.engine.sandbox.env import kernel_env
from agentdeck.engine.sandbox.helpers import METRIC_MIME
from agentdeck.engine.sandbox.isolation import (
    DATA_DIR_NAME,
    Backend,
    Isolation,
    Launch,
    LocalBackend,
)
from agentdeck.engine.sandbox.shell import RLIMITS_SOURCE, SHELL_LAUNCHER, BashSession, wait_gone
from agentdeck.engine.sandbox.truncate import HeadTail

if TYPE_CHECKING:
    from agentdeck.engine.log import RunDir
    from agentdeck.engine.workfiles import WorkFiles

ExecStatus = Literal["ok", "error", "timeout", "died"]
OutputFn = Callable[[str, str], None]
MetricFn = Callable[[dict[str, Any]], None]

#: What the agent must be told whenever its namespace was lost.
RESTART_ADVICE = (
    "all variables are gone; re-run your setup (imports, data loading: call the dataset "
    "loading tool again if you used one) before continuing"
)

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_HELPER_IMPORT = "from agentdeck.engine.sandbox.helpers import log_metric"

# Runs as ``python -c``: limits first (inherited by everything the kernel
# starts), then ipykernel exactly as ``python -m ipykernel_launcher`` would.
_LAUNCHER = (
    """\
import sys
mem, cpu, fsize, nproc, conn_dir = (int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]),
                                    int(sys.argv[4]), sys.argv[5])
del sys.argv[1:6]
import os
try:
    import ctypes
    # orphans of the sandbox (a double-forked daemon) are re-parented to the kernel, so
    # they stay in its tree and die with it
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
except (OSError, AttributeError):
    pass
# agentdeck's helpers are imported before the working directory is on the path, so an
# agent's own module of the same name (an ``agentdeck.py`` in work/) cannot shadow them
_cwd = [p for p in sys.path if p in ("", ".")]
sys.path[:] = [p for p in sys.path if p not in ("", ".")]
import agentdeck.engine.sandbox.helpers
sys.path[:0] = _cwd
"""
    + RLIMITS_SOURCE
    + """\
import signal, threading, time
def _descendants(root):
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    return out
def _watch_parent(ppid=os.getppid()):
    # the engine died (even by SIGKILL): take everything we started down with us
    while os.getppid() == ppid:
        time.sleep(0.5)
    import shutil
    shutil.rmtree(conn_dir, ignore_errors=True)
    for pid in _descendants(os.getpid()):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    os.killpg(0, signal.SIGKILL)
threading.Thread(target=_watch_parent, name="agentdeck-parent-watch", daemon=True).start()
import runpy
sys.argv[0] = "ipykernel_launcher"
runpy.run_module("ipykernel_launcher", run_name="__main__", alter_sys=True)
"""
)


class SandboxError(RuntimeError):
    """The sandbox cannot do what was asked (kernel will not start, setup code failed).

    ``str()`` says what failed and what to do.
    """


@dataclass
class ExecResult:
    stdout: str = ""
    stderr: str = ""
    #: The ``text/plain`` of the last expression's value (``execute_result``).
    result: str | None = None
    #: ``"NameError: name 'x' is not defined"`` plus the traceback (ANSI
    #: codes stripped), or the timeout / restart explanation.
    error: str | None = None
    status: ExecStatus = "ok"
    duration_s: float = 0.0
    #: The kernel was restarted during or after this call: the namespace is lost.
    restarted: bool = False
    #: The call was interrupted (time limit or ``interrupt()``).
    interrupted: bool = False
    #: Total bytes of stdout + stderr seen (also when ``keep_bytes`` dropped some).
    output_bytes: int = 0
    #: Rich display data other than metrics (e.g. ``image/png`` plots), as MIME bundles.
    displays: list[dict[str, Any]] = field(default_factory=list)
    #: ``ename`` of the error raised by the code, if any (``KeyboardInterrupt`` on interrupt).
    ename: str | None = None


def dir_size(root: Path, *, skip: tuple[str, ...] = (), max_entries: int = 500_000) -> int:
    """Bytes under ``root`` (not following links; top-level names in ``skip`` left out).

    Stops counting after ``max_entries`` entries, so a tree of millions of tiny files
    cannot stall the caller (the count so far is returned).
    """
    total, seen = 0, 0
    stack = [root]
    while stack and seen < max_entries:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                for e in it:
                    seen += 1
                    if d == root and e.name in skip:
                        continue
                    try:
                        if e.is_dir(follow_symlinks=False):
                            stack.append(Path(e.path))
                        else:
                            total += e.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
        except OSError:
            continue
    return total


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "it stopped responding"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        why = {
            "SIGSEGV": "segmentation fault",
            "SIGKILL": "killed, most likely out of memory",
            "SIGBUS": "bus error",
            "SIGABRT": "aborted",
            "SIGXCPU": "CPU time limit exceeded",
            "SIGILL": "illegal instruction",
            "SIGFPE": "floating point exception",
        }.get(name)
        return f"killed by {name}" + (f": {why}" if why else "")
    return f"exited with status {code}"


# -- safety net: no kernel outlives the engine process ------------------------

#: Process group id -> private connection directory, of every kernel still running.
_live_groups: dict[int, Path | None] = {}
_live_lock = threading.Lock()


def _kill_live_groups() -> None:
    with _live_lock:
        groups = list(_live_groups.items())
        _live_groups.clear()
    for pgid, conn_dir in groups:
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)
        if conn_dir is not None:
            shutil.rmtree(conn_dir, ignore_errors=True)


atexit.register(_kill_live_groups)


def _forget_group(pgid: int) -> None:
    with _live_lock:
        cleanup = _live_groups.pop(pgid, None)
    if cleanup is not None:
        shutil.rmtree(cleanup, ignore_errors=True)


class _Kernel:
    """One running kernel process and its sockets (replaced whole on restart)."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        conn_dir: Path,
        session: Session,
        ctx: zmq.Context[Any],
        shell: zmq.Socket[Any],
        iopub: zmq.Socket[Any],
        control: zmq.Socket[Any],
        stderr_path: Path,
        *,
        conn_file: Path | None = None,
        backend: Backend | None = None,
        cgroup: Cgroup | None = None,
        spare: Callable[[], set[int]] | None = None,
    ) -> None:
        self.proc = proc
        #: Processes of the same sandbox (the bash session) a restart must not kill.
        self.spare = spare
        self.conn_file = conn_file
        self.backend = backend
        self.cgroup = cgroup
        self._kernel_pid: int | None = None
        self.conn_dir = conn_dir
        self.session = session
        self.ctx = ctx
        self.shell = shell
        self.iopub = iopub
        self.control = control
        self.stderr_path = stderr_path
        self.poller = zmq.Poller()
        self.poller.register(shell, zmq.POLLIN)
        self.poller.register(iopub, zmq.POLLIN)

    @property
    def pid(self) -> int:
        """The kernel process's pid on the host (under bwrap: not bwrap's own)."""
        if self._kernel_pid is None:
            self._kernel_pid = self._find_kernel_pid()
        return self._kernel_pid or self.proc.pid

    def _find_kernel_pid(self) -> int | None:
        if self.backend is None or self.backend.name == "local" or self.conn_file is None:
            return self.proc.pid
        marker = str(self.conn_file)
        try:
            for child in psutil.Process(self.proc.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if marker in child.cmdline() and child.name() != "bwrap":
                        return int(child.pid)
        except psutil.Error:
            pass
        return None

    def alive(self) -> bool:
        return self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        code = self.proc.poll()
        return self.backend.exit_code(code) if self.backend is not None else code

    def stderr_tail(self, n: int = 2000) -> str:
        try:
            with open(self.stderr_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - n))
                return f.read().decode("utf-8", "replace").strip()
        except OSError:
            return ""

    def send(self, sock: zmq.Socket[Any], msg_type: str, content: dict[str, Any]) -> str:
        msg = self.session.msg(msg_type, content)
        self.session.send(sock, msg)
        return str(msg["header"]["msg_id"])

    def recv(self, sock: zmq.Socket[Any]) -> dict[str, Any] | None:
        try:
            _, msg = self.session.recv(sock, mode=zmq.NOBLOCK)
        except zmq.Again:
            return None
        return msg

    def kill(self) -> None:
        """Kill the process group and every descendant (also those that left the group)."""
        pid = self.proc.pid
        try:
            descendants = psutil.Process(pid).children(recursive=True)
        except psutil.Error:
            descendants = []
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
        for child in descendants:
            with contextlib.suppress(psutil.Error):
                child.kill()
        if self.cgroup is not None:
            # whatever escaped the group and the tree (a setsid daemon), but not the shell
            self.cgroup.kill(spare=frozenset(self.spare() if self.spare is not None else ()))
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        wait_gone(descendants, timeout=2.0)
        with _live_lock:
            _live_groups.pop(pid, None)

    def close(self) -> None:
        for sock in (self.shell, self.iopub, self.control):
            sock.close(linger=0)
        self.ctx.term()
        shutil.rmtree(self.conn_dir, ignore_errors=True)


class Sandbox:
    """A persistent Python sandbox: one Jupyter kernel, restarted when it dies.

    Thread-safety: ``execute``/``restart``/``start`` are serialised; ``interrupt``
    and ``shutdown`` may be called from any thread while ``execute`` blocks.
    """

    def __init__(
        self,
        work_dir: Path,
        *,
        home_dir: Path,
        tmp_dir: Path,
        memory_limit_mb: int | None = None,
        cpu_time_limit_s: int | None = None,
        startup_code: str = "",
        extra_env: dict[str, str] | None = None,
        python: str = sys.executable,
        startup_timeout_s: float = 60.0,
        interrupt_grace_s: float = 3.0,
        backend: Backend | None = None,
        isolation: Isolation | None = None,
    ) -> None:
        self.work_dir = Path(work_dir).absolute()
        self.home_dir = Path(home_dir).absolute()
        self.tmp_dir = Path(tmp_dir).absolute()
        self.backend: Backend = backend or LocalBackend()
        self.isolation = isolation or Isolation(memory_mb=memory_limit_mb)
        if self.isolation.memory_mb is None and memory_limit_mb is not None:
            self.isolation = dataclasses.replace(self.isolation, memory_mb=memory_limit_mb)
        self.memory_limit_mb = self.isolation.memory_mb
        self.cpu_time_limit_s = cpu_time_limit_s
        self.startup_code = startup_code
        self.python = python
        self.startup_timeout_s = startup_timeout_s
        self.interrupt_grace_s = interrupt_grace_s
        # the environment is fixed now, so every restart gets the same one;
        # secret-looking names in extra_env raise ValueError here
        home, tmp = (
            self.backend.inside_paths(self.work_dir)
            if self.backend.isolated
            else (self.home_dir, self.tmp_dir)
        )
        self._env = kernel_env(home_dir=home, tmp_dir=tmp, extra=dict(extra_env or {}))
        self._cgroup: Cgroup | None = None
        self._cgroup_tried = False
        #: How each limit is enforced here ("memory": "memory.max 1024 MiB (cgroup v2)", ...).
        self.enforcement: dict[str, str] = {}
        #: Set when the work directory passed its size limit during a call.
        self._work_over: int | None = None
        self._on_host_restore: Path | None = None
        self._kernel: _Kernel | None = None
        self._call_lock = threading.RLock()
        self._sig_lock = threading.Lock()
        self._busy = False
        self._interrupt_requested = threading.Event()
        self._closing = False
        self.restarts = 0
        self._shell: BashSession | None = None
        self._files: WorkFiles | None = None

    @classmethod
    def for_run(
        cls,
        run_dir: RunDir,
        *,
        backend: Backend | None = None,
        isolation: Isolation | None = None,
        **kwargs: Any,
    ) -> Sandbox:
        """A sandbox for a run: cwd ``work/``, the public task data (``sandbox/public``)
        read-only at ``work/.agentdeck_data``, the log directory out of reach.

        Under ``bwrap`` the kernel works in ``<run>/work`` itself: nothing else of the
        run directory is mounted. Under ``local`` the working directory lives in a
        private temporary directory while the run goes (``<run>/work`` links to it),
        so that ``../events.jsonl`` and ``../artifacts`` are not next door, and is
        moved back when the sandbox shuts down.
        """
        backend = backend or LocalBackend()
        public = run_dir.public.absolute()
        iso = isolation or Isolation()
        iso = dataclasses.replace(
            iso,
            public_dir=public if public.is_dir() else None,
            private=(*iso.private, run_dir.path.parent.resolve(), run_dir.path.resolve()),
        )
        if backend.isolated:
            sb = cls(
                run_dir.work,
                home_dir=run_dir.work.parent / "home",
                tmp_dir=run_dir.work.parent / "tmp",
                backend=backend,
                isolation=iso,
                **kwargs,
            )
            return sb
        root = Path(tempfile.mkdtemp(prefix="agentdeck-sandbox-"))
        work = root / "work"
        if run_dir.work.is_symlink() or not run_dir.work.exists():
            run_dir.work.unlink(missing_ok=True)
            work.mkdir()
        else:
            shutil.move(str(run_dir.work), str(work))
        run_dir.work.symlink_to(work, target_is_directory=True)
        if iso.public_dir is not None:
            (work / DATA_DIR_NAME).symlink_to(iso.public_dir, target_is_directory=True)
        sb = cls(
            work,
            home_dir=root / "home",
            tmp_dir=root / "tmp",
            backend=backend,
            isolation=iso,
            **kwargs,
        )
        sb._on_host_restore = run_dir.work
        return sb

    # -- lifecycle -----------------------------------------------------------

    @property
    def pid(self) -> int | None:
        k = self._kernel
        return k.pid if k is not None and k.alive() else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def start(self) -> float:
        """Start the kernel and run the setup code; returns the seconds it took.

        Raises ``SandboxError`` if the kernel will not start or the setup code fails.
        """
        with self._call_lock:
            if self._kernel is not None and self._kernel.alive():
                return 0.0
            self._closing = False
            t0 = time.perf_counter()
            self._launch()
            try:
                self._setup()
            except SandboxError:
                self._stop_kernel()  # not started: leave nothing running
                raise
            return time.perf_counter() - t0

    def restart(self) -> None:
        """A fresh kernel (new namespace); the setup code runs again."""
        with self._call_lock:
            self._stop_kernel()
            self.restarts += 1
            self._launch()
            self._setup()

    def shutdown(self) -> None:
        """Stop the kernel and everything it started. Idempotent; any thread."""
        self._closing = True
        shell = self._shell
        if shell is not None:
            shell.close()
        with self._sig_lock:
            kernel = self._kernel
        if kernel is not None:
            kernel.kill()  # unblocks a concurrent execute(), which sees _closing
        with self._call_lock:
            self._stop_kernel()
            if self._cgroup is not None:
                self._cgroup.remove()
                self._cgroup = None
            self._restore_work()

    def _restore_work(self) -> None:
        """Local backend: move the working directory back into the run directory."""
        link, self._on_host_restore = self._on_host_restore, None
        if link is None or not link.is_symlink():
            return
        with contextlib.suppress(OSError):
            (self.work_dir / DATA_DIR_NAME).unlink()
        link.unlink()
        shutil.move(str(self.work_dir), str(link))
        shutil.rmtree(self.work_dir.parent, ignore_errors=True)
        self.work_dir = link

    def limits(self) -> dict[str, Any]:
        """The limits in force in the kernel (read back from the OS where possible)."""
        out: dict[str, Any] = {
            "memory_limit_mb": self.memory_limit_mb,
            "cpu_time_limit_s": self.cpu_time_limit_s,
            "memory_rlimit": "RLIMIT_DATA",
            "backend": self.backend.name,
            "isolated": self.backend.isolated,
            "enforced": dict(self.enforcement),
        }
        pid = self.pid
        if pid is not None and hasattr(psutil.Process, "rlimit"):
            with contextlib.suppress(psutil.Error, AttributeError):
                soft, _ = psutil.Process(pid).rlimit(psutil.RLIMIT_DATA)
                out["memory_limit_mb"] = None if soft == psutil.RLIM_INFINITY else soft >> 20
                soft, _ = psutil.Process(pid).rlimit(psutil.RLIMIT_CPU)
                out["cpu_time_limit_s"] = None if soft == psutil.RLIM_INFINITY else soft
        return out

    def _stop_kernel(self) -> None:
        with self._sig_lock:
            kernel, self._kernel = self._kernel, None
        if kernel is None:
            return
        kernel.kill()
        kernel.close()

    def prepare_limits(self) -> dict[str, str]:
        """Make the sandbox's cgroup (or settle for rlimits) now, before the kernel
        starts; returns how each limit is enforced (also in ``enforcement``)."""
        self._limits_cgroup()
        return dict(self.enforcement)

    def _limits_cgroup(self) -> Cgroup | None:
        """The sandbox's cgroup (made once, on the first start), or None: rlimits only."""
        if not self._cgroup_tried:
            self._cgroup_tried = True
            iso = self.isolation
            self._cgroup = cgroups.create(iso.memory_mb, iso.pids, tag="sandbox")
            if self._cgroup is not None:
                self.enforcement.update(self._cgroup.limits)
            else:
                if iso.memory_mb:
                    self.enforcement["memory"] = (
                        f"RLIMIT_DATA {iso.memory_mb} MiB (no cgroup here: shared memory "
                        "and tmpfs are not counted)"
                    )
                if iso.pids:
                    self.enforcement["pids"] = (
                        "not enforced (no cgroup, and the engine runs as root, which "
                        "RLIMIT_NPROC does not bind)"
                        if os.geteuid() == 0
                        else f"RLIMIT_NPROC: your processes + {iso.pids} (no cgroup here)"
                    )
            if iso.work_mb:
                self.enforcement["work"] = (
                    f"{iso.work_mb} MiB for work/ (checked every 2 s while a call runs; "
                    "RLIMIT_FSIZE caps one file)"
                )
        return self._cgroup

    def _nproc_limit(self) -> int:
        if self._cgroup is not None or not self.isolation.pids or os.geteuid() == 0:
            return 0
        try:
            uid = os.getuid()
            mine = sum(1 for p in psutil.process_iter(["uids"]) if p.info["uids"].real == uid)
        except psutil.Error:
            return 0
        return mine + self.isolation.pids

    # -- the bash session and the working directory's files (repository tasks) -------------

    def shell(self) -> BashSession:
        """The run's persistent bash session (started by its first command)."""
        if self._closing:
            raise SandboxError("the sandbox has been shut down")
        if self._shell is None:
            self._shell = BashSession(
                self._spawn_shell,
                work_usage=lambda: dir_size(self.work_dir, skip=(DATA_DIR_NAME,)),
                work_limit_bytes=(self.isolation.work_mb or 0) << 20,
                forget=_forget_group,
            )
        return self._shell

    @property
    def files(self) -> WorkFiles:
        """What the working directory holds and what changed (``file_change`` events)."""
        if self._files is None:
            from agentdeck.engine.workfiles import WorkFiles

            self._files = WorkFiles(lambda: self.work_dir)
        return self._files

    @property
    def shell_pid(self) -> int | None:
        """The bash session's root process on the host, while it runs (None before)."""
        shell = self._shell
        return shell.pid if shell is not None else None

    def _shell_pids(self) -> set[int]:
        shell = self._shell
        return shell.tree_pids() if shell is not None else set()

    def spawn(
        self,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        rw: tuple[Path, ...] = (),
        cleanup: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` in this sandbox: the same backend, cgroup, working directory,
        environment (``env`` instead, if given) and limits as the kernel, in its own
        session, with stdin, stdout and stderr as pipes; ``rw`` are host folders it may
        write, ``cleanup`` one removed when the engine exits. Killed with the sandbox
        (and, by the caller's own watcher, with the engine)."""
        for d in (self.work_dir, self.home_dir, self.tmp_dir):
            if not self.backend.isolated or d == self.work_dir:
                d.mkdir(parents=True, exist_ok=True)
        cgroup = self._limits_cgroup()
        env = dict(self._env if env is None else env)
        cmd = self.backend.command(
            Launch(argv=argv, cwd=self.work_dir, env=env, rw=list(rw)), self.isolation
        )
        if cgroup is not None:
            cmd = cgroup.wrap(cmd)
        proc = subprocess.Popen(
            cmd,
            cwd=self.work_dir,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            close_fds=True,
        )
        with _live_lock:
            _live_groups[proc.pid] = cleanup
        return proc

    def _spawn_shell(self, _argv: list[str]) -> subprocess.Popen[bytes]:
        if shutil.which(self.python) is None:
            raise OSError(f"{self.python!r} is not found or not executable")
        # `python` and `python3` in the shell are the sandbox's interpreter (the one with
        # torch and agentdeck), whatever the user's PATH holds
        private = Path(tempfile.mkdtemp(prefix="agentdeck-sh-"))
        bin_dir = private / "bin"
        bin_dir.mkdir()
        for name in ("python", "python3"):  # scripts, not links: a venv is found by its path
            script = bin_dir / name
            script.write_text(f'#!/bin/sh\nexec {shlex.quote(self.python)} "$@"\n')
            script.chmod(0o755)
        env = dict(self._env)
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', os.defpath)}"
        env.setdefault("PAGER", "cat")
        env.setdefault("GIT_PAGER", "cat")
        try:
            return self.spawn(
                [
                    self.python,
                    "-c",
                    SHELL_LAUNCHER,
                    str((self.memory_limit_mb or 0) << 20),
                    str(int(self.cpu_time_limit_s or 0)),
                    str((self.isolation.work_mb or 0) << 20),
                    str(self._nproc_limit()),
                ],
                env=env,
                rw=(private,),
                cleanup=private,
            )
        except OSError:
            shutil.rmtree(private, ignore_errors=True)
            raise

    def _launch(self) -> None:
        for d in (self.work_dir, self.home_dir, self.tmp_dir):
            if not self.backend.isolated or d == self.work_dir:
                d.mkdir(parents=True, exist_ok=True)
        if shutil.which(self.python) is None:
            raise SandboxError(
                f"cannot start the Python kernel with {self.python!r}: not found or not "
                "executable; check that this interpreter exists and has ipykernel installed"
            )
        cgroup = self._limits_cgroup()
        # short private directory: IPC socket paths must stay under ~100 bytes
        conn_dir = Path(tempfile.mkdtemp(prefix="agentdeck-k-"))
        conn_file = conn_dir / "kernel.json"
        key = secrets.token_hex(32).encode()
        _, info = write_connection_file(
            str(conn_file), transport="ipc", ip=str(conn_dir / "s"), key=key
        )
        # no JPY_PARENT_PID: ipykernel's own parent poller would exit the kernel before our
        # watcher has killed what the kernel started
        env = dict(self._env)
        mem = (self.memory_limit_mb or 0) << 20
        argv = [
            self.python,
            "-c",
            _LAUNCHER,
            str(mem),
            str(int(self.cpu_time_limit_s or 0)),
            str((self.isolation.work_mb or 0) << 20),
            str(self._nproc_limit()),
            str(conn_dir),
            "-f",
            str(conn_file),
            "--HistoryManager.enabled=False",
            "--IPKernelApp.quiet=True",
        ]
        cmd = self.backend.command(
            Launch(argv=argv, cwd=self.work_dir, env=env, rw=[conn_dir]), self.isolation
        )
        if cgroup is not None:
            cmd = cgroup.wrap(cmd)
        stderr_path = conn_dir / "kernel.stderr"
        try:
            with open(stderr_path, "wb") as err:
                proc = subprocess.Popen(
                    cmd,
                    cwd=self.work_dir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    start_new_session=True,
                    close_fds=True,
                )
        except OSError as exc:
            shutil.rmtree(conn_dir, ignore_errors=True)
            raise SandboxError(
                f"cannot start the Python kernel with {self.python!r}: {exc}; "
                "check that this interpreter exists and has ipykernel installed"
            ) from None
        with _live_lock:
            _live_groups[proc.pid] = conn_dir
        ctx: zmq.Context[Any] = zmq.Context()
        session = Session(key=key, signature_scheme=info["signature_scheme"], username="agentdeck")

        def connect(kind: int, port: int) -> zmq.Socket[Any]:
            sock: zmq.Socket[Any] = ctx.socket(kind)
            sock.linger = 0
            sock.connect(f"ipc://{info['ip']}-{port}")
            return sock

        shell = connect(zmq.DEALER, info["shell_port"])
        control = connect(zmq.DEALER, info["control_port"])
        iopub = ctx.socket(zmq.SUB)
        iopub.linger = 0
        iopub.rcvhwm = 0  # never drop output because we were slow to read
        iopub.setsockopt(zmq.SUBSCRIBE, b"")
        iopub.connect(f"ipc://{info['ip']}-{info['iopub_port']}")
        kernel = _Kernel(
            proc,
            conn_dir,
            session,
            ctx,
            shell,
            iopub,
            control,
            stderr_path,
            conn_file=conn_file,
            backend=self.backend,
            cgroup=cgroup,
            spare=self._shell_pids,
        )
        with self._sig_lock:
            self._kernel = kernel
        try:
            self._wait_ready(kernel)
        except SandboxError:
            with self._sig_lock:
                self._kernel = None
            kernel.kill()
            kernel.close()
            raise

    def _wait_ready(self, kernel: _Kernel) -> None:
        """Until the kernel answers on shell *and* its IOPub reaches us (no lost output)."""
        deadline = time.monotonic() + self.startup_timeout_s
        iopub_ok = shell_ok = False
        kernel.send(kernel.shell, "kernel_info_request", {})
        last_probe = time.monotonic()
        while not (iopub_ok and shell_ok):
            now = time.monotonic()
            if self._closing:
                raise SandboxError("the sandbox was shut down while its kernel was starting")
            if not kernel.alive():
                detail = kernel.stderr_tail()
                raise SandboxError(
                    f"the Python kernel ({self.python}) {_describe_exit(kernel.returncode)} "
                    "while starting"
                    + (f":\n{detail}" if detail else "")
                    + "\nCheck that ipykernel is installed for this interpreter."
                )
            if now >= deadline:
                raise SandboxError(
                    f"the Python kernel did not answer within {self.startup_timeout_s:g} s; "
                    "the machine may be overloaded (try again) or ipykernel is broken "
                    f"(try: {self.python} -m ipykernel_launcher --help)"
                )
            if shell_ok and not iopub_ok and now - last_probe > 0.5:
                # the first status message went out before our subscription: ask again
                kernel.send(kernel.shell, "kernel_info_request", {})
                last_probe = now
            events = dict(kernel.poller.poll(100))
            if kernel.iopub in events:
                while kernel.recv(kernel.iopub) is not None:
                    iopub_ok = True  # iopub_welcome or a status message: we are subscribed
            if kernel.shell in events:
                while (msg := kernel.recv(kernel.shell)) is not None:
                    if msg["msg_type"] == "kernel_info_reply":
                        shell_ok = True

    def _setup(self) -> None:
        """Pre-import the metric helper and run the task's startup code."""
        for what, code in (
            ("metric helper import", _HELPER_IMPORT),
            ("sandbox setup code", self.startup_code),
        ):
            if not code.strip():
                continue
            res = self._run(
                code,
                timeout=self.startup_timeout_s,
                silent=what != "sandbox setup code",
                on_output=None,
                on_metric=None,
                keep_bytes=64 * 1024,
                allow_restart=False,
            )
            if res.status != "ok":
                raise SandboxError(
                    f"the {what} failed in the sandbox kernel ({res.status}):\n"
                    f"{res.error or res.stderr}"
                )

    # -- calls ------------------------------------------------------------------

    def interrupt(self) -> None:
        """Interrupt the running call (KeyboardInterrupt in the kernel). Any thread.

        Does nothing when no call is running. If the code does not stop within
        ``interrupt_grace_s``, ``execute`` restarts the kernel.
        """
        shell = self._shell
        if shell is not None:
            shell.interrupt()
        with self._sig_lock:
            if not self._busy or self._kernel is None:
                return
            self._interrupt_requested.set()
            self._signal(self._kernel)

    @staticmethod
    def _signal(kernel: _Kernel) -> None:
        if kernel.alive():
            with contextlib.suppress(OSError):
                os.kill(kernel.pid, signal.SIGINT)

    def execute(
        self,
        code: str,
        *,
        timeout: float | None = None,
        on_output: OutputFn | None = None,
        on_metric: MetricFn | None = None,
        keep_bytes: int | None = None,
        stop: threading.Event | None = None,
    ) -> ExecResult:
        """Run ``code`` in the kernel and wait for it to finish.

        ``on_output(stream, text)`` gets output chunks as they arrive;
        ``on_metric(payload)`` each ``log_metric`` payload. ``keep_bytes``
        bounds the stdout and stderr kept in the result (head and tail, each);
        ``output_bytes`` still counts everything. ``stop`` (e.g. the run's stop
        flag) acts like ``interrupt()`` once set, also if set before the call.
        Never raises for what the code does; raises ``SandboxError`` only if
        the kernel cannot be (re)started.
        """
        with self._call_lock:
            if self._closing:
                raise SandboxError("the sandbox has been shut down")
            if self._kernel is None or not self._kernel.alive():
                if self._kernel is None:
                    self.start()
                else:
                    return self._died_before(code)
            return self._run(
                code,
                timeout=timeout,
                silent=False,
                on_output=on_output,
                on_metric=on_metric,
                keep_bytes=keep_bytes,
                allow_restart=True,
                stop=stop,
            )

    def _died_before(self, code: str) -> ExecResult:
        """The kernel died between calls (e.g. a background thread crashed it)."""
        assert self._kernel is not None
        why = _describe_exit(self._kernel.returncode)
        self.restart()
        return ExecResult(
            status="died",
            restarted=True,
            error=(
                f"The Python kernel died before this call ({why}) and was restarted; "
                f"your code was not run: {RESTART_ADVICE}."
            ),
        )

    def _run(
        self,
        code: str,
        *,
        timeout: float | None,
        silent: bool,
        on_output: OutputFn | None,
        on_metric: MetricFn | None,
        keep_bytes: int | None,
        allow_restart: bool,
        stop: threading.Event | None = None,
    ) -> ExecResult:
        kernel = self._kernel
        assert kernel is not None
        t0 = time.monotonic()
        res = ExecResult()
        streams: dict[str, HeadTail | list[str]] = {
            "stdout": HeadTail(keep_bytes) if keep_bytes is not None else [],
            "stderr": HeadTail(keep_bytes) if keep_bytes is not None else [],
        }

        def out(stream: str, text: str) -> None:
            if not text:
                return
            res.output_bytes += len(text.encode("utf-8", "replace"))
            buf = streams[stream]
            if isinstance(buf, HeadTail):
                buf.write(text)
            else:
                buf.append(text)
            if on_output is not None:
                on_output(stream, text)

        with self._sig_lock:
            self._interrupt_requested.clear()
            msg_id = kernel.send(
                kernel.shell,
                "execute_request",
                {
                    "code": code,
                    "silent": silent,
                    "store_history": not silent,
                    "user_expressions": {},
                    "allow_stdin": False,
                    "stop_on_error": False,
                },
            )
            self._busy = True
        deadline = t0 + timeout if timeout is not None and timeout > 0 else None
        reason: Literal["timeout", "user", "work_limit"] | None = None
        give_up_at = 0.0
        next_sigint = 0.0
        idle = replied = False
        reply: dict[str, Any] = {}
        died = False
        try:
            work_limit = (self.isolation.work_mb or 0) << 20
            next_work_check = t0 + 2.0
            while not (idle and replied):
                now = time.monotonic()
                if reason is None and work_limit and now >= next_work_check:
                    next_work_check = now + 2.0
                    used = dir_size(self.work_dir, skip=(DATA_DIR_NAME,))
                    if used > work_limit:
                        self._work_over = used
                        reason = "work_limit"
                        self._signal(kernel)
                        res.interrupted = True
                        give_up_at = now + self.interrupt_grace_s
                        next_sigint = now + 0.5
                if reason is None:
                    if self._interrupt_requested.is_set():
                        reason = "user"
                    elif stop is not None and stop.is_set():
                        reason = "user"
                        self._signal(kernel)
                    elif deadline is not None and now >= deadline:
                        reason = "timeout"
                        self._signal(kernel)
                    if reason is not None:
                        res.interrupted = True
                        give_up_at = now + self.interrupt_grace_s
                        next_sigint = now + 0.5
                elif now >= give_up_at:
                    break  # did not stop: restart below
                elif now >= next_sigint:
                    # the first SIGINT can land before the kernel armed its handler
                    self._signal(kernel)
                    next_sigint = now + 0.5
                wait = 0.1
                if reason is None and deadline is not None:
                    wait = min(wait, max(0.0, deadline - now))
                events = dict(kernel.poller.poll(int(wait * 1000)))
                if kernel.iopub in events:
                    while (msg := kernel.recv(kernel.iopub)) is not None:
                        if self._on_iopub(msg, msg_id, res, out, on_metric):
                            idle = True
                if kernel.shell in events:
                    while (msg := kernel.recv(kernel.shell)) is not None:
                        if msg["parent_header"].get("msg_id") == msg_id:
                            replied = True
                            reply = msg["content"]
                if not events and not kernel.alive():
                    died = True
                    break
        finally:
            with self._sig_lock:
                self._busy = False
        for name, buf in streams.items():
            text = buf.text() if isinstance(buf, HeadTail) else "".join(buf)
            setattr(res, name, text)
        if died or not (idle and replied):
            self._after_loss(
                res, died=died, reason=reason, timeout=timeout, allow_restart=allow_restart
            )
        elif reply.get("status") == "error" or res.ename is not None:
            if res.ename is None:
                res.ename = str(reply.get("ename", "Error"))
                res.error = f"{res.ename}: {reply.get('evalue', '')}"
            if reason == "timeout" and res.ename == "KeyboardInterrupt":
                res.status = "timeout"
                res.error = (
                    f"Execution interrupted after {timeout:g} s (time limit). "
                    "Variables defined before the interruption are kept."
                )
            elif reason == "user" and res.ename == "KeyboardInterrupt":
                res.status = "error"
                res.error = (
                    "Execution interrupted (the run is being stopped). "
                    "Variables defined before the interruption are kept."
                )
            elif reason == "work_limit":
                res.status = "error"
                res.error = self._work_limit_message()
            else:
                res.status = "error"
        elif reason is not None:
            # interrupted, but the code finished (or swallowed KeyboardInterrupt)
            res.status = "timeout" if reason == "timeout" else "ok"
            if reason == "work_limit":
                res.status = "error"
                res.error = self._work_limit_message()
            if reason == "timeout":
                res.error = (
                    f"Execution reached the {timeout:g} s time limit and was interrupted; "
                    "the code caught the interruption and finished. Variables are kept."
                )
        res.duration_s = time.monotonic() - t0
        return res

    def _work_limit_message(self) -> str:
        used = self._work_over or 0
        return (
            f"The working directory grew past its limit of {self.isolation.work_mb:,} MiB "
            f"(now {used >> 20:,} MiB); the call was interrupted. Delete files you do not "
            "need (variables defined before the interruption are kept)."
        )

    def _on_iopub(
        self,
        msg: dict[str, Any],
        msg_id: str,
        res: ExecResult,
        out: OutputFn,
        on_metric: MetricFn | None,
    ) -> bool:
        """Handle one IOPub message; True when it is our call's final ``idle``."""
        parent = msg["parent_header"].get("msg_id")
        mtype = msg["msg_type"]
        content = msg["content"]
        mine = parent == msg_id
        if mtype == "status":
            return bool(mine and content.get("execution_state") == "idle")
        # output from threads may carry no parent; output of older calls is dropped
        if not mine and parent:
            return False
        if mtype == "stream":
            out("stderr" if content.get("name") == "stderr" else "stdout", content.get("text", ""))
        elif mtype == "execute_result":
            res.result = content.get("data", {}).get("text/plain")
        elif mtype in ("display_data", "update_display_data"):
            data = dict(content.get("data", {}))
            if METRIC_MIME in data:
                if on_metric is not None and isinstance(data[METRIC_MIME], dict):
                    on_metric(data[METRIC_MIME])
                return False
            text = data.pop("text/plain", None)
            if data:
                res.displays.append(data)
            if text and not data:
                out("stdout", text if text.endswith("\n") else text + "\n")
        elif mtype == "error":
            res.ename = str(content.get("ename", "Error"))
            tb = strip_ansi("\n".join(content.get("traceback", []))).strip()
            head = f"{res.ename}: {content.get('evalue', '')}"
            res.error = head + (f"\n{tb}" if tb else "")
        return False

    def _after_loss(
        self,
        res: ExecResult,
        *,
        died: bool,
        reason: str | None,
        timeout: float | None,
        allow_restart: bool,
    ) -> None:
        """The kernel died or would not stop: restart it and say what happened."""
        kernel = self._kernel
        assert kernel is not None
        code = kernel.returncode if died else None
        if self._closing:
            res.status = "died"
            res.error = "The sandbox was shut down while the code was running."
            return
        if not allow_restart:
            res.status = "died" if died else "timeout"
            res.error = (
                f"the kernel {_describe_exit(code)}"
                if died
                else "the kernel did not finish in time"
            )
            return
        if died:
            res.status = "died"
            what = f"The Python kernel died ({_describe_exit(code)})"
        elif reason == "timeout":
            res.status = "timeout"
            what = (
                f"Execution exceeded the {timeout:g} s time limit and did not stop when "
                f"interrupted; the kernel was killed"
            )
        else:
            res.status = "error"
            what = "Execution did not stop when interrupted; the kernel was killed"
        try:
            self.restart()
        except SandboxError as exc:
            res.error = f"{what} and could not be restarted: {exc}"
            raise SandboxError(res.error) from None
        res.restarted = True
        res.error = f"{what} and was restarted: {RESTART_ADVICE}."
