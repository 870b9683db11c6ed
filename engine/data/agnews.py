"""AG News (Zhang, Zhao & LeCun 2015): 4-class news topic classification.

The official files are ``train.csv`` (120,000 rows) and ``test.csv`` (7,600
rows): no header, three quoted fields per row (class index 1-4, title,
description), internal quotes doubled. Inside the text a backslash marks a
line break of the source (``second\\team``, ``\\\\`` for a paragraph) or
escapes a character (``\\$``), and HTML entities survive either whole
(``&lt;``) or with the ``&`` turned into a space (`` #39;``, `` quot;``).

``TextDataset.titles`` / ``descriptions`` keep the fields exactly as stored;
``texts`` is ``title + " " + description`` after ``clean_text`` (entities
decoded, line-break backslashes to spaces, escapes dropped, runs of spaces
collapsed). Labels are the class index minus one (0..3).
"""

from __future__ import annotations

import csv
import html
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agentdeck.engine.data import fetch
from agentdeck.engine.data.download import file_digests
from agentdeck.engine.data.errors import CsvFormatError, DatasetError, DatasetUnavailable
from agentdeck.engine.data.paths import ProgressFn
from agentdeck.engine.data.paths import data_dir as resolve_data_dir
from agentdeck.engine.data.sources import SOURCES

SPLITS = ("train", "test")
_ENTITY = re.compile(r"[& ](#\d{1,5}|quot|amp|lt|gt|hellip|nbsp|apos);")
_ESCAPE = re.compile(r"\\(?=[^\w\s\\])")
_BREAK = re.compile(r"\\+")
_SPACES = re.compile(r"\s+")


@dataclass
class TextDataset:
    name: str
    split: str
    #: ``int64 [n]`` in ``0..len(class_names)-1``.
    labels: np.ndarray
    titles: list[str]
    descriptions: list[str]
    #: ``title + " " + description``, cleaned (see ``clean_text``).
    texts: list[str]
    class_names: list[str]
    #: The CSV file read.
    source: str = ""
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def summary(self) -> dict[str, Any]:
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        return {
            "name": self.name,
            "split": self.split,
            "size": len(self),
            "class_names": list(self.class_names),
            "class_counts": [int(c) for c in counts],
            "source": self.source,
            "notes": list(self.notes),
        }


def clean_text(text: str) -> str:
    """AG News text as a reader would see it: ``"Mylan #39;s \\$4 billion\\deal"``
    becomes ``"Mylan's $4 billion deal"``."""
    text = _ENTITY.sub(lambda m: html.unescape(f"&{m.group(1)};"), text)
    text = _ESCAPE.sub("", text)
    text = _BREAK.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def load_ag_news(
    source: str | os.PathLike[str] | None = None,
    *,
    split: str = "train",
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    progress: ProgressFn | None = None,
) -> TextDataset:
    """Load one split of AG News.

    ``source``: a CSV file, a folder holding ``train.csv``/``test.csv``, or
    None for ``<data_dir>/ag_news/<split>.csv`` (downloaded and md5-verified
    there when missing and ``download`` is true). Raises ``DatasetUnavailable``
    with the remaining options when the file is not there, ``CsvFormatError``
    (``file:line: what was expected``) for a malformed row.
    """
    if split not in SPLITS:
        raise DatasetError(f"AG News has the splits {' and '.join(SPLITS)}, not {split!r}")
    ag = SOURCES["ag_news"]
    notes: list[str] = []
    if source is not None and str(source).strip():
        path = _user_csv(Path(os.path.expandvars(os.path.expanduser(str(source)))), split)
    else:
        root = resolve_data_dir(data_dir)
        options = _options(root)
        found: Path | None = next(
            (
                d / f"{split}.csv"
                for d in fetch.search_dirs(ag, root)
                if (d / f"{split}.csv").is_file()
            ),
            None,
        )
        if found is None:
            if not download:
                raise fetch.offline_unavailable(ag, [f"{split}.csv"], root, options)
            path = fetch.fetch_file(
                ag, ag.file(f"{split}.csv"), root, progress=progress, options=options
            )
            notes.append(f"{path.name} downloaded and md5-verified into {path.parent}")
        else:
            path = found
    labels, titles, descriptions, parse_notes = read_ag_news_csv(path)
    notes += parse_notes
    if path.name in (f.name for f in ag.files):
        official = ag.file(path.name).md5
        if file_digests(path)["md5"] != official:
            notes.append(f"{path} differs from the official AG News {path.name} (md5 {official})")
    expected = ag.counts.get(split)
    if expected is not None and len(labels) != expected:
        notes.append(
            f"{path} has {len(labels):,} rows; the official {split} split has {expected:,}"
        )
    class_names, names_note = _class_names(path.parent, list(ag.class_names))
    if names_note:
        notes.append(names_note)
    return TextDataset(
        name="ag_news",
        split=split,
        labels=labels,
        titles=titles,
        descriptions=descriptions,
        texts=[clean_text(f"{t} {d}") for t, d in zip(titles, descriptions, strict=True)],
        class_names=class_names,
        source=str(path),
        notes=notes,
    )


def read_ag_news_csv(
    path: str | os.PathLike[str],
) -> tuple[np.ndarray, list[str], list[str], list[str]]:
    """``(labels 0..3, titles, descriptions, notes)`` from an AG News CSV file.

    A header row (``Class Index,Title,Description``, as some copies have) is
    skipped with a note; blank lines are skipped; anything else that is not
    three fields with a class index 1-4 raises ``CsvFormatError``.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DatasetUnavailable(f"cannot read {path}: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise CsvFormatError(
            f"{path}:{line}: not UTF-8 text ({e.reason} at byte {e.start})"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    labels: list[int] = []
    titles: list[str] = []
    descriptions: list[str] = []
    notes: list[str] = []
    row_start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            raise CsvFormatError(
                f"{path}:{row_start}: {e} (a row is three double-quoted fields: "
                '"class index","title","description", with quotes inside doubled)'
            ) from None
        line, row_start = row_start, reader.line_num + 1
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != 3:
            raise CsvFormatError(
                f"{path}:{line}: expected 3 fields (class index 1-4, title, description), "
                f"found {len(row)}: {_preview(row)}"
            )
        index = row[0].strip()
        if index not in ("1", "2", "3", "4"):
            if not labels and line == 1 and "class" in index.lower():
                notes.append(f"{path}:1: header row {_preview(row)} skipped")
                continue
            raise CsvFormatError(
                f"{path}:{line}: the class index (first field) must be 1, 2, 3 or 4, found {index!r}"
            )
        labels.append(int(index) - 1)
        titles.append(row[1])
        descriptions.append(row[2])
    if not labels:
        raise CsvFormatError(
            f'{path}: no data rows (expected lines like "3","title","description")'
        )
    return np.asarray(labels, dtype=np.int64), titles, descriptions, notes


def _user_csv(path: Path, split: str) -> Path:
    options = [
        "give the path of an AG News CSV file, or of a folder holding train.csv and test.csv",
        f"leave the source unset to use {fetch.search_dirs(SOURCES['ag_news'], resolve_data_dir())[0]} "
        "(downloaded there when the network allows)",
    ]
    if path.is_file():
        return path
    if path.is_dir():
        for candidate in (path / f"{split}.csv", path / "ag_news_csv" / f"{split}.csv"):
            if candidate.is_file():
                return candidate
        present = sorted(p.name for p in path.glob("*.csv"))
        raise DatasetUnavailable(
            f"{path} has no {split}.csv (CSV files there: {', '.join(present) or 'none'})", options
        )
    raise DatasetUnavailable(f"{path} does not exist", options)


def _options(root: Path) -> list[str]:
    return [
        f"put the official AG News files in {root / 'ag_news'}: train.csv, test.csv",
        fetch.data_dir_option("ag_news"),
        "point the task at a CSV file, or a folder holding train.csv/test.csv, as its data source",
        fetch.predownload_option("ag_news"),
    ]


def _class_names(folder: Path, default: list[str]) -> tuple[list[str], str | None]:
    classes_txt = folder / "classes.txt"
    if not classes_txt.is_file():
        return default, None
    names = [
        ln.strip() for ln in classes_txt.read_text(encoding="utf-8").splitlines() if ln.strip()
    ]
    if len(names) != len(default):
        return (
            default,
            f"{classes_txt} lists {len(names)} classes, not 4; using {', '.join(default)}",
        )
    return names, None


def _preview(row: list[str], width: int = 80) -> str:
    text = ",".join(f'"{f}"' for f in row)
    return text if len(text) <= width else text[: width - 3] + "..."
