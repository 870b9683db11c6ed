"""Turning user arrays into checked tensors on the training device."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class DataError(ValueError):
    """Training data with the wrong shape, type or values (the message says which)."""


def as_features(X: Any, what: str = "X") -> torch.Tensor:
    """``X`` as a float32 tensor (CPU unless it already is a tensor elsewhere).

    Accepts NumPy arrays, torch tensors and nested lists; at least 2-D,
    ``[n, ...]``. NaN or infinite values are refused.
    """
    if isinstance(X, torch.Tensor):
        t = X.detach()
        if not t.is_floating_point() or t.dtype != torch.float32:
            t = t.float()
    else:
        try:
            arr = np.asarray(X)
        except Exception as exc:  # noqa: BLE001 - anything np.asarray rejects is the caller's data
            raise DataError(f"{what} could not be read as an array: {exc}") from None
        if arr.dtype == object or not (
            np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_
        ):
            raise DataError(f"{what} must hold numbers, got dtype {arr.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    if t.dim() < 2:
        raise DataError(
            f"{what} must have one row per sample ([n, features...]), got shape {tuple(t.shape)}; "
            "reshape a single feature with X.reshape(-1, 1)"
        )
    if t.shape[0] == 0:
        raise DataError(f"{what} is empty (0 rows)")
    if not torch.isfinite(t).all():
        bad = int((~torch.isfinite(t)).any(dim=tuple(range(1, t.dim()))).sum())
        raise DataError(f"{what} has NaN or infinite values in {bad} row(s); clean or impute them")
    return t


def as_labels(y: Any, n: int, what: str = "y") -> torch.Tensor:
    """``y`` as an int64 tensor of shape [n] with non-negative class indices."""
    arr = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if arr.ndim != 1:
        raise DataError(f"{what} must be 1-D (one class index per sample), got shape {arr.shape}")
    if arr.shape[0] != n:
        raise DataError(f"{what} has {arr.shape[0]} labels but X has {n} rows; they must match")
    if not np.issubdtype(arr.dtype, np.integer):
        if (
            np.issubdtype(arr.dtype, np.floating)
            and np.all(np.isfinite(arr))
            and np.all(arr == np.round(arr))
        ):
            arr = arr.astype(np.int64)
        else:
            raise DataError(f"{what} must hold integer class indices, got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise DataError(f"{what} has negative class indices (min {arr.min()}); use 0..k-1")
    return torch.from_numpy(arr.astype(np.int64, copy=False))


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy to ``device`` (pinned and non-blocking for CUDA); no copy when already there."""
    if t.device == device:
        return t
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def stratified_holdout(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, held-out), stratified by class when every class has 2+ samples."""
    from sklearn.model_selection import train_test_split

    n = len(y)
    n_hold = max(1, int(round(fraction * n)))
    if n_hold >= n:
        raise DataError(
            f"val_fraction={fraction} leaves no training data from {n} samples; lower it"
        )
    idx = np.arange(n)
    counts = np.bincount(y)
    classes = int((counts > 0).sum())
    stratify = y if counts[counts > 0].min() >= 2 and n_hold >= classes else None
    tr, ho = train_test_split(idx, test_size=n_hold, random_state=seed, stratify=stratify)
    return np.sort(tr), np.sort(ho)
