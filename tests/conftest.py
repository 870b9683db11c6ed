"""Shared test fixtures.

``shared_data`` points at ``../shared/data`` (real dataset samples kept beside
the project on the development machines); tests that need it skip cleanly
when it is absent, as on a user's machine.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SEED_MD = FIXTURES / "seed_000.md"
SHARED = ROOT.parent / "shared"

# A test must never reach a real API with a real key.
os.environ.pop("ANTHROPIC_API_KEY", None)

# OpenMP threads that wait for work sleep instead of spinning. torch's CPU kernels use
# libgomp, whose default spin-wait makes training 6x slower when other processes share
# the cores (measured on the 2-core development machines: a SmallCNN ran 3 epochs in
# 42 s with other jobs' tests running, 6.6 s with this). Set here, before anything
# imports torch; the sandbox kernels inherit it (OMP_* variables pass its scrubbed
# environment). The thread count is unchanged, so every result is the same.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture
def seed_md() -> Path:
    return SEED_MD


@pytest.fixture
def shared_data() -> Path:
    d = SHARED / "data"
    if not d.is_dir():
        pytest.skip("../shared/data is not present on this machine")
    return d


# Seals are made with a throwaway key, never the user's ~/.config/agentdeck/seal.key.
_SEAL_DIR = Path(tempfile.mkdtemp(prefix="agentdeck-test-seal-"))
os.environ["AGENTDECK_SEAL_KEY"] = str(_SEAL_DIR / "seal.key")
