"""The reference detector of the noisy-labels task (what the scripted agent runs).

Method (measured choices: docs/trainer.md):

1. Out-of-fold class probabilities from a small ensemble trained with
   ``agentdeck.engine.trainer.cross_fit``: a CNN (for square images) and an MLP, each
   trained with the small-loss trick (the highest-loss 20% of every batch is
   ignored after the first epochs, so the networks learn the clean signal
   rather than the flipped labels) and early-stopped on held-out accuracy.
2. A noise transition matrix ``T[true, given]`` estimated by EM from the
   ensemble's probabilities and the given labels; it learns symmetric noise
   as well as confusable-pair noise. Each sample then gets ``q = P(given
   label is wrong)``.
3. The flagged set is the top of the ``q`` ranking, cut where the expected F1
   is highest (so the noise rate is estimated, not assumed).
4. Round 2: the same ensemble is cross-fitted again with the flagged samples
   left out of training (no trimming now: the rest is mostly clean); every
   sample gets new out-of-fold probabilities from these cleaner models, and
   steps 2-3 run again on them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

#: Fraction of each batch's highest-loss samples ignored (small-loss trick).
TRIM_FRACTION = 0.2
#: Above this many samples a CPU run does one round only (time).
CPU_TWO_ROUNDS_MAX = 20_000


@dataclass(frozen=True)
class Member:
    """One model of the ensemble: a name for metrics, how to build it, how to train it."""

    name: str
    build: Callable[[], Any]
    config: Any


def _prepare(X: Any) -> np.ndarray:
    """Float32 rows scaled to [0, 1] by the data's maximum, then standardised."""
    Xf = np.asarray(X, dtype=np.float32).reshape(len(X), -1)
    top = float(Xf.max()) if Xf.size else 1.0
    if top > 0:
        Xf = Xf / top
    mean, std = float(Xf.mean()), float(Xf.std())
    return (Xf - mean) / (std if std > 0 else 1.0)


def _auto_epochs(n: int) -> tuple[int, int]:
    """(CNN epochs, MLP epochs): fewer passes for large data, more for tiny data."""
    if n >= 30_000:
        return 8, 15
    if n >= 5_000:
        return 10, 20
    return 20, 40


def ensemble(n: int, d: int, k: int, *, epochs: int | None = None, seed: int = 0) -> list[Member]:
    """The models trained for one data set of ``n`` rows of ``d`` values and ``k`` classes."""
    from agentdeck.engine.trainer import MLP, SmallCNN, TrainConfig, square_image_shape

    cnn_epochs, mlp_epochs = _auto_epochs(n) if epochs is None else (epochs, 2 * epochs)
    common: dict[str, Any] = dict(
        batch_size=128,
        scheduler="onecycle",
        patience=None,
        monitor="val_acc",
        val_fraction=0.1,
        trim_fraction=TRIM_FRACTION,
        trim_warmup=2,
        seed=seed,
    )
    members: list[Member] = []
    shape = square_image_shape(d)
    if shape is not None:
        members.append(
            Member(
                "cnn",
                lambda: SmallCNN(k, shape, widths=(16, 32, 64), dropout=0.2),
                TrainConfig(epochs=cnn_epochs, lr=0.05, **common),
            )
        )
    members.append(
        Member(
            "mlp",
            lambda: MLP(d, (512, 256), k, dropout=0.3),
            TrainConfig(epochs=mlp_epochs, lr=0.01, **common),
        )
    )
    return members


def estimate_transition(
    probs: np.ndarray, y: np.ndarray, *, iters: int = 200, tol: float = 1e-7
) -> tuple[np.ndarray, np.ndarray]:
    """EM for the noise transition ``T[true, given]`` and each label's posterior.

    Model: the true class of sample i is drawn from ``probs[i]`` (the
    classifier's belief), the given label from ``T[true]``. E-step: posterior
    of the true class given ``probs[i]`` and the given label; M-step: ``T``
    from those posteriors. Returns (T, posterior [n, k]).
    """
    n, k = probs.shape
    p = np.clip(probs.astype(np.float64), 1e-12, None)
    onehot = np.zeros((n, k))
    onehot[np.arange(n), y] = 1.0
    T = np.full((k, k), 0.1 / max(1, k - 1))
    np.fill_diagonal(T, 0.9)
    post = p
    for _ in range(iters):
        post = p * T[:, y].T
        post /= post.sum(axis=1, keepdims=True)
        counts = post.T @ onehot + 1e-9  # [true, given]
        T_new = counts / counts.sum(axis=1, keepdims=True)
        done = np.abs(T_new - T).max() < tol
        T = T_new
        if done:
            break
    return T, post


def flag_by_expected_f1(q: np.ndarray) -> np.ndarray:
    """Indices of the top of ``q`` (probability that a label is wrong), cut where
    the expected F1 against the expected number of wrong labels is highest."""
    order = np.argsort(-q, kind="stable")
    gains = np.cumsum(q[order])
    k = np.arange(1, len(q) + 1)
    expected_f1 = 2.0 * gains / (k + q.sum())
    cut = int(np.argmax(expected_f1)) + 1
    return np.sort(order[:cut])


def _oof_ensemble(
    X: np.ndarray,
    y: np.ndarray,
    members: list[Member],
    *,
    folds: int,
    device: str | None,
    on_metric: Any,
    prefix: str,
    train_mask: np.ndarray | None = None,
) -> tuple[np.ndarray, list[dict[str, Any]], str]:
    """Mean out-of-fold probabilities of the members, their summaries, the device."""
    from agentdeck.engine.trainer import cross_fit

    k = int(y.max()) + 1
    probs = []
    summaries = []
    device_used = "cpu"
    for m in members:
        res = cross_fit(
            m.build,
            X,
            y,
            folds=folds,
            config=m.config,
            device=device,
            on_metric=on_metric,
            num_classes=k,
            prefix=f"{prefix}{m.name}/",
            train_mask=train_mask,
        )
        device_used = res.device
        probs.append(res.oof_probs)
        summaries.append(
            {
                "name": f"{prefix}{m.name}",
                "oof_acc": float((res.oof_pred == y).mean()),
                "seconds": round(res.seconds, 1),
                "samples_per_s": round(res.samples_per_s),
            }
        )
    return np.mean(probs, axis=0), summaries, device_used


def _flag(p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flagged indices, q = P(label wrong), T) from ensemble probabilities."""
    T, post = estimate_transition(p, y)
    q = 1.0 - post[np.arange(len(y)), y]
    return flag_by_expected_f1(q).astype(np.int64), q, T


def detect_noisy(
    X_train: Any,
    y_train: Any,
    *,
    folds: int = 5,
    epochs: int | None = None,
    seed: int = 0,
    on_metric: Any = None,
    device: str | None = None,
    rounds: int | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Indices (sorted int64) of the training samples whose labels look corrupted.

    ``epochs``: CNN epochs (the MLP trains twice as many); None picks by data
    size. ``rounds=2`` re-fits the ensemble without the samples flagged in
    round 1 (and without trimming: that data is mostly clean) and flags again
    from the cleaner models; None = 2, except 1 on a CPU for more than
    ``CPU_TWO_ROUNDS_MAX`` samples (the full 60k Fashion-MNIST would take about
    ten minutes on two cores). Returns (indices, info): device, seconds, the
    final ensemble's out-of-fold accuracy against the given labels, the
    estimated noise rate, the number flagged, and per round the same figures
    plus that round's ``indices``.
    """
    t0 = time.perf_counter()
    y = np.asarray(y_train).astype(np.int64).ravel()
    X = _prepare(X_train)
    if len(X) != len(y):
        raise ValueError(f"X_train has {len(X)} rows but y_train has {len(y)} labels")
    n, d = X.shape
    if rounds is None:
        from agentdeck.engine.trainer import pick_device

        on_cpu = pick_device(device).type == "cpu"
        rounds = 1 if on_cpu and n > CPU_TWO_ROUNDS_MAX else 2
    if rounds < 1:
        raise ValueError(f"rounds must be 1 or more, got {rounds}")
    k = int(y.max()) + 1
    members = ensemble(n, d, k, epochs=epochs, seed=seed)
    history: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    mask: np.ndarray | None = None
    device_used = "cpu"
    idx = np.zeros(0, dtype=np.int64)
    q = np.zeros(n)
    p = np.zeros((n, k))
    for r in range(1, rounds + 1):
        t_round = time.perf_counter()
        if r > 1:
            members = [
                Member(m.name, m.build, replace(m.config, trim_fraction=0.0, seed=seed + r - 1))
                for m in members
            ]
        p, sums, device_used = _oof_ensemble(
            X,
            y,
            members,
            folds=folds,
            device=device,
            on_metric=on_metric,
            prefix="" if r == 1 else f"round{r}/",
            train_mask=mask,
        )
        summaries += sums
        idx, q, T = _flag(p, y)
        history.append(
            {
                "round": r,
                "flagged": len(idx),
                "estimated_noise_rate": float(q.mean()),
                "oof_acc": float((p.argmax(1) == y).mean()),
                "transition_diag": np.round(np.diag(T), 3).tolist(),
                "seconds": round(time.perf_counter() - t_round, 1),
                "indices": idx,
            }
        )
        mask = np.ones(n, dtype=bool)
        mask[idx] = False
    info = {
        "device": device_used,
        "n": n,
        "num_classes": k,
        "oof_acc": float((p.argmax(1) == y).mean()),
        "estimated_noise_rate": float(q.mean()),
        "flagged": len(idx),
        "members": summaries,
        "rounds": history,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    return idx, info


def detection_code(
    *,
    folds: int = 5,
    epochs: int | None = None,
    seed: int = 0,
    rounds: int | None = None,
    output: str = "predictions.npy",
) -> str:
    """Python source for the sandbox (X_train, y_train in its namespace): this module's
    code (the sandbox cannot import agentdeck's tasks, only its trainer), then
    ``detect_noisy``; saves the indices with ``np.save(output, idx)`` and prints a
    short summary.

    ``folds``, ``epochs`` and ``rounds`` go to ``detect_noisy`` as they are; the
    defaults are its own and the scripted agent's. ``rounds`` appears in the
    code only when given, so the default code is the same as before it existed.
    """
    more = "" if rounds is None else f", rounds={rounds!r}"
    return (
        _library_source()
        + f"""\

# Out-of-fold probabilities from a small CNN + MLP ensemble (agentdeck.engine.trainer.cross_fit,
# trained with the small-loss trick), an EM estimate of the label-noise transition
# matrix, then flag the labels most likely wrong (cut at the best expected F1);
# a second round re-fits without the flagged samples and flags again.
import numpy as np

idx, info = detect_noisy(X_train, y_train, folds={folds}, epochs={epochs!r}, seed={seed}{more})
np.save({output!r}, idx)
print(f"device: {{info['device']}}")
for m in info["members"]:
    print(f"  {{m['name']}}: OOF accuracy vs given labels {{m['oof_acc']:.4f}}, "
          f"{{m['samples_per_s']}} samples/s, {{m['seconds']}} s")
for r in info["rounds"]:
    print(f"round {{r['round']}}: flagged {{r['flagged']}}, estimated noise rate "
          f"{{r['estimated_noise_rate']:.3f}}, {{r['seconds']}} s")
print(f"ensemble OOF accuracy vs given labels: {{info['oof_acc']:.4f}}")
print(f"estimated noise rate: {{info['estimated_noise_rate']:.3f}}")
print(f"flagged {{info['flagged']}} of {{info['n']}} samples -> {output}")
print(f"seconds: {{info['seconds']}}")
"""
    )


def _library_source() -> str:
    """This module's source up to ``detection_code``: the detector the cell defines."""
    import inspect
    import sys

    src = inspect.getsource(sys.modules[__name__])
    return src[: src.index("\ndef detection_code(")].rstrip() + "\n"
