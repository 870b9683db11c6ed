"""Paths, hyper-parameters and the seed, in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Config:
    # paths (the task's data is read-only in .agentdeck_data)
    data_dir: str = ".agentdeck_data"
    submission: str = "submission/submission.csv"
    # the validation split held out from the training images
    val_fraction: float = 0.1
    seed: int = 0
    # model and training
    widths: tuple[int, int, int] = (24, 48, 96)
    dropout: float = 0.2
    epochs: int = 12
    min_epochs: int = 6
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 5e-4
    patience: int = 4
    max_shift: int = 2
    # seconds of training: fewer epochs on a slow machine (measured before training)
    time_budget_s: float = float(os.environ.get("TIME_BUDGET_S", "600"))


CONFIG = Config()
