"""Resource limits for a sandbox through cgroups, where the machine lets us make one.

A cgroup bounds what rlimits cannot: memory (``memory.max`` / v1
``memory.limit_in_bytes`` count shared memory and tmpfs pages, which
``RLIMIT_DATA`` misses) and the number of processes of the whole sandbox
(``pids.max``; ``RLIMIT_NPROC`` counts every process of the user, and root
ignores it). Tried in order:

1. cgroup v2: a child of this process's own cgroup, when its controllers
   (``memory``, ``pids``) are delegated to us;
2. cgroup v1: ``<memory mount>/<our path>/agentdeck-<id>`` and the same
   under the ``pids`` mount (writable as root, or where delegated);
3. none: the caller falls back to rlimits and says so in the log.

Processes join through a tiny ``sh`` prefix that writes its own pid into
``cgroup.procs`` and then execs the sandbox, so nothing it starts is ever
outside the group.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")


@dataclass
class Cgroup:
    """One sandbox's cgroup (v2: one directory; v1: one per controller hierarchy)."""

    version: int
    #: The directories processes join (each gets the pid in ``cgroup.procs``).
    dirs: list[Path]
    memory_mb: int | None = None
    pids: int | None = None
    limits: dict[str, str] = field(default_factory=dict)

    @property
    def procs_files(self) -> list[Path]:
        return [d / "cgroup.procs" for d in self.dirs]

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` started inside this cgroup (a shell joins, then execs it)."""
        n = len(self.dirs)
        script = " ".join(f'echo $$ > "${i + 1}" &&' for i in range(n)) + f' shift {n} && exec "$@"'
        return ["/bin/sh", "-c", script, "sh", *map(str, self.procs_files), *argv]

    def pids_in(self) -> list[int]:
        out: set[int] = set()
        for f in self.procs_files:
            with contextlib.suppress(OSError, ValueError):
                out.update(int(x) for x in f.read_text().split())
        return sorted(out)

    def kill(self, spare: frozenset[int] = frozenset()) -> None:
        """Kill every process in the group (``cgroup.kill`` where v2 has it) but those in
        ``spare`` (another process tree of the same sandbox that must live on)."""
        if self.version == 2 and not spare:
            kill_file = self.dirs[0] / "cgroup.kill"
            if kill_file.exists():
                with contextlib.suppress(OSError):
                    kill_file.write_text("1")
        for _ in range(50):
            pids = [p for p in self.pids_in() if p not in spare]
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)

    def memory_events(self) -> dict[str, int]:
        """OOM counters (v2 ``memory.events``; v1 ``memory.failcnt``), for messages."""
        for d in self.dirs:
            f = d / "memory.events"
            if f.exists():
                with contextlib.suppress(OSError, ValueError):
                    return {
                        k: int(v) for k, v in (line.split() for line in f.read_text().splitlines())
                    }
            f = d / "memory.failcnt"
            if f.exists():
                with contextlib.suppress(OSError, ValueError):
                    return {"failcnt": int(f.read_text())}
        return {}

    def remove(self) -> None:
        self.kill()
        for d in self.dirs:
            for _ in range(20):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)


def _own_path(controller: str | None) -> str | None:
    """This process's cgroup path in the v2 tree (None) or a v1 controller's."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controller is None and parts[0] == "0" and controllers == "":
            return path
        if controller is not None and controller in controllers.split(","):
            return path
    return None


def _write(path: Path, text: str) -> bool:
    try:
        path.write_text(text)
        return True
    except OSError:
        return False


def _try_v2(name: str, memory_mb: int | None, pids: int | None) -> Cgroup | None:
    own = _own_path(None)
    if own is None or not (ROOT / "cgroup.controllers").exists():
        unified = ROOT / "unified"
        if own is None or not (unified / "cgroup.controllers").exists():
            return None
        base = unified / own.lstrip("/")
    else:
        base = ROOT / own.lstrip("/")
    try:
        enabled = (base / "cgroup.subtree_control").read_text().split()
    except OSError:
        return None
    want = [c for c, v in (("memory", memory_mb), ("pids", pids)) if v]
    missing = [c for c in want if c not in enabled]
    if missing and not _write(base / "cgroup.subtree_control", " ".join(f"+{c}" for c in missing)):
        return None
    d = base / name
    try:
        d.mkdir()
    except OSError:
        return None
    cg = Cgroup(2, [d], memory_mb, pids)
    ok = True
    if memory_mb:
        ok &= _write(d / "memory.max", str(memory_mb << 20))
        _write(d / "memory.swap.max", "0")
        cg.limits["memory"] = f"memory.max {memory_mb} MiB (cgroup v2)"
    if pids:
        ok &= _write(d / "pids.max", str(pids))
        cg.limits["pids"] = f"pids.max {pids} (cgroup v2)"
    if not ok or not os.access(d / "cgroup.procs", os.W_OK):
        cg.remove()
        return None
    return cg


def _try_v1(name: str, memory_mb: int | None, pids: int | None) -> Cgroup | None:
    dirs: list[Path] = []
    cg = Cgroup(1, dirs, memory_mb, pids)
    for controller, value in (("memory", memory_mb), ("pids", pids)):
        if not value:
            continue
        mount = ROOT / controller
        own = _own_path(controller)
        if own is None or not mount.is_dir():
            cg.remove()
            return None
        d = mount / own.lstrip("/") / name
        try:
            d.mkdir()
        except OSError:
            cg.remove()
            return None
        dirs.append(d)
        if controller == "memory":
            ok = _write(d / "memory.limit_in_bytes", str(value << 20))
            _write(d / "memory.memsw.limit_in_bytes", str(value << 20))
            cg.limits["memory"] = f"memory.limit_in_bytes {value} MiB (cgroup v1)"
        else:
            ok = _write(d / "pids.max", str(value))
            cg.limits["pids"] = f"pids.max {value} (cgroup v1)"
        if not ok or not os.access(d / "cgroup.procs", os.W_OK):
            cg.remove()
            return None
    return cg if dirs else None


def create(memory_mb: int | None, pids: int | None, *, tag: str = "") -> Cgroup | None:
    """A new cgroup with these limits, or None where this machine does not allow one."""
    if not memory_mb and not pids:
        return None
    name = f"agentdeck-{tag + '-' if tag else ''}{os.getpid()}-{secrets.token_hex(3)}"
    return _try_v2(name, memory_mb, pids) or _try_v1(name, memory_mb, pids)


__all__ = ["Cgroup", "create"]
