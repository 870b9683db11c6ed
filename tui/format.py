"""Small text formatters shared by the panes (numbers, durations, money, clipping)."""

from __future__ import annotations

import json
from typing import Any


def tokens(n: int | None) -> str:
    """12 -> '12', 12_345 -> '12.3k', 1_234_567 -> '1.23M'."""
    if n is None:
        return "-"
    if n < 1000:
        return str(n)
    if n < 100_000:
        return f"{n / 1000:.1f}k"
    if n < 1_000_000:
        return f"{n // 1000}k"
    return f"{n / 1_000_000:.2f}M"


def duration(s: float | None) -> str:
    """Seconds as '0.4s', '12s', '3m05s', '1h02m'."""
    if s is None:
        return "-"
    if s < 10:
        return f"{s:.1f}s"
    if s < 60:
        return f"{s:.0f}s"
    m, sec = divmod(int(s), 60)
    if m < 60:
        return f"{m}m{sec:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


def cost(usd: float | None) -> str:
    if usd is None:
        return "-"
    if usd < 0.01:
        return f"${usd:.4f}"
    if usd < 100:
        return f"${usd:.2f}"
    return f"${usd:,.0f}"


def clip(text: str, width: int) -> str:
    """One line of at most ``width`` characters, with an ellipsis when cut."""
    text = " ".join(text.split())
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    return text[: max(0, width - 1)] + "…"


def clip_middle(text: str, width: int, *, tail: int = 5) -> str:
    """One line of at most ``width`` characters, cut in the middle (``20261202-01…-fba4``):
    the head and the last ``tail`` characters, which tell run ids apart, are kept."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    if width < tail + 4:
        return clip(text, width)
    head = width - tail - 1
    return text[:head] + "…" + text[-tail:]


def value(v: Any) -> str:
    """A metric value: floats to 4 significant digits (10,000 and more as whole numbers
    with thousands separators, not ``1.239e+04``), the rest as JSON."""
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    if isinstance(v, float):
        return f"{v:,.0f}" if 1e4 <= abs(v) < 1e12 else f"{v:.4g}"
    if isinstance(v, int):
        return str(v)
    return json.dumps(v, ensure_ascii=False, default=str)


def output_text(output: Any) -> str:
    """A tool result's output as the text a person wants to read.

    Outputs are JSON as sent to the model; the common ``{"result": "...",
    "error": null}`` shape (and plain strings) are shown as their text.
    """
    if output is None:
        return ""
    if isinstance(output, str):
        return output
    if isinstance(output, dict):
        keys = set(output)
        for k in ("result", "stdout", "output", "text"):
            if k in output and isinstance(output[k], str) and keys <= {k, "error", "stderr"}:
                text = output[k]
                if output.get("stderr"):
                    text += "\n[stderr]\n" + str(output["stderr"])
                return text
    return json.dumps(output, indent=2, ensure_ascii=False, default=str)


def size(n: int | None) -> str:
    """``1.2 KB``, ``340 B``."""
    if n is None:
        return "-"
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
