"""Grading of fmnist-repo: accuracy and macro-F1 of ``submission.csv`` (``id,label``)
against the hidden test labels.

Every fault of the file is a ``SubmissionError`` whose message the agent reads: not
CSV text, a wrong header, missing or extra rows, ids that are not test ids, an id
twice, empty or NaN cells, a label that is not a class index.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from agentdeck.engine.grader import SubmissionError, read_csv_submission
from agentdeck.engine.metrics import (
    accuracy,
    confusion_matrix,
    macro_f1,
    per_class_precision,
    per_class_recall,
)


def grade(submission: Path, answers: dict[str, Any], ctx: Any) -> tuple[dict, dict]:
    ids: list[str] = answers["ids"]
    k = len(answers["class_names"])
    rows = read_csv_submission(submission, columns=("id", "label"), ids=ids)
    pred = np.empty(len(ids), dtype=np.int64)
    for i, key in enumerate(ids):
        text = rows[key]["label"]
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not value.is_integer() or not 0 <= value < k:
            raise SubmissionError(
                f"{submission.name}: the label of id {key} is {text!r}; a label is a class "
                f"index, an integer from 0 to {k - 1} (see classes.txt)"
            )
        pred[i] = int(value)
    y = answers["labels"]
    metrics = {
        "accuracy": accuracy(y, pred),
        "macro_f1": macro_f1(y, pred, num_classes=k),
    }
    details = {
        "n_test": len(ids),
        "dataset": answers["dataset"],
        "class_names": answers["class_names"],
        "confusion_matrix": confusion_matrix(y, pred, num_classes=k).tolist(),
        "per_class_recall": per_class_recall(y, pred, num_classes=k).tolist(),
        "per_class_precision": per_class_precision(y, pred, num_classes=k).tolist(),
        "test_labels": "artifacts/test_labels.csv",
    }
    return metrics, details


def perfect_submission(answers: dict[str, Any], path: Path) -> None:
    """The answers as a submission (``agentdeck task check`` grades it: it must pass)."""
    lines = [f"{i},{int(y)}\n" for i, y in zip(answers["ids"], answers["labels"], strict=True)]
    path.write_text("id,label\n" + "".join(lines), encoding="utf-8")


def broken_submissions(answers: dict[str, Any], folder: Path) -> dict[str, Path]:
    """Submissions task check expects to be refused (beyond its generic ones)."""
    k = len(answers["class_names"])
    ids = answers["ids"]
    out = {}
    for name, rows in (
        ("unknown ids", [f"{int(i) + 7_000_000},0" for i in ids]),
        ("label out of range", [f"{i},{k}" for i in ids]),
        ("label not a number", [f"{i},shirt" for i in ids]),
    ):
        p = folder / f"{name.replace(' ', '_')}.csv"
        p.write_text("id,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
        out[name] = p
    return out


def reveal(answers: dict[str, Any], artifacts: Path) -> list[str]:
    """When the run has ended: the test labels, for anyone reading the log."""
    path = artifacts / "test_labels.csv"
    perfect_submission(answers, path)
    return [path.name]
