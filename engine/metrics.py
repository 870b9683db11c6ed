"""Metric functions used by graders (pure numpy; tested against scikit-learn)."""

from __future__ import annotations

from typing import Any

import numpy as np


def detection_scores(predicted: np.ndarray, actual: np.ndarray) -> dict[str, Any]:
    """Precision, recall and F1 of a set of flagged indices against the true set.

    Both arguments are 1-D arrays of distinct indices. An empty prediction has
    precision 0 (nothing correct was flagged), as does an empty truth's recall.
    """
    pred = np.unique(np.asarray(predicted, dtype=np.int64))
    true = np.unique(np.asarray(actual, dtype=np.int64))
    tp = int(np.intersect1d(pred, true, assume_unique=True).size)
    fp = int(pred.size - tp)
    fn = int(true.size - tp)
    precision = tp / pred.size if pred.size else 0.0
    recall = tp / true.size if true.size else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "n_predicted": int(pred.size),
        "n_actual": int(true.size),
    }
