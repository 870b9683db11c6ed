"""Run directories: ``<log_dir>/<run_id>/`` with ``events.jsonl``, ``artifacts/`` and
the sandbox's working directory ``work/``."""

from __future__ import annotations

import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

EVENTS_FILE = "events.jsonl"


def new_run_id(task: str, when: float | None = None) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when or time.time()))
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", task).strip("-") or "run"
    return f"{stamp}-{safe}-{secrets.token_hex(2)}"


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def events(self) -> Path:
        return self.path / EVENTS_FILE

    @property
    def artifacts(self) -> Path:
        return self.path / "artifacts"

    @property
    def work(self) -> Path:
        return self.path / "work"

    @property
    def public(self) -> Path:
        """The public task data the engine prepares for the sandbox (read-only there)."""
        return self.path / "sandbox" / "public"

    @classmethod
    def create(cls, log_dir: str | os.PathLike[str], run_id: str) -> RunDir:
        path = Path(log_dir) / run_id
        if path.exists():
            raise FileExistsError(f"run directory already exists: {path}")
        for sub in ("artifacts", "work"):
            (path / sub).mkdir(parents=True)
        return cls(path)
