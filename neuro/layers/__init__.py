"""Synapse layers and containers over time-first tensors ``[T, B, ...]``."""
from .delayed import DelayedLinear
from .linear import Linear
from .recurrent import Recurrent, RecurrentState
from .sequential import Sequential

__all__ = ["DelayedLinear", "Linear", "Recurrent", "RecurrentState", "Sequential"]
