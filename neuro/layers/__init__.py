"""Synapse layers and containers over time-first tensors ``[T, B, ...]``."""
from .linear import Linear
from .recurrent import Recurrent, RecurrentState
from .sequential import Sequential

__all__ = ["Linear", "Recurrent", "RecurrentState", "Sequential"]
