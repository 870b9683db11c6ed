"""Loading the images and the stratified train/validation split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from config import Config


def _scale(images: np.ndarray, pixel_max: float) -> np.ndarray:
    """uint8 [n, h, w] -> float32 [n, 1, h, w] in 0..1."""
    return (images.astype(np.float32) / pixel_max)[:, None, :, :]


def pixel_max(images: np.ndarray) -> float:
    """16 for scikit-learn's digits, 255 for the IDX sets."""
    return 16.0 if images.max() <= 16 else 255.0


def class_names(cfg: Config) -> list[str]:
    path = Path(cfg.data_dir) / "classes.txt"
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def load_train(cfg: Config) -> tuple[np.ndarray, np.ndarray, float]:
    with np.load(Path(cfg.data_dir) / "train.npz") as d:
        images, labels = d["images"], d["labels"].astype(np.int64)
    top = pixel_max(images)
    return _scale(images, top), labels, top


def load_test(cfg: Config, top: float) -> tuple[np.ndarray, np.ndarray]:
    with np.load(Path(cfg.data_dir) / "test.npz") as d:
        return _scale(d["images"], top), d["ids"].astype(np.int64)


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices): ``fraction`` of every class held out."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = max(1, int(round(fraction * len(idx))))
        val.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))
