"""The Lava interpreter for the Loihi tests.

The tests really run Lava (no skip). Lava lives in its own environment (numpy<2): the tests use
``$NEURO_LAVA_PYTHON``, else the repository's ``.venv-lava/bin/python`` (made by ``make lava``,
a prerequisite of ``make test``), and fail with a message saying so when neither exists.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session", autouse=True)
def lava_python() -> str:
    """The interpreter with Lava (exported as NEURO_LAVA_PYTHON for the backend)."""
    py = os.environ.get("NEURO_LAVA_PYTHON")
    if not py:
        py = str(REPO / ".venv-lava" / "bin" / "python")
        if not Path(py).exists():
            pytest.fail(f"Lava is not provisioned: {py} is missing. Run `make lava` (done by "
                        "`make test`) or set NEURO_LAVA_PYTHON to a Python with lava-nc 0.10.0.",
                        pytrace=False)
        os.environ["NEURO_LAVA_PYTHON"] = py
    return py
