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
