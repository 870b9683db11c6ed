"""Seeding, metrics and timing."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(y == pred))


def macro_f1(y: np.ndarray, pred: np.ndarray, num_classes: int) -> float:
    f1s = []
    for c in range(num_classes):
        tp = np.sum((pred == c) & (y == c))
        fp = np.sum((pred == c) & (y != c))
        fn = np.sum((pred != c) & (y == c))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s))


def flips_are_harmless(names: list[str]) -> bool:
    """Mirrored clothes are still clothes; mirrored digits are not digits."""
    return any("shirt" in n.lower() or "shoe" in n.lower() or "boot" in n.lower() for n in names)


@contextmanager
def timed(what: str) -> Iterator[None]:
    t0 = time.perf_counter()
    yield
    print(f"{what}: {time.perf_counter() - t0:.1f} s", flush=True)
