import os
from pathlib import Path

import pytest
import torch
from hypothesis import settings

# Property-based tests (hypothesis): no example database in the working tree, and each test
# states its own bounded max_examples (the whole set runs in about a minute in CI).
settings.register_profile("neuro", database=None, deadline=None)
settings.load_profile("neuro")

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    # Lava (the Loihi backend's simulator) lives in its own environment (`make lava`); point the
    # backend at it for every test, including the CLI's subprocesses, unless the caller chose one.
    lava = REPO / ".venv-lava" / "bin" / "python"
    if not os.environ.get("NEURO_LAVA_PYTHON") and lava.exists():
        os.environ["NEURO_LAVA_PYTHON"] = str(lava)


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    yield
