"""The core C++ kernels (``csrc/neuro_ops.cpp``: fused LIF, event-driven linear, integer neuron),
built on first use through :mod:`neuro.kernels.extension`. When they cannot be built, neuro warns
once and uses the device-generic torch implementation of the same forward/backward, which gives
the same results (``neuro.kernels.backend()`` says which one is active).
"""
from __future__ import annotations

from pathlib import Path

from . import malloc
from .extension import extension_error, load_extension

_SOURCE = Path(__file__).with_name("csrc") / "neuro_ops.cpp"
EXTENSION = "neuro_ops"


def load() -> bool:
    """Build (if needed) and load the core kernels; return whether ``torch.ops.neuro_ops`` exists.
    The first successful load also tunes ``malloc`` for reused big buffers (:mod:`.malloc`)."""
    ok = load_extension(EXTENSION, _SOURCE, "lif_forward")
    if ok:
        malloc.tune()
    return ok


def error(name: str = EXTENSION) -> str | None:
    """Why an extension is not available (None when it is, or was never tried)."""
    return extension_error(name)


#: ``python -m neuro.kernels.build`` protocol: build now, and why not
build = load


def build_error() -> str | None:
    return extension_error(EXTENSION)


__all__ = ["build", "build_error", "error", "load", "load_extension"]
