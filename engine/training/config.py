"""What a training run is asked to do (``TrainConfig``) and what it gives back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from torch import nn


class MetricFn(Protocol):
    """``on_metric(name, value, x=epoch)``: one scalar per call.

    ``name`` is a string such as ``"train_loss"`` or ``"fold2/val_acc"``,
    ``value`` a float, ``x`` (keyword) the epoch (1-based) the value belongs to,
    or the fold number for per-fold summaries. Return value ignored.
    """

    def __call__(self, name: str, value: float, *, x: float | None = None) -> None: ...


OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULERS = ("none", "cosine", "onecycle")
MONITORS = ("val_loss", "val_acc")


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    #: "adamw", "adam" or "sgd" (momentum 0.9, Nesterov).
    optimizer: str = "adamw"
    #: Mixed precision: None = auto (on for CUDA), True/False to force.
    amp: bool | None = None
    #: "bf16" or "fp16"; None = bf16 where the GPU supports it, else fp16 + GradScaler.
    amp_dtype: str | None = None
    seed: int = 0
    #: Stop after this many epochs without improvement of ``monitor``; None = never.
    patience: int | None = 3
    #: Part of the training data held out for validation when no X_val is given
    #: (stratified); 0 = no validation (no early stopping, final weights kept).
    val_fraction: float = 0.1
    label_smoothing: float = 0.0
    #: Small-loss trick for noisy labels: after ``trim_warmup`` epochs, ignore this
    #: fraction of the highest-loss samples of every batch (0 = off).
    trim_fraction: float = 0.0
    trim_warmup: int = 1
    #: "none", "cosine" (to 0 over ``epochs``) or "onecycle" (warm-up then anneal).
    scheduler: str = "none"
    #: "val_loss" (lower is better) or "val_acc" (higher is better).
    monitor: str = "val_loss"
    #: Improvement smaller than this does not reset patience.
    min_delta: float = 0.0
    #: Reload the weights of the best validation epoch at the end.
    restore_best: bool = True
    #: Clip the gradient norm to this value; None = no clipping.
    grad_clip: float | None = None
    #: torch intra-op threads on the CPU; None = the CPUs this process may use.
    num_threads: int | None = None
    #: Batch size for validation and out-of-fold prediction; None = 256 on the CPU
    #: (conv layers run ~3x faster there with small batches), 1024 on a GPU.
    eval_batch_size: int | None = None
    #: Use channels-last memory format for conv models (faster on CPU and with AMP on GPU).
    channels_last: bool = True
    #: Print a progress line per epoch (and per fold of a cross-fit): epoch k/N, losses,
    #: samples/s, ETA. None = when running in the sandbox's kernel, where the lines
    #: stream to the Output tab and ``--no-ui``; False = silent.
    progress: bool | None = None
    #: A function applied to every training batch on the device (augmentation), or None.
    transform: Callable[[Any], Any] | None = None
    #: Deterministic cuDNN kernels (slower); the CPU path is deterministic anyway.
    deterministic: bool = False

    def validate(self) -> None:
        """Raise ValueError naming the first bad field and what it accepts."""
        if self.epochs < 1:
            raise ValueError(f"TrainConfig.epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"TrainConfig.batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"TrainConfig.lr must be > 0, got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"TrainConfig.optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}"
            )
        if self.scheduler not in SCHEDULERS:
            raise ValueError(
                f"TrainConfig.scheduler must be one of {', '.join(SCHEDULERS)}, got {self.scheduler!r}"
            )
        if self.monitor not in MONITORS:
            raise ValueError(
                f"TrainConfig.monitor must be one of {', '.join(MONITORS)}, got {self.monitor!r}"
            )
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"TrainConfig.val_fraction must be in [0, 1), got {self.val_fraction}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(
                f"TrainConfig.label_smoothing must be in [0, 1), got {self.label_smoothing}"
            )
        if not 0.0 <= self.trim_fraction < 1.0:
            raise ValueError(
                f"TrainConfig.trim_fraction must be in [0, 1), got {self.trim_fraction}"
            )
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"TrainConfig.patience must be >= 1 or None, got {self.patience}")


@dataclass
class FitResult:
    model: nn.Module
    #: One dict per epoch: epoch, train_loss, val_loss, val_acc, lr,
    #: samples_per_s, seconds, and gpu_mem_mb on CUDA. Without validation
    #: data val_loss and val_acc are None.
    history: list[dict[str, Any]]
    #: 1-based epoch whose weights the model holds (the last one without validation).
    best_epoch: int
    #: Training samples per second over all epochs (forward + backward + step).
    samples_per_s: float
    device: str
    amp: bool
    #: "bf16", "fp16" or "off".
    amp_dtype: str = "off"
    seconds: float = 0.0
    stopped_early: bool = False
    #: Samples trained on and seconds spent training (validation excluded).
    train_samples: int = 0
    train_seconds: float = 0.0

    @property
    def best(self) -> dict[str, Any]:
        """The history row of ``best_epoch``."""
        return self.history[self.best_epoch - 1]


@dataclass
class FoldSummary:
    """What one fold of ``cross_fit`` did (a FitResult without the model)."""

    fold: int
    n_train: int
    n_holdout: int
    best_epoch: int
    history: list[dict[str, Any]]
    samples_per_s: float
    seconds: float
    stopped_early: bool
    #: Accuracy of this fold's model on its held-out samples against the given labels.
    holdout_acc: float


@dataclass
class CrossFitResult:
    #: [n, k] class probabilities; row i comes from the fold model that did not train on i.
    oof_probs: np.ndarray
    folds: list[FoldSummary]
    samples_per_s: float
    device: str
    seconds: float
    amp: bool = False
    #: Fold index (0-based) each sample was held out in.
    fold_of: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: The fold models (only with ``keep_models=True``).
    models: list[nn.Module] = field(default_factory=list)

    @property
    def oof_pred(self) -> np.ndarray:
        pred: np.ndarray = self.oof_probs.argmax(axis=1)
        return pred
