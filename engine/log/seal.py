"""Sealed logs: an HMAC over every byte of a run's ``events.jsonl``.

The log writer feeds each line it writes to an HMAC-SHA256 keyed with a secret
kept in the user's config directory (``~/.config/agentdeck/seal.key``, made on
first use, mode 0600; ``$AGENTDECK_SEAL_KEY`` names another file). When the log
is closed, the digest and the byte count go to a sidecar next to it,
``events.jsonl.seal``; ``run_start.host.seal_key`` names the key (by its id),
so a sealed log whose seal is missing or wrong reads as tampered.

Verification (``verify``) reads the file once: ``sealed`` when the digest
matches, ``tampered`` when it does not (an edited, truncated or extended log, or
a missing seal on a log that announced one), ``unsealed`` for logs written
without a seal (older versions, imported markdown), ``foreign`` when the seal
was made with a key this machine does not have, ``open`` while the run is still
being written. The sandbox never sees the key (under ``--sandbox bwrap`` the
config directory is not mounted), so agent code cannot forge a seal.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

SealStatus = Literal["sealed", "tampered", "unsealed", "foreign", "open"]
SUFFIX = ".seal"
ALG = "hmac-sha256"
ENV_KEY = "AGENTDECK_SEAL_KEY"


def key_path() -> Path:
    explicit = os.environ.get(ENV_KEY, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME", "").strip()
    root = Path(base).expanduser() if base else Path.home() / ".config"
    return root / "agentdeck" / "seal.key"


def load_key(*, create: bool = True) -> bytes | None:
    """The user's seal key (made on first use when ``create``), or None."""
    p = key_path()
    with contextlib.suppress(FileNotFoundError):
        data = p.read_bytes()
        if len(data) >= 16:
            return data
    if not create:
        return None
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(32)
    tmp = p.with_suffix(f".tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    try:
        os.link(tmp, p)  # another process may have made one first: theirs wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return p.read_bytes()


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"agentdeck seal key id\0" + key).hexdigest()[:16]


def seal_path(log: Path) -> Path:
    return log.with_name(log.name + SUFFIX)


class Sealer:
    """Accumulates the HMAC of the bytes a writer appends; ``finish`` writes the seal."""

    def __init__(self, key: bytes) -> None:
        self.key_id = key_id(key)
        self._mac = hmac.new(key, digestmod=hashlib.sha256)
        self.bytes = 0

    @classmethod
    def for_user(cls) -> Sealer | None:
        """A sealer with the user's key, or None where no key can be made (read-only home)."""
        try:
            key = load_key()
        except OSError:
            return None
        return cls(key) if key else None

    def update(self, data: bytes) -> None:
        self._mac.update(data)
        self.bytes += len(data)

    def finish(self, log: Path) -> None:
        record = {
            "alg": ALG,
            "key_id": self.key_id,
            "bytes": self.bytes,
            "mac": self._mac.hexdigest(),
        }
        p = seal_path(log)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(json.dumps(record) + "\n", encoding="utf-8")
        os.replace(tmp, p)


@dataclass(frozen=True)
class Verdict:
    status: SealStatus
    detail: str = ""

    @property
    def label(self) -> str:
        return {
            "sealed": "✓ sealed",
            "tampered": "✗ tampered",
            "unsealed": "unsealed",
            "foreign": "? sealed elsewhere",
            "open": "… open",
        }[self.status]


def verify(log: Path, *, announced: str | None, finished: bool) -> Verdict:
    """The seal status of the log at ``log``.

    ``announced`` is ``run_start.host.seal_key`` (the key id the writer said it
    would seal with, or None); ``finished`` whether the log has a ``run_end``.
    """
    p = seal_path(log)
    try:
        record = json.loads(p.read_text(encoding="utf-8"))
        if not isinstance(record, dict):
            raise ValueError("not an object")
    except FileNotFoundError:
        if announced is None:
            return Verdict("unsealed", "written without a seal")
        if not finished:
            return Verdict("open", "the run is still being written (or died)")
        with contextlib.suppress(OSError):
            if time.time() - log.stat().st_mtime < 10:  # the writer seals as it closes
                return Verdict("open", "the run just ended; its seal is being written")
        return Verdict("tampered", "the log announced a seal and has none")
    except (OSError, ValueError) as e:
        return Verdict("tampered", f"the seal file is unreadable: {e}")
    if announced is not None and record.get("key_id") != announced:
        return Verdict("tampered", "the seal's key is not the one the log announced")
    key = load_key(create=False)
    if key is None or key_id(key) != record.get("key_id"):
        return Verdict("foreign", "sealed with a key this machine does not have")
    try:
        size = log.stat().st_size
    except OSError as e:
        return Verdict("tampered", f"cannot read the log: {e}")
    n = record.get("bytes")
    if not isinstance(n, int) or n != size:
        return Verdict("tampered", f"the log has {size:,} bytes; {n!r} were sealed")
    mac = hmac.new(key, digestmod=hashlib.sha256)
    with open(log, "rb") as f:
        while chunk := f.read(1 << 20):
            mac.update(chunk)
    if not hmac.compare_digest(mac.hexdigest(), str(record.get("mac", ""))):
        return Verdict("tampered", "the log's bytes do not match its seal")
    return Verdict("sealed", f"key {record['key_id']}")


__all__ = [
    "SUFFIX",
    "SealStatus",
    "Sealer",
    "Verdict",
    "key_id",
    "key_path",
    "load_key",
    "seal_path",
    "verify",
]
