"""The one neuron abstraction: :class:`Neuron` and its types (see ``neurons/base.py``)."""
from .base import Neuron
from .cuba import CubaLIF, CubaLIFState
from .egru import EGRU, EGRUState
from .lif import IF, LI, LIF, LIFState, LIState, decay_from_tau

__all__ = [
    "Neuron", "LIF", "IF", "LI", "CubaLIF", "EGRU",
    "LIFState", "LIState", "CubaLIFState", "EGRUState", "decay_from_tau",
]
