"""The noisy-labels reference detector (tasks/noisy_labels/reference.py) on real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agentdeck.engine.trainer import pick_device
from agentdeck.tasks.noisy_labels.reference import (
    detect_noisy,
    detection_code,
    estimate_transition,
    flag_by_expected_f1,
)

from helpers import SMALL_DETECTOR

#: The task's confusable pairs for digits (tasks/noisy_labels/task.py PAIRS).
DIGIT_PAIRS = [(4, 9), (3, 5), (1, 7), (2, 8), (0, 6)]


def symmetric_noise(y: np.ndarray, rate: float, seed: int, k: int = 10):
    rng = np.random.default_rng(seed)
    n = len(y)
    idx = rng.choice(n, int(rate * n), replace=False)
    y_noisy = y.copy()
    y_noisy[idx] = (y[idx] + rng.integers(1, k, len(idx))) % k
    return y_noisy, np.sort(idx)


def pair_noise(y: np.ndarray, rate: float, seed: int, pairs: list[tuple[int, int]]):
    partner = np.arange(10)
    for a, b in pairs:
        partner[a], partner[b] = b, a
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(y), int(rate * len(y)), replace=False)
    y_noisy = y.copy()
    y_noisy[idx] = partner[y[idx]]
    return y_noisy, np.sort(idx)


def scores(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    tp = len(np.intersect1d(pred, true))
    p = tp / max(1, len(pred))
    r = tp / max(1, len(true))
    return {"f1": 2 * p * r / max(1e-12, p + r), "precision": p, "recall": r}


def passes(s: dict[str, float]) -> bool:
    """The task's rule: F1 >= 0.65 AND (precision >= 0.55 OR recall >= 0.55)."""
    return s["f1"] >= 0.65 and (s["precision"] >= 0.55 or s["recall"] >= 0.55)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data.astype(np.uint8), d.target.astype(np.int64)


# -- the parts -----------------------------------------------------------------------------


def _calibrated_classifier(n: int, k: int, seed: int):
    """Class probabilities and true labels drawn from them (a calibrated classifier)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 4, size=(n, k))
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    y_true = (probs.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return probs, y_true, rng


def test_estimate_transition_recovers_symmetric_noise() -> None:
    n, k, rate = 4000, 5, 0.2
    probs, y_true, rng = _calibrated_classifier(n, k, 0)
    flip = rng.random(n) < rate
    given = y_true.copy()
    given[flip] = (y_true[flip] + rng.integers(1, k, flip.sum())) % k
    T, post = estimate_transition(probs, given)
    assert np.diag(T).mean() == pytest.approx(1 - flip.mean(), abs=0.02)
    q = 1 - post[np.arange(n), given]
    assert q.mean() == pytest.approx(flip.mean(), abs=0.02)
    s = scores(flag_by_expected_f1(q), np.where(flip)[0])
    assert s["f1"] > 0.75, s


def test_estimate_transition_learns_which_pairs_are_confused() -> None:
    n, k = 6000, 4
    partner = np.array([1, 0, 3, 2])
    probs, y_true, rng = _calibrated_classifier(n, k, 1)
    flip = rng.random(n) < 0.25
    given = np.where(flip, partner[y_true], y_true)
    T, _ = estimate_transition(probs, given)
    for a in range(k):
        assert T[a, partner[a]] == pytest.approx(0.25, abs=0.04)
        others = [b for b in range(k) if b not in (a, partner[a])]
        assert T[a, others].max() < 0.03


def test_flag_by_expected_f1_cuts_where_the_wrong_labels_end() -> None:
    q = np.array([0.99, 0.01, 0.98, 0.02, 0.97, 0.03])
    assert flag_by_expected_f1(q).tolist() == [0, 2, 4]
    assert flag_by_expected_f1(np.array([0.9])).tolist() == [0]


# -- whole detector ------------------------------------------------------------------------

#: The detector's budget for the quality checks on digits: 3 folds, CNN 5 / MLP 10 epochs,
#: both rounds (the default is 5 folds and 20 / 40 epochs at this size). Measured F1 with
#: it: 0.969 and 0.957 (symmetric, seeds 0 and 1), 0.970 (pairs, seed 3); with the default
#: budget 0.97-0.99. The default budget itself runs, through the product's own policy, in
#: tests/test_run_noisy.py::test_fashion_mnist_sample_end_to_end.
QUALITY = {"folds": 3, "epochs": 5, "rounds": 2}


@pytest.mark.parametrize("seed", [0, 1])
def test_digits_symmetric_noise_passes(digits, seed: int) -> None:
    X, y = digits
    y_noisy, true = symmetric_noise(y, 0.2, seed)
    idx, info = detect_noisy(X, y_noisy, seed=seed, **QUALITY)
    s = scores(idx, true)
    assert passes(s), s
    assert s["f1"] > 0.85, s
    assert idx.dtype == np.int64 and np.all(np.diff(idx) > 0)
    assert 0.1 < info["estimated_noise_rate"] < 0.3
    assert info["flagged"] == len(idx) and info["device"] == str(pick_device(None))
    assert [r["round"] for r in info["rounds"]] == [1, 2]
    assert np.array_equal(info["rounds"][-1]["indices"], idx)


def test_digits_pair_noise_passes(digits) -> None:
    X, y = digits
    y_noisy, true = pair_noise(y, 0.2, 3, DIGIT_PAIRS)
    idx, _ = detect_noisy(X, y_noisy, seed=3, **QUALITY)
    s = scores(idx, true)
    assert passes(s), s


def test_detection_code_runs_in_a_sandbox_like_namespace(
    digits, tmp_path, monkeypatch, capsys
) -> None:
    """The generated code runs, passes its budget on and saves valid indices. The
    budget is the small one of the plumbing tests (``helpers.SMALL_DETECTOR``: one
    round), since detection quality is checked above; the task's rule still holds."""
    X, y = digits
    y_noisy, true = symmetric_noise(y, 0.15, 11)
    monkeypatch.chdir(tmp_path)
    code = detection_code(**SMALL_DETECTOR, seed=1, output="flagged.npy")
    assert "folds=2, epochs=5, seed=1, rounds=1)" in code
    compile(code, "<detection_code>", "exec")
    namespace = {"X_train": X, "y_train": y_noisy, "X_test": None, "y_test": None}
    exec(code, namespace)
    saved = np.load(tmp_path / "flagged.npy")
    assert saved.dtype == np.int64 and np.all(np.diff(saved) > 0)
    assert saved.min() >= 0 and saved.max() < len(y)
    out = capsys.readouterr().out
    assert "round 1: flagged" in out and "round 2" not in out
    assert f"flagged {len(saved)} of {len(y)} samples -> flagged.npy" in out
    assert passes(scores(saved, true))


def test_the_scripted_policy_runs_the_default_detector(tmp_path: Path) -> None:
    """What the product's scripted agent sends: ``detection_code(seed=0)``, which calls
    ``detect_noisy`` with its defaults (the budget the end-to-end test measures)."""
    from agentdeck.engine.log import RunDir
    from agentdeck.engine.registry import get_task

    task = get_task("noisy-labels")
    params = task.parse_params({"dataset": "digits", "n_train": "100", "seed": "1"})
    inst = task.setup(params, RunDir.create(tmp_path, "r1"))
    codes = [s.input.get("code") for s in inst.reference_policy if s.tool == "python_expression"]
    assert codes == [detection_code(seed=0)]
    assert "detect_noisy(X_train, y_train, folds=5, epochs=None, seed=0)" in codes[0]
