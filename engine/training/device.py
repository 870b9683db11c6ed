"""Device choice, mixed-precision settings, seeds and CPU threads.

``pick_device`` prefers CUDA, then Apple MPS, then the CPU. A requested device
that this machine or this torch build cannot give raises ``DeviceError`` with a
message that says what is missing and what to do.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch


class DeviceError(ValueError):
    """A requested device that is not available (the message says why and what to do)."""


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def pick_device(requested: str | torch.device | None = None) -> torch.device:
    """The device to train on.

    ``None`` or ``"auto"``: CUDA if available, else MPS, else CPU. Otherwise the
    requested device (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``; ``"gpu"`` is
    an alias of ``"cuda"``), checked: ``DeviceError`` if it cannot be used.
    """
    if isinstance(requested, torch.device):
        requested = str(requested)
    if requested is None or requested.strip().lower() in ("", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    text = requested.strip().lower()
    if text == "gpu" or text.startswith("gpu:"):
        text = "cuda" + text[3:]  # a friendly alias
    try:
        dev = torch.device(text)
    except RuntimeError:
        raise DeviceError(
            f"unknown device {requested!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        ) from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            build = torch.__version__
            why = (
                "this torch build has no CUDA support"
                if torch.version.cuda is None
                else "no CUDA GPU is visible (check the driver and CUDA_VISIBLE_DEVICES)"
            )
            raise DeviceError(
                f"device {requested!r} was requested but CUDA is not available: {why} "
                f"(torch {build}); use device='cpu' or 'auto', or install a CUDA build of torch"
            )
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise DeviceError(
                f"device {requested!r} was requested but this machine has {count} CUDA "
                f"device(s) (cuda:0..cuda:{count - 1}); pick one of those"
            )
        return dev
    if dev.type == "mps":
        if not _mps_available():
            raise DeviceError(
                f"device {requested!r} was requested but Apple MPS is not available here "
                "(it needs macOS on Apple silicon and a torch build with MPS); "
                "use device='cpu' or 'auto'"
            )
        return dev
    raise DeviceError(
        f"device {requested!r} is not supported by the trainer; use 'auto', 'cpu', 'cuda' or 'mps'"
    )


@dataclass(frozen=True)
class AmpSettings:
    """How a forward pass runs: autocast on or off, its dtype, and a GradScaler or not."""

    enabled: bool
    dtype: torch.dtype | None = None
    scaler: bool = False

    @property
    def name(self) -> str:
        if not self.enabled or self.dtype is None:
            return "off"
        return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.dtype, str(self.dtype))


def amp_settings(device: torch.device, amp: bool | None, dtype: str | None = None) -> AmpSettings:
    """Mixed precision for ``device``.

    ``amp=None`` turns it on for CUDA only. On CUDA the dtype is bf16 where the
    GPU supports it, else fp16 with a GradScaler; ``dtype`` ("bf16"/"fp16")
    overrides. ``amp=True`` on the CPU uses bf16 autocast; on MPS fp16.
    """
    if amp is None:
        amp = device.type == "cuda"
    if not amp:
        return AmpSettings(False)
    if dtype is not None and dtype not in ("bf16", "fp16"):
        raise ValueError(f"amp_dtype must be 'bf16', 'fp16' or None (auto), got {dtype!r}")
    if device.type == "cuda":
        if dtype is None:
            dtype = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        if dtype == "bf16":
            return AmpSettings(True, torch.bfloat16, scaler=False)
        return AmpSettings(True, torch.float16, scaler=True)
    if device.type == "mps":
        return AmpSettings(True, torch.float16, scaler=False)
    if dtype == "fp16":
        raise ValueError("amp_dtype='fp16' is not supported on the CPU; use 'bf16' or amp=False")
    return AmpSettings(True, torch.bfloat16, scaler=False)


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) for repeatable runs."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def available_cpus() -> int:
    """CPUs this process may run on (affinity and cgroup-aware where the OS says)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, n)


def configure_cpu_threads(num_threads: int | None = None) -> int:
    """Set torch's intra-op threads and return the number in use.

    ``num_threads`` is applied as given. With None, the thread count is only
    lowered, to the CPUs this process may use: torch defaults to the machine's
    physical cores, which in a container or under a CPU affinity mask can be
    more than the process may run on, and then its threads fight over the few
    CPUs it has. A lower count someone set on purpose is kept.
    """
    current = torch.get_num_threads()
    want = int(num_threads) if num_threads is not None else min(current, available_cpus())
    want = max(1, want)
    if want != current:
        torch.set_num_threads(want)
    return want
