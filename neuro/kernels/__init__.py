"""Fused multi-step kernels: the LIF recurrence and the event-driven linear layer.

Two implementations of each autograd function, chosen per call:

* ``"cpp"``: the C++ kernels in ``csrc/neuro_ops.cpp`` (CPU, float32), built on first use;
* ``"torch"``: the same forward/backward written with torch ops. It runs on any device and
  dtype (this is the GPU path) and is used when the extension cannot be built.

Both have hand-written backward passes over time and must equal the neuron's step loop (tests in
``tests/neuro/kernels/test_fused.py``).
"""
from __future__ import annotations

import os

from torch import Tensor

from . import _ext, malloc
from .delayed import delayed_affine, shift_time
from .lif import lif_multistep
from .spike_linear import spike_linear

malloc.prefer_huge_pages()  # before the first large tensor (neuro.kernels.malloc)

__all__ = ["backend", "delayed_affine", "lif_multistep", "shift_time", "spike_linear", "use_cpp"]


def use_cpp(x: Tensor) -> bool:
    """Whether the C++ kernels handle ``x`` (CPU float32 and the extension loads)."""
    return (
        x.device.type == "cpu"
        and x.dtype.is_floating_point
        and x.dtype.itemsize == 4
        and os.environ.get("NEURO_DISABLE_EXT") != "1"
        and _ext.load()
    )


def backend() -> str:
    """``"cpp"`` when the C++ kernels are available, else ``"torch (reason)"``."""
    if os.environ.get("NEURO_DISABLE_EXT") == "1":
        return "torch (NEURO_DISABLE_EXT=1)"
    if _ext.load():
        return "cpp"
    return f"torch ({_ext.error()})"
