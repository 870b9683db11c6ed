"""Predictions (with a horizontal-flip average where flips are harmless) and the
submission file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import nn

from agentdeck.engine.trainer import predict_proba


def predict(model: nn.Module, X: np.ndarray, *, hflip: bool) -> np.ndarray:
    """Class probabilities [n, k]."""
    probs = predict_proba(model, X)
    if hflip:
        probs = (probs + predict_proba(model, X[..., ::-1].copy())) / 2
    return probs


def write_submission(ids: np.ndarray, labels: np.ndarray, path: str) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"{int(i)},{int(c)}\n" for i, c in zip(ids, labels, strict=True))
    out.write_text("id,label\n" + rows)
    return out
