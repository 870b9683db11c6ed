"""``cross_fit``: stratified k-fold training that gives out-of-fold probabilities.

Each sample's row of ``oof_probs`` comes from the one fold model that never
saw it (neither for training nor for early stopping), which is what label
noise detection, stacking and honest calibration need.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from agentdeck.engine.training.config import CrossFitResult, FoldSummary, MetricFn, TrainConfig
from agentdeck.engine.training.data import DataError, as_features, as_labels, to_device
from agentdeck.engine.training.device import amp_settings, configure_cpu_threads, pick_device
from agentdeck.engine.training.loop import (
    _data_fits_device,
    _logits,
    _resolve_metric_fn,
    eval_batch_size,
    fit,
    progress_label,
    show_progress,
)


def cross_fit(
    model_fn: Callable[[], nn.Module],
    X: Any,
    y: Any,
    *,
    folds: int = 5,
    config: TrainConfig | None = None,
    device: str | torch.device | None = None,
    on_metric: MetricFn | None = None,
    num_classes: int | None = None,
    keep_models: bool = False,
    prefix: str = "",
    train_mask: Any = None,
) -> CrossFitResult:
    """Train one model per stratified fold and collect out-of-fold probabilities.

    Fold ``f`` (1-based in metric names) trains on the other folds, early-stops
    on a stratified ``config.val_fraction`` of that training part (restoring the
    best weights), then predicts its held-out fold. Fold ``f`` uses seed
    ``config.seed + f - 1`` for its initialisation and batch order; the split
    itself uses ``config.seed``.

    ``train_mask`` (bool ``[n]``): samples where it is False are never trained
    on (nor used for early stopping) but still get out-of-fold probabilities,
    e.g. to re-fit without suspected label errors and score every sample.

    Metrics: per epoch ``{prefix}fold{f}/<name>`` as in ``fit``; after each fold
    ``{prefix}cv/holdout_acc`` (x = f); at the end ``{prefix}cv/oof_acc``
    (x = folds), the OOF accuracy against the given labels.
    """
    from sklearn.model_selection import StratifiedKFold

    cfg = config if config is not None else TrainConfig()
    cfg.validate()
    dev = pick_device(device)
    if dev.type == "cpu":
        configure_cpu_threads(cfg.num_threads)
    Xt = as_features(X, "X")
    n = Xt.shape[0]
    yt = as_labels(y, n, "y")
    y_np = yt.numpy()
    k = int(y_np.max()) + 1 if num_classes is None else int(num_classes)
    if y_np.max() >= k:
        raise DataError(
            f"y has class index {int(y_np.max())} but num_classes={k}; "
            "labels must be 0..num_classes-1"
        )
    if not 2 <= folds <= n:
        raise DataError(f"folds must be between 2 and the number of samples ({n}), got {folds}")
    counts = np.bincount(y_np, minlength=k)
    present = counts[counts > 0]
    if present.max() < folds:
        raise DataError(
            f"no class has {folds} samples, so {folds}-fold stratification is impossible; "
            "use fewer folds"
        )

    if train_mask is not None:
        mask = np.asarray(train_mask, dtype=bool)
        if mask.shape != (n,):
            raise DataError(f"train_mask must have shape ({n},), got {mask.shape}")
    else:
        mask = np.ones(n, dtype=bool)

    emit = _resolve_metric_fn(on_metric, prefix)
    t_start = time.perf_counter()
    if _data_fits_device(Xt.element_size() * Xt.nelement(), dev):
        Xt = to_device(Xt, dev)  # once, not once per fold
    amp = amp_settings(dev, cfg.amp, cfg.amp_dtype)

    oof = np.full((n, k), np.nan, dtype=np.float32)
    fold_of = np.full(n, -1, dtype=np.int64)
    summaries: list[FoldSummary] = []
    models: list[nn.Module] = []
    train_samples = 0
    train_seconds = 0.0
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=cfg.seed % (2**32))
    # sklearn warns when a class has fewer members than folds; the split is still valid.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        splits = list(skf.split(np.zeros(n), y_np))
    for f, (tr_all, ho) in enumerate(splits, start=1):
        tr = tr_all[mask[tr_all]]
        if len(tr) < 2:
            raise DataError(
                f"fold {f} has {len(tr)} trainable samples; train_mask excludes too many"
            )
        fcfg = dataclasses.replace(cfg, seed=cfg.seed + f - 1)
        tr_t = torch.from_numpy(tr).to(Xt.device)
        ho_t = torch.from_numpy(ho).to(Xt.device)
        res = fit(
            model_fn,
            Xt[tr_t],
            yt[torch.from_numpy(tr)],
            config=fcfg,
            device=dev,
            on_metric=emit,
            prefix=f"fold{f}/",
            progress_prefix=f"{prefix}fold{f}/",
        )
        logits = _logits(res.model, Xt[ho_t], eval_batch_size(cfg.eval_batch_size, dev), dev, amp)
        if logits.shape[1] != k:
            raise DataError(
                f"the model from model_fn outputs {logits.shape[1]} classes but the labels "
                f"need {k}; build it with num_classes={k}"
            )
        probs = torch.softmax(logits, dim=1).cpu().numpy()
        oof[ho] = probs
        fold_of[ho] = f - 1
        acc = float((probs.argmax(1) == y_np[ho]).mean())
        emit("cv/holdout_acc", acc, x=f)
        if show_progress(cfg):
            elapsed = time.perf_counter() - t_start
            eta = elapsed / f * (folds - f)
            print(
                f"{progress_label(prefix)}fold {f}/{folds} done: held-out accuracy {acc:.4f}, "
                f"{res.seconds:.1f} s, ETA {eta:.0f} s for the other folds",
                flush=True,
            )
        summaries.append(
            FoldSummary(
                fold=f,
                n_train=len(tr),
                n_holdout=len(ho),
                best_epoch=res.best_epoch,
                history=res.history,
                samples_per_s=res.samples_per_s,
                seconds=res.seconds,
                stopped_early=res.stopped_early,
                holdout_acc=acc,
            )
        )
        train_samples += res.train_samples
        train_seconds += res.train_seconds
        if keep_models:
            models.append(res.model)
        del res
    oof_acc = float((oof.argmax(1) == y_np).mean())
    emit("cv/oof_acc", oof_acc, x=folds)
    return CrossFitResult(
        oof_probs=oof,
        folds=summaries,
        samples_per_s=train_samples / train_seconds if train_seconds > 0 else float("nan"),
        device=str(dev),
        seconds=time.perf_counter() - t_start,
        amp=amp.enabled,
        fold_of=fold_of,
        models=models,
    )
