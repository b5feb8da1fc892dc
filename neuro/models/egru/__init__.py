"""EGRU: the event-based gated recurrent unit family (Subramoney et al., ICLR 2023).

* :mod:`.layer`: :class:`EGRULayer` (the shared EGRU neuron with zoneout, DropConnect,
  threshold projection, weight masks), the output trace and the activity regulariser;
* :mod:`.kernels`: the event-driven fused C++ time loop (``csrc/egru.cpp``) and the torch loop;
* :mod:`.model`: :class:`EGRULanguageModel` and :class:`EGRUGestureNet`; :mod:`.config`;
* :mod:`.pruning`: magnitude pruning with fine-tuning, CSR storage;
* :mod:`.baselines`: ``torch.nn.GRU``/``LSTM`` language models of matched size (same embedding,
  tied decoder, dropouts); :mod:`.macs`: MACs per token from measured events and CSR non-zeros;
* :mod:`.training`: ``fit`` and ``train`` (``neuro train egru --task lm``).
"""
from __future__ import annotations

from ..base import Family
from .baselines import RNNLanguageModel
from .config import EGRUGestureConfig, EGRULMConfig
from .kernels import SparsityStats, egru_sequence
from .layer import EGRULayer, activity_regularization, output_trace
from .model import EGRUGestureNet, EGRULanguageModel
from .training import add_arguments, demo, evaluate, fit, train

FAMILY = Family(
    name="egru",
    summary="event-based GRU (Subramoney et al. 2023): word-level language model, DVS gesture net",
    models=(EGRULanguageModel, EGRUGestureNet),
    fit=fit,
    train=train,
    add_arguments=add_arguments,
    demo=demo,
)

__all__ = ["FAMILY", "EGRUGestureConfig", "EGRUGestureNet", "EGRULMConfig", "EGRULanguageModel",
           "EGRULayer", "RNNLanguageModel", "SparsityStats", "activity_regularization", "egru_sequence", "evaluate",
           "fit", "output_trace", "train"]
