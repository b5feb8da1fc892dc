"""neuro: spiking neural networks in PyTorch, one graph for every hardware target.

Curated public API; see README.md and DESIGN.md.
"""
from . import kernels, layers, models, neurons, surrogate
from .checkpoint import load_checkpoint, save_checkpoint
from .layers import Linear, Recurrent, Sequential
from .models import SpikingMLP, SpikingMLPConfig
from .neurons import EGRU, IF, LI, LIF, CubaLIF, Neuron
from .surrogate import ATan, EGRUPseudoDerivative, FastSigmoid, Sigmoid, Triangle

__version__ = "0.1.0"

__all__ = [
    "ATan", "CubaLIF", "EGRU", "EGRUPseudoDerivative", "FastSigmoid", "IF", "LI", "LIF",
    "Linear", "Neuron", "Recurrent", "Sequential", "Sigmoid", "SpikingMLP", "SpikingMLPConfig",
    "Triangle", "kernels", "layers", "load_checkpoint", "models", "neurons", "save_checkpoint",
    "surrogate",
]
