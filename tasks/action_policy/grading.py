"""Checking and scoring a submitted probability matrix.

``validate_probabilities`` turns every fault an agent can make into a
``SubmissionError`` whose message says what is wrong, where, and what to do;
``score_probabilities`` computes the grade's metrics and the details the TUI
draws (confusion matrix, reliability diagram).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np

from agentdeck.engine.events import Calibration, ReliabilityBin
from agentdeck.engine.grader import SubmissionError
from agentdeck.engine.metrics import (
    accuracy,
    brier_score,
    confusion_matrix,
    expected_calibration_error,
    macro_f1,
    nll,
    per_class_precision,
    per_class_recall,
    reliability_table,
)
from agentdeck.tasks.action_policy.labels import ACTIONS

#: A row may miss 1 by this much (float32 softmax output is within ~1e-6).
ROW_SUM_TOL = 1e-3
ECE_BINS = 10
_SOFTMAX_HINT = (
    "apply a softmax to logits (scipy.special.softmax(z, axis=1) or "
    "torch.softmax(z, 1)), or divide by the row sums: p / p.sum(1, keepdims=True)"
)


def validate_probabilities(
    arr: np.ndarray, n: int, k: int, *, name: str = "probabilities"
) -> np.ndarray:
    """The submission as float64 ``[n, k]`` rows on the simplex, or ``SubmissionError``.

    Checked in order: numeric dtype, shape ``(n, k)``, NaN/inf, negative values,
    row sums within ``ROW_SUM_TOL`` of 1. Rows are then renormalised exactly.
    """
    expected = f"({n}, {k}): one row per test text, one column per action"
    if arr.dtype == np.bool_ or arr.dtype.kind not in "iuf":
        raise SubmissionError(
            f"{name} has dtype {arr.dtype}; expected floating-point probabilities of shape "
            f"{expected}. Save with np.save(name, probs.astype(np.float64))"
        )
    if arr.shape != (n, k):
        hint = ""
        if arr.shape == (k, n):
            hint = " It looks transposed: save probs.T."
        elif arr.ndim == 1 and arr.shape[0] == n:
            hint = (
                " It looks like one class label per text; submit the class probabilities "
                "(e.g. model.predict_proba(X_test) or a softmax of the logits) instead."
            )
        elif arr.ndim == 2 and arr.shape[0] == n:
            hint = f" There must be exactly {k} columns, in the action order of class_names."
        elif arr.ndim == 2 and arr.shape[1] == k:
            hint = f" There must be one row per test text ({n} rows, in the order of test_texts)."
        raise SubmissionError(f"{name} has shape {arr.shape}; expected {expected}.{hint}")
    p = arr.astype(np.float64)
    finite = np.isfinite(p)
    if not finite.all():
        r, c = map(int, np.argwhere(~finite)[0])
        what = "NaN" if np.isnan(p[r, c]) else "an infinite value"
        count = int((~finite).sum())
        raise SubmissionError(
            f"{name}[{r}, {c}] is {what} ({count} non-finite value{'s' if count > 1 else ''} "
            "in all); probabilities must be finite: check for overflow in exp() and use a "
            "stable softmax"
        )
    if (p < 0).any():
        r, c = map(int, np.argwhere(p < 0)[0])
        raise SubmissionError(
            f"{name}[{r}, {c}] = {p[r, c]:.6g} is negative ({int((p < 0).sum())} negative values "
            f"in all); probabilities are in [0, 1]: were logits saved instead? {_SOFTMAX_HINT}"
        )
    sums = p.sum(axis=1)
    off = np.abs(sums - 1.0) > ROW_SUM_TOL
    if off.any():
        r = int(off.argmax())
        raise SubmissionError(
            f"row {r} of {name} sums to {sums[r]:.6g}, not 1 ({int(off.sum())} of {n} rows are "
            f"off by more than {ROW_SUM_TOL:g}); each row must be a probability distribution "
            f"over the {k} actions: {_SOFTMAX_HINT}"
        )
    return p / sums[:, None]


# -- seed 004's downstream "agent loop" proxies ----------------------------------------


def agent_loop_proxy(
    probs: Any,
    *,
    budget: int = 30,
    targeted_class: int = ACTIONS.index("TargetedRegenerate"),
    whole_repo_class: int = ACTIONS.index("WholeRepoRegenerate"),
) -> dict[str, float]:
    """Seed 004's proxies for what a policy's probabilities cost an agent loop.

    Per item: ``regeneration_scope = P(targeted) + 2 * P(whole_repo)``,
    ``files_touched = 1 + 4.5 * regeneration_scope``, ``p_success = 0.5 + 0.5 *
    max_prob`` and ``pass@budget = 1 - (1 - p_success) ** budget`` (independent
    tries). Returned as means over items: ``regeneration_scope``,
    ``mean_files_touched``, ``pass_at_budget_expected``, plus ``budget_iters``.
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != len(ACTIONS):
        raise ValueError(f"probabilities must have shape (n, {len(ACTIONS)}), got {p.shape}")
    if budget < 1:
        raise ValueError(f"budget must be >= 1, got {budget}")
    scope = p[:, targeted_class] + 2.0 * p[:, whole_repo_class]
    files = 1.0 + 4.5 * scope
    p_success = 0.5 + 0.5 * p.max(axis=1)
    pass_at = 1.0 - (1.0 - p_success) ** budget
    return {
        "regeneration_scope": float(scope.mean()),
        "mean_files_touched": float(files.mean()),
        "pass_at_budget_expected": float(pass_at.mean()),
        "budget_iters": int(budget),
    }


def score_probabilities(
    probs: np.ndarray, y_true: np.ndarray, class_names: Sequence[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metrics, details) of valid probabilities against the true labels.

    ``metrics``: accuracy, macro_f1 (over all classes), ece (10 equal-width
    top-label bins), nll, brier (multi-class), the seed's agent-loop proxies
    (regeneration_scope, mean_files_touched, pass_at_budget_expected,
    budget_iters) and n_test. ``details``: confusion_matrix (rows = true, cols =
    predicted), reliability (the non-empty bins: bin_lo, bin_hi, confidence,
    accuracy, count), class_names, per_class_recall, per_class_precision.
    """
    k = len(class_names)
    pred = probs.argmax(axis=1)
    metrics: dict[str, Any] = {
        "accuracy": accuracy(y_true, pred),
        "macro_f1": macro_f1(y_true, pred, k),
        "ece": expected_calibration_error(probs, y_true, ECE_BINS),
        "nll": nll(probs, y_true),
        "brier": brier_score(probs, y_true),
    }
    metrics.update(agent_loop_proxy(probs))
    metrics["n_test"] = len(y_true)
    calibration = Calibration(
        class_names=list(class_names),
        confusion_matrix=confusion_matrix(y_true, pred, k).tolist(),
        reliability=[
            ReliabilityBin(**r) for r in reliability_table(probs, y_true, ECE_BINS) if r["count"]
        ],
        per_class_recall=[round(v, 6) for v in per_class_recall(y_true, pred, k).tolist()],
        per_class_precision=[round(v, 6) for v in per_class_precision(y_true, pred, k).tolist()],
        ece_bins=ECE_BINS,
    )
    # the grade's details hold the typed record's fields (Grade.calibration() reads them back)
    details: dict[str, Any] = msgspec.to_builtins(calibration)
    return metrics, details
