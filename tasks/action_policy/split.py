"""The stratified train / val / test split of the pool (seed 004: 5000 / 2000 / 2000).

Deterministic for a given ``seed``: each class's rows are shuffled with
``numpy.random.default_rng(seed)``; then test, val and train (in that order)
each take their size from what remains, split over the classes in proportion
to the rows each class still has (largest remainder, ties to the lower class
index). Every split so has the pool's class mix to within one row per class.
When the sizes add up to less than the pool, the rows left over are unused.
Each split's indices are returned in pool order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class SplitSizeError(ValueError):
    """Sizes that do not fit the pool; the message suggests sizes that do."""


def suggest_sizes(pool: int) -> tuple[int, int, int]:
    """Seed 004's 5:2:2 proportions scaled to ``pool`` rows (train rounded down to tens)."""
    train = (pool * 5 // 9) // 10 * 10
    val = (pool - train) // 2
    return train, val, pool - train - val


def _allocate(remaining: np.ndarray, size: int) -> np.ndarray:
    """Split ``size`` over classes in proportion to ``remaining`` (largest remainder)."""
    total = int(remaining.sum())
    if size == total:
        return remaining.copy()
    quota = remaining * size / total
    take = np.floor(quota).astype(np.int64)
    short = size - int(take.sum())
    order = np.argsort(-(quota - take), kind="stable")  # ties: lower class index first
    take[order[:short]] += 1
    return take


def stratified_split(
    labels: Sequence[int] | np.ndarray, sizes: tuple[int, int, int], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices (into ``labels``) of train, val and test, stratified by label."""
    y = np.asarray(labels, dtype=np.int64)
    n = len(y)
    if any(s < 1 for s in sizes):
        raise SplitSizeError(f"sizes must all be at least 1, got {'/'.join(map(str, sizes))}")
    if sum(sizes) > n:
        sug = "/".join(map(str, suggest_sizes(n)))
        raise SplitSizeError(
            f"sizes {'/'.join(map(str, sizes))} need {sum(sizes):,} rows but the pool has "
            f"{n:,}; use e.g. -T sizes={sug} (train/val/test)"
        )
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    shuffled = [rng.permutation(np.flatnonzero(y == c)) for c in classes]
    remaining = np.array([len(s) for s in shuffled], dtype=np.int64)
    used = np.zeros_like(remaining)
    out: dict[str, np.ndarray] = {}
    for name, size in (("test", sizes[2]), ("val", sizes[1]), ("train", sizes[0])):
        take = _allocate(remaining, size)
        parts = [s[u : u + t] for s, u, t in zip(shuffled, used, take, strict=True)]
        out[name] = np.sort(np.concatenate(parts))
        used += take
        remaining -= take
    return out["train"], out["val"], out["test"]
