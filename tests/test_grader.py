"""Submission validation: every fault gives a message the agent can act on."""

from __future__ import annotations

import os

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score

from agentdeck.engine.grader import (
    AllOf,
    AnyOf,
    SubmissionError,
    Threshold,
    evaluate,
    load_npy,
    resolve_submission,
    validate_indices,
)
from agentdeck.engine.metrics import detection_scores


@pytest.fixture
def work(tmp_path):
    w = tmp_path / "work"
    w.mkdir()
    return w


def submit(work, name):
    return validate_indices(load_npy(resolve_submission(work, name)), 100)


def test_valid_submission(work):
    np.save(work / "predictions.npy", np.array([3, 1, 2]))
    assert submit(work, "predictions.npy").tolist() == [3, 1, 2]
    np.save(work / "f.npy", np.array([3.0, 7.0]))
    assert submit(work, "f.npy").dtype == np.int64
    np.save(work / "empty.npy", np.array([], dtype=np.int64))
    assert submit(work, "empty.npy").size == 0


@pytest.mark.parametrize(
    ("setup", "name", "match"),
    [
        (None, "predictions.npy", "does not exist in the working directory; save it first"),
        (None, "", "must be a file name"),
        (None, None, "must be a file name"),
        (None, "../secret.npy", "outside the working directory"),
        (None, "/etc/passwd.npy", "outside the working directory"),
        (lambda w: (w / "p.txt").write_text("1,2"), "p.txt", "is not a .npy file"),
        (lambda w: (w / "d.npy").mkdir(), "d.npy", "is not a regular file"),
        (
            lambda w: os.symlink(w.parent / "outside.npy", w / "link.npy"),
            "link.npy",
            "link to a file outside the working directory",
        ),
        (lambda w: (w / "bad.npy").write_bytes(b"not numpy"), "bad.npy", "no NumPy header"),
        (
            lambda w: (w / "cut.npy").write_bytes(b"\x93NUMPY\x01\x00"),
            "cut.npy",
            "not a readable .npy",
        ),
        (
            lambda w: np.save(w / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True),
            "obj.npy",
            "pickled, dtype=object",
        ),
        (
            lambda w: np.save(w / "m.npy", np.zeros(100, dtype=bool)),
            "m.npy",
            r"boolean mask.*np.where\(mask\)\[0\]",
        ),
        (
            lambda w: np.save(w / "2d.npy", np.zeros((10, 2), dtype=int)),
            "2d.npy",
            r"1-D array of indices, got shape \(10, 2\)",
        ),
        (
            lambda w: np.save(w / "s.npy", np.array(["a", "b"])),
            "s.npy",
            "integer indices, got dtype",
        ),
        (
            lambda w: np.save(w / "nan.npy", np.array([1.0, np.nan])),
            "nan.npy",
            "contains NaN at position 1",
        ),
        (lambda w: np.save(w / "frac.npy", np.array([1.5])), "frac.npy", "whole-number indices"),
        (
            lambda w: np.save(w / "big.npy", np.array([5, 100])),
            "big.npy",
            r"predictions\[1\] = 100 is out of range: indices must be in \[0, 99\]",
        ),
        (lambda w: np.save(w / "neg.npy", np.array([-1])), "neg.npy", "out of range"),
        (
            lambda w: np.save(w / "dup.npy", np.array([4, 4, 5])),
            "dup.npy",
            r"1 duplicated indices \(e.g. 4\).*np.unique",
        ),
    ],
)
def test_faults(work, setup, name, match):
    (work.parent / "outside.npy").write_bytes(b"")
    if setup:
        setup(work)
    with pytest.raises(SubmissionError, match=match):
        submit(work, name)


def test_detection_scores_match_sklearn():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = 200
        true = rng.choice(n, rng.integers(1, 60), replace=False)
        pred = rng.choice(n, rng.integers(1, 80), replace=False)
        s = detection_scores(pred, true)
        yt = np.isin(np.arange(n), true)
        yp = np.isin(np.arange(n), pred)
        assert s["precision"] == pytest.approx(precision_score(yt, yp))
        assert s["recall"] == pytest.approx(recall_score(yt, yp))
        assert s["f1"] == pytest.approx(f1_score(yt, yp))
        assert s["tp"] + s["fp"] == len(pred)


def test_detection_scores_empty_prediction():
    s = detection_scores(np.array([], dtype=int), np.array([1, 2]))
    assert (s["precision"], s["recall"], s["f1"]) == (0.0, 0.0, 0.0)


def test_seed_pass_rule():
    rule = AllOf(
        (
            Threshold("f1", ">=", 0.65, "F1"),
            AnyOf(
                (
                    Threshold("precision", ">=", 0.55, "Precision"),
                    Threshold("recall", ">=", 0.55, "Recall"),
                )
            ),
        )
    )
    assert rule.text() == "F1 >= 0.65 AND (Precision >= 0.55 OR Recall >= 0.55)"
    ok, checks = evaluate(rule, {"f1": 0.66, "precision": 0.5, "recall": 0.9})
    assert ok and [c.met for c in checks] == [True, False, True]
    ok, _ = evaluate(rule, {"f1": 0.64, "precision": 0.9, "recall": 0.9})
    assert not ok
    ok, checks = evaluate(rule, {})
    assert not ok and all(c.value is None for c in checks)
