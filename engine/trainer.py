"""The engine's torch training service (public API).

Usable by the engine and from inside the agent's sandbox kernel::

    from agentdeck.engine.trainer import TrainConfig, SmallCNN, cross_fit
    res = cross_fit(lambda: SmallCNN(10), X / 255.0, y, folds=5,
                    config=TrainConfig(epochs=8))
    res.oof_probs        # [n, 10], each row from a model that never saw it

- ``pick_device``: CUDA, then Apple MPS, then CPU (``device=`` overrides and
  is checked: ``DeviceError`` says what is missing).
- ``fit``: trains on in-memory tensors (no DataLoader; batches are slices of
  a seeded permutation on the device), mixed precision on CUDA (bf16, or fp16
  with a GradScaler), early stopping with the best weights restored, seeded.
- ``cross_fit``: stratified k folds, out-of-fold probabilities.
- Metrics: ``on_metric(name, value, x=epoch)``; see ``agentdeck.engine.training.metrics``
  and docs/trainer.md for the names.

The implementation lives in ``agentdeck.engine.training``; this module is the stable
import path.
"""

from __future__ import annotations

from agentdeck.engine.training.config import (
    CrossFitResult,
    FitResult,
    FoldSummary,
    MetricFn,
    TrainConfig,
)
from agentdeck.engine.training.crossfit import cross_fit
from agentdeck.engine.training.data import DataError
from agentdeck.engine.training.device import (
    DeviceError,
    amp_settings,
    available_cpus,
    configure_cpu_threads,
    pick_device,
    set_seed,
)
from agentdeck.engine.training.loop import fit, predict_proba
from agentdeck.engine.training.metrics import default_metric_fn, in_ipython_kernel, metric_event_fn
from agentdeck.engine.training.models import MLP, SmallCNN, count_parameters, square_image_shape

__all__ = [
    "MLP",
    "CrossFitResult",
    "DataError",
    "DeviceError",
    "FitResult",
    "FoldSummary",
    "MetricFn",
    "SmallCNN",
    "TrainConfig",
    "amp_settings",
    "available_cpus",
    "configure_cpu_threads",
    "count_parameters",
    "cross_fit",
    "default_metric_fn",
    "fit",
    "in_ipython_kernel",
    "metric_event_fn",
    "pick_device",
    "predict_proba",
    "set_seed",
    "square_image_shape",
]
