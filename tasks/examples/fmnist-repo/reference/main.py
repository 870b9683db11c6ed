"""End to end: load, split, train, validate, predict the test images, write the submission."""

from __future__ import annotations

from config import CONFIG
from dataset import class_names, load_test, load_train, stratified_split
from inference import predict, write_submission
from train import train
from utils import accuracy, flips_are_harmless, macro_f1, seed_everything, timed


def main() -> None:
    cfg = CONFIG
    seed_everything(cfg.seed)
    names = class_names(cfg)
    X, y, top = load_train(cfg)
    tr, val = stratified_split(y, cfg.val_fraction, cfg.seed)
    hflip = flips_are_harmless(names)
    print(
        f"{len(y):,} training images {X.shape[-2]}x{X.shape[-1]}, {len(names)} classes; "
        f"{len(tr):,} to train, {len(val):,} to validate",
        flush=True,
    )
    with timed("training"):
        model = train(X[tr], y[tr], X[val], y[val], len(names), cfg, hflip=hflip)
    val_pred = predict(model, X[val], hflip=hflip).argmax(axis=1)
    val_acc = accuracy(y[val], val_pred)
    print(f"validation macro-F1: {macro_f1(y[val], val_pred, len(names)):.4f}")
    print(f"Final Validation Metric: {val_acc:.4f}", flush=True)
    X_test, ids = load_test(cfg, top)
    with timed("test predictions"):
        labels = predict(model, X_test, hflip=hflip).argmax(axis=1)
    path = write_submission(ids, labels, cfg.submission)
    print(f"wrote {path} ({len(ids):,} rows)")


if __name__ == "__main__":
    main()
