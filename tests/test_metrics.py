"""agentdeck.engine.metrics against scikit-learn (where it has the metric) and hand computations."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from agentdeck.engine import metrics as m


@pytest.fixture(params=[0, 1, 2])
def labels(request: pytest.FixtureRequest) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(request.param)
    y_true = rng.integers(0, 5, size=200)
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(0, 5, size=200))
    return y_true, y_pred


def test_classification_metrics_match_sklearn(labels: tuple[np.ndarray, np.ndarray]) -> None:
    t, p = labels
    assert m.accuracy(t, p) == pytest.approx(skm.accuracy_score(t, p))
    np.testing.assert_array_equal(m.confusion_matrix(t, p), skm.confusion_matrix(t, p))
    assert m.macro_f1(t, p) == pytest.approx(skm.f1_score(t, p, average="macro"))
    assert m.macro_f1(t, p, 5) == pytest.approx(
        skm.f1_score(t, p, average="macro", labels=range(5))
    )
    assert m.micro_f1(t, p) == pytest.approx(skm.f1_score(t, p, average="micro"))
    np.testing.assert_allclose(
        m.per_class_recall(t, p, 5), skm.recall_score(t, p, average=None, labels=range(5))
    )
    np.testing.assert_allclose(
        m.per_class_precision(t, p, 5), skm.precision_score(t, p, average=None, labels=range(5))
    )
    tb, pb = (t > 2).astype(int), (p > 2).astype(int)
    s = m.binary_scores(tb, pb)
    assert s["precision"] == pytest.approx(skm.precision_score(tb, pb))
    assert s["recall"] == pytest.approx(skm.recall_score(tb, pb))
    assert s["f1"] == pytest.approx(skm.f1_score(tb, pb))


def test_class_never_predicted_and_absent_class() -> None:
    t = np.array([0, 0, 1, 1, 2, 2, 2])
    p = np.array([0, 1, 1, 1, 0, 1, 0])  # class 2 is never predicted; class 3 exists nowhere
    kw = {"zero_division": 0}
    np.testing.assert_allclose(
        m.per_class_precision(t, p, 4),
        skm.precision_score(t, p, average=None, labels=range(4), **kw),
    )
    np.testing.assert_allclose(
        m.per_class_recall(t, p, 4), skm.recall_score(t, p, average=None, labels=range(4), **kw)
    )
    assert m.macro_f1(t, p) == pytest.approx(skm.f1_score(t, p, average="macro", **kw))
    assert m.macro_f1(t, p, 4) == pytest.approx(
        skm.f1_score(t, p, average="macro", labels=range(4), **kw)
    )
    np.testing.assert_array_equal(
        m.confusion_matrix(t, p, 4), skm.confusion_matrix(t, p, labels=range(4))
    )
    # nothing predicted positive: precision and F1 are 0, as sklearn with zero_division=0
    s = m.binary_scores([1, 0, 1], [0, 0, 0])
    assert s == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "tp": 0, "fp": 0, "fn": 2}


def test_empty_and_malformed_inputs_raise() -> None:
    for fn in (m.accuracy, m.macro_f1, m.micro_f1, m.confusion_matrix):
        with pytest.raises(ValueError, match="empty"):
            fn([], [])
    with pytest.raises(ValueError, match="3 labels but y_pred has 2"):
        m.accuracy([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match=r"outside 0\.\.1"):
        m.confusion_matrix([0, 2], [0, 1], num_classes=2)
    with pytest.raises(ValueError, match="shape"):
        m.nll(np.ones(3), [0, 1, 2])


def test_multilabel_micro_f1_matches_sklearn() -> None:
    rng = np.random.default_rng(3)
    t = (rng.random((50, 7)) < 0.3).astype(int)
    p = (rng.random((50, 7)) < 0.3).astype(int)
    assert m.micro_f1(t, p) == pytest.approx(skm.f1_score(t, p, average="micro"))


def _brute_threshold(t: np.ndarray, s: np.ndarray, grid: np.ndarray) -> tuple[float, float]:
    best_t, best = 0.0, -1.0
    for th in grid:  # the seed-003 loop, strictly-greater rule
        f = skm.f1_score(t.ravel(), (s.ravel() > th).astype(int), zero_division=0)
        if f > best:
            best_t, best = th, f
    return best_t, best


def test_threshold_search_matches_seed_loop_and_exact_is_no_worse() -> None:
    rng = np.random.default_rng(4)
    t = (rng.random((60, 6)) < 0.25).astype(int)
    s = np.clip(0.35 * t + rng.random((60, 6)) * 0.7, 0, 1)
    grid = m.SEED_THRESHOLD_GRID
    want_t, want_f = _brute_threshold(t, s, grid)
    got = m.search_threshold(t, s, grid)
    assert got["threshold"] == pytest.approx(want_t)
    assert got["f1"] == pytest.approx(want_f)
    assert got["f1"] == pytest.approx(
        skm.f1_score(t, (s > got["threshold"]).astype(int), average="micro")
    )
    exact = m.search_threshold(t, s)
    assert exact["f1"] >= got["f1"] - 1e-12
    assert exact["f1"] == pytest.approx(
        skm.f1_score(t, (s > exact["threshold"]).astype(int), average="micro")
    )
    # the exact search is exhaustive: no cut of the sorted scores does better
    cuts = np.unique(s)
    assert exact["f1"] >= _brute_threshold(t, s, np.concatenate([[-1.0], cuts]))[1] - 1e-12


def test_threshold_search_binary_hand_example() -> None:
    r = m.search_threshold([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    # cuts: >0.375 gives {0.4, 0.8}: tp 1, F1 0.5; >0.225 gives 3 predicted, tp 2: F1 0.8;
    # > below-min predicts all: F1 2*2/(4+2) = 0.667; >0.6 gives {0.8}: F1 2/3
    assert r["f1"] == pytest.approx(0.8)
    assert 0.1 < r["threshold"] < 0.35
    assert r["precision"] == pytest.approx(2 / 3) and r["recall"] == 1.0


def _random_probs(seed: int, n: int = 300, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * 2
    y = rng.integers(0, k, size=n)
    logits[np.arange(n), y] += 1.5
    return m.softmax(logits), y


def test_nll_and_brier_match_sklearn() -> None:
    p, y = _random_probs(5)
    assert m.nll(p, y) == pytest.approx(skm.log_loss(y, p, labels=range(5)))
    hand = np.mean([np.sum((p[i] - np.eye(5)[y[i]]) ** 2) for i in range(len(y))])
    assert m.brier_score(p, y) == pytest.approx(hand)
    try:
        sk = skm.brier_score_loss(y, p, labels=range(5))
    except (TypeError, ValueError):  # older scikit-learn: binary only
        sk = None
    if sk is not None:
        assert m.brier_score(p, y) == pytest.approx(sk)
    # hand example: rows [.7,.2,.1] (true 0) and [.1,.1,.8] (true 1)
    q = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    assert m.brier_score(q, [0, 1]) == pytest.approx((0.09 + 0.04 + 0.01 + 0.01 + 0.81 + 0.64) / 2)
    assert m.nll(q, [0, 1]) == pytest.approx(-(np.log(0.7) + np.log(0.1)) / 2)
    # a zero probability on the true class is clipped, not infinite
    assert np.isfinite(m.nll(np.array([[1.0, 0.0]]), [1]))


def test_ece_and_reliability_hand_example() -> None:
    # confidences 0.95 (right), 0.95 (wrong), 0.65 (right), 0.55 (right), 0.30 (right)
    # (the last row need not sum to 1 for the table: confidence is the row's max)
    p = np.array([[0.95, 0.05], [0.95, 0.05], [0.35, 0.65], [0.55, 0.45], [0.30, 0.25]])
    y = np.array([0, 1, 1, 0, 0])
    rows = m.reliability_table(p, y, 10)
    assert [r["count"] for r in rows] == [0, 0, 1, 0, 0, 1, 1, 0, 0, 2]
    assert rows[9]["confidence"] == pytest.approx(0.95) and rows[9]["accuracy"] == 0.5
    assert rows[2]["bin_lo"] == pytest.approx(0.2) and rows[2]["bin_hi"] == pytest.approx(0.3)
    assert rows[0]["confidence"] is None and rows[0]["accuracy"] is None
    assert rows[3]["bin_lo"] == 0.3 and rows[6]["bin_hi"] == 0.7  # clean edges for display
    # |0.5-0.95|*2/5 + |1-0.65|/5 + |1-0.55|/5 + |1-0.3|/5
    want = (0.45 * 2 + 0.35 + 0.45 + 0.70) / 5
    assert m.expected_calibration_error(p, y, 10) == pytest.approx(want)
    # a confidence exactly on an edge belongs to the bin it closes: (0.5, 0.6]
    rows = m.reliability_table(np.array([[0.5, 0.5], [0.6, 0.4]]), [0, 0], 10)
    assert rows[4]["count"] == 1 and rows[5]["count"] == 1


def test_perfectly_calibrated_bins_give_zero_ece() -> None:
    p = np.array([[0.75, 0.25]] * 4)
    assert m.expected_calibration_error(p, [0, 0, 0, 1]) == pytest.approx(0.0)
    assert m.expected_calibration_error(p, [1, 1, 1, 1]) == pytest.approx(0.75)


def test_temperature_scaling_lowers_nll_and_keeps_argmax() -> None:
    rng = np.random.default_rng(6)
    n, k = 2000, 5
    true_logits = rng.normal(size=(n, k)) * 1.5
    probs = m.softmax(true_logits)
    y = np.array([rng.choice(k, p=row) for row in probs])  # labels drawn from the model
    over = true_logits * 3.0  # overconfident: the right temperature is about 3
    t = m.fit_temperature(over, y)
    assert 2.5 < t < 3.6
    before, after = m.nll(m.softmax(over), y), m.nll(m.softmax(over, t), y)
    assert after < before - 0.1
    assert m.expected_calibration_error(m.softmax(over, t), y) < m.expected_calibration_error(
        m.softmax(over), y
    )
    np.testing.assert_array_equal(m.softmax(over, t).argmax(1), over.argmax(1))
    # log-probabilities give the same temperature as logits
    assert m.fit_temperature(np.log(m.softmax(over)), y) == pytest.approx(t, rel=1e-4)
    # it is the minimum: nearby temperatures are no better
    for d in (0.9, 1.1):
        assert m.nll(m.softmax(over, t * d), y) >= after
    under = true_logits * 0.3
    assert m.fit_temperature(under, y) < 0.5


def test_fit_temperature_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="NaN or infinite"):
        m.fit_temperature(np.array([[0.0, -np.inf], [-0.7, -0.7]]), [0, 1])
    with pytest.raises(ValueError, match="bounds"):
        m.fit_temperature(np.zeros((2, 2)), [0, 1], bounds=(2.0, 1.0))


def test_classification_summary_is_consistent() -> None:
    p, y = _random_probs(7)
    s = m.classification_summary(p, y)
    pred = p.argmax(1)
    assert s["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert s["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro", labels=range(5)))
    assert np.array(s["confusion_matrix"]).sum() == len(y)
    assert sum(r["count"] for r in s["reliability"]) == len(y)
    assert s["ece"] == pytest.approx(m.expected_calibration_error(p, y))


def test_detection_scores_unchanged() -> None:
    r = m.detection_scores(np.array([1, 2, 3]), np.array([2, 3, 4, 5]))
    assert (r["tp"], r["fp"], r["fn"]) == (2, 1, 2)
    assert r["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
