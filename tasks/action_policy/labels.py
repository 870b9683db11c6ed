"""Seed 004's label mapping: AG News topics -> five agent actions.

Actions, in this fixed order (the column order of a submission)::

    0 LocalPatch            <- World
    1 TargetedRegenerate    <- Sports
    2 RefineDecomposition   <- Business
    3 ContractUpdate        <- Sci/Tech, even hash
    4 WholeRepoRegenerate   <- Sci/Tech, odd hash

AG News has four topics; the seed needed five classes, so Sci/Tech is split
deterministically by a stable hash of the text: the first byte of the SHA-256
digest of the UTF-8 bytes of ``title + " " + description``, with both fields
exactly as stored in the CSV (after CSV unquoting, before any cleaning).
Even -> ContractUpdate, odd -> WholeRepoRegenerate. Python's ``hash()`` is
never used (it is salted per process). Hashing the raw fields means the split
does not move if the text cleaning for the model changes, and an agent that
sees only the cleaned text cannot recompute it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

ACTIONS: tuple[str, ...] = (
    "LocalPatch",
    "TargetedRegenerate",
    "RefineDecomposition",
    "ContractUpdate",
    "WholeRepoRegenerate",
)
NUM_ACTIONS = len(ACTIONS)

#: AG News label (0 World, 1 Sports, 2 Business, 3 Sci/Tech) -> action, for the first three.
TOPIC_TO_ACTION: dict[int, int] = {0: 0, 1: 1, 2: 2}
SCI_TECH = 3
EVEN_ACTION, ODD_ACTION = 3, 4


def text_hash_parity(title: str, description: str) -> int:
    """0 or 1: the parity of the first byte of SHA-256(UTF-8 of ``title + " " + description``)."""
    digest = hashlib.sha256(f"{title} {description}".encode()).digest()
    return digest[0] & 1


def map_to_actions(
    topics: Sequence[int] | np.ndarray, titles: Sequence[str], descriptions: Sequence[str]
) -> np.ndarray:
    """The action label (0..4, int64) of each AG News row (topic labels 0..3)."""
    topics = np.asarray(topics, dtype=np.int64)
    if not (len(topics) == len(titles) == len(descriptions)):
        raise ValueError(
            f"got {len(topics)} topics, {len(titles)} titles and "
            f"{len(descriptions)} descriptions; they must match"
        )
    bad = (topics < 0) | (topics > SCI_TECH)
    if bad.any():
        i = int(bad.argmax())
        raise ValueError(f"row {i}: AG News topic {int(topics[i])} is not 0..3")
    out = np.empty(len(topics), dtype=np.int64)
    for i, topic in enumerate(topics.tolist()):
        if topic == SCI_TECH:
            odd = text_hash_parity(titles[i], descriptions[i])
            out[i] = ODD_ACTION if odd else EVEN_ACTION
        else:
            out[i] = TOPIC_TO_ACTION[topic]
    return out
