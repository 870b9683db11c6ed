"""Metric functions used by graders (pure numpy; tested against scikit-learn).

Classification (confusion matrix, accuracy, binary and per-class precision/recall/F1,
macro- and micro-F1, an F1 threshold search), probabilistic quality (NLL, multi-class
Brier, top-label ECE and its reliability table, temperature scaling) and seed 004's
agent-loop proxies. Invalid input raises ``ValueError`` saying what was wrong.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike


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


# -- shared input checks ---------------------------------------------------------------


def _labels(y: Any, name: str) -> np.ndarray:
    """A 1-D int64 label vector; ``ValueError`` for anything else (with the shape seen)."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class labels, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: metrics need at least one sample")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold whole-number class labels")
    elif arr.dtype.kind not in "iub":
        raise ValueError(f"{name} must hold integer class labels, got dtype {arr.dtype}")
    out = arr.astype(np.int64)
    if (out < 0).any():
        raise ValueError(f"{name} holds a negative label ({int(out.min())}); labels are 0..k-1")
    return out


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t, p = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels but y_pred has {p.size}")
    return t, p


def _num_classes(num_classes: int | None, *arrays: np.ndarray) -> int:
    seen = max(int(a.max()) for a in arrays) + 1
    if num_classes is None:
        return seen
    if seen > num_classes:
        raise ValueError(f"a label is {seen - 1}, outside 0..{num_classes - 1}")
    return int(num_classes)


def _probs(probs: Any, y_true: Any | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] < 2:
        raise ValueError(
            f"probabilities must be an [n, k] array with n >= 1, k >= 2; got shape {p.shape}"
        )
    if y_true is None:
        return p, None
    y = _labels(y_true, "y_true")
    if y.size != p.shape[0]:
        raise ValueError(
            f"y_true has {y.size} labels but there are {p.shape[0]} rows of probabilities"
        )
    if int(y.max()) >= p.shape[1]:
        raise ValueError(f"a label is {int(y.max())} but there are only {p.shape[1]} classes")
    return p, y


def _safe_div(num: ArrayLike, den: ArrayLike) -> np.ndarray:
    """num / den with 0 where den == 0 (scikit-learn's ``zero_division=0``)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


# -- classification -------------------------------------------------------------------


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int | None = None) -> np.ndarray:
    """``[k, k]`` int64 counts, rows = true class, columns = predicted class.

    ``num_classes`` fixes k (classes never seen get zero rows/columns); by default
    k = largest label + 1.
    """
    t, p = _pair(y_true, y_pred)
    k = _num_classes(num_classes, t, p)
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k).astype(np.int64)


def accuracy(y_true: Any, y_pred: Any) -> float:
    t, p = _pair(y_true, y_pred)
    return float(np.mean(t == p))


def binary_scores(y_true: Any, y_pred: Any, positive: int = 1) -> dict[str, float]:
    """Precision, recall and F1 of the class ``positive`` (0/1 labels by default).

    Undefined ratios (nothing predicted positive, no positive sample) are 0, as
    scikit-learn's ``zero_division=0``.
    """
    t, p = _pair(y_true, y_pred)
    tp = int(np.sum((p == positive) & (t == positive)))
    fp = int(np.sum((p == positive) & (t != positive)))
    fn = int(np.sum((p != positive) & (t == positive)))
    precision = float(_safe_div(tp, tp + fp))
    recall = float(_safe_div(tp, tp + fn))
    f1 = float(_safe_div(2 * tp, 2 * tp + fp + fn))
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def per_class_precision(y_true: Any, y_pred: Any, num_classes: int | None = None) -> np.ndarray:
    """Precision of each class ``[k]``; 0 for a class never predicted."""
    cm = confusion_matrix(y_true, y_pred, num_classes)
    return _safe_div(np.diag(cm), cm.sum(axis=0))


def per_class_recall(y_true: Any, y_pred: Any, num_classes: int | None = None) -> np.ndarray:
    """Recall of each class ``[k]``; 0 for a class with no true sample."""
    cm = confusion_matrix(y_true, y_pred, num_classes)
    return _safe_div(np.diag(cm), cm.sum(axis=1))


def per_class_f1(y_true: Any, y_pred: Any, num_classes: int | None = None) -> np.ndarray:
    """F1 of each class ``[k]``: 2 TP / (2 TP + FP + FN), 0 when the class is absent
    from both the truth and the predictions."""
    cm = confusion_matrix(y_true, y_pred, num_classes)
    tp = np.diag(cm)
    return _safe_div(2 * tp, cm.sum(axis=0) + cm.sum(axis=1))


def macro_f1(y_true: Any, y_pred: Any, num_classes: int | None = None) -> float:
    """Unweighted mean of the per-class F1.

    With ``num_classes`` the mean runs over all classes 0..k-1 (scikit-learn's
    ``f1_score(average="macro", labels=range(k))``), so a class that is neither
    present nor predicted counts as 0. Without it the mean runs over the labels
    that occur in ``y_true`` or ``y_pred`` (scikit-learn's default).
    """
    t, p = _pair(y_true, y_pred)
    f1 = per_class_f1(t, p, num_classes)
    if num_classes is not None:
        return float(f1.mean())
    present = np.union1d(t, p)
    return float(f1[present].mean())


def micro_f1(y_true: Any, y_pred: Any) -> float:
    """Micro-averaged F1: 2 TP / (2 TP + FP + FN) with the counts summed over classes.

    1-D integer labels (single-label multi-class): equals accuracy. 2-D 0/1
    indicator matrices ``[n, k]`` (multi-label, as in seed 003): the counts run
    over every (sample, class) cell.
    """
    t = np.asarray(y_true)
    p = np.asarray(y_pred)
    if t.ndim == 1:
        t, p = _pair(t, p)
        return float(np.mean(t == p))
    if t.shape != p.shape or t.ndim != 2 or t.size == 0:
        raise ValueError(
            f"multi-label y_true and y_pred must be [n, k] arrays of the same "
            f"shape, got {t.shape} and {p.shape}"
        )
    tb, pb = t.astype(bool), p.astype(bool)
    tp = np.sum(tb & pb)
    return float(_safe_div(2 * tp, tb.sum() + pb.sum()))


#: The grid seed 003 searches (``np.linspace(0.01, 0.99, 100)``, predict ``score > t``).
SEED_THRESHOLD_GRID = np.linspace(0.01, 0.99, 100)


def search_threshold(y_true: Any, scores: Any, thresholds: Any | None = None) -> dict[str, float]:
    """The threshold ``t`` that maximises F1 of the rule ``score > t``.

    ``y_true``/``scores``: 1-D (binary: 0/1 truth, one score per sample) or 2-D
    ``[n, k]`` (multi-label: 0/1 indicator matrix and per-class scores; the F1
    is then micro-F1, which is the binary F1 over all cells). ``thresholds``:
    the candidates, e.g. ``SEED_THRESHOLD_GRID`` as seed 003 does; None searches
    exactly (every cut between two distinct scores, and one below the lowest).
    Ties go to the lowest threshold. Returns ``{"threshold", "f1", "precision",
    "recall"}``. Cost: O((n + T) log n), no loop over thresholds in Python.
    """
    t = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    if t.shape != s.shape:
        raise ValueError(f"y_true has shape {t.shape} but scores {s.shape}; they must match")
    if t.size == 0:
        raise ValueError("y_true is empty: the threshold search needs at least one sample")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or infinite values")
    truth = t.ravel().astype(bool)
    s = s.ravel()
    order = np.argsort(s, kind="stable")
    s_sorted = s[order]
    pos_sorted = truth[order]
    n_pos = int(truth.sum())
    # positives with score <= x: prefix sums over the ascending sort
    cum_pos = np.concatenate([[0], np.cumsum(pos_sorted)])
    if thresholds is None:
        uniq = np.unique(s_sorted)
        below = np.nextafter(uniq[0], -np.inf)
        cand = np.concatenate([[below], (uniq[:-1] + uniq[1:]) / 2.0, [uniq[-1]]])
        cand = np.unique(cand)
    else:
        cand = np.unique(np.asarray(thresholds, dtype=np.float64).ravel())
        if cand.size == 0:
            raise ValueError("thresholds is empty")
    n_le = np.searchsorted(s_sorted, cand, side="right")  # samples with score <= t
    predicted = s.size - n_le
    tp = n_pos - cum_pos[n_le]
    f1 = _safe_div(2 * tp, predicted + n_pos)
    best = int(np.argmax(f1))  # first maximum = lowest threshold
    return {
        "threshold": float(cand[best]),
        "f1": float(f1[best]),
        "precision": float(_safe_div(tp[best], predicted[best])),
        "recall": float(_safe_div(tp[best], n_pos)),
    }


# -- probabilities and calibration ------------------------------------------------------


def softmax(logits: Any, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` (numerically stable)."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def log_softmax(logits: Any, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    out: np.ndarray = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return out


def nll(probs: Any, y_true: Any, eps: float = 1e-15) -> float:
    """Negative log-likelihood (log loss, natural log) of the true classes.

    The probability of the true class is clipped to ``[eps, 1]`` so a confident
    mistake costs ``-log(eps)`` (about 34.5) instead of infinity; rows are used
    as given (not renormalised).
    """
    p, y = _probs(probs, y_true)
    assert y is not None
    true_p = np.clip(p[np.arange(y.size), y], eps, 1.0)
    return float(-np.mean(np.log(true_p)))


def brier_score(probs: Any, y_true: Any) -> float:
    """Multi-class Brier score: mean over samples of sum over classes of
    ``(p_ik - 1[y_i = k])^2`` (Brier 1950), in ``[0, 2]``.

    For two classes this is twice scikit-learn's binary ``brier_score_loss``
    (which scores only the positive column); it equals scikit-learn >= 1.7's
    multi-class ``brier_score_loss``.
    """
    p, y = _probs(probs, y_true)
    assert y is not None
    onehot = np.zeros_like(p)
    onehot[np.arange(y.size), y] = 1.0
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


def _bin_index(conf: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    return idx, edges


def reliability_table(probs: Any, y_true: Any, n_bins: int = 10) -> list[dict[str, Any]]:
    """Top-label reliability diagram data, one row per bin (empty bins included).

    Bin m covers confidences ``(m/M, (m+1)/M]`` (the first also takes 0), where
    confidence is the largest probability of a row and "correct" means its
    argmax is the true class. Each row: ``bin_lo``, ``bin_hi``, ``confidence``
    (mean confidence in the bin), ``accuracy`` (fraction correct), ``count``;
    confidence and accuracy are None for an empty bin. The edges are reported
    rounded to 12 decimals (0.3, not 0.30000000000000004).
    """
    p, y = _probs(probs, y_true)
    assert y is not None
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    idx, edges = _bin_index(conf, n_bins)
    count = np.bincount(idx, minlength=n_bins)
    conf_sum = np.bincount(idx, weights=conf, minlength=n_bins)
    acc_sum = np.bincount(idx, weights=correct, minlength=n_bins)
    rows = []
    for m in range(n_bins):
        n = int(count[m])
        rows.append(
            {
                "bin_lo": round(float(edges[m]), 12),
                "bin_hi": round(float(edges[m + 1]), 12),
                "confidence": float(conf_sum[m] / n) if n else None,
                "accuracy": float(acc_sum[m] / n) if n else None,
                "count": n,
            }
        )
    return rows


def expected_calibration_error(probs: Any, y_true: Any, n_bins: int = 10) -> float:
    """Top-label ECE with ``n_bins`` equal-width bins (Guo et al. 2017):
    ``sum_m (n_m / N) * |accuracy_m - confidence_m|`` over the bins of
    ``reliability_table`` (empty bins contribute nothing)."""
    rows = reliability_table(probs, y_true, n_bins)
    total = sum(r["count"] for r in rows)
    return float(
        sum(r["count"] / total * abs(r["accuracy"] - r["confidence"]) for r in rows if r["count"])
    )


def _nll_logits(z: np.ndarray, y: np.ndarray, beta: float) -> float:
    ls = log_softmax(z * beta)
    return float(-np.mean(ls[np.arange(y.size), y]))


def fit_temperature(
    logits: Any, y_true: Any, *, bounds: tuple[float, float] = (0.05, 20.0), tol: float = 1e-6
) -> float:
    """The temperature ``T`` minimising the NLL of ``softmax(logits / T)`` on ``y_true``.

    ``logits`` may be log-probabilities (``np.log(probs)``): they differ from the
    logits by a constant per row, which softmax ignores. The NLL is convex in
    ``1/T``, so a golden-section search over ``1/T`` in ``[1/bounds[1],
    1/bounds[0]]`` finds the optimum (to ``tol``) without scipy. Dividing by a
    positive ``T`` never changes a row's argmax, so accuracy is unchanged.
    """
    lo_t, hi_t = bounds
    if not 0 < lo_t < hi_t:
        raise ValueError(f"bounds must satisfy 0 < low < high, got {bounds}")
    z, y = _probs(logits, y_true)
    assert y is not None
    if not np.all(np.isfinite(z)):
        raise ValueError(
            "logits contain NaN or infinite values (log of a zero probability? "
            "clip probabilities before taking the log)"
        )
    a, b = 1.0 / hi_t, 1.0 / lo_t
    g = (np.sqrt(5.0) - 1.0) / 2.0
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = _nll_logits(z, y, c), _nll_logits(z, y, d)
    while b - a > tol * max(1.0, abs(c)):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = _nll_logits(z, y, c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = _nll_logits(z, y, d)
    beta = (a + b) / 2.0
    return float(1.0 / beta)


def classification_summary(probs: Any, y_true: Any, *, n_bins: int = 10) -> dict[str, Any]:
    """Every metric of a probabilistic classifier at once (k = number of columns).

    ``accuracy``, ``macro_f1`` (over all k classes), ``micro_f1``, ``ece``,
    ``nll``, ``brier``, ``per_class_recall``/``per_class_precision`` (lists),
    ``confusion_matrix`` (list of lists, rows = true), ``reliability`` (all bins).
    """
    p, y = _probs(probs, y_true)
    assert y is not None
    k = p.shape[1]
    pred = p.argmax(axis=1)
    return {
        "accuracy": accuracy(y, pred),
        "macro_f1": macro_f1(y, pred, k),
        "micro_f1": micro_f1(y, pred),
        "ece": expected_calibration_error(p, y, n_bins),
        "nll": nll(p, y),
        "brier": brier_score(p, y),
        "per_class_recall": per_class_recall(y, pred, k).tolist(),
        "per_class_precision": per_class_precision(y, pred, k).tolist(),
        "confusion_matrix": confusion_matrix(y, pred, k).tolist(),
        "reliability": reliability_table(p, y, n_bins),
    }
