"""neuro: spiking neural networks in PyTorch, one graph for every hardware target.

Curated public API (see README.md and DESIGN.md): the neurons and surrogate gradients, the synapse
layers, the model families' model classes and configs, checkpoints, and the graph IR's core
functions (lower, simulate, quantize, compare). Subpackages: ``neuro.neurons``, ``neuro.layers``,
``neuro.models`` (one folder per family), ``neuro.training``, ``neuro.graph``, ``neuro.energy``,
``neuro.hardware``, ``neuro.datasets``. The C++ kernels (``neuro.kernels``) are an implementation
detail of the neurons and layers, not part of this API.
"""
from . import layers, models, neurons, surrogate
from .checkpoint import load_checkpoint, save_checkpoint
from .graph import from_module, get_format, mismatch_report, quantize, simulate
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

__version__ = "0.1.0"

__all__ = [
    "ATan", "BatchNormTime", "CubaLIF", "DelaySNN", "DelaySNNConfig", "DelayedLinear", "EGRU",
    "EGRUPseudoDerivative", "FAMILIES", "FastSigmoid", "IF", "LI", "LIF", "LSM", "LSMClassifier",
    "LSMConfig", "Linear", "Neuron", "Recurrent", "Sequential", "Sigmoid", "SpikingMLP",
    "SpikingMLPConfig", "TimeDropout", "Triangle", "from_module", "get_format", "layers",
    "load_checkpoint", "mismatch_report", "models", "neurons", "quantize", "save_checkpoint",
    "simulate", "surrogate",
]
