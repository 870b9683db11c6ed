"""A persistent bash session in the run's sandbox (the ``bash`` tool of repository tasks).

``BashSession`` runs one ``bash`` process for the whole run, started by the sandbox
(``Sandbox.spawn``) inside the same isolation backend, cgroup, working directory and
scrubbed environment as the Python kernel. Commands run in that one shell, so the
working directory, variables and functions persist between calls:

- a command is handed over as a quoted here-document and run with ``eval`` (stdin from
  ``/dev/null``, so nothing can read the commands that follow), then the shell prints
  a marker with a per-session random token and the exit status on stdout and on
  stderr; a call ends when both markers have arrived;
- stdout and stderr stream to ``on_output`` as they come, decoded as UTF-8 with
  undecodable bytes replaced (a character split across reads is decoded whole);
- past the time limit, or on ``interrupt()`` / the run's stop flag, the shell gets
  SIGINT, which a ``trap`` turns into a return from the command (so the rest of it
  does not run, and a builtin loop such as ``while :; do :; done`` stops too), and
  the command's processes (the shell's descendants) get SIGINT, then SIGTERM, then
  SIGKILL, each after a grace period; the shell and its state survive. A shell that
  still does not come back is killed, a fresh one starts at the next call, and the
  result says the state is gone;
- a shell that exits (``exit``, ``set -e``, out of memory) is replaced at the next
  call, and the result says so.

A tiny Python launcher sets the same rlimits as the kernel's, becomes a child
subreaper (so double-forked daemons stay in its tree) and watches the engine: if the
engine dies, even by SIGKILL, everything the shell started is killed.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import secrets
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Literal

import psutil

ShellStatus = Literal["ok", "timeout", "interrupted", "exited", "restarted", "work_limit"]
OutputFn = Callable[[str, str], None]
#: Starts ``argv`` in the sandbox with stdin/stdout/stderr as pipes (``Sandbox.spawn``).
SpawnFn = Callable[[list[str]], "subprocess.Popen[bytes]"]

# Python source for the sandbox launchers (the kernel's and the bash session's, run as
# ``python -c``; ``mem``, ``cpu``, ``fsize``, ``nproc`` already parsed): the rlimits, a
# line on stderr for each one this system lacks or refuses.
RLIMITS_SOURCE = """\
try:
    import resource
except ImportError:
    resource = None
if resource is not None:
    def _set(name, soft, hard):
        which = getattr(resource, name, None)
        if which is None:
            sys.stderr.write("agentdeck: %s is not supported here; not applied\\n" % name)
            return
        try:
            resource.setrlimit(which, (soft, hard))
        except (ValueError, OSError) as exc:
            sys.stderr.write("agentdeck: could not set %s: %s\\n" % (name, exc))
    _set("RLIMIT_CORE", 0, 0)
    if mem > 0:
        _set("RLIMIT_DATA", mem, mem)
    if cpu > 0:
        _set("RLIMIT_CPU", cpu, cpu + 5)
    if fsize > 0:
        _set("RLIMIT_FSIZE", fsize, fsize)
    if nproc > 0:
        _set("RLIMIT_NPROC", nproc, nproc)
"""

# Runs as ``python -c``: rlimits, subreaper, then bash as a child; the launcher stays as
# the watcher that takes everything down with the engine.
SHELL_LAUNCHER = (
    """\
import os, sys, time, signal
mem, cpu, fsize, nproc = (int(a) for a in sys.argv[1:5])
try:
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
except (OSError, AttributeError):
    pass
"""
    + RLIMITS_SOURCE
    + """\
ppid = os.getppid()
child = os.fork()
if child == 0:
    os.execv("/bin/bash", ["bash", "--noprofile", "--norc"])
devnull = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(devnull, fd)  # the pipes are the shell's: its exit must close them
def _descendants():
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    kids.setdefault(int(f.read().rsplit(")", 1)[1].split()[1]), []).append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [os.getpid()]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    return out
def _kill_all():
    for pid in _descendants():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
status = 0
while True:
    try:
        pid, st = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        pid, st = 0, 0
    if pid == child:
        status = os.waitstatus_to_exitcode(st)
        break
    if os.getppid() != ppid:  # the engine died: nothing of the sandbox outlives it
        _kill_all()
        os._exit(137)
    if pid == 0:
        time.sleep(0.2)
_kill_all()  # what the shell left behind (background jobs, daemons)
os._exit(status if 0 <= status < 256 else 128 - status)
"""
)


@dataclass
class ShellResult:
    stdout: str = ""
    stderr: str = ""
    #: The command's exit status (None when it did not finish normally).
    exit_code: int | None = None
    status: ShellStatus = "ok"
    #: What the agent must know when the call did not simply finish (interrupt, restart).
    error: str | None = None
    duration_s: float = 0.0
    #: Bytes of stdout + stderr seen.
    output_bytes: int = 0
    #: The session was lost (exited or killed): a fresh shell runs the next command.
    restarted: bool = False
    #: Said before the output: the session had ended before this call.
    notice: str | None = None


class ShellError(RuntimeError):
    """The shell cannot be started (bash missing, the sandbox refused it)."""


class _Stream:
    """One pipe: bytes until the end marker, decoded incrementally."""

    def __init__(self, name: str, marker: bytes, start: bytes = b"") -> None:
        self.name = name
        self.marker = marker
        self.start = start  # a marker the stream begins with (stripped), if any
        self.started = not start
        self.pending = b""
        self.done = False
        self.closed = False
        self.tail = b""  # what followed the marker (the exit status on stdout)
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.text: list[str] = []

    def feed(self, data: bytes) -> str:
        """Text that is certainly output (not part of the marker)."""
        if self.done:
            return ""
        buf = self.pending + data
        if not self.started:
            # stripped wherever it comes (stderr may carry the launcher's notes before it);
            # it may also never come (an interrupt before it), and the end marker still counts
            at = buf.find(self.start)
            if at >= 0:
                self.started = True
                buf = buf[:at] + buf[at + len(self.start) :]
        at = buf.find(self.marker)
        if at >= 0:
            self.done = True
            self.tail = buf[at + len(self.marker) :]
            self.pending = b""
            return self._decode(buf[:at], final=True)
        keep = _partial(buf, self.marker)
        if not self.started:
            keep = max(keep, _partial(buf, self.start))
        out, self.pending = (buf[: len(buf) - keep], buf[len(buf) - keep :])
        return self._decode(out)

    def flush(self) -> str:
        rest, self.pending = self.pending, b""
        return self._decode(rest, final=True)

    def _decode(self, data: bytes, final: bool = False) -> str:
        text = self.decoder.decode(data, final=final)
        if text:
            self.text.append(text)
        return text


def _partial(buf: bytes, marker: bytes) -> int:
    """How many bytes at the end of ``buf`` could begin ``marker`` (held back until the
    next read tells)."""
    for k in range(min(len(buf), len(marker) - 1), 0, -1):
        if marker.startswith(buf[-k:]):
            return k
    return 0


def _gone(p: psutil.Process) -> bool:
    try:
        return bool(p.status() == psutil.STATUS_ZOMBIE)  # dead, waiting for whoever reaps it
    except psutil.Error:
        return True


def wait_gone(procs: list[psutil.Process], timeout: float) -> None:
    """Return once every one of ``procs`` has exited (SIGKILL is not instant: a process
    goes on until the kernel has torn it down), or after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    left = [p for p in procs if not _gone(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.01)
        left = [p for p in left if not _gone(p)]


class BashSession:
    """One persistent bash in the sandbox. ``run`` is serialised; ``interrupt`` and
    ``close`` may be called from any thread."""

    def __init__(
        self,
        spawn: SpawnFn,
        *,
        interrupt_grace_s: float = 2.0,
        work_usage: Callable[[], int] | None = None,
        work_limit_bytes: int = 0,
        forget: Callable[[int], None] | None = None,
    ) -> None:
        self._spawn = spawn
        #: Told the pid of each session that is gone (the engine's kill-at-exit list).
        self._forget = forget
        self.interrupt_grace_s = interrupt_grace_s
        self._work_usage = work_usage
        self.work_limit_bytes = work_limit_bytes
        self._proc: subprocess.Popen[bytes] | None = None
        self._bash_pid: int | None = None
        self._token = ""
        self._lock = threading.Lock()
        self._interrupt = threading.Event()
        self._closing = False
        self.restarts = 0
        self.calls = 0

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The launcher's pid on the host (the root of the session's process tree)."""
        p = self._proc
        return p.pid if p is not None and p.poll() is None else None

    def tree_pids(self) -> set[int]:
        """Every process of the session (launcher, bwrap, bash, commands) on the host."""
        p = self._proc
        if p is None or p.poll() is not None:
            return set()
        try:
            root = psutil.Process(p.pid)
            return {p.pid, *(c.pid for c in root.children(recursive=True))}
        except psutil.Error:
            return set()

    def _start(self) -> None:
        self._token = secrets.token_hex(8)
        try:
            self._proc = self._spawn([])
        except OSError as e:
            raise ShellError(f"cannot start bash in the sandbox: {e}") from None
        self._bash_pid = None

    def _bash(self) -> psutil.Process | None:
        """The bash process itself (under the launcher, and bwrap's two processes)."""
        p = self._proc
        if p is None:
            return None
        if self._bash_pid is not None:
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(self._bash_pid)
                if proc.is_running():
                    return proc
        try:
            todo = [psutil.Process(p.pid)]
            while todo:
                nxt = []
                for proc in todo:
                    with contextlib.suppress(psutil.Error):
                        if proc.name() == "bash":
                            self._bash_pid = proc.pid
                            return proc
                        nxt.extend(proc.children())
                todo = nxt
        except psutil.Error:
            pass
        return None

    def _kill(self) -> None:
        """The whole session: its process group and every descendant."""
        p, self._proc = self._proc, None
        self._bash_pid = None
        if p is None:
            return
        try:
            kids = psutil.Process(p.pid).children(recursive=True)
        except psutil.Error:
            kids = []
        with contextlib.suppress(OSError):
            os.killpg(p.pid, signal.SIGKILL)
        for k in kids:
            with contextlib.suppress(psutil.Error):
                k.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=5)
        wait_gone(kids, timeout=2.0)
        if self._forget is not None:
            self._forget(p.pid)
        for f in (p.stdin, p.stdout, p.stderr):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()

    def restart(self) -> None:
        """A fresh shell (the old one and everything it started are killed)."""
        with self._lock:
            self._kill()
            self.restarts += 1
            self._start()

    def close(self) -> None:
        """Kill the session. Idempotent; any thread."""
        self._closing = True
        self._interrupt.set()
        self._kill()

    def interrupt(self) -> None:
        """Interrupt the running command (as the time limit would). Any thread."""
        self._interrupt.set()

    # -- one command ---------------------------------------------------------------------

    def _script(self, command: str) -> bytes:
        tok = self._token
        body = command.replace("\0", "")
        if not body.endswith("\n"):
            body += "\n"
        return (
            f"IFS= read -r -d '' __agentdeck_cmd <<'__AGENTDECK_EOF_{tok}'\n"
            f"{body}"
            f"__AGENTDECK_EOF_{tok}\n"
            # an interrupt makes bash return from the function (even from a builtin loop);
            # the command's own processes get the signal too (see _interrupt_command)
            "trap 'return 130' INT\n"
            # the start marker says the trap is set and the function running: an interrupt
            # waits for it (one that came while bash still read the command was spent there)
            "__agentdeck_run() { "
            f"printf '__AGENTDECK_%s_{tok}\\n' START >&2; "
            'eval "$__agentdeck_cmd" </dev/null; }\n'
            "__agentdeck_run\n"
            "__agentdeck_rc=$?\n"
            "trap - INT\n"
            f"printf '\\n__AGENTDECK_%s_{tok} %s\\n' DONE \"$__agentdeck_rc\"; "
            f"printf '\\n__AGENTDECK_%s_{tok}\\n' DONE >&2\n"
        ).encode("utf-8", "replace")

    def _interrupt_command(self, sig: int) -> set[int]:
        """SIGINT to the shell (it returns from the command at the next chance), then
        ``sig`` to the command's processes (the shell's descendants); their pids."""
        bash = self._bash()
        if bash is None:
            return set()
        with contextlib.suppress(psutil.Error):
            bash.send_signal(signal.SIGINT)  # first: it must be pending when a child exits
        return self._signal_children(bash, sig)

    @staticmethod
    def _signal_children(bash: psutil.Process, sig: int, skip: Collection[int] = ()) -> set[int]:
        try:
            kids = bash.children(recursive=True)
        except psutil.Error:
            return set()
        sent = set()
        for k in kids:
            if k.pid in skip:
                continue
            with contextlib.suppress(psutil.Error):
                k.send_signal(sig)
                sent.add(k.pid)
        return sent

    def run(
        self,
        command: str,
        *,
        timeout: float | None = None,
        on_output: OutputFn | None = None,
        stop: threading.Event | None = None,
    ) -> ShellResult:
        """Run ``command`` in the session and wait for it. Never raises for what the
        command does; ``ShellError`` only when no shell can be started."""
        with self._lock:
            if self._closing:
                raise ShellError("the sandbox has been shut down")
            notice = None
            if self._proc is None:
                self._start()
            elif self._proc.poll() is not None:  # died between calls (killed, out of memory)
                code = self._proc.poll()
                self._kill()
                self.restarts += 1
                self._start()
                notice = (
                    f"[agentdeck] the bash session had ended (status {code}) since the last "
                    "call; this command ran in a fresh one (working directory and variables "
                    "were reset)"
                )
            self.calls += 1
            self._interrupt.clear()
            res = self._run(command, timeout, on_output, stop)
            res.notice = notice
            return res

    def _run(
        self,
        command: str,
        timeout: float | None,
        on_output: OutputFn | None,
        stop: threading.Event | None,
    ) -> ShellResult:
        proc = self._proc
        assert proc is not None and proc.stdin and proc.stdout and proc.stderr
        t0 = time.monotonic()
        res = ShellResult()
        marker = f"\n__AGENTDECK_DONE_{self._token}".encode()
        err_stream = _Stream(
            "stderr", marker + b"\n", start=f"__AGENTDECK_START_{self._token}\n".encode()
        )
        streams = {
            proc.stdout.fileno(): _Stream("stdout", marker + b" "),
            proc.stderr.fileno(): err_stream,
        }

        def emit(stream: str, text: str) -> None:
            if text:
                res.output_bytes += len(text.encode("utf-8", "replace"))
                if on_output is not None:
                    on_output(stream, text)

        script = self._script(command)
        write_error: list[BaseException] = []

        def write() -> None:
            try:
                assert proc.stdin is not None
                proc.stdin.write(script)
                proc.stdin.flush()
            except (OSError, ValueError) as e:  # the shell died before it read the command
                write_error.append(e)

        writer = threading.Thread(target=write, name="agentdeck-shell-write", daemon=True)
        writer.start()
        sel = selectors.DefaultSelector()
        for fd in streams:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ)
        deadline = t0 + timeout if timeout is not None and timeout > 0 else None
        reason: str | None = None
        # 0 running; 1 SIGINT sent (or due, until the start marker); 2 SIGTERM; 3 SIGKILL;
        # 4 gave up
        phase = 0
        sigint_due = False
        sigint_pids: set[int] = set()  # the command's processes that got the SIGINT
        late_until = 0.0
        next_phase = 0.0
        next_work_check = t0 + 2.0
        try:
            while not all(s.done or s.closed for s in streams.values()):
                now = time.monotonic()
                if reason is None:
                    if self._interrupt.is_set() or (stop is not None and stop.is_set()):
                        reason = "interrupted"
                    elif deadline is not None and now >= deadline:
                        reason = "timeout"
                    elif (
                        self.work_limit_bytes
                        and self._work_usage is not None
                        and now >= next_work_check
                    ):
                        next_work_check = now + 2.0
                        if self._work_usage() > self.work_limit_bytes:
                            reason = "work_limit"
                    if reason is not None:
                        phase, next_phase = 1, now + self.interrupt_grace_s
                        sigint_due = True
                if sigint_due and (err_stream.started or now >= next_phase):
                    # SIGINT once the command runs under its trap (or the grace ran out)
                    sigint_due = False
                    next_phase = now + self.interrupt_grace_s
                    sigint_pids = self._interrupt_command(signal.SIGINT)
                    late_until = now + 1.0
                elif phase == 1 and not sigint_due and now < late_until:
                    # a child the shell forked just as the SIGINT came (missed above): bash
                    # runs its trap only once that child exits, so it gets SIGINT too
                    bash = self._bash()
                    if bash is not None:
                        sigint_pids |= self._signal_children(bash, signal.SIGINT, skip=sigint_pids)
                if reason is not None and not sigint_due and now >= next_phase:
                    if phase == 1:
                        self._interrupt_command(signal.SIGTERM)
                        phase, next_phase = 2, now + 1.0
                    elif phase == 2:
                        self._interrupt_command(signal.SIGKILL)
                        phase, next_phase = 3, now + 1.0
                    else:
                        phase = 4
                        break  # the shell itself does not come back: replace it below
                for key, _ in sel.select(timeout=0.1):
                    fd = int(key.fd)
                    s = streams[fd]
                    try:
                        data = os.read(fd, 65536)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        s.closed = True
                        sel.unregister(fd)
                        emit(s.name, s.flush())
                        continue
                    emit(s.name, s.feed(data))
                if proc.poll() is not None and all(s.closed or s.done for s in streams.values()):
                    break
        finally:
            sel.close()
        writer.join(timeout=1.0)
        out, err = streams[proc.stdout.fileno()], streams[proc.stderr.fileno()]
        res.stdout, res.stderr = "".join(out.text), "".join(err.text)
        res.duration_s = time.monotonic() - t0
        if out.done:
            rc = out.tail.split(b"\n", 1)[0].strip()
            res.exit_code = int(rc) if rc.lstrip(b"-").isdigit() else None
        lost = not out.done or phase == 4
        if lost:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.5 if phase != 4 else 0)
            code = proc.poll()
            self._kill()
            res.restarted = True
            self.restarts += 1
            if phase == 4:
                res.status = "restarted"
                res.error = (
                    f"{self._reason_text(reason, timeout)}; the command did not stop, so the "
                    "shell was killed: a fresh session runs the next command (working "
                    "directory and variables are reset; files are kept)"
                )
            else:
                res.status = "exited"
                why = "" if code is None else f" with status {code}"
                res.error = (
                    f"The bash session ended{why} (an `exit`, `set -e`, or the shell was "
                    "killed, e.g. out of memory); a fresh session runs the next command "
                    "(working directory and variables are reset; files are kept)"
                )
        elif reason is not None:
            res.status = (
                "timeout"
                if reason == "timeout"
                else ("work_limit" if reason == "work_limit" else "interrupted")
            )
            res.error = (
                f"{self._reason_text(reason, timeout)}; the bash session is kept (its "
                "working directory and variables are as they were)"
            )
        return res

    def _reason_text(self, reason: str | None, timeout: float | None) -> str:
        if reason == "timeout":
            return f"The command was interrupted after {timeout:g} s (the time limit)"
        if reason == "work_limit":
            return (
                f"The working directory grew past its limit of "
                f"{self.work_limit_bytes >> 20:,} MiB and the command was interrupted; "
                "delete files you do not need"
            )
        return "The command was interrupted (the run is being stopped)"


__all__ = ["SHELL_LAUNCHER", "BashSession", "ShellError", "ShellResult", "SpawnFn"]
