"""Isolation backends: how the sandbox's processes are started, and what they can reach.

Two backends, chosen by ``--sandbox auto|bwrap|local`` (``auto``: ``bwrap`` where it
works, else ``local`` with a warning on every run):

- ``bwrap`` (bubblewrap): every process of the sandbox runs as uid/gid 65534 in
  new user, PID, IPC, UTS, cgroup and network namespaces (loopback only unless
  the run opts in with ``-T network=true``), in its own session, and dies with
  the engine. Its filesystem is minimal: the system libraries and the Python
  environment read-only, the run's ``work/`` the only writable place besides a
  private, size-limited ``/tmp``, the public task data read-only at
  ``work/.agentdeck_data``, the kernel's connection directory (private to the
  run). Not visible at all: the log directory, other runs, the user's home and
  caches, data sources, and of agentdeck's own code anything but what the
  kernel helpers and the trainer need. Public copies of a task's data that ship
  inside installed packages (scikit-learn's digits) are masked.
- ``local``: plain processes of the engine's user, in their own session, with
  the secrets scrubbed from their environment and rlimits. Not isolated: code
  in the sandbox can read what the user can read (see docs/sandbox.md).

Limits (both backends): a cgroup where the machine allows one (memory counting
shared memory, pids), else rlimits; ``RLIMIT_FSIZE`` bounds one file to the
work directory's limit, which the engine also checks while a call runs.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

SANDBOX_UID = 65534
SANDBOX_GID = 65534
#: Where a run's public task data appears, relative to its working directory.
DATA_DIR_NAME = ".agentdeck_data"
#: The engine modules code in the sandbox may import (helpers, trainer, metrics).
KERNEL_MODULES = (
    "__init__.py",
    "sandbox/__init__.py",
    "sandbox/helpers.py",
    "trainer.py",
    "training",
    "metrics.py",
    "events.py",
)
#: /etc entries a Python/torch process needs (the rest of /etc stays invisible).
ETC_FILES = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "nsswitch.conf",
    "mime.types",
    "alternatives",
    "fonts",
)

BackendName = Literal["bwrap", "local"]


@dataclass(frozen=True)
class Isolation:
    """What one sandbox may use and reach (the same for every backend)."""

    memory_mb: int | None = None
    pids: int = 512
    tmp_mb: int = 1024
    shm_mb: int = 256
    work_mb: int = 4096
    network: bool = False
    #: Host directory of the public task data (read-only at work/.agentdeck_data).
    public_dir: Path | None = None
    #: Files and directories that must not be readable inside (data sources).
    hidden: tuple[Path, ...] = ()
    #: Directories to keep out of sight even when under a mounted tree (log dir, run).
    private: tuple[Path, ...] = ()


@dataclass
class Launch:
    """A command to start inside the sandbox."""

    argv: list[str]
    cwd: Path
    env: dict[str, str]
    #: Host directories the command must be able to write (the kernel's sockets).
    rw: list[Path] = field(default_factory=list)


class Backend(ABC):
    name: BackendName
    #: True when code in the sandbox cannot reach the engine, the log or the network.
    isolated: bool

    @abstractmethod
    def command(self, launch: Launch, iso: Isolation) -> list[str]:
        """The host command line that runs ``launch`` in this backend."""

    def inside_paths(self, work: Path) -> tuple[Path, Path]:
        """(HOME, TMPDIR) as the sandbox sees them."""
        return work.parent / "home", work.parent / "tmp"

    def exit_code(self, returncode: int | None) -> int | None:
        """The sandboxed process's own exit status from the host process's."""
        return returncode

    def describe(self) -> str:
        return self.name


class LocalBackend(Backend):
    name: BackendName = "local"
    isolated = False

    def command(self, launch: Launch, iso: Isolation) -> list[str]:
        return list(launch.argv)

    def describe(self) -> str:
        return "local (NOT isolated: code in the sandbox runs as you and can read your files)"


class BwrapBackend(Backend):
    name: BackendName = "bwrap"
    isolated = True

    def __init__(self, bwrap: str = "bwrap", python: str = sys.executable) -> None:
        self.bwrap = bwrap
        self.python = python

    def inside_paths(self, work: Path) -> tuple[Path, Path]:
        return Path("/tmp/home"), Path("/tmp")

    def exit_code(self, returncode: int | None) -> int | None:
        # bwrap reports a child killed by signal N as 128 + N
        if returncode is not None and 128 < returncode < 128 + 65:
            return -(returncode - 128)
        return returncode

    def command(self, launch: Launch, iso: Isolation) -> list[str]:
        a: list[str] = [self.bwrap, "--unshare-all"]
        if iso.network:
            a.append("--share-net")
        a += [
            "--uid",
            str(SANDBOX_UID),
            "--gid",
            str(SANDBOX_GID),
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
            "--hostname",
            "sandbox",
        ]
        # the system, read-only
        for d in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            p = Path(d)
            if p.is_symlink():
                a += ["--symlink", os.readlink(p), d]
            elif p.is_dir():
                a += ["--ro-bind", d, d]
        for name in ETC_FILES:
            p = Path("/etc") / name
            if p.exists():
                a += ["--ro-bind", str(p), str(p)]
        a += ["--proc", "/proc", "--dev", "/dev"]
        for dev in _gpu_devices():
            a += ["--dev-bind", dev, dev]
        a += ["--size", str(iso.shm_mb << 20), "--tmpfs", "/dev/shm"]
        a += ["--size", str(iso.tmp_mb << 20), "--tmpfs", "/tmp", "--dir", "/tmp/home"]
        # the Python environment, read-only
        roots = python_roots(self.python)
        for r in roots:
            a += ["--ro-bind", r, r]
        # agentdeck itself: only what the kernel helpers and the trainer need
        engine_dir = Path(__file__).resolve().parents[1]
        a += ["--tmpfs", str(engine_dir)]
        for rel in KERNEL_MODULES:
            p = engine_dir / rel
            if p.exists():
                a += ["--ro-bind", str(p), str(p)]
        for pkg in ("tasks", "tui"):
            other = engine_dir.parent / pkg
            if _under_any(other, roots):
                a += ["--tmpfs", str(other)]
        # private places that happen to lie under a mounted tree stay invisible
        for p in iso.private:
            if _under_any(p, roots):
                a += ["--tmpfs", str(p)]
        # the run: work/ read-write, the public data read-only inside it
        a += ["--bind", str(launch.cwd), str(launch.cwd)]
        if iso.public_dir is not None:
            a += ["--ro-bind", str(iso.public_dir), str(launch.cwd / DATA_DIR_NAME)]
        for rw in launch.rw:
            a += ["--bind", str(rw), str(rw)]
        # data sources that ship inside installed packages: masked
        for h in iso.hidden:
            if not _under_any(h, roots):
                continue
            if h.is_dir():
                a += ["--tmpfs", str(h)]
            elif h.exists():
                a += ["--ro-bind", "/dev/null", str(h)]
        for k, v in (("HOME", "/tmp/home"), ("TMPDIR", "/tmp")):
            a += ["--setenv", k, v]
        a += ["--chdir", str(launch.cwd), "--", *launch.argv]
        return a

    def describe(self) -> str:
        return f"bwrap ({bwrap_version(self.bwrap) or 'bubblewrap'}; uid {SANDBOX_UID}, no network)"


def _under_any(p: Path, roots: list[str]) -> bool:
    s = str(p)
    return any(s == r or s.startswith(r.rstrip("/") + "/") for r in roots)


def _gpu_devices() -> list[str]:
    out = []
    for pattern in ("nvidia*", "nvidia-caps", "dri", "kfd"):
        out += [str(p) for p in Path("/dev").glob(pattern)]
    return sorted(out)


@functools.lru_cache(maxsize=8)
def python_roots(python: str) -> list[str]:
    """The directories an interpreter imports from (prefixes and sys.path), collapsed
    to their topmost members, so they can be mounted read-only."""
    code = (
        "import sys, json, sysconfig; print(json.dumps([sys.prefix, sys.base_prefix, "
        "sys.exec_prefix] + [p for p in sys.path if p]))"
    )
    try:
        out = subprocess.run(
            [python, "-I", "-c", code], capture_output=True, text=True, timeout=60, check=True
        ).stdout
        paths = json.loads(out)
    except (OSError, subprocess.SubprocessError, ValueError):
        paths = [sys.prefix, sys.base_prefix]
    # the interpreter binary may be a symlink into another tree (pyenv, conda)
    paths.append(str(Path(python).resolve().parent.parent))
    # site-packages added by .pth files of the environment (the interpreter above ran -I,
    # which skips user site; the environment's own .pth paths are in sys.path)
    full = subprocess.run(
        [python, "-c", "import sys, json; print(json.dumps(sys.path))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    with contextlib.suppress(ValueError):
        paths += [p for p in json.loads(full.stdout) if p]
    real = sorted({str(Path(p).resolve()) for p in paths if p and Path(p).exists()})
    top: list[str] = []
    for p in real:
        if p == "/" or any(p == t or p.startswith(t.rstrip("/") + "/") for t in top):
            continue
        if p.startswith(("/usr/", "/bin/", "/lib")) and Path(p).is_relative_to("/usr"):
            continue  # under /usr, mounted already
        top.append(p)
    return [p for p in top if not _is_system(p)]


def _is_system(p: str) -> bool:
    return p == "/usr" or p.startswith("/usr/")


@functools.lru_cache(maxsize=4)
def bwrap_version(bwrap: str = "bwrap") -> str | None:
    path = shutil.which(bwrap)
    if path is None:
        return None
    try:
        return (
            subprocess.run(
                [path, "--version"], capture_output=True, text=True, timeout=10
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        return None


@functools.lru_cache(maxsize=4)
def bwrap_problem(bwrap: str = "bwrap") -> str | None:
    """Why bwrap cannot isolate a sandbox here (None: it can)."""
    path = shutil.which(bwrap)
    if path is None:
        return "bubblewrap (bwrap) is not installed"
    with tempfile.TemporaryDirectory(prefix="agentdeck-probe-") as tmp:
        backend = BwrapBackend(path)
        launch = Launch(argv=["/bin/true"], cwd=Path(tmp), env={})
        cmd = backend.command(launch, Isolation())
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as e:
            return f"bwrap could not be run: {e}"
        if r.returncode != 0:
            why = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}"
            return f"bwrap cannot create a sandbox here: {why}"
    return None


def install_hint() -> str:
    """The command that installs bubblewrap on this system."""
    os_release = ""
    with contextlib.suppress(OSError):
        os_release = Path("/etc/os-release").read_text().lower()
    if sys.platform == "darwin":
        return (
            "macOS has no bubblewrap: agentdeck runs the sandbox unisolated there (use a "
            "Linux machine or VM to isolate runs)"
        )
    if any(k in os_release for k in ("fedora", "rhel", "centos", "rocky", "alma")):
        return "sudo dnf install bubblewrap"
    if "arch" in os_release:
        return "sudo pacman -S bubblewrap"
    if "suse" in os_release:
        return "sudo zypper install bubblewrap"
    if "alpine" in os_release:
        return "sudo apk add bubblewrap"
    return "sudo apt-get install bubblewrap"


class SandboxUnavailable(Exception):
    """``--sandbox bwrap`` was asked for and cannot work here."""


def choose(name: str = "auto", *, python: str = sys.executable) -> tuple[Backend, str | None]:
    """The backend for ``--sandbox name`` and, for ``auto`` falling back to ``local``,
    the warning every run must carry. Raises ``SandboxUnavailable`` for ``bwrap``."""
    if name == "local":
        return LocalBackend(), (
            "--sandbox local: this run is NOT isolated; code in the sandbox "
            "runs as you and can read your files and the network"
        )
    if name not in ("auto", "bwrap"):
        raise ValueError(f"--sandbox {name}: expected auto, bwrap or local")
    problem = bwrap_problem()
    if problem is None:
        return BwrapBackend(shutil.which("bwrap") or "bwrap", python), None
    if name == "bwrap":
        raise SandboxUnavailable(
            f"{problem}; install it with `{install_hint()}`, or run with "
            "--sandbox local (not isolated)"
        )
    return LocalBackend(), (
        f"this run is NOT isolated ({problem}); install bubblewrap with "
        f"`{install_hint()}` to isolate runs"
    )


__all__ = [
    "DATA_DIR_NAME",
    "SANDBOX_GID",
    "SANDBOX_UID",
    "Backend",
    "BwrapBackend",
    "Isolation",
    "Launch",
    "LocalBackend",
    "SandboxUnavailable",
    "bwrap_problem",
    "bwrap_version",
    "choose",
    "install_hint",
    "python_roots",
]
