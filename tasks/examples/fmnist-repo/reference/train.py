"""Training: AdamW with a one-cycle schedule, random shifts (and flips for clothes),
early stopping on validation accuracy; one line an epoch."""

from __future__ import annotations

import time

import numpy as np
from config import Config
from models import build_model
from torch import nn

from agentdeck.engine.trainer import TrainConfig, fit
from agentdeck.engine.training.augment import ImageAugment


class EpochPrinter:
    """Prints the trainer's per-epoch metrics as one line an epoch."""

    def __init__(self) -> None:
        self.row: dict[str, float] = {}
        self.t0 = time.perf_counter()

    def __call__(self, name: str, value: float, *, x: float | None = None) -> None:
        self.row[name] = value
        if name == "samples_per_s":  # the last metric of an epoch
            r = self.row
            print(
                f"epoch {int(x or 0):2d}  train_loss {r.get('train_loss', float('nan')):.4f}  "
                f"val_loss {r.get('val_loss', float('nan')):.4f}  "
                f"val_acc {r.get('val_acc', float('nan')):.4f}  "
                f"{value:,.0f} samples/s  {time.perf_counter() - self.t0:.0f} s",
                flush=True,
            )
            self.row = {}


def measured_speed(X: np.ndarray, y: np.ndarray, num_classes: int, cfg: Config) -> float:
    """Training samples a second on this machine: the second of two short epochs on a
    slice (the first one pays for warming up)."""
    n = min(len(y), 4 * cfg.batch_size)
    shape = (int(X.shape[-2]), int(X.shape[-1]))
    probe = fit(
        lambda: build_model(num_classes, shape, cfg),
        X[:n],
        y[:n],
        config=TrainConfig(epochs=2, batch_size=cfg.batch_size, val_fraction=0, patience=None),
        on_metric=lambda *a, **k: None,
    )
    return max(float(probe.history[-1]["samples_per_s"]), 1.0)


def epochs_for(n_train: int, samples_per_s: float, cfg: Config) -> int:
    """As many of ``cfg.epochs`` as fit the time budget (at least ``cfg.min_epochs``)."""
    per_epoch = n_train / samples_per_s * 1.15  # validation and augmentation on top
    fits = int(cfg.time_budget_s // max(per_epoch, 1e-6))
    return max(cfg.min_epochs, min(cfg.epochs, fits))


def train(
    X: np.ndarray,
    y: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    num_classes: int,
    cfg: Config,
    *,
    hflip: bool,
) -> nn.Module:
    shape = (int(X.shape[-2]), int(X.shape[-1]))
    speed = measured_speed(X, y, num_classes, cfg)
    epochs = epochs_for(len(y), speed, cfg)
    tc = TrainConfig(
        epochs=epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        scheduler="onecycle",
        monitor="val_acc",
        patience=cfg.patience,
        seed=cfg.seed,
        transform=ImageAugment(
            shape, max_shift=cfg.max_shift if min(shape) > 8 else 1, hflip=hflip
        ),
    )
    print(
        f"training for up to {epochs} epochs on {len(y):,} images "
        f"({speed:,.0f} samples/s here, {cfg.time_budget_s:g} s budget)",
        flush=True,
    )
    result = fit(
        lambda: build_model(num_classes, shape, cfg),
        X,
        y,
        X_val=X_val,
        y_val=y_val,
        config=tc,
        on_metric=EpochPrinter(),
    )
    print(
        f"best epoch {result.best_epoch} (val_acc {result.best['val_acc']:.4f}) on "
        f"{result.device}, {result.seconds:.0f} s",
        flush=True,
    )
    return result.model
