"""Submission validation and pass criteria.

Every fault in a submission gets a message the agent can act on (what is
wrong, what was expected, how to fix it); ``SubmissionError`` carries it and
the submit tool returns it as a tool error, so the run goes on. Metric
functions live in ``engine/metrics.py``; task graders combine the two.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agentdeck.engine.events import Check


class SubmissionError(ValueError):
    """An invalid submission. ``str()`` is sent to the agent as the tool error."""


def _save_hint(name: str, suffix: str) -> str:
    if suffix == ".npy":
        return f"np.save({name!r}, arr)"
    return f"write {name!r} from your code"


def resolve_submission(
    work_dir: Path,
    filename: Any,
    *,
    suffix: str = ".npy",
    field: str = "file",
    example: str | None = None,
) -> Path:
    """The submitted file as a path inside ``work_dir``, or ``SubmissionError``.

    Rejects empty names, absolute paths and ``..`` that leave the work
    directory, symlinks that point outside it, a wrong extension, a missing
    file and a directory. ``field`` is the submit tool's input that named the
    file and ``example`` a good value for it, so each message tells the agent
    what to send (``submission/submission.csv``, ``predictions.npy``, ...).
    """
    example = example or f"predictions{suffix}"
    if not isinstance(filename, str) or not filename.strip():
        raise SubmissionError(f"{field} must be a file name such as {example!r}, got {filename!r}")
    work = work_dir.resolve()
    raw = Path(filename)
    candidate = raw if raw.is_absolute() else work / raw
    lexical = Path(os.path.normpath(candidate))
    if lexical != work and work not in lexical.parents:
        raise SubmissionError(
            f"{filename!r} is outside the working directory; save the file under the current "
            f"directory ({_save_hint(example, suffix)}) and submit its relative path"
        )
    if not lexical.name.endswith(suffix):
        raise SubmissionError(
            f"{filename!r} is not a {suffix} file; save it as {example!r} "
            f"({_save_hint(example, suffix)})"
        )
    if not lexical.exists() and not lexical.is_symlink():
        raise SubmissionError(
            f"{filename!r} does not exist in the working directory; save it first "
            f"({_save_hint(filename, suffix)}), then submit"
        )
    real = lexical.resolve()
    if real != work and work not in real.parents:
        raise SubmissionError(
            f"{filename!r} is a link to a file outside the working directory; save a real file"
        )
    if not real.is_file():
        raise SubmissionError(f"{filename!r} is not a regular file")
    return real


def load_npy(path: Path) -> np.ndarray:
    """Load a ``.npy`` without pickles, with a clear error for anything else."""
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic != b"\x93NUMPY":
        raise SubmissionError(
            f"{path.name} is not a .npy array file (no NumPy header); write it with "
            f"np.save({path.name!r}, arr)"
        )
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise SubmissionError(
                f"{path.name} holds Python objects (pickled, dtype=object), which are not "
                "accepted; save a plain numeric array, e.g. np.save(name, np.asarray(idx, "
                "dtype=np.int64))"
            ) from e
        raise SubmissionError(f"{path.name} is not a readable .npy array: {e}") from e
    except (OSError, EOFError) as e:
        raise SubmissionError(f"{path.name} is not a readable .npy array: {e}") from e
    if not isinstance(arr, np.ndarray):
        raise SubmissionError(f"{path.name} holds several arrays (.npz?); save one array")
    return arr


def validate_indices(arr: np.ndarray, n: int, *, name: str = "predictions") -> np.ndarray:
    """A 1-D array of distinct integer indices in ``[0, n)``; returns it as int64.

    Accepts integer dtypes, and floats only when every value is a whole number
    (a common result of ``np.where`` on float masks); rejects booleans (a mask
    is not an index list), NaN, out-of-range values and duplicates.
    """
    if arr.dtype == np.bool_:
        raise SubmissionError(
            f"{name} is a boolean mask of shape {arr.shape}; submit the indices instead: "
            "np.where(mask)[0]"
        )
    if arr.ndim != 1:
        raise SubmissionError(
            f"{name} must be a 1-D array of indices, got shape {arr.shape}; "
            "flatten it (arr.ravel()) or take np.where(mask)[0]"
        )
    if arr.dtype.kind == "f":
        if np.isnan(arr).any():
            raise SubmissionError(f"{name} contains NaN at position {int(np.isnan(arr).argmax())}")
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise SubmissionError(f"{name} must hold whole-number indices; found non-integers")
        arr = arr.astype(np.int64)
    elif arr.dtype.kind not in "iu":
        raise SubmissionError(f"{name} must hold integer indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size:
        bad = (arr < 0) | (arr >= n)
        if bad.any():
            i = int(bad.argmax())
            raise SubmissionError(
                f"{name}[{i}] = {int(arr[i])} is out of range: indices must be in [0, {n - 1}] "
                f"for {n} training samples"
            )
        uniq, counts = np.unique(arr, return_counts=True)
        if (counts > 1).any():
            dups = uniq[counts > 1]
            raise SubmissionError(
                f"{name} has {len(dups)} duplicated indices (e.g. {int(dups[0])}); "
                "submit each index once: np.unique(arr)"
            )
    return arr


# -- pass criteria ---------------------------------------------------------------------

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}


@dataclass(frozen=True)
class Threshold:
    """One check: ``metric op value``, e.g. ``Threshold("f1", ">=", 0.65)``."""

    metric: str
    op: str
    value: float
    label: str | None = None

    def text(self) -> str:
        return f"{self.label or self.metric} {self.op} {self.value:g}"

    def check(self, metrics: dict[str, Any]) -> Check:
        v = metrics.get(self.metric)
        met = v is not None and _OPS[self.op](float(v), self.value)
        return Check(
            name=self.metric,
            text=self.text(),
            value=v,
            threshold=self.value,
            op=self.op,
            met=bool(met),
        )


@dataclass(frozen=True)
class AllOf:
    parts: tuple[Threshold | AnyOf | AllOf, ...]

    def text(self) -> str:
        return " AND ".join(_paren(p) for p in self.parts)


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Threshold | AnyOf | AllOf, ...]

    def text(self) -> str:
        return " OR ".join(_paren(p) for p in self.parts)


Rule = Threshold | AllOf | AnyOf


def _paren(r: Rule) -> str:
    return f"({r.text()})" if isinstance(r, AllOf | AnyOf) and len(r.parts) > 1 else r.text()


def evaluate(rule: Rule, metrics: dict[str, Any]) -> tuple[bool, list[Check]]:
    """Whether ``metrics`` pass ``rule``, and every threshold's check (for the grade event)."""
    if isinstance(rule, Threshold):
        c = rule.check(metrics)
        return bool(c.met), [c]
    results = [evaluate(p, metrics) for p in rule.parts]
    checks = [c for _, cs in results for c in cs]
    oks = [ok for ok, _ in results]
    return (all(oks) if isinstance(rule, AllOf) else any(oks)), checks


# -- CSV submissions -------------------------------------------------------------------


def _is_nan(cell: str) -> bool:
    return cell.strip().lower() in ("nan", "-nan", "+nan", "none", "null", "na", "n/a")


def read_csv_submission(
    path: Path,
    *,
    columns: tuple[str, ...] | list[str],
    ids: list[str] | tuple[str, ...],
    id_column: str = "id",
    what: str = "test",
    max_bytes: int = 64 << 20,
) -> dict[str, dict[str, str]]:
    """Read a CSV submission with a header of exactly ``columns`` (any order) and one row
    per id in ``ids``; returns ``{id: {column: cell}}``. Every fault is a
    ``SubmissionError`` the agent can act on: not UTF-8 text, empty, a wrong header,
    a row of the wrong length, an empty or NaN cell, an id twice, an unknown id, ids
    missing (how many, and some of them)."""
    import csv
    import io

    name = path.name
    size = path.stat().st_size
    if size > max_bytes:
        raise SubmissionError(f"{name} is {size:,} bytes; a submission is at most {max_bytes:,}")
    raw = path.read_bytes()
    if b"\0" in raw[:8192]:
        raise SubmissionError(f"{name} is a binary file, not CSV text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SubmissionError(f"{name} is not UTF-8 text (byte {e.start}: {e.reason})") from None
    want = ",".join(columns)
    if not text.strip():
        raise SubmissionError(
            f"{name} is empty; write the header `{want}` and one row per {what} id"
        )
    reader = csv.reader(io.StringIO(text))
    try:
        header = [c.strip() for c in next(reader)]
    except csv.Error as e:
        raise SubmissionError(f"{name}: line 1 is not CSV ({e})") from None
    if sorted(header) != sorted(columns) or len(set(header)) != len(header):
        raise SubmissionError(
            f"{name}: the header is `{','.join(header)}`; expected the columns `{want}` "
            f"(exactly these, once each)"
        )
    pos = {c: header.index(c) for c in columns}
    expected = {str(i) for i in ids}
    seen: dict[str, int] = {}
    rows: dict[str, dict[str, str]] = {}
    try:
        for cells in reader:
            line = reader.line_num
            if not cells or all(not c.strip() for c in cells):
                continue  # blank lines
            if len(cells) != len(header):
                raise SubmissionError(
                    f"{name}: line {line} has {len(cells)} values; expected {len(header)} ({want})"
                )
            row = {c: cells[pos[c]].strip() for c in columns}
            for c, v in row.items():
                if not v:
                    raise SubmissionError(f"{name}: line {line}: {c} is empty")
                if _is_nan(v):
                    raise SubmissionError(
                        f"{name}: line {line}: {c} is {v!r}; every row needs a value"
                    )
            key = row[id_column]
            if key in seen:
                raise SubmissionError(
                    f"{name}: {id_column} {key} appears twice (lines {seen[key]} and {line}); "
                    f"write one row per {what} id"
                )
            if key not in expected:
                raise SubmissionError(
                    f"{name}: line {line}: {id_column} {key!r} is not a {what} id; use the "
                    f"ids of the {what} set"
                )
            seen[key] = line
            rows[key] = row
    except csv.Error as e:
        raise SubmissionError(f"{name}: line {reader.line_num} is not valid CSV ({e})") from None
    missing = [str(i) for i in ids if str(i) not in rows]
    if missing:
        some = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise SubmissionError(
            f"{name} has {len(rows):,} rows but {len(missing):,} of the {len(expected):,} "
            f"{what} ids are missing (e.g. {some}); write one row per {what} id"
        )
    return rows
