"""Where the trainer's per-epoch metrics go.

``default_metric_fn()`` is used when a caller passes ``on_metric=None``: inside
the sandbox kernel it forwards to ``agentdeck.engine.sandbox.helpers.log_metric`` (which
turns a metric into a live ``metric`` event); anywhere else it does nothing.
``metric_event_fn(emit)`` is for the engine process: it turns each metric into
an ``agentdeck.engine.events.Metric`` with ``source="trainer"``.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable
from typing import Any

from agentdeck.engine.training.config import MetricFn


def in_ipython_kernel() -> bool:
    """True inside a Jupyter kernel (an IPython shell with a ``kernel`` attribute)."""
    ipython_mod = sys.modules.get("IPython")
    if ipython_mod is None:
        return False
    try:
        shell = ipython_mod.get_ipython()
    except Exception:  # noqa: BLE001 - any IPython oddity means: not in a kernel
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None


class SandboxMetricFn:
    """Forwards metrics to the sandbox helper ``log_metric`` (source="trainer").

    The helper is imported on the first call. If it accepts a ``source``
    keyword the metric is tagged ``source="trainer"``; if it raises TypeError
    for that keyword the call is repeated without it and later calls leave it
    out. Errors never reach the training loop: the first one is shown as a
    warning and the sink turns itself off.
    """

    def __init__(self) -> None:
        self._log: Callable[..., Any] | None = None
        self._with_source = True
        self._dead = False

    def __call__(self, name: str, value: float, *, x: float | None = None) -> None:
        if self._dead:
            return
        try:
            if self._log is None:
                from agentdeck.engine.sandbox.helpers import log_metric

                self._log = log_metric
            if self._with_source:
                try:
                    self._log(name, value, x=x, source="trainer")
                    return
                except TypeError as exc:
                    if "source" not in str(exc):
                        raise
                    self._with_source = False
            self._log(name, value, x=x)
        except Exception as exc:  # noqa: BLE001 - a metric sink must never stop training
            self._dead = True
            warnings.warn(
                f"trainer metrics are not reaching the sandbox ({exc}); training goes on",
                RuntimeWarning,
                stacklevel=2,
            )


def _noop(name: str, value: float, *, x: float | None = None) -> None:
    return None


def default_metric_fn() -> MetricFn:
    """The sandbox helper inside a kernel where it is importable; a no-op elsewhere."""
    if not in_ipython_kernel():
        return _noop
    try:
        import agentdeck.engine.sandbox.helpers  # noqa: F401
    except ImportError:
        return _noop
    return SandboxMetricFn()


def metric_event_fn(
    emit: Callable[[Any], Any], *, step: int | None = None, source: str = "trainer"
) -> MetricFn:
    """An ``on_metric`` that emits ``agentdeck.engine.events.Metric`` events through ``emit``.

    NaN and infinite values become ``value=None`` (JSON has no NaN).
    """
    from agentdeck.engine.events import Metric

    def on_metric(name: str, value: float, *, x: float | None = None) -> None:
        v = float(value)
        emit(
            Metric(
                name=name,
                value=v if math.isfinite(v) else None,
                step=step,
                x=None if x is None else float(x),
                source=source,
            )
        )

    return on_metric


class Prefixed:
    """Prepends ``prefix`` to every metric name (``"fold2/"`` + ``"val_loss"``)."""

    def __init__(self, inner: MetricFn, prefix: str) -> None:
        self.inner = inner
        self.prefix = prefix

    def __call__(self, name: str, value: float, *, x: float | None = None) -> None:
        self.inner(self.prefix + name, value, x=x)
