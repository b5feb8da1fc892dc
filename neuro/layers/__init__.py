"""Synapse layers and containers over time-first tensors ``[T, B, ...]``."""
from .delayed import DelayedLinear
from .linear import Linear
from .norm import BatchNormTime, TimeDropout
from .recurrent import Recurrent, RecurrentState
from .sequential import Sequential

__all__ = ["BatchNormTime", "DelayedLinear", "Linear", "TimeDropout", "Recurrent", "RecurrentState", "Sequential"]
