"""Fetch one file over HTTP(S): resumable, verified, atomic, retried.

``download(url, dest)`` writes into ``<dest>.part``, asks the server for the
missing bytes only when a ``.part`` is already there (HTTP ``Range``; a server
that answers with the whole file instead is handled by starting over), checks
the md5/sha256 when given, and renames the file into place only when it
verifies, so ``dest`` is either absent or complete. Transient failures
(timeouts, refused or reset connections, HTTP 408/429/5xx, a body cut short)
are retried with a growing pause, resuming where the last try stopped; other
failures (404, no DNS, a checksum mismatch) raise ``DownloadError`` at once.
Processes that download into the same folder take turns (an advisory lock on
``<folder>/.agentdeck-download.lock`` where the OS has ``fcntl``).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import os
import re
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

from agentdeck.engine.data.errors import DownloadError
from agentdeck.engine.data.paths import ProgressFn

#: Pause before retry k (1-based) is ``RETRY_BACKOFF_S * 2 ** (k - 1)`` seconds.
RETRY_BACKOFF_S = 1.0
CHUNK_BYTES = 1 << 16
#: Bytes between progress calls when the server gives no length.
PROGRESS_UNKNOWN_STEP = 1 << 20
USER_AGENT = "agentdeck-datasets/0.1 (+python urllib)"
LOCK_NAME = ".agentdeck-download.lock"

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)", re.IGNORECASE)


class _Transient(Exception):
    """A failure worth another try."""


def download(
    url: str,
    dest: str | os.PathLike[str],
    *,
    md5: str | None = None,
    sha256: str | None = None,
    progress: ProgressFn | None = None,
    timeout_s: float = 30,
    retries: int = 3,
    what: str | None = None,
) -> Path:
    """Download ``url`` to ``dest`` and return ``dest``.

    An existing ``dest`` that verifies (or any existing ``dest`` when no
    checksum is given) is returned without touching the network. An existing
    ``dest`` that does not verify is fetched again and replaced only by a copy
    that does. ``progress(what, bytes_done, total_or_None)`` is called as
    bytes arrive (``what`` defaults to the file name). ``timeout_s`` bounds
    the connect and each read; ``retries`` is how many times a transient
    failure is tried again. Raises ``DownloadError`` (a ``DatasetUnavailable``)
    naming the URL and what went wrong.
    """
    dest = Path(dest)
    label = what or dest.name
    if dest.is_file() and verify_file(dest, md5=md5, sha256=sha256) is None:
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(url, f"cannot create {dest.parent}: {e.strerror or e}") from e
    part = dest.with_name(dest.name + ".part")
    with _folder_lock(dest.parent):
        # Another process may have finished this file while we waited.
        if dest.is_file() and verify_file(dest, md5=md5, sha256=sha256) is None:
            return dest
        resumed = part.is_file() and part.stat().st_size > 0
        _fetch_with_retries(url, part, label, progress, timeout_s, retries)
        problem = verify_file(part, md5=md5, sha256=sha256)
        if problem is not None and resumed:
            # The old .part may belong to another version of the file: once more, from zero.
            part.unlink(missing_ok=True)
            _fetch_with_retries(url, part, label, progress, timeout_s, retries)
            problem = verify_file(part, md5=md5, sha256=sha256)
        if problem is not None:
            part.unlink(missing_ok=True)
            raise DownloadError(url, f"{problem}; the downloaded file was deleted")
        os.replace(part, dest)
    return dest


def verify_file(path: Path, *, md5: str | None = None, sha256: str | None = None) -> str | None:
    """None when ``path`` matches the given checksums, else what differs."""
    wanted = {k: v.lower() for k, v in (("md5", md5), ("sha256", sha256)) if v}
    if not wanted:
        return None
    got = file_digests(path, tuple(wanted))
    for algo, value in wanted.items():
        if got[algo] != value:
            return f"{algo} of {path.name} is {got[algo]}, expected {value}"
    return None


def file_digests(path: Path, algorithms: tuple[str, ...] = ("md5",)) -> dict[str, str]:
    hashes = {a: hashlib.new(a) for a in algorithms}
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            for h in hashes.values():
                h.update(block)
    return {a: h.hexdigest() for a, h in hashes.items()}


def _fetch_with_retries(
    url: str, part: Path, label: str, progress: ProgressFn | None, timeout_s: float, retries: int
) -> None:
    attempt = 0
    while True:
        try:
            _fetch_into(url, part, label, progress, timeout_s)
            return
        except _Transient as e:
            attempt += 1
            if attempt > max(0, retries):
                tries = f"{attempt} attempt{'s' if attempt > 1 else ''}"
                raise DownloadError(url, f"{e} ({tries})", transient=True) from None
            time.sleep(RETRY_BACKOFF_S * 2 ** (attempt - 1))


def _fetch_into(
    url: str, part: Path, label: str, progress: ProgressFn | None, timeout_s: float
) -> None:
    """One try: append the missing bytes to ``part`` (or rewrite it)."""
    start = part.stat().st_size if part.is_file() else 0
    req = urllib.request.Request(
        url, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    )
    if start:
        req.add_header("Range", f"bytes={start}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout_s)
    except urllib.error.HTTPError as e:
        with contextlib.closing(e):
            if e.code == 416 and start:
                m = _UNSATISFIED_RANGE.search(e.headers.get("Content-Range", "") or "")
                if m and int(m.group(1)) == start:
                    return  # the .part already holds the whole file
                part.unlink(missing_ok=True)
                raise _Transient("the server refused to resume; starting over") from None
            text = f"HTTP {e.code} {e.reason}"
            if e.code in (408, 425, 429) or e.code >= 500:
                raise _Transient(text) from None
            raise DownloadError(url, text) from None
    except urllib.error.URLError as e:
        _raise_for_os_error(url, e.reason)
    except (OSError, http.client.HTTPException) as e:
        _raise_for_os_error(url, e)

    with contextlib.closing(resp):
        if start and resp.status == 206:
            m = _CONTENT_RANGE.search(resp.headers.get("Content-Range", "") or "")
            if not m or int(m.group(1)) != start:
                part.unlink(missing_ok=True)
                raise _Transient(
                    f"the server sent an unexpected range ({resp.headers.get('Content-Range')!r}); "
                    "starting over"
                )
            total = None if m.group(3) == "*" else int(m.group(3))
            mode, done = "ab", start
        else:
            # A fresh download, or a server that ignored Range and sent everything.
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            mode, done = "wb", 0
        if progress is not None:
            progress(label, done, total)
        # About 100 progress calls a file at most: consumers redraw on each.
        step = max(CHUNK_BYTES, (total or 0) // 100) if total else PROGRESS_UNKNOWN_STEP
        reported = done
        try:
            with part.open(mode) as f:
                while chunk := resp.read(CHUNK_BYTES):
                    f.write(chunk)
                    done += len(chunk)
                    if progress is not None and (done - reported >= step or done == total):
                        progress(label, done, total)
                        reported = done
                if progress is not None and done != reported:
                    progress(label, done, total)
                f.flush()
                os.fsync(f.fileno())
        except http.client.IncompleteRead:
            raise _Transient(f"connection closed early after {done} bytes") from None
        except TimeoutError as e:
            raise _Transient(
                f"timed out after {timeout_s:g} s without data ({done} bytes so far)"
            ) from e
        except (ConnectionError, http.client.HTTPException) as e:
            raise _Transient(f"connection lost after {done} bytes: {e}") from e
    if total is not None and done < total:
        raise _Transient(f"connection closed after {done} of {total} bytes")
    if total is not None and done > total:
        part.unlink(missing_ok=True)
        raise DownloadError(url, f"the server sent {done} bytes but announced {total}")


def _raise_for_os_error(url: str, err: object) -> NoReturn:
    """Turn a connection-level error into _Transient or DownloadError."""
    if isinstance(err, (TimeoutError, socket.timeout)):
        raise _Transient("timed out") from None
    if isinstance(err, ConnectionRefusedError):
        raise _Transient("connection refused (is the server up?)") from None
    if isinstance(err, (ConnectionError, http.client.HTTPException)):
        raise _Transient(f"connection failed: {err}") from None
    if isinstance(err, socket.gaierror):
        raise DownloadError(url, f"cannot resolve the host name (no network?): {err}") from None
    if isinstance(err, ssl.SSLError):
        raise DownloadError(url, f"TLS error: {err}") from None
    if isinstance(err, OSError) and err.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        raise DownloadError(url, f"network unreachable: {err.strerror}") from None
    if isinstance(err, OSError):
        raise _Transient(f"{type(err).__name__}: {err}") from None
    raise DownloadError(url, str(err)) from None


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive advisory lock on the folder (no-op where fcntl is missing)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield  # read-only or odd file system: go on without the lock
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
