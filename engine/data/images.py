"""Image classification data sets: Fashion-MNIST, MNIST, scikit-learn's digits, any IDX folder.

``load_image_dataset(spec)`` returns an ``ImageDataset`` with a train and a
test split, images flattened to one row each:

- ``fashion-mnist`` / ``mnist``: the official IDX files, found in the data
  folder or downloaded (md5-verified) into ``<data_dir>/<name>/``;
  ``X`` is ``uint8 [n, 784]`` in 0..255.
- ``digits``: scikit-learn's 8x8 digits (bundled with scikit-learn, never
  downloads); ``X`` is ``uint8 [n, 64]`` in 0..16 as scikit-learn gives it
  (``pixel_max`` says 16), split 80/20 stratified with a fixed seed.
- ``idx:PATH``: a folder of IDX files (``train-*`` and/or ``t10k-*``). When
  one of the two splits is missing, a stratified 20 % of the other is held
  out as the test split with a fixed seed; ``notes`` says so.

``n_train`` keeps the first ``n_train`` training images (file order, which for
the official files is already shuffled), after any hold-out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agentdeck.engine.data import fetch
from agentdeck.engine.data.download import file_digests
from agentdeck.engine.data.errors import DatasetError, DatasetUnavailable, IdxFormatError
from agentdeck.engine.data.idx import IMAGE_NAMES, LABEL_NAMES, find_split, read_idx_pair
from agentdeck.engine.data.paths import ProgressFn
from agentdeck.engine.data.paths import data_dir as resolve_data_dir
from agentdeck.engine.data.sources import SOURCES, DatasetSource

#: Share of a split held out as the test split when a data set has no test split.
HOLDOUT_FRACTION = 0.2
#: Seed of that hold-out (numpy's legacy RandomState, whose stream is frozen).
HOLDOUT_SEED = 0

_ALIASES = {
    "fashion-mnist": "fashion-mnist",
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "fmnist": "fashion-mnist",
    "mnist": "mnist",
    "digits": "digits",
}
SPECS_TEXT = "fashion-mnist, mnist, digits or idx:PATH (a folder of IDX files)"


@dataclass
class ImageDataset:
    name: str
    #: ``uint8 [n, rows*cols]``: 0..255 for IDX sets, 0..16 for digits (see ``pixel_max``).
    X_train: np.ndarray
    #: ``int64 [n]`` in ``0..len(class_names)-1``.
    y_train: np.ndarray
    X_test: np.ndarray | None
    y_test: np.ndarray | None
    class_names: list[str]
    #: ``(rows, cols)``: (28, 28) for the IDX sets, (8, 8) for digits.
    image_shape: tuple[int, int]
    #: The largest pixel value the format allows (divide by it to get 0..1).
    pixel_max: int = 255
    #: Where the data came from (folder, or "sklearn.datasets.load_digits").
    source: str = ""
    #: Facts a user should know: hold-outs, subsets, partial or unverified files.
    notes: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def summary(self) -> dict[str, Any]:
        """A JSON-able description (for a tool output or the log)."""
        return {
            "name": self.name,
            "train_size": int(self.y_train.shape[0]),
            "test_size": 0 if self.y_test is None else int(self.y_test.shape[0]),
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "image_shape": list(self.image_shape),
            "pixel_max": self.pixel_max,
            "source": self.source,
            "notes": list(self.notes),
        }


def load_image_dataset(
    spec: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    n_train: int | None = None,
    progress: ProgressFn | None = None,
) -> ImageDataset:
    """Load ``spec`` (``fashion-mnist``, ``mnist``, ``digits`` or ``idx:PATH``).

    ``data_dir``: see ``agentdeck.engine.data.paths.data_dir``. ``download=False`` never
    touches the network. Raises ``DatasetUnavailable`` (with the options that
    remain) when the data is not here and cannot be fetched, ``DatasetError``
    when it is here but damaged, or when ``spec``/``n_train`` make no sense.
    """
    text = (spec or "").strip()
    if text.lower().startswith("idx:"):
        ds = _load_idx_folder(text[4:].strip())
    else:
        key = _ALIASES.get(text.lower())
        if key is None:
            raise DatasetError(f"unknown image data set {spec!r}; use {SPECS_TEXT}")
        if key == "digits":
            ds = _load_digits()
        else:
            ds = _load_official(SOURCES[key], resolve_data_dir(data_dir), download, progress)
    return _take_first(ds, n_train)


# ------------------------------------------------------------------ official IDX sets


def _image_options(source: DatasetSource, root: Path) -> list[str]:
    names = ", ".join(f.name for f in source.files)
    return [
        f"put the official files in {root / source.name}: {names} (gzipped or not)",
        fetch.data_dir_option(source.name),
        "use the small data set that needs no download: -T dataset=digits",
        "load IDX files from any folder: -T dataset=idx:/path/to/folder "
        "(train-* files, t10k-* optional)",
        fetch.predownload_option(source.name),
    ]


def _load_official(
    source: DatasetSource, root: Path, download: bool, progress: ProgressFn | None
) -> ImageDataset:
    options = _image_options(source, root)
    notes: list[str] = []
    splits: dict[str, tuple[Path, Path]] = {}
    missing: list[str] = []
    for prefix in ("train", "t10k"):
        found = _find_official_split(source, root, prefix)
        if found is not None:
            splits[prefix] = found
            continue
        wanted = [f for f in source.files if f.name.startswith(prefix + "-")]
        if not download:
            missing += [f.name for f in wanted]
            continue
        paths = [
            fetch.fetch_file(source, f, root, progress=progress, options=options) for f in wanted
        ]
        splits[prefix] = (paths[0], paths[1])
        notes.append(f"{prefix} files downloaded and md5-verified into {paths[0].parent}")
    if missing:
        raise fetch.offline_unavailable(source, missing, root, options)

    X_train, y_train, shape = read_idx_pair(*splits["train"])
    X_test, y_test, test_shape = read_idx_pair(*splits["t10k"])
    if test_shape != shape:
        raise IdxFormatError(
            f"{splits['t10k'][0]}: test images are {test_shape[0]}x{test_shape[1]}, "
            f"train images {shape[0]}x{shape[1]}"
        )
    for prefix, y in (("train", y_train), ("t10k", y_test)):
        _check_labels(y, len(source.class_names), splits[prefix][1])
        expected = source.counts.get(prefix)
        if expected is not None and y.shape[0] != expected:
            notes.append(
                f"{splits[prefix][0]} has {y.shape[0]:,} images; the official {source.name} "
                f"{prefix} split has {expected:,}"
            )
    for prefix in ("train", "t10k"):
        notes += _checksum_notes(source, splits[prefix])
    folders = sorted({str(p.parent) for pair in splits.values() for p in pair})
    return ImageDataset(
        name=source.name,
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
        class_names=list(source.class_names),
        image_shape=shape,
        source=", ".join(folders),
        notes=notes,
    )


def _find_official_split(
    source: DatasetSource, root: Path, prefix: str
) -> tuple[Path, Path] | None:
    for folder in fetch.search_dirs(source, root):
        images, labels = find_split(folder, prefix)
        if images is not None and labels is not None:
            return images, labels
        if (images is None) != (labels is None):
            have = images or labels
            lacking = LABEL_NAMES if labels is None else IMAGE_NAMES
            raise IdxFormatError(
                f"{folder}: found {have.name if have else '?'} but not "
                f"{' / '.join(n.format(p=prefix) for n in lacking)}; put both files of the "
                f"{prefix} split there, or remove the lone one"
            )
    # The data folder itself: file names are the same for MNIST and Fashion-MNIST,
    # so files there count only when they are the official, md5-verified ones.
    images = root / f"{prefix}-images-idx3-ubyte.gz"
    labels = root / f"{prefix}-labels-idx1-ubyte.gz"
    if (
        images.is_file()
        and labels.is_file()
        and all(file_digests(p)["md5"] == source.file(p.name).md5 for p in (images, labels))
    ):
        return images, labels
    return None


def _checksum_notes(source: DatasetSource, pair: tuple[Path, Path]) -> list[str]:
    notes = []
    for path in pair:
        try:
            official = source.file(path.name).md5
        except KeyError:
            notes.append(
                f"{path} is not gzipped, so it cannot be checked against the published md5"
            )
            continue
        if file_digests(path)["md5"] != official:
            notes.append(f"{path} differs from the official file (md5 {official})")
    return notes


# ------------------------------------------------------------------ idx:PATH


def _load_idx_folder(path_text: str) -> ImageDataset:
    options = [
        "give a folder holding train-images-idx3-ubyte(.gz) and train-labels-idx1-ubyte(.gz), "
        "and optionally the t10k-* pair: -T dataset=idx:/path/to/folder",
        "use the official files instead: -T dataset=fashion-mnist or -T dataset=mnist",
        "use the small data set that needs no download: -T dataset=digits",
    ]
    if not path_text:
        raise DatasetUnavailable("idx: needs a folder, e.g. idx:/data/fashion-mnist", options)
    folder = Path(os.path.expandvars(os.path.expanduser(path_text))).absolute()
    if not folder.exists():
        raise DatasetUnavailable(f"idx:{path_text}: {folder} does not exist", options)
    if not folder.is_dir():
        raise DatasetUnavailable(
            f"idx:{path_text}: {folder} is a file; idx: wants the folder that holds the IDX files",
            options,
        )
    pairs: dict[str, tuple[Path, Path]] = {}
    for prefix in ("train", "t10k"):
        images, labels = find_split(folder, prefix)
        if images is not None and labels is not None:
            pairs[prefix] = (images, labels)
        elif images is not None or labels is not None:
            have = images or labels
            lacking = LABEL_NAMES if labels is None else IMAGE_NAMES
            raise IdxFormatError(
                f"{folder}: found {have.name if have else '?'} but not "
                f"{' / '.join(n.format(p=prefix) for n in lacking)}"
            )
    if not pairs:
        expected = ", ".join(n.format(p="train") for n in (IMAGE_NAMES[0], LABEL_NAMES[0]))
        raise DatasetUnavailable(
            f"idx:{path_text}: {folder} holds no IDX split (looked for {expected}, "
            "the same unzipped, and the t10k-* pair)",
            options,
        )
    notes: list[str] = []
    loaded = {p: read_idx_pair(*pair) for p, pair in pairs.items()}
    shapes = {s for _, _, s in loaded.values()}
    if len(shapes) > 1:
        raise IdxFormatError(
            f"{folder}: the train and t10k images differ in size: {sorted(shapes)}"
        )
    shape = shapes.pop()
    all_labels = np.concatenate([y for _, y, _ in loaded.values()])
    if all_labels.size and all_labels.min() < 0:
        raise IdxFormatError(f"{folder}: negative labels ({int(all_labels.min())})")
    class_names, names_note = _class_names_for(
        folder, int(all_labels.max()) + 1 if all_labels.size else 0
    )
    notes.append(names_note)
    for prefix, (_, y, _) in loaded.items():
        _check_labels(y, len(class_names), pairs[prefix][1])

    if len(loaded) == 2:
        X_train, y_train, _ = loaded["train"]
        X_test, y_test, _ = loaded["t10k"]
    else:
        (only,) = loaded
        X, y, _ = loaded[only]
        train_idx, test_idx = stratified_holdout(y, HOLDOUT_FRACTION, HOLDOUT_SEED)
        X_train, y_train, X_test, y_test = X[train_idx], y[train_idx], X[test_idx], y[test_idx]
        notes.append(
            f"{folder} has only the {only} split ({y.shape[0]:,} images): a stratified "
            f"{HOLDOUT_FRACTION:.0%} ({test_idx.size:,}) was held out as the test split "
            f"(seed {HOLDOUT_SEED}), leaving {train_idx.size:,} for training"
        )
    return ImageDataset(
        name=f"idx:{folder.name}",
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
        class_names=class_names,
        image_shape=shape,
        source=str(folder),
        notes=notes,
    )


def _class_names_for(folder: Path, n_labels: int) -> tuple[list[str], str]:
    classes_txt = folder / "classes.txt"
    if classes_txt.is_file():
        names = [
            ln.strip() for ln in classes_txt.read_text(encoding="utf-8").splitlines() if ln.strip()
        ]
        if len(names) < n_labels:
            raise DatasetError(
                f"{classes_txt}: {len(names)} class names, but the labels go up to {n_labels - 1}"
            )
        return names, f"class names from {classes_txt}"
    lowered = folder.name.lower()
    key = "fashion-mnist" if "fashion" in lowered else "mnist" if "mnist" in lowered else None
    if key is not None and n_labels <= len(SOURCES[key].class_names):
        return (
            list(SOURCES[key].class_names),
            f"class names of {key} (from the folder name; a classes.txt there overrides)",
        )
    names = [str(i) for i in range(max(n_labels, 1))]
    return (
        names,
        "class names are the label numbers (add a classes.txt, one name a line, to name them)",
    )


# ------------------------------------------------------------------ digits


def _load_digits() -> ImageDataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    X = np.asarray(bunch.data).astype(np.uint8)
    y = np.asarray(bunch.target).astype(np.int64)
    train_idx, test_idx = stratified_holdout(y, HOLDOUT_FRACTION, HOLDOUT_SEED)
    return ImageDataset(
        name="digits",
        X_train=X[train_idx],
        y_train=y[train_idx],
        X_test=X[test_idx],
        y_test=y[test_idx],
        class_names=[str(int(t)) for t in bunch.target_names],
        image_shape=(8, 8),
        pixel_max=16,
        source="sklearn.datasets.load_digits",
        notes=[
            f"scikit-learn's 8x8 digits ({y.size:,} images, pixels 0..16); a stratified "
            f"{HOLDOUT_FRACTION:.0%} ({test_idx.size:,}) is the test split (seed {HOLDOUT_SEED})"
        ],
    )


# ------------------------------------------------------------------ helpers


def stratified_holdout(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, test)``, both in ascending order: ``round(fraction * count)``
    of each class go to test (at least one, and never all, for a class with two or more)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be between 0 and 1, got {fraction}")
    rs = np.random.RandomState(seed)
    test_parts = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        k = int(round(idx.size * fraction))
        k = min(max(k, 1), idx.size - 1) if idx.size >= 2 else 0
        test_parts.append(rs.permutation(idx)[:k])
    test = np.sort(np.concatenate(test_parts)) if test_parts else np.empty(0, dtype=np.int64)
    train = np.setdiff1d(np.arange(y.shape[0]), test, assume_unique=True)
    return train, test


def _check_labels(y: np.ndarray, n_classes: int, path: Path) -> None:
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        bad = int(np.flatnonzero((y < 0) | (y >= n_classes))[0])
        raise IdxFormatError(
            f"{path}: label {int(y[bad])} at record {bad} is outside 0..{n_classes - 1}"
        )


def _take_first(ds: ImageDataset, n_train: int | None) -> ImageDataset:
    if n_train is None:
        return ds
    if isinstance(n_train, bool) or not isinstance(n_train, (int, np.integer)) or n_train < 1:
        raise DatasetError(f"n_train must be a positive whole number, got {n_train!r}")
    have = ds.y_train.shape[0]
    if n_train > have:
        raise DatasetError(
            f"n_train={n_train:,} but {ds.name} has {have:,} training images; "
            f"use n_train of at most {have:,}, or leave it unset for all"
        )
    if n_train < have:
        ds.X_train = ds.X_train[:n_train].copy()
        ds.y_train = ds.y_train[:n_train].copy()
        ds.notes.append(f"n_train={n_train:,}: the first {n_train:,} of {have:,} training images")
    return ds
