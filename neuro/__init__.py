"""neuro: spiking neural networks in PyTorch, one graph for every hardware target.

Curated public API (see README.md and DESIGN.md): the neurons and surrogate gradients, the synapse
layers, the model families' model classes and configs, checkpoints, and the graph IR's core
functions (lower, simulate, quantize, compare). Subpackages: ``neuro.neurons``, ``neuro.layers``,
``neuro.models`` (one folder per family), ``neuro.training``, ``neuro.graph``, ``neuro.energy``,
``neuro.hardware``, ``neuro.datasets``. The C++ kernels (``neuro.kernels``) are an implementation
detail of the neurons and layers, not part of this API.

Names are imported on first use (PEP 562), so ``import neuro`` and the command line's ``--help``
and ``info`` start without importing torch; ``neuro.LIF`` imports what it needs the first time.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module that defines it (imported on first access)
_LAZY: dict[str, str] = {
    **dict.fromkeys(("layers", "models", "neurons", "surrogate"), ""),
    **dict.fromkeys(("load_checkpoint", "save_checkpoint"), ".checkpoint"),
    **dict.fromkeys(("from_module", "get_format", "mismatch_report", "quantize", "simulate"), ".graph"),
    **dict.fromkeys(("BatchNormTime", "DelayedLinear", "Linear", "Recurrent", "Sequential",
                     "TimeDropout"), ".layers"),
    **dict.fromkeys(("FAMILIES", "LSM", "DelaySNN", "DelaySNNConfig", "LSMClassifier", "LSMConfig",
                     "SpikingMLP", "SpikingMLPConfig"), ".models"),
    **dict.fromkeys(("EGRU", "IF", "LI", "LIF", "CubaLIF", "Neuron"), ".neurons"),
    **dict.fromkeys(("ATan", "EGRUPseudoDerivative", "FastSigmoid", "Sigmoid", "Triangle"),
                    ".surrogate"),
}

if TYPE_CHECKING:  # what the lazy names are, for type checkers and IDEs
    from . import layers, models, neurons, surrogate
    from .checkpoint import load_checkpoint, save_checkpoint
    from .graph import from_module, get_format, mismatch_report
    from .graph import quantize as quantize  # type: ignore[no-redef]  # also a submodule's name
    from .graph import simulate as simulate  # type: ignore[no-redef]  # also a submodule's name
    from .layers import BatchNormTime, DelayedLinear, Linear, Recurrent, Sequential, TimeDropout
    from .models import (
        FAMILIES,
        LSM,
        DelaySNN,
        DelaySNNConfig,
        LSMClassifier,
        LSMConfig,
        SpikingMLP,
        SpikingMLPConfig,
    )
    from .neurons import EGRU, IF, LI, LIF, CubaLIF, Neuron
    from .surrogate import ATan, EGRUPseudoDerivative, FastSigmoid, Sigmoid, Triangle


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'neuro' has no attribute {name!r}")
    module = _LAZY[name]
    value = (importlib.import_module(f".{name}", __name__) if not module
             else getattr(importlib.import_module(module, __name__), name))
    globals()[name] = value  # later accesses skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "ATan", "BatchNormTime", "CubaLIF", "DelaySNN", "DelaySNNConfig", "DelayedLinear", "EGRU",
    "EGRUPseudoDerivative", "FAMILIES", "FastSigmoid", "IF", "LI", "LIF", "LSM", "LSMClassifier",
    "LSMConfig", "Linear", "Neuron", "Recurrent", "Sequential", "Sigmoid", "SpikingMLP",
    "SpikingMLPConfig", "TimeDropout", "Triangle", "from_module", "get_format", "layers",
    "load_checkpoint", "mismatch_report", "models", "neurons", "quantize", "save_checkpoint",
    "simulate", "surrogate",
]
