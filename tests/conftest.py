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


# -- the suite's one long end-to-end run starts first ------------------------------------
#
# test_fashion_mnist_sample_end_to_end runs the shipped detector on the Fashion-MNIST
# sample through the CLI: about 3 minutes of one busy core, a quarter of the suite.
# Its `agentdeck run` is started in a subprocess as soon as the test is collected, so it
# trains beside the rest of the suite (whose tests mostly wait on kernels, servers and
# subprocesses) instead of after it; the test itself then waits for it and checks its
# exit code, log and grade. Deselect the test and the run is never started.

E2E_TEST = "tests/test_run_noisy.py::test_fashion_mnist_sample_end_to_end"


class EarlyRun:
    """``agentdeck run ARGS --no-ui --log-dir DIR`` started ahead of the test that checks
    it; its output goes to ``DIR/output.txt`` (a pipe nobody reads would fill and stall it)."""

    def __init__(self, args: list[str]) -> None:
        import subprocess
        import sys

        self.log_dir = Path(tempfile.mkdtemp(prefix="agentdeck-e2e-"))
        self.output = self.log_dir / "output.txt"
        agentdeck = Path(sys.executable).parent / "agentdeck"
        with open(self.output, "wb") as out:
            self.proc = subprocess.Popen(
                [str(agentdeck), "run", *args, "--no-ui", "--log-dir", str(self.log_dir)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait(self, timeout: float) -> tuple[int, str]:
        """The run's exit code and output, once it has ended (TimeoutExpired after ``timeout``)."""
        code = self.proc.wait(timeout)
        return code, self.output.read_text(errors="replace")

    def close(self) -> None:
        import shutil

        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.log_dir, ignore_errors=True)


EARLY_RUNS: dict[str, EarlyRun] = {}


def e2e_args(fashion_head: Path) -> list[str]:
    data = f"dataset=idx:{fashion_head}"
    return ["noisy-labels", "-T", data, "-T", "noise_rate=0.2", "-T", "seed=0"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if hasattr(config, "workerinput"):
        # a pytest-xdist worker (each one collects the whole suite): the test goes first,
        # so its file is the first work unit and one worker trains from the start while
        # the others take the rest; every worker sorts alike, so their collections agree
        items.sort(key=lambda item: item.nodeid != E2E_TEST)
        return
    head = SHARED / "data" / "fashion-mnist-head"
    if head.is_dir() and any(item.nodeid == E2E_TEST for item in items):
        EARLY_RUNS[E2E_TEST] = EarlyRun(e2e_args(head))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for run in EARLY_RUNS.values():
        run.close()
