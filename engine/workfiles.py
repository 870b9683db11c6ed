"""The working directory as a repository: what changed, as ``file_change`` events, and the
tree as it was at any step of a log.

Repository tasks record every change to the run's ``work/`` directory:

- the editor tool reports its own edits (``WorkFiles.record``);
- after each ``bash`` call ``WorkFiles.scan`` walks the directory and reports what
  changed since the last look.

The scan follows text files only. It skips the read-only public data
(``.agentdeck_data``), caches and tool folders (``__pycache__``, ``.git``, virtual
environments, ...) and data or model files by extension (``*.npy``, ``*.pt``,
``*.parquet``, images, archives, ...). A file is read again only when its size or
modification time changed, and hashed (SHA-256) then. Text above ``max_text_bytes``
and binary files are recorded by size (and hash) only, with ``omitted`` saying why.
A scan looks at no more than ``max_files`` files, so a directory of a million
files cannot stall a run.

An edit is stored as a unified diff against the previous version, or as the whole
text when that is shorter (and for every new file), so ``tree_at`` can rebuild each
file at any step by replaying its events in order; each rebuilt text is checked
against the recorded SHA-256.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from agentdeck.engine.events import Event, EventError, FileChange, FileOp
from agentdeck.engine.sandbox.isolation import DATA_DIR_NAME

if TYPE_CHECKING:
    from agentdeck.engine.log import RunLog

#: Folder names never scanned (at any depth).
SKIP_DIRS = frozenset(
    {
        DATA_DIR_NAME,
        "__pycache__",
        ".git",
        ".hg",
        ".svn",
        ".ipynb_checkpoints",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".cache",
        ".venv",
        "venv",
        "env",
        "node_modules",
        "site-packages",
        "wandb",
        "mlruns",
        "lightning_logs",
    }
)
#: Extensions of data, model and binary files: never scanned.
SKIP_SUFFIXES = frozenset(
    {
        ".npy",
        ".npz",
        ".pt",
        ".pth",
        ".ckpt",
        ".bin",
        ".safetensors",
        ".onnx",
        ".pkl",
        ".pickle",
        ".joblib",
        ".h5",
        ".hdf5",
        ".parquet",
        ".feather",
        ".arrow",
        ".mat",
        ".pyc",
        ".pyo",
        ".so",
        ".o",
        ".a",
        ".zip",
        ".gz",
        ".tgz",
        ".bz2",
        ".xz",
        ".zst",
        ".7z",
        ".tar",
        ".whl",
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".bmp",
        ".tif",
        ".tiff",
        ".webp",
        ".pdf",
        ".ubyte",
        ".idx",
        ".db",
        ".sqlite",
        ".lock",
        ".log",
        ".tfevents",
    }
)
MAX_TEXT_BYTES = 128 * 1024
MAX_FILES = 2000

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_NO_NEWLINE = "\\ No newline at end of file"


class PatchError(ValueError):
    """A diff that does not apply to the text it was recorded against."""


# -- diffs ---------------------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    """Lines ending at each ``\\n`` (kept), the last one without if the text has none: other
    line breaks (``\\r``, form feeds) stay inside their line, as diff and patch see them."""
    parts = text.split("\n")
    out = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return out


def unified_diff(old: str, new: str, path: str, *, context: int = 3) -> str:
    """A unified diff from ``old`` to ``new`` (``a/path`` / ``b/path``), exact to the byte:
    a last line without a newline is marked as ``diff`` marks it."""
    a = _lines(old)
    b = _lines(new)
    name = path.replace("\n", "\\n")  # a header is one line
    out: list[str] = []
    for line in difflib.unified_diff(a, b, f"a/{name}", f"b/{name}", n=context):
        if line.endswith("\n"):
            out.append(line)
        else:  # the last line of a file without its newline
            out.append(line + "\n" + _NO_NEWLINE + "\n")
    return "".join(out)


def apply_diff(old: str, diff: str) -> str:
    """``old`` with a diff made by ``unified_diff`` applied; ``PatchError`` if it does not fit."""
    src = _lines(old)
    lines = _lines(diff)
    out: list[str] = []
    pos = 0  # next line of src to copy
    i = 0
    while i < len(lines) and not lines[i].startswith("@@"):
        i += 1  # the ---/+++ header
    while i < len(lines):
        m = _HUNK.match(lines[i])
        if m is None:
            raise PatchError(f"line {i + 1} of the diff is not a hunk header: {lines[i]!r}")
        start = int(m.group(1))
        count = 1 if m.group(2) is None else int(m.group(2))
        first = start - 1 if count else start  # "-0,0": insert at the top
        if first < pos or first > len(src):
            raise PatchError(f"hunk at line {start} is out of order or past the end")
        out.extend(src[pos:first])
        pos = first
        i += 1
        while i < len(lines) and not lines[i].startswith("@@"):
            line = lines[i]
            tag, body = line[:1], line[1:]
            if i + 1 < len(lines) and lines[i + 1].rstrip("\n") == _NO_NEWLINE:
                body = body[:-1] if body.endswith("\n") else body
                i += 1
            if tag in (" ", "-"):
                if pos >= len(src) or src[pos] != body:
                    raise PatchError(
                        f"the diff expects {body!r} at line {pos + 1}, found "
                        f"{src[pos] if pos < len(src) else 'the end'!r}"
                    )
                pos += 1
                if tag == " ":
                    out.append(body)
            elif tag == "+":
                out.append(body)
            elif line.rstrip("\n") == _NO_NEWLINE:
                pass
            else:
                raise PatchError(f"line {i + 1} of the diff: unexpected {line!r}")
            i += 1
    out.extend(src[pos:])
    return "".join(out)


def sha256_text(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the tracker -----------------------------------------------------------------------------


@dataclass
class _Known:
    size: int
    mtime_ns: int
    sha256: str | None
    #: The text as last recorded (None: not kept, binary or too large).
    text: str | None


def _skipped_name(name: str) -> bool:
    return Path(name).suffix.lower() in SKIP_SUFFIXES


class WorkFiles:
    """What the working directory holds, and what changed since the last look.

    One per sandbox. ``scan`` and ``record`` are serialised (a lock), so a bash call
    and an editor call never interleave their reports.
    """

    def __init__(
        self,
        root: Path | Callable[[], Path],
        *,
        max_text_bytes: int = MAX_TEXT_BYTES,
        max_files: int = MAX_FILES,
    ) -> None:
        self._root = root
        self.max_text_bytes = max_text_bytes
        self.max_files = max_files
        self._known: dict[str, _Known] = {}
        self._lock = threading.Lock()
        self._started = False
        #: Set when the last scan stopped at ``max_files``.
        self.truncated = False

    @property
    def root(self) -> Path:
        return self._root() if callable(self._root) else self._root

    # -- walking ----------------------------------------------------------------------------

    def _walk(self) -> Iterator[tuple[str, os.stat_result]]:
        """(relative posix path, stat) of every file the scan follows, sorted, at most
        ``max_files``."""
        root = self.root
        seen = 0
        self.truncated = False
        stack: list[tuple[Path, str]] = [(root, "")]
        while stack:
            d, rel = stack.pop()
            try:
                with os.scandir(d) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError:
                continue
            subdirs = []
            for e in entries:
                if e.name in SKIP_DIRS:
                    continue
                path = f"{rel}{e.name}"
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    subdirs.append((Path(e.path), path + "/"))
                elif stat.S_ISREG(st.st_mode) and not _skipped_name(e.name):
                    if seen >= self.max_files:
                        self.truncated = True
                        return
                    seen += 1
                    yield path, st
            stack.extend(reversed(subdirs))

    def _read(self, rel: str, st: os.stat_result) -> _Known:
        """The file's state; its text when it is UTF-8 and not over the cap."""
        size = st.st_size
        if size > self.max_text_bytes:
            return _Known(size, st.st_mtime_ns, None, None)
        try:
            with open(self.root / rel, "rb") as f:
                data = f.read(self.max_text_bytes + 1)
        except OSError:
            return _Known(size, st.st_mtime_ns, None, None)
        digest = sha256_text(data)
        if len(data) > self.max_text_bytes:
            return _Known(len(data), st.st_mtime_ns, None, None)
        text: str | None
        if b"\0" in data[:8192]:
            text = None
        else:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        return _Known(len(data), st.st_mtime_ns, digest, text)

    # -- reporting ---------------------------------------------------------------------------

    def _event(
        self,
        rel: str,
        old: _Known | None,
        new: _Known | None,
        step: int | None,
        call_id: str | None,
    ) -> FileChange | None:
        if new is None:
            return FileChange(step=step, call_id=call_id, path=rel, op="delete", size=0)
        if old is not None and old.sha256 is not None and old.sha256 == new.sha256:
            return None  # touched, not changed
        if old is not None and old.sha256 is None and new.sha256 is None and old.size == new.size:
            return None  # a big file rewritten with the same size: not followed
        op: FileOp = "create" if old is None else "edit"
        ev = FileChange(
            step=step, call_id=call_id, path=rel, op=op, size=new.size, sha256=new.sha256
        )
        if new.text is None:
            ev.omitted = "too_large" if new.sha256 is None else "binary"
            return ev
        if old is not None and old.text is not None:
            diff = unified_diff(old.text, new.text, rel)
            if len(diff) < len(new.text):
                ev.diff = diff
                return ev
        ev.content = new.text
        return ev

    def scan(
        self, emit: Callable[[Event], object], *, step: int | None, call_id: str | None = None
    ) -> list[FileChange]:
        """Look at the directory and emit a ``file_change`` for each file created, changed
        or deleted since the last look; returns them. The first look reports the
        starting repository (``step`` None)."""
        with self._lock:
            return self._scan(emit, step, call_id)

    def baseline(self, emit: Callable[[Event], object]) -> list[FileChange]:
        """The first look (the starting repository, ``step`` None); later calls do nothing."""
        with self._lock:
            return [] if self._started else self._scan(emit, None, None)

    def _scan(
        self, emit: Callable[[Event], object], step: int | None, call_id: str | None
    ) -> list[FileChange]:
        first = not self._started
        self._started = True
        if first:
            step = call_id = None
        current: dict[str, os.stat_result] = dict(self._walk())
        events: list[FileChange] = []
        for rel, st in current.items():
            old = self._known.get(rel)
            if old is not None and old.size == st.st_size and old.mtime_ns == st.st_mtime_ns:
                continue
            new = self._read(rel, st)
            ev = self._event(rel, old, new, step, call_id)
            self._known[rel] = new
            if ev is not None:
                events.append(ev)
        if not self.truncated:
            for rel in sorted(set(self._known) - set(current)):
                events.append(FileChange(step=step, call_id=call_id, path=rel, op="delete"))
                del self._known[rel]
        for ev in events:
            emit(ev)
        return events

    def record(
        self, rel: str, emit: Callable[[Event], object], *, step: int, call_id: str | None
    ) -> FileChange | None:
        """Report one file the caller just wrote or removed (the editor), without a scan
        (the first call takes the starting repository first). Paths the scan does not
        follow are not reported."""
        with self._lock:
            if not self._started:
                self._scan(emit, None, None)
            if not _followed(rel):
                return None
            try:
                st = (self.root / rel).stat()
            except OSError:
                new = None
            else:
                new = self._read(rel, st) if stat.S_ISREG(st.st_mode) else None
            old = self._known.get(rel)
            if new is None and old is None:
                return None
            ev = self._event(rel, old, new, step, call_id)
            if new is None:
                self._known.pop(rel, None)
            else:
                self._known[rel] = new
            if ev is not None:
                emit(ev)
            return ev


def _followed(rel: str) -> bool:
    """Whether the scan follows this path (so the editor's report of it is kept)."""
    parts = PurePosixPath(rel).parts
    return not any(p in SKIP_DIRS for p in parts[:-1]) and not _skipped_name(parts[-1])


# -- the tree at a step ----------------------------------------------------------------------


@dataclass
class FileState:
    """One file as a log knows it at some step."""

    path: str
    size: int = 0
    sha256: str | None = None
    #: The text (None: not kept: ``omitted`` says why, or the log could not rebuild it).
    text: str | None = None
    omitted: str | None = None
    #: The step of its last change (None: there from the start).
    changed_step: int | None = None
    #: A diff that did not apply or a rebuilt text whose hash differs: what went wrong.
    problem: str | None = None


@dataclass
class Tree:
    """The working directory at a step: each file's state, and what that step changed."""

    step: int | None
    files: dict[str, FileState] = field(default_factory=dict)
    #: The step's own changes, in order (deleted files appear here, not in ``files``).
    changes: list[FileChange] = field(default_factory=list)

    def paths(self) -> list[str]:
        return sorted(self.files)


def apply_change(files: dict[str, FileState], ev: FileChange) -> None:
    """Fold one event into ``files``."""
    if ev.op == "delete":
        files.pop(ev.path, None)
        return
    prev = files.get(ev.path)
    st = FileState(ev.path, ev.size, ev.sha256, omitted=ev.omitted, changed_step=ev.step)
    if ev.content is not None:
        st.text = ev.content
    elif ev.diff is not None:
        if prev is None or prev.text is None:
            st.problem = "a diff without the earlier version it applies to"
        else:
            try:
                st.text = apply_diff(prev.text, ev.diff)
            except PatchError as e:
                st.problem = f"the recorded diff does not apply: {e}"
    if (
        st.text is not None
        and ev.sha256 is not None
        and sha256_text(st.text.encode("utf-8")) != ev.sha256
    ):
        st.problem = "the rebuilt text does not match the recorded SHA-256"
    files[ev.path] = st


def file_changes(log: RunLog) -> Iterator[tuple[int, FileChange]]:
    """(line index, event) of every ``file_change`` of the log, in order (only those lines
    are parsed; unreadable ones are skipped and noted in ``log.warnings``)."""
    for idx, etype in enumerate(log.line_types()):
        if etype != "file_change":
            continue
        try:
            ev = log.event_at(idx)
        except EventError as e:
            log.warnings.append(str(e))
            continue
        if isinstance(ev, FileChange):
            yield idx, ev


def tree_at(changes: Iterable[FileChange], step: int | None) -> Tree:
    """The tree after ``step`` (None: the last state) from the changes in log order. A
    change with ``step`` None (the starting repository) counts as before step 1."""
    tree = Tree(step)
    files: dict[str, FileState] = {}
    for ev in changes:
        s = ev.step
        if step is not None and s is not None and s > step:
            break
        apply_change(files, ev)
        if step is not None and s == step:
            tree.changes.append(ev)
    tree.files = files
    return tree


def log_tree(log: RunLog, step: int | None = None) -> Tree:
    """The working directory of a logged run after ``step`` (None: the last step)."""
    return tree_at((ev for _, ev in file_changes(log)), step)


def write_tree(tree: Tree, dest: Path) -> tuple[int, list[str]]:
    """Write the tree's files under ``dest``; returns (files written, paths left out with
    why). Paths that would leave ``dest`` are refused."""
    dest = dest.resolve()
    written = 0
    left_out: list[str] = []
    for rel in tree.paths():
        st = tree.files[rel]
        target = (dest / rel).resolve()
        if dest not in target.parents:
            left_out.append(f"{rel} (outside the destination)")
            continue
        if st.text is None:
            why = {"binary": "binary", "too_large": f"larger than the log keeps ({st.size:,} B)"}
            left_out.append(f"{rel} ({st.problem or why.get(st.omitted or '', 'not kept')})")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(st.text, encoding="utf-8", newline="")
        written += 1
    return written, left_out


__all__ = [
    "MAX_FILES",
    "MAX_TEXT_BYTES",
    "SKIP_DIRS",
    "SKIP_SUFFIXES",
    "FileState",
    "PatchError",
    "Tree",
    "WorkFiles",
    "apply_change",
    "apply_diff",
    "file_changes",
    "log_tree",
    "tree_at",
    "unified_diff",
    "write_tree",
]
