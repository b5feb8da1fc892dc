"""EGRU: the event-based gated recurrent unit family (Subramoney et al., ICLR 2023).

Layer and kernels: :mod:`.layer` (zoneout, DropConnect, trace, activity regulariser),
:mod:`.kernels` (event-driven fused C++ time loop and the torch step loop).
"""
from __future__ import annotations

from .kernels import SparsityStats, egru_sequence
from .layer import EGRULayer, activity_regularization, output_trace

__all__ = ["EGRULayer", "SparsityStats", "activity_regularization", "egru_sequence",
           "output_trace"]
