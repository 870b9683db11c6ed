"""``fit`` and ``predict_proba``: training on in-memory tensors.

The whole data set is moved to the device once; each epoch draws a seeded
permutation and slices batches from it on the device, so there is no
DataLoader, no per-sample Python and no per-batch host sync (the running loss
stays on the device until the epoch ends).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from agentdeck.engine.training.config import FitResult, MetricFn, TrainConfig
from agentdeck.engine.training.data import (
    DataError,
    as_features,
    as_labels,
    stratified_holdout,
    to_device,
)
from agentdeck.engine.training.device import (
    AmpSettings,
    amp_settings,
    configure_cpu_threads,
    pick_device,
    set_seed,
)
from agentdeck.engine.training.metrics import Prefixed, default_metric_fn, in_ipython_kernel


def _autocast(device: torch.device, amp: AmpSettings) -> Any:
    if not amp.enabled:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp.dtype)


def _has_conv(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


#: At most one epoch line every this many seconds (the last epoch always prints).
PROGRESS_EVERY_S = 2.0


def show_progress(cfg: TrainConfig) -> bool:
    """Whether to print progress lines (``cfg.progress``; by default inside a kernel)."""
    return in_ipython_kernel() if cfg.progress is None else bool(cfg.progress)


def progress_label(prefix: str) -> str:
    """``cnn/fold2/`` -> ``cnn fold 2: `` (the prefix a line of progress starts with)."""
    parts = [p for p in prefix.split("/") if p]
    out = []
    for p in parts:
        out.append(f"fold {p[4:]}" if p.startswith("fold") and p[4:].isdigit() else p)
    return (" ".join(out) + ": ") if out else ""


def _make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    # No weight decay on biases and norm parameters (the usual AdamW practice).
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.dim() <= 1 else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True)


def _make_scheduler(
    opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    total = max(1, cfg.epochs * steps_per_epoch)
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    if cfg.scheduler == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=cfg.lr, total_steps=total, pct_start=0.25, div_factor=10.0
        )
    return None


@torch.inference_mode()
def _logits(
    model: nn.Module, X: torch.Tensor, batch_size: int, device: torch.device, amp: AmpSettings
) -> torch.Tensor:
    """Logits (float32, on ``device``) for every row of ``X``, in batches."""
    outs = []
    for i in range(0, X.shape[0], batch_size):
        xb = to_device(X[i : i + batch_size], device)
        with _autocast(device, amp):
            outs.append(model(xb).float())
    return torch.cat(outs)


def _evaluate(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    device: torch.device,
    amp: AmpSettings,
) -> tuple[float, float]:
    model.eval()
    logits = _logits(model, X, batch_size, device, amp)
    yd = y.to(device)
    loss = F.cross_entropy(logits, yd).item()
    acc = (logits.argmax(1) == yd).float().mean().item()
    return loss, acc


def eval_batch_size(requested: int | None, device: torch.device) -> int:
    """``requested``, or the default for ``device`` (256 on the CPU, 1024 elsewhere)."""
    if requested is not None:
        if requested < 1:
            raise ValueError(f"batch_size must be >= 1, got {requested}")
        return int(requested)
    return 256 if device.type == "cpu" else 1024


def _resolve_metric_fn(on_metric: MetricFn | None, prefix: str) -> MetricFn:
    fn = on_metric if on_metric is not None else default_metric_fn()
    return Prefixed(fn, prefix) if prefix else fn


def _better(value: float, best: float | None, monitor: str, min_delta: float) -> bool:
    if best is None:
        return True
    if monitor == "val_acc":
        return value > best + min_delta
    return value < best - min_delta


def _data_fits_device(nbytes: int, device: torch.device) -> bool:
    if device.type != "cuda":
        return True
    try:
        free, _total = torch.cuda.mem_get_info(device)
    except Exception:  # noqa: BLE001 - no memory query on this device: assume it fits
        return True
    return nbytes < 0.4 * free


def fit(
    model_fn: Callable[[], nn.Module],
    X: Any,
    y: Any,
    *,
    config: TrainConfig | None = None,
    X_val: Any = None,
    y_val: Any = None,
    device: str | torch.device | None = None,
    on_metric: MetricFn | None = None,
    prefix: str = "",
    progress_prefix: str | None = None,
) -> FitResult:
    """Train ``model_fn()`` on ``(X, y)`` with cross-entropy and return the model.

    Validation data is ``(X_val, y_val)`` if given, else a stratified
    ``config.val_fraction`` of ``(X, y)``; it drives early stopping
    (``config.patience``, on ``config.monitor``) and, with
    ``config.restore_best``, the returned weights are those of the best epoch.
    Per epoch, ``on_metric(prefix + name, value, x=epoch)`` receives
    ``train_loss``, ``val_loss``, ``val_acc``, ``lr``, ``samples_per_s`` and, on
    CUDA, ``gpu_mem_mb`` (peak allocated). ``on_metric=None`` sends them to the
    sandbox's ``log_metric`` inside a kernel, nowhere otherwise.

    ``X`` is used as given (converted to float32): scale it yourself. The model
    must return logits ``[batch, num_classes]``.
    """
    cfg = config if config is not None else TrainConfig()
    cfg.validate()
    dev = pick_device(device)
    if dev.type == "cpu":
        configure_cpu_threads(cfg.num_threads)
    elif dev.type == "cuda":
        torch.backends.cudnn.benchmark = not cfg.deterministic
        torch.backends.cudnn.deterministic = cfg.deterministic
    amp = amp_settings(dev, cfg.amp, cfg.amp_dtype)
    emit = _resolve_metric_fn(on_metric, prefix)
    t_start = time.perf_counter()

    Xt = as_features(X, "X")
    yt = as_labels(y, Xt.shape[0], "y")
    if X_val is not None or y_val is not None:
        if X_val is None or y_val is None:
            raise DataError("give both X_val and y_val, or neither")
        Xv = as_features(X_val, "X_val")
        yv = as_labels(y_val, Xv.shape[0], "y_val")
        if Xv.shape[1:] != Xt.shape[1:]:
            raise DataError(
                f"X_val rows have shape {tuple(Xv.shape[1:])} but X rows {tuple(Xt.shape[1:])}"
            )
    elif cfg.val_fraction > 0:
        tr, ho = stratified_holdout(yt.cpu().numpy(), cfg.val_fraction, cfg.seed)
        tr_t, ho_t = torch.from_numpy(tr).to(Xt.device), torch.from_numpy(ho).to(Xt.device)
        Xv, yv = Xt[ho_t], yt[ho_t.to(yt.device)]
        Xt, yt = Xt[tr_t], yt[tr_t.to(yt.device)]
    else:
        Xv = yv = None  # type: ignore[assignment]  # no validation split

    n = Xt.shape[0]
    if n < 2:
        raise DataError(f"fit needs at least 2 training samples, got {n}")
    on_dev = _data_fits_device(Xt.element_size() * Xt.nelement(), dev)
    Xd = to_device(Xt, dev) if on_dev else (Xt.pin_memory() if dev.type == "cuda" else Xt)
    yd = to_device(yt, dev)

    set_seed(cfg.seed)
    model = model_fn().to(dev)
    if cfg.channels_last and _has_conv(model):
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    bs = min(cfg.batch_size, n)
    steps_per_epoch = math.ceil(n / bs)
    opt = _make_optimizer(model, cfg)
    sched = _make_scheduler(opt, cfg, steps_per_epoch)
    scaler = torch.amp.GradScaler(dev.type) if amp.scaler else None
    gen = torch.Generator().manual_seed(cfg.seed)
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)

    history: list[dict[str, Any]] = []
    best_val: float | None = None
    best_epoch = 0
    best_state: dict[str, torch.Tensor] | None = None
    bad_epochs = 0
    stopped_early = False
    train_seconds = 0.0
    train_samples = 0

    last_print = 0.0
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen).to(dev if on_dev else "cpu")
        loss_sum = torch.zeros((), device=dev)
        seen = 0
        for i in range(0, n, bs):
            idx = perm[i : i + bs]
            if has_bn and idx.numel() < 2:
                continue  # batch norm cannot train on a batch of one
            xb = Xd[idx] if on_dev else to_device(Xd[idx], dev)
            yb = yd[idx.to(dev)]
            if cfg.transform is not None:
                xb = cfg.transform(xb)
            with _autocast(dev, amp):
                logits = model(xb)
            trim = cfg.trim_fraction > 0 and epoch > cfg.trim_warmup
            losses = F.cross_entropy(
                logits.float(), yb, label_smoothing=cfg.label_smoothing, reduction="none"
            )
            if trim:
                keep = max(1, math.ceil((1.0 - cfg.trim_fraction) * losses.numel()))
                losses = torch.topk(losses, keep, largest=False, sorted=False).values
            loss = losses.mean()
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
                if cfg.grad_clip is not None:
                    scaler.unscale_(opt)
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()  # type: ignore[no-untyped-call]
                if cfg.grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
            if sched is not None:
                sched.step()
            loss_sum += loss.detach() * idx.numel()
            seen += idx.numel()
        train_loss = loss_sum.item() / max(1, seen)  # one host sync per epoch
        t_train = time.perf_counter() - t0
        train_seconds += t_train
        train_samples += seen
        if not math.isfinite(train_loss):
            raise FloatingPointError(
                f"training loss became {train_loss} at epoch {epoch}; "
                f"lower the learning rate (lr={cfg.lr}) or scale the inputs"
            )

        row: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": None,
            "val_acc": None,
            "lr": opt.param_groups[0]["lr"],
            "samples_per_s": seen / t_train if t_train > 0 else float("nan"),
        }
        if Xv is not None and yv is not None:
            vl, va = _evaluate(model, Xv, yv, eval_batch_size(cfg.eval_batch_size, dev), dev, amp)
            row["val_loss"], row["val_acc"] = vl, va
        row["seconds"] = time.perf_counter() - t0
        if dev.type == "cuda":
            row["gpu_mem_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
        history.append(row)
        for key in ("train_loss", "val_loss", "val_acc", "lr", "samples_per_s", "gpu_mem_mb"):
            if row.get(key) is not None:
                emit(key, float(row[key]), x=epoch)
        if show_progress(cfg) and (
            epoch == cfg.epochs or time.perf_counter() - last_print >= PROGRESS_EVERY_S
        ):
            last_print = time.perf_counter()
            elapsed = time.perf_counter() - t_start
            eta = elapsed / epoch * (cfg.epochs - epoch)
            val = (
                f" val_loss {row['val_loss']:.4f} val_acc {row['val_acc']:.4f}"
                if row["val_loss"] is not None
                else ""
            )
            print(
                f"{progress_label(progress_prefix if progress_prefix is not None else prefix)}"
                f"epoch {epoch}/{cfg.epochs}: train_loss "
                f"{train_loss:.4f}{val}, {row['samples_per_s']:,.0f} samples/s, "
                f"{row['seconds']:.1f} s, ETA {eta:.0f} s (at most)",
                flush=True,
            )

        if row["val_loss"] is None:
            best_epoch = epoch
            continue
        score = row[cfg.monitor]
        if _better(score, best_val, cfg.monitor, cfg.min_delta):
            best_val, best_epoch, bad_epochs = score, epoch, 0
            if cfg.restore_best:
                best_state = copy.deepcopy(model.state_dict())
        else:
            bad_epochs += 1
            if cfg.patience is not None and bad_epochs >= cfg.patience:
                stopped_early = epoch < cfg.epochs
                break

    if best_state is not None:
        model.load_state_dict(best_state)
    elif not cfg.restore_best:
        best_epoch = len(history)
    model.eval()
    return FitResult(
        model=model,
        history=history,
        best_epoch=best_epoch,
        samples_per_s=train_samples / train_seconds if train_seconds > 0 else float("nan"),
        device=str(dev),
        amp=amp.enabled,
        amp_dtype=amp.name,
        seconds=time.perf_counter() - t_start,
        stopped_early=stopped_early,
        train_samples=train_samples,
        train_seconds=train_seconds,
    )


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def predict_proba(
    model: nn.Module,
    X: Any,
    *,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    amp: bool | None = None,
) -> np.ndarray:
    """Softmax class probabilities ``[n, k]`` (float32) for every row of ``X``.

    Runs on ``device`` if given (the model is moved there), else where the
    model's parameters are. ``batch_size`` None: 256 on the CPU, 1024 on a GPU. Autocast follows ``amp`` (None: on for CUDA). The
    model is put in eval mode for the call and its previous mode restored.
    """
    dev = pick_device(device) if device is not None else _model_device(model)
    if device is not None:
        model = model.to(dev)
    Xt = as_features(X, "X")
    settings = amp_settings(dev, amp)
    was_training = model.training
    model.eval()
    try:
        logits = _logits(model, Xt, eval_batch_size(batch_size, dev), dev, settings)
    finally:
        model.train(was_training)
    return torch.softmax(logits, dim=1).cpu().numpy().astype(np.float32, copy=False)
