"""The trainer (agentdeck.engine.trainer) and the system sampler (agentdeck.engine.sysmetrics), on tiny data."""

from __future__ import annotations

import sys
import threading
import time
import types

import numpy as np
import pytest
import torch
from torch import nn

from agentdeck.engine.events import Metric
from agentdeck.engine.sysmetrics import SystemSampler, parse_nvidia_smi
from agentdeck.engine.trainer import (
    MLP,
    DataError,
    DeviceError,
    SmallCNN,
    TrainConfig,
    amp_settings,
    available_cpus,
    configure_cpu_threads,
    cross_fit,
    default_metric_fn,
    fit,
    metric_event_fn,
    pick_device,
    predict_proba,
)
from agentdeck.engine.training.augment import ImageAugment
from agentdeck.engine.training.metrics import SandboxMetricFn

from helpers import wait_for

HAS_CUDA = torch.cuda.is_available()
HAS_MPS = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def blobs(n: int = 240, d: int = 10, k: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Separable Gaussian blobs: a model learns them in a few epochs."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, size=(k, d))
    y = rng.integers(0, k, n)
    X = centers[y] + rng.normal(0, 1, size=(n, d))
    return X.astype(np.float32), y.astype(np.int64)


def mlp(d: int = 10, k: int = 3) -> nn.Module:
    return MLP(d, 32, k, dropout=0.0)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, float, float | None]] = []

    def __call__(self, name: str, value: float, *, x: float | None = None) -> None:
        self.calls.append((name, value, x))

    def names(self) -> set[str]:
        return {c[0] for c in self.calls}


# -- device ------------------------------------------------------------------------------


def test_pick_device_cpu_and_auto() -> None:
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device(" CPU ") == torch.device("cpu")
    auto = pick_device(None)
    assert pick_device("auto") == auto
    if HAS_CUDA:
        assert auto.type == "cuda"
    elif HAS_MPS:
        assert auto.type == "mps"
    else:
        assert auto == torch.device("cpu")


@pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA")
def test_requested_cuda_unavailable_is_a_clear_error() -> None:
    for name in ("cuda", "cuda:0", "gpu"):
        with pytest.raises(DeviceError, match=r"CUDA is not available.*use device='cpu'"):
            pick_device(name)
    with pytest.raises(DeviceError, match="CUDA is not available"):
        fit(mlp, *blobs(), config=TrainConfig(epochs=1), device="cuda")


@pytest.mark.skipif(HAS_MPS, reason="this machine has MPS")
def test_requested_mps_unavailable_is_a_clear_error() -> None:
    with pytest.raises(DeviceError, match="MPS is not available"):
        pick_device("mps")


def test_unknown_device_names_the_choices() -> None:
    with pytest.raises(DeviceError, match=r"unknown device 'tpu'.*'cpu', 'cuda'"):
        pick_device("tpu")


def test_cpu_threads_are_capped_to_usable_cpus_and_explicit_counts_kept() -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(available_cpus() + 6)
        assert configure_cpu_threads() == available_cpus() == torch.get_num_threads()
        torch.set_num_threads(1)
        assert configure_cpu_threads() == 1  # a lower count set on purpose stays
        assert configure_cpu_threads(3) == 3 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def test_amp_is_auto_on_for_cuda_only() -> None:
    assert not amp_settings(torch.device("cpu"), None).enabled
    cpu_amp = amp_settings(torch.device("cpu"), True)
    assert cpu_amp.enabled and cpu_amp.dtype == torch.bfloat16 and not cpu_amp.scaler
    fp16 = amp_settings(torch.device("cuda"), True, "fp16")
    assert fp16.dtype == torch.float16 and fp16.scaler
    with pytest.raises(ValueError, match="amp_dtype"):
        amp_settings(torch.device("cpu"), True, "fp8")


# -- fit -----------------------------------------------------------------------------------


def test_fit_learns_and_reports_history() -> None:
    X, y = blobs()
    res = fit(mlp, X, y, config=TrainConfig(epochs=4, patience=None, lr=1e-2), device="cpu")
    assert res.device == "cpu" and res.amp is False and res.amp_dtype == "off"
    assert [h["epoch"] for h in res.history] == [1, 2, 3, 4]
    assert set(res.history[0]) >= {
        "epoch",
        "train_loss",
        "val_loss",
        "val_acc",
        "samples_per_s",
        "seconds",
        "lr",
    }
    assert "gpu_mem_mb" not in res.history[0]  # CPU run
    assert res.history[-1]["val_acc"] >= 0.9
    assert res.samples_per_s > 0 and res.train_samples == 4 * 216
    assert not res.model.training  # returned in eval mode
    assert (predict_proba(res.model, X).argmax(1) == y).mean() >= 0.9


def test_fit_with_same_seed_repeats_exactly() -> None:
    X, y = blobs()
    cfg = TrainConfig(epochs=3, patience=None, seed=5)
    a = fit(mlp, X, y, config=cfg, device="cpu")
    b = fit(mlp, X, y, config=cfg, device="cpu")
    c = fit(mlp, X, y, config=TrainConfig(epochs=3, patience=None, seed=6), device="cpu")
    losses = [[h["train_loss"] for h in r.history] for r in (a, b, c)]
    assert losses[0] == losses[1]
    assert losses[0] != losses[2]
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_early_stopping_restores_the_best_weights() -> None:
    # Random labels: the model memorises the training set and the validation
    # loss (other random labels) gets worse after the first epochs.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 30)).astype(np.float32)
    y = rng.integers(0, 4, 200)
    Xv = rng.normal(size=(100, 30)).astype(np.float32)
    yv = rng.integers(0, 4, 100)
    cfg = TrainConfig(epochs=40, patience=3, lr=3e-2, batch_size=32)
    res = fit(lambda: MLP(30, 256, 4, dropout=0.0), X, y, X_val=Xv, y_val=yv, config=cfg)
    val = [h["val_loss"] for h in res.history]
    assert res.stopped_early and len(val) < 40
    assert res.best_epoch == int(np.argmin(val)) + 1
    assert len(val) == res.best_epoch + 3  # stopped after `patience` worse epochs
    assert val[-1] > val[res.best_epoch - 1]
    probs = predict_proba(res.model, Xv)
    restored = float(-np.log(probs[np.arange(100), yv]).mean())
    assert restored == pytest.approx(res.best["val_loss"], rel=1e-4)


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
def test_cuda_fit_uses_amp_and_reports_gpu_memory() -> None:
    X, y = blobs()
    rec = Recorder()
    res = fit(
        lambda: SmallCNN(3, (5, 2), widths=(8, 8, 8)),
        X,
        y,
        device="cuda",
        config=TrainConfig(epochs=2, patience=None),
        on_metric=rec,
    )
    assert res.device.startswith("cuda") and res.amp and res.amp_dtype in ("bf16", "fp16")
    assert res.history[-1]["gpu_mem_mb"] > 0
    assert [x for n, _, x in rec.calls if n == "gpu_mem_mb"] == [1, 2]
    probs = predict_proba(res.model, X)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-3)


def test_without_validation_keeps_the_last_epoch() -> None:
    X, y = blobs()
    res = fit(mlp, X, y, config=TrainConfig(epochs=3, val_fraction=0.0, patience=2))
    assert res.best_epoch == 3 and res.history[-1]["val_loss"] is None


def test_bf16_autocast_on_cpu_trains() -> None:
    X, y = blobs()
    res = fit(mlp, X, y, config=TrainConfig(epochs=2, amp=True, lr=1e-2), device="cpu")
    assert res.amp and res.amp_dtype == "bf16"
    assert np.isfinite(res.history[-1]["train_loss"])


def test_small_loss_trimming_and_transform_run() -> None:
    X, y = blobs(n=120, d=64)
    seen_shapes = []

    def transform(xb: torch.Tensor) -> torch.Tensor:
        seen_shapes.append(tuple(xb.shape))
        return xb

    cfg = TrainConfig(
        epochs=3,
        trim_fraction=0.3,
        trim_warmup=1,
        batch_size=50,
        transform=transform,
        patience=None,
    )
    res = fit(lambda: SmallCNN(3, (8, 8), widths=(4, 8, 8)), X, y, config=cfg)
    assert len(res.history) == 3 and seen_shapes and seen_shapes[0][1] == 64


def test_bad_input_gives_actionable_errors() -> None:
    X, y = blobs()
    with pytest.raises(DataError, match="has 239 labels but X has 240 rows"):
        fit(mlp, X, y[:-1])
    Xn = X.copy()
    Xn[3, 2] = np.nan
    with pytest.raises(DataError, match="NaN or infinite values in 1 row"):
        fit(mlp, Xn, y)
    with pytest.raises(DataError, match="integer class indices"):
        fit(mlp, X, y + 0.5)
    with pytest.raises(DataError, match=r"\[n, features"):
        fit(mlp, X[:, 0], y)
    with pytest.raises(ValueError, match=r"TrainConfig\.optimizer must be one of"):
        fit(mlp, X, y, config=TrainConfig(optimizer="lbfgs"))
    with pytest.raises(DataError, match="give both X_val and y_val"):
        fit(mlp, X, y, X_val=X)


# -- metrics -------------------------------------------------------------------------------


def test_on_metric_gets_per_epoch_metrics_with_prefix() -> None:
    X, y = blobs()
    rec = Recorder()
    fit(
        mlp,
        X,
        y,
        config=TrainConfig(epochs=3, patience=None),
        on_metric=rec,
        prefix="m/",
        device="cpu",
    )
    for name in ("m/train_loss", "m/val_loss", "m/val_acc", "m/samples_per_s", "m/lr"):
        xs = [x for n, _, x in rec.calls if n == name]
        assert xs == [1, 2, 3], name
    assert all(isinstance(v, float) for _, v, _ in rec.calls)
    assert "m/gpu_mem_mb" not in rec.names()


def test_default_on_metric_outside_a_kernel_does_nothing() -> None:
    fn = default_metric_fn()
    assert not isinstance(fn, SandboxMetricFn)
    fn("x", 1.0, x=1)  # no error, no output
    X, y = blobs()
    fit(mlp, X, y, config=TrainConfig(epochs=1))  # on_metric=None is fine


def _fake_kernel(monkeypatch: pytest.MonkeyPatch, log_metric) -> None:
    shell = types.SimpleNamespace(kernel=object())
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: shell  # type: ignore[attr-defined]
    helpers = types.ModuleType("agentdeck.engine.sandbox.helpers")
    helpers.log_metric = log_metric  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "agentdeck.engine.sandbox.helpers", helpers)


def test_default_on_metric_in_a_kernel_uses_the_sandbox_helper(monkeypatch) -> None:
    got = []

    def log_metric(name, value, step=None, x=None, source="sandbox"):
        got.append((name, value, x, source))

    _fake_kernel(monkeypatch, log_metric)
    fn = default_metric_fn()
    assert isinstance(fn, SandboxMetricFn)
    fn("fold1/val_loss", 0.5, x=2)
    assert got == [("fold1/val_loss", 0.5, 2, "trainer")]


def test_sandbox_helper_without_source_keyword_still_gets_metrics(monkeypatch) -> None:
    got = []

    def log_metric(name, value, step=None, x=None):
        got.append((name, value, x))

    _fake_kernel(monkeypatch, log_metric)
    X, y = blobs()
    fit(mlp, X, y, config=TrainConfig(epochs=2, patience=None))
    assert (got[0][0], got[0][2]) == ("train_loss", 1)
    assert {n for n, _, _ in got} >= {"train_loss", "val_loss", "val_acc"}


def test_a_failing_sandbox_helper_never_stops_training(monkeypatch) -> None:
    def log_metric(name, value, step=None, x=None, source=None):
        raise RuntimeError("display channel closed")

    _fake_kernel(monkeypatch, log_metric)
    X, y = blobs()
    with pytest.warns(RuntimeWarning, match="not reaching the sandbox"):
        res = fit(mlp, X, y, config=TrainConfig(epochs=2, patience=None))
    assert len(res.history) == 2


def test_metric_event_fn_makes_trainer_metric_events() -> None:
    events = []
    fn = metric_event_fn(events.append, step=4)
    fn("fold2/val_acc", 0.75, x=3)
    fn("train_loss", float("nan"), x=1)
    assert isinstance(events[0], Metric)
    assert (events[0].name, events[0].value, events[0].x, events[0].step, events[0].source) == (
        "fold2/val_acc",
        0.75,
        3.0,
        4,
        "trainer",
    )
    assert events[1].value is None


# -- cross_fit -----------------------------------------------------------------------------


def test_cross_fit_oof_rows_are_probabilities_and_metrics_are_named() -> None:
    X, y = blobs(n=150)
    rec = Recorder()
    res = cross_fit(mlp, X, y, folds=3, config=TrainConfig(epochs=2, patience=None), on_metric=rec)
    assert res.oof_probs.shape == (150, 3)
    np.testing.assert_allclose(res.oof_probs.sum(1), 1.0, atol=1e-5)
    assert sorted(np.bincount(res.fold_of).tolist()) == [50, 50, 50]
    assert [f.fold for f in res.folds] == [1, 2, 3]
    assert all(f.n_train + f.n_holdout == 150 for f in res.folds)
    names = rec.names()
    assert {"fold1/train_loss", "fold3/val_acc", "cv/holdout_acc", "cv/oof_acc"} <= names
    assert [x for n, _, x in rec.calls if n == "cv/holdout_acc"] == [1, 2, 3]
    assert res.samples_per_s > 0 and res.device == str(pick_device(None))


def test_cross_fit_probabilities_come_from_models_that_did_not_see_the_sample() -> None:
    # Random features and random labels: a fold model memorises what it trained
    # on and is at chance elsewhere, so in-fold and out-of-fold accuracy differ.
    rng = np.random.default_rng(1)
    n, k = 160, 4
    X = rng.normal(size=(n, 40)).astype(np.float32)
    y = rng.integers(0, k, n)
    cfg = TrainConfig(epochs=60, lr=2e-2, batch_size=32, patience=None, val_fraction=0.0)
    res = cross_fit(
        lambda: MLP(40, 256, k, dropout=0.0), X, y, folds=4, config=cfg, keep_models=True
    )
    assert len(res.models) == 4
    for f, model in enumerate(res.models):
        seen = res.fold_of != f
        p = predict_proba(model, X)
        assert (p[seen].argmax(1) == y[seen]).mean() > 0.95  # memorised
        np.testing.assert_allclose(p[~seen], res.oof_probs[~seen], atol=1e-5)
    assert (res.oof_pred == y).mean() < 0.5  # chance is 0.25


def test_cross_fit_train_mask_excludes_samples_from_training() -> None:
    X, y = blobs(n=150)
    mask = np.ones(150, dtype=bool)
    mask[:30] = False
    res = cross_fit(mlp, X, y, folds=3, config=TrainConfig(epochs=1), train_mask=mask)
    assert sum(f.n_train for f in res.folds) == 2 * 120
    assert not np.isnan(res.oof_probs).any()  # masked samples still get OOF rows
    with pytest.raises(DataError, match="train_mask must have shape"):
        cross_fit(mlp, X, y, folds=3, train_mask=mask[:10])


def test_cross_fit_checks_folds_and_classes() -> None:
    X, y = blobs(n=30)
    with pytest.raises(DataError, match="folds must be between 2"):
        cross_fit(mlp, X, y, folds=1)
    with pytest.raises(DataError, match="outputs 3 classes but the labels need 5"):
        cross_fit(mlp, X, y, folds=2, num_classes=5, config=TrainConfig(epochs=1))


# -- models --------------------------------------------------------------------------------


def test_small_cnn_takes_flat_and_shaped_images() -> None:
    m = SmallCNN(10).eval()
    assert m(torch.zeros(2, 784)).shape == (2, 10)
    assert m(torch.zeros(2, 28, 28)).shape == (2, 10)
    assert SmallCNN(10, (8, 8)).eval()(torch.zeros(3, 64)).shape == (3, 10)
    assert sum(p.numel() for p in m.parameters()) < 500_000
    with pytest.raises(ValueError, match="expects rows of 1x28x28 = 784 values, got 64"):
        m(torch.zeros(2, 64))


def test_image_augment_keeps_layout_and_is_identity_when_off() -> None:
    x = torch.rand(5, 64)
    assert ImageAugment((8, 8))(x).shape == (5, 64)
    assert torch.equal(ImageAugment((8, 8), max_shift=0, hflip=False)(x), x)


# -- system metrics ------------------------------------------------------------------------


def test_system_sampler_emits_process_metrics_and_stops_promptly() -> None:
    events: list[Metric] = []
    lock = threading.Lock()

    def emit(ev):
        with lock:
            events.append(ev)
        return ev

    sampler = SystemSampler(None, emit, interval_s=0.05, gpu=False).start()
    deadline = time.time() + 5
    while time.time() < deadline:
        sum(i * i for i in range(20000))  # some CPU work to measure
        with lock:
            if len({e.name for e in events}) >= 2 and len(events) >= 4:
                break
        time.sleep(0.01)
    t0 = time.perf_counter()
    sampler.stop()
    assert time.perf_counter() - t0 < 1.0
    assert not sampler.running
    with lock:
        got = list(events)
    names = {e.name for e in got}
    assert {"system/cpu_percent", "system/rss_mb"} <= names
    assert all(e.source == "system" and e.x is not None and e.x >= 0 for e in got)
    rss = [e.value for e in got if e.name == "system/rss_mb"]
    assert all(v is not None and v > 10 for v in rss)  # this process holds torch: > 10 MB
    n = len(got)
    time.sleep(0.15)
    assert len(events) == n  # nothing after stop


def test_system_sampler_counts_children_and_ends_with_its_process() -> None:
    import subprocess

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        events: list[Metric] = []
        sampler = SystemSampler(child.pid, events.append, interval_s=0.05, gpu=False).start()
        wait_for(lambda: any(e.name == "system/rss_mb" for e in events), "a first sample", 5)
        assert any(e.name == "system/rss_mb" and e.value > 1 for e in events)
        child.kill()
        child.wait()
        # the process is gone: the thread ends by itself
        wait_for(lambda: not sampler.running, "the sampler to stop with its process", 5)
        sampler.stop()
    finally:
        child.kill()


def test_parse_nvidia_smi_output() -> None:
    text = "35, 1024\n0, 3\nN/A, 5\n\n"
    assert parse_nvidia_smi(text) == [(35.0, 1024.0), (0.0, 3.0)]
