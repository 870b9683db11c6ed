"""Helpers for code that runs inside the sandbox kernel.

``log_metric`` is pre-imported into the kernel's namespace at start (and after
every restart), and can also be imported explicitly::

    from agentdeck.engine.sandbox.helpers import log_metric
    log_metric("val_loss", 0.31, step=120, x=3)

Inside a Jupyter kernel it publishes display data with the MIME type
``application/vnd.agentdeck.metric+json`` and the payload
``{"name", "value", "step", "x", "source"}``. The sandbox hands each such payload to its
``on_metric`` callback (never to stdout) and the python tool turns it into a
``metric`` event, so plots update while the code is still running.

Outside a kernel (a plain script, a test, the engine process) it validates its
arguments and does nothing else, unless a fallback sink was set with
``set_fallback_sink`` (for example by the trainer when it runs in the engine
process). It never raises for want of a kernel.

This module is imported inside the kernel: keep it free of heavy imports.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

METRIC_MIME = "application/vnd.agentdeck.metric+json"
#: The same as ``agentdeck.engine.events.METRIC_SOURCES`` (not imported: this module stays light).
METRIC_SOURCES = ("sandbox", "trainer", "system", "grader", "agent")

MetricSink = Callable[[dict[str, Any]], None]
_fallback_sink: MetricSink | None = None


def set_fallback_sink(sink: MetricSink | None) -> None:
    """Where ``log_metric`` sends payloads when it is not inside a kernel (None: nowhere)."""
    global _fallback_sink
    _fallback_sink = sink


def _number(what: str, value: Any, *, allow_none: bool) -> float | None:
    if value is None:
        if allow_none:
            return None
        raise TypeError(f"log_metric: {what} must be a number, got None")
    if hasattr(value, "item") and callable(value.item):
        try:
            value = value.item()  # numpy scalar, 0-d array, one-element tensor
        except (ValueError, RuntimeError) as exc:
            raise TypeError(
                f"log_metric: {what} must be a single number, got an array or tensor "
                f"with more than one element ({exc})"
            ) from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise TypeError(
                f"log_metric: {what} must be a number, got {type(value).__name__} {value!r:.60}"
            ) from None
    return float(value)


def metric_payload(
    name: str, value: Any, step: Any = None, x: Any = None, source: str = "sandbox"
) -> dict[str, Any]:
    """Validate and normalise one metric: ``{"name", "value", "step", "x", "source"}``.

    ``value`` and ``x`` become floats, with NaN and infinities as None (JSON has
    no NaN; the log would write null anyway); ``step`` an int or None. Raises
    ``TypeError`` with a message naming the bad argument. ``source`` is one of
    ``METRIC_SOURCES`` (the trainer passes ``"trainer"``).
    """
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"log_metric: name must be a non-empty string, got {name!r:.60}")
    val = _number("value", value, allow_none=False)
    xv = _number("x", x, allow_none=True)
    st: int | None = None
    if step is not None:
        sv = _number("step", step, allow_none=False)
        assert sv is not None
        if not math.isfinite(sv) or sv != int(sv):
            raise TypeError(f"log_metric: step must be a whole number, got {step!r:.60}")
        st = int(sv)
    if source not in METRIC_SOURCES:
        raise TypeError(
            f"log_metric: source must be one of {', '.join(METRIC_SOURCES)}, got {source!r:.40}"
        )
    return {
        "name": name.strip(),
        "value": _finite(val),
        "step": st,
        "x": _finite(xv),
        "source": source,
    }


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def _in_kernel() -> bool:
    """True inside a Jupyter kernel (an IPython shell with a ``kernel`` attribute)."""
    ipython_mod = sys.modules.get("IPython")
    if ipython_mod is None:
        return False
    try:
        shell = ipython_mod.get_ipython()
    except Exception:  # noqa: BLE001 - any IPython oddity means: not in a kernel
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None


def log_metric(
    name: str, value: Any, step: Any = None, x: Any = None, *, source: str = "sandbox"
) -> None:
    """Report a metric live (e.g. per epoch).

    ``step`` is the training step or iteration; ``x`` the value to plot against
    (epoch, fraction of data, ...); ``source`` tags who measured it (the
    engine's trainer passes ``"trainer"``). Inside the sandbox kernel the
    metric reaches the engine as a ``metric`` event; elsewhere this does
    nothing (see module doc).
    """
    payload = metric_payload(name, value, step, x, source)
    if _in_kernel():
        from IPython.display import publish_display_data

        publish_display_data({METRIC_MIME: payload})  # type: ignore[no-untyped-call]
    elif _fallback_sink is not None:
        _fallback_sink(payload)


__all__ = ["METRIC_MIME", "log_metric", "metric_payload", "set_fallback_sink"]
