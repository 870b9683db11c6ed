"""Training throughput of the trainer: samples per second, median over epochs.

    python bench/trainer_bench.py                 # auto device (CUDA > MPS > CPU)
    python bench/trainer_bench.py --device cpu --epochs 5 --n 8192

Models: SmallCNN on 28x28 images (widths 16-32-64 as the noisy-labels
reference uses, and the default 32-64-128) and an MLP 784-512-256-10. Data is
random (throughput does not depend on pixel values). On CUDA, mixed precision
is on (bf16 where supported, else fp16 + GradScaler) and the GPU memory peak
is printed. Each figure is the median of the per-epoch samples/s of ``fit``
(forward + backward + optimiser step, validation excluded).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from agentdeck.engine.trainer import MLP, SmallCNN, TrainConfig, fit, pick_device, predict_proba


def bench_one(name, model_fn, X, y, *, epochs, batch_size, device, amp):
    cfg = TrainConfig(
        epochs=epochs, batch_size=batch_size, val_fraction=0.0, patience=None, amp=amp, lr=1e-3
    )
    res = fit(model_fn, X, y, config=cfg, device=device, on_metric=lambda *a, **k: None)
    rates = [h["samples_per_s"] for h in res.history]
    t0 = time.perf_counter()
    predict_proba(res.model, X)
    pred_rate = len(X) / (time.perf_counter() - t0)
    mem = res.history[-1].get("gpu_mem_mb")
    params = sum(p.numel() for p in res.model.parameters())
    return {
        "model": name,
        "params": params,
        "train_median": statistics.median(rates),
        "train_min": min(rates),
        "train_max": max(rates),
        "predict": pred_rate,
        "amp": res.amp_dtype,
        "gpu_mem_mb": mem,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default=None, help="auto (default), cpu, cuda, mps")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--n", type=int, default=None, help="samples (default 8192 CPU, 60000 GPU)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--amp", choices=("auto", "on", "off"), default="auto")
    args = ap.parse_args()

    device = pick_device(args.device)
    n = args.n or (8192 if device.type == "cpu" else 60_000)
    amp = {"auto": None, "on": True, "off": False}[args.amp]
    rng = np.random.default_rng(0)
    X = rng.random((n, 784), dtype=np.float32)
    y = rng.integers(0, 10, n)
    threads = torch.get_num_threads()
    print(
        f"torch {torch.__version__}, device {device}, {n} samples, batch {args.batch_size}, "
        f"{args.epochs} epochs, torch threads {threads}"
    )
    if device.type == "cuda":
        print(f"GPU: {torch.cuda.get_device_name(device)}")
    rows = [
        bench_one(
            "SmallCNN 16-32-64 (28x28)",
            lambda: SmallCNN(10, (28, 28), widths=(16, 32, 64)),
            X,
            y,
            epochs=args.epochs,
            batch_size=args.batch_size,
            device=device,
            amp=amp,
        ),
        bench_one(
            "SmallCNN 32-64-128 (28x28)",
            lambda: SmallCNN(10, (28, 28)),
            X,
            y,
            epochs=args.epochs,
            batch_size=args.batch_size,
            device=device,
            amp=amp,
        ),
        bench_one(
            "MLP 784-512-256-10",
            lambda: MLP(784, (512, 256), 10),
            X,
            y,
            epochs=args.epochs,
            batch_size=args.batch_size,
            device=device,
            amp=amp,
        ),
    ]
    print(
        f"{'model':28} {'params':>8} {'train/s median':>15} {'(min-max)':>17} "
        f"{'predict/s':>10} {'amp':>5} {'gpu MiB':>8}"
    )
    for r in rows:
        mem = "" if r["gpu_mem_mb"] is None else f"{r['gpu_mem_mb']:.0f}"
        print(
            f"{r['model']:28} {r['params']:8d} {r['train_median']:15,.0f} "
            f"{r['train_min']:8,.0f}-{r['train_max']:<8,.0f} {r['predict']:10,.0f} "
            f"{r['amp']:>5} {mem:>8}"
        )


if __name__ == "__main__":
    main()
