"""Prices of Claude models and the cost of one model call.

Prices are USD per million tokens (MTok), as Anthropic publishes them:
base input, output, 5-minute cache writes, cache hits ("cache read"), and
1-hour cache writes for reference. The usage the API reports per call has
four counts (``input_tokens`` is the uncached part of the prompt,
``cache_creation_input_tokens`` was written to the cache,
``cache_read_input_tokens`` was read from it, ``output_tokens``), so

    cost = (input * in + cache_creation * cache_write + cache_read * cache_read
            + output * out) / 1e6

Cache writes are billed at the 5-minute rate: agentdeck only asks for the
default ephemeral (5-minute) cache.

Source: https://platform.claude.com/docs/en/about-claude/pricing ("Model
pricing"), and the model pages (https://platform.claude.com/docs/en/models/...)
for Claude Sonnet 5, Sonnet 5.5 and Opus 5.5; checked 2026-11-25 (PRICES_CHECKED).
Not modelled: Batch API discounts, the >200K-token long-context rates of older
Sonnet models on the 1M-context beta, regional (``inference_geo``) surcharges,
and Claude Haiku 5.5, whose price depends on the prompt length (so it is left
out: an unknown model gets no cost and one warning, never a wrong one).

A model id resolves to its row whatever its spelling: aliases
(``claude-sonnet-4-5``), dated snapshots (``claude-sonnet-4-5-20250929``),
``-latest``, ``-0`` (``claude-sonnet-4-0``), old-style names
(``claude-3-7-sonnet-20250219``), Bedrock (``us.anthropic.claude-...-v1:0``)
and Vertex (``claude-...@20250929``) ids, and a ``[1m]`` suffix.
To add a model, add a row to ``PRICES`` under its alias.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agentdeck.engine.events import Usage

PRICES_SOURCE = "https://platform.claude.com/docs/en/about-claude/pricing"
PRICES_CHECKED = "2026-11-25"


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    #: 5-minute cache write (1.25x input on every current model).
    cache_write: float
    #: Cache hits and refreshes.
    cache_read: float
    #: 1-hour cache write, for reference (agentdeck uses the 5-minute cache).
    cache_write_1h: float | None = None


_OPUS_LEGACY = Price(
    input=15.0, output=75.0, cache_write=18.75, cache_read=1.50, cache_write_1h=30.0
)
_OPUS_45 = Price(input=5.0, output=25.0, cache_write=6.25, cache_read=0.50, cache_write_1h=10.0)
_SONNET_4 = Price(input=3.0, output=15.0, cache_write=3.75, cache_read=0.30, cache_write_1h=6.0)
_SONNET_5 = Price(input=2.0, output=10.0, cache_write=2.50, cache_read=0.20, cache_write_1h=4.0)
_FABLE_5 = Price(input=10.0, output=50.0, cache_write=12.50, cache_read=1.00, cache_write_1h=20.0)
_FABLE_51 = Price(input=10.0, output=50.0, cache_write=12.50, cache_read=0.25, cache_write_1h=20.0)

#: Canonical model id (the alias, without date) -> price.
PRICES: dict[str, Price] = {
    "claude-fable-5-1": _FABLE_51,
    "claude-mythos-5-1": _FABLE_51,
    "claude-fable-5": _FABLE_5,
    "claude-mythos-5": _FABLE_5,
    "claude-opus-5-5": Price(
        input=4.0, output=20.0, cache_write=5.0, cache_read=0.20, cache_write_1h=8.0
    ),
    "claude-opus-5": _OPUS_45,
    "claude-opus-4-8": _OPUS_45,
    "claude-opus-4-7": _OPUS_45,
    "claude-opus-4-6": _OPUS_45,
    "claude-opus-4-5": _OPUS_45,
    "claude-opus-4-1": _OPUS_LEGACY,
    "claude-opus-4": _OPUS_LEGACY,
    "claude-opus-3": _OPUS_LEGACY,
    "claude-sonnet-5-5": _SONNET_5,
    "claude-sonnet-5": _SONNET_5,
    "claude-sonnet-4-6": _SONNET_4,
    "claude-sonnet-4-5": _SONNET_4,
    "claude-sonnet-4": _SONNET_4,
    "claude-sonnet-3-7": _SONNET_4,
    "claude-haiku-4-5": Price(
        input=1.0, output=5.0, cache_write=1.25, cache_read=0.10, cache_write_1h=2.0
    ),
    "claude-haiku-3-5": Price(
        input=0.80, output=4.0, cache_write=1.0, cache_read=0.08, cache_write_1h=1.6
    ),
    "claude-haiku-3": Price(
        input=0.25, output=1.25, cache_write=0.30, cache_read=0.03, cache_write_1h=0.50
    ),
}

_PROVIDER_PREFIX = re.compile(r"^(?:[a-z]{2,6}\.)?anthropic\.")
_BEDROCK_VERSION = re.compile(r"-v\d+(?::\d+)?$")
_VERTEX_DATE = re.compile(r"@\d{8}$")
_CONTEXT_SUFFIX = re.compile(r"\[[^\]]*\]$")
_DATE = re.compile(r"-\d{8}$")
_OLD_STYLE = re.compile(r"^claude-(\d+(?:-\d+)?)-(opus|sonnet|haiku)$")


def canonical_model(model: str) -> str:
    """The alias a model id prices as: ``claude-3-7-sonnet-20250219`` -> ``claude-sonnet-3-7``."""
    m = model.strip().lower()
    m = _PROVIDER_PREFIX.sub("", m)
    m = _CONTEXT_SUFFIX.sub("", m)
    m = _BEDROCK_VERSION.sub("", m)
    m = _VERTEX_DATE.sub("", m)
    if m.endswith("-latest"):
        m = m[: -len("-latest")]
    m = _DATE.sub("", m)
    old = _OLD_STYLE.match(m)
    if old:
        m = f"claude-{old.group(2)}-{old.group(1)}"
    if m.endswith("-0") and m[:-2] in PRICES:
        m = m[:-2]
    return m


def price_for(model: str | None) -> Price | None:
    """The price row of a model id (any spelling), or None if it is not in the table."""
    if not model:
        return None
    return PRICES.get(canonical_model(model))


def cost_usd(model: str | None, usage: Usage) -> float | None:
    """USD for one call's usage (or a run's summed usage), or None if the model is unpriced."""
    p = price_for(model)
    if p is None:
        return None
    return (
        usage.input_tokens * p.input
        + usage.output_tokens * p.output
        + usage.cache_creation_input_tokens * p.cache_write
        + usage.cache_read_input_tokens * p.cache_read
    ) / 1_000_000


def cost_without_cache_usd(model: str | None, usage: Usage) -> float | None:
    """What the same call would have cost with caching off (every prompt token at the input rate)."""
    p = price_for(model)
    if p is None:
        return None
    return (usage.prompt * p.input + usage.output_tokens * p.output) / 1_000_000


def cache_savings_usd(model: str | None, usage: Usage) -> float | None:
    """USD saved by prompt caching (negative when cache writes cost more than reads saved).

    Works on one call's usage or on run totals (the sums of the same four counts).
    """
    actual = cost_usd(model, usage)
    plain = cost_without_cache_usd(model, usage)
    if actual is None or plain is None:
        return None
    return plain - actual


def known_models() -> list[str]:
    """The canonical ids in the table, for messages and ``--help``."""
    return sorted(PRICES)
